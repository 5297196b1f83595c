package serve

import (
	"context"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"shopagent/env"
	"shopagent/env/shopgen"
	"shopagent/serve/decisionlog"
)

var driveShop struct {
	sync.Once
	shop *env.Shop
	err  error
}

// smallShop generates and opens a 200-product shop once per test binary.
func smallShop(t *testing.T) *env.Shop {
	t.Helper()
	driveShop.Do(func() {
		dir, err := os.MkdirTemp("", "serve-shop")
		if err != nil {
			driveShop.err = err
			return
		}
		defer os.RemoveAll(dir)
		cfg := shopgen.DefaultConfig()
		cfg.Goals, cfg.Seed = shopgen.SampleGoals(20, 20, 60), 5
		if driveShop.err = shopgen.Generate(cfg, dir, nil); driveShop.err != nil {
			return
		}
		driveShop.shop, driveShop.err = env.OpenShop(dir, env.ShopOptions{Seed: 1})
	})
	if driveShop.err != nil {
		t.Fatal(driveShop.err)
	}
	return driveShop.shop
}

func TestDriveEpisodesThroughServer(t *testing.T) {
	shop := smallShop(t)
	goals, err := shop.SplitGoals("test")
	if err != nil {
		t.Fatal(err)
	}
	logDir := t.TempDir()
	logs, err := decisionlog.Open(decisionlog.Config{Dir: logDir})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *Config) { c.Mode, c.Weights, c.MinShare, c.Logs = ModeThompson, nil, 0.1, logs })
	c := NewClient(ts.URL)
	ctx := context.Background()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	calls := 0
	eps, err := c.Drive(ctx, shop, goals, DriveConfig{Episodes: 20, Runs: 2, Concurrency: 4, Seed: 9,
		Progress: func(done, total int) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 40 || calls != 40 {
		t.Fatalf("%d episodes, %d progress calls", len(eps), calls)
	}
	perArm := map[string]int64{}
	sum := 0.0
	for _, e := range eps {
		if e.Arm == "" || e.Decisions == 0 || e.Steps < e.Decisions+1 {
			t.Fatalf("episode %+v", e)
		}
		perArm[e.Arm]++
		sum += e.Reward
	}
	arms, err := c.Arms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	serverSum := 0.0
	for _, a := range arms.Arms {
		if a.Episodes != perArm[a.Name] {
			t.Fatalf("arm %s: server counted %d episodes, client played %d", a.Name, a.Episodes, perArm[a.Name])
		}
		serverSum += a.MeanScore * float64(a.Episodes)
	}
	if math.Abs(serverSum-sum) > 1e-9 {
		t.Fatalf("server reward sum %g, client %g", serverSum, sum)
	}
	// The goal draws follow abtest.Run's seeding: the same seed gives the same goals.
	again, err := c.Drive(ctx, shop, goals, DriveConfig{Episodes: 20, Runs: 2, Concurrency: 2, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	for i := range eps {
		if eps[i].Goal != again[i].Goal {
			t.Fatalf("episode %d: goal %d then %d", i, eps[i].Goal, again[i].Goal)
		}
	}
	if err := logs.Cut(); err != nil {
		t.Fatal(err)
	}
	decs, _ := decisionlog.ReadDecisions(logDir)
	rews, _ := decisionlog.ReadRewards(logDir)
	nd := 0
	for _, e := range eps {
		nd += e.Decisions
	}
	for _, e := range again {
		nd += e.Decisions
	}
	if len(decs) != nd || len(rews) != 80 {
		t.Fatalf("logs: %d decisions (want %d), %d rewards (want 80)", len(decs), nd, len(rews))
	}
	t.Logf("40 episodes: %v, mean reward %.3f", perArm, sum/40)
}

func TestServeONNXArm(t *testing.T) {
	if _, err := os.Stat("../third_party/onnxruntime/libonnxruntime.so.1"); err != nil && os.Getenv("SHOPAGENT_ORT_LIB") == "" {
		t.Skip("no ONNX Runtime library")
	}
	_, dir, samples := exportedPolicy(t)
	ts := startServer(t, func(c *Config) {
		c.Arms = []ArmSpec{{"onnx", dir}}
		c.Mode, c.Weights = ModeThompson, nil
		c.Loader = func(d string) (Policy, error) { return LoadONNXPolicy(d, ORTOptions{ActionCacheMB: 16}) }
	})
	direct, err := LoadONNXPolicy(dir, ORTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	c := NewClient(ts.URL)
	for _, s := range append(samples[:min(3, len(samples))], samples[0]) {
		acts := clickActions(s)
		r, err := c.Act(context.Background(), ActRequest{SessionID: "onnx", Observation: s.Text, AvailableActions: acts})
		if err != nil {
			t.Fatal(err)
		}
		d, err := direct.Act("", s.Text, acts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range acts {
			if math.Abs(r.Probabilities[i]-d.Probabilities[i]) > 1e-6 {
				t.Fatalf("served probability %g, direct %g", r.Probabilities[i], d.Probabilities[i])
			}
			if d.Probabilities[i] > d.Probabilities[r.Index] {
				t.Fatalf("greedy served %d, but %d is likelier", r.Index, i)
			}
		}
		if r.Arm != "onnx" || r.PolicySHA256 != direct.Info().SHA256 || math.Abs(r.Value-d.Value) > 1e-6 {
			t.Fatalf("reply %+v", r)
		}
	}
	// The arm's action cache is on /metrics: the repeated page's actions were hits.
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	hits := regexp.MustCompile(`shopagent_action_cache_hits_total\{arm="onnx"\} (\d+)`).FindSubmatch(body)
	misses := regexp.MustCompile(`shopagent_action_cache_misses_total\{arm="onnx"\} (\d+)`).FindSubmatch(body)
	if hits == nil || misses == nil || string(hits[1]) == "0" || string(misses[1]) == "0" ||
		!strings.Contains(string(body), `shopagent_action_cache_entries{arm="onnx"}`) {
		t.Fatalf("no action cache metrics with hits and misses:\n%s", body)
	}
}
