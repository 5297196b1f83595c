package decisionlog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of Config.
const (
	DefaultSyncEvery    = 100 * time.Millisecond
	DefaultCutEvery     = time.Minute
	DefaultSegmentBytes = 8 << 20
	// DefaultMaxBacklog bounds the rows waiting for the disk when writes fail.
	DefaultMaxBacklog = 64 << 20
)

// ErrBacklog is returned by Decision and Reward when DefaultMaxBacklog bytes of rows wait
// for a disk whose writes fail: the row is dropped. (While writes succeed, a full backlog
// makes Decision and Reward wait for room instead.)
var ErrBacklog = errors.New("decisionlog: the disk is not taking rows (backlog full); row dropped")

// Config configures a Writer.
type Config struct {
	// Dir is the log directory.
	Dir string
	// SyncEvery is the group-commit interval: rows handed to the kernel are flushed to
	// disk (fsync) at least this often (default 100ms). Rows are handed to the kernel as
	// soon as the writer goroutine gets to them, so a crash of the process (kill -9) loses
	// only rows appended in the last moments; a crash of the machine at most SyncEvery.
	SyncEvery time.Duration
	// CutEvery is how often the current segment is closed and cut into Parquet files
	// (default 1m); a segment is also cut when it reaches SegmentBytes (default 8 MiB).
	CutEvery     time.Duration
	SegmentBytes int64
	// Replica names this writer in segment and file names (default host-pid), so that
	// replicas can share Dir. Two live writers must not share a name.
	Replica string
	// Logger receives recovery, cut and write errors (default: slog.Default()).
	Logger *slog.Logger
}

// Writer appends decision and reward rows to the WAL and cuts Parquet files from it. It
// is safe for concurrent use.
type Writer struct {
	cfg  Config
	log  *slog.Logger
	lock *os.File

	mu sync.Mutex
	// buf holds the encoded rows not yet handed to the kernel, pend the same rows as
	// values (cut into Parquet without decoding the WAL; only recovery decodes it).
	buf     []byte
	pend    Segment
	rows    int64 // rows appended
	dropped int64
	closed  bool
	// room is signalled when the loop takes buf; failing is set while writes fail.
	room    *sync.Cond
	failing bool

	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	cutReq  chan chan error
	syncReq chan chan error
	queue   chan cutJob
	cdone   chan struct{}

	// Owned by the loop goroutine; seg also read by the syncer under segMu.
	segMu    sync.Mutex
	seg      *os.File
	segName  string
	segBytes int64
	segStart time.Time
	seq      int64
	segRows  Segment // the rows of seg, for its cut
	// written counts the bytes of seg handed to the kernel (by the loop, without a lock,
	// so that a write never waits for an fsync); synced those flushed (under segMu).
	written atomic.Int64
	synced  int64
	sdone   chan struct{}

	statMu   sync.Mutex
	lastErr  error
	cuts     int64
	recovery Recovery
}

// Open recovers the log directory (see Recover: WAL segments of writers that are no
// longer alive are cut into Parquet files, orphan temporary files removed), then starts a
// new segment and the writer's goroutines.
func Open(cfg Config) (*Writer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("decisionlog: empty directory")
	}
	if cfg.SyncEvery <= 0 {
		cfg.SyncEvery = DefaultSyncEvery
	}
	if cfg.CutEvery <= 0 {
		cfg.CutEvery = DefaultCutEvery
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = DefaultSegmentBytes
	}
	if cfg.Replica == "" {
		h, _ := os.Hostname()
		cfg.Replica = fmt.Sprintf("%s-%d", h, os.Getpid())
	}
	cfg.Replica = sanitizeName(cfg.Replica)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, walDir), 0o755); err != nil {
		return nil, fmt.Errorf("decisionlog: %w", err)
	}
	lock, ok, err := tryLock(filepath.Join(cfg.Dir, walDir, cfg.Replica+lockExt))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("decisionlog: another live writer in %s is named %q", cfg.Dir, cfg.Replica)
	}
	w := &Writer{cfg: cfg, log: cfg.Logger, lock: lock, kick: make(chan struct{}, 1), stop: make(chan struct{}),
		done: make(chan struct{}), cutReq: make(chan chan error), syncReq: make(chan chan error), queue: make(chan cutJob, 1<<12), cdone: make(chan struct{}),
		sdone: make(chan struct{})}
	w.room = sync.NewCond(&w.mu)
	rec, err := recoverDir(cfg.Dir, cfg.Replica, cfg.Logger)
	w.recovery = rec
	if err != nil {
		unlock(lock)
		return nil, err
	}
	if err := w.openSegment(); err != nil {
		unlock(lock)
		return nil, err
	}
	go w.loop()
	go w.syncer()
	go w.converter()
	return w, nil
}

// Recovery returns what Open recovered.
func (w *Writer) Recovery() Recovery { return w.recovery }

