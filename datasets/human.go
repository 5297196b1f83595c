package datasets

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"shopagent/env"
)

// HumanPolicy is the policy name of imported human demonstrations.
const HumanPolicy = "human"

// HumanRecord is one line of WebShop's il_trajs_finalized_images.jsonl: one
// human episode. The lists are parallel: states[i] (a text_rich observation)
// was acted on with actions[i], chosen as available_actions[i][action_idxs[i]]
// (action_idxs[i] is -1 for a search, whose available list is usually
// empty). Images and actions_translate are ignored.
type HumanRecord struct {
	States           []string   `json:"states"`
	Actions          []string   `json:"actions"`
	AvailableActions [][]string `json:"available_actions"`
	ActionIdxs       []int      `json:"action_idxs"`
}

// ParseHumanLine decodes and validates one JSONL line of human
// demonstrations. lineNo (1-based) names the line in errors. It fails, never
// panics, on bad JSON, a missing or null field, an empty episode, lists of
// different lengths, an action index outside its available list, or a first
// state without an instruction.
func ParseHumanLine(line []byte, lineNo int) (HumanRecord, error) {
	var raw struct {
		States           *[]string   `json:"states"`
		Actions          *[]string   `json:"actions"`
		AvailableActions *[][]string `json:"available_actions"`
		ActionIdxs       *[]int      `json:"action_idxs"`
	}
	if err := json.Unmarshal(line, &raw); err != nil {
		return HumanRecord{}, fmt.Errorf("line %d: invalid JSON: %w", lineNo, err)
	}
	switch {
	case raw.States == nil:
		return HumanRecord{}, fmt.Errorf("line %d: missing field \"states\"", lineNo)
	case raw.Actions == nil:
		return HumanRecord{}, fmt.Errorf("line %d: missing field \"actions\"", lineNo)
	case raw.AvailableActions == nil:
		return HumanRecord{}, fmt.Errorf("line %d: missing field \"available_actions\"", lineNo)
	case raw.ActionIdxs == nil:
		return HumanRecord{}, fmt.Errorf("line %d: missing field \"action_idxs\"", lineNo)
	}
	rec := HumanRecord{States: *raw.States, Actions: *raw.Actions, AvailableActions: *raw.AvailableActions, ActionIdxs: *raw.ActionIdxs}
	n := len(rec.Actions)
	if n == 0 {
		return HumanRecord{}, fmt.Errorf("line %d: episode has no actions", lineNo)
	}
	if len(rec.States) != n || len(rec.AvailableActions) != n || len(rec.ActionIdxs) != n {
		return HumanRecord{}, fmt.Errorf("line %d: list lengths differ: %d states, %d actions, %d available_actions, %d action_idxs",
			lineNo, len(rec.States), n, len(rec.AvailableActions), len(rec.ActionIdxs))
	}
	for i, idx := range rec.ActionIdxs {
		if idx < -1 || idx >= len(rec.AvailableActions[i]) {
			return HumanRecord{}, fmt.Errorf("line %d: step %d: action index %d outside its %d available actions",
				lineNo, i, idx, len(rec.AvailableActions[i]))
		}
	}
	if env.ParseInstruction(rec.States[0]) == "" {
		return HumanRecord{}, fmt.Errorf("line %d: no instruction in the first state", lineNo)
	}
	return rec, nil
}

// InferPage guesses the page of an observation (text_rich or text mode)
// from its text and the action that led to it: the search page (starts with
// the site name or shows the Search button), results ("Total results"),
// item ("Buy Now"), the done page, and sub-pages (a "< Prev" button without
// "Buy Now"), whose kind is that of the click that opened them. It returns
// PageUnknown when nothing fits.
func InferPage(state, prevAction string) env.PageKind {
	switch {
	case strings.Contains(state, "Thank you for shopping with us"):
		return env.PageDone
	case strings.HasPrefix(state, "WebShop") || strings.HasPrefix(state, "Amazon Shopping Game") ||
		strings.Contains(state, "[button] Search [button_]"):
		return env.PageSearch
	case strings.Contains(state, "(Total results:"):
		return env.PageResults
	case strings.Contains(state, "Buy Now"):
		return env.PageItem
	case strings.Contains(state, "< Prev"):
		a := env.ParseAction(prevAction)
		switch a.Arg {
		case env.ClickDescription:
			return env.PageDescription
		case env.ClickFeatures:
			return env.PageFeatures
		case env.ClickReviews:
			return env.PageReviews
		case env.ClickAttributes:
			return env.PageAttributes
		}
	}
	return PageUnknown
}

// priceClause matches WebShop's price clause at the end of an instruction.
var priceClause = regexp.MustCompile(`(?i),? and price lower than ([0-9]+(?:\.[0-9]+)?) dollars\s*$`)

