package train

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"shopagent/features"
	"shopagent/models"
)

// DPO: direct preference optimisation (Rafailov et al. 2023) on per-step preference pairs.
//
// At each click step of a trajectory file (expert or human demonstrations, or generated
// ones: `train generate`), the chosen action c is the demonstrated one; the rejected
// actions r are the frozen reference policy's greedy action where it differs from c
// (RejectedReference; states where they agree give no pair), or every other action
// (RejectedAll). The reference is the initial policy; its log-probabilities are computed
// once, before training. With beta the DPO temperature:
//
//	margin = beta * ((log pi(c|s) - log ref(c|s)) - (log pi(r|s) - log ref(r|s)))
//	loss   = mean over pairs of -log sigmoid(margin)
//
// The forward pass has no dropout, so at step 0 pi = ref, every margin is 0 and the loss
// is log 2. Metrics: dpo_accuracy (pairs with margin > 0), dpo_margin (mean margin),
// chosen_reward (mean beta (log pi(c) - log ref(c))).

// DPOJobName names DPO checkpoints.
const DPOJobName = "dpo"

// Rejected-action modes of DPO.
const (
	RejectedReference = "reference"
	RejectedAll       = "all"
)

// DPOConfig holds DPO's hyperparameters.
type DPOConfig struct {
	// Beta is the temperature of the implicit reward (0.1).
	Beta float64
	// Rejected is RejectedReference or RejectedAll.
	Rejected string
	// Batch is the number of states per update.
	Batch int
}

// DefaultDPOConfig returns the defaults: beta 0.1, rejected = the reference's action,
// 32 states per update.
func DefaultDPOConfig() DPOConfig {
	return DPOConfig{Beta: 0.1, Rejected: RejectedReference, Batch: 32}
}

// DPOData holds the preference states of DPO: each state's encoding (Target = the chosen
// action), its rejected actions and the reference's log-probabilities.
type DPOData struct {
	States   []features.EncodedChoice
	Rejected [][]int
	RefLogp  [][]float64
	// Examples is the number of click steps read; Agree the states where the reference's
	// greedy action was the demonstrated one (no pair in RejectedReference mode);
	// TooMany the states with more actions than the largest bucket (left out).
	Examples, Agree, TooMany int
	// Pairs is the number of (chosen, rejected) pairs.
	Pairs int
}

// BuildDPOData scores the examples (Target = the demonstrated action) with the frozen
// reference and builds the preference states.
func BuildDPOData(examples []features.ChoiceExample, ref Scorer, tok *features.Tokenizer, cfg features.PolicyConfig, rejected string) (*DPOData, error) {
	if rejected != RejectedReference && rejected != RejectedAll {
		return nil, fmt.Errorf("train: dpo: rejected mode %q (want %s or %s)", rejected, RejectedReference, RejectedAll)
	}
	maxA := features.DefaultBuckets(cfg).Actions
	d := &DPOData{Examples: len(examples)}
	const chunk = 64
	for lo := 0; lo < len(examples); lo += chunk {
		part := examples[lo:min(lo+chunk, len(examples))]
		scores, err := ref.Score(part)
		if err != nil {
			return nil, fmt.Errorf("train: dpo reference: %w", err)
		}
		for i, ex := range part {
			if ex.Target < 0 || ex.Target >= len(ex.Actions) {
				continue
			}
			if len(ex.Actions) > maxA[len(maxA)-1] {
				d.TooMany++
				continue
			}
			var rej []int
			if rejected == RejectedAll {
				for a := range ex.Actions {
					if a != ex.Target {
						rej = append(rej, a)
					}
				}
			} else if best := scores[i].Best(); best != ex.Target {
				rej = []int{best}
			} else {
				d.Agree++
			}
			if len(rej) == 0 {
				continue
			}
			d.States = append(d.States, features.EncodeChoice(tok, cfg, ex))
			d.Rejected = append(d.Rejected, rej)
			d.RefLogp = append(d.RefLogp, scores[i].LogProbs)
			d.Pairs += len(rej)
		}
	}
	if len(d.States) == 0 {
		return nil, fmt.Errorf("%w: no preference pairs (%d steps, the reference agrees on %d)", ErrNoData, d.Examples, d.Agree)
	}
	return d, nil
}

// DPOJob is the DPO job: batches of preference states in an epoch order (IL's: shuffled,
// grouped by state length), the DPO loss.
type DPOJob struct {
	cfg   features.PolicyConfig
	hp    DPOConfig
	data  *DPOData
	order *ILJob // orders the epochs
}

