package decisionlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Log names.
const (
	Decisions = "decisions"
	Rewards   = "rewards"
)

// Files lists the published Parquet files of one log (Decisions or Rewards) under dir,
// sorted; temporary files are skipped. With since non-zero, only the partitions of
// dates from since's (UTC) on.
func Files(dir, log string, since time.Time) ([]string, error) {
	var out []string
	root := filepath.Join(dir, log)
	minDate := ""
	if !since.IsZero() {
		minDate = "date=" + since.UTC().Format("2006-01-02")
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			if minDate != "" && strings.HasPrefix(d.Name(), "date=") && d.Name() < minDate {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), "part-") && strings.HasSuffix(d.Name(), ".parquet") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decisionlog: list %s: %w", log, err)
	}
	sort.Strings(out)
	return out, nil
}

// ReadFile reads every row of one Parquet file as T (T may name a subset of the columns,
// as DecisionKey does).
func ReadFile[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("decisionlog: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("decisionlog: %w", err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("decisionlog: read %s: %w", path, err)
	}
	r := parquet.NewGenericReader[T](pf)
	defer r.Close()
	rows := make([]T, pf.NumRows())
	n, err := r.Read(rows)
	if err != nil && n != len(rows) {
		return nil, fmt.Errorf("decisionlog: read %s: %w", path, err)
	}
	return rows[:n], nil
}

func readLog[T any](dir, log string, since time.Time) ([]T, error) {
	files, err := Files(dir, log, since)
	if err != nil {
		return nil, err
	}
	var out []T
	for _, p := range files {
		rows, err := ReadFile[T](p)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// ReadDecisions reads every published decision row under dir.
func ReadDecisions(dir string) ([]DecisionRow, error) {
	return readLog[DecisionRow](dir, Decisions, time.Time{})
}

// ReadRewards reads every published reward row under dir.
func ReadRewards(dir string) ([]RewardRow, error) {
	return readLog[RewardRow](dir, Rewards, time.Time{})
}

// ReadDecisionKeys reads the keys of the published decision rows under dir in the date
// partitions from since's date on (zero: all).
func ReadDecisionKeys(dir string, since time.Time) ([]DecisionKey, error) {
	return readLog[DecisionKey](dir, Decisions, since)
}
