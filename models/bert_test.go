package models

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"shopagent/features"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// testConfig is a very small encoder so tests stay fast (also under -race).
func testConfig() features.BertConfig {
	return features.BertConfig{VocabSize: 40, Hidden: 16, Layers: 2, Heads: 2, Intermediate: 32, MaxPositions: 16, TypeVocab: 2, Dropout: 0.1}
}

func testBackend(t testing.TB) backends.Backend {
	t.Helper()
	backend, err := NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	return backend
}

func newTestContext(seed int64) *context.Context {
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, seed)
	return ctx
}

// encodeExec returns an executor of the encoder (inference mode) under scope "/bert".
func encodeExec(t testing.TB, backend backends.Backend, ctx *context.Context, cfg features.BertConfig) *context.Exec {
	t.Helper()
	exec, err := context.NewExec(backend, ctx, func(ctx *context.Context, ids, mask *graph.Node) *graph.Node {
		return BertEncode(ctx.In("bert"), cfg, ids, mask, false)
	})
	if err != nil {
		t.Fatal(err)
	}
	return exec
}

func f32s(t testing.TB, tensor *tensors.Tensor) []float32 {
	t.Helper()
	return tensors.MustCopyFlatData[float32](tensor)
}

func TestPreset(t *testing.T) {
	for _, name := range features.PresetNames {
		cfg, err := features.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	base, _ := features.Preset("base")
	// bert-base-uncased has 109,482,240 parameters, 590,592 of them in the pooler.
	if got, want := base.NumParams(), 109482240-590592; got != want {
		t.Errorf("base NumParams = %d, want %d", got, want)
	}
	tiny, _ := features.Preset("TINY")
	if tiny.Layers != 2 || tiny.Hidden != 64 || tiny.Heads != 2 || tiny.Intermediate != 256 {
		t.Errorf("tiny = %+v", tiny)
	}
	if _, err := features.Preset("huge"); err == nil || !strings.Contains(err.Error(), "tiny") {
		t.Errorf("features.Preset(huge) error = %v, want one listing the presets", err)
	}
	bad := testConfig()
	bad.Heads = 3
	if err := bad.Validate(); err == nil {
		t.Error("Validate accepted hidden not multiple of heads")
	}
}

func TestBertVariablesMatchHFNames(t *testing.T) {
	cfg := testConfig()
	backend := testBackend(t)
	ctx := newTestContext(1)
	exec := encodeExec(t, backend, ctx, cfg)
	ids := tensors.FromValue([][]int32{{1, 2, 3}})
	mask := tensors.FromValue([][]int32{{1, 1, 1}})
	if _, err := exec.Exec(ids, mask); err != nil {
		t.Fatal(err)
	}
	want := map[string]shapes.Shape{}
	for _, v := range BertVariableNames(cfg) {
		want[v.Name] = v.Shape
	}
	got := map[string]shapes.Shape{}
	for v := range ctx.IterVariables() {
		name, ok := HFName("/bert", v)
		if !ok {
			continue // e.g. the RNG state at the root.
		}
		got[name] = v.Shape()
		scope, short := ScopeForHFName("/bert", name)
		if scope != v.Scope() || short != v.Name() {
			t.Errorf("ScopeForHFName(%q) = %q, %q; want %q, %q", name, scope, short, v.Scope(), v.Name())
		}
	}
	if len(got) != len(want) {
		t.Errorf("created %d variables, BertVariableNames lists %d", len(got), len(want))
	}
	for name, shape := range want {
		if !got[name].Equal(shape) {
			t.Errorf("variable %s: created %s, want %s", name, got[name], shape)
		}
	}
	// Linear weights are stored as HF's [out, in].
	if s := got["encoder.layer.0.intermediate.dense.weight"]; s.Dimensions[0] != cfg.Intermediate || s.Dimensions[1] != cfg.Hidden {
		t.Errorf("intermediate weight shape %s, want [%d %d]", s, cfg.Intermediate, cfg.Hidden)
	}
}

func TestBertEncodeShapesAndDeterminism(t *testing.T) {
	cfg := testConfig()
	backend := testBackend(t)
	ids := tensors.FromValue([][]int32{{2, 5, 7, 9, 0}, {3, 4, 0, 0, 0}})
	mask := tensors.FromValue([][]int32{{1, 1, 1, 1, 1}, {1, 1, 0, 0, 0}})
	run := func(seed int64) ([]float32, []float32) {
		ctx := newTestContext(seed)
		exec := encodeExec(t, backend, ctx, cfg)
		out1, err := exec.Exec1(ids, mask)
		if err != nil {
			t.Fatal(err)
		}
		if dims := out1.Shape().Dimensions; len(dims) != 3 || dims[0] != 2 || dims[1] != 5 || dims[2] != cfg.Hidden || out1.DType() != dtypes.Float32 {
			t.Fatalf("output shape %s, want (Float32)[2 5 %d]", out1.Shape(), cfg.Hidden)
		}
		out2, err := exec.Exec1(ids, mask)
		if err != nil {
			t.Fatal(err)
		}
		return f32s(t, out1), f32s(t, out2)
	}
	a1, a2 := run(42)
	b1, _ := run(42)
	c1, _ := run(43)
	for i := range a1 {
		if a1[i] != a2[i] || a1[i] != b1[i] {
			t.Fatalf("forward not deterministic at %d: %g %g %g", i, a1[i], a2[i], b1[i])
		}
		if math.IsNaN(float64(a1[i])) {
			t.Fatalf("NaN at %d", i)
		}
	}
	same := true
	for i := range a1 {
		same = same && a1[i] == c1[i]
	}
	if same {
		t.Error("different seeds gave identical outputs")
	}
}

// TestBertMaskInvariance: padding tokens (whatever their ids, however many) do not change
// the outputs at real positions.
func TestBertMaskInvariance(t *testing.T) {
	cfg := testConfig()
	backend := testBackend(t)
	ctx := newTestContext(3)
	exec := encodeExec(t, backend, ctx, cfg)
	short := tensors.FromValue([][]int32{{2, 5, 7, 9}, {3, 4, 8, 1}})
	shortMask := tensors.FromValue([][]int32{{1, 1, 1, 1}, {1, 1, 1, 0}})
	long := tensors.FromValue([][]int32{{2, 5, 7, 9, 11, 12, 13}, {3, 4, 8, 30, 31, 32, 33}})
	longMask := tensors.FromValue([][]int32{{1, 1, 1, 1, 0, 0, 0}, {1, 1, 1, 0, 0, 0, 0}})
	outShort, err := exec.Exec1(short, shortMask)
	if err != nil {
		t.Fatal(err)
	}
	outLong, err := exec.Exec1(long, longMask)
	if err != nil {
		t.Fatal(err)
	}
	s, l := f32s(t, outShort), f32s(t, outLong)
	h := cfg.Hidden
	realLen := []int{4, 3}
	for b := range 2 {
		for pos := range realLen[b] {
			for k := range h {
				x, y := s[(b*4+pos)*h+k], l[(b*7+pos)*h+k]
				if math.Abs(float64(x-y)) > 1e-5 {
					t.Fatalf("row %d pos %d dim %d: %g (4 tokens) vs %g (7 tokens)", b, pos, k, x, y)
				}
			}
		}
	}
	// A mask of bools and one of floats mean the same.
	boolMask := tensors.FromValue([][]bool{{true, true, true, true}, {true, true, true, false}})
	outBool, err := exec.Exec1(short, boolMask)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range f32s(t, outBool) {
		if v != s[i] {
			t.Fatalf("bool mask differs at %d", i)
		}
	}
}

// TestBertMatchesReference compares the GoMLX forward with a plain float64 implementation
// of Hugging Face BERT written from its definition, reading the same weights by HF name.
func TestBertMatchesReference(t *testing.T) {
	cfg := testConfig()
	backend := testBackend(t)
	ctx := newTestContext(5)
	exec := encodeExec(t, backend, ctx, cfg)
	idsV := [][]int32{{2, 5, 7, 9, 1}, {3, 4, 6, 0, 0}}
	maskV := [][]int32{{1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}}
	if _, err := exec.Exec1(tensors.FromValue(idsV), tensors.FromValue(maskV)); err != nil {
		t.Fatal(err)
	}
	// BERT's initialisation (stddev 0.02) makes attention nearly uniform; larger random
	// weights make the comparison sensitive to scaling, masking and normalisation details.
	rng := rand.New(rand.NewPCG(8, 9))
	for v := range ctx.IterVariables() {
		if _, ok := HFName("/bert", v); !ok {
			continue
		}
		values := make([]float32, v.Shape().Size())
		for i := range values {
			values[i] = float32(rng.NormFloat64() * 0.5)
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(values, v.Shape().Dimensions...)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Exec1(tensors.FromValue(idsV), tensors.FromValue(maskV))
	if err != nil {
		t.Fatal(err)
	}
	weights := map[string][]float64{}
	for v := range ctx.IterVariables() {
		if name, ok := HFName("/bert", v); ok {
			value, err := v.Value()
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range f32s(t, value) {
				weights[name] = append(weights[name], float64(x))
			}
		}
	}
	got := f32s(t, out)
	h := cfg.Hidden
	for b := range idsV {
		ref := referenceBert(cfg, weights, idsV[b], maskV[b])
		for pos := range ref {
			for k := range h {
				if d := math.Abs(ref[pos][k] - float64(got[(b*len(idsV[b])+pos)*h+k])); d > 1e-4 {
					t.Fatalf("row %d pos %d dim %d: reference %g, GoMLX %g", b, pos, k, ref[pos][k], got[(b*len(idsV[b])+pos)*h+k])
				}
			}
		}
	}
}

// referenceBert is HF BertModel's forward (eval mode) for one sequence, in float64.
func referenceBert(cfg features.BertConfig, w map[string][]float64, ids, mask []int32) [][]float64 {
	h, seq := cfg.Hidden, len(ids)
	linear := func(x []float64, name string, in, out int) []float64 {
		weight, bias := w[name+".weight"], w[name+".bias"]
		y := make([]float64, out)
		for o := range out {
			y[o] = bias[o]
			for i := range in {
				y[o] += weight[o*in+i] * x[i] // HF Linear: weight [out, in].
			}
		}
		return y
	}
	layerNorm := func(x []float64, name string) []float64 {
		mean, variance := 0.0, 0.0
		for _, v := range x {
			mean += v
		}
		mean /= float64(len(x))
		for _, v := range x {
			variance += (v - mean) * (v - mean)
		}
		variance /= float64(len(x))
		y := make([]float64, len(x))
		for i, v := range x {
			y[i] = (v-mean)/math.Sqrt(variance+1e-12)*w[name+".weight"][i] + w[name+".bias"][i]
		}
		return y
	}
	x := make([][]float64, seq)
	for pos, id := range ids {
		x[pos] = make([]float64, h)
		for k := range h {
			x[pos][k] = w["embeddings.word_embeddings.weight"][int(id)*h+k] +
				w["embeddings.position_embeddings.weight"][pos*h+k] + w["embeddings.token_type_embeddings.weight"][k]
		}
		x[pos] = layerNorm(x[pos], "embeddings.LayerNorm")
	}
	heads, dk := cfg.Heads, h/cfg.Heads
	for layer := range cfg.Layers {
		p := "encoder.layer." + string(rune('0'+layer)) + "."
		q, k, v := make([][]float64, seq), make([][]float64, seq), make([][]float64, seq)
		for pos := range seq {
			q[pos] = linear(x[pos], p+"attention.self.query", h, h)
			k[pos] = linear(x[pos], p+"attention.self.key", h, h)
			v[pos] = linear(x[pos], p+"attention.self.value", h, h)
		}
		next := make([][]float64, seq)
		for i := range seq {
			ctxVec := make([]float64, h)
			for n := range heads {
				scores := make([]float64, seq)
				maxScore := math.Inf(-1)
				for j := range seq {
					for d := range dk {
						scores[j] += q[i][n*dk+d] * k[j][n*dk+d]
					}
					scores[j] /= math.Sqrt(float64(dk))
					if mask[j] == 0 {
						scores[j] = math.Inf(-1)
					}
					maxScore = max(maxScore, scores[j])
				}
				sum := 0.0
				for j := range seq {
					scores[j] = math.Exp(scores[j] - maxScore)
					sum += scores[j]
				}
				for j := range seq {
					for d := range dk {
						ctxVec[n*dk+d] += scores[j] / sum * v[j][n*dk+d]
					}
				}
			}
			attn := linear(ctxVec, p+"attention.output.dense", h, h)
			for d := range h {
				attn[d] += x[i][d]
			}
			a := layerNorm(attn, p+"attention.output.LayerNorm")
			inter := linear(a, p+"intermediate.dense", h, cfg.Intermediate)
			for d := range inter {
				inter[d] = inter[d] * 0.5 * (1 + math.Erf(inter[d]/math.Sqrt2))
			}
			out := linear(inter, p+"output.dense", cfg.Intermediate, h)
			for d := range h {
				out[d] += a[d]
			}
			next[i] = layerNorm(out, p+"output.LayerNorm")
		}
		x = next
	}
	return x
}

// TestBertOverfit trains the encoder plus a linear classifier on [CLS] with AdamW and
// dropout, and checks the loss goes down within a few dozen steps.
func TestBertOverfit(t *testing.T) {
	cfg := testConfig()
	backend := testBackend(t)
	ctx := newTestContext(11)
	const batch, seq, steps = 8, 6, 40
	opt := optimizers.Adam().LearningRate(3e-3).WeightDecay(0.01).Done()
	exec, err := context.NewExec(backend, ctx, func(ctx *context.Context, ids, mask, labels *graph.Node) *graph.Node {
		g := ids.Graph()
		ctx.SetTraining(g, true)
		hidden := BertEncode(ctx.In("bert"), cfg, ids, mask, true)
		pooled := BertPool(ctx.In("bert"), cfg, hidden)
		w := ctx.In("head").VariableWithShape("weight", shapes.Make(dtypes.Float32, cfg.Hidden, 2)).ValueGraph(g)
		logits := graph.Dot(pooled, w)
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
	rng := rand.New(rand.NewPCG(4, 5))
	ids := make([]int32, batch*seq)
	mask := make([]int32, batch*seq)
	labels := make([]int32, batch)
	for b := range batch {
		length := 3 + rng.IntN(seq-2)
		for pos := range seq {
			ids[b*seq+pos] = int32(1 + rng.IntN(cfg.VocabSize-1))
			if pos < length {
				mask[b*seq+pos] = 1
			}
		}
		labels[b] = int32(b % 2)
	}
	idsT := tensors.FromFlatDataAndDimensions(ids, batch, seq)
	maskT := tensors.FromFlatDataAndDimensions(mask, batch, seq)
	labelsT := tensors.FromFlatDataAndDimensions(labels, batch)
	var first, last float32
	for step := range steps {
		out, err := exec.Exec1(idsT, maskT, labelsT)
		if err != nil {
			t.Fatal(err)
		}
		loss := out.Value().(float32)
		if step == 0 {
			first = loss
		}
		last = loss
	}
	t.Logf("loss %.4f -> %.4f in %d steps", first, last, steps)
	if !(last < 0.5*first) || math.IsNaN(float64(last)) {
		t.Errorf("loss did not go down: %.4f -> %.4f", first, last)
	}
	// The pooler's variables are the documented HF ones.
	for _, v := range BertPoolerVariableNames(cfg) {
		scope, name := ScopeForHFName("/bert", v.Name)
		if got := ctx.GetVariableByScopeAndName(scope, name); got == nil || !got.Shape().Equal(v.Shape) {
			t.Errorf("pooler variable %s missing or wrong shape", v.Name)
		}
	}
}

func TestTokenAt(t *testing.T) {
	backend := testBackend(t)
	x := tensors.FromValue([][][]float32{{{1, 2}, {3, 4}, {5, 6}}, {{7, 8}, {9, 10}, {11, 12}}})
	out := graph.MustExecOnce(backend, func(x *graph.Node) *graph.Node { return TokenAt(x, 1) }, x)
	got := f32s(t, out)
	want := []float32{3, 4, 9, 10}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("TokenAt = %v, want %v", got, want)
		}
	}
}

func TestNewBackend(t *testing.T) {
	for _, name := range []string{"go", "GO", "go:ops_sequential", "go:parallelism=1"} {
		b, err := NewBackend(name)
		if err != nil {
			t.Errorf("NewBackend(%q): %v", name, err)
			continue
		}
		if b.Name() != "SimpleGo (go)" {
			t.Errorf("NewBackend(%q) = %s", name, b.Name())
		}
	}
	t.Setenv("GOMLX_BACKEND", "")
	if b, err := NewBackend(""); err != nil || b.Name() != "SimpleGo (go)" {
		t.Errorf("NewBackend(\"\") = %v, %v; want the pure-Go backend", b, err)
	}
	for _, name := range []string{"tpu", "go:no_such_option"} {
		if _, err := NewBackend(name); err == nil {
			t.Errorf("NewBackend(%q) succeeded", name)
		}
	}
	// Without a PJRT plugin, "xla" fails with a clear error and never tries the network
	// (go-xla reads $PJRT_PLUGIN_LIBRARY_PATH at program start, so this depends on the
	// machine: where a plugin is installed the case is only logged).
	for _, name := range []string{"xla:cuda", "xla:" + t.TempDir() + "/missing_plugin.so"} {
		b, err := NewBackend(name)
		if err == nil {
			t.Logf("NewBackend(%q) found a plugin on this machine: %s", name, b.Description())
			b.Finalize()
			continue
		}
		t.Logf("NewBackend(%q): %v", name, err)
		if !strings.Contains(err.Error(), "PJRT") && !strings.Contains(err.Error(), "plugin") {
			t.Errorf("NewBackend(%q) error %q does not mention the plugin", name, err)
		}
	}
}

// NumParams (features, plain arithmetic) counts the variables BertVariableNames lists.
func TestNumParamsMatchesVariables(t *testing.T) {
	for _, name := range features.PresetNames {
		cfg, err := features.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, v := range BertVariableNames(cfg) {
			total += v.Shape.Size()
		}
		if cfg.NumParams() != total {
			t.Fatalf("%s: NumParams %d, variables %d", name, cfg.NumParams(), total)
		}
	}
}
