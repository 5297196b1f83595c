package datasets

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// readBatch is the number of rows decoded per read call.
const readBatch = 256

// ReadSteps reads every row of a trajectory file.
func ReadSteps(path string) ([]Step, error) {
	var out []Step
	err := ReadEpisodes(path, func(ep []Step) error {
		out = append(out, ep...)
		return nil
	})
	return out, err
}

// ReadEpisodes streams a trajectory file episode by episode: fn gets the
// consecutive rows sharing an episode_id, in file order. The slice is fn's to
// keep. An error from fn stops the read and is returned as is. A file that is
// not a trajectory file, is truncated or corrupt gives an error naming it.
func ReadEpisodes(path string, fn func(ep []Step) error) (err error) {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("datasets: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("datasets: %w", err)
	}
	// parquet-go panics on some corrupt inputs; a damaged file must give an
	// error, never crash the reader. Panics raised by fn propagate.
	inFn := false
	defer func() {
		if r := recover(); r != nil {
			if inFn {
				panic(r)
			}
			err = fmt.Errorf("datasets: read %s: corrupt parquet file: %v", path, r)
		}
	}()
	call := func(ep []Step) error {
		inFn = true
		err := fn(ep)
		inFn = false // not deferred: a panic in fn must leave it set
		return err
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return fmt.Errorf("datasets: read %s: not a complete parquet file (truncated or corrupt?): %w", path, err)
	}
	if err := checkSchema(pf.Schema()); err != nil {
		return fmt.Errorf("datasets: read %s: %w", path, err)
	}
	r := parquet.NewGenericReader[Step](pf)
	defer r.Close()
	buf := make([]Step, readBatch)
	var ep []Step
	for {
		clear(buf) // rows handed to fn must not share memory with the next read
		n, rerr := r.Read(buf)
		for _, s := range buf[:n] {
			if len(ep) > 0 && ep[0].EpisodeID != s.EpisodeID {
				if err := call(ep); err != nil {
					return err
				}
				ep = nil
			}
			ep = append(ep, s)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("datasets: read %s: %w", path, rerr)
		}
		if n == 0 {
			return fmt.Errorf("datasets: read %s: reader made no progress", path)
		}
	}
	if len(ep) > 0 {
		if err := call(ep); err != nil {
			return err
		}
	}
	return nil
}

// checkSchema verifies that a file has every column of Step with the same
// physical shape, so that it decodes as trajectory rows.
func checkSchema(s *parquet.Schema) error {
	want := parquet.SchemaOf(Step{})
	have := map[string]parquet.Node{}
	for _, f := range s.Fields() {
		have[f.Name()] = f
	}
	for _, f := range want.Fields() {
		h, ok := have[f.Name()]
		if !ok && f.Optional() {
			continue // a column added later (forced): older files read as its zero value
		}
		if !ok {
			return fmt.Errorf("not a trajectory file: no column %q", f.Name())
		}
		if h.Leaf() != f.Leaf() || (h.Leaf() && h.Type().Kind() != f.Type().Kind()) {
			return fmt.Errorf("not a trajectory file: column %q has type %s, want %s", f.Name(), h.Type(), f.Type())
		}
	}
	return nil
}

// Files resolves a path to trajectory files: a file is returned as is, a
// directory gives its *.parquet files (not recursive) sorted by name.
func Files(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("datasets: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("datasets: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".parquet") && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join(path, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// ReadDirEpisodes streams every *.parquet file of dir, in name order, episode
// by episode (see ReadEpisodes). A dir that is a file is read alone.
func ReadDirEpisodes(dir string, fn func(ep []Step) error) error {
	files, err := Files(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := ReadEpisodes(f, fn); err != nil {
			return err
		}
	}
	return nil
}

// ReadDir reads every row of every *.parquet file of dir, in name order.
func ReadDir(dir string) ([]Step, error) {
	var out []Step
	err := ReadDirEpisodes(dir, func(ep []Step) error {
		out = append(out, ep...)
		return nil
	})
	return out, err
}
