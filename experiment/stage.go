package experiment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"shopagent/atomicfile"
)

// Stages. Every step of the experiment (the shop, the demonstrations, each training run,
// each evaluation, the A/B test) is a stage with a name, a key (the configuration it ran
// with and the stages it read from) and outputs. A stage that finishes writes
// OUT/stages/NAME.json; a rerun whose stage has a record with the same key and all its
// outputs skips it, so an interrupted experiment resumes where it stopped. A budgeted
// stage cut short is redone from scratch (its wall clock must be measured whole); the
// step-counted ones (pretraining, IL) resume from their last checkpoint.

// StageRecord is what a finished stage leaves in OUT/stages/NAME.json.
type StageRecord struct {
	Name string `json:"name"`
	// Key is a hash of the stage's configuration and of the records of the stages it
	// depends on: a stage whose inputs changed is run again.
	Key string `json:"key"`
	// Config is the stage's configuration as run (typed, JSON).
	Config json.RawMessage `json:"config,omitempty"`
	// Started is when the stage began; ElapsedS its wall clock; BudgetS the wall-clock
	// budget it was given (0: none, it ran to its step count).
	Started  time.Time `json:"started"`
	ElapsedS float64   `json:"elapsed_s"`
	BudgetS  float64   `json:"budget_s,omitempty"`
	// LoadStart and LoadEnd are the machine's one-minute load average when the stage
	// started and ended (0 where /proc/loadavg is missing): wall-clock budgets buy less
	// on a busy machine.
	LoadStart float64 `json:"load_start,omitempty"`
	LoadEnd   float64 `json:"load_end,omitempty"`
	// Outputs are the files and directories the stage wrote (relative to OUT).
	Outputs []string `json:"outputs"`
	// Result is the stage's outcome (a training summary, an evaluation, ...).
	Result json.RawMessage `json:"result,omitempty"`
	// Resumed is true when this invocation skipped the stage (it had finished before).
	Resumed bool `json:"-"`
}

// decode unmarshals the record's result into v.
func (r StageRecord) decode(v any) error {
	if len(r.Result) == 0 {
		return fmt.Errorf("experiment: stage %s has no result", r.Name)
	}
	if err := json.Unmarshal(r.Result, v); err != nil {
		return fmt.Errorf("experiment: stage %s: result: %w", r.Name, err)
	}
	return nil
}

// stageSpec describes a stage to run.
type stageSpec struct {
	name string
	// config is recorded and hashed into the key; deps are the names of the stages whose
	// records feed this one (their keys and start times are hashed in too).
	config any
	deps   []string
	// outputs are relative to OUT. Unless resumable, they are removed before the stage
	// runs.
	outputs   []string
	resumable bool
	// budget is the stage's wall-clock budget (recorded; the run enforces it).
	budget time.Duration
	// run does the work from start (the stage's start time, for deadlines) and returns
	// the result to record.
	run func(ctx context.Context, start time.Time) (any, error)
}

// stager runs stages with records, resumption and progress lines.
type stager struct {
	ctx context.Context
	out string
	log io.Writer
	// dry counts the stages without running them (planned holds the count).
	dry     bool
	planned int
	// done counts the stages passed (run or skipped); ran and ranS the ones run and
	// their total wall clock (for the ETA).
	done, ran int
	ranS      float64
	start     time.Time
	records   map[string]StageRecord
	order     []string
	// waitLoad and waitMax: budgeted stages wait for a load average of at most waitLoad
	// (0: no wait), at most waitMax (0: 30 minutes).
	waitLoad float64
	waitMax  time.Duration
	// poll is the interval between load checks (0: 10 s); load reads the load average.
	poll time.Duration
	load func() float64
}

func newStager(ctx context.Context, out string, log io.Writer) *stager {
	return &stager{ctx: ctx, out: out, log: log, start: time.Now(), records: map[string]StageRecord{}, load: loadAverage}
}

