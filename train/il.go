package train

import (
	stdctx "context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"shopagent/datasets"
	"shopagent/features"
	"shopagent/models"
)

// Imitation learning: cross-entropy of the demonstrated action among the available ones, on
// click steps (searches are the query proposer's business), as WebShop's choice model.

// ILJobName names imitation-learning checkpoints.
const ILJobName = "il"

// DefaultTrainMaxActions caps the actions of a training state: the demonstrated action is
// kept with a random sample of the others (WebShop caps long action lists too). The data
// of the built-in shop has at most 25 actions per page.
const DefaultTrainMaxActions = 32

// ILData holds the choice examples of a demonstration file.
type ILData struct {
	// Examples are the click steps, in file order; Episode holds each one's episode
	// (0-based, in file order).
	Examples []features.ChoiceExample
	Episode  []int
	// Episodes is the number of episodes read; Skipped counts click steps that could not
	// be used (action not among the available ones); Forced counts steps a fixed rule of
	// the agent took (safety caps, fallbacks), never used as demonstrated actions.
	Episodes, Skipped, Forced int
	// ObsMode is "text_rich" when the observations are multi-line, else "text".
	ObsMode string
}

// SubsetEpisodes returns the data of n episodes drawn at random (seeded) without
// replacement, in file order; all of them when n <= 0 or n >= Episodes.
func (d *ILData) SubsetEpisodes(n int, seed uint64) *ILData {
	if n <= 0 || n >= d.Episodes {
		return d
	}
	keep := make([]bool, d.Episodes)
	for _, e := range rand.New(rand.NewPCG(seed, 0x5eb5e7)).Perm(d.Episodes)[:n] {
		keep[e] = true
	}
	out := &ILData{Episodes: n, Skipped: d.Skipped, Forced: d.Forced, ObsMode: d.ObsMode}
	for i, ex := range d.Examples {
		if keep[d.Episode[i]] {
			out.Examples = append(out.Examples, ex)
			out.Episode = append(out.Episode, d.Episode[i])
		}
	}
	return out
}

// ClickablesFromActions turns available actions ("click[x]", "search[...]") into the page's
// clickables (x), leaving out the search template.
func ClickablesFromActions(actions []string) []string {
	out := make([]string, 0, len(actions))
	for _, a := range actions {
		if strings.HasPrefix(a, "click[") && strings.HasSuffix(a, "]") {
			out = append(out, strings.ToLower(a[len("click["):len(a)-1]))
		}
	}
	return out
}