// NewDPOJob returns a DPO job.
func NewDPOJob(cfg features.PolicyConfig, data *DPOData, hp DPOConfig, seed uint64) (*DPOJob, error) {
	if data == nil || len(data.States) == 0 {
		return nil, ErrNoData
	}
	if !(hp.Beta > 0) {
		return nil, fmt.Errorf("train: dpo: beta must be positive, got %g", hp.Beta)
	}
	order, err := NewILJob(cfg, data.States, hp.Batch, 0, seed)
	if err != nil {
		return nil, err
	}
	return &DPOJob{cfg: cfg, hp: hp, data: data, order: order}, nil
}

// Name implements Job.
func (j *DPOJob) Name() string { return DPOJobName }

// BatchesPerEpoch returns the number of steps of one pass over the states.
func (j *DPOJob) BatchesPerEpoch() int { return j.order.BatchesPerEpoch() }

// MetricNames implements Job.
func (j *DPOJob) MetricNames() []string {
	return []string{"dpo_accuracy", "dpo_margin", "chosen_reward"}
}

// Batch implements Job: policy inputs, chosen [B] (int32), rejected mask [B, A] and the
// reference's log-probabilities [B, A].
func (j *DPOJob) Batch(step int64) ([]*tensors.Tensor, int, error) {
	o := j.order
	per := int64(o.BatchesPerEpoch())
	epoch := step / per
	if epoch != o.epoch {
		o.batches = o.epochBatches(epoch)
		o.epoch = epoch
	}
	ids := o.batches[step%per]
	encs := make([]features.EncodedChoice, len(ids))
	for i, id := range ids {
		encs[i] = j.data.States[id]
	}
	pb, err := features.NewPolicyBatch(encs, o.buckets, j.hp.Batch)
	if err != nil {
		return nil, 0, err
	}
	rej := make([]float32, pb.B*pb.A)
	ref := make([]float32, pb.B*pb.A)
	for i, id := range ids {
		for _, r := range j.data.Rejected[id] {
			rej[i*pb.A+r] = 1
		}
		for a, lp := range j.data.RefLogp[id] {
			ref[i*pb.A+a] = float32(lp)
		}
	}
	ts := append(models.BatchTensors(pb), tensors.FromFlatDataAndDimensions(pb.Targets, pb.B),
		tensors.FromFlatDataAndDimensions(rej, pb.B, pb.A), tensors.FromFlatDataAndDimensions(ref, pb.B, pb.A))
	return ts, len(ids), nil
}

// Loss implements Job.
func (j *DPOJob) Loss(ctx *context.Context, inputs []*graph.Node) (*graph.Node, []*graph.Node) {
	n := models.NumPolicyInputs
	logits, _ := models.PolicyGraph(ctx, j.cfg, models.PolicyInputsFrom(inputs), false)
	return DPOLoss(logits, inputs[n], inputs[n+1], inputs[n+2], j.hp.Beta)
}

// DPOLoss is the DPO loss of logits [B, A] for chosen actions [B] (int32), a mask of
// rejected actions [B, A] (1 per pair) and the reference's log-probabilities [B, A]: the
// mean over pairs of -log sigmoid(beta ((log pi(c) - log ref(c)) - (log pi(r) - log
// ref(r)))). It returns the loss and [accuracy, mean margin, mean chosen reward].
func DPOLoss(logits, chosen, rejectedMask, refLogp *graph.Node, beta float64) (*graph.Node, []*graph.Node) {
	g := logits.Graph()
	logp := models.ChoiceLogProbs(logits)
	refLogp = graph.StopGradient(refLogp)
	lc := pickLogProb(logp, chosen)                                    // [B]
	refc := pickLogProb(refLogp, chosen)                               // [B]
	chosenReward := graph.MulScalar(graph.Sub(lc, refc), beta)         // [B]
	rejReward := graph.MulScalar(graph.Sub(logp, refLogp), beta)       // [B, A]
	margin := graph.Sub(graph.InsertAxes(chosenReward, -1), rejReward) // [B, A]
	// -log sigmoid(m) = softplus(-m) = max(-m, 0) + log(1 + exp(-|m|)).
	nll := graph.Add(graph.Max(graph.Neg(margin), graph.ScalarZero(g, dtypes.Float32)),
		graph.Log1p(graph.Exp(graph.Neg(graph.Abs(margin)))))
	loss := maskedMean(nll, rejectedMask)
	win := graph.ConvertDType(graph.GreaterThan(margin, graph.ScalarZero(g, dtypes.Float32)), dtypes.Float32)
	acc := maskedMean(win, rejectedMask)
	meanMargin := maskedMean(margin, rejectedMask)
	hasPair := graph.ConvertDType(graph.GreaterThan(graph.ReduceSum(rejectedMask, -1), graph.ScalarZero(g, dtypes.Float32)), dtypes.Float32)
	return loss, []*graph.Node{acc, meanMargin, maskedMean(chosenReward, hasPair)}
}
