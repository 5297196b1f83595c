package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"shopagent/env"
	"shopagent/features"
	"shopagent/models"
)

// Policy gradient: an actor-critic with Monte Carlo returns, after WebShop's RL agent (Yao
// et al. 2022, baseline_models/train_rl.py), fine-tuning an imitation policy in the
// simulator. It differs from WebShop's, which is an n-step advantage actor-critic (4
// environments, an update every 8 steps with returns bootstrapped from the value of the
// state reached), weights w_pg = w_td = w_en = 1 and learning rate 1e-5, and whose "IL"
// term is -mean(log pi) over all valid actions rather than imitation of demonstrations;
// see docs/RL.md.
//
// Each step rolls out EpisodesPerStep episodes on random goals with the current parameters
// (sampling), then makes one update on all the choices of those episodes:
//
//	R_t   = r_t + gamma R_{t+1}      (R_T = V(s_T) when the step cap cut the episode, else 0)
//	A_t   = R_t - V(s_t)             (V from the rollout, a constant)
//	loss  = w_pg * -mean(A_t log pi(a_t|s_t))
//	      + w_td * mean((V(s_t) - R_t)^2)
//	      + w_en * -mean(H(pi(.|s_t)))
//	      + w_il * cross-entropy on a batch of demonstrations (optional)
//
// with global-norm gradient clipping at 10 (WebShop's --clip 10). Returns are discounted per
// decision of the choice model (search steps are decisions with SearchChoice). The rollout
// of step s is seeded from the job's seed and s, so a resumed run replays the rollouts an
// uninterrupted run would make, given the same parameters.

// PGJobName names policy-gradient checkpoints.
const PGJobName = "pg"

// PGConfig holds the hyperparameters of PG, with WebShop's names.
type PGConfig struct {
	// Gamma is the discount (WebShop's --gamma, 0.9).
	Gamma float64
	// ValueCoef weights the value loss (WebShop's w_td, 1 there).
	ValueCoef float64
	// EntropyCoef weights the entropy bonus (WebShop's w_en, 1 there).
	EntropyCoef float64
	// ILCoef weights the cross-entropy of demonstrated actions (0: off). Not WebShop's
	// w_il, whose term is -mean(log pi) over all valid actions.
	ILCoef float64
	// EpisodesPerStep is the number of rollout episodes per update.
	EpisodesPerStep int
	// MaxStates caps the states of an update (a random subset when the rollouts have
	// more; 0: 64, the largest batch bucket).
	MaxStates int
}

// DefaultPGConfig returns the defaults: gamma 0.9, value coef 0.5, entropy coef 0.01, no
// IL term, 8 episodes per step, at most 64 states per update.
func DefaultPGConfig() PGConfig {
	return PGConfig{Gamma: 0.9, ValueCoef: 0.5, EntropyCoef: 0.01, EpisodesPerStep: 8, MaxStates: 64}
}

// PGJob is the policy-gradient job (a RolloutJob).
type PGJob struct {
	cfg     features.PolicyConfig
	tok     *features.Tokenizer
	hp      PGConfig
	shop    *env.Shop
	goals   []env.Goal
	rollout RolloutConfig
	seed    uint64
	il      *ILJob
	buckets features.BucketSizes

	scorer Scorer
	host   map[string]float64
}

// NewPGJob returns a PG job over the shop's goals. il, when non-nil, supplies the
// demonstration batches of the IL term (hp.ILCoef > 0).
func NewPGJob(cfg features.PolicyConfig, tok *features.Tokenizer, shop *env.Shop, goals []env.Goal, hp PGConfig, rollout RolloutConfig, il *ILJob, seed uint64) (*PGJob, error) {
	if len(goals) == 0 {
		return nil, fmt.Errorf("%w: no goals to roll out on", ErrNoData)
	}
	if hp.EpisodesPerStep <= 0 {
		return nil, fmt.Errorf("train: pg: episodes per step must be positive, got %d", hp.EpisodesPerStep)
	}
	if !(hp.Gamma >= 0 && hp.Gamma <= 1) {
		return nil, fmt.Errorf("train: pg: gamma %g not in [0, 1]", hp.Gamma)
	}
	if hp.ILCoef > 0 && il == nil {
		return nil, fmt.Errorf("train: pg: an IL coefficient needs demonstrations")
	}
	if hp.ILCoef <= 0 {
		il = nil
	}
	if hp.MaxStates <= 0 {
		hp.MaxStates = 64
	}
	return &PGJob{cfg: cfg, tok: tok, hp: hp, shop: shop, goals: goals, rollout: rollout, seed: seed, il: il,
		buckets: features.DefaultBuckets(cfg)}, nil
}

