// Package bench holds performance benchmarks that compare shopagent's GoMLX models with a
// PyTorch peer (torch_encoder_step.py). See docs/GOMLX.md for the commands and results.
package bench

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"shopagent/features"
	"shopagent/models"
	"shopagent/train"
)

// Benchmark configuration, shared with bench/torch_encoder_step.py.
const (
	benchBatch   = 32
	benchSeq     = 128
	benchClasses = 2
)

// benchConfigs are the encoders timed: the 2-layer/128-dim/4-head model of the GoMLX notes
// and the "small" preset. Both use BERT's 30522-token vocabulary.
func benchConfigs() map[string]features.BertConfig {
	small, err := features.Preset("small")
	if err != nil {
		panic(err)
	}
	return map[string]features.BertConfig{
		"tiny128": {VocabSize: features.BertVocabSize, Hidden: 128, Layers: 2, Heads: 4, Intermediate: 512,
			MaxPositions: 512, TypeVocab: 2, Dropout: 0.1},
		"small": small,
	}
}

// trainStep builds one full training step: encoder forward with dropout, a linear
// classifier on [CLS], softmax cross-entropy, backward and AdamW update of all variables.
type trainStep struct {
	exec             *context.Exec
	ids, mask, label *tensors.Tensor
}

func newTrainStep(tb testing.TB, backend backends.Backend, cfg features.BertConfig) *trainStep {
	return newPhaseStep(tb, backend, cfg, "step")
}

// newPhaseStep builds a part of the training step, to see where the time goes: "fwd"
// (forward with dropout and loss), "fwdbwd" (plus the gradients of all variables, reduced to
// one scalar so none is pruned) or "step" (plus the AdamW update).
func newPhaseStep(tb testing.TB, backend backends.Backend, cfg features.BertConfig, phase string) *trainStep {
	tb.Helper()
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(7))
	opt := optimizers.Adam().LearningRate(1e-4).Betas(0.9, 0.999).Epsilon(1e-8).WeightDecay(0.01).Done()
	exec, err := context.NewExec(backend, ctx, func(ctx *context.Context, ids, mask, labels *graph.Node) *graph.Node {
		g := ids.Graph()
		ctx.SetTraining(g, true)
		hidden := models.BertEncode(ctx.In("bert"), cfg, ids, mask, true)
		logits := classifierHead(ctx.In("head"), hidden, cfg.Hidden, benchClasses)
		loss := crossEntropy(logits, labels)
		switch phase {
		case "fwd":
		case "fwdbwd":
			total := loss
			for _, grad := range ctx.BuildTrainableVariablesGradientsGraph(loss) {
				total = graph.Add(total, graph.MulScalar(graph.ReduceAllSum(grad), 0))
			}
			return total
		default:
			opt.UpdateGraph(ctx, g, loss)
		}
		return loss
	})
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]int32, benchBatch*benchSeq)
	mask := make([]int32, benchBatch*benchSeq)
	labels := make([]int32, benchBatch)
	for i := range ids {
		ids[i] = int32(rng.IntN(cfg.VocabSize))
		mask[i] = 1
	}
	for i := range labels {
		labels[i] = int32(rng.IntN(benchClasses))
	}
	return &trainStep{
		exec:  exec,
		ids:   tensors.FromFlatDataAndDimensions(ids, benchBatch, benchSeq),
		mask:  tensors.FromFlatDataAndDimensions(mask, benchBatch, benchSeq),
		label: tensors.FromFlatDataAndDimensions(labels, benchBatch),
	}
}

func (s *trainStep) run(tb testing.TB) float32 {
	out, err := s.exec.Exec(s.ids, s.mask, s.label)
	if err != nil {
		tb.Fatal(err)
	}
	return out[0].Value().(float32)
}

// classifierHead is a linear layer on the [CLS] hidden state: [B, T, H] -> [B, classes].
func classifierHead(ctx *context.Context, hidden *graph.Node, h, classes int) *graph.Node {
	cls := models.TokenAt(hidden, 0)
	w := ctx.WithInitializer(initializers.RandomNormalFn(ctx, models.BertInitStddev)).
		VariableWithShape("weight", shapes.Make(dtypes.Float32, classes, h)).ValueGraph(hidden.Graph())
	b := ctx.WithInitializer(initializers.Zero).
		VariableWithShape("bias", shapes.Make(dtypes.Float32, classes)).ValueGraph(hidden.Graph())
	return graph.Add(graph.DotGeneral(cls, []int{1}, nil, w, []int{1}, nil), graph.InsertAxes(b, 0))
}

