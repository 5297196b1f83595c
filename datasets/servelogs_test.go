package datasets

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"shopagent/serve/decisionlog"
)

// TestInspectServeLogs writes a server's logs (some rows cut into Parquet, some left in
// the WAL) and checks InspectServeLogs against the rows written, and against the query of
// docs/SERVE.md's DuckDB one-liner, run here with parquet-go over the same glob:
//
//	SELECT arm, count(*), avg(reward), avg(success::INT) FROM read_parquet('DIR/rewards/*/*/*.parquet') GROUP BY arm
func TestInspectServeLogs(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := decisionlog.Open(decisionlog.Config{Dir: dir, Replica: "r", CutEvery: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	type want struct {
		n, succ, timeouts int
		sum               float64
	}
	wants := map[string]*want{"dpo": {}, "ppo": {}}
	for i := 0; i < 40; i++ {
		arm := []string{"dpo", "ppo"}[i%2]
		sid := fmt.Sprintf("s%d", i)
		for step := 0; step < 2; step++ {
			w.Decision(decisionlog.DecisionRow{EventID: fmt.Sprintf("%s-%d", sid, step), TS: ts.Add(time.Duration(i) * time.Minute),
				SessionID: sid, Step: int64(step), Arm: arm, Policy: arm + "-v1", AvailableActions: []string{"click[a]"},
				Probabilities: []float32{1}, Propensity: 1, ActionPropensity: 1, ArmPropensity: 0.5})
		}
		if i%5 == 4 {
			continue // no reward yet
		}
		r, src := float64(i%3)/2, decisionlog.SourceFeedback
		if i%7 == 0 {
			r, src = 0, decisionlog.SourceTimeout
			wants[arm].timeouts++
		}
		w.Reward(decisionlog.RewardRow{EventID: sid + "-1", SessionID: sid, Arm: arm, TS: ts.Add(time.Duration(i)*time.Minute + time.Second),
			Reward: r, Success: r == 1, Steps: 2, Source: src})
		wants[arm].n++
		wants[arm].sum += r
		if r == 1 {
			wants[arm].succ++
		}
		if i == 30 {
			if err := w.Cut(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The rest stays in the WAL (the writer is left open, as a live server's is).
	defer w.Close()
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	// A temporary file a crash left behind is not a log file.
	tmp := filepath.Join(dir, "rewards", "date=2025-06-01", "arm=dpo", ".part-x.parquet-1.tmp")
	if err := os.WriteFile(tmp, []byte("PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !IsServeLogDir(dir) || IsServeLogDir(t.TempDir()) {
		t.Fatal("IsServeLogDir")
	}
	s, err := InspectServeLogs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Decisions != 80 || s.Sessions != 40 || s.Episodes != 40 || s.Unrewarded != 8 || s.WALSegments != 1 || s.WALDecisions == 0 ||
		s.Rewards != wants["dpo"].n+wants["ppo"].n || len(s.Arms) != 2 {
		t.Fatalf("summary %+v", s)
	}
	for _, a := range s.Arms {
		wa := wants[a.Arm]
		if a.Decisions != 40 || a.Rewards != wa.n || a.Timeouts != wa.timeouts || math.Abs(a.MeanReward-wa.sum/float64(wa.n)) > 1e-12 ||
			math.Abs(a.SuccessRate-100*float64(wa.succ)/float64(wa.n)) > 1e-9 || len(a.Policies) != 1 {
			t.Fatalf("arm %+v, want %+v", a, *wa)
		}
	}
	// The one-liner's query over the published files, with parquet-go: the same figures
	// as InspectServeLogs over the published rows.
	files, err := filepath.Glob(filepath.Join(dir, "rewards", "*", "*", "*.parquet"))
	if err != nil || len(files) == 0 {
		t.Fatalf("glob: %v %v", files, err)
	}
	type agg struct {
		n, succ int
		sum     float64
	}
	byArm := map[string]*agg{}
	for _, f := range files {
		rows, err := parquet.ReadFile[decisionlog.RewardRow](f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			a := byArm[r.Arm]
			if a == nil {
				a = &agg{}
				byArm[r.Arm] = a
			}
			a.n++
			a.sum += r.Reward
			if r.Success {
				a.succ++
			}
		}
	}
	published, _ := decisionlog.ReadRewards(dir)
	total := 0
	for arm, a := range byArm {
		total += a.n
		n, sum, succ := 0, 0.0, 0
		for _, r := range published {
			if r.Arm == arm {
				n, sum = n+1, sum+r.Reward
				if r.Success {
					succ++
				}
			}
		}
		if a.n != n || math.Abs(a.sum-sum) > 1e-12 || a.succ != succ {
			t.Fatalf("arm %s: query %d rows, sum %g, %d successes; published rows %d, %g, %d", arm, a.n, a.sum, a.succ, n, sum, succ)
		}
	}
	if total != len(published) || total != s.Rewards-s.WALRewards {
		t.Fatalf("query counted %d rewards, %d published, %d in the summary less the WAL's", total, len(published), s.Rewards-s.WALRewards)
	}
}
