package train

import (
	"fmt"
	"io"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"shopagent/features"
	"shopagent/models"
)

// XLA training without recompiles (docs/GPU.md): on the XLA backend every job pads its
// steps to models.XLATrainBuckets (one batch size, XLAStateLens state lengths, 32 action
// slots, the longest action, batch x 32 distinct actions) and the rollout scorer to
// models.XLAScoreBuckets, and Run compiles every program of the set before the first step,
// logging each. Pretraining has one fixed shape already. Config.Shapes chooses the set
// (models.ShapesAuto: XLA set on the XLA backend only).

// xlaRLBatch is the batch of a PPO minibatch in the XLA set (larger minibatches, rare with
// the default 8 episodes in 2 minibatches, are padded to a multiple of 32 and compile a
// program of their own).
const xlaRLBatch = 64

// shapedJob is a Job that pads its steps to the XLA set when asked.
type shapedJob interface {
	Job
	// useXLAShapes switches the job's batches to the XLA set and returns the step inputs
	// of every shape the job can then produce (zeros, for compiling).
	useXLAShapes() [][]*tensors.Tensor
}

// prepareShapes puts job and the rollout scorer sc (nil without one) on the XLA shape set
// when cfg.Shapes and the backend say so, and compiles every program of the set up front
// on exec (the training step) and on the scorer, with progress on log.
func prepareShapes(cfg Config, job Job, mctx *context.Context, exec *context.Exec, sc *ContextScorer, log io.Writer) error {
	on, err := models.UseXLAShapes(cfg.Shapes, cfg.Backend)
	if err != nil || !on {
		return err
	}
	sj, ok := job.(shapedJob)
	if !ok {
		return nil
	}
	steps := sj.useXLAShapes()
	var fwd []models.Shape
	if sc != nil {
		sc.buckets = models.XLAScoreBuckets(cfg.Policy)
		fwd = models.BucketShapes(sc.buckets, 0)
	}
	fmt.Fprintf(log, "%s: XLA shape set: %d training-step programs, %d forward programs; compiling them before the first step\n",
		job.Name(), len(steps), len(fwd))
	hyper := tensors.FromValue([]float32{0, 1, 1}) // learning rate and Adam's bias corrections
	args := make([][]any, len(steps))
	for i, ts := range steps {
		args[i] = append(args[i], hyper)
		for _, t := range ts {
			args[i] = append(args[i], t)
		}
	}
	dStep, err := models.WarmUp(job.Name()+" step", args, precompileKeepingVariables(mctx, cfg.Backend, exec), log)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	dFwd, err := models.WarmUp("rollout forward", models.ForwardArgs(fwd), sc.precompile, log)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	fmt.Fprintf(log, "%s: warm-up compiled %d programs in %s (training steps %s, forward passes %s)\n",
		job.Name(), len(steps)+len(fwd), (dStep + dFwd).Round(1e6), dStep.Round(1e6), dFwd.Round(1e6))
	return nil
}

// precompileKeepingVariables returns a PreCompile of exec, a graph that updates variables
// (a training step), that leaves the context's variables as they were. GoMLX v0.26.0's
// PreCompile hands the buffers of the variables the graph changes over to the program, as a
// run does, and resets the variables, but runs nothing, so their values would be lost:
// this keeps a copy of every value and puts it back, and initializes the variables the
// graph's construction created (the optimizer's state, weights of a fresh run) again: they
// need an initializer (every variable of models and train has one; a variable created by
// VariableWithValue during the construction would fail the warm-up with an error).
func precompileKeepingVariables(ctx *context.Context, backend backends.Backend, exec *context.Exec) func(args ...any) error {
	return func(args ...any) error {
		if err := ctx.InitializeVariables(backend, nil); err != nil {
			return err
		}
		saved := map[*context.Variable]*tensors.Tensor{}
		for v := range ctx.IterVariables() {
			if !v.HasValue() {
				continue
			}
			t, err := v.Value()
			if err != nil {
				return err
			}
			if saved[v], err = t.Clone(); err != nil {
				return err
			}
		}
		err := exec.PreCompile(args...)
		for v, t := range saved {
			if v.HasValue() { // not handed over: the copy is not needed
				t.FinalizeAll()
				continue
			}
			if e := v.SetValue(t); e != nil && err == nil {
				err = e
			}
		}
		if err != nil {
			return err
		}
		return ctx.InitializeVariables(backend, nil)
	}
}