// LoadILData reads demonstrations (a trajectory file or a directory of them) and returns
// their click steps as choice examples. Only episodes whose final reward is at least
// minReward are used (NaN rewards, unknown, are kept); minReward <= 0 keeps all.
func LoadILData(path string, minReward float64) (*ILData, error) {
	d := &ILData{}
	rich, plain := 0, 0
	err := datasets.ReadDirEpisodes(path, func(ep []datasets.Step) error {
		if len(ep) == 0 {
			return nil
		}
		if minReward > 0 && ep[0].FinalReward < minReward { // NaN compares false: kept
			return nil
		}
		d.Episodes++
		for _, s := range ep {
			if s.ActionIndex < 0 || !strings.HasPrefix(s.Action, "click[") {
				continue
			}
			if s.Forced {
				d.Forced++
				continue
			}
			if strings.Contains(s.Observation, "\n") {
				rich++
			} else {
				plain++
			}
			avail := s.AvailableActions
			if int(s.ActionIndex) >= len(avail) {
				d.Skipped++
				continue
			}
			chosen := avail[s.ActionIndex]
			clickables := ClickablesFromActions(avail)
			ex, idx := features.ChoiceFromObservation(s.Observation, clickables)
			target := -1
			want := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(chosen, "click["), "]"))
			for j, ci := range idx {
				if clickables[ci] == want {
					target = j
					break
				}
			}
			if target < 0 {
				d.Skipped++
				continue
			}
			ex.Target = target
			d.Examples = append(d.Examples, ex)
			d.Episode = append(d.Episode, d.Episodes-1)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(d.Examples) == 0 {
		return nil, fmt.Errorf("%w: %s has no usable click steps", ErrNoData, path)
	}
	d.ObsMode = "text"
	if rich >= plain {
		d.ObsMode = "text_rich"
	}
	return d, nil
}

// CapActions keeps at most maxActions actions of an example: the target and a random
// sample of the others, in their original order.
func CapActions(ex features.EncodedChoice, maxActions int, rng *rand.Rand) features.EncodedChoice {
	if maxActions <= 0 || len(ex.Actions) <= maxActions {
		return ex
	}
	keep := map[int]bool{}
	if ex.Target >= 0 {
		keep[ex.Target] = true
	}
	perm := rng.Perm(len(ex.Actions))
	for _, i := range perm {
		if len(keep) >= maxActions {
			break
		}
		keep[i] = true
	}
	out := features.EncodedChoice{State: ex.State, StateTypes: ex.StateTypes, Target: -1}
	for i, a := range ex.Actions {
		if keep[i] {
			if i == ex.Target {
				out.Target = len(out.Actions)
			}
			out.Actions = append(out.Actions, a)
			if i < len(ex.ActionContent) {
				out.ActionContent = append(out.ActionContent, ex.ActionContent[i])
			}
			if i < len(ex.Positions) {
				out.Positions = append(out.Positions, ex.Positions[i])
			}
		}
	}
	return out
}

// ILJob is the imitation-learning job: batches of click steps grouped by state length (few
// padded shapes), cross-entropy loss, accuracy metric.
type ILJob struct {
	cfg       features.PolicyConfig
	examples  []features.EncodedChoice
	batchSize int
	buckets   features.BucketSizes
	seed      uint64
	maxAct    int

	epoch   int64
	batches [][]int // the current epoch's batches (example indices)
}

// NewILJob returns an IL job over encoded examples. batchSize states per step; maxActions
// caps the actions per state (0: DefaultTrainMaxActions).
func NewILJob(cfg features.PolicyConfig, examples []features.EncodedChoice, batchSize int, maxActions int, seed uint64) (*ILJob, error) {
	if len(examples) == 0 {
		return nil, ErrNoData
	}
	if batchSize <= 0 {
		return nil, fmt.Errorf("train: batch size must be positive, got %d", batchSize)
	}
	if maxActions <= 0 {
		maxActions = DefaultTrainMaxActions
	}
	b := features.DefaultBuckets(cfg)
	if maxActions > b.Actions[len(b.Actions)-1] {
		return nil, fmt.Errorf("train: max actions %d exceeds the largest bucket %d", maxActions, b.Actions[len(b.Actions)-1])
	}
	return &ILJob{cfg: cfg, examples: examples, batchSize: batchSize, buckets: b, seed: seed, maxAct: maxActions, epoch: -1}, nil
}

// Name implements Job.
func (j *ILJob) Name() string { return ILJobName }

// MetricNames implements Job: the accuracy of the greedy choice on the batch.
func (j *ILJob) MetricNames() []string { return []string{"accuracy"} }

// BatchesPerEpoch returns the number of steps of one pass over the examples.
func (j *ILJob) BatchesPerEpoch() int { return (len(j.examples) + j.batchSize - 1) / j.batchSize }

// epochBatches orders one epoch: examples shuffled, grouped in windows of 8 batches sorted
// by state length bucket then action count (so a batch pads little), cut into batches,
// batches shuffled.
func (j *ILJob) epochBatches(epoch int64) [][]int {
	rng := rand.New(rand.NewPCG(j.seed, uint64(epoch)+0x696c))
	idx := rng.Perm(len(j.examples))
	win := 8 * j.batchSize
	for lo := 0; lo < len(idx); lo += win {
		hi := min(lo+win, len(idx))
		w := idx[lo:hi]
		key := func(i int) [2]int {
			ex := j.examples[i]
			return [2]int{features.Bucket(len(ex.State), j.buckets.State), min(len(ex.Actions), j.maxAct)}
		}
		sort.SliceStable(w, func(a, b int) bool {
			ka, kb := key(w[a]), key(w[b])
			return ka[0] < kb[0] || (ka[0] == kb[0] && ka[1] < kb[1])
		})
	}
	var batches [][]int
	for lo := 0; lo < len(idx); lo += j.batchSize {
		batches = append(batches, idx[lo:min(lo+j.batchSize, len(idx))])
	}
	rng.Shuffle(len(batches), func(a, b int) { batches[a], batches[b] = batches[b], batches[a] })
	return batches
}

// Batch implements Job.
func (j *ILJob) Batch(step int64) ([]*tensors.Tensor, int, error) {
	per := int64(j.BatchesPerEpoch())
	epoch := step / per
	if epoch != j.epoch {
		j.batches = j.epochBatches(epoch)
		j.epoch = epoch
	}
	ids := j.batches[step%per]
	rng := rand.New(rand.NewPCG(j.seed^0x5eed, uint64(step)))
	exs := make([]features.EncodedChoice, len(ids))
	for i, id := range ids {
		exs[i] = CapActions(j.examples[id], j.maxAct, rng)
	}
	pb, err := features.NewPolicyBatch(exs, j.buckets, j.batchSize)
	if err != nil {
		return nil, 0, err
	}
	return PolicyBatchTensors(pb, true), len(ids), nil
}

// PolicyBatchTensors converts a batch to graph inputs: the models.PolicyInputs tensors
// and, withTargets, the targets and their validity.
func PolicyBatchTensors(pb *features.PolicyBatch, withTargets bool) []*tensors.Tensor {
	ts := models.BatchTensors(pb)
	if withTargets {
		ts = append(ts, tensors.FromFlatDataAndDimensions(pb.Targets, pb.B),
			tensors.FromFlatDataAndDimensions(pb.TargetValid, pb.B))
	}
	return ts
}

// Loss implements Job: mean cross-entropy of the targets over the states with a target.
func (j *ILJob) Loss(ctx *context.Context, inputs []*graph.Node) (*graph.Node, []*graph.Node) {
	logits, _ := models.PolicyGraph(ctx, j.cfg, models.PolicyInputsFrom(inputs), true)
	n := models.NumPolicyInputs
	return ChoiceLoss(logits, inputs[n], inputs[n+1])
}

// ChoiceLoss is the mean negative log-likelihood of targets [B] (int32) under logits
// [B, A], over the states whose targetValid [B] is 1, and the accuracy of the argmax.
func ChoiceLoss(logits, targets, targetValid *graph.Node) (*graph.Node, []*graph.Node) {
	g := logits.Graph()
	a := logits.Shape().Dimensions[1]
	logp := models.ChoiceLogProbs(logits)
	onehot := graph.OneHot(targets, a, dtypes.Float32)
	picked := graph.ReduceSum(graph.Mul(logp, onehot), -1) // [B]
	n := graph.Max(graph.ReduceAllSum(targetValid), graph.ScalarOne(g, dtypes.Float32))
	loss := graph.Div(graph.Neg(graph.ReduceAllSum(graph.Mul(picked, targetValid))), n)
	hit := graph.ConvertDType(graph.Equal(graph.ArgMax(logits, -1, dtypes.Int32), targets), dtypes.Float32)
	acc := graph.Div(graph.ReduceAllSum(graph.Mul(hit, targetValid)), n)
	return loss, []*graph.Node{acc}
}

// ILRun configures RunIL.
type ILRun struct {
	RunOptions
	// Demos is a trajectory file or a directory of them; MinReward keeps only episodes
	// with at least that final reward (<= 0: all).
	Demos     string
	MinReward float64
	// InitPath starts the encoder from a pretraining run or checkpoint (its vocabulary
	// is used); InitPolicy starts the whole policy from one (an IL run: "IL, continued").
	// Without either the encoder starts from scratch with VocabPath or a vocabulary
	// learned from the demonstrations.
	InitPath   string
	InitPolicy bool
	VocabPath  string
	// Preset, MaxStateLen and MaxActionLen size the policy (without InitPath).
	Preset                    string
	MaxStateLen, MaxActionLen int
	// MaxActions is the number of actions per training state: the demonstrated one and
	// a random sample of the others.
	MaxActions int
	// Model is the choice model: features.ModelShopAgent (default) or
	// features.ModelWebShop (WebShop's exactly). InitPolicy keeps the initial policy's.
	Model string
}

// DefaultILRun returns imitation learning's defaults: the tiny preset, 500 steps of 32,
// learning rate 1e-3, DefaultTrainMaxActions actions per state.
func DefaultILRun() ILRun {
	return ILRun{RunOptions: DefaultRunOptions(), Preset: "tiny", MaxStateLen: features.DefaultMaxStateLen,
		MaxActionLen: features.DefaultMaxActionLen, MaxActions: DefaultTrainMaxActions}
}

// RunIL trains the choice policy on the demonstrations' click steps (cross-entropy of
// the demonstrated action among the available ones) and writes RUN_DIR/result.json.
func RunIL(ctx stdctx.Context, r ILRun) (*RunResult, error) {
	start := time.Now()
	if err := r.validate(); err != nil {
		return nil, err
	}
	if r.Demos == "" {
		return nil, fmt.Errorf("train: il: demonstrations are required")
	}
	data, err := LoadILData(r.Demos, r.MinReward)
	if err != nil {
		return nil, err
	}
	r.logf("demos: %d click steps from %d episodes (%d skipped, %d forced, %s observations)",
		len(data.Examples), data.Episodes, data.Skipped, data.Forced, data.ObsMode)
	tok, initCk, err := chooseVocab(r.RunOptions, r.VocabPath, r.InitPath, func() (*features.Tokenizer, error) {
		var docs []string
		for _, ex := range data.Examples {
			docs = append(docs, ex.State)
			docs = append(docs, ex.Actions...)
		}
		return BuildCorpusVocab(docs, 8000)
	})
	if err != nil {
		return nil, err
	}
	pcfg, err := features.NewPolicyConfig(r.Preset, tok.VocabSize(), r.MaxStateLen, r.MaxActionLen)
	if err != nil {
		return nil, err
	}
	switch {
	case initCk != nil && r.InitPolicy:
		pcfg = initCk.Meta.Policy // the whole policy, as it was trained
	case initCk != nil:
		bert := initCk.Meta.Policy.Bert
		pcfg.Bert, pcfg.Preset = bert, initCk.Meta.Policy.Preset
		// The initial encoder's positions bound the lengths (an imported BERT has 512).
		pcfg.MaxStateLen = min(pcfg.MaxStateLen, bert.MaxPositions)
		pcfg.MaxActionLen = min(pcfg.MaxActionLen, bert.MaxPositions)
	}
	if r.Dropout >= 0 {
		pcfg.Bert.Dropout = r.Dropout
	}
	pcfg.ObsMode = data.ObsMode
	if !r.InitPolicy && r.Model != "" {
		pcfg.Model = r.Model
	}
	if err := pcfg.Validate(); err != nil {
		return nil, err
	}
	enc := make([]features.EncodedChoice, len(data.Examples))
	for i, ex := range data.Examples {
		enc[i] = features.EncodeChoice(tok, pcfg, ex)
	}
	job, err := NewILJob(pcfg, enc, r.Batch, r.MaxActions, uint64(r.Seed))
	if err != nil {
		return nil, err
	}
	steps := r.Steps
	if r.Epochs > 0 {
		steps = int64(r.Epochs * job.BatchesPerEpoch())
	}
	cfg, err := r.config(pcfg, tok, steps)
	if err != nil {
		return nil, err
	}
	info := map[string]any{"demos": r.Demos, "examples": len(enc), "episodes": data.Episodes, "forced_skipped": data.Forced}
	for k, v := range info {
		cfg.Info[k] = v
	}
	if initCk != nil {
		cfg.Info["init"] = initCk.Dir
		scope := models.EncoderScope + "/"
		if r.InitPolicy {
			scope = models.PolicyScope + "/"
		}
		cfg.Init = func(c *context.Context) error {
			n, err := initCk.LoadInto(c, scope)
			if err != nil {
				return err
			}
			r.logf("initialised %s from %s (step %d, %d variables)", scope, initCk.Dir, initCk.Meta.Step, n)
			return nil
		}
	}
	r.logf("il: preset %s, %d examples, %d steps of %d (%.1f epochs)", pcfg.Preset, len(enc), steps, r.Batch,
		float64(steps)/float64(job.BatchesPerEpoch()))
	res, err := Run(ctx, cfg, job)
	if err != nil {
		return nil, err
	}
	return finish("il", r.Out, start, res, info)
}
