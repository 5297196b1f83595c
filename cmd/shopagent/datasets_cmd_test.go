package main

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	for _, flag := range []string{"--open-other-prob", "--page-ahead-prob", "--reformulate-prob", "--read-prob", "--human-query-prob"} {
		if _, err := runDatasets(t, "demos", "--data", shopDir, "--out", demos, flag, "1.5"); err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("demos with %s 1.5: %v", flag, err)
		}
	}
}

// TestDatasetsDemosExpertFlags checks the expert's flags: its statistics by
// default (human first queries, detours), and the direct expert without
// human queries and detours.
func TestDatasetsDemosExpertFlags(t *testing.T) {
	shopDir := fixtureShopDir(t)
	out := filepath.Join(t.TempDir(), "demos.parquet")
	text, err := runDatasets(t, "demos", "--data", shopDir, "--split", "train", "--n", "40", "--out", out)
	if err != nil {
		t.Fatalf("demos: %v\n%s", err, text)
	}
	var human int
	var pct, mean float64
	if _, err := fmt.Sscanf(text[strings.Index(text, "first query:"):], "first query: a human query in %d episodes (%f%%), a shortened one in the others; %f words",
		&human, &pct, &mean); err != nil || human == 0 || mean < 2 {
		t.Fatalf("demos output (%v):\n%s", err, text)
	}
	if strings.Contains(text, "detours: 0 other results opened, 0 next pages looked at, 0 reformulated searches") || !strings.Contains(text, "per episode:") {
		t.Errorf("no detours by default:\n%s", text)
	}
	text, err = runDatasets(t, "demos", "--data", shopDir, "--split", "train", "--n", "40", "--out", out,
		"--human-query-prob", "0", "--max-detours", "0", "--read-prob", "0")
	if err != nil {
		t.Fatalf("demos: %v\n%s", err, text)
	}
	for _, want := range []string{"a human query in 0 episodes", "detours: 0 other results opened, 0 next pages looked at, 0 reformulated searches",
		"success rate", "0.00 reads"} {
		if !strings.Contains(text, want) {
			t.Errorf("direct expert: output lacks %q:\n%s", want, text)
		}
	}
	steps, err := datasets.ReadSteps(out)
	if err != nil {
		t.Fatal(err)
	}
	// The direct expert opens one product per episode and reads nothing.
	opened := map[string]int{}
	for _, s := range steps {
		if s.Action == "click[description]" || s.Action == "click[features]" {
			t.Errorf("direct expert read: %+v", s)
		}
		if datasets.ClassifyAction(s.Action) == datasets.ActionClickASIN {
			opened[s.EpisodeID]++
		}
	}
	if len(opened) != 40 {
		t.Errorf("%d episodes opened a product, want 40", len(opened))
	}
	for id, n := range opened {
		if n != 1 {
			t.Errorf("%s opened %d products", id, n)
		}
	}
}
