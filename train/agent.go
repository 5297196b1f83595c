package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"shopagent/env"
	"shopagent/features"
	"shopagent/models"
)

// The policy agent: an env.Agent driven by a trained choice policy. It sees only the
// observation: on the search page it searches with a QueryProposer's query (the k-th search
// of an episode uses the k-th candidate, cycling); elsewhere the choice model picks one of
// the page's clickables (greedy or sampled).
//
// Loop avoidance: on a product page the agent does not reopen a sub-page (description,
// features, reviews, attributes) it already read during the same visit; the state after
// "< prev" looks like the first arrival, so a policy that reads on arrival would loop.
//
// Safety caps, so a policy that loops still ends its episode (WebShop's environment caps
// episodes at 100 steps with reward 0; WebShop's IL agent acted within 15 steps):
//   - after MaxItemActions actions on one product (its page and sub-pages) the agent buys it;
//   - after MaxSteps actions in the episode it finishes: it buys on a product page, clicks
//     the best-scoring product on a results page, goes back ("< prev") from a sub-page and
//     searches from the search page.

// Scorer scores choice examples (models.Policy, or a batching front end to one).
type Scorer interface {
	Score(examples []features.ChoiceExample) ([]models.ChoiceScores, error)
}

// AgentConfig configures a PolicyAgent.
type AgentConfig struct {
	// Sample draws actions from the policy's distribution instead of taking the argmax.
	Sample bool
	// Seed seeds the sampling.
	Seed uint64
	// MaxSteps is the agent's own budget of actions per episode (0: DefaultAgentMaxSteps).
	MaxSteps int
	// MaxItemActions caps the actions spent on one product before buying it (0:
	// DefaultMaxItemActions).
	MaxItemActions int
}

// Defaults of AgentConfig.
const (
	DefaultAgentMaxSteps  = 15
	DefaultMaxItemActions = 8
)

// StepRecord is what the agent knew about one of its actions.
type StepRecord struct {
	// LogProb is the policy's log-probability of the action taken (NaN for searches and
	// for actions the policy did not score).
	LogProb float64
	// Value is the value head's estimate of the state (NaN for searches).
	Value float64
	// Forced is true when a safety cap chose the action.
	Forced bool
}

// PolicyAgent is an env.Agent backed by a choice policy. It is not safe for concurrent
// use; give each worker its own (they may share the Scorer).
type PolicyAgent struct {
	scorer Scorer
	query  models.QueryProposer
	cfg    AgentConfig
	rng    *rand.Rand

	instruction string
	steps       int
	searches    int
	itemActions int
	// visited holds the sub-pages (description, features, ...) opened during the current
	// visit of a product page: the agent does not open them again (a policy that reads
	// the description on arrival would otherwise loop item -> description -> item).
	visited map[string]bool
	records []StepRecord
	err     error
}

// NewPolicyAgent returns an agent over a scorer and a query proposer.
func NewPolicyAgent(scorer Scorer, query models.QueryProposer, cfg AgentConfig) *PolicyAgent {
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = DefaultAgentMaxSteps
	}
	if cfg.MaxItemActions <= 0 {
		cfg.MaxItemActions = DefaultMaxItemActions
	}
	if query == nil {
		query = models.KeywordQuery{}
	}
	return &PolicyAgent{scorer: scorer, query: query, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6167656e74)),
		visited: map[string]bool{}}
}

// Reset starts a new episode (Act also detects a new instruction by itself).
func (a *PolicyAgent) Reset() {
	a.instruction, a.steps, a.searches, a.itemActions = "", 0, 0, 0
	clear(a.visited)
	a.records = a.records[:0]
	a.err = nil
}

// Records returns the records of the current episode's actions, in order.
func (a *PolicyAgent) Records() []StepRecord { return a.records }

// Err returns the first scoring error of the episode (the agent then acts by a fallback).
func (a *PolicyAgent) Err() error { return a.err }

