// Package agent is the one decision core of every policy-driven shopping agent:
// evaluation (`shopagent eval --policy`), RL rollouts and generated demonstrations
// (train), and the HTTP A/B driver that plays the shop through a policy server
// (abtest). They differ only in where the policy's scores come from (a Chooser): a
// model in process, or the server's POST /act. Given the same scores and the same
// page, they take the same action.
//
// The core sees only the observation. On the search page it searches with a query
// proposer's k-th candidate for the episode's k-th search (or, with SearchChoice, lets
// the chooser pick among the candidates). On every other page the chooser picks one of
// the page's clickables, greedily or by sampling, with these rules:
//
//   - sub-pages (description, features, reviews, attributes) already read during the
//     current visit of a product are not offered again (the state after "< prev" looks
//     like the first arrival, so a policy that reads on arrival would loop);
//   - after MaxItemActions actions on one product (its page and sub-pages) it buys it;
//   - after MaxSteps actions in the episode it finishes: it buys on a product page,
//     goes back from a sub-page, chooses greedily among the products of a results page
//     (searching again from a page past the last result, which has none);
//   - a page that offers nothing goes back to search; when the chooser fails, the
//     episode ends by a fixed rule (buy, the first product, back).
//
// Steps taken by those rules are marked Forced: they are not the policy's choices
// (training never uses them as a chosen action). WebShop's environment caps episodes at
// 100 steps with reward 0; WebShop's IL agent acted within 15 steps.
//
// The package imports no model library: it serves the policy server's clients too.
package agent

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"shopagent/env"
	"shopagent/features"
)

// Defaults of Config.
const (
	DefaultMaxSteps       = 15
	DefaultMaxItemActions = 8
)

// Config configures an Agent. The zero value takes the defaults.
type Config struct {
	// Sample draws actions from the policy's distribution instead of taking the argmax.
	Sample bool
	// Seed seeds the sampling.
	Seed uint64
	// MaxSteps is the agent's own budget of actions per episode (0: DefaultMaxSteps).
	MaxSteps int
	// MaxItemActions caps the actions spent on one product before buying it (0:
	// DefaultMaxItemActions).
	MaxItemActions int
	// Query proposes the searches (nil: features.KeywordQuery{}).
	Query features.QueryProposer
	// SearchChoice lets the chooser pick the search query among the proposer's
	// candidates and the raw instruction (RL rollouts may train it).
	SearchChoice bool
	// ScoreForced asks the chooser to score the states of forced clicks too (their
	// values and log-probabilities are recorded; the action stays the rule's).
	ScoreForced bool
}

// Choice is a state to choose in: the observation, the actions offered (action
// strings, "click[x]" or "search[q]") and their featurization (Example.Actions is
// parallel to Actions).
type Choice struct {
	Obs     env.Observation
	Actions []string
	Example features.ChoiceExample
}

// Chooser scores a state's offered actions and picks one.
type Chooser interface {
	// Choose scores the choice and returns the index picked among its actions and the
	// scores (log-probabilities over them, the state's value). With greedy it returns
	// the argmax (the first on ties); otherwise it samples with rng, or picks as its
	// source does (a server samples by its own setting). force >= 0 asks it to score
	// and return that index.
	Choose(c Choice, greedy bool, force int, rng *rand.Rand) (int, features.ChoiceScores, error)
}

// Scorer scores choice examples (models.Policy, or a batching front end to one).
type Scorer interface {
	Score(examples []features.ChoiceExample) ([]features.ChoiceScores, error)
}

// PolicyChooser chooses with a Scorer in process: the argmax, or a draw from the
// log-probabilities.
type PolicyChooser struct{ Scorer Scorer }

