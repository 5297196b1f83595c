package experiment

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"shopagent/abtest"
)

// fakeCLI stands in for shopagent: it records the command lines and writes the outputs
// each command would; `train pg` fails, to check that a failing method is reported as skipped.
type fakeCLI struct {
	mu    sync.Mutex
	calls [][]string
}

func flag(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func (f *fakeCLI) run(_ context.Context, out io.Writer, args []string) error {
	f.mu.Lock()
	f.calls = append(f.calls, args)
	f.mu.Unlock()
	fmt.Fprintln(out, "fake", strings.Join(args, " "))
	cmd := strings.Join(args[:2], " ")
	switch {
	case cmd == "train pg":
		return errors.New("this command is not implemented yet")
	case args[0] == "eval":
		// A deterministic score from the policy's name.
		score := 40.0
		if p := flag(args, "--policy"); p != "" {
			score = 50 + float64(len(filepath.Base(p)))
		}
		js := fmt.Sprintf(`{"summary":{"episodes":3,"score":%g,"success_rate":%g,"mean_steps":4}}`, score, score/2)
		return os.WriteFile(flag(args, "--json"), []byte(js), 0o644)
	case args[0] == "abtest":
		specs, err := abtest.ParseArms(flag(args, "--arms"))
		if err != nil {
			return err
		}
		var names []string
		var eps []abtest.Episode
		for i, s := range specs {
			names = append(names, s.Name)
			for k := 0; k < 3+i; k++ {
				eps = append(eps, abtest.Episode{Index: len(eps), Arm: s.Name, Score: 0.5 + 0.5*float64(1-k%2), Success: k%2 == 0, Steps: 3})
			}
		}
		return abtest.WriteOutputs(flag(args, "--out"), abtest.Summarize(names, eps, 1, 1))
	case cmd == "env generate", cmd == "train pretrain", cmd == "train il", cmd == "train ppo", cmd == "train dpo":
		return os.MkdirAll(flag(args, "--out"), 0o755)
	case cmd == "datasets demos", cmd == "train generate":
		return os.WriteFile(flag(args, "--out"), []byte("parquet"), 0o644)
	}
	return fmt.Errorf("fake: unexpected command %v", args)
}

func (f *fakeCLI) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, strings.Join(c[:2], " "))
	}
	f.calls = nil
	return out
}

func testConfig(out string) Config {
	return Config{Out: out, Products: 100, GenSeed: 3, Seeds: 2, Budget: time.Second, PretrainSteps: 2, ILSteps: 3,
		Episodes: 10, Runs: 1, DemoCounts: []int{5, 10}, Log: io.Discard}
}

