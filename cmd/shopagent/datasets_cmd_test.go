package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shopagent/datasets"
	"shopagent/env/shopgen"
)

func runDatasets(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newDatasetsCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	err := cmd.Execute()
	return out.String(), err
}

// fixtureShopDir generates the shop datasets/testdata/human_demos.jsonl was
// recorded on (the built-in generator with 300 products, seed 1) in a
// temporary directory.
func fixtureShopDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := shopgen.DefaultConfig()
	cfg.Goals = shopgen.SampleGoals(30, 30, 90)
	if err := shopgen.Generate(cfg, dir, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDatasetsCLI(t *testing.T) {
	shopDir := fixtureShopDir(t)
	tmp := t.TempDir()
	demos := filepath.Join(tmp, "demos.parquet")

	out, err := runDatasets(t, "demos", "--data", shopDir, "--split", "train", "--n", "50",
		"--out", demos, "--noise", "0.1", "--demo-seed", "3", "--workers", "2", "--obs", "text_rich")
	if err != nil {
		t.Fatalf("demos: %v\n%s", err, out)
	}
	if !strings.Contains(out, "expert on train") || !strings.Contains(out, "success rate") || !strings.Contains(out, "wrote") {
		t.Fatalf("demos output:\n%s", out)
	}
	steps, err := datasets.ReadSteps(demos)
	if err != nil {
		t.Fatal(err)
	}
	if steps[0].Source != "expert" || steps[0].Policy != "expert" || !strings.Contains(steps[0].Observation, "[button] Search [button_]") {
		t.Fatalf("first row %+v", steps[0])
	}

	human := filepath.Join(tmp, "human.parquet")
	fixture := filepath.Join("..", "..", "datasets", "testdata", "human_demos.jsonl")
	out, err = runDatasets(t, "import-human", "--in", fixture, "--out", human)
	if err != nil || !strings.Contains(out, "imported 4 human episodes") {
		t.Fatalf("import-human: %v\n%s", err, out)
	}
	out, err = runDatasets(t, "import-human", "--in", fixture, "--out", filepath.Join(tmp, "replayed.parquet"), "--replay", "--data", shopDir)
	if err != nil || !strings.Contains(out, "4 matched a shop goal, 4 replayed") || !strings.Contains(out, "success rate 75.00%") {
		t.Fatalf("import-human --replay: %v\n%s", err, out)
	}

	// inspect one file as a table, the directory as JSON.
	out, err = runDatasets(t, "inspect", human)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"episodes", "human", "unknown (no episode has a final reward)", "click product", "buy now"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect table lacks %q:\n%s", want, out)
		}
	}
	out, err = runDatasets(t, "inspect", "--json", tmp)
	if err != nil {
		t.Fatal(err)
	}
	var s datasets.Summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
	if s.Files != 3 || s.Episodes != 58 || len(s.Sources) != 2 || s.Rewarded != 54 || s.Actions.BuyNow != 58 {
		t.Fatalf("inspect --json: %+v", s)
	}

	// Errors.
	if _, err := runDatasets(t, "inspect", filepath.Join(tmp, "missing.parquet")); err == nil {
		t.Error("inspect of a missing file succeeded")
	}
	bad := filepath.Join(tmp, "bad.parquet")
	os.WriteFile(bad, []byte("PAR1 not really"), 0o644)
	if _, err := runDatasets(t, "inspect", bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("inspect of a corrupt file: %v", err)
	}
	if _, err := runDatasets(t, "import-human", "--in", fixture); err == nil {
		t.Error("import-human without --out succeeded")
	}
	if _, err := runDatasets(t, "demos", "--data", shopDir, "--out", demos, "--obs", "html"); err == nil {
		t.Error("demos with a bad --obs succeeded")
	}
	if _, err := runDatasets(t, "demos", "--data", shopDir, "--out", demos, "--split", "nope"); err == nil {
		t.Error("demos with a bad --split succeeded")
	}
}