// Dir returns the log directory.
func (w *Writer) Dir() string { return w.cfg.Dir }

// Decision appends a decision row. It returns once the row is queued for the WAL (see
// Config.SyncEvery for what a crash can lose).
func (w *Writer) Decision(r DecisionRow) error { return w.append(&r) }

// Reward appends a reward row (see Decision).
func (w *Writer) Reward(r RewardRow) error { return w.append(&r) }

func (w *Writer) append(v any) error {
	rec, err := encodeRecord(nil, v)
	if err != nil {
		return err
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errors.New("decisionlog: writer is closed")
	}
	for len(w.buf)+len(rec) > DefaultMaxBacklog && len(w.buf) > 0 {
		if w.failing || w.closed {
			w.dropped++
			w.mu.Unlock()
			return ErrBacklog
		}
		w.room.Wait() // back-pressure: the writer is behind the appenders
	}
	w.buf = append(w.buf, rec...)
	switch r := v.(type) {
	case *DecisionRow:
		w.pend.Decisions = append(w.pend.Decisions, *r)
	case *RewardRow:
		w.pend.Rewards = append(w.pend.Rewards, *r)
	}
	w.rows++
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return nil
}

// Stats describes a writer.
type Stats struct {
	// Rows counts the rows appended; Dropped those dropped (ErrBacklog).
	Rows, Dropped int64
	// Cuts counts the segments cut into Parquet files.
	Cuts int64
	// LastError is the last write, sync or cut error (nil when none).
	LastError error
}

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	st := Stats{Rows: w.rows, Dropped: w.dropped}
	w.mu.Unlock()
	w.statMu.Lock()
	st.Cuts, st.LastError = w.cuts, w.lastErr
	w.statMu.Unlock()
	return st
}

func (w *Writer) setErr(err error) {
	w.statMu.Lock()
	w.lastErr = err
	w.statMu.Unlock()
	w.log.Error("decision log", "dir", w.cfg.Dir, "error", err.Error())
}

func (w *Writer) openSegment() error {
	w.seq++
	now := time.Now().UTC()
	name := segmentName(now.Format(timeFmt), w.cfg.Replica, w.seq)
	f, err := os.OpenFile(filepath.Join(w.cfg.Dir, walDir, name+walExt), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("decisionlog: new segment: %w", err)
	}
	w.segMu.Lock()
	w.seg, w.segName, w.segBytes, w.segStart = f, name, 0, now
	w.written.Store(0)
	w.synced = 0
	w.segMu.Unlock()
	return nil
}

// syncer flushes the current segment to disk every SyncEvery when the loop has written
// to it since: apart from the loop, so that a slow fsync never holds rows in memory (a
// kill -9 loses only what the loop has not yet handed to the kernel).
func (w *Writer) syncer() {
	defer close(w.sdone)
	tick := time.NewTicker(w.cfg.SyncEvery)
	defer tick.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-tick.C:
		}
		w.segMu.Lock()
		if target := w.written.Load(); target > w.synced {
			if err := w.seg.Sync(); err != nil {
				w.setErr(fmt.Errorf("sync %s: %w", w.segName, err))
			} else {
				w.synced = target
			}
		}
		w.segMu.Unlock()
	}
}

// loop hands buffered rows to the kernel as soon as it can, fsyncs every SyncEvery, and
// rotates the segment every CutEvery or SegmentBytes.
func (w *Writer) loop() {
	defer close(w.done)
	tick := time.NewTicker(w.cfg.SyncEvery)
	defer tick.Stop()
	var spare []byte
	retries := 0
	for {
		stopping := false
		var cutDone, syncDone chan error
		select {
		case syncDone = <-w.syncReq:
		case <-w.kick:
		case <-tick.C:
		case <-w.stop:
			stopping = true
		case cutDone = <-w.cutReq:
		}
		w.mu.Lock()
		buf, rows := w.buf, w.pend
		w.buf, w.pend = spare[:0], Segment{}
		w.room.Broadcast()
		w.mu.Unlock()
		if len(buf) > 0 {
			if _, err := w.seg.Write(buf); err != nil {
				// Keep the rows and try again on the next round.
				w.setErr(fmt.Errorf("write %s: %w", w.segName, err))
				w.mu.Lock()
				w.failing = true
				w.room.Broadcast()
				w.buf = append(buf, w.buf...)
				w.pend.Decisions = append(rows.Decisions, w.pend.Decisions...)
				w.pend.Rewards = append(rows.Rewards, w.pend.Rewards...)
				w.mu.Unlock()
				buf = nil
			} else {
				if w.failing {
					w.mu.Lock()
					w.failing = false
					w.mu.Unlock()
				}
				w.segBytes += int64(len(buf))
				w.written.Add(int64(len(buf)))
				w.segRows.Decisions = append(w.segRows.Decisions, rows.Decisions...)
				w.segRows.Rewards = append(w.segRows.Rewards, rows.Rewards...)
			}
		}
		spare = buf
		if syncDone != nil {
			w.segMu.Lock()
			err := w.seg.Sync()
			if err == nil {
				w.synced = w.written.Load()
			}
			w.segMu.Unlock()
			if err == nil && len(buf) == 0 && w.pendingBytes() > 0 {
				err = errors.New("decisionlog: rows are waiting for a disk that does not take them")
			}
			syncDone <- err
		}
		if stopping {
			w.mu.Lock()
			left := len(w.buf)
			w.mu.Unlock()
			if left > 0 && retries < 10 {
				retries++ // the last rows could not be written: try again
				time.Sleep(w.cfg.SyncEvery)
				continue
			}
			if left > 0 {
				w.mu.Lock()
				w.setErr(fmt.Errorf("closing with %d bytes of rows the disk did not take", len(w.buf)))
				w.buf, w.pend = nil, Segment{}
				w.mu.Unlock()
			}
			w.rotate(false, nil)
			return
		}
		if cutDone != nil || w.segBytes >= w.cfg.SegmentBytes || (w.segBytes > 0 && time.Since(w.segStart) >= w.cfg.CutEvery) {
			w.rotate(true, cutDone)
		}
	}
}

