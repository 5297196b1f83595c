package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shopagent/abtest"
	"shopagent/experiment"
)

// TestAbtestCmd plays rule against random by Thompson sampling and reads the outputs back.
func TestAbtestCmd(t *testing.T) {
	shop := testShopDir(t)
	dir := filepath.Join(t.TempDir(), "ab")
	out, err := run(t, "", "abtest", "--data", shop, "--arms", "rule=rule,random=random", "--episodes", "60", "--runs", "2",
		"--workers", "1", "--max-steps", "30", "--out", dir)
	if err != nil {
		t.Fatalf("abtest: %v\n%s", err, out)
	}
	for _, want := range []string{"| arm | episodes | share % |", "| random |", "rule", "120 episodes in", "wrote report.json"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	rep, err := abtest.ReadReport(filepath.Join(dir, abtest.ReportFile))
	if err != nil || rep.Runs != 2 || rep.TotalEpisodes != 120 || len(rep.Arms) != 2 || rep.Arms[0].Spec != "rule" || rep.Source != "in-process" {
		t.Fatalf("report: %v %+v", err, rep)
	}
	eps, err := abtest.ReadEpisodes(filepath.Join(dir, abtest.EpisodesFile))
	if err != nil || len(eps) != 120 {
		t.Fatalf("episodes: %v (%d)", err, len(eps))
	}
	f, err := os.Open(filepath.Join(dir, abtest.PlotFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("plot: %v", err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"abtest", "--data", shop}, "--arms is required"},
		{[]string{"abtest", "--data", shop, "--arms", "a=rule,a=random"}, "used twice"},
		{[]string{"abtest", "--data", shop, "--arms", "a=" + filepath.Join(dir, "nope")}, "no such file"},
		{[]string{"abtest", "--data", shop, "--arms", "a=rule,b=rule", "--min-share", "0.6"}, "--min-share"},
		{[]string{"abtest", "--data", shop, "--arms", "a=rule", "--episodes", "0"}, "must be positive"},
		{[]string{"abtest", "--data", shop, "--arms", "a=rule", "--split", "nope"}, "nope"},
	} {
		if out, err := run(t, "", c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v (want %q)\n%s", c.args, err, c.want, out)
		}
	}
}

// TestExperimentPaper runs the paper experiment from the command line with the rule, IL
// and DPO methods on the tiny test shop and tiny budgets, checks its outputs, and checks
// that a rerun resumes (skips every stage).
func TestExperimentPaper(t *testing.T) {
	shop := testShopDir(t)
	dir := filepath.Join(t.TempDir(), "paper")
	args := []string{"experiment", "paper", "--data", shop, "--out", dir, "--methods", "rule,il,dpo", "--seeds", "2",
		"--pretrain-steps", "2", "--il-steps", "3", "--demos", "20", "--dpo-episodes", "5", "--budget", "2s",
		"--sweep", "", "--thompson-episodes", "8", "--thompson-runs", "2", "--eval-goals", "3",
		"--batch", "4", "--max-len", "32", "--vocab-size", "2000", "--max-state-len", "64"}
	out, err := run(t, "", args...)
	if err != nil {
		t.Fatalf("experiment: %v\n%s", err, out)
	}
	res, err := experiment.ReadResults(filepath.Join(dir, experiment.ResultsJSON))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Methods) != 3 || res.Methods[0].Method != "rule" || len(res.Methods[1].Seeds) != 2 || len(res.Methods[2].Seeds) != 2 {
		t.Fatalf("methods %+v", res.Methods)
	}
	il, dpo := res.Methods[1], res.Methods[2]
	if il.Seeds[0].Eval.Episodes != 3 || !strings.HasSuffix(il.Seeds[1].Run, filepath.Join("runs", "il-s2")) || !il.InThompson || il.TrainWallS <= 0 {
		t.Errorf("il %+v", il)
	}
	if dpo.BudgetS != 2 || dpo.StageWallS < 2 || dpo.Published == nil || dpo.Published.Success != 19 {
		t.Errorf("dpo %+v", dpo)
	}
	if res.Thompson == nil || res.Thompson.TotalEpisodes != 16 {
		t.Errorf("thompson %+v", res.Thompson)
	}
	md, err := os.ReadFile(filepath.Join(dir, experiment.ResultsMarkdown))
	if err != nil || !strings.Contains(string(md), "| IL | 2 |") || !strings.Contains(string(md), "| Rule (search the instruction, first result, buy) | 1 |") {
		t.Errorf("results.md: %v\n%s", err, md)
	}
	for _, p := range []string{experiment.ScoresPlot, filepath.Join(experiment.ThompsonDir, abtest.PlotFile)} {
		f, err := os.Open(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(f); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		f.Close()
	}
	if _, err := abtest.ReadEpisodes(filepath.Join(dir, experiment.ThompsonDir, abtest.EpisodesFile)); err != nil {
		t.Error(err)
	}
	// A rerun resumes: every stage is skipped and the results are the same.
	out, err = run(t, "", args...)
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, out)
	}
	again, err := experiment.ReadResults(filepath.Join(dir, experiment.ResultsJSON))
	if err != nil || again.Methods[1].ScoreMean != il.ScoreMean {
		t.Fatalf("rerun results: %v", err)
	}
	if n := strings.Count(out, "done before"); n != len(again.Stages) || n < 10 || strings.Contains(out, "started") {
		t.Errorf("rerun skipped %d of %d stages:\n%s", n, len(again.Stages), out)
	}
	if _, err := run(t, "", "experiment", "paper", "--methods", "rule"); err == nil || !strings.Contains(err.Error(), "--out is required") {
		t.Errorf("no --out: %v", err)
	}
	if _, err := run(t, "", "experiment", "paper", "--out", dir, "--methods", "nope"); err == nil || !strings.Contains(err.Error(), "unknown method") {
		t.Errorf("bad method: %v", err)
	}
}