// SplitPriceClause splits an instruction into its text without WebShop's
// price clause (", and price lower than X dollars") and the price cap, or
// env.NoPriceCap when there is no clause.
func SplitPriceClause(ins string) (string, float64) {
	m := priceClause.FindStringSubmatchIndex(ins)
	if m == nil {
		return ins, env.NoPriceCap
	}
	v, err := strconv.ParseFloat(ins[m[2]:m[3]], 64)
	if err != nil {
		return ins, env.NoPriceCap
	}
	return ins[:m[0]], v
}

// instructionKey normalises an instruction for matching demonstrations to
// goals as WebShop's IL code does: lowercased, quotes removed, price clause
// dropped, dots and spaces trimmed.
func instructionKey(ins string) string {
	ins, _ = SplitPriceClause(ins)
	ins = strings.ToLower(ins)
	ins = strings.NewReplacer(`"`, "", "'", "").Replace(ins)
	return strings.Trim(strings.TrimSpace(ins), ". ")
}

// HumanSteps converts a validated record to rows with source human: the
// instruction parsed from the first state, each step's page inferred from
// its state (InferPage), the record's available actions and action indices
// as they are. Without a replay the final reward is unknown: final_reward is
// NaN on every row and reward is 0 on every row but the last, which carries
// the (NaN) final reward. GoalID is -1. Logprob and value are NaN.
func HumanSteps(rec HumanRecord, id string) []Step {
	ins := env.ParseInstruction(rec.States[0])
	out := make([]Step, len(rec.Actions))
	prev := ""
	for i, a := range rec.Actions {
		avail := rec.AvailableActions[i]
		if avail == nil {
			avail = []string{}
		}
		out[i] = Step{
			EpisodeID:        id,
			Source:           SourceHuman,
			Policy:           HumanPolicy,
			GoalID:           -1,
			Instruction:      ins,
			Step:             int32(i),
			Page:             string(InferPage(rec.States[i], prev)),
			Observation:      rec.States[i],
			AvailableActions: avail,
			Action:           a,
			ActionIndex:      int32(rec.ActionIdxs[i]),
			Logprob:          math.NaN(),
			Value:            math.NaN(),
			Done:             i == len(rec.Actions)-1,
			FinalReward:      math.NaN(),
		}
		prev = a
	}
	out[len(out)-1].Reward = math.NaN()
	return out
}

// HumanOptions configures ImportHuman.
type HumanOptions struct {
	// Shop, when set, scores each demonstration: the episode's goal is the
	// shop goal with the same instruction (compared without the price clause,
	// case and quotes; the demonstration's own instruction and price cap are
	// kept), its actions are replayed in a simulator over the shop, and the
	// purchase's reward becomes reward and final_reward. If the replay
	// diverges (an action the simulator rejects, e.g. because the shop's
	// search ranks differently), the purchase is scored directly: the last
	// product clicked, with the option values clicked on its page. Episodes
	// whose instruction matches no goal, or that never buy, keep NaN.
	// Without a Shop every final reward is NaN.
	Shop *env.Shop
	// IDPrefix prefixes episode ids ("human-" when empty); the id is the
	// prefix and the 1-based line number, zero padded.
	IDPrefix string
}

// HumanStats reports what ImportHuman did.
type HumanStats struct {
	Episodes int `json:"episodes"`
	Steps    int `json:"steps"`
	// Matched episodes found their goal in the shop; Replayed were scored by
	// a faithful simulator replay, Scored by direct scoring after the replay
	// diverged. All zero without a shop.
	Matched  int `json:"matched"`
	Replayed int `json:"replayed"`
	Scored   int `json:"scored"`
	// Successes counts scored episodes with reward 1; RewardSum sums their
	// rewards.
	Successes int     `json:"successes"`
	RewardSum float64 `json:"reward_sum"`
}

// ImportHuman reads WebShop's human demonstrations (il_trajs_finalized_images
// .jsonl) and returns their rows, with source human. See HumanOptions for
// scoring them on a shop. Any malformed line is an error naming the file and
// the line.
func ImportHuman(path string, opts HumanOptions) ([]Step, HumanStats, error) {
	var out []Step
	st, err := ImportHumanEpisodes(path, opts, func(ep []Step) error {
		out = append(out, ep...)
		return nil
	})
	return out, st, err
}

