package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"shopagent/atomicfile"
	"shopagent/features"
	"shopagent/models"
)

// Typed entry points of the training jobs. Each job (RunPretrain in pretrain.go, RunIL in
// il.go, RunPG in pg.go, RunPPO in ppo.go, RunDPO in dpo.go, RunGenerate in generate.go)
// takes one configuration struct whose Default... function holds every default in one
// place; the CLI maps flags onto it and the experiment calls the functions directly.
// RunOptions are the parts every job shares: where the run goes, the optimizer and its
// schedule, checkpointing, logging and the wall-clock deadline of the stage.

// RunOptions configure a training run the way every job shares.
type RunOptions struct {
	// Out is the run directory: checkpoints/, metrics.parquet, vocab.txt, result.json.
	Out string
	// Resume continues from Out's latest checkpoint.
	Resume bool
	// Backend is the GoMLX backend ("go", "xla:cuda", ...; models.NewBackend).
	Backend string
	// Shapes is the padded shape set (Config.Shapes; "" for models.ShapesAuto).
	Shapes string
	// Seed seeds initialisation, dropout, data order, masking and rollouts.
	Seed int64
	// Steps is the number of optimizer updates; Epochs > 0 replaces it by that many
	// passes over a job's fixed data (IL, DPO).
	Steps  int64
	Epochs int
	// Batch is the number of examples per update.
	Batch int
	// LR is the peak learning rate; Warmup a fraction of the steps (< 1) or a step
	// count; Decay one of DecayLinear, DecayCosine, DecayConstant; MinLRRatio the
	// decay's floor as a fraction of LR.
	LR         float64
	Warmup     float64
	Decay      string
	MinLRRatio float64
	// WeightDecay is AdamW's (matrices and embeddings only); Clip the global gradient
	// norm clipping (0: off).
	WeightDecay float64
	Clip        float64
	// Dropout is the encoder's dropout (< 0: the preset's or the initial checkpoint's).
	Dropout float64
	// CheckpointEvery saves every this many steps (0: only at the end); Keep is the
	// number of checkpoints kept (0: all).
	CheckpointEvery int64
	Keep            int
	// Log receives progress (nil: silent); LogEvery writes a line every this many steps
	// (0: 10% of the run); ProgressBar draws a bar on Log.
	Log         io.Writer `json:"-"`
	LogEvery    int64     `json:"-"`
	ProgressBar bool      `json:"-"`
	// TimeBudget stops training after this much training time (0: none); Deadline stops
	// the run at a wall-clock time (zero: none): give a stage's start + budget, so the
	// job's preparation (vocabulary, encodings, reference passes) counts too.
	TimeBudget time.Duration
	Deadline   time.Time
	// AfterCheckpoint is called with every checkpoint directory (an export, say).
	AfterCheckpoint func(dir string) error `json:"-"`
	// Info is added to the checkpoints' provenance.
	Info map[string]any
}

// DefaultRunOptions returns the shared defaults: the pure-Go backend, seed 1, batch 32,
// learning rate 1e-3 with 10% warm-up and linear decay, AdamW weight decay 0.01,
// clipping at 1, the preset's dropout, a checkpoint every 100 steps, 3 kept.
func DefaultRunOptions() RunOptions {
	return RunOptions{Backend: models.DefaultBackend, Seed: 1, Steps: 500, Batch: 32, LR: 1e-3, Warmup: 0.1, Decay: DecayLinear,
		WeightDecay: 0.01, Clip: 1, Dropout: -1, CheckpointEvery: 100, Keep: 3}
}

// validate checks the options a run needs.
func (o RunOptions) validate() error {
	switch {
	case o.Out == "":
		return fmt.Errorf("train: a run directory is required")
	case o.Steps <= 0 && o.Epochs <= 0:
		return fmt.Errorf("train: steps must be positive")
	case o.Batch <= 0:
		return fmt.Errorf("train: batch must be positive")
	case !(o.LR > 0):
		return fmt.Errorf("train: the learning rate must be positive")
	case o.Dropout >= 1:
		return fmt.Errorf("train: dropout must be below 1")
	case o.TimeBudget < 0:
		return fmt.Errorf("train: the time budget must not be negative")
	}
	return nil
}

