package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"shopagent/agent"
	"shopagent/env"
	"shopagent/features"
	"shopagent/models"
)

// Rollouts for on-policy reinforcement learning (pg, ppo) and for generating demonstrations.
//
// N episodes run in parallel goroutines, one env.Env each over a shared env.Shop; their
// forward passes are batched together (BatchScorer). The agent behaves like PolicyAgent
// (the same safety caps: buy after MaxItemActions actions on one product, finish after
// MaxSteps actions; sub-pages already read during a visit are not offered again) and
// records, for every state it scored, the state's featurization (a features.ChoiceExample),
// the index of the action taken, its log-probability, the whole log-probability vector,
// the value, optionally the frozen reference policy's log-probabilities, and the reward.
//
// Search steps: with RolloutConfig.SearchChoice the search page is a choice of the model
// too, among the query proposer's candidates and the raw instruction, whose action texts
// are "search[<query>]". Without it the agent searches with the proposer's k-th candidate
// (as PolicyAgent, which `shopagent eval --policy` uses) and the step is not trained.
//
// Rewards are WebShop's: 0 on every step, the purchase's reward on the last one.

// RolloutConfig configures CollectRollouts.
type RolloutConfig struct {
	// Workers is the number of episodes played at the same time (0: all of them).
	Workers int
	// Greedy takes the argmax instead of sampling from the policy (RL samples).
	Greedy bool
	// SearchChoice lets the choice model pick the search query (see the file comment).
	SearchChoice bool
	// Query proposes the searches (nil: features.KeywordQuery{}).
	Query features.QueryProposer `json:"-"`
	// MaxSteps is the environment's step cap (0: 100, WebShop's).
	MaxSteps int
	// AgentMaxSteps and MaxItemActions are the agent's safety caps (0: PolicyAgent's
	// defaults, 15 and 8).
	AgentMaxSteps, MaxItemActions int
	// ObsMode is the observation mode (empty: text_rich).
	ObsMode env.ObsMode
	// Record keeps the environment's transitions in each episode (for trajectory files).
	Record bool
}

// RolloutStep is one action of a rollout episode.
type RolloutStep struct {
	// Example is the state's featurization and the actions offered (nil Actions for a
	// step the model did not score).
	Example features.ChoiceExample
	// Action is the index of the action taken among Example.Actions (-1 when unscored).
	Action int
	// LogProb is log pi(Action | state) under the acting policy; LogProbs is the vector
	// over Example.Actions; Value the value head's estimate of the state.
	LogProb  float64
	LogProbs []float64
	Value    float64
	// RefLogProbs is the frozen reference policy's log-probability vector (when a
	// reference scorer was given).
	RefLogProbs []float64
	// Reward is the environment's reward for the action.
	Reward float64
	// Trainable is true when the policy chose the action (not a safety cap, not a fixed
	// search) among at most the largest action bucket's actions.
	Trainable bool
	// Forced is true when a fixed rule of the agent took the action.
	Forced bool
	// Search marks search steps.
	Search bool
}

// RolloutEpisode is one episode of a rollout batch.
type RolloutEpisode struct {
	// GoalIndex is the index of the goal in the goals given to CollectRollouts.
	GoalIndex int
	// Episode is the environment's account (reward, steps, purchase, and transitions when
	// recording).
	Episode env.Episode
	// Steps are the agent's actions, in order.
	Steps []RolloutStep
	// Bootstrap is the value of the state the episode was cut in when the environment's
	// step cap truncated it (0 when the episode ended with a purchase).
	Bootstrap float64
}

// RolloutBatch is the outcome of CollectRollouts.
type RolloutBatch struct {
	Episodes []RolloutEpisode
	// Summary is WebShop's summary of the episodes (score, success rate, steps).
	Summary env.Summary
}

