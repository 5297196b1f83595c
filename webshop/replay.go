package webshop

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"shopagent/datasets"
)

// Limits of the replay view's listings.
const (
	maxReplayFiles    = 1000
	maxReplayEpisodes = 2000
)

type replayFile struct {
	Path string // slash-separated, relative to the replay directory
	Size int64
}

type replayEpisode struct {
	ID          string
	Source      string
	Policy      string
	GoalID      int64
	Instruction string
	Steps       int
	FinalReward float64
}

type replayStep struct {
	Index    int
	Action   string
	Reward   float64
	Page     string
	Selected bool
}

type replayAction struct {
	Index  int
	Action string
	Chosen bool
}

// replayView is what replay.html renders: the file list, one file's
// episodes, or one step of an episode.
type replayView struct {
	Files     []replayFile
	Truncated bool

	File     string
	Episodes []replayEpisode

	Episode *replayEpisode
	Step    int
	NumStep int
	Row     *datasets.Step
	Actions []replayAction
	Steps   []replayStep
	Prev    int
	Next    int
	HasPrev bool
	HasNext bool
	Error   string
}

// errEpisodeFound stops a file scan once the episode is read.
var errEpisodeFound = errors.New("episode found")

func (s *Server) handleReplay(w http.ResponseWriter, r *http.Request) {
	if s.cfg.ReplayDir == "" {
		s.fail(w, http.StatusNotFound, "the replay view is off: start the server with --replay-dir")
		return
	}
	q := r.URL.Query()
	file := q.Get("file")
	if file == "" {
		v, err := s.listFiles()
		if err != nil {
			s.fail(w, http.StatusInternalServerError, err.Error())
			return
		}
		s.render(w, http.StatusOK, "replay.html", v)
		return
	}
	full, status, err := s.replayPath(file)
	if err != nil {
		s.fail(w, status, err.Error())
		return
	}
	epID := q.Get("episode")
	if epID == "" {
		v := replayView{File: file}
		err := datasets.ReadEpisodes(full, func(ep []datasets.Step) error {
			if len(v.Episodes) >= maxReplayEpisodes {
				v.Truncated = true
				return errEpisodeFound
			}
			v.Episodes = append(v.Episodes, summarize(ep))
			return nil
		})
		if err != nil && !errors.Is(err, errEpisodeFound) {
			s.fail(w, http.StatusUnprocessableEntity, fmt.Sprintf("cannot read %s: %v", file, err))
			return
		}
		s.render(w, http.StatusOK, "replay.html", v)
		return
	}
	step := 0
	if st := q.Get("step"); st != "" {
		n, err := strconv.Atoi(st)
		if err != nil || n < 0 {
			s.fail(w, http.StatusBadRequest, fmt.Sprintf("step %q is not a step number", st))
			return
		}
		step = n
	}
	var found []datasets.Step
	err = datasets.ReadEpisodes(full, func(ep []datasets.Step) error {
		if ep[0].EpisodeID == epID {
			found = ep
			return errEpisodeFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEpisodeFound) {
		s.fail(w, http.StatusUnprocessableEntity, fmt.Sprintf("cannot read %s: %v", file, err))
		return
	}
	if found == nil {
		s.fail(w, http.StatusNotFound, fmt.Sprintf("no episode %q in %s", epID, file))
		return
	}
	if step >= len(found) {
		s.fail(w, http.StatusNotFound, fmt.Sprintf("episode %q has %d steps (0..%d)", epID, len(found), len(found)-1))
		return
	}
	sum := summarize(found)
	row := found[step]
	v := replayView{File: file, Episode: &sum, Step: step, NumStep: len(found), Row: &row,
		Prev: step - 1, Next: step + 1, HasPrev: step > 0, HasNext: step+1 < len(found)}
	for i, a := range row.AvailableActions {
		v.Actions = append(v.Actions, replayAction{Index: i, Action: a, Chosen: int(row.ActionIndex) == i})
	}
	for i, st := range found {
		v.Steps = append(v.Steps, replayStep{Index: i, Action: st.Action, Reward: st.Reward, Page: st.Page, Selected: i == step})
	}
	s.render(w, http.StatusOK, "replay.html", v)
}

func summarize(ep []datasets.Step) replayEpisode {
	f := ep[0]
	return replayEpisode{ID: f.EpisodeID, Source: string(f.Source), Policy: f.Policy, GoalID: f.GoalID,
		Instruction: f.Instruction, Steps: len(ep), FinalReward: ep[len(ep)-1].FinalReward}
}

// replayPath resolves a slash-separated path relative to the replay
// directory. It rejects absolute paths, ".." elements, hidden files,
// non-Parquet names and symbolic links that lead outside the directory.
func (s *Server) replayPath(file string) (string, int, error) {
	if strings.ContainsRune(file, 0) || strings.Contains(file, `\`) {
		return "", http.StatusBadRequest, fmt.Errorf("bad file name %q", file)
	}
	clean := path.Clean(file)
	if !fs.ValidPath(clean) || clean == "." || clean != file {
		return "", http.StatusBadRequest, fmt.Errorf("bad file name %q: want a path relative to the replay directory", file)
	}
	if !strings.HasSuffix(clean, ".parquet") || strings.HasPrefix(path.Base(clean), ".") {
		return "", http.StatusBadRequest, fmt.Errorf("bad file name %q: want a .parquet file", file)
	}
	root, err := os.OpenRoot(s.cfg.ReplayDir)
	if err != nil {
		return "", http.StatusInternalServerError, fmt.Errorf("replay directory: %w", err)
	}
	defer root.Close()
	st, err := root.Stat(filepath.FromSlash(clean))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", http.StatusNotFound, fmt.Errorf("no file %q in the replay directory", file)
		}
		return "", http.StatusBadRequest, fmt.Errorf("file %q: not inside the replay directory", file)
	}
	if !st.Mode().IsRegular() {
		return "", http.StatusBadRequest, fmt.Errorf("file %q is not a regular file", file)
	}
	return filepath.Join(s.cfg.ReplayDir, filepath.FromSlash(clean)), http.StatusOK, nil
}

// listFiles finds the trajectory files under the replay directory.
func (s *Server) listFiles() (replayView, error) {
	var v replayView
	errFull := errors.New("full")
	err := filepath.WalkDir(s.cfg.ReplayDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // skip unreadable entries
		}
		if strings.HasPrefix(d.Name(), ".") && p != s.cfg.ReplayDir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), ".parquet") {
			return nil
		}
		if len(v.Files) >= maxReplayFiles {
			v.Truncated = true
			return errFull
		}
		rel, err := filepath.Rel(s.cfg.ReplayDir, p)
		if err != nil {
			return nil
		}
		var size int64
		if info, err := d.Info(); err == nil {
			size = info.Size()
		}
		v.Files = append(v.Files, replayFile{Path: filepath.ToSlash(rel), Size: size})
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		return v, fmt.Errorf("listing %s: %w", s.cfg.ReplayDir, err)
	}
	sort.Slice(v.Files, func(i, j int) bool { return v.Files[i].Path < v.Files[j].Path })
	return v, nil
}
