package train

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"shopagent/env"
	"shopagent/features"
	"shopagent/models"
)

// PPO: proximal policy optimisation (Schulman et al. 2017) with a KL penalty to the frozen
// imitation policy (as in RL fine-tuning of language models, Ziegler et al. 2019).
//
// An iteration rolls out EpisodesPerRollout episodes on random goals with the current
// parameters (sampling), recording each choice's log-probability (pi_old), value and the
// frozen reference's log-probability vector. Advantages are GAE(gamma, lambda) (lambda 1:
// A = R - V), normalised over the rollout when NormAdv; value targets R = A + V_old. Then
// Epochs passes over the rollout's choices, each cut into Minibatches minibatches: one
// optimizer update per minibatch, Epochs x Minibatches updates per iteration, on
//
//	r_t      = pi(a_t|s_t) / pi_old(a_t|s_t)
//	L_clip   = -mean(min(r_t A_t, clip(r_t, 1-epsilon, 1+epsilon) A_t))
//	L_value  = mean((V(s_t) - R_t)^2)
//	KL       = mean over states of sum_a pi(a|s) (log pi(a|s) - log pi_ref(a|s))
//	loss     = L_clip + c1 L_value - c2 H(pi) + beta KL
//
// The KL term is a loss term by default (a penalty on the full distribution, exact, with a
// gradient); with KLInReward it is InstructGPT's instead: each step's reward becomes
// r_t - beta (log pi_old(a_t|s_t) - log pi_ref(a_t|s_t)) (a sampled estimate of the KL, on
// the action taken) before the advantages, and the loss has no KL term (kl_ref is still
// reported).
//
// The update's forward pass has no dropout, so pi at the first minibatch equals pi_old.
// Step s belongs to iteration s / (Epochs x Minibatches); an iteration's rollout is seeded
// from the job's seed and its index: a run resumed at an iteration boundary replays what an
// uninterrupted run would have done; one resumed inside an iteration re-collects that
// iteration's rollout with the restored parameters (same seed) and finishes its updates.

// PPOJobName names PPO checkpoints.
const PPOJobName = "ppo"

// PPOConfig holds the hyperparameters of PPO, with the papers' names.
type PPOConfig struct {
	// Epsilon is the clipping range of the probability ratio (0.2).
	Epsilon float64
	// Gamma is the discount (0.9, WebShop's) and Lambda GAE's lambda (1: A = R - V).
	Gamma, Lambda float64
	// ValueCoef (c1) weights the value loss; EntropyCoef (c2) the entropy bonus.
	ValueCoef, EntropyCoef float64
	// KLCoef (beta) weights the KL divergence to the frozen reference policy (0: off, and
	// no reference forward passes).
	KLCoef float64
	// KLInReward applies beta as InstructGPT does (Ouyang et al. 2022; Ziegler et al.
	// 2019): a per-step penalty on the rewards, r_t - beta (log pi_old(a_t|s_t) - log
	// pi_ref(a_t|s_t)), before the advantages, instead of the loss term beta KL.
	KLInReward bool
	// Epochs (K) is the number of passes over each rollout; Minibatches the number of
	// minibatches per pass.
	Epochs, Minibatches int
	// EpisodesPerRollout is the number of episodes of each rollout.
	EpisodesPerRollout int
	// NormAdv normalises the advantages over the rollout (mean 0, standard deviation 1).
	NormAdv bool
}

// DefaultPPOConfig returns the defaults: epsilon 0.2, gamma 0.9, lambda 1, c1 0.5, c2 0.01,
// beta 0.05, 4 epochs of 2 minibatches, 8 episodes per rollout, normalised advantages.
func DefaultPPOConfig() PPOConfig {
	return PPOConfig{Epsilon: 0.2, Gamma: 0.9, Lambda: 1, ValueCoef: 0.5, EntropyCoef: 0.01, KLCoef: 0.05,
		Epochs: 4, Minibatches: 2, EpisodesPerRollout: 8, NormAdv: true}
}

// PPOJob is the PPO job (a RolloutJob).
type PPOJob struct {
	cfg     features.PolicyConfig
	tok     *features.Tokenizer
	hp      PPOConfig
	shop    *env.Shop
	goals   []env.Goal
	rollout RolloutConfig
	ref     Scorer
	seed    uint64
	buckets features.BucketSizes

	scorer Scorer
	iter   int64 // the iteration whose rollout rows holds
	rows   []rlRow
	stats  map[string]float64
	host   map[string]float64
}