// CollectRollouts plays one episode per goal (goalIdx indexes goals) with the policy behind
// scorer, episodes seeded from seed and their position. ref, when non-nil, also scores
// every state the policy scored (the frozen reference's log-probabilities).
func CollectRollouts(shop *env.Shop, goals []env.Goal, goalIdx []int, scorer, ref Scorer, cfg RolloutConfig, seed uint64) (*RolloutBatch, error) {
	if scorer == nil {
		return nil, fmt.Errorf("train: rollouts: no policy")
	}
	for _, g := range goalIdx {
		if g < 0 || g >= len(goals) {
			return nil, fmt.Errorf("train: rollouts: goal %d out of range [0, %d)", g, len(goals))
		}
	}
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = 100
	}
	if cfg.ObsMode == "" {
		cfg.ObsMode = env.ObsTextRich
	}
	workers := cfg.Workers
	if workers <= 0 || workers > len(goalIdx) {
		workers = max(1, len(goalIdx))
	}
	if workers > 1 {
		scorer = NewBatchScorer(scorer, workers, 0)
		if ref != nil {
			ref = NewBatchScorer(ref, workers, 0)
		}
	}
	out := &RolloutBatch{Episodes: make([]RolloutEpisode, len(goalIdx))}
	errs := make([]error, len(goalIdx))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := shop.NewEnv(env.Config{Mode: cfg.ObsMode, MaxSteps: cfg.MaxSteps})
			for i := range next {
				a := newRolloutAgent(scorer, ref, cfg, seed*0x9e3779b97f4a7c15+uint64(i)+1)
				ep, err := a.play(e, goals[goalIdx[i]], cfg.Record)
				ep.GoalIndex = goalIdx[i]
				out.Episodes[i], errs[i] = ep, err
			}
		}()
	}
	for i := range goalIdx {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	eps := make([]env.Episode, len(out.Episodes))
	for i, ep := range out.Episodes {
		eps[i] = ep.Episode
	}
	out.Summary = env.Summarize(eps)
	return out, nil
}

// rolloutAgent plays one episode with the decision core and records its steps.
type rolloutAgent struct {
	core        *agent.Agent
	scorer, ref Scorer
}

func newRolloutAgent(scorer, ref Scorer, cfg RolloutConfig, seed uint64) *rolloutAgent {
	return &rolloutAgent{scorer: scorer, ref: ref, core: agent.New(agent.PolicyChooser{Scorer: scorer}, agent.Config{
		Sample: !cfg.Greedy, Seed: seed, MaxSteps: cfg.AgentMaxSteps, MaxItemActions: cfg.MaxItemActions,
		Query: cfg.Query, SearchChoice: cfg.SearchChoice, ScoreForced: true})}
}

// play runs the episode to its end (purchase or the environment's step cap).
func (a *rolloutAgent) play(e *env.Env, g env.Goal, record bool) (RolloutEpisode, error) {
	obs := e.Reset(g)
	a.core.Reset()
	ep := RolloutEpisode{Episode: env.Episode{Goal: g}}
	var rewards []float64
	for {
		st := a.core.Next(obs)
		if err := a.core.Err(); err != nil {
			return ep, fmt.Errorf("train: rollout: %w", err)
		}
		next, r, done, info := e.Step(st.Action)
		rewards = append(rewards, r)
		if record {
			ep.Episode.Transitions = append(ep.Episode.Transitions, env.Transition{Obs: obs, Action: st.Action, Reward: r, Valid: info.Valid})
		}
		obs = next
		ep.Episode.Steps = info.Steps
		if done {
			ep.Episode.Reward, ep.Episode.Purchase, ep.Episode.Truncated = r, info.Purchase, info.Truncated
			break
		}
	}
	var refEx []features.ChoiceExample
	var refAt []int
	for k, st := range a.core.Steps() {
		rs := RolloutStep{Example: st.Example, Action: st.Index, LogProb: st.LogProb(), Value: st.Value(), Reward: rewards[k],
			Search: st.Page == env.PageSearch, Forced: st.Forced}
		if st.Index >= 0 {
			rs.LogProbs = st.Scores.LogProbs
			rs.Trainable = st.Rule == agent.RulePolicy && len(st.Example.Actions) <= DefaultTrainMaxActions
			if a.ref != nil {
				refEx = append(refEx, st.Example)
				refAt = append(refAt, k)
			}
		}
		ep.Steps = append(ep.Steps, rs)
	}
	if len(refEx) > 0 {
		rs, err := a.ref.Score(refEx)
		if err != nil {
			return ep, fmt.Errorf("train: rollout reference: %w", err)
		}
		for j, k := range refAt {
			ep.Steps[k].RefLogProbs = rs[j].LogProbs
		}
	}
	if ep.Episode.Truncated {
		// Cut by the step cap: bootstrap from the value of the state it was cut in.
		if ex, _ := features.ChoiceFromObservation(obs.Text, obs.Clickables); len(ex.Actions) > 0 {
			s, err := a.scorer.Score([]features.ChoiceExample{ex})
			if err != nil {
				return ep, fmt.Errorf("train: rollout bootstrap value: %w", err)
			}
			ep.Bootstrap = s[0].Value
		}
	}
	return ep, nil
}