// Act implements env.Agent.
func (a *PolicyAgent) Act(obs env.Observation) string {
	if obs.Instruction != a.instruction {
		a.Reset()
		a.instruction = obs.Instruction
	}
	a.steps++
	over := a.steps > a.cfg.MaxSteps
	rec := StepRecord{LogProb: math.NaN(), Value: math.NaN()}
	defer func() { a.records = append(a.records, rec) }()

	switch obs.Page {
	case env.PageSearch:
		qs := a.query.Queries(obs.Instruction)
		q := qs[a.searches%len(qs)]
		a.searches++
		a.itemActions = 0
		clear(a.visited)
		return env.Search(q)
	case env.PageItem, env.PageDescription, env.PageFeatures, env.PageReviews, env.PageAttributes:
		a.itemActions++
		if c := capAction(obs.Page, over, a.itemActions, a.cfg.MaxItemActions); c != "" {
			rec.Forced = true
			return env.Click(c)
		}
	case env.PageResults:
		a.itemActions = 0
		clear(a.visited)
	}
	ex, idx := features.ChoiceFromObservation(obs.Text, obs.Clickables)
	if len(ex.Actions) == 0 {
		rec.Forced = true
		return env.Click(env.ClickBackToSearch)
	}
	scores, err := a.scorer.Score([]features.ChoiceExample{ex})
	if err != nil {
		if a.err == nil {
			a.err = err
		}
		rec.Forced = true
		return fallbackAction(obs)
	}
	s := scores[0]
	rec.Value = s.Value
	if obs.Page == env.PageItem && len(a.visited) > 0 {
		// Sub-pages already read during this visit are not offered again.
		logits := append([]float64(nil), s.Logits...)
		left := 0
		for j, ci := range idx {
			if a.visited[obs.Clickables[ci]] {
				logits[j] = math.Inf(-1)
			} else {
				left++
			}
		}
		if left > 0 {
			s = models.ChoiceScores{Logits: logits, LogProbs: models.LogSoftmax(logits), Value: s.Value}
		}
	}
	var pick int
	switch {
	case over && obs.Page == env.PageResults:
		// Budget spent: the best-scoring product.
		pick = -1
		for j, ci := range idx {
			if c := obs.Clickables[ci]; !features.IsNavigationLabel(c) && (pick < 0 || s.Logits[j] > s.Logits[pick]) {
				pick = j
			}
		}
		rec.Forced = true
		if pick < 0 {
			// A page past the last result has no product: search again (paging on would
			// never end the episode); the next results page gets its best product bought.
			pick = s.Best()
			for j, ci := range idx {
				if obs.Clickables[ci] == env.ClickBackToSearch {
					pick = j
				}
			}
		}
	case a.cfg.Sample:
		pick = sampleIndex(s.LogProbs, a.rng)
	default:
		pick = s.Best()
	}
	rec.LogProb = s.LogProbs[pick]
	c := obs.Clickables[idx[pick]]
	if obs.Page == env.PageItem {
		switch c {
		case env.ClickDescription, env.ClickFeatures, env.ClickReviews, env.ClickAttributes:
			a.visited[c] = true
		}
	}
	return env.Click(c)
}

// capAction is the safety caps' click on a product's page or sub-page ("" when the
// policy chooses): over the episode budget, buy on the item page and go back from a
// sub-page; past maxItem actions on one product (itemActions), buy.
func capAction(page env.PageKind, over bool, itemActions, maxItem int) string {
	switch {
	case page == env.PageItem && (over || itemActions > maxItem):
		return env.ClickBuyNow
	case page != env.PageItem && over:
		return env.ClickPrev
	}
	return ""
}

// fallbackAction is the action when the policy cannot score: buy on a product page, the
// first product on a results page, back otherwise.
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

// sampleIndex draws an index from log-probabilities.
func sampleIndex(logp []float64, rng *rand.Rand) int {
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

// BatchScorer batches the Score calls of several goroutines (one per evaluation worker)
// into one forward pass: a call waits up to Window for the calls of other workers, then one
// batched forward scores them all. With W workers that mostly wait on the model, forwards
// run at batch size about W, which on CPU gives several times the throughput of batch 1.
type BatchScorer struct {
	scorer   Scorer
	window   time.Duration
	maxBatch int

	mu      sync.Mutex
	pending []*scoreRequest
	timer   *time.Timer
	running bool
}

type scoreRequest struct {
	examples []features.ChoiceExample
	done     chan struct{}
	scores   []models.ChoiceScores
	err      error
}

// NewBatchScorer returns a batching front end to scorer. maxBatch states trigger a forward
// at once (0: 32); window is the longest a call waits for others (0: 2 ms).
func NewBatchScorer(scorer Scorer, maxBatch int, window time.Duration) *BatchScorer {
	if maxBatch <= 0 {
		maxBatch = 32
	}
	if window <= 0 {
		window = 2 * time.Millisecond
	}
	return &BatchScorer{scorer: scorer, window: window, maxBatch: maxBatch}
}

// Score implements Scorer.
func (b *BatchScorer) Score(examples []features.ChoiceExample) ([]models.ChoiceScores, error) {
	r := &scoreRequest{examples: examples, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	n := 0
	for _, p := range b.pending {
		n += len(p.examples)
	}
	switch {
	case n >= b.maxBatch:
		b.flushLocked()
	case b.timer == nil:
		b.timer = time.AfterFunc(b.window, func() {
			b.mu.Lock()
			b.timer = nil
			b.flushLocked()
			b.mu.Unlock()
		})
	}
	b.mu.Unlock()
	<-r.done
	return r.scores, r.err
}

// flushLocked runs the pending requests in a new goroutine; b.mu is held.
func (b *BatchScorer) flushLocked() {
	if len(b.pending) == 0 {
		return
	}
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	reqs := b.pending
	b.pending = nil
	go func() {
		var all []features.ChoiceExample
		for _, r := range reqs {
			all = append(all, r.examples...)
		}
		scores, err := b.scorer.Score(all)
		if err == nil && len(scores) != len(all) {
			err = fmt.Errorf("train: batch scorer got %d scores for %d states", len(scores), len(all))
		}
		off := 0
		for _, r := range reqs {
			if err != nil {
				r.err = err
			} else {
				r.scores = scores[off : off+len(r.examples)]
			}
			off += len(r.examples)
			close(r.done)
		}
	}()
}
