package train

import (
	stdctx "context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"shopagent/features"
	"shopagent/models"
)

var trainBackendOnce struct {
	sync.Once
	b   backends.Backend
	err error
}

func trainTestBackend(t *testing.T) backends.Backend {
	t.Helper()
	trainBackendOnce.Do(func() { trainBackendOnce.b, trainBackendOnce.err = models.NewBackend("go") })
	if trainBackendOnce.err != nil {
		t.Fatal(trainBackendOnce.err)
	}
	return trainBackendOnce.b
}

var toyWords = strings.Fields("red blue green black white pink small large shoes shirt hat bag")

// toyIL is a tiny choice task: the state names a word, the target action is that word
// among three.
func toyIL(t *testing.T, n int) (*features.Tokenizer, features.PolicyConfig, []features.EncodedChoice) {
	t.Helper()
	vocab := append(features.SpecialTokens()[:5], append([]string{"i", "want", "instruction", ":"}, toyWords...)...)
	tok, err := features.NewTokenizer(vocab)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := features.NewPolicyConfig("tiny", tok.VocabSize(), 32, 8)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Bert.MaxPositions = 32
	cfg.Bert.Dropout = 0
	cfg.ObsMode = "text_rich"
	rng := rand.New(rand.NewPCG(1, 2))
	var exs []features.EncodedChoice
	for i := 0; i < n; i++ {
		perm := rng.Perm(len(toyWords))
		target := rng.IntN(3)
		acts := []string{toyWords[perm[0]], toyWords[perm[1]], toyWords[perm[2]]}
		ex := features.ChoiceExample{Instruction: "i want " + acts[target], State: strings.Join(acts, " "), Actions: acts, Target: target}
		exs = append(exs, features.EncodeChoice(tok, cfg, ex))
	}
	return tok, cfg, exs
}

func toyConfig(t *testing.T, dir string, steps int64, tok *features.Tokenizer, cfg features.PolicyConfig) Config {
	return Config{
		RunDir: dir, Steps: steps, Schedule: Schedule{Peak: 3e-3, Warmup: 2},
		Optimizer: OptimizerConfig{WeightDecay: 0.01, ClipNorm: 1}, CheckpointEvery: 3, Keep: 2, Seed: 7,
		Policy: cfg, Tokenizer: tok, Backend: trainTestBackend(t),
	}
}

