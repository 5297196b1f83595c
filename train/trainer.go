package train

import (
	stdctx "context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/schollz/progressbar/v3"

	"shopagent/features"
	"shopagent/models"
)

// The training core: a small loop over a Job (a loss graph plus deterministic batches) with
// AdamW, a learning-rate schedule, global-norm gradient clipping, checkpoints (every K steps,
// at the end and on interruption), resume at the right step, a progress bar and a Parquet
// metrics log. GoMLX's own train.Trainer is not used: its checkpoints name files after a
// global step kept under the model scope (they came out as "initial"), and the loop here needs
// per-step learning rates, clipping and the policy's checkpoint format anyway.

// Job is a training job: a loss graph and the batches that feed it.
type Job interface {
	// Name names the job in checkpoints and logs ("pretrain", "il").
	Name() string
	// Loss builds the scalar training loss from the batch inputs (the tensors Batch
	// returns, in order) with dropout on, and extra scalar metrics named by MetricNames.
	Loss(ctx *context.Context, inputs []*graph.Node) (loss *graph.Node, metrics []*graph.Node)
	// MetricNames names the extra metrics Loss returns.
	MetricNames() []string
	// Batch returns the inputs of the update with 0-based index step and the number of
	// examples in it. It must be a deterministic function of step (and the job's seed),
	// so that a resumed run sees the batches an uninterrupted run would have seen.
	Batch(step int64) ([]*tensors.Tensor, int, error)
}

// OptimizerConfig configures AdamW.
type OptimizerConfig struct {
	// Beta1, Beta2 and Epsilon are Adam's constants (0.9, 0.999, 1e-8 when zero).
	Beta1, Beta2, Epsilon float64
	// WeightDecay is AdamW's decoupled weight decay, applied (times the learning rate) to
	// matrices and embeddings only, not to biases, LayerNorm parameters or vectors, as
	// Hugging Face's BERT recipes do.
	WeightDecay float64
	// ClipNorm clips the gradients to this global L2 norm (0 disables clipping).
	ClipNorm float64
}

func (o OptimizerConfig) withDefaults() OptimizerConfig {
	if o.Beta1 == 0 {
		o.Beta1 = 0.9
	}
	if o.Beta2 == 0 {
		o.Beta2 = 0.999
	}
	if o.Epsilon == 0 {
		o.Epsilon = 1e-8
	}
	return o
}

// OptimizerScope is the scope of AdamW's moment variables: the first and second moments of
// variable "/policy/x/w" are "/optimizer/m/policy/x/w" and "/optimizer/v/policy/x/w".
const OptimizerScope = "optimizer"

// Config configures a training run.
type Config struct {
	// RunDir receives checkpoints/, metrics.parquet and vocab.txt.
	RunDir string
	// Steps is the total number of optimizer updates of the run.
	Steps int64
	// Schedule is the learning-rate schedule (Total defaults to Steps).
	Schedule Schedule
	// Optimizer configures AdamW.
	Optimizer OptimizerConfig
	// CheckpointEvery saves a checkpoint every this many steps (0: only at the end).
	CheckpointEvery int64
	// Keep is the number of checkpoints kept (0 keeps all).
	Keep int
	// Resume continues from the run directory's latest checkpoint (model, optimizer state,
	// random state and step). Without Resume a run directory that already holds checkpoints
	// is an error, so a finished run is never overwritten by accident.
	Resume bool
	// Seed seeds the variable initialisation and dropout.
	Seed int64
	// Policy is the model configuration stored in checkpoints.
	Policy features.PolicyConfig
	// Tokenizer's vocabulary is stored in checkpoints and the run directory.
	Tokenizer *features.Tokenizer
	// Backend runs the graphs.
	Backend backends.Backend
	// Shapes is the padded shape set: models.ShapesAuto ("" too: the XLA set, compiled
	// before the first step, on the XLA backend; the fine buckets elsewhere),
	// models.ShapesXLA or models.ShapesFine (see shapes.go).
	Shapes string
	// Init, when set, is called on a fresh context (not when resuming) before the first
	// step, for instance to load pretrained weights.
	Init func(ctx *context.Context) error
	// Info is stored in every checkpoint's meta (provenance).
	Info map[string]any
	// Log receives the progress bar and periodic log lines (nil: silent).
	Log io.Writer
	// LogEvery writes a log line every this many steps (0: 10% of the run).
	LogEvery int64
	// MetricsFlush is the minimum time between metrics log flushes (0: 10 s).
	MetricsFlush time.Duration
	// ProgressBar draws a progress bar on Log (otherwise only log lines are written).
	ProgressBar bool
	// AfterCheckpoint, when set, is called with each checkpoint directory the run saves
	// (for instance to export it for serving); an error stops the run.
	AfterCheckpoint func(dir string) error
	// TimeBudget stops the run cleanly, with a final checkpoint, once this invocation has
	// trained this long (0: no limit); the run stops at the first of Steps and TimeBudget.
	TimeBudget time.Duration
	// Deadline stops the run cleanly, with a final checkpoint, at this wall-clock time
	// (zero: none): a stage's budget counted from the stage's start, its preparation
	// (reference passes, data) included.
	Deadline time.Time
}

