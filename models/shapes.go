package models

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/xla"

	"shopagent/features"
)

// Padded shapes on the XLA backend (docs/GPU.md). The XLA backend compiles one program per
// input shape, which takes tens of seconds for a small-preset training step on a GPU, so
// there the policy's inputs are padded to a small fixed set of shapes and every program of
// the set is compiled up front (a warm-up, with progress). The pure-Go backend compiles a
// shape in well under a second, so it keeps features.DefaultBuckets' fine buckets, which
// pad less.

// Shape sets, as named by the train jobs' Shapes option.
const (
	// ShapesAuto is the XLA set on the XLA backend, the fine buckets elsewhere.
	ShapesAuto = "auto"
	// ShapesFine is features.DefaultBuckets on every backend.
	ShapesFine = "fine"
	// ShapesXLA is the XLA set on every backend (tests run it on the pure-Go backend).
	ShapesXLA = "xla"
)

// XLAMaxActions is the one action-slot count of the XLA set (the largest bucket of
// features.DefaultBuckets too: longer action lists are scored in chunks, training states
// are capped at train.DefaultTrainMaxActions = 32).
const XLAMaxActions = 32

// XLAScoreBatch is the one batch size of forward passes (evaluation, generation,
// rollouts, reference log-probabilities) in the XLA set.
const XLAScoreBatch = 64

// IsXLA reports whether b is GoMLX's XLA (PJRT) backend.
func IsXLA(b backends.Backend) bool { return b != nil && b.Name() == xla.BackendName }

// UseXLAShapes reports whether a run with shape set mode ("" means ShapesAuto) on backend
// b pads to the XLA set.
func UseXLAShapes(mode string, b backends.Backend) (bool, error) {
	switch mode {
	case "", ShapesAuto:
		return IsXLA(b), nil
	case ShapesXLA:
		return true, nil
	case ShapesFine:
		return false, nil
	}
	return false, fmt.Errorf("models: shape set %q (want %s, %s or %s)", mode, ShapesAuto, ShapesFine, ShapesXLA)
}

// XLAStateLens returns the state lengths of the XLA set: half the configuration's
// maximum and the maximum (the maximum alone below 128 tokens). Results pages fill most of
// a 512-token state; item and description pages fit in half.
func XLAStateLens(cfg features.PolicyConfig) []int {
	if cfg.MaxStateLen >= 128 {
		return []int{cfg.MaxStateLen / 2, cfg.MaxStateLen}
	}
	return []int{cfg.MaxStateLen}
}

// XLATrainBuckets returns the XLA set of a training step of exactly batch states: the state
// lengths of XLAStateLens, XLAMaxActions action slots of the configuration's longest
// action, room for batch x XLAMaxActions distinct actions. A job pads every step to it:
// len(XLAStateLens) programs.
func XLATrainBuckets(cfg features.PolicyConfig, batch int) features.BucketSizes {
	return features.BucketSizes{
		Batch: []int{batch}, State: XLAStateLens(cfg), Action: []int{cfg.MaxActionLen},
		Actions: []int{XLAMaxActions}, Unique: []int{batch * XLAMaxActions},
	}
}

// XLAScoreBuckets returns the XLA set of forward passes: batches of XLAScoreBatch states
// (larger calls are cut), the state lengths of XLAStateLens, XLAMaxActions action slots of
// the longest action, and 256 or XLAScoreBatch x XLAMaxActions distinct actions (a few
// states' worth, or a full batch's): 2 x len(XLAStateLens) programs.
func XLAScoreBuckets(cfg features.PolicyConfig) features.BucketSizes {
	return features.BucketSizes{
		Batch: []int{XLAScoreBatch}, State: XLAStateLens(cfg), Action: []int{cfg.MaxActionLen},
		Actions: []int{XLAMaxActions}, Unique: []int{256, XLAScoreBatch * XLAMaxActions},
	}
}

// Shape is the padded size of a policy batch: B states of Ts tokens with A action slots,
// U distinct actions of Ta tokens. Each distinct Shape is one compiled program.
type Shape struct{ B, Ts, A, U, Ta int }

// String formats the shape as B x Ts, A, U x Ta.
func (s Shape) String() string {
	return fmt.Sprintf("states %dx%d, %d actions, %dx%d distinct", s.B, s.Ts, s.A, s.U, s.Ta)
}

// ShapeOf returns a policy batch's shape.
func ShapeOf(pb *features.PolicyBatch) Shape {
	return Shape{B: pb.B, Ts: pb.Ts, A: pb.A, U: pb.U, Ta: pb.Ta}
}