// DiscountedReturns returns R_t = r_t + gamma R_{t+1} with R_T = bootstrap (the value of
// the state after the last step, 0 when the episode ended).
func DiscountedReturns(rewards []float64, bootstrap, gamma float64) []float64 {
	out := make([]float64, len(rewards))
	r := bootstrap
	for t := len(rewards) - 1; t >= 0; t-- {
		r = rewards[t] + gamma*r
		out[t] = r
	}
	return out
}

// GAE returns generalised advantage estimates (Schulman et al. 2016): delta_t = r_t +
// gamma V_{t+1} - V_t, A_t = delta_t + gamma lambda A_{t+1}, with V_T = bootstrap. With
// lambda 1 it is the discounted return minus the value, R_t - V_t.
func GAE(rewards, values []float64, bootstrap, gamma, lambda float64) []float64 {
	out := make([]float64, len(rewards))
	var adv float64
	for t := len(rewards) - 1; t >= 0; t-- {
		next := bootstrap
		if t+1 < len(rewards) {
			next = values[t+1]
		}
		delta := rewards[t] + gamma*next - values[t]
		adv = delta + gamma*lambda*adv
		out[t] = adv
	}
	return out
}

// scoredSteps returns the steps of an episode that have a value (the choice model scored
// them), with the rewards of unscored steps (fixed searches, reward 0) folded into the next
// scored step. Returns are discounted per decision of the choice model.
func scoredSteps(ep RolloutEpisode) (steps []RolloutStep, rewards, values []float64) {
	var carry float64
	for _, s := range ep.Steps {
		if math.IsNaN(s.Value) {
			carry += s.Reward
			continue
		}
		steps = append(steps, s)
		rewards = append(rewards, s.Reward+carry)
		values = append(values, s.Value)
		carry = 0
	}
	if len(rewards) > 0 {
		rewards[len(rewards)-1] += carry
	}
	return steps, rewards, values
}

// rlRow is one training row of an on-policy batch: a trainable step with its targets.
type rlRow struct {
	enc       features.EncodedChoice
	action    int
	oldLogp   float64
	adv, ret  float64
	refLogp   []float64
	oldValue  float64
	episodeID int
}

// rolloutRows turns a rollout batch into training rows: advantages by GAE(gamma, lambda)
// (lambda 1: R - V), returns = advantage + value.
func rolloutRows(tok *features.Tokenizer, cfg features.PolicyConfig, b *RolloutBatch, gamma, lambda float64) []rlRow {
	var rows []rlRow
	for e, ep := range b.Episodes {
		steps, rewards, values := scoredSteps(ep)
		adv := GAE(rewards, values, ep.Bootstrap, gamma, lambda)
		for t, s := range steps {
			if !s.Trainable {
				continue
			}
			ex := s.Example
			ex.Target = s.Action
			rows = append(rows, rlRow{enc: features.EncodeChoice(tok, cfg, ex), action: s.Action, oldLogp: s.LogProb,
				adv: adv[t], ret: adv[t] + values[t], refLogp: s.RefLogProbs, oldValue: values[t], episodeID: e})
		}
	}
	return rows
}

// rlBatchTensors pads rows into policy inputs plus, in order: actions [B] int32, valid [B],
// old log-probs [B], advantages [B], returns [B] and, withRef, the reference log-probs
// [B, A] (0 for padding). An empty rows gives one padding state (valid 0).
func rlBatchTensors(rows []rlRow, buckets features.BucketSizes, withRef bool) ([]*tensors.Tensor, error) {
	encs := make([]features.EncodedChoice, len(rows))
	for i, r := range rows {
		encs[i] = r.enc
	}
	if len(encs) == 0 {
		encs = []features.EncodedChoice{{State: []int32{0}, StateTypes: []int32{0}, Actions: [][]int32{{0}},
			ActionContent: [][]bool{{false}}, Positions: []int32{0}, Target: -1}}
	}
	size := 0
	if len(encs) > buckets.Batch[len(buckets.Batch)-1] {
		size = (len(encs) + 31) / 32 * 32
	}
	pb, err := features.NewPolicyBatch(encs, buckets, size)
	if err != nil {
		return nil, err
	}
	ts := models.BatchTensors(pb)
	act := make([]int32, pb.B)
	valid := make([]float32, pb.B)
	old := make([]float32, pb.B)
	adv := make([]float32, pb.B)
	ret := make([]float32, pb.B)
	ref := make([]float32, pb.B*pb.A)
	for i, r := range rows {
		act[i], valid[i] = int32(r.action), 1
		old[i], adv[i], ret[i] = float32(r.oldLogp), float32(r.adv), float32(r.ret)
		for j, lp := range r.refLogp {
			ref[i*pb.A+j] = float32(lp)
		}
	}
	ts = append(ts, tensors.FromFlatDataAndDimensions(act, pb.B), tensors.FromFlatDataAndDimensions(valid, pb.B),
		tensors.FromFlatDataAndDimensions(old, pb.B), tensors.FromFlatDataAndDimensions(adv, pb.B),
		tensors.FromFlatDataAndDimensions(ret, pb.B))
	if withRef {
		ts = append(ts, tensors.FromFlatDataAndDimensions(ref, pb.B, pb.A))
	}
	return ts, nil
}

