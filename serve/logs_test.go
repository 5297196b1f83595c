package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shopagent/atomicfile"
	"shopagent/serve/decisionlog"
)

// init turns the test binary into the child server of TestKillNineWithoutRedis when
// SERVE_TEST_CHILD is set (before TestMain, which ort_test.go owns, runs).
func init() {
	if os.Getenv("SERVE_TEST_CHILD") == "1" {
		os.Exit(runChildServer())
	}
}

// runChildServer is the child process of TestKillNineWithoutRedis: a server without
// Redis, with two lexical arms, logging to $SERVE_TEST_LOGS; on start it recovers the
// logs and rebuilds its state from them, as `shopagent serve` does. It serves until it
// is killed.
func runChildServer() int {
	root := os.Getenv("SERVE_TEST_ROOT")
	var specs []ArmSpec
	for _, name := range []string{"a", "b"} {
		dir := filepath.Join(root, name)
		_ = os.MkdirAll(dir, 0o755)
		_ = os.WriteFile(filepath.Join(dir, LexicalConfigFile), []byte(`{"name":"lex-`+name+`"}`), 0o644)
		specs = append(specs, ArmSpec{Name: name, Dir: dir})
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	logs, err := decisionlog.Open(decisionlog.Config{Dir: os.Getenv("SERVE_TEST_LOGS"), Replica: "child", Logger: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	store := NewMemoryStore(time.Hour, time.Hour)
	if _, err := store.RebuildFromLogs(logs.Dir(), time.Now(), time.Hour); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := New(Config{Arms: specs, Loader: LoadLexicalPolicy, Mode: ModeCanary, Weights: []float64{1, 1}, Sample: true,
		Logs: logs, Store: store, RewardTimeout: time.Hour, Logger: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.LoadArms(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	hs := httptest.NewServer(s.Handler())
	if err := atomicfile.WriteFile(filepath.Join(root, "addr"), []byte(hs.URL), 0o644); err != nil {
		return 1
	}
	select {} // until SIGKILL
}

// startChild starts the child server and waits for its address.
func startChild(t *testing.T, root, logDir string) (*exec.Cmd, string) {
	t.Helper()
	os.Remove(filepath.Join(root, "addr"))
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "SERVE_TEST_CHILD=1", "SERVE_TEST_ROOT="+root, "SERVE_TEST_LOGS="+logDir)
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = child.Process.Kill()
		_ = child.Wait()
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if b, err := os.ReadFile(filepath.Join(root, "addr")); err == nil && len(b) > 0 {
			return child, string(b)
		}
		if time.Now().After(deadline) {
			t.Fatal("child server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func armTotals(t *testing.T, c *Client) (episodes, successes int64, scoreSum float64) {
	t.Helper()
	arms, err := c.Arms(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range arms.Arms {
		episodes += a.Episodes
		successes += a.Successes
		scoreSum += a.MeanScore * float64(a.Episodes)
	}
	return episodes, successes, scoreSum
}

// TestKillNineWithoutRedis kills a busy server without Redis with SIGKILL twice: each
// restart recovers the WAL into Parquet files (no segment of a dead writer, no temporary
// file left), and rebuilds the posteriors and the open sessions from the logs, so that
// the acknowledged rewards are all counted (up to the rows the kill caught in memory) and
// sessions open before the kill go on with their arm and episode.
func TestKillNineWithoutRedis(t *testing.T) {
	root, logDir := t.TempDir(), t.TempDir()
	child, url := startChild(t, root, logDir)
	ctx := context.Background()
	c := NewClient(url)
	var mu sync.Mutex
	ackedRewards := map[string]float64{} // session -> reward of acknowledged feedback
	ackedAt := map[string]time.Time{}    // session -> when its feedback was acknowledged
	open := map[string]ActResponse{}     // sessions with a decision and no reward
	for round := 0; round < 2; round++ {
		// Quiet phase: 20 rewarded episodes and 5 open sessions.
		for i := 0; i < 25; i++ {
			sid := fmt.Sprintf("q%d-%d", round, i)
			r, err := c.Act(ctx, ActRequest{SessionID: sid, Instruction: "red shirt", Observation: "page", AvailableActions: shirtActions})
			if err != nil {
				t.Fatal(err)
			}
			if i >= 20 {
				open[sid] = r
				continue
			}
			reward := float64(i%3) / 2
			if _, err := c.Feedback(ctx, FeedbackRequest{EventID: r.EventID, Reward: &reward}); err != nil {
				t.Fatal(err)
			}
			ackedRewards[sid] = reward
		}
		// Busy phase: 8 workers play one-decision episodes until the kill.
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					sid := fmt.Sprintf("busy%d-%d-%d", round, w, i)
					r, err := c.Act(ctx, ActRequest{SessionID: sid, Observation: "o", AvailableActions: shirtActions})
					if err != nil {
						return
					}
					reward := float64(i % 2)
					if _, err := c.Feedback(ctx, FeedbackRequest{EventID: r.EventID, Reward: &reward}); err != nil {
						return
					}
					mu.Lock()
					ackedRewards[sid] = reward
					ackedAt[sid] = time.Now()
					mu.Unlock()
				}
			}(w)
		}
		for {
			mu.Lock()
			n := len(ackedRewards)
			mu.Unlock()
			if n >= 20*(round+1)+300*(round+1) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		killAt := time.Now()
		if err := child.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = child.Wait()
		close(stop)
		wg.Wait()
		var restarted string
		child, restarted = startChild(t, root, logDir)
		c = NewClient(restarted)

		// No segment of a dead writer and no temporary file are left.
		segs, _ := decisionlog.Segments(logDir)
		for _, p := range segs {
			if !strings.Contains(filepath.Base(p), "-child-") {
				t.Fatalf("unexpected segment %s", p)
			}
		}
		if len(segs) != 1 {
			t.Fatalf("round %d: %d WAL segments after restart, want the new writer's one: %v", round, len(segs), segs)
		}
		filepath.WalkDir(logDir, func(p string, d os.DirEntry, err error) error {
			if err == nil && atomicfile.IsTemp(d.Name()) {
				t.Errorf("orphan temporary file %s", p)
			}
			return nil
		})
		// The posteriors count every reward row, and the rows hold every acknowledged
		// reward but the few the kill caught in memory.
		rews, err := decisionlog.ReadRewards(logDir)
		if err != nil {
			t.Fatal(err)
		}
		logged := map[string]bool{}
		var sum float64
		var succ int64
		for _, r := range rews {
			logged[r.SessionID] = true
			sum += r.Reward
			if r.Success {
				succ++
			}
		}
		episodes, successes, scoreSum := armTotals(t, c)
		if episodes != int64(len(rews)) || successes != succ || abs(scoreSum-sum) > 1e-6 {
			t.Fatalf("round %d: posteriors %d episodes, %d successes, score %g; reward log %d, %d, %g",
				round, episodes, successes, scoreSum, len(rews), succ, sum)
		}
		// What the kill may lose is bounded in time, not in rows: only rewards acknowledged
		// in the last lossWindow before SIGKILL (the rows the writer had not yet handed to
		// the kernel). A reward acknowledged after killAt raced the signal.
		const lossWindow = 100 * time.Millisecond
		lost, oldest := 0, time.Duration(0)
		for sid := range ackedRewards {
			if !logged[sid] {
				lost++
				if strings.HasPrefix(sid, "q") {
					t.Fatalf("round %d: the reward of quiet session %s, acknowledged before the busy phase, is lost", round, sid)
				}
				if age := killAt.Sub(ackedAt[sid]); age > oldest {
					oldest = age
				}
			}
		}
		t.Logf("round %d: %d acknowledged rewards, %d lost by the kill (acknowledged at most %v before it); posteriors rebuilt with %d episodes",
			round, len(ackedRewards), lost, oldest, episodes)
		if oldest > lossWindow {
			t.Fatalf("round %d: a reward acknowledged %v before the kill is lost (at most %v may be)", round, oldest, lossWindow)
		}
		for sid := range ackedRewards {
			if !logged[sid] {
				delete(ackedRewards, sid)
			}
		}
		// Open sessions go on: their arm and episode, a reward by their event id.
		for sid, r := range open {
			next, err := c.Act(ctx, ActRequest{SessionID: sid, Observation: "o2", AvailableActions: shirtActions})
			if err != nil {
				t.Fatal(err)
			}
			if next.Arm != r.Arm || next.Episode != r.Episode || next.Step != r.Step+1 {
				t.Fatalf("round %d: session %s before the kill %+v, after %+v", round, sid, r, next)
			}
			reward := 1.0
			fb, err := c.Feedback(ctx, FeedbackRequest{EventID: r.EventID, Reward: &reward})
			if err != nil || fb.Steps != 2 {
				t.Fatalf("round %d: feedback for %s after restart: %+v %v", round, sid, fb, err)
			}
			// A retry is idempotent; another reward conflicts.
			if again, err := c.Feedback(ctx, FeedbackRequest{EventID: r.EventID, Reward: &reward}); err != nil || again != fb {
				t.Fatalf("retried feedback: %+v %v, want %+v", again, err, fb)
			}
			other := 0.5
			var se *StatusError
			if _, err := c.Feedback(ctx, FeedbackRequest{SessionID: sid, Reward: &other}); !errors.As(err, &se) || se.Code != http.StatusConflict {
				t.Fatalf("different reward for a rewarded episode: %v", err)
			}
			ackedRewards[sid] = reward
			delete(open, sid)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
