package datasets

import (
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"shopagent/env"
	"shopagent/serve/decisionlog"
)

// ActionKind classifies an action by its text.
type ActionKind string

// Action kinds reported by Inspect.
const (
	// ActionSearch is search[...].
	ActionSearch ActionKind = "search"
	// ActionClickASIN is a click on a product in the results (an ASIN).
	ActionClickASIN ActionKind = "click_asin"
	// ActionClickOption is a click on an option value of an item page.
	ActionClickOption ActionKind = "click_option"
	// ActionNavigation is next >, < prev, back to search, description,
	// features, reviews or attributes.
	ActionNavigation ActionKind = "navigation"
	// ActionBuyNow is click[buy now].
	ActionBuyNow ActionKind = "buy_now"
	// ActionOther is anything else (unparseable text, unknown verbs).
	ActionOther ActionKind = "other"
)

// ClassifyAction classifies an action by its text alone: search[...],
// click[buy now], the navigation clicks, a click on an ASIN (10 letters or
// digits with at least one digit, like "b09qkp7xql"), and any other click
// as an option value.
func ClassifyAction(action string) ActionKind {
	a := env.ParseAction(action)
	if !a.HasArg {
		return ActionOther
	}
	switch a.Name {
	case "search":
		return ActionSearch
	case "click":
	default:
		return ActionOther
	}
	switch a.Arg {
	case env.ClickBuyNow:
		return ActionBuyNow
	case env.ClickNext, env.ClickPrev, env.ClickBackToSearch, env.ClickDescription,
		env.ClickFeatures, env.ClickReviews, env.ClickAttributes, env.ClickSearch:
		return ActionNavigation
	}
	if looksLikeASIN(a.Arg) {
		return ActionClickASIN
	}
	return ActionClickOption
}

// looksLikeASIN reports whether s has an ASIN's shape: 10 ASCII letters or
// digits, at least one of them a digit (option values such as "multicolor"
// have ten letters).
func looksLikeASIN(s string) bool {
	if len(s) != 10 {
		return false
	}
	digit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		default:
			return false
		}
	}
	return digit
}

// ActionMix counts actions by kind.
type ActionMix struct {
	Search      int `json:"search"`
	ClickASIN   int `json:"click_asin"`
	ClickOption int `json:"click_option"`
	Navigation  int `json:"navigation"`
	BuyNow      int `json:"buy_now"`
	Other       int `json:"other"`
}

// Add counts one action of kind k.
func (m *ActionMix) Add(k ActionKind) {
	switch k {
	case ActionSearch:
		m.Search++
	case ActionClickASIN:
		m.ClickASIN++
	case ActionClickOption:
		m.ClickOption++
	case ActionNavigation:
		m.Navigation++
	case ActionBuyNow:
		m.BuyNow++
	default:
		m.Other++
	}
}

// Total returns the number of actions counted.
func (m ActionMix) Total() int {
	return m.Search + m.ClickASIN + m.ClickOption + m.Navigation + m.BuyNow + m.Other
}

// SourceCount counts the episodes and steps of one source.
type SourceCount struct {
	Source   string `json:"source"`
	Episodes int    `json:"episodes"`
	Steps    int    `json:"steps"`
}

// Summary describes a trajectory file or directory.
type Summary struct {
	// Path is what was inspected; Files the trajectory files read.
	Path  string `json:"path"`
	Files int    `json:"files"`
	// Episodes and Steps count episodes (runs of rows with one episode_id)
	// and rows.
	Episodes int `json:"episodes"`
	Steps    int `json:"steps"`
	// Sources counts episodes and steps per source, sorted by source.
	Sources []SourceCount `json:"sources"`
	// Rewarded is the number of episodes with a known final reward (not NaN);
	// MeanFinalReward and SuccessRate are over those episodes only.
	Rewarded        int     `json:"rewarded_episodes"`
	MeanFinalReward float64 `json:"mean_final_reward"`
	// SuccessRate is the percentage of rewarded episodes with final reward 1.
	SuccessRate float64 `json:"success_rate"`
	// MeanSteps is the mean number of steps per episode.
	MeanSteps float64 `json:"mean_steps"`
	// Actions is the action mix over all steps.
	Actions ActionMix `json:"actions"`
}

// Inspect reads a trajectory file, or every *.parquet file of a directory,
// and summarises it. An episode's final reward is the final_reward of its
// last row.
func Inspect(path string) (Summary, error) {
	files, err := Files(path)
	if err != nil {
		return Summary{}, err
	}
	s := Summary{Path: path, Files: len(files)}
	bySource := map[string]*SourceCount{}
	var rewardSum float64
	var successes int
	for _, f := range files {
		err := ReadEpisodes(f, func(ep []Step) error {
			s.Episodes++
			s.Steps += len(ep)
			src := string(ep[0].Source)
			c := bySource[src]
			if c == nil {
				c = &SourceCount{Source: src}
				bySource[src] = c
			}
			c.Episodes++
			c.Steps += len(ep)
			for _, st := range ep {
				s.Actions.Add(ClassifyAction(st.Action))
			}
			if r := ep[len(ep)-1].FinalReward; !math.IsNaN(r) {
				s.Rewarded++
				rewardSum += r
				if r == 1 {
					successes++
				}
			}
			return nil
		})
		if err != nil {
			return Summary{}, err
		}
	}
	for _, c := range bySource {
		s.Sources = append(s.Sources, *c)
	}
	sort.Slice(s.Sources, func(i, j int) bool { return s.Sources[i].Source < s.Sources[j].Source })
	if s.Rewarded > 0 {
		s.MeanFinalReward = rewardSum / float64(s.Rewarded)
		s.SuccessRate = 100 * float64(successes) / float64(s.Rewarded)
	}
	if s.Episodes > 0 {
		s.MeanSteps = float64(s.Steps) / float64(s.Episodes)
	}
	return s, nil
}

