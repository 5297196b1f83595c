package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shopagent/datasets"
	"shopagent/train"
)

// TestTrainPipeline runs the whole chain on a small generated shop with the tiny preset
// and short sequences: expert demos -> pretrain -> IL (initialised from pretraining) ->
// eval --policy with the rule agent beside it and rollouts written.
func TestTrainPipeline(t *testing.T) {
	shop := testShopDir(t)
	dir := t.TempDir()
	demos := filepath.Join(dir, "demos.parquet")
	if out, err := run(t, "", "datasets", "demos", "--data", shop, "--split", "train", "--n", "30", "--obs", "text_rich", "--out", demos); err != nil {
		t.Fatalf("demos: %v\n%s", err, out)
	}
	pt := filepath.Join(dir, "pretrain")
	out, err := run(t, "", "train", "pretrain", "--data", shop, "--preset", "tiny", "--steps", "3", "--batch", "4",
		"--max-len", "32", "--vocab-size", "2000", "--out", pt, "--no-progress", "--checkpoint-every", "2")
	if err != nil {
		t.Fatalf("pretrain: %v\n%s", err, out)
	}
	if !strings.Contains(out, "pretrain finished at step 3") {
		t.Fatalf("pretrain output:\n%s", out)
	}
	for _, f := range []string{"vocab.txt", "metrics.parquet", "result.json", "checkpoints/ckpt-00000003/model.safetensors", "checkpoints/ckpt-00000002/optimizer.safetensors"} {
		if _, err := os.Stat(filepath.Join(pt, f)); err != nil {
			t.Errorf("pretrain run: %v", err)
		}
	}
	il := filepath.Join(dir, "il")
	out, err = run(t, "", "train", "il", "--demos", demos, "--init", pt, "--data", shop, "--steps", "4", "--batch", "4",
		"--lr", "1e-3", "--max-state-len", "64", "--max-action-len", "16", "--out", il, "--no-progress", "--dev-goals", "3")
	if err != nil {
		t.Fatalf("il: %v\n%s", err, out)
	}
	if !strings.Contains(out, "il finished at step 4") || !strings.Contains(out, "il: dev (3 goals): score") {
		t.Fatalf("il output:\n%s", out)
	}
	rows, err := train.ReadMetrics(filepath.Join(il, train.MetricsFile))
	if err != nil || len(rows) != 4 || rows[3].Step != 4 {
		t.Fatalf("il metrics: %v %+v", err, rows)
	}
	// Resuming a finished run changes nothing; continuing it to more steps works.
	out, err = run(t, "", "train", "il", "--demos", demos, "--init", pt, "--steps", "5", "--batch", "4",
		"--max-state-len", "64", "--max-action-len", "16", "--out", il, "--no-progress", "--resume")
	if err != nil || !strings.Contains(out, "at step 5 (started at 4)") {
		t.Fatalf("il resume: %v\n%s", err, out)
	}

	roll := filepath.Join(dir, "roll.parquet")
	js := filepath.Join(dir, "eval.json")
	out, err = run(t, "", "eval", "--policy", il, "--data", shop, "--split", "test", "--first", "8", "--out", roll, "--json", js)
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, out)
	}
	if !strings.Contains(out, "on test (8 goals): score") || !strings.Contains(out, "agent rule on the same goals: score") {
		t.Fatalf("eval output:\n%s", out)
	}
	var sum struct {
		Summary struct{ Episodes int } `json:"summary"`
		Rule    struct{ Episodes int } `json:"rule"`
	}
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &sum); err != nil || sum.Summary.Episodes != 8 || sum.Rule.Episodes != 8 {
		t.Fatalf("eval json %s: %v", b, err)
	}
	episodes, clicks := 0, 0
	err = datasets.ReadEpisodes(roll, func(ep []datasets.Step) error {
		episodes++
		for _, s := range ep {
			if s.Source != datasets.SourceRollout {
				t.Errorf("source %q", s.Source)
			}
			if strings.HasPrefix(s.Action, "click[") && !math.IsNaN(s.Logprob) {
				clicks++
				if s.Logprob > 0 || math.IsNaN(s.Value) {
					t.Errorf("click row logprob %g value %g", s.Logprob, s.Value)
				}
			}
			if strings.HasPrefix(s.Action, "search[") && !math.IsNaN(s.Logprob) {
				t.Errorf("search row with logprob %g", s.Logprob)
			}
		}
		if !ep[len(ep)-1].Done {
			t.Errorf("episode %s does not end", ep[0].EpisodeID)
		}
		return nil
	})
	if err != nil || episodes != 8 || clicks == 0 {
		t.Fatalf("rollouts: %v, %d episodes, %d scored clicks", err, episodes, clicks)
	}

	// Clear errors for bad input.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"eval", "--policy", pt, "--data", shop, "--first", "2"}, "not a choice policy"},
		{[]string{"eval", "--policy", filepath.Join(dir, "nope"), "--data", shop}, "no such file"},
		{[]string{"train", "il", "--out", filepath.Join(dir, "x")}, "--demos is required"},
		{[]string{"train", "il", "--demos", demos, "--init", pt, "--out", il, "--steps", "2"}, "--resume"},
		{[]string{"train", "pretrain", "--data", shop}, "--out is required"},
	} {
		if out, err := run(t, "", c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v (want %q)\n%s", c.args, err, c.want, out)
		}
	}
}