// RolloutJob is a Job that needs the current parameters to build its batches (on-policy
// reinforcement learning). Run calls BindScorer once, after the variables are initialised
// or restored and before the first step, with a scorer that runs the policy's forward pass
// (no dropout) on the run's live variables: a batch built at step s sees the parameters
// after s updates.
type RolloutJob interface {
	Job
	BindScorer(s Scorer)
}

// HostMetricsJob is a Job that computes metrics outside the graph (for instance the mean
// reward of its rollouts). Run calls HostMetrics after each step and logs them with the
// graph's metrics in the step's metrics row (extra).
type HostMetricsJob interface {
	Job
	HostMetrics() map[string]float64
}

// Result is the outcome of a training run.
type Result struct {
	// StartStep is the step the run started (or resumed) from; Step the step reached.
	StartStep, Step int64
	// LastLoss is the loss of the last step; MeanLoss the mean over the last 10% of the
	// steps run (at least one).
	LastLoss, MeanLoss float64
	// LastMetrics holds the job's metrics averaged like MeanLoss.
	LastMetrics map[string]float64
	// Checkpoint is the last checkpoint written.
	Checkpoint string
	// Interrupted is true when the run stopped early on a cancelled context (a signal).
	Interrupted bool
	// BudgetReached is true when the run stopped early at Config.TimeBudget.
	BudgetReached bool
	// Elapsed is the wall time of this invocation.
	Elapsed time.Duration
	// Context holds the trained variables.
	Context *context.Context
}