// crossEntropy is the mean softmax cross-entropy of logits [B, C] against int labels [B].
func crossEntropy(logits, labels *graph.Node) *graph.Node {
	classes := logits.Shape().Dimensions[1]
	maxLogit := graph.StopGradient(graph.ReduceAndKeep(logits, graph.ReduceMax, -1))
	shifted := graph.Sub(logits, maxLogit)
	logSumExp := graph.Log(graph.ReduceSum(graph.Exp(shifted), -1))
	picked := graph.ReduceSum(graph.Mul(shifted, graph.OneHot(labels, classes, dtypes.Float32)), -1)
	return graph.ReduceAllMean(graph.Sub(logSumExp, picked))
}

func benchBackend(tb testing.TB) backends.Backend {
	tb.Helper()
	if v := os.Getenv("SHOPAGENT_BENCH_BLOCK_LOG2"); v != "" {
		var log2 int
		if _, err := fmt.Sscan(v, &log2); err != nil {
			tb.Fatal(err)
		}
		simplego.DotGeneralTargetBlockLog2Dim[dtypes.Float32] = log2
	}
	backend, err := models.NewBackend(os.Getenv("SHOPAGENT_BENCH_BACKEND"))
	if err != nil {
		tb.Fatal(err)
	}
	return backend
}

