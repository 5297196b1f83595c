package webshop

import (
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"shopagent/datasets"
	"shopagent/env"
)

//go:embed templates/*.html
var templateFS embed.FS

// Defaults of Config.
const (
	DefaultMaxSessions = 1000
	DefaultSessionTTL  = 2 * time.Hour
	DefaultMaxSteps    = 100
	// HumanPolicy is the policy name of recorded web demonstrations.
	HumanPolicy = "human"
)

// Config configures a Server.
type Config struct {
	// Shop is the simulator's shop (required).
	Shop *env.Shop
	// Split is the goal split offered ("test", "dev", "train", "all");
	// empty means "test".
	Split string
	// Env configures each session's environment. The zero Mode means
	// text_rich (the observation recorded with each step); MaxSteps 0 means
	// DefaultMaxSteps, a negative value no cap.
	Env env.Config
	// RecordDir receives one trajectory file per finished episode; empty
	// disables recording.
	RecordDir string
	// ReplayDir is the directory whose trajectory files (searched
	// recursively) the replay view may open; empty disables the replay view.
	ReplayDir string
	// MaxSessions caps live browser sessions (0 = DefaultMaxSessions); the
	// least recently used one is dropped when a new one would exceed it.
	MaxSessions int
	// SessionTTL drops sessions idle for longer (0 = DefaultSessionTTL).
	SessionTTL time.Duration
	// Logf logs recording events and errors; nil uses the log package.
	Logf func(format string, args ...any)
}

// Server is the web shop's http.Handler. It is safe for concurrent use.
type Server struct {
	cfg      Config
	goals    []env.Goal
	goalBase int
	tmpl     *template.Template
	mux      *http.ServeMux

	mu       sync.Mutex
	sessions map[string]*session
}

// session is one browser session: an env and the episode in progress.
type session struct {
	mu       sync.Mutex
	id       string
	env      *env.Env
	goalIdx  int // index in the split
	episode  int // episodes started in this session
	started  time.Time
	obs      env.Observation
	lastUsed time.Time

	// Page state the observation does not carry in every mode, mirrored
	// from the env's rules: the product shown on item pages and sub-pages,
	// the options picked on it and the products visited since the last
	// "back to search".
	item     int
	selected map[string]string // option group -> value
	visited  map[string]bool   // lowercased ASIN

	rows     []datasets.Step
	done     bool
	reward   float64
	purchase *env.Purchase
	recorded string // path of the written episode file
	recErr   string
}

