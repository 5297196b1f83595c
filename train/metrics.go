package train

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"

	"github.com/parquet-go/parquet-go"

	"shopagent/atomicfile"
)

// MetricsFile is the name of a run's metrics log inside its run directory.
const MetricsFile = "metrics.parquet"

// MetricsRow is one row of a run's metrics log: one optimizer step.
type MetricsRow struct {
	// Step is the global step after the update (1 for the first update).
	Step int64 `parquet:"step"`
	// Loss is the training loss of the step's batch.
	Loss float64 `parquet:"loss"`
	// LR is the learning rate used by the update.
	LR float64 `parquet:"lr"`
	// GradNorm is the global L2 norm of the gradients before clipping.
	GradNorm float64 `parquet:"grad_norm"`
	// ExamplesPerS is the throughput of the step (examples / wall seconds).
	ExamplesPerS float64 `parquet:"examples_per_s"`
	// ElapsedS is the training wall time since the run started, summed over resumes.
	ElapsedS float64 `parquet:"elapsed_s"`
	// Extra holds the job's own metrics (for example "accuracy").
	Extra map[string]float64 `parquet:"extra"`
}

// MetricsLog is a run's Parquet metrics log. Rows are kept in memory and the whole file is
// rewritten (to a temporary name, then renamed) on each Flush, so the file on disk is
// always complete and readable, even after a crash: at most the rows since the last flush
// are lost. Metrics logs are small (one row per step). Not safe for concurrent use.
type MetricsLog struct {
	path      string
	rows      []MetricsRow
	every     time.Duration
	lastFlush time.Time
	dirty     bool
}

// OpenMetricsLog opens the metrics log at path. Rows already there with a step up to
// keepUpTo are kept (a resumed run continues its log; rows past the checkpoint it resumes
// from are dropped); keepUpTo < 0 starts an empty log. flushEvery is the minimum time
// between automatic flushes in Add (0 flushes on every Add).
func OpenMetricsLog(path string, keepUpTo int64, flushEvery time.Duration) (*MetricsLog, error) {
	m := &MetricsLog{path: path, every: flushEvery, lastFlush: time.Now()}
	if keepUpTo < 0 {
		return m, nil
	}
	rows, err := ReadMetrics(path)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if r.Step <= keepUpTo {
			m.rows = append(m.rows, r)
		}
	}
	return m, nil
}

// ReadMetrics reads a metrics log, sorted by step.
func ReadMetrics(path string) ([]MetricsRow, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("train: metrics log: %w", err)
	}
	rows, err := parquet.ReadFile[MetricsRow](path)
	if err != nil {
		return nil, fmt.Errorf("train: metrics log %s: %w", path, err)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Step < rows[j].Step })
	return rows, nil
}

// Rows returns the rows logged so far.
func (m *MetricsLog) Rows() []MetricsRow { return m.rows }

// LastElapsed returns the elapsed time of the last row (0 when empty).
func (m *MetricsLog) LastElapsed() float64 {
	if len(m.rows) == 0 {
		return 0
	}
	return m.rows[len(m.rows)-1].ElapsedS
}

// Add appends a row and flushes when the flush interval has passed.
func (m *MetricsLog) Add(r MetricsRow) error {
	for k, v := range r.Extra {
		if math.IsNaN(v) {
			delete(r.Extra, k)
		}
	}
	m.rows = append(m.rows, r)
	m.dirty = true
	if time.Since(m.lastFlush) >= m.every {
		return m.Flush()
	}
	return nil
}

// Flush writes the log to disk if it changed since the last flush.
func (m *MetricsLog) Flush() error {
	m.lastFlush = time.Now()
	if !m.dirty {
		return nil
	}
	err := atomicfile.Write(m.path, 0o644, func(f io.Writer) error {
		w := parquet.NewGenericWriter[MetricsRow](f, parquet.Compression(&parquet.Zstd))
		if _, err := w.Write(m.rows); err != nil {
			return err
		}
		return w.Close()
	})
	if err != nil {
		return fmt.Errorf("train: metrics log %s: %w", m.path, err)
	}
	m.dirty = false
	return nil
}