// Run trains job. It stops early, with a checkpoint, when ctx is cancelled (SIGINT/SIGTERM
// in the CLI), and returns Result.Interrupted.
func Run(ctx stdctx.Context, cfg Config, job Job) (*Result, error) {
	InstallFastDotGradients()
	if cfg.Backend == nil || cfg.Tokenizer == nil {
		return nil, fmt.Errorf("train: a backend and a tokenizer are required")
	}
	if cfg.Steps <= 0 {
		return nil, fmt.Errorf("train: steps must be positive, got %d", cfg.Steps)
	}
	if cfg.Schedule.Total == 0 {
		cfg.Schedule.Total = cfg.Steps
	}
	if err := cfg.Schedule.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	opt := cfg.Optimizer.withDefaults()
	if cfg.RunDir == "" {
		return nil, fmt.Errorf("train: no run directory")
	}
	if err := os.MkdirAll(cfg.RunDir, 0o755); err != nil {
		return nil, fmt.Errorf("train: run directory: %w", err)
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}

	mctx := context.New()
	mctx.SetParam(context.ParamInitialSeed, cfg.Seed)
	var start int64
	dirs, _, err := models.ListCheckpoints(cfg.RunDir)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Resume && len(dirs) > 0:
		ck, err := models.LoadCheckpoint(cfg.RunDir, true)
		if err != nil {
			return nil, fmt.Errorf("train: resume: %w", err)
		}
		if ck.Meta.Job != job.Name() {
			return nil, fmt.Errorf("train: resume: %s was written by job %q, not %q", ck.Dir, ck.Meta.Job, job.Name())
		}
		if ck.Meta.Policy.Bert != cfg.Policy.Bert {
			return nil, fmt.Errorf("train: resume: %s has model %+v, the run asks for %+v", ck.Dir, ck.Meta.Policy.Bert, cfg.Policy.Bert)
		}
		if ck.Meta.Policy.ChoiceModel() != cfg.Policy.ChoiceModel() {
			return nil, fmt.Errorf("train: resume: %s has the %s choice model, the run asks for %s", ck.Dir, ck.Meta.Policy.ChoiceModel(), cfg.Policy.ChoiceModel())
		}
		if ck.Optimizer == nil {
			return nil, fmt.Errorf("train: resume: %s has no optimizer state", ck.Dir)
		}
		if _, err := ck.LoadInto(mctx); err != nil {
			return nil, fmt.Errorf("train: resume: %w", err)
		}
		start = ck.Meta.Step
		fmt.Fprintf(logw, "resuming %s from %s (step %d)\n", job.Name(), ck.Dir, start)
	case len(dirs) > 0:
		return nil, fmt.Errorf("train: %s already holds checkpoints (latest %s): pass --resume to continue it or choose another run directory", cfg.RunDir, filepath.Base(dirs[len(dirs)-1]))
	default:
		if cfg.Resume {
			fmt.Fprintf(logw, "no checkpoint in %s: starting a new run\n", cfg.RunDir)
		}
		if cfg.Init != nil {
			if err := cfg.Init(mctx); err != nil {
				return nil, err
			}
		}
	}
	if err := cfg.Tokenizer.WriteVocab(filepath.Join(cfg.RunDir, models.CheckpointVocabFile)); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	flush := cfg.MetricsFlush
	if flush == 0 {
		flush = 10 * time.Second
	}
	keep := start
	if start == 0 {
		keep = -1
	}
	mlog, err := OpenMetricsLog(filepath.Join(cfg.RunDir, MetricsFile), keep, flush)
	if err != nil {
		return nil, err
	}
	res := &Result{StartStep: start, Step: start, Context: mctx}
	if start >= cfg.Steps {
		fmt.Fprintf(logw, "%s: already at step %d of %d\n", job.Name(), start, cfg.Steps)
		res.Checkpoint = dirs[len(dirs)-1]
		return res, nil
	}

	names := job.MetricNames()
	exec, err := context.NewExec(cfg.Backend, mctx, func(c *context.Context, inputs []*graph.Node) []*graph.Node {
		return trainGraph(c, job, opt, inputs)
	})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer exec.Finalize()
	exec.SetMaxCache(-1)
	var scorer *ContextScorer
	if rj, ok := job.(RolloutJob); ok {
		sc, err := NewContextScorer(cfg.Backend, mctx, cfg.Policy, cfg.Tokenizer)
		if err != nil {
			return nil, err
		}
		defer sc.Close()
		rj.BindScorer(sc)
		scorer = sc
	}
	if err := prepareShapes(cfg, job, mctx, exec, scorer, logw); err != nil { // XLA: fixed shapes, compiled now
		return nil, err
	}
	hostJob, _ := job.(HostMetricsJob)
	hostTail := map[string][]float64{}

	saveCk := func(step int64, last float64) error {
		info := map[string]any{}
		for k, v := range cfg.Info {
			info[k] = v
		}
		if !math.IsNaN(last) && !math.IsInf(last, 0) {
			info["loss"] = last // a run stopped before its first update has no loss
		}
		meta := models.CheckpointMeta{Job: job.Name(), Step: step, Policy: cfg.Policy, Info: info}
		dir := filepath.Join(cfg.RunDir, models.CheckpointsDir, models.CheckpointDirName(step))
		if _, err := os.Stat(dir); err == nil {
			res.Checkpoint = dir
			return nil
		}
		if err := models.SaveCheckpoint(dir, meta, mctx, cfg.Tokenizer, true); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		res.Checkpoint = dir
		if cfg.AfterCheckpoint != nil {
			if err := cfg.AfterCheckpoint(dir); err != nil {
				return fmt.Errorf("train: after checkpoint %s: %w", dir, err)
			}
		}
		return models.PruneCheckpoints(cfg.RunDir, cfg.Keep)
	}

	var bar *progressbar.ProgressBar
	if cfg.ProgressBar && cfg.Log != nil {
		bar = progressbar.NewOptions64(cfg.Steps, progressbar.OptionSetWriter(cfg.Log),
			progressbar.OptionSetDescription(job.Name()), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString("steps"),
			progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(500*time.Millisecond), progressbar.OptionFullWidth())
		_ = bar.Set64(start)
	}
	logEvery := cfg.LogEvery
	if logEvery <= 0 {
		logEvery = max(1, cfg.Steps/10)
	}
	runStart := time.Now()
	elapsed0 := mlog.LastElapsed()
	tail := max(1, (cfg.Steps-start)/10)
	var losses []float64
	extras := make([][]float64, len(names))
	lastLoss := math.NaN()
	sinceLog := time.Now()
	var exSinceLog int
	step := start
	for step < cfg.Steps {
		if ctx.Err() != nil {
			res.Interrupted = true
			break
		}
		if cfg.TimeBudget > 0 && time.Since(runStart) >= cfg.TimeBudget {
			res.BudgetReached = true
			fmt.Fprintf(logw, "%s: time budget %s reached at step %d\n", job.Name(), cfg.TimeBudget, step)
			break
		}
		if !cfg.Deadline.IsZero() && !time.Now().Before(cfg.Deadline) {
			res.BudgetReached = true
			fmt.Fprintf(logw, "%s: the stage's deadline reached at step %d\n", job.Name(), step)
			break
		}
		inputs, n, err := job.Batch(step)
		if err != nil {
			return nil, fmt.Errorf("train: batch of step %d: %w", step+1, err)
		}
		lr := cfg.Schedule.At(step)
		t := float64(step + 1)
		hyper := []float32{float32(lr), float32(1 / (1 - math.Pow(opt.Beta1, t))), float32(1 / (1 - math.Pow(opt.Beta2, t)))}
		args := make([]any, 0, len(inputs)+1)
		args = append(args, tensors.FromValue(hyper))
		for _, in := range inputs {
			args = append(args, in)
		}
		t0 := time.Now()
		outs, err := exec.Exec(args...)
		if err != nil {
			return nil, fmt.Errorf("train: step %d: %w", step+1, err)
		}
		dt := time.Since(t0).Seconds()
		loss := float64(tensors.ToScalar[float32](outs[0]))
		gnorm := float64(tensors.ToScalar[float32](outs[1]))
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, fmt.Errorf("train: step %d: loss is %g (try a lower learning rate)", step+1, loss)
		}
		step++
		lastLoss = loss
		row := MetricsRow{Step: step, Loss: loss, LR: lr, GradNorm: gnorm, ExamplesPerS: float64(n) / dt,
			ElapsedS: elapsed0 + time.Since(runStart).Seconds()}
		if len(names) > 0 {
			row.Extra = map[string]float64{}
		}
		for i, name := range names {
			v := float64(tensors.ToScalar[float32](outs[2+i]))
			row.Extra[name] = v
			extras[i] = append(extras[i], v)
		}
		if hostJob != nil {
			for k, v := range hostJob.HostMetrics() {
				if row.Extra == nil {
					row.Extra = map[string]float64{}
				}
				row.Extra[k] = v
				hostTail[k] = append(hostTail[k], v)
			}
		}
		losses = append(losses, loss)
		if err := mlog.Add(row); err != nil {
			return nil, err
		}
		exSinceLog += n
		if bar != nil {
			bar.Describe(fmt.Sprintf("%s loss %.4f", job.Name(), meanTail(losses, 20)))
			_ = bar.Set64(step)
		}
		if step%logEvery == 0 || step == cfg.Steps {
			if bar != nil {
				_ = bar.Clear()
			}
			rate := float64(exSinceLog) / time.Since(sinceLog).Seconds()
			// Steps far beyond reach (a run bounded by its time budget) would overflow a
			// Duration into a negative one: cap the estimate, the budget bounds it below.
			etaS := float64(cfg.Steps-step) * time.Since(runStart).Seconds() / float64(step-start)
			eta := time.Duration(math.MaxInt64)
			if etaS < float64(math.MaxInt64/int64(time.Second)) {
				eta = time.Duration(etaS * float64(time.Second))
			}
			line := fmt.Sprintf("%s step %d/%d loss %.4f lr %.2e grad_norm %.3f %.1f examples/s", job.Name(), step, cfg.Steps,
				meanTail(losses, int(logEvery)), lr, gnorm, rate)
			for i, name := range names {
				line += fmt.Sprintf(" %s %.4f", name, meanTail(extras[i], int(logEvery)))
			}
			hk := make([]string, 0, len(hostTail))
			for k := range hostTail {
				hk = append(hk, k)
			}
			sort.Strings(hk)
			for _, k := range hk {
				line += fmt.Sprintf(" %s %.4f", k, meanTail(hostTail[k], int(logEvery)))
			}
			if cfg.TimeBudget > 0 {
				eta = min(eta, max(0, cfg.TimeBudget-time.Since(runStart)))
			}
			if !cfg.Deadline.IsZero() {
				eta = min(eta, max(0, time.Until(cfg.Deadline)))
			}
			fmt.Fprintf(logw, "%s eta %s\n", line, eta.Round(time.Second))
			sinceLog, exSinceLog = time.Now(), 0
		}
		if cfg.CheckpointEvery > 0 && step%cfg.CheckpointEvery == 0 && step < cfg.Steps {
			if err := saveCk(step, loss); err != nil {
				return nil, err
			}
			if err := mlog.Flush(); err != nil {
				return nil, err
			}
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	res.Step = step
	res.LastLoss = lastLoss
	res.MeanLoss = meanTail(losses, int(tail))
	res.LastMetrics = map[string]float64{}
	for i, name := range names {
		res.LastMetrics[name] = meanTail(extras[i], int(tail))
	}
	for k, xs := range hostTail {
		res.LastMetrics[k] = meanTail(xs, int(tail))
	}
	if step > start || res.Checkpoint == "" {
		if err := saveCk(step, lastLoss); err != nil {
			return nil, err
		}
	}
	if err := mlog.Flush(); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(runStart)
	if res.Interrupted {
		fmt.Fprintf(logw, "%s interrupted at step %d: saved %s (continue with --resume)\n", job.Name(), step, res.Checkpoint)
	}
	return res, nil
}

