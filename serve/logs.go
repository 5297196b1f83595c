package serve

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/parquet-go/parquet-go"
)

// DecisionRow is one row of the decision log: a served /act.
//
// Propensities: ActionPropensity is the probability with which the server chose the
// action given the arm (the policy's probability of it with --sample; 1 when greedy, a
// deterministic choice); ArmPropensity is the probability with which the session's arm
// was chosen when the session was assigned (the canary weight, the Thompson-sampling
// allocation, or 1 when the client named the arm). Propensity is ActionPropensity x
// ArmPropensity on the decision that assigned the session's arm and ActionPropensity on
// every other decision, so the product of Propensity over the steps of a session's first
// episode is the probability of the (arm, actions) sequence under the serving system.
type DecisionRow struct {
	EventID          string    `parquet:"event_id"`
	TS               time.Time `parquet:"ts,timestamp(microsecond)"`
	SessionID        string    `parquet:"session_id"`
	Episode          int64     `parquet:"episode"`
	Step             int64     `parquet:"step"`
	Arm              string    `parquet:"arm"`
	Policy           string    `parquet:"policy"`
	ModelSHA256      string    `parquet:"model_sha256"`
	Instruction      string    `parquet:"instruction"`
	Observation      string    `parquet:"observation"`
	AvailableActions []string  `parquet:"available_actions,list"`
	Action           string    `parquet:"action"`
	ActionIndex      int32     `parquet:"action_index"`
	Probabilities    []float32 `parquet:"probabilities,list"`
	Propensity       float64   `parquet:"propensity"`
	ActionPropensity float64   `parquet:"action_propensity"`
	ArmPropensity    float64   `parquet:"arm_propensity"`
	Sampled          bool      `parquet:"sampled"`
	Value            float64   `parquet:"value"`
	LatencyUS        int64     `parquet:"latency_us"`
}

// RewardRow is one row of the reward log: the end of a session's episode.
type RewardRow struct {
	// EventID is the event the reward was posted for, or the episode's last event when
	// the reward came by session id or by timeout.
	EventID   string    `parquet:"event_id"`
	SessionID string    `parquet:"session_id"`
	Episode   int64     `parquet:"episode"`
	Arm       string    `parquet:"arm"`
	TS        time.Time `parquet:"ts,timestamp(microsecond)"`
	Reward    float64   `parquet:"reward"`
	Success   bool      `parquet:"success"`
	Steps     int64     `parquet:"steps"`
	// Source is "feedback" (POST /feedback) or "timeout" (no reward within the reward
	// timeout: counted as 0).
	Source string `parquet:"source"`
}

// LogConfig configures the decision and reward logs.
type LogConfig struct {
	// Dir is the root: DIR/decisions/date=YYYY-MM-DD/arm=NAME/part-*.parquet and
	// DIR/rewards/date=YYYY-MM-DD/arm=NAME/part-*.parquet.
	Dir string
	// FlushEvery is how often buffered rows are written out, each partition's rows into a
	// new file (default 5s).
	FlushEvery time.Duration
	// MaxBufferBytes starts a flush as soon as the buffered rows reach about this many
	// bytes (default 8 MiB), which bounds the size of a file.
	MaxBufferBytes int64
	// Replica names this process in file names (default host-pid), so replicas can share Dir.
	Replica string
	// OnError is called with flush errors (default: ignored; Close returns the last one).
	OnError func(error)
}

type partKey struct{ date, arm string }

// LogWriter buffers decision and reward rows and writes them as Parquet files. Every
// file is written under a hidden temporary name, closed (footer written), synced and
// then renamed into place, so a reader never sees a partial file and a crash (even kill
// -9) loses only the rows buffered since the last flush: at most FlushEvery of traffic
// or MaxBufferBytes of rows. Leftover ".part-*.tmp" files from a crash are ignored by
// ReadDecisions/ReadRewards (and by Hive-style readers, which skip hidden files).
type LogWriter struct {
	cfg LogConfig

	mu        sync.Mutex
	decisions map[partKey][]DecisionRow
	rewards   map[partKey][]RewardRow
	bytes     int64
	seq       int64
	lastErr   error
	closed    bool

	flushMu sync.Mutex
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// OpenLogs creates the log directory and starts the periodic flusher.
func OpenLogs(cfg LogConfig) (*LogWriter, error) {
	if cfg.Dir == "" {
		return nil, errors.New("serve: logs: empty directory")
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 5 * time.Second
	}
	if cfg.MaxBufferBytes <= 0 {
		cfg.MaxBufferBytes = 8 << 20
	}
	if cfg.Replica == "" {
		h, _ := os.Hostname()
		cfg.Replica = sanitizeName(fmt.Sprintf("%s-%d", h, os.Getpid()))
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("serve: logs: %w", err)
	}
	w := &LogWriter{cfg: cfg, decisions: map[partKey][]DecisionRow{}, rewards: map[partKey][]RewardRow{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w, nil
}

func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, s)
}

func (w *LogWriter) loop() {
	defer close(w.done)
	t := time.NewTicker(w.cfg.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		case <-w.kick:
		}
		if err := w.Flush(); err != nil && w.cfg.OnError != nil {
			w.cfg.OnError(err)
		}
	}
}