// BenchmarkEncoderTrainStep times one training step (forward + backward + AdamW) at batch
// 32, sequence 128, with the Dot/DotGeneral gradient fix. The backend comes from
// $SHOPAGENT_BENCH_BACKEND (default "go"). Run with:
//
//	go test ./bench/ -run '^$' -bench EncoderTrainStep -benchtime 5x
func BenchmarkEncoderTrainStep(b *testing.B) {
	train.InstallFastDotGradients()
	backend := benchBackend(b)
	configs := benchConfigs()
	for _, name := range []string{"tiny128", "small"} {
		b.Run(name, func(b *testing.B) {
			step := newTrainStep(b, backend, configs[name])
			start := time.Now()
			step.run(b) // Compilation and variable initialisation.
			first := time.Since(start)
			b.ResetTimer()
			for b.Loop() {
				step.run(b)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
			b.ReportMetric(float64(first.Milliseconds()), "first-step-ms")
		})
	}
}

// TestEncoderTrainStepTimes prints median step times when SHOPAGENT_BENCH_STEPS is set
// (it is skipped otherwise, so `go test ./...` stays fast):
//
//	SHOPAGENT_BENCH_STEPS=5 go test ./bench/ -run TestEncoderTrainStepTimes -v -timeout 30m
//
// $SHOPAGENT_BENCH_CONFIGS restricts the configurations (e.g. "tiny128"),
// $SHOPAGENT_BENCH_PHASE times a part of the step (fwd, fwdbwd; see newPhaseStep), and
// $SHOPAGENT_BENCH_STOCK_GRADIENTS=1 keeps GoMLX's stock Dot/DotGeneral gradients.
func TestEncoderTrainStepTimes(t *testing.T) {
	var steps int
	if _, err := fmt.Sscan(os.Getenv("SHOPAGENT_BENCH_STEPS"), &steps); err != nil || steps <= 0 {
		t.Skip("set SHOPAGENT_BENCH_STEPS to run")
	}
	if os.Getenv("SHOPAGENT_BENCH_STOCK_GRADIENTS") == "" {
		train.InstallFastDotGradients()
	}
	backend := benchBackend(t)
	configs := benchConfigs()
	names := []string{"tiny128", "small"}
	if only := os.Getenv("SHOPAGENT_BENCH_CONFIGS"); only != "" {
		names = []string{only}
	}
	phase := os.Getenv("SHOPAGENT_BENCH_PHASE") // fwd, fwdbwd or step (default).
	for _, name := range names {
		cfg := configs[name]
		step := newPhaseStep(t, backend, cfg, phase)
		start := time.Now()
		firstLoss := step.run(t)
		loss := firstLoss
		first := time.Since(start)
		times := make([]float64, steps)
		cpuTimes := make([]float64, steps)
		for i := range times {
			start = time.Now()
			cpu0 := cpuSeconds()
			loss = step.run(t)
			times[i] = float64(time.Since(start).Microseconds()) / 1000
			cpuTimes[i] = (cpuSeconds() - cpu0) * 1000
		}
		kernel, _ := models.MatmulKernel()
		t.Logf("%s %s: params=%d first(compile+init)=%.0fms wall ms/step median=%.0f min=%.0f; cpu ms/step median=%.0f min=%.0f; steps=%.0f first-loss=%.4f loss=%.4f backend=%s matmul=%s elementwise=%s loadavg=%s",
			name, phase, cfg.NumParams(), float64(first.Microseconds())/1000, median(times), slices.Min(times),
			median(cpuTimes), slices.Min(cpuTimes), times, firstLoss, loss, os.Getenv("SHOPAGENT_BENCH_BACKEND"),
			kernel, cmp.Or(os.Getenv(models.ElementwiseEnvVar), "elementwise"), loadAvg())
	}
}

// BenchmarkDotGeneralLayouts times single DotGeneral products of the shapes a training step
// of tiny128 and small runs, in the layouts the forward and the fixed gradients use, through
// a compiled GoMLX graph on the backend (so with package matmul's kernel unless
// SHOPAGENT_MATMUL=simplego keeps GoMLX's; -cpu 1 for one core):
//
//	go test ./bench/ -run '^$' -bench DotGeneralLayouts -benchtime 20x -cpu 1
func BenchmarkDotGeneralLayouts(b *testing.B) {
	backend := benchBackend(b)
	type layout struct {
		name     string
		lhs, rhs []int
		lc, lb   []int
		rc, rb   []int
	}
	const n = benchBatch * benchSeq
	var layouts []layout
	for _, c := range []struct {
		config      string
		h, f, heads int
		variants    bool // Also the layouts the model does not use (weights [in, out]).
	}{{"tiny128", 128, 512, 4, true}, {"small", 256, 1024, 4, false}} {
		h, f, dk := c.h, c.f, c.h/c.heads
		bh := benchBatch * c.heads
		layouts = append(layouts,
			layout{c.config + "/fwd_x[N,in]_w[out,in]", []int{n, h}, []int{f, h}, []int{1}, nil, []int{1}, nil},
			layout{c.config + "/dx_v[N,out]_w[out,in]", []int{n, f}, []int{f, h}, []int{1}, nil, []int{0}, nil},
			layout{c.config + "/dw_v[N,out]_x[N,in]", []int{n, f}, []int{n, h}, []int{0}, nil, []int{0}, nil},
			layout{c.config + "/dw_sq_v[N,h]_x[N,h]", []int{n, h}, []int{n, h}, []int{0}, nil, []int{0}, nil},
			layout{c.config + "/scores_q[BH,T,dk]_k", []int{bh, benchSeq, dk}, []int{bh, benchSeq, dk}, []int{2}, []int{0}, []int{2}, []int{0}},
			layout{c.config + "/ctx_p[BH,T,T]_v[BH,T,dk]", []int{bh, benchSeq, benchSeq}, []int{bh, benchSeq, dk}, []int{2}, []int{0}, []int{1}, []int{0}},
		)
		if c.variants {
			layouts = append(layouts,
				layout{c.config + "/fwd_x[N,in]_w[in,out]", []int{n, h}, []int{h, f}, []int{1}, nil, []int{0}, nil},
				layout{c.config + "/dw_sq_vT[h,N]_xT[h,N]", []int{h, n}, []int{h, n}, []int{1}, nil, []int{1}, nil})
		}
	}
	for _, l := range layouts {
		b.Run(l.name, func(b *testing.B) {
			exec, err := graph.NewExec(backend, func(x, y *graph.Node) *graph.Node {
				return graph.DotGeneral(x, l.lc, l.lb, y, l.rc, l.rb)
			})
			if err != nil {
				b.Fatal(err)
			}
			x := tensors.FromShape(shapes.Make(dtypes.Float32, l.lhs...))
			y := tensors.FromShape(shapes.Make(dtypes.Float32, l.rhs...))
			out := exec.MustExec(x, y)[0]
			macs := out.Shape().Size()
			for i, d := range l.lhs {
				if slicesContain(l.lc, i) {
					macs *= d
				}
			}
			out.FinalizeAll()
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for b.Loop() {
				exec.MustExec(x, y)[0].FinalizeAll()
			}
			flop := 2 * float64(macs) * float64(b.N)
			b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(flop/(cpuSeconds()-cpu0)/1e9, "GFLOP/cpu-s")
		})
	}
}

func slicesContain(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// cpuSeconds is the user+system CPU time of the process so far. On a shared machine it is a
// steadier measure than wall time for single-threaded work.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func median(values []float64) float64 {
	sorted := slices.Clone(values)
	sort.Float64s(sorted)
	return sorted[len(sorted)/2]
}

// loadAvg returns the 1-minute load average (Linux), to flag runs on a busy machine.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return "?"
	}
	return fields[0]
}