// NewPPOJob returns a PPO job over the shop's goals; ref is the frozen reference policy
// (required when hp.KLCoef > 0).
func NewPPOJob(cfg features.PolicyConfig, tok *features.Tokenizer, shop *env.Shop, goals []env.Goal, hp PPOConfig, rollout RolloutConfig, ref Scorer, seed uint64) (*PPOJob, error) {
	switch {
	case len(goals) == 0:
		return nil, fmt.Errorf("%w: no goals to roll out on", ErrNoData)
	case hp.Epochs <= 0 || hp.Minibatches <= 0 || hp.EpisodesPerRollout <= 0:
		return nil, fmt.Errorf("train: ppo: epochs, minibatches and episodes per rollout must be positive")
	case !(hp.Epsilon > 0):
		return nil, fmt.Errorf("train: ppo: epsilon must be positive, got %g", hp.Epsilon)
	case !(hp.Gamma >= 0 && hp.Gamma <= 1) || !(hp.Lambda >= 0 && hp.Lambda <= 1):
		return nil, fmt.Errorf("train: ppo: gamma and lambda must be in [0, 1]")
	case hp.KLCoef > 0 && ref == nil:
		return nil, fmt.Errorf("train: ppo: a KL coefficient needs a reference policy")
	}
	if hp.KLCoef <= 0 {
		ref = nil
	}
	return &PPOJob{cfg: cfg, tok: tok, hp: hp, shop: shop, goals: goals, rollout: rollout, ref: ref, seed: seed,
		buckets: features.DefaultBuckets(cfg), iter: -1}, nil
}

// Name implements Job.
func (j *PPOJob) Name() string { return PPOJobName }

// BindScorer implements RolloutJob.
func (j *PPOJob) BindScorer(s Scorer) { j.scorer = s }

// HostMetrics implements HostMetricsJob: the current rollout's mean reward, success rate,
// steps and states.
func (j *PPOJob) HostMetrics() map[string]float64 { return j.host }

// MetricNames implements Job.
func (j *PPOJob) MetricNames() []string {
	return []string{"clip_loss", "value_loss", "entropy", "kl_ref", "clip_frac", "approx_kl"}
}

// UpdatesPerRollout is the number of optimizer steps made on each rollout.
func (j *PPOJob) UpdatesPerRollout() int64 { return int64(j.hp.Epochs * j.hp.Minibatches) }

// Batch implements Job.
func (j *PPOJob) Batch(step int64) ([]*tensors.Tensor, int, error) {
	if j.scorer == nil {
		return nil, 0, fmt.Errorf("train: ppo: no scorer bound (run the job with train.Run)")
	}
	per := j.UpdatesPerRollout()
	iter := step / per
	if iter != j.iter {
		goals := rolloutGoals(j.seed, iter, j.hp.EpisodesPerRollout, len(j.goals))
		b, err := CollectRollouts(j.shop, j.goals, goals, j.scorer, j.ref, j.rollout, j.seed^uint64(iter)<<20)
		if err != nil {
			return nil, 0, err
		}
		stats := rolloutMetrics(b, 0)
		if j.hp.KLInReward && j.hp.KLCoef > 0 {
			stats["kl_penalty"] = KLRewardPenalty(b, j.hp.KLCoef)
		}
		j.rows = rolloutRows(j.tok, j.cfg, b, j.hp.Gamma, j.hp.Lambda)
		if j.hp.NormAdv {
			NormalizeAdvantages(j.rows)
		}
		j.iter = iter
		stats["rollout_states"] = float64(len(j.rows))
		j.stats = stats
	}
	within := step % per
	epoch, mb := within/int64(j.hp.Minibatches), within%int64(j.hp.Minibatches)
	rng := rand.New(rand.NewPCG(j.seed^0x70706f, uint64(iter)<<8|uint64(epoch)))
	perm := rng.Perm(len(j.rows))
	m := int64(j.hp.Minibatches)
	lo, hi := int64(len(perm))*mb/m, int64(len(perm))*(mb+1)/m
	rows := make([]rlRow, 0, hi-lo)
	for _, i := range perm[lo:hi] {
		rows = append(rows, j.rows[i])
	}
	j.host = j.stats
	ts, err := rlBatchTensors(rows, j.buckets, true)
	if err != nil {
		return nil, 0, err
	}
	return ts, len(rows), nil
}