// ImportHumanEpisodes is ImportHuman streaming one episode at a time to fn
// (for instance a Writer's Write), so files of any size fit in memory. An
// error from fn stops the import and is returned as is.
func ImportHumanEpisodes(path string, opts HumanOptions, fn func(ep []Step) error) (HumanStats, error) {
	var st HumanStats
	f, err := os.Open(path)
	if err != nil {
		return st, fmt.Errorf("datasets: import human demonstrations: %w", err)
	}
	defer f.Close()
	prefix := opts.IDPrefix
	if prefix == "" {
		prefix = "human-"
	}
	var rp *replayer
	if opts.Shop != nil {
		rp = newReplayer(opts.Shop)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	for lineNo := 1; ; lineNo++ {
		line, rerr := br.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return st, fmt.Errorf("datasets: import %s: line %d: %w", path, lineNo, rerr)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			rec, err := ParseHumanLine(line, lineNo)
			if err != nil {
				return st, fmt.Errorf("datasets: import %s: %w", path, err)
			}
			steps := HumanSteps(rec, fmt.Sprintf("%s%06d", prefix, lineNo))
			if rp != nil {
				rp.score(rec, steps, &st)
			}
			st.Episodes++
			st.Steps += len(steps)
			if err := fn(steps); err != nil {
				return st, err
			}
		}
		if rerr != nil { // io.EOF
			return st, nil
		}
	}
}

// replayer scores human demonstrations on a shop.
type replayer struct {
	shop  *env.Shop
	goals map[string]int
	e     *env.Env
}

func newReplayer(shop *env.Shop) *replayer {
	r := &replayer{shop: shop, goals: map[string]int{}, e: shop.NewEnv(env.Config{Mode: env.ObsTextRich})}
	for i, g := range shop.Goals {
		k := instructionKey(g.Instruction)
		if _, dup := r.goals[k]; !dup {
			r.goals[k] = i
		}
	}
	return r
}

// score fills goal ids and rewards of one episode's rows.
func (r *replayer) score(rec HumanRecord, steps []Step, st *HumanStats) {
	ins := steps[0].Instruction
	gi, ok := r.goals[instructionKey(ins)]
	if !ok {
		return
	}
	st.Matched++
	goal := r.shop.Goals[gi]
	goal.Instruction = ins
	_, goal.PriceUpper = SplitPriceClause(ins)
	for i := range steps {
		steps[i].GoalID = int64(gi)
	}
	reward, replayed, bought := r.replay(goal, rec.Actions)
	if !bought {
		return
	}
	if replayed {
		st.Replayed++
	} else {
		st.Scored++
	}
	st.RewardSum += reward
	if reward == 1 {
		st.Successes++
	}
	for i := range steps {
		steps[i].Reward = 0
		steps[i].FinalReward = reward
	}
	steps[len(steps)-1].Reward = reward
}

// replay plays the actions in the simulator. It returns the reward, whether
// the simulator accepted every action and ended on the purchase, and whether
// anything was bought at all (directly scored when the replay diverged).
func (r *replayer) replay(goal env.Goal, actions []string) (reward float64, replayed, bought bool) {
	r.e.Reset(goal)
	for i, a := range actions {
		_, rew, done, info := r.e.Step(a)
		if !info.Valid {
			break
		}
		if done {
			if info.Purchase != nil && i == len(actions)-1 {
				return rew, true, true
			}
			break
		}
	}
	return r.scoreDirect(goal, actions)
}

// scoreDirect scores the purchase an action list describes without the
// simulator: the last clicked product (an ASIN click) before "buy now", with
// the option values clicked since, each replacing the earlier value of its
// option group as the shop does.
func (r *replayer) scoreDirect(goal env.Goal, actions []string) (float64, bool, bool) {
	item := -1
	type sel struct{ group, value string }
	var opts []sel
	for _, act := range actions {
		a := env.ParseAction(act)
		if a.Name != "click" || !a.HasArg {
			if a.Name == "search" {
				item, opts = -1, opts[:0]
			}
			continue
		}
		switch a.Arg {
		case env.ClickBuyNow:
			if item < 0 {
				return 0, false, false
			}
			p := &r.shop.Catalog.Products[item]
			vals := make([]string, len(opts))
			for i, o := range opts {
				vals[i] = o.value
			}
			return r.shop.Scorer.Reward(p, &goal, p.Price, vals).Reward, false, true
		case env.ClickBackToSearch:
			item, opts = -1, opts[:0]
			continue
		}
		if looksLikeASIN(a.Arg) {
			if i, ok := r.shop.Catalog.ByASIN(strings.ToUpper(a.Arg)); ok {
				item, opts = i, opts[:0]
				continue
			}
			if i, ok := r.shop.Catalog.ByASIN(a.Arg); ok {
				item, opts = i, opts[:0]
				continue
			}
		}
		if item < 0 {
			continue
		}
		group := ""
		for _, g := range r.shop.Catalog.Products[item].Options {
			for _, v := range g.Values {
				if v == a.Arg {
					group = g.Name
				}
			}
		}
		if group == "" {
			continue
		}
		found := false
		for i := range opts {
			if opts[i].group == group {
				opts[i].value, found = a.Arg, true
			}
		}
		if !found {
			opts = append(opts, sel{group, a.Arg})
		}
	}
	return 0, false, false
}
