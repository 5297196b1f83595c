package abtest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"shopagent/agent"
	"shopagent/serve"
	"shopagent/serve/decisionlog"
)

// lexicalServer starts a Thompson-sampling policy server over two lexical policies
// (serve's test policies: a keyword-overlap scorer, one of them keen on "buy now").
func lexicalServer(t *testing.T, mut func(*serve.Config)) *serve.Client {
	t.Helper()
	root := t.TempDir()
	var arms []serve.ArmSpec
	for _, c := range []serve.LexicalConfig{{Name: "lex-a", Temperature: 0.5, Bonus: map[string]float64{"buy": 1}}, {Name: "lex-b", Temperature: 2}} {
		dir := filepath.Join(root, c.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(c)
		if err := os.WriteFile(filepath.Join(dir, serve.LexicalConfigFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		arms = append(arms, serve.ArmSpec{Name: c.Name, Dir: dir})
	}
	cfg := serve.Config{Arms: arms, Loader: serve.LoadLexicalPolicy, Mode: serve.ModeThompson, MinShare: 0.1, Seed: 7,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mut != nil {
		mut(&cfg)
	}
	s, err := serve.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.LoadArms(); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := s.Shutdown(); err != nil {
			t.Error(err)
		}
	})
	c := serve.NewClient(hs.URL)
	if err := c.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
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
	c := lexicalServer(t, func(cfg *serve.Config) { cfg.Logs = logs })
	ctx := context.Background()
	calls := 0
	eps, err := Drive(ctx, c, shop, goals, DriveConfig{Episodes: 20, Runs: 2, Concurrency: 4, Seed: 9,
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
	// The goal draws follow Run's seeding: the same seed gives the same goals.
	again, err := Drive(ctx, c, shop, goals, DriveConfig{Episodes: 20, Runs: 2, Concurrency: 2, Seed: 9})
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
	for _, e := range append(append([]DrivenEpisode{}, eps...), again...) {
		nd += e.Decisions
	}
	if len(decs) != nd || len(rews) != 80 {
		t.Fatalf("logs: %d decisions (want %d), %d rewards (want 80)", len(decs), nd, len(rews))
	}
	t.Logf("40 episodes: %v, mean reward %.3f", perArm, sum/40)
}

// The decision core's budgets hold through the server: with four actions allowed, the
// core then finishes (the budget rule asks the server for the argmax product and buys
// it), so no episode runs longer than a handful of steps.
func TestDriveAgentBudget(t *testing.T) {
	shop := smallShop(t)
	goals, err := shop.SplitGoals("test")
	if err != nil {
		t.Fatal(err)
	}
	c := lexicalServer(t, nil)
	eps, err := Drive(context.Background(), c, shop, goals, DriveConfig{Episodes: 10, Runs: 1, Concurrency: 2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	long := 0
	for _, e := range eps {
		long = max(long, e.Steps)
	}
	capped, err := Drive(context.Background(), c, shop, goals, DriveConfig{Episodes: 10, Runs: 1, Concurrency: 2, Seed: 3,
		MaxSteps: 100, Agent: agent.Config{MaxSteps: 4}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range capped {
		// Over budget at the fifth action: at most a back, a search past the last
		// result page, a product and "buy now" follow.
		if e.Steps > 8 {
			t.Fatalf("agent budget 4: episode took %d steps: %+v", e.Steps, e)
		}
	}
	t.Logf("longest episode: %d steps unbudgeted, capped at 4 agent steps", long)
}