// Choose implements Chooser.
func (c PolicyChooser) Choose(ch Choice, greedy bool, force int, rng *rand.Rand) (int, features.ChoiceScores, error) {
	ex := ch.Example
	scores, err := c.Scorer.Score([]features.ChoiceExample{ex})
	if err != nil {
		return -1, features.ChoiceScores{}, err
	}
	if len(scores) != 1 || len(scores[0].LogProbs) != len(ex.Actions) {
		return -1, features.ChoiceScores{}, fmt.Errorf("agent: scorer returned %d score sets for 1 state of %d actions", len(scores), len(ex.Actions))
	}
	s := scores[0]
	switch {
	case force >= 0:
		return force, s, nil
	case greedy:
		return s.Best(), s, nil
	}
	return SampleIndex(s.LogProbs, rng), s, nil
}

// Rule names why a step was taken.
type Rule string

// The rules of a step: the policy's choice, or one of the fixed rules.
const (
	RulePolicy    Rule = ""              // the chooser's choice
	RuleSearch    Rule = "search"        // the proposer's query (not a choice)
	RuleItemCap   Rule = "item-cap"      // MaxItemActions on one product: buy
	RuleBudget    Rule = "budget"        // MaxSteps spent: finish
	RuleNoActions Rule = "no-actions"    // the page offers nothing: back to search
	RuleError     Rule = "chooser-error" // the chooser failed: a fixed fallback
)

// Step is what the agent did on one observation, and why.
type Step struct {
	// Action is the action text ("search[...]" or "click[...]").
	Action string
	// Page is the page the action was taken on.
	Page env.PageKind
	// Rule is RulePolicy for the chooser's choices; Forced is true for the fixed
	// rules' clicks (RuleItemCap, RuleBudget, RuleNoActions, RuleError).
	Rule   Rule
	Forced bool
	// Example is the scored state, its Actions the actions offered (with "search[q]"
	// candidates under SearchChoice); Index the one taken among them, -1 when the step
	// was not scored. Scores are the chooser's (LogProbs over Example.Actions).
	Example features.ChoiceExample
	Index   int
	Scores  features.ChoiceScores
}

// LogProb is the log-probability of the action taken (NaN when unscored).
func (s Step) LogProb() float64 {
	if s.Index < 0 || s.Index >= len(s.Scores.LogProbs) {
		return math.NaN()
	}
	return s.Scores.LogProbs[s.Index]
}

// Value is the value estimate of the state (NaN when unscored).
func (s Step) Value() float64 {
	if s.Index < 0 {
		return math.NaN()
	}
	return s.Scores.Value
}

// Agent is the decision core over a chooser. It is an env.Agent; it is not safe for
// concurrent use (give each worker its own; they may share the chooser).
type Agent struct {
	cfg     Config
	chooser Chooser
	rng     *rand.Rand

	instruction string
	steps       int
	searches    int
	itemActions int
	visited     map[string]bool
	records     []Step
	err         error
}

// New returns an agent over a chooser.
func New(chooser Chooser, cfg Config) *Agent {
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = DefaultMaxSteps
	}
	if cfg.MaxItemActions <= 0 {
		cfg.MaxItemActions = DefaultMaxItemActions
	}
	if cfg.Query == nil {
		cfg.Query = features.KeywordQuery{}
	}
	return &Agent{cfg: cfg, chooser: chooser, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6167656e74)), visited: map[string]bool{}}
}

// Reset starts a new episode (Act also detects a new instruction by itself).
func (a *Agent) Reset() {
	a.instruction, a.steps, a.searches, a.itemActions = "", 0, 0, 0
	clear(a.visited)
	a.records = a.records[:0]
	a.err = nil
}

// Steps returns the current episode's steps, in order.
func (a *Agent) Steps() []Step { return a.records }

// Err returns the episode's first chooser error (the agent then acts by a fallback).
func (a *Agent) Err() error { return a.err }

// Act implements env.Agent.
func (a *Agent) Act(obs env.Observation) string { return a.Next(obs).Action }

// Next decides the action for an observation and records the step.
func (a *Agent) Next(obs env.Observation) Step {
	if obs.Instruction != a.instruction {
		a.Reset()
		a.instruction = obs.Instruction
	}
	a.steps++
	st := a.decide(obs)
	st.Page = obs.Page
	a.records = append(a.records, st)
	return st
}