// TestImportHFThenPretrainAndIL brings the Hugging Face fixture in with models import-hf
// and continues it: pretrain --init (encoder, MLM head and vocabulary kept) then il --init.
func TestImportHFThenPretrainAndIL(t *testing.T) {
	shop := testShopDir(t)
	dir := t.TempDir()
	ck := filepath.Join(dir, "hf")
	if out, err := run(t, "", "models", "import-hf", "--model", filepath.Join("..", "..", "models", "testdata", "hf-tiny"), "--out", ck); err != nil {
		t.Fatalf("import-hf: %v\n%s", err, out)
	}
	pt := filepath.Join(dir, "pretrain")
	out, err := run(t, "", "train", "pretrain", "--data", shop, "--init", ck, "--steps", "2", "--batch", "4",
		"--max-len", "24", "--out", pt, "--no-progress")
	if err != nil || !strings.Contains(out, "pretrain finished at step 2") {
		t.Fatalf("pretrain --init: %v\n%s", err, out)
	}
	want, err := os.ReadFile(filepath.Join(ck, "vocab.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(pt, "checkpoints", "ckpt-00000002", "vocab.txt")); err != nil || string(got) != string(want) {
		t.Fatalf("pretrain --init did not keep the imported vocabulary: %v", err)
	}
	if _, err := run(t, "", "train", "pretrain", "--data", shop, "--init", ck, "--max-len", "64", "--steps", "1",
		"--out", filepath.Join(dir, "bad"), "--no-progress"); err == nil {
		t.Fatal("--max-len beyond the imported encoder's positions accepted")
	}
	demos := filepath.Join(dir, "demos.parquet")
	if out, err := run(t, "", "datasets", "demos", "--data", shop, "--split", "train", "--n", "5", "--obs", "text_rich", "--out", demos); err != nil {
		t.Fatalf("demos: %v\n%s", err, out)
	}
	out, err = run(t, "", "train", "il", "--demos", demos, "--init", pt, "--data", shop, "--steps", "2", "--batch", "4",
		"--out", filepath.Join(dir, "il"), "--no-progress")
	if err != nil || !strings.Contains(out, "il finished at step 2") {
		t.Fatalf("il --init: %v\n%s", err, out)
	}
}

// TestILExportEveryCheckpoint checks --export: every checkpoint the run saves gets a
// parity-checked ONNX policy directory, and the run still resumes from such checkpoints.
func TestILExportEveryCheckpoint(t *testing.T) {
	shop := testShopDir(t)
	dir := t.TempDir()
	demos := filepath.Join(dir, "demos.parquet")
	if out, err := run(t, "", "datasets", "demos", "--data", shop, "--split", "train", "--n", "5", "--obs", "text_rich", "--out", demos); err != nil {
		t.Fatalf("demos: %v\n%s", err, out)
	}
	il := filepath.Join(dir, "il")
	args := []string{"train", "il", "--demos", demos, "--data", shop, "--batch", "4", "--max-state-len", "64",
		"--max-action-len", "16", "--out", il, "--no-progress", "--checkpoint-every", "1", "--keep", "0", "--export"}
	out, err := run(t, "", append(args, "--steps", "2")...)
	if err != nil {
		t.Fatalf("il --export: %v\n%s", err, out)
	}
	out, err = run(t, "", append(args, "--steps", "3", "--resume")...)
	if err != nil || !strings.Contains(out, "at step 3 (started at 2)") {
		t.Fatalf("il --export --resume: %v\n%s", err, out)
	}
	for step := 1; step <= 3; step++ {
		pd := filepath.Join(il, "checkpoints", fmt.Sprintf("ckpt-%08d", step), "onnx")
		b, err := os.ReadFile(filepath.Join(pd, "policy.json"))
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		var m struct {
			Parity struct {
				MaxAbsDiff float64 `json:"max_abs_diff"`
			} `json:"parity"`
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Parity.MaxAbsDiff > 1e-4 {
			t.Fatalf("step %d policy.json: %v %s", step, err, b)
		}
		if st, err := os.Stat(filepath.Join(pd, "model.onnx")); err != nil || st.Size() == 0 {
			t.Fatalf("step %d model.onnx: %v", step, err)
		}
	}
}

// Rollouts and generated demonstrations never train on the test split's goals
// unless asked to.
func TestTrainingRefusesTheTestSplit(t *testing.T) {
	for _, split := range []string{"test", "all"} {
		_, err := run(t, "", "train", "generate", "--policy", "nowhere", "--out", filepath.Join(t.TempDir(), "g.parquet"), "--split", split)
		if err == nil || !strings.Contains(err.Error(), "--allow-test") {
			t.Errorf("generate --split %s: %v, want a refusal naming --allow-test", split, err)
		}
	}
	if err := checkTrainSplit("--goals", "test", true); err != nil {
		t.Errorf("--allow-test: %v", err)
	}
	if err := checkTrainSplit("--goals", "dev", false); err != nil {
		t.Errorf("dev: %v", err)
	}
}
