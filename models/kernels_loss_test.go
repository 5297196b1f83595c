package models_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"

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

// lossCurveEnv makes the test binary, run as a child process, print a training run's
// losses as JSON instead of testing. The kernels are chosen once per process
// (models.MatmulEnvVar, models.ElementwiseEnvVar), so each curve needs its own process.
const lossCurveEnv = "SHOPAGENT_LOSS_CURVE_CHILD"

// TestKernelsLossCurve trains a small BERT classifier (2 layers, hidden 64, 4 heads,
// dropout on, AdamW) for 40 steps twice, in two child processes: with the kernels this
// process would use (the fastest the CPU has, or the one forced by $SHOPAGENT_MATMUL unless
// that is GoMLX's) and
// with GoMLX's own executors ($SHOPAGENT_MATMUL=simplego, $SHOPAGENT_ELEMENTWISE=simplego).
// Same seeds, same data, same dropout masks: the curves differ only by float32 rounding
// (other summation orders, fused multiply-adds, Exp within one ulp), which must stay
// within 1e-4 at every step while the loss falls by more than half.
func TestKernelsLossCurve(t *testing.T) {
	if os.Getenv(lossCurveEnv) != "" {
		losses := trainLossCurve(t)
		out, err := json.Marshal(losses)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("LOSSES %s\n", out)
		return
	}
	if testing.Short() {
		t.Skip("trains twice in child processes")
	}
	// The kernels this process would use, but never GoMLX's (the comparison would be empty).
	fastEnv := []string{models.ElementwiseEnvVar + "="}
	if strings.EqualFold(strings.TrimSpace(os.Getenv(models.MatmulEnvVar)), models.SimplegoStock) {
		fastEnv = append(fastEnv, models.MatmulEnvVar+"=auto")
	}
	fast := lossCurveChild(t, fastEnv)
	stock := lossCurveChild(t, []string{models.MatmulEnvVar + "=" + models.SimplegoStock, models.ElementwiseEnvVar + "=" + models.SimplegoStock})
	if len(fast.Losses) != len(stock.Losses) || len(fast.Losses) == 0 {
		t.Fatalf("curves of %d and %d steps", len(fast.Losses), len(stock.Losses))
	}
	if fast.Kernel == models.SimplegoStock || stock.Kernel != models.SimplegoStock {
		t.Fatalf("kernels: %q and %q, want a package matmul kernel and %q", fast.Kernel, stock.Kernel, models.SimplegoStock)
	}
	worst := 0.0
	for i := range fast.Losses {
		d := math.Abs(fast.Losses[i] - stock.Losses[i])
		worst = max(worst, d)
		if d > 1e-4 || math.IsNaN(d) {
			t.Errorf("step %d: loss %.6f with the %s kernels, %.6f with GoMLX's", i, fast.Losses[i], fast.Kernel, stock.Losses[i])
		}
	}
	first, last := stock.Losses[0], stock.Losses[len(stock.Losses)-1]
	if !(last < 0.5*first) {
		t.Errorf("the loss did not fall by half: %.4f -> %.4f", first, last)
	}
	t.Logf("%s vs GoMLX: loss %.4f -> %.4f vs %.4f -> %.4f, largest difference %.2g",
		fast.Kernel, fast.Losses[0], fast.Losses[len(fast.Losses)-1], first, last, worst)
}

type lossCurve struct {
	Kernel string
	Losses []float64
}

// lossCurveChild runs this test in a child process with extra environment variables.
func lossCurveChild(t *testing.T, env []string) lossCurve {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKernelsLossCurve$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), lossCurveEnv+"=1"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %v: %v\n%s", env, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "LOSSES "); ok {
			var c lossCurve
			if err := json.Unmarshal([]byte(rest), &c); err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
	t.Fatalf("child %v printed no losses:\n%s", env, out)
	return lossCurve{}
}

// trainLossCurve trains the classifier and returns the kernel used and the losses.
func trainLossCurve(t *testing.T) lossCurve {
	train.InstallFastDotGradients()
	backend, err := models.NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	kernel, err := models.MatmulKernel()
	if err != nil {
		t.Fatal(err)
	}
	cfg := features.BertConfig{VocabSize: 200, Hidden: 64, Layers: 2, Heads: 4, Intermediate: 256,
		MaxPositions: 64, TypeVocab: 2, Dropout: 0.1}
	const batch, seq, steps = 16, 32, 40
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(3))
	opt := optimizers.Adam().LearningRate(1e-3).WeightDecay(0.01).Done()
	step, err := context.NewExec(backend, ctx, func(ctx *context.Context, ids, mask, labels *graph.Node) *graph.Node {
		g := ids.Graph()
		ctx.SetTraining(g, true)
		hidden := models.BertEncode(ctx.In("bert"), cfg, ids, mask, true)
		cls := models.TokenAt(hidden, 0)
		w := ctx.In("head").WithInitializer(initializers.RandomNormalFn(ctx, models.BertInitStddev)).
			VariableWithShape("weight", shapes.Make(dtypes.Float32, cfg.Hidden, 2)).ValueGraph(g)
		logits := graph.Dot(cls, w)
		maxLogit := graph.StopGradient(graph.ReduceAndKeep(logits, graph.ReduceMax, -1))
		shifted := graph.Sub(logits, maxLogit)
		logZ := graph.Log(graph.ReduceSum(graph.Exp(shifted), -1))
		picked := graph.ReduceSum(graph.Mul(shifted, graph.OneHot(labels, 2, dtypes.Float32)), -1)
		loss := graph.ReduceAllMean(graph.Sub(logZ, picked))
		opt.UpdateGraph(ctx, g, loss)
		return loss
	})
	if err != nil {
		t.Fatal(err)
	}
	// The label says whether token 7 occurs in the sequence.
	rng := rand.New(rand.NewPCG(8, 9))
	ids := make([]int32, batch*seq)
	mask := make([]int32, batch*seq)
	labels := make([]int32, batch)
	for b := range batch {
		labels[b] = int32(b % 2)
		for pos := range seq {
			ids[b*seq+pos] = int32(8 + rng.IntN(cfg.VocabSize-8))
			mask[b*seq+pos] = 1
		}
		if labels[b] == 1 {
			ids[b*seq+1+rng.IntN(seq-1)] = 7
		}
	}
	idsT := tensors.FromFlatDataAndDimensions(ids, batch, seq)
	maskT := tensors.FromFlatDataAndDimensions(mask, batch, seq)
	labelsT := tensors.FromFlatDataAndDimensions(labels, batch)
	curve := lossCurve{Kernel: kernel}
	for range steps {
		out, err := step.Exec1(idsT, maskT, labelsT)
		if err != nil {
			t.Fatal(err)
		}
		curve.Losses = append(curve.Losses, float64(out.Value().(float32)))
	}
	return curve
}