func (a *Agent) decide(obs env.Observation) Step {
	over := a.steps > a.cfg.MaxSteps
	if obs.Page == env.PageSearch {
		return a.search(obs)
	}
	forced := ""
	switch obs.Page {
	case env.PageItem, env.PageDescription, env.PageFeatures, env.PageReviews, env.PageAttributes:
		a.itemActions++
		switch {
		case obs.Page == env.PageItem && over:
			forced = env.ClickBuyNow
		case obs.Page == env.PageItem && a.itemActions > a.cfg.MaxItemActions:
			forced = env.ClickBuyNow
		case obs.Page != env.PageItem && over:
			forced = env.ClickPrev
		}
	case env.PageResults:
		a.itemActions = 0
		clear(a.visited)
	}
	ex, idx := a.offered(obs)
	if len(ex.Actions) == 0 {
		return Step{Action: env.Click(env.ClickBackToSearch), Rule: RuleNoActions, Forced: true, Index: -1}
	}
	if forced != "" {
		rule := RuleBudget
		if !over {
			rule = RuleItemCap
		}
		st := Step{Action: env.Click(forced), Rule: rule, Forced: true, Index: -1}
		if j := indexOf(obs, idx, forced); j >= 0 && a.cfg.ScoreForced {
			if _, s, err := a.chooser.Choose(clickChoice(obs, ex, idx), true, j, a.rng); err == nil {
				st.Example, st.Index, st.Scores = ex, j, s
			}
		}
		return st
	}
	if over && obs.Page == env.PageResults {
		return a.finishOnResults(obs, ex, idx)
	}
	pick, s, err := a.chooser.Choose(clickChoice(obs, ex, idx), !a.cfg.Sample, -1, a.rng)
	if err != nil {
		if a.err == nil {
			a.err = err
		}
		return Step{Action: fallbackAction(obs), Rule: RuleError, Forced: true, Index: -1}
	}
	if pick < 0 || pick >= len(ex.Actions) {
		if a.err == nil {
			a.err = fmt.Errorf("agent: the chooser picked %d of %d actions", pick, len(ex.Actions))
		}
		return Step{Action: fallbackAction(obs), Rule: RuleError, Forced: true, Index: -1}
	}
	c := obs.Clickables[idx[pick]]
	if obs.Page == env.PageItem {
		switch c {
		case env.ClickDescription, env.ClickFeatures, env.ClickReviews, env.ClickAttributes:
			a.visited[c] = true
		}
	}
	return Step{Action: env.Click(c), Rule: RulePolicy, Example: ex, Index: pick, Scores: s}
}

// search decides a search-page step.
func (a *Agent) search(obs env.Observation) Step {
	a.itemActions = 0
	clear(a.visited)
	ins := obs.Instruction
	if p := env.ParseInstruction(obs.Text); p != "" {
		ins = p
	}
	if a.cfg.SearchChoice {
		if qs := SearchCandidates(a.cfg.Query, ins); len(qs) > 0 {
			ex := features.ChoiceExample{Instruction: ins, State: features.StateText(obs.Text, obs.Clickables), Target: -1}
			for _, q := range qs {
				ex.Actions = append(ex.Actions, env.Search(q))
			}
			ex.Positions = make([]int, len(ex.Actions))
			pick, s, err := a.chooser.Choose(Choice{Obs: obs, Actions: ex.Actions, Example: ex}, !a.cfg.Sample, -1, a.rng)
			a.searches++
			if err == nil && pick >= 0 && pick < len(ex.Actions) {
				return Step{Action: ex.Actions[pick], Rule: RulePolicy, Example: ex, Index: pick, Scores: s}
			}
			if err != nil && a.err == nil {
				a.err = err
			}
			return Step{Action: ex.Actions[0], Rule: RuleError, Forced: true, Index: -1}
		}
	}
	qs := a.cfg.Query.Queries(ins)
	q := qs[a.searches%len(qs)]
	a.searches++
	return Step{Action: env.Search(q), Rule: RuleSearch, Index: -1}
}