func TestILLossDecreases(t *testing.T) {
	tok, cfg, exs := toyIL(t, 32)
	job, err := NewILJob(cfg, exs, 8, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(stdctx.Background(), toyConfig(t, t.TempDir(), 60, tok, cfg), job)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ReadMetrics(filepath.Join(filepath.Dir(filepath.Dir(res.Checkpoint)), MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	first := (rows[0].Loss + rows[1].Loss + rows[2].Loss + rows[3].Loss) / 4
	if !(res.MeanLoss < 0.5*first) {
		t.Fatalf("loss did not fall: first steps %.4f, last steps %.4f", first, res.MeanLoss)
	}
	if acc := res.LastMetrics["accuracy"]; !(acc > 0.8) {
		t.Fatalf("accuracy %.3f after training", acc)
	}
}

// stopAfter cancels a context when the job is asked for the batch of a given step, so
// the run stops right after that step.
type stopAfter struct {
	*ILJob
	step   int64
	cancel func()
}

func (s stopAfter) Batch(step int64) ([]*tensors.Tensor, int, error) {
	if step == s.step {
		s.cancel()
	}
	return s.ILJob.Batch(step)
}

func TestResumeContinuesAtTheRightStep(t *testing.T) {
	tok, cfg, exs := toyIL(t, 24)
	newJob := func() *ILJob {
		j, err := NewILJob(cfg, exs, 8, 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	// Reference: 8 uninterrupted steps.
	refDir := t.TempDir()
	if _, err := Run(stdctx.Background(), toyConfig(t, refDir, 8, tok, cfg), newJob()); err != nil {
		t.Fatal(err)
	}
	ref, err := ReadMetrics(filepath.Join(refDir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}

	// Interrupted after step 4 (as by SIGINT), then resumed to 8.
	dir := t.TempDir()
	ctx, cancel := stdctx.WithCancel(stdctx.Background())
	res, err := Run(ctx, toyConfig(t, dir, 8, tok, cfg), stopAfter{newJob(), 3, cancel})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Step != 4 || filepath.Base(res.Checkpoint) != models.CheckpointDirName(4) {
		t.Fatalf("interrupted run: %+v", res)
	}
	// Without --resume the run directory is refused.
	if _, err := Run(stdctx.Background(), toyConfig(t, dir, 8, tok, cfg), newJob()); err == nil || !strings.Contains(err.Error(), "--resume") {
		t.Fatalf("rerun without resume: %v", err)
	}
	rc := toyConfig(t, dir, 8, tok, cfg)
	rc.Resume = true
	res, err = Run(stdctx.Background(), rc, newJob())
	if err != nil {
		t.Fatal(err)
	}
	if res.StartStep != 4 || res.Step != 8 {
		t.Fatalf("resumed run: start %d, step %d", res.StartStep, res.Step)
	}
	ck, err := models.LoadCheckpoint(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Meta.Step != 8 || filepath.Base(ck.Dir) != models.CheckpointDirName(8) {
		t.Fatalf("latest checkpoint %s step %d", ck.Dir, ck.Meta.Step)
	}
	_, steps, _ := models.ListCheckpoints(dir)
	if fmt.Sprint(steps) != "[6 8]" { // checkpoints every 3 steps, keep 2
		t.Fatalf("checkpoints %v", steps)
	}
	got, err := ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 {
		t.Fatalf("%d metric rows, want 8", len(got))
	}
	for i, r := range got {
		if r.Step != int64(i+1) {
			t.Fatalf("row %d has step %d", i, r.Step)
		}
		// Same data, same optimizer state, same dropout state: the loss curve continues
		// exactly where it stopped (up to float reassociation in parallel kernels).
		if d := math.Abs(r.Loss - ref[i].Loss); d > 1e-3*math.Max(1, math.Abs(ref[i].Loss)) {
			t.Errorf("step %d: loss %.6f, uninterrupted %.6f", r.Step, r.Loss, ref[i].Loss)
		}
		if math.Abs(r.LR-ref[i].LR) > 1e-12 {
			t.Errorf("step %d: lr %g, uninterrupted %g", r.Step, r.LR, ref[i].LR)
		}
		if _, ok := r.Extra["accuracy"]; !ok || r.ExamplesPerS <= 0 || r.GradNorm <= 0 {
			t.Errorf("row %+v", r)
		}
		if i > 0 && r.ElapsedS < got[i-1].ElapsedS {
			t.Errorf("elapsed goes back at step %d", r.Step)
		}
	}
	// Resuming a finished run is a no-op.
	res, err = Run(stdctx.Background(), rc, newJob())
	if err != nil || res.Step != 8 || res.StartStep != 8 {
		t.Fatalf("resume of a finished run: %+v %v", res, err)
	}
	// A corrupt latest checkpoint gives an error, not a panic.
	os.WriteFile(filepath.Join(ck.Dir, models.CheckpointOptimizerFile), []byte("xx"), 0o644)
	if _, err := Run(stdctx.Background(), rc, newJob()); err == nil {
		t.Fatal("resumed from a corrupt checkpoint")
	}
}

func TestSchedule(t *testing.T) {
	s := Schedule{Peak: 1, Warmup: 4, Total: 14}
	for step, want := range map[int64]float64{0: 0.25, 3: 1, 4: 1, 9: 0.5, 14: 0, 20: 0} {
		if got := s.At(step); math.Abs(got-want) > 1e-12 {
			t.Errorf("linear At(%d) = %g, want %g", step, got, want)
		}
	}
	s.Decay, s.MinRatio = DecayCosine, 0.1
	if got := s.At(9); math.Abs(got-0.55) > 1e-12 {
		t.Errorf("cosine midpoint %g", got)
	}
	if got := s.At(14); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("cosine floor %g", got)
	}
	s.Decay = DecayConstant
	if s.At(13) != 1 {
		t.Error("constant")
	}
	for _, bad := range []Schedule{{Peak: 0}, {Peak: 1, Warmup: -1}, {Peak: 1, Decay: "exp"}, {Peak: 1, MinRatio: 2}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestMetricsLogAtomicAndResumable(t *testing.T) {
	p := filepath.Join(t.TempDir(), MetricsFile)
	m, err := OpenMetricsLog(p, -1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 5; i++ {
		if err := m.Add(MetricsRow{Step: i, Loss: float64(i), Extra: map[string]float64{"a": 1, "nan": math.NaN()}}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := ReadMetrics(p)
	if err != nil || len(rows) != 5 || rows[4].Extra["a"] != 1 {
		t.Fatalf("%v %+v", err, rows)
	}
	if _, ok := rows[0].Extra["nan"]; ok {
		t.Error("NaN extra kept")
	}
	m2, err := OpenMetricsLog(p, 3, 0) // resume from step 3: later rows dropped
	if err != nil || len(m2.Rows()) != 3 {
		t.Fatalf("%v %d rows", err, len(m2.Rows()))
	}
	if _, err := ReadMetrics(filepath.Join(t.TempDir(), "missing.parquet")); err == nil {
		t.Error("missing file read")
	}
	os.WriteFile(p, []byte("PAR1garbage"), 0o644)
	if _, err := OpenMetricsLog(p, 3, 0); err == nil {
		t.Error("corrupt metrics log accepted")
	}
}