// TestRunOrchestration runs every method with a fake CLI: the stages, their command
// lines, the skipped method, the outputs, and resuming.
func TestRunOrchestration(t *testing.T) {
	out := t.TempDir()
	f := &fakeCLI{}
	res, err := Run(context.Background(), testConfig(out), f.run)
	if err != nil {
		t.Fatal(err)
	}
	cmds := f.commands()
	count := func(c string) int {
		n := 0
		for _, x := range cmds {
			if x == c {
				n++
			}
		}
		return n
	}
	// 2 seeds: il, ppo, dpo, dpo-gen (generate + dpo) models; pg fails; 2 more IL for the curve.
	for c, want := range map[string]int{"env generate": 1, "datasets demos": 3, "train pretrain": 1, "train il": 4,
		"train pg": 2, "train ppo": 2, "train dpo": 4, "train generate": 2, "eval --data": 11, "abtest --data": 1} {
		if got := count(c); got != want {
			t.Errorf("%s ran %d times, want %d (%v)", c, got, want, cmds)
		}
	}
	if len(res.Methods) != len(AllMethods) {
		t.Fatalf("%d methods", len(res.Methods))
	}
	for _, m := range res.Methods {
		switch m.Method {
		case MethodPG:
			if len(m.Seeds) != 0 || len(m.Failures) != 2 || !strings.Contains(m.Failures[0], "not implemented") {
				t.Errorf("pg: %+v", m)
			}
		case MethodRule:
			if len(m.Seeds) != 1 || m.ScoreMean != 40 || !m.InThompson {
				t.Errorf("rule: %+v", m)
			}
		default:
			if len(m.Seeds) != 2 || len(m.Failures) != 0 || !m.InThompson || m.ThompsonShare <= 0 {
				t.Errorf("%s: %+v", m.Method, m)
			}
		}
	}
	// The fake evaluations score 50 + len(run name): "il-s1" and "il-s2" give 55.
	il := res.Methods[1]
	if il.ScoreMean != 55 || il.ScoreSD != 0 || il.SuccessMean != 27.5 {
		t.Errorf("il summary %+v", il)
	}
	if len(res.DataEfficiency) != 2 || res.DataEfficiency[1].Demos != 10 || res.DataEfficiency[0].Error != "" {
		t.Errorf("curve %+v", res.DataEfficiency)
	}
	// The RL commands got the contract flags.
	for _, st := range res.Stages {
		if st.Name == "dpo-gen-s2" {
			want := []string{"train", "dpo", "--init", filepath.Join(out, "runs", "il-s2"), "--out", filepath.Join(out, "runs", "dpo-gen-s2"),
				"--seed", "2", "--time-budget", "1s", "--data", filepath.Join(out, "shop"), "--demos", filepath.Join(out, "generated", "gen-s2.parquet")}
			if !slices.Equal(st.Args, want) {
				t.Errorf("dpo-gen args %v\nwant %v", st.Args, want)
			}
		}
	}
	back, err := ReadResults(filepath.Join(out, ResultsJSON))
	if err != nil || len(back.Methods) != 6 || back.Thompson == nil || len(back.Thompson.Arms) != 5 {
		t.Fatalf("results.json: %v %+v", err, back)
	}
	md, _ := os.ReadFile(filepath.Join(out, ResultsMarkdown))
	for _, want := range []string{"| IL | 2 | 55.0 ± 0.0 | 27.5 ± 0.0 |", "| IL+PG | 0 | - |", "IL+PG, seed 1: stage pg-s1:", "## Thompson sampling", "| 10 | 56.0 | 28.0 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	for _, p := range []string{ScoresPlot, DataEfficiencyPlot, filepath.Join(ThompsonDir, abtest.PlotFile)} {
		fh, err := os.Open(filepath.Join(out, p))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(fh); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		fh.Close()
	}

	// A rerun skips every finished stage and retries only the failed pg runs.
	if _, err := Run(context.Background(), testConfig(out), f.run); err != nil {
		t.Fatal(err)
	}
	if got := f.commands(); !slices.Equal(got, []string{"train pg", "train pg"}) {
		t.Errorf("resume ran %v", got)
	}
	// A lost IL model is retrained, and everything built on it is redone.
	if err := os.RemoveAll(filepath.Join(out, "runs", "il-s2")); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), testConfig(out), f.run); err != nil {
		t.Fatal(err)
	}
	got := f.commands()
	want := []string{"train pg", "train il", "eval --data", "train pg", "train ppo", "eval --data", "train dpo", "eval --data", "train generate", "train dpo", "eval --data"}
	if !slices.Equal(got, want) {
		t.Errorf("after losing il-s2 ran %v\nwant %v", got, want)
	}
}

func TestRunErrors(t *testing.T) {
	f := &fakeCLI{}
	for _, c := range []Config{{}, {Out: t.TempDir()}, {Out: t.TempDir(), Seeds: 1, PretrainSteps: 1, ILSteps: 1, Methods: []string{"pg"}}} {
		if _, err := Run(context.Background(), c, f.run); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, testConfig(t.TempDir()), f.run); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := ParseMethods("il,nope"); err == nil {
		t.Error("unknown method accepted")
	}
	if m, err := ParseMethods("dpo-gen, rule,il"); err != nil || !slices.Equal(m, []string{"rule", "il", "dpo-gen"}) {
		t.Errorf("ParseMethods = %v, %v", m, err)
	}
	if _, err := ParseCounts("10,x"); err == nil {
		t.Error("bad count accepted")
	}
	if c, err := ParseCounts("10, 30"); err != nil || !slices.Equal(c, []int{10, 30}) {
		t.Errorf("ParseCounts = %v, %v", c, err)
	}
}
