package train

import (
	stdctx "context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"shopagent/models"
)

func TestPackSequences(t *testing.T) {
	tok, _, _ := toyIL(t, 1)
	docs := []string{"red blue green", "shoes shirt hat bag red blue", "pink"}
	seqs := PackSequences(tok, docs, 8)
	var flat []int32
	for i, s := range seqs {
		if len(s) > 8 || s[0] != tok.CLSID() || s[len(s)-1] != tok.SEPID() {
			t.Fatalf("sequence %d = %v", i, s)
		}
		if i < len(seqs)-1 && len(s) != 8 {
			t.Fatalf("sequence %d not full: %v", i, s)
		}
		flat = append(flat, s[1:len(s)-1]...)
	}
	var want []int32
	for _, d := range docs {
		want = append(want, tok.Encode(d)...)
		want = append(want, tok.SEPID())
	}
	if !slices.Equal(flat, want[:len(flat)]) || len(flat) < len(want)-1 {
		t.Fatalf("packed %v\nwant   %v", flat, want)
	}
}

func TestMLMBatchMasking(t *testing.T) {
	tok, cfg, _ := toyIL(t, 1)
	var docs []string
	for i := 0; i < 40; i++ {
		docs = append(docs, strings.Join(toyWords, " "))
	}
	seqs := PackSequences(tok, docs, 32)
	job, err := NewMLMJob(cfg, tok, seqs, 8, 32, 1)
	if err != nil {
		t.Fatal(err)
	}
	in, n, err := job.Batch(0)
	if err != nil || n != 8 || len(in) != 5 {
		t.Fatalf("batch: %v %d %d", err, n, len(in))
	}
	ids := tensors.MustCopyFlatData[int32](in[0])
	pos := tensors.MustCopyFlatData[int32](in[2])
	labels := tensors.MustCopyFlatData[int32](in[3])
	valid := tensors.MustCopyFlatData[float32](in[4])
	chosen, masked := 0, 0
	for i, v := range valid {
		if v == 0 {
			continue
		}
		chosen++
		if labels[i] == tok.CLSID() || labels[i] == tok.SEPID() || labels[i] == tok.PadID() {
			t.Fatalf("special token %d chosen for prediction", labels[i])
		}
		if ids[pos[i]] == tok.MASKID() {
			masked++
		}
	}
	tokens := 8 * 30
	if frac := float64(chosen) / float64(tokens); frac < 0.08 || frac > 0.25 {
		t.Fatalf("%.3f of the tokens chosen, want about 0.15", frac)
	}
	if frac := float64(masked) / float64(chosen); frac < 0.6 || frac > 0.95 {
		t.Fatalf("%.3f of the chosen tokens masked, want about 0.8", frac)
	}
	// Deterministic per step.
	again, _, _ := job.Batch(0)
	if !slices.Equal(tensors.MustCopyFlatData[int32](again[0]), ids) {
		t.Fatal("batch 0 differs between calls")
	}
	// A few steps of pretraining run and lower the loss.
	res, err := Run(stdctx.Background(), Config{RunDir: t.TempDir(), Steps: 12, Schedule: Schedule{Peak: 5e-3, Warmup: 2},
		Optimizer: OptimizerConfig{ClipNorm: 1}, Seed: 1, Policy: cfg, Tokenizer: tok, Backend: trainTestBackend(t)}, job)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := ReadMetrics(filepath.Join(filepath.Dir(filepath.Dir(res.Checkpoint)), MetricsFile))
	if !(rows[len(rows)-1].Loss < rows[0].Loss) {
		t.Fatalf("MLM loss %.3f -> %.3f", rows[0].Loss, rows[len(rows)-1].Loss)
	}
	ck, err := models.LoadCheckpoint(res.Checkpoint, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ck.Model["policy/cls/predictions/transform/dense/weight"]; !ok || ck.Meta.Job != PretrainJobName {
		t.Fatalf("pretraining checkpoint: job %q, MLM head present %v", ck.Meta.Job, ok)
	}
}

func TestReadExtraText(t *testing.T) {
	dir := t.TempDir()
	js := filepath.Join(dir, "goals.json")
	os.WriteFile(js, []byte(`["i need red shoes", " ", "a blue hat"]`), 0o644)
	got, _, err := ReadExtraText(js, nil)
	if err != nil || !slices.Equal(got, []string{"i need red shoes", "a blue hat"}) {
		t.Fatalf("%q %v", got, err)
	}
	m := filepath.Join(dir, "map.json")
	os.WriteFile(m, []byte(`{"i need a hat": ["hat"]}`), 0o644)
	got, _, err = ReadExtraText(m, nil)
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"hat", "i need a hat"}) {
		t.Fatalf("%q %v", got, err)
	}
	txt := filepath.Join(dir, "x.txt")
	os.WriteFile(txt, []byte("one\n\ntwo\n"), 0o644)
	if got, _, err = ReadExtraText(txt, nil); err != nil || !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("%q %v", got, err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"x":`), 0o644)
	for _, p := range []string{bad, filepath.Join(dir, "missing.txt")} {
		if _, _, err := ReadExtraText(p, nil); err == nil {
			t.Errorf("%s accepted", p)
		}
	}
}

// WebShop's test instructions (its first 500 human goals) never reach the
// pretraining text, nor do the human queries typed for them.
func TestReadExtraTextLeavesOutTestInstructions(t *testing.T) {
	dir := t.TempDir()
	test0 := "i need a long clip-in hair extension which is natural looking" // WebShop's test goal 0
	train := "find me a regular fit machine washable cargo pants"            // WebShop train goal 2000
	list := filepath.Join(dir, "human_goals.json")
	os.WriteFile(list, []byte(`["`+test0+`", "`+train+`"]`), 0o644)
	isTest := TestInstructions(nil)
	got, dropped, err := ReadExtraText(list, isTest)
	if err != nil || dropped != 1 || !slices.Equal(got, []string{train}) {
		t.Fatalf("list: %q dropped %d %v", got, dropped, err)
	}
	qmap := filepath.Join(dir, "goal_query_map.json")
	os.WriteFile(qmap, []byte(`{"`+strings.ToUpper(test0)+`, and price lower than 40.00 dollars": ["clip in hair extension"], "`+train+`": ["apple chips"]}`), 0o644)
	got, dropped, err = ReadExtraText(qmap, isTest)
	slices.Sort(got)
	if err != nil || dropped != 1 || !slices.Equal(got, []string{"apple chips", train}) {
		t.Fatalf("query map: %q dropped %d %v", got, dropped, err)
	}
}
