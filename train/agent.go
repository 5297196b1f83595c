package train

import (
	"fmt"
	"sync"
	"time"

	"shopagent/agent"
	"shopagent/features"
)

// The policy agent is agent.Agent (the one decision core of evaluation, rollouts,
// generation and the HTTP driver) over a policy scored in process. See package agent for
// its rules: the query proposer's searches, sub-pages not reopened during a visit, and the
// safety caps (buy after MaxItemActions actions on one product, finish after MaxSteps).

// Scorer scores choice examples (models.Policy, or a batching front end to one).
type Scorer = agent.Scorer

// AgentConfig configures a PolicyAgent (agent.Config without the query, which the
// callers give separately).
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

// Defaults of AgentConfig (agent's).
const (
	DefaultAgentMaxSteps  = agent.DefaultMaxSteps
	DefaultMaxItemActions = agent.DefaultMaxItemActions
)

// NewPolicyAgent returns the decision core over a policy in process.
func NewPolicyAgent(scorer Scorer, query features.QueryProposer, cfg AgentConfig) *agent.Agent {
	return agent.New(agent.PolicyChooser{Scorer: scorer}, agent.Config{Sample: cfg.Sample, Seed: cfg.Seed,
		MaxSteps: cfg.MaxSteps, MaxItemActions: cfg.MaxItemActions, Query: query})
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
	scores   []features.ChoiceScores
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
func (b *BatchScorer) Score(examples []features.ChoiceExample) ([]features.ChoiceScores, error) {
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