// meanTail is the mean of the last n values (NaN when empty).
func meanTail(xs []float64, n int) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	if n <= 0 || n > len(xs) {
		n = len(xs)
	}
	var s float64
	for _, x := range xs[len(xs)-n:] {
		s += x
	}
	return s / float64(n)
}

// trainGraph builds one training step: the job's loss, the gradients of every trainable
// variable it uses, global-norm clipping and the AdamW update. inputs[0] is [lr, 1/(1-β1^t),
// 1/(1-β2^t)]; the rest are the job's batch. It returns [loss, grad_norm, metrics...].
func trainGraph(ctx *context.Context, job Job, opt OptimizerConfig, inputs []*graph.Node) []*graph.Node {
	hyper := inputs[0]
	g := hyper.Graph()
	ctx.SetTraining(g, true)
	loss, metrics := job.Loss(ctx, inputs[1:])
	if !loss.Shape().IsScalar() || loss.DType() != dtypes.Float32 {
		panic(fmt.Errorf("train: job %s: loss must be a float32 scalar, got %s", job.Name(), loss.Shape()))
	}
	var vars []*context.Variable
	var values []*graph.Node
	for v := range ctx.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) && v.DType() == dtypes.Float32 {
			vars = append(vars, v)
			values = append(values, v.ValueGraph(g))
		}
	}
	if len(vars) == 0 {
		panic(fmt.Errorf("train: job %s: the loss uses no trainable variable", job.Name()))
	}
	grads := graph.Gradient(loss, values...)

	// Global norm and clipping.
	var sq *graph.Node
	for _, gr := range grads {
		s := graph.ReduceAllSum(graph.Square(gr))
		if sq == nil {
			sq = s
		} else {
			sq = graph.Add(sq, s)
		}
	}
	norm := graph.Sqrt(sq)
	scale := graph.ScalarOne(g, dtypes.Float32)
	if opt.ClipNorm > 0 {
		clip := graph.Scalar(g, dtypes.Float32, opt.ClipNorm)
		scale = graph.Div(clip, graph.Max(norm, clip))
	}
	lr := graph.Reshape(graph.Slice(hyper, graph.AxisRange(0, 1)))
	bc1 := graph.Reshape(graph.Slice(hyper, graph.AxisRange(1, 2)))
	bc2 := graph.Reshape(graph.Slice(hyper, graph.AxisRange(2, 3)))
	b1, b2 := opt.Beta1, opt.Beta2
	for i, v := range vars {
		gr := graph.Mul(grads[i], scale)
		mVar := ctx.InAbsPath(context.ScopeSeparator+OptimizerScope+"/m"+v.Scope()).Checked(false).
			WithInitializer(initializers.Zero).VariableWithShape(v.Name(), v.Shape()).SetTrainable(false)
		vVar := ctx.InAbsPath(context.ScopeSeparator+OptimizerScope+"/v"+v.Scope()).Checked(false).
			WithInitializer(initializers.Zero).VariableWithShape(v.Name(), v.Shape()).SetTrainable(false)
		m := graph.Add(graph.MulScalar(mVar.ValueGraph(g), b1), graph.MulScalar(gr, 1-b1))
		s := graph.Add(graph.MulScalar(vVar.ValueGraph(g), b2), graph.MulScalar(graph.Square(gr), 1-b2))
		mVar.SetValueGraph(m)
		vVar.SetValueGraph(s)
		den := graph.AddScalar(graph.Sqrt(graph.Mul(s, bc2)), opt.Epsilon)
		upd := graph.Div(graph.Mul(m, bc1), den)
		val := values[i]
		if opt.WeightDecay > 0 && v.Shape().Rank() >= 2 {
			upd = graph.Add(upd, graph.MulScalar(val, opt.WeightDecay))
		}
		v.SetValueGraph(graph.Sub(val, graph.Mul(upd, lr)))
	}
	out := []*graph.Node{loss, norm}
	for _, m := range metrics {
		out = append(out, graph.ConvertDType(m, dtypes.Float32))
	}
	return out
}

// ErrNoData is returned by jobs that find no usable training example.
var ErrNoData = errors.New("train: no training examples")