// BucketShapes lists every shape features.NewPolicyBatch can produce with buckets b, the
// batch padded to batch states when batch > 0 (else to b.Batch): every combination of the
// buckets, less the distinct-action sizes a batch cannot reach (a bucket whose smaller
// neighbour already holds B x the most actions). Meant for small sets (the XLA ones).
func BucketShapes(b features.BucketSizes, batch int) []Shape {
	batches := b.Batch
	if batch > 0 {
		batches = []int{batch}
	}
	var out []Shape
	for _, nb := range batches {
		for _, ts := range b.State {
			for _, ta := range b.Action {
				for _, a := range b.Actions {
					prev := 0
					for _, u := range b.Unique {
						if prev < nb*a {
							out = append(out, Shape{B: nb, Ts: ts, A: a, U: u, Ta: ta})
						}
						prev = u
					}
				}
			}
		}
	}
	return out
}

// ZeroBatch returns a policy batch of shape s holding zeros (one valid action slot per
// state): for compiling a program of that shape, not for running it.
func ZeroBatch(s Shape) *features.PolicyBatch {
	pb := &features.PolicyBatch{B: s.B, Ts: s.Ts, A: s.A, U: s.U, Ta: s.Ta, Real: s.B,
		StateIDs: make([]int32, s.B*s.Ts), StateMask: make([]int32, s.B*s.Ts), StateTypes: make([]int32, s.B*s.Ts),
		ActionIDs: make([]int32, s.U*s.Ta), ActionMask: make([]int32, s.U*s.Ta),
		ActionIndex: make([]int32, s.B*s.A), ActionValid: make([]float32, s.B*s.A), ActionPos: make([]int32, s.B*s.A),
		Targets: make([]int32, s.B), TargetValid: make([]float32, s.B)}
	for i := range s.B {
		pb.StateMask[i*s.Ts] = 1
		pb.ActionValid[i*s.A] = 1
	}
	for u := range s.U {
		pb.ActionMask[u*s.Ta] = 1
	}
	return pb
}

// WarmUp compiles a program for every input list of inputs with compile (a context.Exec's
// PreCompile), writing one progress line per program to log (nil: silent), and returns
// the total compile time. what names the programs in the log.
func WarmUp(what string, inputs [][]any, compile func(args ...any) error, log io.Writer) (time.Duration, error) {
	start := time.Now()
	for i, args := range inputs {
		t := time.Now()
		if err := compile(args...); err != nil {
			return time.Since(start), fmt.Errorf("models: warm-up of %s, program %d of %d: %w", what, i+1, len(inputs), err)
		}
		if log != nil {
			fmt.Fprintf(log, "warm-up: %s: compiled program %d/%d in %s\n", what, i+1, len(inputs), time.Since(t).Round(time.Millisecond))
		}
	}
	return time.Since(start), nil
}

// ForwardArgs returns the policy forward pass's arguments (BatchTensors of a ZeroBatch)
// for each shape, for WarmUp.
func ForwardArgs(shapes []Shape) [][]any {
	out := make([][]any, 0, len(shapes))
	for _, s := range shapes {
		var args []any
		for _, t := range BatchTensors(ZeroBatch(s)) {
			args = append(args, t)
		}
		out = append(out, args)
	}
	return out
}

// WarmUp compiles the policy's forward pass for every shape its buckets can produce, with
// progress on log; the policy must pad to a small set (XLAScoreBuckets): with the fine
// buckets that is hundreds of programs, and WarmUp refuses.
func (p *Policy) WarmUp(log io.Writer) (time.Duration, error) {
	shapes := BucketShapes(p.Buckets, 0)
	if len(shapes) > 64 {
		return 0, fmt.Errorf("models: warm-up: the policy's buckets make %d shapes; use XLAScoreBuckets", len(shapes))
	}
	return WarmUp("policy forward", ForwardArgs(shapes), p.exec.PreCompile, log)
}

// useBackendShapes gives a policy on the XLA backend the XLA set, compiled up front with
// one progress line per program on stderr (NewPolicy's callers are commands); on other
// backends it keeps the fine buckets.
func (p *Policy) useBackendShapes(backend backends.Backend) error {
	if !IsXLA(backend) {
		return nil
	}
	p.Buckets = XLAScoreBuckets(p.Config)
	_, err := p.WarmUp(os.Stderr)
	return err
}
