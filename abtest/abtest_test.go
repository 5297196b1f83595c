package abtest

import (
	"context"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"shopagent/bandit"
	"shopagent/env"
	"shopagent/env/shopgen"
	"shopagent/train"
)

var testShop struct {
	sync.Once
	shop *env.Shop
	err  error
}

// smallShop generates and opens a 200-product shop once per test binary.
func smallShop(t *testing.T) *env.Shop {
	t.Helper()
	testShop.Do(func() {
		dir, err := os.MkdirTemp("", "abtest-shop")
		if err != nil {
			testShop.err = err
			return
		}
		defer os.RemoveAll(dir)
		cfg := shopgen.DefaultConfig()
		cfg.Goals, cfg.Seed = shopgen.SampleGoals(20, 20, 60), 5
		if testShop.err = shopgen.Generate(cfg, dir, nil); testShop.err != nil {
			return
		}
		testShop.shop, testShop.err = env.OpenShop(dir, env.ShopOptions{Seed: 1})
	})
	if testShop.err != nil {
		t.Fatal(testShop.err)
	}
	return testShop.shop
}

func TestParseArms(t *testing.T) {
	got, err := ParseArms(" a=rule, b = runs/il ,c=random")
	want := []ArmSpec{{"a", "rule"}, {"b", "runs/il"}, {"c", "random"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseArms = %v, %v", got, err)
	}
	for _, bad := range []string{"", "a", "a=", "=rule", "a=rule,a=random"} {
		if _, err := ParseArms(bad); err == nil {
			t.Errorf("ParseArms(%q) accepted", bad)
		}
	}
	if _, err := LoadArms([]ArmSpec{{"x", filepath.Join(t.TempDir(), "missing")}}, "go", 1, train.AgentConfig{}); err == nil {
		t.Error("LoadArms accepted a missing policy")
	}
}

func ruleAndRandom(t *testing.T) []Arm {
	arms, err := LoadArms([]ArmSpec{{"rule", "rule"}, {"random", "random"}}, "go", 1, train.AgentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return arms
}

// TestRunThompson plays rule against random: the bandit must send most traffic to the
// arm that succeeds, runs must be reproducible with one worker, and concurrent runs must
// play every episode index exactly once.
func TestRunThompson(t *testing.T) {
	shop := smallShop(t)
	goals, err := shop.SplitGoals("test")
	if err != nil || len(goals) == 0 {
		t.Fatalf("goals: %v (%d)", err, len(goals))
	}
	arms := ruleAndRandom(t)
	cfg := Config{Episodes: 120, Runs: 2, Workers: 1, Seed: 7, MaxSteps: 30,
		Bandit: bandit.Thompson{Prior: bandit.UniformPrior, MinShare: 0.05}}
	res, err := Run(context.Background(), shop, goals, arms, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Episodes) != 240 {
		t.Fatalf("%d episodes", len(res.Episodes))
	}
	again, err := Run(context.Background(), shop, goals, arms, cfg)
	if err != nil || !reflect.DeepEqual(res.Episodes, again.Episodes) {
		t.Fatalf("one-worker runs differ (err %v)", err)
	}
	rep := Summarize([]string{"rule", "random"}, res.Episodes, 2, 7)
	rule, _ := rep.Arm("rule")
	random, _ := rep.Arm("random")
	if rule.SuccessRate <= random.SuccessRate {
		t.Fatalf("rule success %.1f%% not above random %.1f%%", rule.SuccessRate, random.SuccessRate)
	}
	if rule.Episodes <= random.Episodes || rule.ProbBest < 0.9 || rep.Best != "rule" {
		t.Errorf("bandit did not favour rule: %+v / %+v", rule, random)
	}
	if random.Episodes < 6 { // the 5% floor per arm gives it about 2.5% + its Thompson draws
		t.Errorf("random got %d episodes despite the minimum share", random.Episodes)
	}
	for _, ep := range res.Episodes {
		if ep.Goal < 0 || ep.Goal >= len(goals) || ep.Steps <= 0 || ep.Success != (ep.Score == 1) {
			t.Fatalf("bad episode %+v", ep)
		}
	}

	cfg.Workers, cfg.Runs, cfg.Episodes = 4, 1, 40
	calls := 0
	cfg.Progress = func(done, total int) {
		calls++
		if total != 40 || done < 1 || done > 40 {
			t.Errorf("progress %d/%d", done, total)
		}
	}
	res, err = Run(context.Background(), shop, goals, arms, cfg)
	if err != nil || len(res.Episodes) != 40 || calls != 40 {
		t.Fatalf("concurrent run: %v, %d episodes, %d progress calls", err, len(res.Episodes), calls)
	}
	for i, ep := range res.Episodes {
		if ep.Index != i || ep.Run != 0 {
			t.Fatalf("episode %d has index %d run %d", i, ep.Index, ep.Run)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, shop, goals, arms, cfg); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("cancelled run: %v", err)
	}
	for _, bad := range []Config{{Episodes: 0, Runs: 1}, {Episodes: 1, Runs: 1, Bandit: bandit.Thompson{Prior: bandit.UniformPrior, MinShare: 0.9}}} {
		if _, err := Run(context.Background(), shop, goals, arms, bad); err == nil {
			t.Errorf("config %+v accepted", bad)
		}
	}
	if _, err := Run(context.Background(), shop, nil, arms, cfg); err == nil {
		t.Error("no goals accepted")
	}
}

func TestSummarize(t *testing.T) {
	eps := []Episode{
		{Run: 0, Index: 0, Arm: "a", Score: 1, Success: true, Steps: 4},
		{Run: 0, Index: 1, Arm: "a", Score: 0.5, Steps: 6},
		{Run: 0, Index: 2, Arm: "b", Score: 0, Steps: 2},
		{Run: 1, Index: 0, Arm: "a", Score: 0, Steps: 3},
		{Run: 1, Index: 1, Arm: "b", Score: 0.25, Steps: 5},
		{Run: 1, Index: 2, Arm: "c", Score: 1, Success: true, Steps: 1},
	}
	r := Summarize([]string{"b", "a"}, eps, 0, 3)
	if r.Runs != 2 || r.EpisodesPerRun != 3 || r.TotalEpisodes != 6 || len(r.Arms) != 3 {
		t.Fatalf("report %+v", r)
	}
	names := []string{r.Arms[0].Name, r.Arms[1].Name, r.Arms[2].Name}
	if !reflect.DeepEqual(names, []string{"b", "a", "c"}) {
		t.Fatalf("arm order %v", names)
	}
	a, _ := r.Arm("a")
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	if a.Episodes != 3 || a.Successes != 1 || !near(a.MeanScore, 50) || !near(a.SuccessRate, 100.0/3) ||
		!near(a.MeanSteps, 13.0/3) || !near(a.Share, 0.5) || !near(a.PosteriorMean, 2.0/5) ||
		a.PosteriorAlpha != 2 || a.PosteriorBeta != 3 {
		t.Errorf("arm a %+v", a)
	}
	// Per run: run 0 score 75, run 1 score 0 -> mean 37.5, sd sqrt(2)*37.5.
	if !near(a.ScoreRunMean, 37.5) || !near(a.ScoreRunSD, 37.5*math.Sqrt2) || a.RunsPlayed != 2 ||
		!near(a.ShareRunMean, 0.5) || !near(a.SuccessRunMean, 25) {
		t.Errorf("arm a spreads %+v", a)
	}
	c, _ := r.Arm("c")
	if c.RunsPlayed != 1 || !near(c.ShareRunMean, 1.0/6) || c.ScoreRunSD != 0 {
		t.Errorf("arm c %+v", c)
	}
	sum := 0.0
	for _, ar := range r.Arms {
		sum += ar.ProbBest
	}
	if !near(sum, 1) || r.Best != "c" {
		t.Errorf("P(best) sum %g, best %q", sum, r.Best)
	}
	md := r.Markdown()
	for _, want := range []string{"| arm | episodes |", "| **c** | 1 |", "| a | 3 | 50.0 ± ", "P(best)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	empty := Summarize([]string{"x"}, nil, 0, 1)
	if empty.Runs != 1 || len(empty.Arms) != 1 || empty.Arms[0].Episodes != 0 || empty.Arms[0].ProbBest != 1 {
		t.Errorf("empty report %+v", empty)
	}
	_ = empty.Markdown()
}

func TestCurves(t *testing.T) {
	eps := []Episode{
		{Run: 0, Index: 0, Arm: "a", Score: 1, Success: true},
		{Run: 0, Index: 1, Arm: "b", Score: 0},
		{Run: 0, Index: 2, Arm: "a", Score: 0},
		{Run: 1, Index: 0, Arm: "b", Score: 0.5},
		{Run: 1, Index: 1, Arm: "b", Score: 0.5},
		{Run: 1, Index: 2, Arm: "a", Score: 0.5},
	}
	c := ComputeCurves(Summarize([]string{"a", "b"}, eps, 2, 1))
	if len(c.X) != 3 || c.X[0] != 1 {
		t.Fatalf("x %v", c.X)
	}
	// Arm a: run 0 cum means 100, 100, 50; run 1: -, -, 50 -> 100, 100, 50 (success: run 1 has none -> 25).
	if !reflect.DeepEqual(c.Score[0], []float64{100, 100, 50}) || !reflect.DeepEqual(c.Success[0], []float64{100, 100, 25}) {
		t.Errorf("arm a curves %v %v", c.Score[0], c.Success[0])
	}
	// Share of a: run 0 100, 50, 66.7; run 1 0, 0, 33.3.
	want := []float64{50, 25, 50}
	for i := range want {
		if math.Abs(c.Share[0][i]-want[i]) > 1e-9 {
			t.Errorf("share of a %v, want %v", c.Share[0], want)
		}
	}
}

// TestWriteOutputs writes the four files from a real run and reads them back.
func TestWriteOutputs(t *testing.T) {
	shop := smallShop(t)
	goals, _ := shop.SplitGoals("test")
	res, err := Run(context.Background(), shop, goals, ruleAndRandom(t), Config{Episodes: 30, Runs: 2, Workers: 2, Seed: 1, MaxSteps: 20})
	if err != nil {
		t.Fatal(err)
	}
	r := Summarize([]string{"rule", "random"}, res.Episodes, 2, 1)
	r.Split, r.Goals, r.Source = "test", len(goals), "in-process"
	dir := filepath.Join(t.TempDir(), "out")
	if err := WriteOutputs(dir, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(filepath.Join(dir, ReportFile))
	if err != nil || back.Runs != 2 || len(back.Arms) != 2 || back.Split != "test" || back.Arms[0].Episodes != r.Arms[0].Episodes {
		t.Fatalf("report.json: %v %+v", err, back)
	}
	eps, err := ReadEpisodes(filepath.Join(dir, EpisodesFile))
	if err != nil || !reflect.DeepEqual(eps, res.Episodes) {
		t.Fatalf("episodes.parquet: %v (%d rows)", err, len(eps))
	}
	md, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	if err != nil || !strings.Contains(string(md), "| rule |") && !strings.Contains(string(md), "| **rule** |") {
		t.Fatalf("report.md: %v\n%s", err, md)
	}
	f, err := os.Open(filepath.Join(dir, PlotFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if b.Dx() < 400 || b.Dy() < 400 {
		t.Fatalf("plot is %v", b)
	}
	colours := map[uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if len(colours) < 4 {
		t.Errorf("plot has %d colours: blank?", len(colours))
	}
	if err := WriteOutputs("", r); err == nil {
		t.Error("empty dir accepted")
	}
	if _, err := ReadEpisodes(filepath.Join(dir, "nope.parquet")); err == nil {
		t.Error("missing episodes file read")
	}
}