// KLRewardPenalty subtracts InstructGPT's KL penalty from the rewards of a rollout's
// scored steps: r_t -= beta (log pi_old(a_t|s_t) - log pi_ref(a_t|s_t)), the acting
// policy's and the reference's log-probabilities of the action taken. It returns the mean
// penalty per scored step (steps without a reference are left alone).
func KLRewardPenalty(b *RolloutBatch, beta float64) float64 {
	sum, n := 0.0, 0
	for e := range b.Episodes {
		steps := b.Episodes[e].Steps
		for i := range steps {
			s := &steps[i]
			if s.Action < 0 || s.Action >= len(s.RefLogProbs) || math.IsNaN(s.Value) {
				continue
			}
			pen := beta * (s.LogProb - s.RefLogProbs[s.Action])
			s.Reward -= pen
			sum += pen
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// NormalizeAdvantages rescales the rows' advantages to mean 0 and standard deviation 1
// (unchanged when there are fewer than two rows or no spread).
func NormalizeAdvantages(rows []rlRow) {
	if len(rows) < 2 {
		return
	}
	var s, s2 float64
	for _, r := range rows {
		s += r.adv
	}
	mean := s / float64(len(rows))
	for _, r := range rows {
		s2 += (r.adv - mean) * (r.adv - mean)
	}
	std := math.Sqrt(s2 / float64(len(rows)))
	if std < 1e-8 {
		return
	}
	for i := range rows {
		rows[i].adv = (rows[i].adv - mean) / std
	}
}

// Loss implements Job.
func (j *PPOJob) Loss(ctx *context.Context, inputs []*graph.Node) (*graph.Node, []*graph.Node) {
	n := models.NumPolicyInputs
	logits, value := models.PolicyGraph(ctx, j.cfg, models.PolicyInputsFrom(inputs), false)
	return PPOLoss(logits, value, inputs[n], inputs[n+1], inputs[n+2], inputs[n+3], inputs[n+4], inputs[n+5], j.hp)
}

// PPOLoss is PPO's loss (see the file comment) of logits [B, A] and values [B] for actions
// [B] (int32), valid [B], old log-probs [B], advantages [B], returns [B] and the reference
// log-probs [B, A] (unused when hp.KLCoef is 0). It returns the loss and [clip_loss,
// value_loss, entropy, kl_ref, clip_frac, approx_kl], where clip_frac is the fraction of
// rows whose ratio is outside [1-epsilon, 1+epsilon] and approx_kl mean(log pi_old -
// log pi) of the actions taken.
func PPOLoss(logits, values, actions, valid, oldLogp, adv, returns, refLogp *graph.Node, hp PPOConfig) (*graph.Node, []*graph.Node) {
	g := logits.Graph()
	logp := models.ChoiceLogProbs(logits)
	lpa := pickLogProb(logp, actions)
	adv = graph.StopGradient(adv)
	logRatio := graph.Sub(lpa, graph.StopGradient(oldLogp))
	ratio := graph.Exp(logRatio)
	clipped := graph.ClipScalar(ratio, 1-hp.Epsilon, 1+hp.Epsilon)
	surr := graph.Min(graph.Mul(ratio, adv), graph.Mul(clipped, adv))
	clipLoss := graph.Neg(maskedMean(surr, valid))
	vl := maskedMean(graph.Square(graph.Sub(values, graph.StopGradient(returns))), valid)
	ent := maskedMean(entropyOf(logp), valid)
	loss := graph.Add(clipLoss, graph.MulScalar(vl, hp.ValueCoef))
	loss = graph.Sub(loss, graph.MulScalar(ent, hp.EntropyCoef))
	kl := graph.ScalarZero(g, dtypes.Float32)
	if hp.KLCoef > 0 {
		p := graph.Exp(logp)
		perState := graph.ReduceSum(graph.Mul(p, graph.Sub(logp, graph.StopGradient(refLogp))), -1)
		kl = maskedMean(perState, valid)
		if !hp.KLInReward { // in the rewards instead (KLRewardPenalty)
			loss = graph.Add(loss, graph.MulScalar(kl, hp.KLCoef))
		}
	}
	outside := graph.ConvertDType(graph.GreaterThan(graph.Abs(graph.AddScalar(ratio, -1)),
		graph.Scalar(g, dtypes.Float32, hp.Epsilon)), dtypes.Float32)
	clipFrac := maskedMean(outside, valid)
	approxKL := maskedMean(graph.Neg(logRatio), valid)
	return loss, []*graph.Node{clipLoss, vl, ent, kl, clipFrac, approxKL}
}
