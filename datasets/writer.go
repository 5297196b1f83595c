package datasets

import (
	"fmt"

	"github.com/parquet-go/parquet-go"

	"shopagent/atomicfile"
)

// DefaultRowGroupRows is the number of rows per row group when
// WriterOptions.RowGroupRows is zero. Observations are a few kilobytes, so a
// row group holds a few megabytes before compression.
const DefaultRowGroupRows = 2048

// WriterOptions configures a Writer. The zero value uses the defaults.
type WriterOptions struct {
	// RowGroupRows is the number of rows buffered before a row group is
	// written out (0 = DefaultRowGroupRows).
	RowGroupRows int
}

// Writer writes trajectory rows to a Parquet file (zstd), one row group at a
// time. It writes to a temporary file next to the final path and renames it
// on Close, so the final path holds either nothing (or its previous content)
// or a complete file, whatever happens to the process. A Writer is not safe
// for concurrent use.
type Writer struct {
	path    string
	f       *atomicfile.File
	pw      *parquet.GenericWriter[Step]
	rows    int64
	pending int
	groupN  int
	closed  bool
}

// Create starts a trajectory file at path. The directory must exist. Call
// Close to publish the file, or Abort to discard it.
func Create(path string, opts WriterOptions) (*Writer, error) {
	n := opts.RowGroupRows
	if n <= 0 {
		n = DefaultRowGroupRows
	}
	// The temporary name (atomicfile's) does not end in .parquet, so directory readers
	// never pick up an unfinished file.
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, fmt.Errorf("datasets: %w", err)
	}
	pw := parquet.NewGenericWriter[Step](f,
		parquet.Compression(&parquet.Zstd),
		parquet.MaxRowsPerRowGroup(int64(n)),
		parquet.CreatedBy("shopagent datasets", "", ""))
	return &Writer{path: path, f: f, pw: pw, groupN: n}, nil
}

// Path returns the final path of the file.
func (w *Writer) Path() string { return w.path }

// Rows returns the number of rows written so far.
func (w *Writer) Rows() int64 { return w.rows }

// Write appends rows. Rows of one episode must be written consecutively and
// in step order (readers group consecutive rows by episode_id). A row group
// is flushed to the temporary file every RowGroupRows rows.
func (w *Writer) Write(steps ...Step) error {
	if w.closed {
		return fmt.Errorf("datasets: write %s: writer is closed", w.path)
	}
	for len(steps) > 0 {
		k := min(len(steps), w.groupN-w.pending)
		if _, err := w.pw.Write(steps[:k]); err != nil {
			return fmt.Errorf("datasets: write %s: %w", w.path, err)
		}
		w.rows += int64(k)
		w.pending += k
		steps = steps[k:]
		if w.pending >= w.groupN {
			if err := w.pw.Flush(); err != nil {
				return fmt.Errorf("datasets: write %s: flush row group: %w", w.path, err)
			}
			w.pending = 0
		}
	}
	return nil
}

// Close writes the footer and publishes the file (atomicfile: fsync, rename, directory
// fsync).
// On error the temporary file is removed and the final path is untouched.
// Closing twice is a no-op.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.pw.Close(); err != nil {
		w.f.Abort()
		return fmt.Errorf("datasets: close %s: %w", w.path, err)
	}
	if err := w.f.Commit(); err != nil {
		return fmt.Errorf("datasets: close %s: %w", w.path, err)
	}
	return nil
}

// Abort discards the file: the temporary file is removed and the final path
// is left untouched. Aborting a closed writer is a no-op.
func (w *Writer) Abort() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.f.Abort(); err != nil {
		return fmt.Errorf("datasets: abort %s: %w", w.path, err)
	}
	return nil
}

// WriteFile writes steps to a new trajectory file at path (Create, Write,
// Close).
func WriteFile(path string, steps []Step) error {
	w, err := Create(path, WriterOptions{})
	if err != nil {
		return err
	}
	if err := w.Write(steps...); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}
