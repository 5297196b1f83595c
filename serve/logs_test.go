package serve

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// init turns the test binary into the child server of TestLogsSurviveSIGKILL when
// SERVE_TEST_CHILD is set (before TestMain, which ort_test.go owns, runs).
func init() {
	if os.Getenv("SERVE_TEST_CHILD") == "1" {
		os.Exit(runChildServer())
	}
}

// runChildServer is the child process of TestLogsSurviveSIGKILL: a server with two
// lexical arms logging to $SERVE_TEST_LOGS, flushed every 50 ms, until it is killed.
func runChildServer() int {
	root := os.Getenv("SERVE_TEST_ROOT")
	var specs []ArmSpec
	for _, name := range []string{"a", "b"} {
		dir := filepath.Join(root, name)
		_ = os.MkdirAll(dir, 0o755)
		_ = os.WriteFile(filepath.Join(dir, LexicalConfigFile), []byte(`{"name":"lex-`+name+`"}`), 0o644)
		specs = append(specs, ArmSpec{Name: name, Dir: dir})
	}
	logs, err := OpenLogs(LogConfig{Dir: os.Getenv("SERVE_TEST_LOGS"), FlushEvery: 50 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := New(Config{Arms: specs, Loader: LoadLexicalPolicy, Mode: ModeCanary, Weights: []float64{1, 1}, Sample: true, Logs: logs})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.LoadArms(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	hs := httptest.NewServer(s.Handler())
	if err := os.WriteFile(filepath.Join(root, "addr"), []byte(hs.URL), 0o644); err != nil {
		return 1
	}
	select {} // until SIGKILL
}

func TestLogsSurviveSIGKILL(t *testing.T) {
	root, logDir := t.TempDir(), t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "SERVE_TEST_CHILD=1", "SERVE_TEST_ROOT="+root, "SERVE_TEST_LOGS="+logDir)
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = child.Process.Kill()
			_ = child.Wait()
		}
	}()
	var url string
	for deadline := time.Now().Add(20 * time.Second); url == ""; {
		if b, err := os.ReadFile(filepath.Join(root, "addr")); err == nil && len(b) > 0 {
			url = string(b)
		} else if time.Now().After(deadline) {
			t.Fatal("child server did not start")
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	c := NewClient(url)
	ctx := context.Background()
	// Phase 1: 30 rewarded episodes, then wait until a flush has surely passed.
	for i := 0; i < 30; i++ {
		sid := fmt.Sprintf("k%d", i)
		for s := 0; s < 2; s++ {
			if _, err := c.Act(ctx, ActRequest{SessionID: sid, Instruction: "red shirt", Observation: "page " + strings.Repeat("x ", i), AvailableActions: shirtActions}); err != nil {
				t.Fatal(err)
			}
		}
		reward := float64(i%3) / 2
		if _, err := c.Feedback(ctx, FeedbackRequest{SessionID: sid, Reward: &reward}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	// Phase 2: keep the server busy (and flushing) while it is killed.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	sent := 0
	var mu sync.Mutex
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.Act(ctx, ActRequest{SessionID: fmt.Sprintf("busy%d-%d", w, i), Observation: "o", AvailableActions: shirtActions}); err != nil {
					return
				}
				mu.Lock()
				sent++
				mu.Unlock()
			}
		}(w)
	}
	time.Sleep(400 * time.Millisecond)
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	killed = true
	close(stop)
	wg.Wait()

	// Every published file reads back completely.
	for _, log := range []string{"decisions", "rewards"} {
		files, err := LogFiles(logDir, log)
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %d files, %v", log, len(files), err)
		}
		for _, f := range files {
			if !strings.Contains(f, string(filepath.Separator)+"date=") || !strings.Contains(f, string(filepath.Separator)+"arm=") {
				t.Fatalf("file %s is not hive-partitioned", f)
			}
		}
	}
	decs, err := ReadDecisions(logDir)
	if err != nil {
		t.Fatalf("decision logs after SIGKILL: %v", err)
	}
	rews, err := ReadRewards(logDir)
	if err != nil {
		t.Fatalf("reward logs after SIGKILL: %v", err)
	}
	// Phase 1 was flushed before the kill: all of it is there.
	phase1 := 0
	for _, d := range decs {
		if strings.HasPrefix(d.SessionID, "k") {
			phase1++
			if d.Propensity <= 0 || len(d.Probabilities) != len(shirtActions) || d.AvailableActions[d.ActionIndex] != d.Action || d.ModelSHA256 == "" {
				t.Fatalf("decision row %+v", d)
			}
		}
	}
	if phase1 != 60 || len(rews) != 30 {
		t.Fatalf("after SIGKILL: %d of 60 flushed decisions, %d of 30 rewards", phase1, len(rews))
	}
	mu.Lock()
	defer mu.Unlock()
	if busy := len(decs) - phase1; busy > sent || sent == 0 {
		t.Fatalf("%d busy decisions logged, %d acknowledged", busy, sent)
	}
	t.Logf("SIGKILL: %d acknowledged busy decisions, %d logged (lost tail %d)", sent, len(decs)-phase1, sent-(len(decs)-phase1))
}