// precompile compiles the scorer's forward pass for args (nothing for a nil scorer).
func (s *ContextScorer) precompile(args ...any) error {
	if s == nil {
		return nil
	}
	return s.exec.PreCompile(args...)
}

// zeroSteps returns, for each shape a job's buckets produce with batch states, the step
// inputs extra(pb) builds from a zero batch of that shape.
func zeroSteps(b features.BucketSizes, batch int, extra func(pb *features.PolicyBatch) []*tensors.Tensor) [][]*tensors.Tensor {
	var out [][]*tensors.Tensor
	for _, s := range models.BucketShapes(b, batch) {
		out = append(out, extra(models.ZeroBatch(s)))
	}
	return out
}

// rlZeroTensors mirrors rlBatchTensors for a zero batch: policy inputs, actions, valid, old
// log-probs, advantages, returns and, withRef, the reference log-probs.
func rlZeroTensors(pb *features.PolicyBatch, withRef bool) []*tensors.Tensor {
	ts := models.BatchTensors(pb)
	ts = append(ts, tensors.FromFlatDataAndDimensions(make([]int32, pb.B), pb.B))
	for range 4 {
		ts = append(ts, tensors.FromFlatDataAndDimensions(make([]float32, pb.B), pb.B))
	}
	if withRef {
		ts = append(ts, tensors.FromFlatDataAndDimensions(make([]float32, pb.B*pb.A), pb.B, pb.A))
	}
	return ts
}

// useXLAShapes implements shapedJob: every step is batchSize states.
func (j *ILJob) useXLAShapes() [][]*tensors.Tensor {
	j.buckets = models.XLATrainBuckets(j.cfg, j.batchSize)
	return zeroSteps(j.buckets, j.batchSize, func(pb *features.PolicyBatch) []*tensors.Tensor {
		return PolicyBatchTensors(pb, true)
	})
}

// useXLAShapes implements shapedJob: every step is hp.Batch preference states.
func (j *DPOJob) useXLAShapes() [][]*tensors.Tensor {
	j.order.buckets = models.XLATrainBuckets(j.cfg, j.hp.Batch)
	return zeroSteps(j.order.buckets, j.hp.Batch, func(pb *features.PolicyBatch) []*tensors.Tensor {
		return append(models.BatchTensors(pb), tensors.FromFlatDataAndDimensions(pb.Targets, pb.B),
			tensors.FromFlatDataAndDimensions(make([]float32, pb.B*pb.A), pb.B, pb.A),
			tensors.FromFlatDataAndDimensions(make([]float32, pb.B*pb.A), pb.B, pb.A))
	})
}

// useXLAShapes implements shapedJob: the rollout rows of a step (at most hp.MaxStates)
// are padded to hp.MaxStates states; with an IL term, its batches follow the IL set, and
// every pair of shapes is a program.
func (j *PGJob) useXLAShapes() [][]*tensors.Tensor {
	j.buckets = models.XLATrainBuckets(j.cfg, j.hp.MaxStates)
	rl := zeroSteps(j.buckets, j.hp.MaxStates, func(pb *features.PolicyBatch) []*tensors.Tensor { return rlZeroTensors(pb, false) })
	if j.il == nil {
		return rl
	}
	var out [][]*tensors.Tensor
	for _, il := range j.il.useXLAShapes() {
		for _, r := range rl {
			out = append(out, append(append([]*tensors.Tensor(nil), r...), il...))
		}
	}
	return out
}

// useXLAShapes implements shapedJob: minibatches are padded to xlaRLBatch states.
func (j *PPOJob) useXLAShapes() [][]*tensors.Tensor {
	j.buckets = models.XLATrainBuckets(j.cfg, xlaRLBatch)
	return zeroSteps(j.buckets, xlaRLBatch, func(pb *features.PolicyBatch) []*tensors.Tensor { return rlZeroTensors(pb, true) })
}
