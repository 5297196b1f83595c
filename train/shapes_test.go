package train

import (
	"bytes"
	stdctx "context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"

	"shopagent/datasets"
	"shopagent/env"
	"shopagent/features"
	"shopagent/models"
)

// shapeData is the expert's click steps on the small shop, encoded for a policy with
// 256-token states (two XLA state lengths, 128 and 256) and 16-token actions.
var shapeData struct {
	sync.Once
	tok  *features.Tokenizer
	cfg  features.PolicyConfig
	exs  []features.ChoiceExample
	enc  []features.EncodedChoice
	err  error
	long int // examples with more than 32 actions
}

func shapeExamples(t *testing.T) (features.PolicyConfig, *features.Tokenizer, []features.ChoiceExample, []features.EncodedChoice) {
	t.Helper()
	shop := smallShop(t)
	d := &shapeData
	d.Do(func() {
		goals, _ := shop.SplitGoals("train")
		r, _ := shop.Splits.Split("train")
		demos := filepath.Join(t.TempDir(), "demos.parquet")
		if _, d.err = datasets.WriteDemos(shop, datasets.DemoConfig{Goals: goals[:40], GoalOffset: r[0], Seed: 1,
			Env: env.Config{Mode: env.ObsTextRich}}, demos); d.err != nil {
			return
		}
		data, err := LoadILData(demos, 0)
		if err != nil {
			d.err = err
			return
		}
		var docs []string
		for _, ex := range data.Examples {
			docs = append(docs, ex.Instruction, ex.State)
			docs = append(docs, ex.Actions...)
		}
		if d.tok, d.err = BuildCorpusVocab(docs, 1500); d.err != nil {
			return
		}
		if d.cfg, d.err = features.NewPolicyConfig("tiny", d.tok.VocabSize(), 256, 16); d.err != nil {
			return
		}
		d.cfg.ObsMode = data.ObsMode
		d.exs = data.Examples
		for _, ex := range data.Examples {
			d.enc = append(d.enc, features.EncodeChoice(d.tok, d.cfg, ex))
		}
	})
	if d.err != nil {
		t.Fatal(d.err)
	}
	return d.cfg, d.tok, d.exs, d.enc
}

// inputShape reads a step's policy-input shape from its tensors (models.BatchTensors
// order: state ids [B, Ts], ..., action ids [U, Ta], ..., action index [B, A]).
func inputShape(t *testing.T, ts []*tensors.Tensor) models.Shape {
	t.Helper()
	st, act, idx := ts[0].Shape().Dimensions, ts[3].Shape().Dimensions, ts[5].Shape().Dimensions
	if len(st) != 2 || len(act) != 2 || len(idx) != 2 || idx[0] != st[0] {
		t.Fatalf("not policy inputs: %v %v %v", st, act, idx)
	}
	return models.Shape{B: st[0], Ts: st[1], A: idx[1], U: act[0], Ta: act[1]}
}

// stepKey is the shapes of all of a step's inputs (the program it runs).
func stepKey(ts []*tensors.Tensor) string {
	var sb strings.Builder
	for _, x := range ts {
		fmt.Fprintf(&sb, "%v;", x.Shape())
	}
	return sb.String()
}

// warmKeys returns the program keys of a job's warm-up inputs.
func warmKeys(steps [][]*tensors.Tensor) map[string]bool {
	keys := map[string]bool{}
	for _, s := range steps {
		keys[stepKey(s)] = true
	}
	return keys
}