func (s *stager) path(parts ...string) string {
	return filepath.Join(append([]string{s.out}, parts...)...)
}

func (s *stager) logf(format string, args ...any) {
	if s.log != nil && !s.dry {
		fmt.Fprintf(s.log, format+"\n", args...)
	}
}

// key hashes a stage's configuration and its dependencies' records.
func (s *stager) key(spec stageSpec) (string, json.RawMessage, error) {
	cfg, err := json.Marshal(spec.config)
	if err != nil {
		return "", nil, fmt.Errorf("experiment: stage %s: config: %w", spec.name, err)
	}
	h := sha256.New()
	h.Write(cfg)
	fmt.Fprintf(h, "\x00budget %d", spec.budget) // the deadline is set when the stage starts
	for _, d := range spec.deps {
		rec, ok := s.records[d]
		if !ok && !s.dry {
			return "", nil, fmt.Errorf("experiment: stage %s depends on %s, which has not run", spec.name, d)
		}
		fmt.Fprintf(h, "\x00%s\x00%s\x00%s", d, rec.Key, rec.Started.UTC().Format(time.RFC3339Nano))
	}
	return hex.EncodeToString(h.Sum(nil))[:16], cfg, nil
}

// eta estimates the time left from the mean wall clock of the stages run so far.
func (s *stager) eta() string {
	if s.ran == 0 || s.planned == 0 {
		return "?"
	}
	left := s.planned - s.done
	d := time.Duration(s.ranS / float64(s.ran) * float64(left) * float64(time.Second))
	return d.Round(time.Second).String()
}

// stage runs spec unless a previous invocation finished it with the same key.
func (s *stager) stage(spec stageSpec) (StageRecord, error) {
	if rec, ok := s.records[spec.name]; ok {
		return rec, nil // passed already in this invocation (the plan asks for it twice)
	}
	key, cfg, err := s.key(spec)
	if err != nil {
		return StageRecord{}, err
	}
	if s.dry {
		s.planned++
		rec := StageRecord{Name: spec.name, Key: key}
		s.records[spec.name] = rec
		return rec, nil
	}
	if err := s.ctx.Err(); err != nil {
		return StageRecord{}, err
	}
	recPath := s.path("stages", spec.name+".json")
	stale := false // a record of another configuration: its outputs are not this stage's
	if b, err := os.ReadFile(recPath); err == nil {
		var rec StageRecord
		ok := json.Unmarshal(b, &rec) == nil && rec.Key == key
		stale = !ok
		for _, o := range spec.outputs {
			if _, err := os.Stat(s.path(o)); err != nil {
				ok = false
			}
		}
		if ok {
			rec.Resumed = true
			s.done++
			s.records[spec.name] = rec
			s.order = append(s.order, spec.name)
			s.logf("[%d/%d] %-28s done before (%s), skipped", s.done, s.planned, spec.name, secs(rec.ElapsedS))
			return rec, nil
		}
	}
	if !spec.resumable || stale {
		if err := os.Remove(recPath); err != nil && !os.IsNotExist(err) {
			return StageRecord{}, fmt.Errorf("experiment: stage %s: %w", spec.name, err)
		}
		for _, o := range spec.outputs {
			if err := os.RemoveAll(s.path(o)); err != nil {
				return StageRecord{}, fmt.Errorf("experiment: stage %s: %w", spec.name, err)
			}
		}
	}
	for _, d := range []string{"stages", "logs"} {
		if err := os.MkdirAll(s.path(d), 0o755); err != nil {
			return StageRecord{}, fmt.Errorf("experiment: %w", err)
		}
	}
	budget := ""
	if spec.budget > 0 {
		budget = ", budget " + spec.budget.String()
		if err := s.waitQuiet(spec.name); err != nil {
			return StageRecord{}, err
		}
	}
	s.logf("[%d/%d] %-28s started (elapsed %s, eta %s%s)", s.done+1, s.planned, spec.name,
		time.Since(s.start).Round(time.Second), s.eta(), budget)
	load := s.load()
	start := time.Now()
	res, runErr := spec.run(s.ctx, start)
	elapsed := time.Since(start)
	if runErr != nil {
		s.logf("[%d/%d] %-28s failed after %s: %v", s.done+1, s.planned, spec.name, elapsed.Round(time.Millisecond), runErr)
		return StageRecord{}, fmt.Errorf("stage %s: %w", spec.name, runErr)
	}
	for _, o := range spec.outputs {
		if _, err := os.Stat(s.path(o)); err != nil {
			return StageRecord{}, fmt.Errorf("experiment: stage %s finished without its output: %w", spec.name, err)
		}
	}
	rb, err := json.Marshal(res)
	if err != nil {
		return StageRecord{}, fmt.Errorf("experiment: stage %s: result: %w", spec.name, err)
	}
	rec := StageRecord{Name: spec.name, Key: key, Config: cfg, Started: start, ElapsedS: elapsed.Seconds(),
		BudgetS: spec.budget.Seconds(), LoadStart: load, LoadEnd: s.load(), Outputs: spec.outputs, Result: rb}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return StageRecord{}, fmt.Errorf("experiment: stage %s: %w", spec.name, err)
	}
	if err := atomicfile.WriteFile(recPath, append(b, '\n'), 0o644); err != nil {
		return StageRecord{}, fmt.Errorf("experiment: stage %s: %w", spec.name, err)
	}
	s.done++
	s.ran++
	s.ranS += elapsed.Seconds()
	s.records[spec.name] = rec
	s.order = append(s.order, spec.name)
	s.logf("[%d/%d] %-28s finished in %s", s.done, s.planned, spec.name, elapsed.Round(time.Millisecond))
	return rec, nil
}

