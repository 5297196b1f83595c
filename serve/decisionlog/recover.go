package decisionlog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"shopagent/atomicfile"
)

// Recovery is what recovering a log directory did.
type Recovery struct {
	// Segments counts the WAL segments of dead writers cut into Parquet files, with their
	// rows, and TornBytes the bytes of torn records dropped from their tails.
	Segments, Decisions, Rewards int
	TornBytes                    int64
	// TempsRemoved counts orphan temporary files removed (Parquet files a crash left
	// half-written: never published, their rows are in a WAL segment or already in a
	// published file).
	TempsRemoved int
}

// Recover recovers a log directory that no writer is using, or that live writers share:
// the WAL segments of every writer that is not alive are cut into Parquet files and
// removed, and orphan temporary files removed. Open does this before it starts writing.
func Recover(dir string, logger *slog.Logger) (Recovery, error) {
	if logger == nil {
		logger = slog.Default()
	}
	return recoverDir(dir, "", logger)
}

// recoverDir recovers dir for the writer named self (whose lock the caller holds; its
// predecessor of the same name is dead).
func recoverDir(dir, self string, logger *slog.Logger) (Recovery, error) {
	var rec Recovery
	segs, err := Segments(dir)
	if err != nil {
		return rec, err
	}
	alive := map[string]bool{}    // replica -> alive
	held := map[string]*os.File{} // locks of dead replicas held while recovering
	defer func() {
		for _, f := range held {
			os.Remove(f.Name())
			unlock(f)
		}
	}()
	isAlive := func(replica string) (bool, error) {
		if replica == self {
			return false, nil
		}
		if a, ok := alive[replica]; ok {
			return a, nil
		}
		lockPath := filepath.Join(dir, walDir, replica+lockExt)
		if _, err := os.Stat(lockPath); errors.Is(err, os.ErrNotExist) {
			alive[replica] = false
			return false, nil
		}
		f, ok, err := tryLock(lockPath)
		if err != nil {
			return false, err
		}
		alive[replica] = !ok
		if ok {
			held[replica] = f
		}
		return !ok, nil
	}
	for _, p := range segs {
		replica, ok := segmentReplica(filepath.Base(p))
		if !ok {
			logger.Warn("decision log: ignoring a WAL file with an unexpected name", "file", p)
			continue
		}
		live, err := isAlive(replica)
		if err != nil {
			return rec, err
		}
		if live {
			continue
		}
		seg, err := ReadSegment(p)
		if err != nil {
			return rec, err
		}
		if _, err := cutRows(dir, strings.TrimSuffix(filepath.Base(p), walExt), seg); err != nil {
			return rec, fmt.Errorf("decisionlog: recover %s: %w", p, err)
		}
		if err := os.Remove(p); err != nil {
			return rec, fmt.Errorf("decisionlog: recover: %w", err)
		}
		rec.Segments++
		rec.Decisions += len(seg.Decisions)
		rec.Rewards += len(seg.Rewards)
		rec.TornBytes += seg.TornBytes
	}
	if rec.Segments > 0 {
		if err := atomicfile.SyncDir(filepath.Join(dir, walDir)); err != nil {
			return rec, err
		}
	}
	for _, log := range []string{"decisions", "rewards"} {
		root := filepath.Join(dir, log)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == root {
					return fs.SkipAll
				}
				return err
			}
			if d.IsDir() || !atomicfile.IsTemp(d.Name()) {
				return nil
			}
			if target, ok := atomicfile.TempTarget(d.Name()); ok {
				if replica, ok := segmentReplica(target); ok {
					if live, err := isAlive(replica); err != nil || live {
						return err
					}
				}
			}
			if err := os.Remove(p); err != nil {
				return err
			}
			rec.TempsRemoved++
			return nil
		})
		if err != nil {
			return rec, fmt.Errorf("decisionlog: recover: %w", err)
		}
	}
	if rec.Segments > 0 || rec.TempsRemoved > 0 {
		logger.Info("decision log recovered", "dir", dir, "segments", rec.Segments, "decisions", rec.Decisions,
			"rewards", rec.Rewards, "torn_bytes", rec.TornBytes, "temps_removed", rec.TempsRemoved)
	}
	return rec, nil
}

// cutSegment cuts a closed WAL segment into Parquet files and removes it. rows, when
// not nil, are the segment's rows as the writer appended them (else the file is read).
func cutSegment(dir, path string, rows *Segment) (int, error) {
	var seg Segment
	if rows != nil {
		seg = *rows
	} else {
		var err error
		if seg, err = ReadSegment(path); err != nil {
			return 0, err
		}
	}
	n, err := cutRows(dir, strings.TrimSuffix(filepath.Base(path), walExt), seg)
	if err != nil {
		return 0, err
	}
	if err := os.Remove(path); err != nil {
		return n, fmt.Errorf("decisionlog: %w", err)
	}
	return n, atomicfile.SyncDir(filepath.Dir(path))
}

type partKey struct{ date, arm string }

func rowKey(ts time.Time, arm string) partKey {
	return partKey{date: ts.UTC().Format("2006-01-02"), arm: sanitizeName(arm)}
}

// cutRows publishes a segment's rows as one Parquet file per log and partition, named
// after the segment; a file already published (an earlier cut of the same segment that
// crashed before removing it) is kept as it is.
func cutRows(dir, segment string, seg Segment) (int, error) {
	dec := map[partKey][]DecisionRow{}
	for _, r := range seg.Decisions {
		k := rowKey(r.TS, r.Arm)
		dec[k] = append(dec[k], r)
	}
	rew := map[partKey][]RewardRow{}
	for _, r := range seg.Rewards {
		k := rowKey(r.TS, r.Arm)
		rew[k] = append(rew[k], r)
	}
	name := "part-" + segment + ".parquet"
	for k, rows := range dec {
		if err := publish(filepath.Join(dir, "decisions", "date="+k.date, "arm="+k.arm, name), rows); err != nil {
			return 0, err
		}
	}
	for k, rows := range rew {
		if err := publish(filepath.Join(dir, "rewards", "date="+k.date, "arm="+k.arm, name), rows); err != nil {
			return 0, err
		}
	}
	return len(seg.Decisions) + len(seg.Rewards), nil
}

// publish writes rows as a Parquet file at path unless it exists.
func publish[T any](path string, rows []T) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("decisionlog: %w", err)
	}
	return atomicfile.Write(path, 0o644, func(f io.Writer) error {
		pw := parquet.NewGenericWriter[T](f, parquet.Compression(&parquet.Zstd), parquet.CreatedBy("shopagent serve", "", ""))
		if _, err := pw.Write(rows); err != nil {
			return fmt.Errorf("decisionlog: write %s: %w", path, err)
		}
		if err := pw.Close(); err != nil {
			return fmt.Errorf("decisionlog: write %s: %w", path, err)
		}
		return nil
	})
}