// An IL run on the XLA set: two epochs of batches of real demonstrations map to at most
// len(XLAStateLens) programs, every one among those the warm-up compiles; the fine
// buckets give more (which is why they are not used on XLA).
func TestXLAShapesIL(t *testing.T) {
	cfg, _, _, enc := shapeExamples(t)
	fine, err := NewILJob(cfg, enc, 8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	xla, err := NewILJob(cfg, enc, 8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	warm := warmKeys(xla.useXLAShapes())
	if want := len(models.XLAStateLens(cfg)); len(warm) != want || want != 2 {
		t.Fatalf("warm-up compiles %d programs, want %d (states of 256 tokens: 128 and 256)", len(warm), want)
	}
	seenFine, seenXLA := map[string]bool{}, map[string]bool{}
	steps := int64(2 * xla.BatchesPerEpoch())
	for step := range steps {
		ts, _, err := fine.Batch(step)
		if err != nil {
			t.Fatal(err)
		}
		seenFine[stepKey(ts)] = true
		if ts, _, err = xla.Batch(step); err != nil {
			t.Fatal(err)
		}
		if !warm[stepKey(ts)] {
			t.Fatalf("step %d: %s is not among the warmed-up programs", step, inputShape(t, ts))
		}
		seenXLA[stepKey(ts)] = true
	}
	t.Logf("%d steps: %d programs with the fine buckets, %d with the XLA set", steps, len(seenFine), len(seenXLA))
	if len(seenXLA) > 2 || len(seenFine) <= len(seenXLA) {
		t.Fatalf("%d steps: %d programs on the XLA set, %d fine", steps, len(seenXLA), len(seenFine))
	}
}

// DPO's preference batches (IL's epoch order) follow the same set.
func TestXLAShapesDPO(t *testing.T) {
	cfg, _, _, enc := shapeExamples(t)
	data := &DPOData{}
	for _, e := range enc {
		if len(e.Actions) < 2 || len(e.Actions) > models.XLAMaxActions {
			continue
		}
		data.States = append(data.States, e)
		data.Rejected = append(data.Rejected, []int{(e.Target + 1) % len(e.Actions)})
		data.RefLogp = append(data.RefLogp, make([]float64, len(e.Actions)))
	}
	job, err := NewDPOJob(cfg, data, DPOConfig{Beta: 0.1, Batch: 16}, 3)
	if err != nil {
		t.Fatal(err)
	}
	warm := warmKeys(job.useXLAShapes())
	seen := map[string]bool{}
	for step := range int64(2 * job.BatchesPerEpoch()) {
		ts, _, err := job.Batch(step)
		if err != nil {
			t.Fatal(err)
		}
		if !warm[stepKey(ts)] {
			t.Fatalf("step %d: %s is not among the %d warmed-up programs", step, inputShape(t, ts), len(warm))
		}
		seen[stepKey(ts)] = true
	}
	if len(seen) > len(models.XLAStateLens(cfg)) {
		t.Fatalf("%d programs", len(seen))
	}
}

// PPO minibatches and PG steps (with their IL term) of any number of rollout rows up to
// the batch map to the warmed-up programs.
func TestXLAShapesRL(t *testing.T) {
	cfg, _, _, enc := shapeExamples(t)
	var rows []rlRow
	for _, e := range enc {
		if len(e.Actions) <= models.XLAMaxActions {
			rows = append(rows, rlRow{enc: e, action: e.Target, refLogp: make([]float64, len(e.Actions))})
		}
	}
	ilJob, err := NewILJob(cfg, enc, 8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	ppo := &PPOJob{cfg: cfg}
	pg := &PGJob{cfg: cfg, hp: PGConfig{MaxStates: 16}, il: ilJob}
	ppoWarm, pgWarm := warmKeys(ppo.useXLAShapes()), warmKeys(pg.useXLAShapes())
	if nStates := len(models.XLAStateLens(cfg)); len(ppoWarm) != nStates || len(pgWarm) != nStates*nStates {
		t.Fatalf("warm-up: PPO %d programs, PG with IL %d", len(ppoWarm), len(pgWarm))
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for k := range 40 {
		n := rng.IntN(xlaRLBatch + 1) // 0 rows: one padding state
		perm := rng.Perm(len(rows))
		sub := make([]rlRow, 0, n)
		for _, i := range perm[:min(n, len(perm))] {
			sub = append(sub, rows[i])
		}
		ts, err := rlBatchTensors(sub, ppo.buckets, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ppoWarm[stepKey(ts)] {
			t.Fatalf("PPO minibatch %d of %d rows: %s not warmed up", k, n, inputShape(t, ts))
		}
		sub = sub[:min(len(sub), pg.hp.MaxStates)]
		if ts, err = rlBatchTensors(sub, pg.buckets, false); err != nil {
			t.Fatal(err)
		}
		il, _, err := pg.il.Batch(int64(k))
		if err != nil {
			t.Fatal(err)
		}
		if !pgWarm[stepKey(append(ts, il...))] {
			t.Fatalf("PG step %d of %d rows: not warmed up", k, len(sub))
		}
	}
}

// Forward passes (evaluation, generation, rollouts, references) on the XLA set: calls of
// 1 to 150 states, states with more than 32 actions among them (scored in chunks), map to
// at most 2 x len(XLAStateLens) programs, all among those a warm-up compiles.
func TestXLAShapesScoring(t *testing.T) {
	cfg, tok, exs, _ := shapeExamples(t)
	b := models.XLAScoreBuckets(cfg)
	warm := map[models.Shape]bool{}
	for _, s := range models.BucketShapes(b, 0) {
		warm[s] = true
	}
	if len(warm) != 2*len(models.XLAStateLens(cfg)) {
		t.Fatalf("%d forward shapes: %v", len(warm), warm)
	}
	// One state with 70 actions: scored in 3 chunks.
	long := exs[0]
	for len(long.Actions) < 70 {
		long.Actions = append(long.Actions, fmt.Sprintf("product %d of many", len(long.Actions)))
	}
	seen := map[models.Shape]int{}
	run := func(args ...any) ([]*tensors.Tensor, error) {
		ts := make([]*tensors.Tensor, len(args))
		for i, a := range args {
			ts[i] = a.(*tensors.Tensor)
		}
		s := inputShape(t, ts)
		seen[s]++
		return []*tensors.Tensor{tensors.FromFlatDataAndDimensions(make([]float32, s.B*s.A), s.B, s.A),
			tensors.FromFlatDataAndDimensions(make([]float32, s.B), s.B)}, nil
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 2, 7, 31, 64, 65, 150} {
		call := make([]features.ChoiceExample, n)
		for i := range call {
			call[i] = exs[rng.IntN(len(exs))]
		}
		if n == 7 {
			call[3] = long
		}
		scores, err := models.ScoreChoices(call, tok, cfg, b, run)
		if err != nil {
			t.Fatal(err)
		}
		if len(scores) != n || len(scores[min(3, n-1)].Logits) != len(call[min(3, n-1)].Actions) {
			t.Fatalf("%d states: %d scores", n, len(scores))
		}
	}
	for s := range seen {
		if !warm[s] {
			t.Fatalf("forward of %s is not warmed up (%v)", s, seen)
		}
	}
}

// Run on the XLA set (here on the pure-Go backend): it says what it compiles, compiles it
// before the first step, and trains.
func TestRunWarmsUpXLAShapes(t *testing.T) {
	tok, cfg, exs := toyIL(t, 24)
	job, err := NewILJob(cfg, exs, 8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	c := toyConfig(t, t.TempDir(), 3, tok, cfg)
	c.Shapes, c.Log, c.LogEvery = models.ShapesXLA, &log, 1
	res, err := Run(stdctx.Background(), c, job)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	out := log.String()
	warm := strings.Index(out, "warm-up: il step: compiled program 1/1")
	first := strings.Index(out, "il step 1/3")
	if res.Step != 3 || !strings.Contains(out, "XLA shape set: 1 training-step programs, 0 forward programs") || warm < 0 || first < warm {
		t.Fatalf("step %d, log:\n%s", res.Step, out)
	}
	c.RunDir, c.Shapes = t.TempDir(), "bogus"
	if _, err := Run(stdctx.Background(), c, job); err == nil || !strings.Contains(err.Error(), "shape set") {
		t.Fatalf("shape set bogus: %v", err)
	}
}

// A training step's program, compiled up front, leaves the variables as they were (GoMLX's
// PreCompile alone hands their buffers over and resets them); a variable the graph's
// construction creates gets its initial value; then the step runs as usual.
func TestPrecompileKeepsVariables(t *testing.T) {
	be := trainTestBackend(t)
	step := func(c *context.Context, x *graph.Node) *graph.Node {
		w := c.GetVariable("w")
		// Created by the graph's construction, with an initializer (as all of this
		// project's variables are).
		n := c.WithInitializer(initializers.Zero).VariableWithShape("n", shapes.Make(dtypes.Float32))
		sum := graph.Add(w.ValueGraph(x.Graph()), x)
		w.SetValueGraph(sum)
		n.SetValueGraph(graph.AddScalar(n.ValueGraph(x.Graph()), 1))
		return sum
	}
	x := tensors.FromValue([]float32{10, 20, 30})

	raw := context.New()
	raw.VariableWithValue("w", []float32{1, 2, 3})
	exec, err := context.NewExec(be, raw, step)
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.PreCompile(x); err != nil {
		t.Fatal(err)
	}
	if raw.GetVariable("w").HasValue() {
		t.Log("GoMLX's PreCompile kept the variable's value: precompileKeepingVariables is no longer needed")
	}

	ctx := context.New()
	ctx.VariableWithValue("w", []float32{1, 2, 3})
	exec, err = context.NewExec(be, ctx, step)
	if err != nil {
		t.Fatal(err)
	}
	if err := precompileKeepingVariables(ctx, be, exec)(x); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]any{"w": []float32{1, 2, 3}, "n": float32(0)} {
		v := ctx.GetVariable(name)
		val, err := v.Value()
		if err != nil {
			t.Fatalf("%s after the warm-up: %v", name, err)
		}
		if fmt.Sprint(val.Value()) != fmt.Sprint(want) {
			t.Fatalf("%s after the warm-up: %v, want %v", name, val.Value(), want)
		}
	}
	out, err := exec.Exec(x)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(out[0].Value()); got != "[11 22 33]" {
		t.Fatalf("step after the warm-up: %s", got)
	}
	if n, _ := ctx.GetVariable("n").Value(); fmt.Sprint(n.Value()) != "1" {
		t.Fatalf("n after one step: %v", n.Value())
	}
}