func rowKey(ts time.Time, arm string) partKey {
	return partKey{date: ts.UTC().Format("2006-01-02"), arm: arm}
}

func (w *LogWriter) added(n int64) {
	w.bytes += n
	if w.bytes >= w.cfg.MaxBufferBytes {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// Decision buffers a decision row.
func (w *LogWriter) Decision(r DecisionRow) {
	n := int64(len(r.Observation) + len(r.Instruction) + len(r.Action) + 4*len(r.Probabilities) + 128)
	for _, a := range r.AvailableActions {
		n += int64(len(a))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	k := rowKey(r.TS, r.Arm)
	w.decisions[k] = append(w.decisions[k], r)
	w.added(n)
}

// Reward buffers a reward row.
func (w *LogWriter) Reward(r RewardRow) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	k := rowKey(r.TS, r.Arm)
	w.rewards[k] = append(w.rewards[k], r)
	w.added(int64(len(r.EventID) + len(r.SessionID) + 64))
}

// Flush writes every buffered row now, one new file per partition and log.
func (w *LogWriter) Flush() error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	dec, rew := w.decisions, w.rewards
	w.decisions, w.rewards, w.bytes = map[partKey][]DecisionRow{}, map[partKey][]RewardRow{}, 0
	w.mu.Unlock()
	var errs []error
	for k, rows := range dec {
		if err := writeParquet(w.partPath("decisions", k), rows); err != nil {
			errs = append(errs, err)
		}
	}
	for k, rows := range rew {
		if err := writeParquet(w.partPath("rewards", k), rows); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		w.mu.Lock()
		w.lastErr = err
		w.mu.Unlock()
	}
	return err
}

func (w *LogWriter) partPath(log string, k partKey) string {
	w.mu.Lock()
	w.seq++
	seq := w.seq
	w.mu.Unlock()
	name := fmt.Sprintf("part-%s-%s-%06d.parquet", time.Now().UTC().Format("20060102T150405.000000000Z"), w.cfg.Replica, seq)
	return filepath.Join(w.cfg.Dir, log, "date="+k.date, "arm="+k.arm, name)
}

// Close stops the flusher and writes the remaining rows. Rows logged after Close are
// dropped.
func (w *LogWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	err := w.Flush()
	w.mu.Lock()
	w.closed = true
	if err == nil {
		err = w.lastErr
	}
	w.mu.Unlock()
	return err
}

// writeParquet writes rows to path through a hidden temporary file in the same
// directory: write, close (footer), fsync, rename, fsync the directory.
func writeParquet[T any](path string, rows []T) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("serve: logs: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+strings.TrimSuffix(filepath.Base(path), ".parquet")+"-*.tmp")
	if err != nil {
		return fmt.Errorf("serve: logs: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("serve: logs: %w", err)
	}
	pw := parquet.NewGenericWriter[T](f, parquet.Compression(&parquet.Zstd), parquet.CreatedBy("shopagent serve", "", ""))
	if _, err := pw.Write(rows); err != nil {
		return fmt.Errorf("serve: logs: write %s: %w", path, err)
	}
	if err := pw.Close(); err != nil {
		return fmt.Errorf("serve: logs: close %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("serve: logs: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("serve: logs: close %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("serve: logs: publish %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// LogFiles lists the published Parquet files of one log ("decisions" or "rewards")
// under dir, sorted.
func LogFiles(dir, log string) ([]string, error) {
	var out []string
	root := filepath.Join(dir, log)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return fs.SkipAll
			}
			return err
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), "part-") && strings.HasSuffix(d.Name(), ".parquet") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("serve: list logs: %w", err)
	}
	sort.Strings(out)
	return out, nil
}

func readParquet[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("serve: read %s: %w", path, err)
	}
	r := parquet.NewGenericReader[T](pf)
	defer r.Close()
	rows := make([]T, pf.NumRows())
	n, err := r.Read(rows)
	if err != nil && n != len(rows) {
		return nil, fmt.Errorf("serve: read %s: %w", path, err)
	}
	return rows[:n], nil
}

func readLog[T any](dir, log string) ([]T, error) {
	files, err := LogFiles(dir, log)
	if err != nil {
		return nil, err
	}
	var out []T
	for _, p := range files {
		rows, err := readParquet[T](p)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// ReadDecisions reads every decision row under dir (a LogConfig.Dir).
func ReadDecisions(dir string) ([]DecisionRow, error) { return readLog[DecisionRow](dir, "decisions") }

// ReadRewards reads every reward row under dir (a LogConfig.Dir).
func ReadRewards(dir string) ([]RewardRow, error) { return readLog[RewardRow](dir, "rewards") }