// config turns the options into the trainer's Config for a policy configuration,
// tokenizer and step count.
func (o RunOptions) config(pcfg features.PolicyConfig, tok *features.Tokenizer, steps int64) (Config, error) {
	InstallFastDotGradients()
	be, err := models.NewBackend(o.Backend)
	if err != nil {
		return Config{}, err
	}
	warm := int64(o.Warmup)
	if o.Warmup < 1 {
		warm = int64(o.Warmup * float64(steps))
	}
	info := map[string]any{"seed": o.Seed, "backend": o.Backend}
	for k, v := range o.Info {
		info[k] = v
	}
	return Config{
		RunDir: o.Out, Steps: steps,
		Schedule:        Schedule{Peak: o.LR, Warmup: warm, Decay: o.Decay, MinRatio: o.MinLRRatio},
		Optimizer:       OptimizerConfig{WeightDecay: o.WeightDecay, ClipNorm: o.Clip},
		CheckpointEvery: o.CheckpointEvery, Keep: o.Keep, Resume: o.Resume, Seed: o.Seed,
		Policy: pcfg, Tokenizer: tok, Backend: be, Shapes: o.Shapes,
		Log: o.Log, LogEvery: o.LogEvery, ProgressBar: o.ProgressBar,
		Info: info, AfterCheckpoint: o.AfterCheckpoint,
		TimeBudget: o.TimeBudget, Deadline: o.Deadline,
	}, nil
}

// logf writes a line to the options' log (nothing when it is nil).
func (o RunOptions) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// RunResult is the outcome of a typed training run: the trainer's Result and the
// run's wall clock from the call (its preparation included).
type RunResult struct {
	*Result
	// Job names the job ("pretrain", "il", "pg", "ppo", "dpo").
	Job string
	// Wall is the wall-clock time of the whole call.
	Wall time.Duration
	// Info holds job-specific figures (examples, pairs, episodes, ...).
	Info map[string]any
}

// ResultFile is the file a run directory's summary is written to.
const ResultFile = "result.json"

// RunSummary is the content of a run's result.json.
type RunSummary struct {
	Job        string             `json:"job"`
	Status     string             `json:"status"`
	Step       int64              `json:"step"`
	StartStep  int64              `json:"start_step"`
	ElapsedS   float64            `json:"elapsed_s"`
	WallS      float64            `json:"wall_s"`
	LastLoss   float64            `json:"last_loss"`
	MeanLoss   float64            `json:"mean_loss"`
	Metrics    map[string]float64 `json:"metrics"`
	Checkpoint string             `json:"checkpoint"`
	Budget     bool               `json:"budget_reached,omitempty"`
	Info       map[string]any     `json:"info,omitempty"`
}

// Summary returns the run's summary (result.json).
func (r *RunResult) Summary() RunSummary {
	status := "finished"
	if r.Interrupted {
		status = "interrupted"
	}
	metrics := map[string]float64{}
	for k, v := range r.LastMetrics {
		if !math.IsNaN(v) && !math.IsInf(v, 0) { // a run stopped before its first update has none
			metrics[k] = v
		}
	}
	return RunSummary{Job: r.Job, Status: status, Step: r.Step, StartStep: r.StartStep, ElapsedS: r.Elapsed.Seconds(),
		WallS: r.Wall.Seconds(), LastLoss: jsonFloat(r.LastLoss), MeanLoss: jsonFloat(r.MeanLoss), Metrics: metrics,
		Checkpoint: r.Checkpoint, Budget: r.BudgetReached, Info: r.Info}
}

// jsonFloat maps NaN and infinities (which JSON cannot hold) to 0.
func jsonFloat(x float64) float64 {
	if x != x || x > 1e308 || x < -1e308 {
		return 0
	}
	return x
}

// finish wraps the trainer's result and writes RUN_DIR/result.json.
func finish(job string, out string, start time.Time, res *Result, info map[string]any) (*RunResult, error) {
	r := &RunResult{Result: res, Job: job, Wall: time.Since(start), Info: info}
	b, err := json.MarshalIndent(r.Summary(), "", "  ")
	if err != nil {
		return r, fmt.Errorf("train: %s: result: %w", job, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(out, ResultFile), append(b, '\n'), 0o644); err != nil {
		return r, fmt.Errorf("train: %s: result: %w", job, err)
	}
	return r, nil
}

// ReadRunSummary reads a run directory's result.json.
func ReadRunSummary(dir string) (RunSummary, error) {
	var s RunSummary
	b, err := os.ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		return s, fmt.Errorf("train: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("train: %s: %w", filepath.Join(dir, ResultFile), err)
	}
	return s, nil
}