// ServeLogArm summarises one arm of a policy server's logs.
type ServeLogArm struct {
	Arm       string `json:"arm"`
	Decisions int    `json:"decisions"`
	// Rewards counts ended episodes, Timeouts those ended by the reward timeout (reward 0).
	Rewards  int `json:"rewards"`
	Timeouts int `json:"timeouts"`
	// MeanReward and SuccessRate (percent) are over the rewarded episodes.
	MeanReward  float64  `json:"mean_reward"`
	SuccessRate float64  `json:"success_rate"`
	Policies    []string `json:"policies"`
}

// ServeLogSummary describes the decision and reward logs of `shopagent serve --logs DIR`:
// the published Parquet files and the rows still in the write-ahead log.
type ServeLogSummary struct {
	Path string `json:"path"`
	// DecisionFiles and RewardFiles count the Parquet files; WALSegments the segments
	// not yet cut (a live server's, or a crashed one's before its recovery).
	DecisionFiles, RewardFiles, WALSegments int
	// Decisions and Rewards count the rows, WALDecisions and WALRewards those in the WAL.
	Decisions    int `json:"decisions"`
	Rewards      int `json:"rewards"`
	WALDecisions int `json:"wal_decisions"`
	WALRewards   int `json:"wal_rewards"`
	// Sessions and Episodes count the distinct sessions and (session, episode) pairs of
	// the decisions; Unrewarded the episodes with decisions and no reward (yet).
	Sessions   int `json:"sessions"`
	Episodes   int `json:"episodes"`
	Unrewarded int `json:"unrewarded_episodes"`
	// First and Last are the times of the first and last row.
	First time.Time     `json:"first,omitzero"`
	Last  time.Time     `json:"last,omitzero"`
	Arms  []ServeLogArm `json:"arms"`
}

// IsServeLogDir reports whether dir looks like a policy server's log directory (it has
// a decisions, rewards or wal folder).
func IsServeLogDir(dir string) bool {
	for _, sub := range []string{decisionlog.Decisions, decisionlog.Rewards, "wal"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// InspectServeLogs reads a policy server's log directory (read-only: the WAL is read,
// not recovered) and summarises it.
func InspectServeLogs(dir string) (ServeLogSummary, error) {
	s := ServeLogSummary{Path: dir}
	dfiles, err := decisionlog.Files(dir, decisionlog.Decisions, time.Time{})
	if err != nil {
		return s, err
	}
	rfiles, err := decisionlog.Files(dir, decisionlog.Rewards, time.Time{})
	if err != nil {
		return s, err
	}
	segs, err := decisionlog.Segments(dir)
	if err != nil {
		return s, err
	}
	s.DecisionFiles, s.RewardFiles, s.WALSegments = len(dfiles), len(rfiles), len(segs)
	decs, err := decisionlog.ReadDecisions(dir)
	if err != nil {
		return s, err
	}
	rews, err := decisionlog.ReadRewards(dir)
	if err != nil {
		return s, err
	}
	wal, err := decisionlog.ReadWAL(dir)
	if err != nil {
		return s, err
	}
	s.WALDecisions, s.WALRewards = len(wal.Decisions), len(wal.Rewards)
	decs, rews = append(decs, wal.Decisions...), append(rews, wal.Rewards...)
	s.Decisions, s.Rewards = len(decs), len(rews)
	arms := map[string]*ServeLogArm{}
	policies := map[string]map[string]bool{}
	arm := func(name string) *ServeLogArm {
		a := arms[name]
		if a == nil {
			a = &ServeLogArm{Arm: name}
			arms[name] = a
			policies[name] = map[string]bool{}
		}
		return a
	}
	seen := func(ts time.Time) {
		if s.First.IsZero() || ts.Before(s.First) {
			s.First = ts
		}
		if ts.After(s.Last) {
			s.Last = ts
		}
	}
	sessions := map[string]bool{}
	episodes := map[string]bool{}
	for _, d := range decs {
		arm(d.Arm).Decisions++
		policies[d.Arm][d.Policy] = true
		sessions[d.SessionID] = true
		episodes[d.SessionID+"\n"+strconv.FormatInt(d.Episode, 10)] = true
		seen(d.TS)
	}
	rewarded := map[string]bool{}
	sums := map[string]float64{}
	succ := map[string]int{}
	for _, r := range rews {
		a := arm(r.Arm)
		a.Rewards++
		if r.Source == decisionlog.SourceTimeout {
			a.Timeouts++
		}
		sums[r.Arm] += r.Reward
		if r.Success {
			succ[r.Arm]++
		}
		rewarded[r.SessionID+"\n"+strconv.FormatInt(r.Episode, 10)] = true
		seen(r.TS)
	}
	s.Sessions, s.Episodes = len(sessions), len(episodes)
	for k := range episodes {
		if !rewarded[k] {
			s.Unrewarded++
		}
	}
	for name, a := range arms {
		if a.Rewards > 0 {
			a.MeanReward = sums[name] / float64(a.Rewards)
			a.SuccessRate = 100 * float64(succ[name]) / float64(a.Rewards)
		}
		for p := range policies[name] {
			a.Policies = append(a.Policies, p)
		}
		sort.Strings(a.Policies)
		s.Arms = append(s.Arms, *a)
	}
	sort.Slice(s.Arms, func(i, j int) bool { return s.Arms[i].Arm < s.Arms[j].Arm })
	return s, nil
}