func TestLogWriterPartitionsAndSizeFlush(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenLogs(LogConfig{Dir: dir, FlushEvery: time.Hour, MaxBufferBytes: 4096, Replica: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	day1 := time.Date(2025, 3, 1, 23, 59, 0, 0, time.UTC)
	for i := 0; i < 50; i++ {
		arm := []string{"ppo", "dpo"}[i%2]
		w.Decision(DecisionRow{EventID: fmt.Sprint(i), TS: day1.Add(time.Duration(2*i) * time.Second), Arm: arm,
			Observation: strings.Repeat("o", 200), AvailableActions: []string{"a", "b"}, Probabilities: []float32{0.25, 0.75}, ActionPropensity: 1, Propensity: 1})
	}
	// Over 4 KiB buffered: the size trigger flushes without waiting for the hour.
	deadline := time.Now().Add(5 * time.Second)
	for {
		files, _ := LogFiles(dir, "decisions")
		if len(files) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("size-triggered flush did not happen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.Reward(RewardRow{SessionID: "s", Arm: "ppo", TS: day1, Reward: 1, Success: true, Source: "feedback"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Decision(DecisionRow{EventID: "after close", TS: day1, Arm: "ppo"}) // dropped, no panic
	decs, err := ReadDecisions(dir)
	if err != nil || len(decs) != 50 {
		t.Fatalf("%d decisions, %v", len(decs), err)
	}
	parts := map[string]int{}
	files, _ := LogFiles(dir, "decisions")
	for _, f := range files {
		rel, _ := filepath.Rel(filepath.Join(dir, "decisions"), f)
		parts[filepath.Dir(rel)]++
		if !strings.Contains(filepath.Base(f), "-r1-") {
			t.Fatalf("file name %s lacks the replica", f)
		}
	}
	for _, want := range []string{"date=2025-03-01/arm=ppo", "date=2025-03-02/arm=ppo", "date=2025-03-01/arm=dpo", "date=2025-03-02/arm=dpo"} {
		if parts[want] == 0 {
			t.Fatalf("no file in partition %s: %v", want, parts)
		}
	}
	if d := decs[0]; d.Probabilities[1] != 0.75 || d.TS.IsZero() {
		t.Fatalf("row %+v", d)
	}
	rews, err := ReadRewards(dir)
	if err != nil || len(rews) != 1 || !rews[0].Success {
		t.Fatalf("rewards %+v %v", rews, err)
	}
	// A leftover temporary file from a crash is ignored.
	tmp := filepath.Join(dir, "decisions", "date=2025-03-01", "arm=ppo", ".part-x-123.tmp")
	if err := os.WriteFile(tmp, []byte("PAR1 garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if decs, err := ReadDecisions(dir); err != nil || len(decs) != 50 {
		t.Fatalf("with a leftover temp file: %d, %v", len(decs), err)
	}
}