// cutJob is a closed segment to cut; done (if any) receives the outcome.
type cutJob struct {
	path string
	rows *Segment // the segment's rows, when the writer has them (else read from path)
	done chan error
}

// rotate closes the current segment (synced) and queues it for cutting; with next it
// opens the next segment. done, if not nil, receives the cut's outcome.
func (w *Writer) rotate(next bool, done chan error) {
	w.segMu.Lock()
	if err := w.seg.Sync(); err != nil {
		w.segMu.Unlock()
		err = fmt.Errorf("sync %s: %w", w.segName, err)
		w.setErr(err)
		if done != nil {
			done <- err
		}
		return // keep writing to this segment; it is cut once the disk takes it
	}
	w.synced = w.written.Load()
	path := w.seg.Name()
	w.seg.Close()
	w.segMu.Unlock()
	rows := w.segRows
	w.segRows = Segment{}
	w.queue <- cutJob{path: path, rows: &rows, done: done}
	if next {
		if err := w.openSegment(); err != nil {
			w.setErr(err)
			// Reopen the old segment in append mode rather than lose rows.
			f, oerr := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
			if oerr != nil {
				panic(fmt.Sprintf("decisionlog: no segment to write to: %v; %v", err, oerr))
			}
			w.segMu.Lock()
			w.seg = f
			w.segMu.Unlock()
		}
	}
}

func (w *Writer) converter() {
	defer close(w.cdone)
	for job := range w.queue {
		err := w.cut(job.path, job.rows)
		if job.done != nil {
			job.done <- err
		}
	}
}

func (w *Writer) cut(path string, rows *Segment) error {
	if _, err := os.Stat(path); err != nil {
		return nil // already cut (a segment reopened after a failed rotation)
	}
	n, err := cutSegment(w.cfg.Dir, path, rows)
	if err != nil {
		err = fmt.Errorf("cut %s: %w", filepath.Base(path), err)
		w.setErr(err)
		return err // left in wal/: the next start recovers it
	}
	w.statMu.Lock()
	w.cuts++
	w.statMu.Unlock()
	w.log.Debug("decision log segment cut", "segment", filepath.Base(path), "rows", n)
	return nil
}

func (w *Writer) pendingBytes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.buf)
}

// Sync hands every row appended before it to the kernel and flushes the segment to
// disk, returning once that is done (the writer does both by itself, continuously and
// every SyncEvery).
func (w *Writer) Sync() error {
	done := make(chan error, 1)
	select {
	case w.syncReq <- done:
	case <-w.done:
		return errors.New("decisionlog: writer is closed")
	}
	return <-done
}

// Cut closes the current segment and cuts it into Parquet files now, returning once they
// are published (the writer also cuts by itself, every CutEvery or SegmentBytes).
func (w *Writer) Cut() error {
	done := make(chan error, 1)
	select {
	case w.cutReq <- done:
	case <-w.done:
		return errors.New("decisionlog: writer is closed")
	}
	return <-done
}

// Close writes and syncs the remaining rows, cuts every segment into Parquet files and
// releases the directory. Rows appended after Close are refused.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.room.Broadcast()
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	<-w.sdone
	close(w.queue)
	<-w.cdone
	lockPath := w.lock.Name()
	os.Remove(lockPath)
	unlock(w.lock)
	w.statMu.Lock()
	defer w.statMu.Unlock()
	return w.lastErr
}

// tryLock opens (creating) path and takes an exclusive, non-blocking flock on it; ok is
// false when another process holds it. The kernel releases the lock when the holder dies.
func tryLock(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("decisionlog: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("decisionlog: lock %s: %w", path, err)
	}
	return f, true, nil
}

func unlock(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}