// Name implements Job.
func (j *PGJob) Name() string { return PGJobName }

// BindScorer implements RolloutJob.
func (j *PGJob) BindScorer(s Scorer) { j.scorer = s }

// HostMetrics implements HostMetricsJob: the rollouts' mean reward, success rate, mean
// steps and number of trained states.
func (j *PGJob) HostMetrics() map[string]float64 { return j.host }

// MetricNames implements Job.
func (j *PGJob) MetricNames() []string {
	names := []string{"pg_loss", "value_loss", "entropy"}
	if j.il != nil {
		names = append(names, "il_loss")
	}
	return names
}

// Batch implements Job: the rollouts of step, made with the current parameters.
func (j *PGJob) Batch(step int64) ([]*tensors.Tensor, int, error) {
	if j.scorer == nil {
		return nil, 0, fmt.Errorf("train: pg: no scorer bound (run the job with train.Run)")
	}
	goals := rolloutGoals(j.seed, step, j.hp.EpisodesPerStep, len(j.goals))
	b, err := CollectRollouts(j.shop, j.goals, goals, j.scorer, nil, j.rollout, j.seed^uint64(step)<<20)
	if err != nil {
		return nil, 0, err
	}
	rows := rolloutRows(j.tok, j.cfg, b, j.hp.Gamma, 1)
	if len(rows) > j.hp.MaxStates {
		rng := rand.New(rand.NewPCG(j.seed, uint64(step)+0x7067))
		rng.Shuffle(len(rows), func(a, c int) { rows[a], rows[c] = rows[c], rows[a] })
		rows = rows[:j.hp.MaxStates]
	}
	j.host = rolloutMetrics(b, len(rows))
	ts, err := rlBatchTensors(rows, j.buckets, false)
	if err != nil {
		return nil, 0, err
	}
	if j.il != nil {
		more, _, err := j.il.Batch(step)
		if err != nil {
			return nil, 0, err
		}
		ts = append(ts, more...)
	}
	return ts, len(rows), nil
}

// Loss implements Job.
func (j *PGJob) Loss(ctx *context.Context, inputs []*graph.Node) (*graph.Node, []*graph.Node) {
	n := models.NumPolicyInputs
	logits, value := models.PolicyGraph(ctx, j.cfg, models.PolicyInputsFrom(inputs), false)
	loss, metrics := PGLoss(logits, value, inputs[n], inputs[n+1], inputs[n+3], inputs[n+4], j.hp)
	if j.il != nil {
		il := inputs[n+5:]
		ilLogits, _ := models.PolicyGraph(ctx, j.cfg, models.PolicyInputsFrom(il), false)
		ilLoss, _ := ChoiceLoss(ilLogits, il[n], il[n+1])
		loss = graph.Add(loss, graph.MulScalar(ilLoss, j.hp.ILCoef))
		metrics = append(metrics, ilLoss)
	}
	return loss, metrics
}

// PGLoss is the actor-critic loss of logits [B, A], values [B], actions [B] (int32), valid
// [B] (1 for real rows), advantages [B] and returns [B]: -mean(A log pi(a)) + ValueCoef *
// mean((V - R)^2) - EntropyCoef * mean(H). The advantages are constants. It returns the
// loss and [pg_loss, value_loss, entropy].
func PGLoss(logits, values, actions, valid, adv, returns *graph.Node, hp PGConfig) (*graph.Node, []*graph.Node) {
	logp := models.ChoiceLogProbs(logits)
	lpa := pickLogProb(logp, actions)
	pg := graph.Neg(maskedMean(graph.Mul(graph.StopGradient(adv), lpa), valid))
	vl := maskedMean(graph.Square(graph.Sub(values, graph.StopGradient(returns))), valid)
	ent := maskedMean(entropyOf(logp), valid)
	loss := graph.Add(pg, graph.MulScalar(vl, hp.ValueCoef))
	loss = graph.Sub(loss, graph.MulScalar(ent, hp.EntropyCoef))
	return loss, []*graph.Node{pg, vl, ent}
}