// New checks the configuration and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Shop == nil {
		return nil, errors.New("webshop: no shop")
	}
	if cfg.Split == "" {
		cfg.Split = "test"
	}
	r, err := cfg.Shop.Splits.Split(cfg.Split)
	if err != nil {
		return nil, fmt.Errorf("webshop: %w", err)
	}
	if r[1] <= r[0] {
		return nil, fmt.Errorf("webshop: split %q has no goals", cfg.Split)
	}
	if cfg.Env.Mode == "" {
		cfg.Env.Mode = env.ObsTextRich
	}
	if _, err := env.ParseObsMode(string(cfg.Env.Mode)); err != nil {
		return nil, fmt.Errorf("webshop: %w", err)
	}
	switch {
	case cfg.Env.MaxSteps == 0:
		cfg.Env.MaxSteps = DefaultMaxSteps
	case cfg.Env.MaxSteps < 0:
		cfg.Env.MaxSteps = 0
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	for _, d := range []struct{ name, dir string }{{"record", cfg.RecordDir}, {"replay", cfg.ReplayDir}} {
		if d.dir == "" {
			continue
		}
		st, err := os.Stat(d.dir)
		if err != nil {
			return nil, fmt.Errorf("webshop: %s directory: %w", d.name, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("webshop: %s directory %s is not a directory", d.name, d.dir)
		}
	}
	tmpl, err := template.New("").Funcs(template.FuncMap{
		"reward": formatReward,
		"add":    func(a, b int) int { return a + b },
	}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("webshop: templates: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		goals:    cfg.Shop.Goals[r[0]:r[1]],
		goalBase: r[0],
		tmpl:     tmpl,
		sessions: map[string]*session{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleIndex)
	mux.HandleFunc("POST /new", s.handleNew)
	mux.HandleFunc("GET /s/{sid}", s.handlePage)
	mux.HandleFunc("POST /s/{sid}/step", s.handleStep)
	mux.HandleFunc("GET /replay", s.handleReplay)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.mux = mux
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// Goals returns the goals the server offers (its split), in order.
func (s *Server) Goals() []env.Goal { return s.goals }

// GoalID returns the index in Shop.Goals of the split's goal i.
func (s *Server) GoalID(i int) int64 { return int64(s.goalBase + i) }

func formatReward(r float64) string {
	if math.IsNaN(r) {
		return "unknown"
	}
	return strconv.FormatFloat(r, 'f', 4, 64)
}

// ---- pages ----

type indexView struct {
	Split     string
	NumGoals  int
	Goals     []goalLink
	Replay    bool
	Recording bool
	Error     string
}

type goalLink struct {
	Index       int
	Instruction string
}

// indexGoals is the number of goals listed on the start page.
const indexGoals = 20

func (s *Server) handleIndex(w http.ResponseWriter, _ *http.Request) {
	v := indexView{Split: s.cfg.Split, NumGoals: len(s.goals), Replay: s.cfg.ReplayDir != "", Recording: s.cfg.RecordDir != ""}
	for i := 0; i < len(s.goals) && i < indexGoals; i++ {
		v.Goals = append(v.Goals, goalLink{i, s.goals[i].Instruction})
	}
	s.render(w, http.StatusOK, "index.html", v)
}

func (s *Server) handleNew(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.fail(w, http.StatusBadRequest, "bad form: "+err.Error())
		return
	}
	var goal int
	switch g := strings.TrimSpace(r.PostForm.Get("goal")); g {
	case "", "random":
		goal = mrand.IntN(len(s.goals))
	default:
		n, err := strconv.Atoi(g)
		if err != nil || n < 0 || n >= len(s.goals) {
			s.fail(w, http.StatusBadRequest, fmt.Sprintf("goal %q is not a number in 0..%d", g, len(s.goals)-1))
			return
		}
		goal = n
	}
	sess, err := s.newSession(goal)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	http.Redirect(w, r, "/s/"+sess.id, http.StatusSeeOther)
}

func (s *Server) newSession(goal int) (*session, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("webshop: session id: %w", err)
	}
	now := time.Now()
	sess := &session{id: hex.EncodeToString(b[:]), env: s.cfg.Shop.NewEnv(s.cfg.Env), goalIdx: goal, lastUsed: now}
	sess.reset(s.goals[goal], now)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Drop idle sessions, then the least recently used ones over the cap.
	for id, o := range s.sessions {
		if now.Sub(o.touched()) > s.cfg.SessionTTL {
			delete(s.sessions, id)
		}
	}
	for len(s.sessions) >= s.cfg.MaxSessions {
		oldest, ot := "", now
		for id, o := range s.sessions {
			if t := o.touched(); oldest == "" || t.Before(ot) {
				oldest, ot = id, t
			}
		}
		delete(s.sessions, oldest)
	}
	s.sessions[sess.id] = sess
	return sess, nil
}

// touched returns when the session was last used.
func (sess *session) touched() time.Time {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.lastUsed
}

func (sess *session) reset(goal env.Goal, now time.Time) {
	sess.obs = sess.env.Reset(goal)
	sess.episode++
	sess.started = now
	sess.item = -1
	sess.selected = map[string]string{}
	sess.visited = map[string]bool{}
	sess.rows = nil
	sess.done, sess.reward, sess.purchase = false, 0, nil
	sess.recorded, sess.recErr = "", ""
}

func (s *Server) session(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r.PathValue("sid"))
	if sess == nil {
		s.fail(w, http.StatusNotFound, "unknown or expired session; start a new episode")
		return
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.lastUsed = time.Now()
	s.render(w, http.StatusOK, "page.html", s.pageView(sess, ""))
}

func (s *Server) handleStep(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r.PathValue("sid"))
	if sess == nil {
		s.fail(w, http.StatusNotFound, "unknown or expired session; start a new episode")
		return
	}
	if err := r.ParseForm(); err != nil {
		s.fail(w, http.StatusBadRequest, "bad form: "+err.Error())
		return
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.lastUsed = time.Now()
	if sess.done {
		s.render(w, http.StatusConflict, "page.html", s.pageView(sess, "the episode is over; start a new one"))
		return
	}
	if st := r.PostForm.Get("step"); st != "" && st != strconv.Itoa(len(sess.rows)) {
		s.render(w, http.StatusConflict, "page.html", s.pageView(sess, "that page is out of date (browser back button?); this is the current page"))
		return
	}
	action, err := formAction(r.PostForm.Get("action"), r.PostForm.Get("query"), sess.obs)
	if err != nil {
		s.render(w, http.StatusBadRequest, "page.html", s.pageView(sess, err.Error()))
		return
	}
	s.step(sess, action)
	http.Redirect(w, r, "/s/"+sess.id, http.StatusSeeOther)
}

// formAction turns a posted form into an env action that the current page
// offers: a search (query) where the page has a search bar, or one of its
// clicks.
func formAction(action, query string, obs env.Observation) (string, error) {
	if action == "" || action == "search[...]" {
		q := strings.Join(strings.Fields(strings.NewReplacer("[", " ", "]", " ").Replace(query)), " ")
		if !obs.HasSearchBar {
			return "", errors.New("this page has no search box")
		}
		if q == "" {
			return "", errors.New("type something to search for")
		}
		return env.Search(q), nil
	}
	for _, a := range obs.Actions() {
		if a == action && a != "search[...]" {
			return action, nil
		}
	}
	return "", fmt.Errorf("%q is not an action of this page", action)
}

// step applies an action, mirrors the page state, records the row and writes
// the episode when it ends. The caller holds sess.mu.
func (s *Server) step(sess *session, action string) {
	before := sess.obs
	goal := sess.env.Goal()
	avail := before.Actions()
	obs, reward, done, info := sess.env.Step(action)
	sess.track(s.cfg.Shop, before, action, obs)
	sess.rows = append(sess.rows, datasets.Step{
		EpisodeID:        fmt.Sprintf("web-%s-%d", sess.id[:12], sess.episode),
		Source:           datasets.SourceHuman,
		Policy:           HumanPolicy,
		GoalID:           s.GoalID(sess.goalIdx),
		Instruction:      goal.Instruction,
		Step:             int32(len(sess.rows)),
		Page:             string(before.Page),
		Observation:      before.Text,
		AvailableActions: avail,
		Action:           action,
		ActionIndex:      int32(datasets.ActionIndex(action, avail)),
		Logprob:          math.NaN(),
		Value:            math.NaN(),
		Reward:           reward,
		Done:             done,
	})
	sess.obs = obs
	if !done {
		return
	}
	sess.done, sess.reward, sess.purchase = true, reward, info.Purchase
	for i := range sess.rows {
		sess.rows[i].FinalReward = reward
	}
	if s.cfg.RecordDir == "" {
		return
	}
	path, err := s.record(sess)
	if err != nil {
		sess.recErr = err.Error()
		s.cfg.Logf("webshop: recording episode %s: %v", sess.rows[0].EpisodeID, err)
		return
	}
	sess.recorded = path
	s.cfg.Logf("webshop: recorded %s (%d steps, reward %s)", path, len(sess.rows), formatReward(reward))
}

// record writes the finished episode as one trajectory file. The datasets
// writer publishes it atomically on Close.
func (s *Server) record(sess *session) (string, error) {
	name := fmt.Sprintf("human-%s-%s-%d.parquet", sess.started.UTC().Format("20060102T150405Z"), sess.id[:12], sess.episode)
	path := filepath.Join(s.cfg.RecordDir, name)
	w, err := datasets.Create(path, datasets.WriterOptions{})
	if err != nil {
		return "", err
	}
	if err := w.Write(sess.rows...); err != nil {
		w.Abort()
		return "", err
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	return path, nil
}

// track mirrors the env's page state that text mode does not show: which
// product is open, the options picked on it, the visited products.
func (sess *session) track(shop *env.Shop, before env.Observation, action string, after env.Observation) {
	a := env.ParseAction(action)
	switch {
	case a.Name == "search":
		sess.item = -1
		clear(sess.selected)
	case a.Arg == env.ClickBackToSearch:
		sess.item = -1
		clear(sess.selected)
		clear(sess.visited)
	case before.Page == env.PageResults && after.Page == env.PageItem:
		if i, ok := productByASIN(shop, a.Arg); ok {
			sess.item = i
			sess.visited[a.Arg] = true
		}
		clear(sess.selected)
	case before.Page == env.PageItem && after.Page == env.PageResults:
		sess.item = -1
		clear(sess.selected)
	case before.Page == env.PageItem && after.Page == env.PageItem && sess.item >= 0:
		// An option value: the later group holding it wins, as in env.
		group, value := "", ""
		for _, g := range shop.Catalog.Products[sess.item].Options {
			for _, v := range g.Values {
				if strings.ToLower(v) == a.Arg {
					group, value = g.Name, v
				}
			}
		}
		if group != "" {
			sess.selected[group] = value
		}
	}
	if after.Page != env.PageItem && !isSubPage(after.Page) && after.Page != env.PageDone {
		sess.item = -1
	}
}

func isSubPage(p env.PageKind) bool {
	switch p {
	case env.PageDescription, env.PageFeatures, env.PageReviews, env.PageAttributes:
		return true
	}
	return false
}

// productByASIN finds a product from a lowercased ASIN clickable.
func productByASIN(shop *env.Shop, asin string) (int, bool) {
	if i, ok := shop.Catalog.ByASIN(strings.ToUpper(asin)); ok {
		return i, true
	}
	return shop.Catalog.ByASIN(asin)
}

// ---- rendering ----

func (s *Server) render(w http.ResponseWriter, status int, name string, data any) {
	var b strings.Builder
	if err := s.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		s.cfg.Logf("webshop: render %s: %v", name, err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

type errorView struct {
	Status  int
	Message string
}

func (s *Server) fail(w http.ResponseWriter, status int, msg string) {
	s.render(w, status, "error.html", errorView{status, msg})
}