// logFile opens OUT/logs/NAME.log for a stage's own progress lines.
func (s *stager) logFile(name string) (*os.File, error) {
	if err := os.MkdirAll(s.path("logs"), 0o755); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	f, err := os.Create(s.path("logs", name+".log"))
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	return f, nil
}

// waitQuiet waits until the load average is at most waitLoad, or waitMax has passed.
func (s *stager) waitQuiet(name string) error {
	if s.waitLoad <= 0 {
		return nil
	}
	maxWait, poll := s.waitMax, s.poll
	if maxWait <= 0 {
		maxWait = 30 * time.Minute
	}
	if poll <= 0 {
		poll = 10 * time.Second
	}
	t0 := time.Now()
	logged := false
	for {
		l := s.load()
		if l <= s.waitLoad {
			if logged {
				s.logf("    %s: load %.1f after waiting %s", name, l, time.Since(t0).Round(time.Second))
			}
			return nil
		}
		if time.Since(t0) >= maxWait {
			s.logf("    %s: load still %.1f after %s; starting anyway", name, l, maxWait)
			return nil
		}
		if !logged {
			s.logf("    %s: waiting for the load average (%.1f) to fall to %.1f", name, l, s.waitLoad)
			logged = true
		}
		select {
		case <-s.ctx.Done():
			return s.ctx.Err()
		case <-time.After(poll):
		}
	}
}

// loadAverage returns the one-minute load average (0 when unknown).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	if _, err := fmt.Sscanf(string(b), "%f", &l); err != nil {
		return 0
	}
	return l
}

// LockFile is the file in the output directory an experiment holds locked while it runs.
const LockFile = ".lock"

// lockDir takes an exclusive lock on OUT/.lock, so that two experiments never write one
// output directory; the lock goes with the process.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("experiment: another experiment is running in %s (%s is locked)", dir, LockFile)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// secs formats seconds as a rounded duration.
func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

// isCancel reports whether err is a cancellation (the experiment stops rather than
// recording a failed method).
func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
