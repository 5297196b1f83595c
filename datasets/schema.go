package datasets

import (
	"math"
	"strings"

	"shopagent/env"
)

// Source says where a trajectory comes from.
type Source string

// Trajectory sources. Expert demonstrations come from the scripted shopper of
// this package and are never labelled human.
const (
	// SourceHuman marks WebShop's human demonstrations (ImportHuman).
	SourceHuman Source = "human"
	// SourceExpert marks scripted expert demonstrations (GenerateDemos).
	SourceExpert Source = "expert"
	// SourceGenerated marks trajectories synthesised offline, for instance
	// for DPO preference pairs.
	SourceGenerated Source = "generated"
	// SourceRollout marks a policy's episodes in the simulator.
	SourceRollout Source = "rollout"
	// SourceServed marks decisions logged by the HTTP server.
	SourceServed Source = "served"
)

// Sources lists every known source, in schema order.
func Sources() []Source {
	return []Source{SourceHuman, SourceExpert, SourceGenerated, SourceRollout, SourceServed}
}

// Valid reports whether s is one of the known sources.
func (s Source) Valid() bool {
	for _, k := range Sources() {
		if s == k {
			return true
		}
	}
	return false
}

// PageUnknown is the page of a step whose page kind could not be inferred
// (a human demonstration state that matches no known page layout).
const PageUnknown env.PageKind = "unknown"

// SearchActionIndex is the action_index of search actions, whose text is free
// and therefore not one of the available actions (WebShop's human data uses
// -1 too). Clicks that are not among the available actions also get it.
const SearchActionIndex = -1

// Step is one row of a trajectory file: the observation an agent acted on,
// the action it took and what the action earned. Rows of an episode are
// consecutive and ordered by Step.
//
// Unknown floating-point values (the log-probability of a scripted or human
// action, a value estimate nobody computed, the final reward of a human
// demonstration that was not replayed) are NaN.
type Step struct {
	// EpisodeID identifies the episode; unique within a file.
	EpisodeID string `parquet:"episode_id"`
	// Source is one of the Source constants.
	Source Source `parquet:"source"`
	// Policy names what acted: "expert", "human", a checkpoint name, an arm.
	Policy string `parquet:"policy"`
	// GoalID is the goal's index in env.Shop.Goals (WebShop's goal order, in
	// which test, dev and train are consecutive ranges), or -1 when unknown.
	GoalID int64 `parquet:"goal_id"`
	// Instruction is the goal's instruction text, price clause included.
	Instruction string `parquet:"instruction"`
	// Step is the 0-based index of the step in its episode.
	Step int32 `parquet:"step"`
	// Page is the env.PageKind of the observation ("search", "results",
	// "item", ...), or PageUnknown.
	Page string `parquet:"page"`
	// Observation is the observation text (text or text_rich mode).
	Observation string `parquet:"observation"`
	// AvailableActions are the actions the page offered, as env's
	// Observation.Actions returns them: on the search page "search[...]" is a
	// template, the action taken holds the real query.
	AvailableActions []string `parquet:"available_actions,list"`
	// Action is the action taken, e.g. "search[red shoes]" or "click[buy now]".
	Action string `parquet:"action"`
	// ActionIndex is the index of Action in AvailableActions, or
	// SearchActionIndex (-1) for a search (or an unavailable click).
	ActionIndex int32 `parquet:"action_index"`
	// Logprob is the acting policy's log-probability of Action (NaN if unknown).
	Logprob float64 `parquet:"logprob"`
	// Value is the policy's value estimate of the observation (NaN if unknown).
	Value float64 `parquet:"value"`
	// Reward is the reward the action earned (non-zero only for "buy now").
	Reward float64 `parquet:"reward"`
	// Done is true on the last step of the episode.
	Done bool `parquet:"done"`
	// FinalReward is the episode's reward, repeated on every row (NaN if unknown).
	FinalReward float64 `parquet:"final_reward"`
	// Forced is true when a fixed rule of the agent took the action (a safety cap, a
	// fallback), not the policy's choice: training never uses it as a chosen action.
	// Files written before the column existed read as false.
	Forced bool `parquet:"forced,optional"`
}

// EpisodeMeta labels the rows made from one episode.
type EpisodeMeta struct {
	// ID is the episode_id of every row.
	ID string
	// Source and Policy label the rows.
	Source Source
	Policy string
	// GoalID is the goal's index in env.Shop.Goals, or -1.
	GoalID int64
}

// EpisodeSteps turns an episode recorded with transitions (env.RunEpisode
// with record=true) into rows: the observation text, obs.Actions() as the
// available actions, the action taken and its index there (-1 for searches),
// each step's reward, the episode reward as final_reward on every row and
// done on the last row. Logprob and value are NaN; set them afterwards when
// the acting policy knows them. An episode without transitions gives nil.
func EpisodeSteps(ep env.Episode, meta EpisodeMeta) []Step {
	if len(ep.Transitions) == 0 {
		return nil
	}
	out := make([]Step, len(ep.Transitions))
	for i, tr := range ep.Transitions {
		avail := tr.Obs.Actions()
		out[i] = Step{
			EpisodeID:        meta.ID,
			Source:           meta.Source,
			Policy:           meta.Policy,
			GoalID:           meta.GoalID,
			Instruction:      ep.Goal.Instruction,
			Step:             int32(i),
			Page:             string(tr.Obs.Page),
			Observation:      tr.Obs.Text,
			AvailableActions: avail,
			Action:           tr.Action,
			ActionIndex:      int32(ActionIndex(tr.Action, avail)),
			Logprob:          math.NaN(),
			Value:            math.NaN(),
			Reward:           tr.Reward,
			Done:             i == len(ep.Transitions)-1,
			FinalReward:      ep.Reward,
		}
	}
	return out
}

// ActionIndex returns the index of action in available, or -1 for a search
// action or a click that is not available. Clicks are compared as env parses
// them (the argument lowercased), so "click[Buy Now]" matches "click[buy now]".
func ActionIndex(action string, available []string) int {
	a := env.ParseAction(action)
	if a.Name == "search" {
		return SearchActionIndex
	}
	for i, s := range available {
		if s == action {
			return i
		}
	}
	if a.Name == "click" && a.HasArg {
		norm := env.Click(a.Arg)
		for i, s := range available {
			if strings.EqualFold(s, norm) {
				return i
			}
		}
	}
	return SearchActionIndex
}