// rolloutGoals draws n goal indices in [0, numGoals) for rollout r.
func rolloutGoals(seed uint64, r int64, n, numGoals int) []int {
	rng := rand.New(rand.NewPCG(seed, uint64(r)+0x676f616c))
	out := make([]int, n)
	for i := range out {
		out[i] = rng.IntN(numGoals)
	}
	return out
}

// rolloutMetrics are the host metrics of a rollout batch.
func rolloutMetrics(b *RolloutBatch, rows int) map[string]float64 {
	return map[string]float64{
		"rollout_reward":  b.Summary.Score / 100,
		"rollout_success": b.Summary.SuccessRate / 100,
		"rollout_steps":   b.Summary.MeanSteps,
		"rollout_states":  float64(rows),
	}
}

// entropyOf returns the entropy of each row of log-probabilities [B, A] (padded slots,
// with probability 0, add 0).
func entropyOf(logp *graph.Node) *graph.Node {
	p := graph.Exp(logp)
	return graph.Neg(graph.ReduceSum(graph.Mul(p, logp), -1))
}

// pickLogProb returns logp[b, actions[b]] for logp [B, A] and actions [B] int32.
func pickLogProb(logp, actions *graph.Node) *graph.Node {
	a := logp.Shape().Dimensions[1]
	return graph.ReduceSum(graph.Mul(logp, graph.OneHot(actions, a, logp.DType())), -1)
}

// maskedMean returns sum(x * valid) / max(1, sum(valid)).
func maskedMean(x, valid *graph.Node) *graph.Node {
	g := x.Graph()
	n := graph.Max(graph.ReduceAllSum(valid), graph.ScalarOne(g, valid.DType()))
	return graph.Div(graph.ReduceAllSum(graph.Mul(x, valid)), n)
}

// ContextScorer scores choice examples with the policy variables of a live training
// context (the parameters as they are now), without dropout. It is what on-policy jobs
// roll out with. It is safe for concurrent use, but not while the context is being
// updated.
type ContextScorer struct {
	cfg     features.PolicyConfig
	tok     *features.Tokenizer
	buckets features.BucketSizes
	exec    *context.Exec
}

// NewContextScorer compiles the policy's forward pass over ctx's variables.
func NewContextScorer(backend backends.Backend, ctx *context.Context, cfg features.PolicyConfig, tok *features.Tokenizer) (*ContextScorer, error) {
	exec, err := context.NewExec(backend, ctx, func(c *context.Context, in []*graph.Node) []*graph.Node {
		logits, value := models.PolicyGraph(c, cfg, models.PolicyInputsFrom(in), false)
		return []*graph.Node{logits, value}
	})
	if err != nil {
		return nil, fmt.Errorf("train: policy forward: %w", err)
	}
	exec.SetMaxCache(-1)
	return &ContextScorer{cfg: cfg, tok: tok, buckets: features.DefaultBuckets(cfg), exec: exec}, nil
}

// Close releases the compiled executables.
func (s *ContextScorer) Close() { s.exec.Finalize() }

// Score implements Scorer (as models.Policy.Score: long action lists are scored in chunks
// and the log-softmax is taken over all of a state's actions).
func (s *ContextScorer) Score(examples []features.ChoiceExample) ([]features.ChoiceScores, error) {
	return models.ScoreChoices(examples, s.tok, s.cfg, s.buckets, s.exec.Exec)
}