// offered returns the page's choice (features.ChoiceFromObservation) without the
// sub-pages already read during this visit, and for each action its clickable index.
func (a *Agent) offered(obs env.Observation) (features.ChoiceExample, []int) {
	ex, idx := features.ChoiceFromObservation(obs.Text, obs.Clickables)
	if obs.Page != env.PageItem || len(a.visited) == 0 {
		return ex, idx
	}
	sub := features.ChoiceExample{Instruction: ex.Instruction, State: ex.State, Target: -1}
	var subIdx []int
	for j, ci := range idx {
		if !a.visited[obs.Clickables[ci]] {
			sub.Actions = append(sub.Actions, ex.Actions[j])
			sub.Positions = append(sub.Positions, ex.Positions[j])
			subIdx = append(subIdx, ci)
		}
	}
	if len(sub.Actions) == 0 {
		return ex, idx
	}
	return sub, subIdx
}

// finishOnResults is the budget rule on a results page: the chooser picks greedily
// among the page's products; a page without products (past the last result) goes
// back to search, where the next results page gets its best product bought.
func (a *Agent) finishOnResults(obs env.Observation, ex features.ChoiceExample, idx []int) Step {
	prod := features.ChoiceExample{Instruction: ex.Instruction, State: ex.State, Target: -1}
	var prodIdx []int
	for j, ci := range idx {
		if !features.IsNavigationLabel(obs.Clickables[ci]) {
			prod.Actions = append(prod.Actions, ex.Actions[j])
			prod.Positions = append(prod.Positions, ex.Positions[j])
			prodIdx = append(prodIdx, ci)
		}
	}
	if len(prod.Actions) == 0 {
		return Step{Action: env.Click(env.ClickBackToSearch), Rule: RuleBudget, Forced: true, Index: -1}
	}
	pick, s, err := a.chooser.Choose(clickChoice(obs, prod, prodIdx), true, -1, a.rng)
	if err != nil || pick < 0 || pick >= len(prod.Actions) {
		if err != nil && a.err == nil {
			a.err = err
		}
		return Step{Action: env.Click(obs.Clickables[prodIdx[0]]), Rule: RuleError, Forced: true, Index: -1}
	}
	return Step{Action: env.Click(obs.Clickables[prodIdx[pick]]), Rule: RuleBudget, Forced: true, Example: prod, Index: pick, Scores: s}
}

// clickChoice is the choice among the clickables idx of obs, featurized as ex.
func clickChoice(obs env.Observation, ex features.ChoiceExample, idx []int) Choice {
	acts := make([]string, len(idx))
	for j, ci := range idx {
		acts[j] = env.Click(obs.Clickables[ci])
	}
	return Choice{Obs: obs, Actions: acts, Example: ex}
}

// indexOf returns the position in idx of the clickable c, or -1.
func indexOf(obs env.Observation, idx []int, c string) int {
	for j, ci := range idx {
		if obs.Clickables[ci] == c {
			return j
		}
	}
	return -1
}

// fallbackAction ends an episode when the chooser cannot choose: buy on a product
// page, the first product on a results page, back otherwise.
func fallbackAction(obs env.Observation) string {
	switch obs.Page {
	case env.PageItem:
		return env.Click(env.ClickBuyNow)
	case env.PageResults:
		for _, c := range obs.Clickables {
			if !features.IsNavigationLabel(c) {
				return env.Click(c)
			}
		}
		return env.Click(env.ClickBackToSearch)
	}
	return env.Click(env.ClickPrev)
}

// SearchCandidates returns the queries a search step chooses among: the proposer's
// candidates and the raw instruction (lowercased), without repeats.
func SearchCandidates(q features.QueryProposer, instruction string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range append(q.Queries(instruction), strings.ToLower(strings.TrimSpace(instruction))) {
		if c != "" && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// SampleIndex draws an index from log-probabilities.
func SampleIndex(logp []float64, rng *rand.Rand) int {
	u := rng.Float64()
	var c float64
	for i, lp := range logp {
		c += math.Exp(lp)
		if u < c {
			return i
		}
	}
	return len(logp) - 1
}
