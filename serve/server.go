package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"shopagent/bandit"
	"shopagent/env"
	"shopagent/serve/decisionlog"
)

// DecisionRow is a row of the decision log (see decisionlog.DecisionRow).
type DecisionRow = decisionlog.DecisionRow

// RewardRow is a row of the reward log (see decisionlog.RewardRow).
type RewardRow = decisionlog.RewardRow

// Routing modes.
const (
	ModeThompson = "thompson"
	ModeCanary   = "canary"
)

// Defaults of Config.
const (
	DefaultMaxBody       = 1 << 20
	DefaultMaxActions    = 512
	DefaultMaxText       = 64 << 10
	DefaultMaxSessionID  = 256
	DefaultRewardTimeout = 10 * time.Minute
	DefaultSessionTTL    = time.Hour
	DefaultPBestDraws    = 4000
	DefaultPBestRefresh  = time.Second
	// DefaultPBestRefreshFeedback recomputes the Thompson allocation after this many
	// rewards (besides every DefaultPBestRefresh).
	DefaultPBestRefreshFeedback = 5
	// DefaultRejectLogEvery: at most one log line per route and 4xx status this often.
	DefaultRejectLogEvery = time.Second
)

// Config configures a Server.
type Config struct {
	Arms   []ArmSpec
	Loader Loader
	// Mode is ModeThompson (default) or ModeCanary.
	Mode string
	// Weights are the canary weights, one per arm (ModeCanary).
	Weights []float64
	// MinShare is Thompson sampling's floor on each arm's share of new sessions.
	MinShare float64
	// Prior is the Beta prior of the arms' success probabilities (default Beta(1, 1)).
	Prior bandit.Prior
	// Sample draws the action from the policy's probabilities instead of the argmax.
	Sample bool
	// Seed seeds the arm and action draws (0: from crypto/rand).
	Seed uint64
	// RewardTimeout: an episode with no reward this long after its last decision ends with
	// reward 0 (default 10m).
	RewardTimeout time.Duration
	// SessionTTL: a session forgets its arm this long after its last decision (default
	// 1h; at least RewardTimeout).
	SessionTTL time.Duration
	// SweepEvery is how often expired episodes are collected (default RewardTimeout/10,
	// clamped to [10ms, 10s]).
	SweepEvery time.Duration
	// AdminToken protects POST /admin/reload (empty: reload is disabled).
	AdminToken string
	// Limits on requests (defaults DefaultMaxBody, DefaultMaxActions, DefaultMaxText).
	MaxBody    int64
	MaxActions int
	MaxText    int
	// PBestDraws and PBestRefresh: Monte Carlo draws of P(best) behind the Thompson
	// allocation, recomputed at most every PBestRefresh, and after every
	// PBestRefreshFeedback rewards this server took (default
	// DefaultPBestRefreshFeedback), so that a short, busy test adapts too.
	PBestDraws           int
	PBestRefresh         time.Duration
	PBestRefreshFeedback int
	// Store holds the shared state (default: a MemoryStore).
	Store Store
	// Logs receives decision and reward rows (nil: not logged).
	Logs *decisionlog.Writer
	// Logger receives the structured log: one JSON line per 5xx reply, failed reload and
	// store outage transition, with the request id; 4xx replies are counted in /metrics
	// and sampled (default: slog.Default()).
	Logger *slog.Logger
	// RejectLogEvery: a 4xx reply is logged when none of its route and status was in
	// the last RejectLogEvery (default DefaultRejectLogEvery), with the count of those
	// not logged since.
	RejectLogEvery time.Duration
}

// Server is the policy server. Create it with New, serve Handler(), call Start to load
// the arms and run the reward-timeout sweeper, and Shutdown at the end.
type Server struct {
	cfg     Config
	arms    []*arm
	byName  map[string]*arm
	names   []string
	canary  bandit.Canary
	ts      bandit.Thompson
	store   Store
	metrics *metrics
	echo    *echo.Echo

	rngMu sync.Mutex
	rng   *mrand.Rand

	allocMu   sync.Mutex
	alloc     []float64
	allocTime time.Time
	// allocFeedback counts the rewards taken since the allocation was computed.
	allocFeedback int

	stopOnce sync.Once
	stop     chan struct{}
	wg       sync.WaitGroup

	log        *slog.Logger
	rejectMu   sync.Mutex
	rejectLast map[string]rejectSample
	storeState atomic.Value // string: the last StoreHealth.State seen by /readyz
}

// rejectSample is the sampling state of one route and 4xx status.
type rejectSample struct {
	last       time.Time
	suppressed int64
}

// New checks the configuration and builds the server (arms are not loaded yet).
func New(cfg Config) (*Server, error) {
	if len(cfg.Arms) == 0 {
		return nil, errors.New("serve: no arms")
	}
	if cfg.Loader == nil {
		return nil, errors.New("serve: no policy loader")
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeThompson
	}
	if cfg.Prior == (bandit.Prior{}) {
		cfg.Prior = bandit.UniformPrior
	}
	if cfg.RewardTimeout <= 0 {
		cfg.RewardTimeout = DefaultRewardTimeout
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.SessionTTL < cfg.RewardTimeout {
		return nil, fmt.Errorf("serve: session TTL %s is shorter than the reward timeout %s", cfg.SessionTTL, cfg.RewardTimeout)
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = min(max(cfg.RewardTimeout/10, 10*time.Millisecond), 10*time.Second)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxActions <= 0 {
		cfg.MaxActions = DefaultMaxActions
	}
	if cfg.MaxText <= 0 {
		cfg.MaxText = DefaultMaxText
	}
	if cfg.PBestDraws <= 0 {
		cfg.PBestDraws = DefaultPBestDraws
	}
	if cfg.PBestRefresh <= 0 {
		cfg.PBestRefresh = DefaultPBestRefresh
	}
	if cfg.PBestRefreshFeedback <= 0 {
		cfg.PBestRefreshFeedback = DefaultPBestRefreshFeedback
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RejectLogEvery <= 0 {
		cfg.RejectLogEvery = DefaultRejectLogEvery
	}
	s := &Server{cfg: cfg, byName: map[string]*arm{}, stop: make(chan struct{}), log: cfg.Logger, rejectLast: map[string]rejectSample{}}
	for _, sp := range cfg.Arms {
		if !armNameRE.MatchString(sp.Name) {
			return nil, fmt.Errorf("serve: bad arm name %q", sp.Name)
		}
		if s.byName[sp.Name] != nil {
			return nil, fmt.Errorf("serve: arm %q is named twice", sp.Name)
		}
		a := &arm{spec: sp}
		s.arms = append(s.arms, a)
		s.byName[sp.Name] = a
		s.names = append(s.names, sp.Name)
	}
	switch cfg.Mode {
	case ModeCanary:
		if len(cfg.Weights) != len(cfg.Arms) {
			return nil, fmt.Errorf("serve: canary mode needs %d weights, got %d", len(cfg.Arms), len(cfg.Weights))
		}
		c, err := bandit.NewCanary(cfg.Weights)
		if err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
		s.canary = c
	case ModeThompson:
		s.ts = bandit.Thompson{Prior: cfg.Prior, MinShare: cfg.MinShare}
		if err := s.ts.Validate(len(cfg.Arms)); err != nil {
			return nil, fmt.Errorf("serve: %w", err)
		}
	default:
		return nil, fmt.Errorf("serve: unknown mode %q (want thompson or canary)", cfg.Mode)
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
	}
	s.rng = mrand.New(mrand.NewPCG(seed, 0x73657276))
	s.store = cfg.Store
	if s.store == nil {
		s.store = NewMemoryStore(cfg.SessionTTL, cfg.SessionTTL)
	}
	s.storeState.Store(StoreOK)
	s.metrics = newMetrics(s.names)
	s.metrics.reg.MustRegister(&cacheCollector{s})
	s.echo = s.routes()
	return s, nil
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Registry returns the Prometheus registry behind /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// LoadArms loads every arm's policy (concurrently); it returns the joined load errors.
// Arms that fail stay unloaded (or keep their previous policy) and /readyz says so.
func (s *Server) LoadArms() error {
	errs := make([]error, len(s.arms))
	var wg sync.WaitGroup
	for i, a := range s.arms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.load(s.cfg.Loader)
			if errs[i] != nil {
				s.log.Error("arm load failed", "arm", a.spec.Name, "dir", a.spec.Dir, "error", errs[i].Error())
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Ready reports whether every arm has a loaded policy.
func (s *Server) Ready() bool {
	for _, a := range s.arms {
		if !a.loaded() {
			return false
		}
	}
	return true
}

// Start runs the reward-timeout sweeper until Shutdown.
func (s *Server) Start() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.cfg.SweepEvery)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.Sweep(context.Background(), time.Now())
			}
		}
	}()
}

// Sweep ends the episodes whose reward timeout passed before now with reward 0, and
// returns how many it ended.
func (s *Server) Sweep(ctx context.Context, now time.Time) int {
	n := 0
	for {
		eps, err := s.store.Expired(ctx, now, 1000)
		if err != nil {
			s.log.Warn("reward timeout sweep failed", "error", err.Error())
			return n
		}
		for _, ep := range eps {
			s.recordReward(ep, ep.LastEvent, 0, decisionlog.SourceTimeout, now)
		}
		n += len(eps)
		if len(eps) < 1000 {
			return n
		}
	}
}

// Shutdown stops the sweeper, flushes the logs, closes the store and the policies.
func (s *Server) Shutdown() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
	var errs []error
	if s.cfg.Logs != nil {
		errs = append(errs, s.cfg.Logs.Close())
	}
	errs = append(errs, s.store.Close())
	for _, a := range s.arms {
		a.close()
	}
	return errors.Join(errs...)
}

// ---- HTTP ----

// ErrorResponse is the body of every error reply.
type ErrorResponse struct {
	Error string `json:"error"`
	// Cause classifies a 5xx reply: CauseStore, CausePolicy, CauseNotReady, CausePanic,
	// CauseReload or CauseInternal (empty on 4xx replies, which are the client's).
	Cause string `json:"cause,omitempty"`
}

// Causes of error replies: ErrorResponse.Cause and the cause label of
// shopagent_http_errors_total.
const (
	// CauseClient: a 4xx reply, the request is wrong.
	CauseClient = "client"
	// CauseStore: the state store (Redis) is unreachable.
	CauseStore = "store"
	// CausePolicy: the arm's policy failed on the request.
	CausePolicy = "policy"
	// CauseNotReady: the arms are still loading.
	CauseNotReady = "not_ready"
	// CausePanic: a handler or a policy panicked.
	CausePanic = "panic"
	// CauseReload: POST /admin/reload could not load a policy (the old one keeps serving).
	CauseReload = "reload"
	// CauseInternal: anything else.
	CauseInternal = "internal"
)

// apiError is an error reply.
type apiError struct {
	code  int
	msg   string
	cause string
}

func (e *apiError) Error() string { return e.msg }

// ActRequest is the body of POST /act.
type ActRequest struct {
	SessionID        string   `json:"session_id"`
	Observation      string   `json:"observation"`
	AvailableActions []string `json:"available_actions"`
	Instruction      string   `json:"instruction,omitempty"`
	Arm              string   `json:"arm,omitempty"`
	// Greedy takes the argmax for this decision even when the server samples (an
	// agent's budget rule: the best product of a results page); its propensity is 1.
	Greedy bool `json:"greedy,omitempty"`
}

// ActResponse is the reply of POST /act.
type ActResponse struct {
	EventID       string    `json:"event_id"`
	Arm           string    `json:"arm"`
	Policy        string    `json:"policy"`
	PolicySHA256  string    `json:"policy_sha256"`
	Action        string    `json:"action"`
	Index         int       `json:"index"`
	Probabilities []float64 `json:"probabilities"`
	// Propensity is ActionPropensity x ArmPropensity on the decision that assigned the
	// session's arm, ActionPropensity on the others (see DecisionRow).
	Propensity       float64 `json:"propensity"`
	ActionPropensity float64 `json:"action_propensity"`
	ArmPropensity    float64 `json:"arm_propensity"`
	Value            float64 `json:"value"`
	Episode          int64   `json:"episode"`
	Step             int64   `json:"step"`
}

// FeedbackRequest is the body of POST /feedback: event_id or session_id, and the reward
// in [0, 1] of the episode.
type FeedbackRequest struct {
	EventID   string   `json:"event_id,omitempty"`
	SessionID string   `json:"session_id,omitempty"`
	Reward    *float64 `json:"reward"`
}

// FeedbackResponse is the reply of POST /feedback.
type FeedbackResponse struct {
	SessionID string  `json:"session_id"`
	Arm       string  `json:"arm"`
	Episode   int64   `json:"episode"`
	Steps     int64   `json:"steps"`
	Reward    float64 `json:"reward"`
	Success   bool    `json:"success"`
}

// ArmReport is one arm of GET /arms.
type ArmReport struct {
	Name        string    `json:"name"`
	Dir         string    `json:"dir"`
	Loaded      bool      `json:"loaded"`
	Policy      string    `json:"policy,omitempty"`
	SHA256      string    `json:"sha256,omitempty"`
	LoadedAt    time.Time `json:"loaded_at,omitzero"`
	LoadError   string    `json:"load_error,omitempty"`
	Episodes    int64     `json:"episodes"`
	Successes   int64     `json:"successes"`
	MeanScore   float64   `json:"mean_score"`
	ScoreStdErr float64   `json:"score_stderr"`
	SuccessRate float64   `json:"success_rate"`
	Posterior   Posterior `json:"posterior"`
	PBest       float64   `json:"p_best"`
	// Allocation is the probability that a new session gets this arm.
	Allocation float64 `json:"allocation"`
}

// Posterior is a Beta posterior.
type Posterior struct {
	Alpha float64 `json:"alpha"`
	Beta  float64 `json:"beta"`
	Mean  float64 `json:"mean"`
}

// ArmsResponse is the reply of GET /arms.
type ArmsResponse struct {
	Mode     string      `json:"mode"`
	MinShare float64     `json:"min_share,omitempty"`
	Sample   bool        `json:"sample"`
	Arms     []ArmReport `json:"arms"`
}

// ReloadResult is one arm's outcome in POST /admin/reload.
type ReloadResult struct {
	Arm    string `json:"arm"`
	OK     bool   `json:"ok"`
	Policy string `json:"policy,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.RequestID())
	e.Use(s.metrics.middleware)
	e.Use(recoverPanics)
	e.POST("/act", s.handleAct)
	e.POST("/feedback", s.handleFeedback)
	e.GET("/arms", s.handleArms)
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.handleReady)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})))
	e.POST("/admin/reload", s.handleReload)
	return e
}

// recoverPanics turns a panic in a handler or a policy into a 500 with cause panic.
func recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = &apiError{code: http.StatusInternalServerError, msg: fmt.Sprintf("internal error: panic: %v", r), cause: CausePanic}
			}
		}()
		return next(c)
	}
}

// handleError writes an error reply: {"error": ..., "cause": ...}, and logs it (every
// 5xx; 4xx sampled).
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg, cause := http.StatusInternalServerError, err.Error(), CauseInternal
	var ae *apiError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		code, msg, cause = ae.code, ae.msg, ae.cause
	case errors.As(err, &he):
		code, msg = he.Code, fmt.Sprint(he.Message)
		if code < 500 {
			cause = CauseClient
		}
	}
	resp := ErrorResponse{Error: msg}
	if code >= 500 {
		resp.Cause = cause
	}
	_ = c.JSON(code, resp)
	s.logReply(c, code, cause, msg)
}

// logReply logs an error reply: every 5xx, and a 4xx when none of its route and status
// was logged in the last RejectLogEvery. Every error reply is counted in
// shopagent_http_errors_total{route,code,cause}.
func (s *Server) logReply(c echo.Context, code int, cause, msg string) {
	route := c.Path()
	if route == "" {
		route = "unmatched"
	}
	s.metrics.errors.WithLabelValues(route, strconv.Itoa(code), cause).Inc()
	rid := c.Response().Header().Get(echo.HeaderXRequestID)
	if code >= 500 {
		s.log.Error("request failed", "request_id", rid, "method", c.Request().Method, "route", route,
			"status", code, "cause", cause, "error", msg)
		return
	}
	key := route + " " + strconv.Itoa(code)
	now := time.Now()
	s.rejectMu.Lock()
	smp := s.rejectLast[key]
	if now.Sub(smp.last) < s.cfg.RejectLogEvery {
		smp.suppressed++
		s.rejectLast[key] = smp
		s.rejectMu.Unlock()
		return
	}
	suppressed := smp.suppressed
	s.rejectLast[key] = rejectSample{last: now}
	s.rejectMu.Unlock()
	s.log.Info("request rejected", "request_id", rid, "method", c.Request().Method, "route", route,
		"status", code, "error", msg, "not_logged_since_last", suppressed)
}

// httpErr is a client error (4xx) or, with a 5xx code, an internal one.
func httpErr(code int, format string, args ...any) error {
	cause := CauseClient
	if code >= 500 {
		cause = CauseInternal
	}
	return &apiError{code: code, msg: fmt.Sprintf(format, args...), cause: cause}
}

// storeErr is the reply to a store error: 503 when the store is unreachable, else 500.
func storeErr(err error) error {
	if errors.Is(err, ErrStoreUnavailable) {
		return &apiError{code: http.StatusServiceUnavailable, msg: "state store: " + err.Error(), cause: CauseStore}
	}
	return &apiError{code: http.StatusInternalServerError, msg: "state store: " + err.Error(), cause: CauseInternal}
}

// decodeBody decodes a JSON body of at most MaxBody bytes into v: the Content-Type must
// be application/json (or a +json type; charset utf-8 if given), else 415; the body must
// be valid UTF-8 and one JSON value, else 400; over MaxBody is 413.
func (s *Server) decodeBody(c echo.Context, v any) error {
	r := c.Request()
	ct := r.Header.Get(echo.HeaderContentType)
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != echo.MIMEApplicationJSON && !strings.HasSuffix(mt, "+json")) {
		return httpErr(http.StatusUnsupportedMediaType, "Content-Type %q is not supported: send application/json", ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return httpErr(http.StatusUnsupportedMediaType, "charset %q is not supported: send application/json in UTF-8", cs)
	}
	if r.ContentLength > s.cfg.MaxBody {
		return httpErr(http.StatusRequestEntityTooLarge, "body of %d bytes is over the limit of %d", r.ContentLength, s.cfg.MaxBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return httpErr(http.StatusRequestEntityTooLarge, "body is over the limit of %d bytes", s.cfg.MaxBody)
		}
		return httpErr(http.StatusBadRequest, "reading the body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return httpErr(http.StatusBadRequest, "empty body: want a JSON object")
	}
	if !utf8.Valid(body) {
		return httpErr(http.StatusBadRequest, "body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return httpErr(http.StatusBadRequest, "malformed JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return httpErr(http.StatusBadRequest, "malformed JSON: trailing data after the object")
	}
	return nil
}

// checkAction checks that an action is one WebShop accepts: parsed as WebShop parses
// actions (env.ParseAction: the pattern (.+)\[(.+)\] matched from the start, greedy, so
// the name ends at the last "[" that has text and a "]" after it), its name is click or
// search.
func checkAction(i int, a string) error {
	pa := env.ParseAction(a)
	switch {
	case pa.HasArg && (pa.Name == "click" || pa.Name == "search"):
		return nil
	case !pa.HasArg:
		return httpErr(http.StatusBadRequest, "available_actions[%d] %q is not a WebShop action: want click[...] or search[...] with a non-empty argument", i, a)
	default:
		return httpErr(http.StatusBadRequest, "available_actions[%d] %q is not a WebShop action: parsed as WebShop parses actions (greedy, to the last '['), its name is %q, not click or search", i, a, pa.Name)
	}
}

func checkID(field, v string) error {
	if v == "" {
		return httpErr(http.StatusBadRequest, "%s is required", field)
	}
	if len(v) > DefaultMaxSessionID {
		return httpErr(http.StatusBadRequest, "%s is longer than %d bytes", field, DefaultMaxSessionID)
	}
	if !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return httpErr(http.StatusBadRequest, "%s must be valid UTF-8 without control characters", field)
	}
	return nil
}

func (s *Server) checkText(field, v string) error {
	if len(v) > s.cfg.MaxText {
		return httpErr(http.StatusBadRequest, "%s is %d bytes, over the limit of %d", field, len(v), s.cfg.MaxText)
	}
	if !utf8.ValidString(v) {
		return httpErr(http.StatusBadRequest, "%s is not valid UTF-8", field)
	}
	return nil
}

func (s *Server) validateAct(req *ActRequest) error {
	if err := checkID("session_id", req.SessionID); err != nil {
		return err
	}
	if err := s.checkText("observation", req.Observation); err != nil {
		return err
	}
	if err := s.checkText("instruction", req.Instruction); err != nil {
		return err
	}
	n := len(req.AvailableActions)
	if n == 0 {
		return httpErr(http.StatusBadRequest, "available_actions is empty")
	}
	if n > s.cfg.MaxActions {
		return httpErr(http.StatusBadRequest, "%d available_actions, over the limit of %d", n, s.cfg.MaxActions)
	}
	for i, a := range req.AvailableActions {
		if a == "" {
			return httpErr(http.StatusBadRequest, "available_actions[%d] is empty", i)
		}
		if err := s.checkText(fmt.Sprintf("available_actions[%d]", i), a); err != nil {
			return err
		}
		if err := checkAction(i, a); err != nil {
			return err
		}
	}
	if req.Arm != "" && s.byName[req.Arm] == nil {
		return httpErr(http.StatusBadRequest, "unknown arm %q (arms: %s)", req.Arm, strings.Join(s.names, ", "))
	}
	return nil
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// allocation returns the probability of each arm for a new session: the canary weights,
// or Thompson sampling's: MinShare + (1 - K x MinShare) x P(arm is best), P(best) by
// Monte Carlo over the current posteriors (the distribution of bandit.Thompson.Choose).
func (s *Server) allocation(ctx context.Context) ([]float64, error) {
	if s.cfg.Mode == ModeCanary {
		return s.canary.Weights, nil
	}
	s.allocMu.Lock()
	defer s.allocMu.Unlock()
	if s.alloc != nil && time.Since(s.allocTime) < s.cfg.PBestRefresh && s.allocFeedback < s.cfg.PBestRefreshFeedback {
		return s.alloc, nil
	}
	states, err := s.store.States(ctx, s.names)
	if err != nil {
		return nil, err
	}
	s.rngMu.Lock()
	pb := bandit.ProbBest(states, s.cfg.Prior, s.cfg.PBestDraws, s.rng)
	s.rngMu.Unlock()
	k := float64(len(pb))
	out := make([]float64, len(pb))
	for i, p := range pb {
		out[i] = s.cfg.MinShare + (1-k*s.cfg.MinShare)*p
	}
	s.alloc, s.allocTime, s.allocFeedback = out, time.Now(), 0
	return out, nil
}

// draw returns an index drawn from probs with u uniform in [0, 1) (u < 0: drawn from the
// server's generator).
func (s *Server) draw(probs []float64, u float64) int {
	if u < 0 {
		s.rngMu.Lock()
		u = s.rng.Float64()
		s.rngMu.Unlock()
	}
	for i, p := range probs {
		if u < p {
			return i
		}
		u -= p
	}
	// Rounding: the last arm with positive probability.
	for i := len(probs) - 1; i >= 0; i-- {
		if probs[i] > 0 {
			return i
		}
	}
	return len(probs) - 1
}

// hashUnit maps a session id to [0, 1): the sticky draw of a new session's arm during a
// store outage, the same on every replica.
func hashUnit(id string) float64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return float64(h.Sum64()>>11) / (1 << 53)
}

// storeHealth returns the store's health (a store that cannot tell is healthy).
func (s *Server) storeHealth() StoreHealth {
	if h, ok := s.store.(healthReporter); ok {
		return h.Health()
	}
	return StoreHealth{Backend: "custom", State: StoreOK}
}

// session returns the request's session, assigning an arm to a new one. assigned is true
// when this request assigned it.
func (s *Server) session(ctx context.Context, req *ActRequest) (Session, bool, error) {
	sess, ok, err := s.store.Session(ctx, req.SessionID)
	if err != nil {
		return Session{}, false, storeErr(err)
	}
	if !ok {
		name, prop := req.Arm, 1.0
		if name == "" {
			probs, err := s.allocation(ctx)
			if err != nil {
				return Session{}, false, storeErr(err)
			}
			u := -1.0
			if s.storeHealth().State == StoreLocal {
				u = hashUnit(req.SessionID)
			}
			i := s.draw(probs, u)
			name, prop = s.names[i], probs[i]
		}
		var assigned bool
		sess, assigned, err = s.store.Assign(ctx, req.SessionID, name, prop)
		if err != nil {
			return Session{}, false, storeErr(err)
		}
		ok = assigned
	} else {
		ok = false
	}
	if req.Arm != "" && sess.Arm != req.Arm {
		return Session{}, false, httpErr(http.StatusConflict, "session %q is assigned to arm %q, not %q", req.SessionID, sess.Arm, req.Arm)
	}
	if s.byName[sess.Arm] == nil {
		return Session{}, false, httpErr(http.StatusConflict, "session %q is assigned to arm %q, which this server does not serve", req.SessionID, sess.Arm)
	}
	return sess, ok, nil
}

func (s *Server) handleAct(c echo.Context) error {
	start := time.Now()
	var req ActRequest
	if err := s.decodeBody(c, &req); err != nil {
		return err
	}
	if err := s.validateAct(&req); err != nil {
		return err
	}
	if !s.Ready() {
		return &apiError{code: http.StatusServiceUnavailable, msg: "not ready: arms are still loading", cause: CauseNotReady}
	}
	ctx := c.Request().Context()
	sess, assigned, err := s.session(ctx, &req)
	if err != nil {
		return err
	}
	a := s.byName[sess.Arm]
	d, info, err := a.act(req.Instruction, req.Observation, req.AvailableActions)
	if err == nil {
		err = checkDecision(d, len(req.AvailableActions))
	}
	if err != nil {
		return &apiError{code: http.StatusInternalServerError, msg: fmt.Sprintf("arm %s: %v", sess.Arm, err), cause: CausePolicy}
	}
	idx, actionProp := 0, 1.0
	if s.cfg.Sample && !req.Greedy {
		idx = s.draw(d.Probabilities, -1)
		actionProp = d.Probabilities[idx]
	} else {
		for i, p := range d.Probabilities {
			if p > d.Probabilities[idx] {
				idx = i
			}
		}
	}
	eventID := newEventID()
	now := time.Now()
	sess, ok, err := s.store.Decide(ctx, req.SessionID, eventID, now.Add(s.cfg.RewardTimeout))
	if err != nil {
		return storeErr(err)
	}
	if !ok {
		return httpErr(http.StatusConflict, "session %q expired during the request; retry", req.SessionID)
	}
	prop := actionProp
	armProp := sess.ArmPropensity
	if assigned {
		prop *= armProp
	}
	resp := ActResponse{EventID: eventID, Arm: sess.Arm, Policy: info.Name, PolicySHA256: info.SHA256,
		Action: req.AvailableActions[idx], Index: idx, Probabilities: d.Probabilities,
		Propensity: prop, ActionPropensity: actionProp, ArmPropensity: armProp, Value: d.Value,
		Episode: sess.Episode, Step: sess.Steps - 1}
	lat := time.Since(start)
	s.metrics.decisions.WithLabelValues(sess.Arm).Inc()
	if s.cfg.Logs != nil {
		p32 := make([]float32, len(d.Probabilities))
		for i, p := range d.Probabilities {
			p32[i] = float32(p)
		}
		err := s.cfg.Logs.Decision(DecisionRow{EventID: eventID, TS: now, SessionID: req.SessionID, Episode: sess.Episode,
			Step: sess.Steps - 1, Arm: sess.Arm, Policy: info.Name, ModelSHA256: info.SHA256,
			Instruction: req.Instruction, Observation: req.Observation, AvailableActions: req.AvailableActions,
			Action: resp.Action, ActionIndex: int32(idx), Probabilities: p32, Propensity: prop,
			ActionPropensity: actionProp, ArmPropensity: armProp, Sampled: s.cfg.Sample && !req.Greedy, Value: d.Value,
			LatencyUS: lat.Microseconds()})
		s.logRowError(c, err)
	}
	return c.JSON(http.StatusOK, resp)
}

// logRowError counts and logs a decision-log append that failed (the reply is served).
func (s *Server) logRowError(c echo.Context, err error) {
	if err == nil {
		return
	}
	s.metrics.logErrors.Inc()
	rid := ""
	if c != nil {
		rid = c.Response().Header().Get(echo.HeaderXRequestID)
	}
	s.log.Error("decision log append failed", "request_id", rid, "error", err.Error())
}

func (s *Server) recordReward(ep EndedEpisode, eventID string, reward float64, source string, now time.Time) {
	s.recordRewardFor(nil, ep, eventID, reward, source, now)
}

func (s *Server) recordRewardFor(c echo.Context, ep EndedEpisode, eventID string, reward float64, source string, now time.Time) {
	s.metrics.rewards.WithLabelValues(ep.Arm, source).Inc()
	s.metrics.rewardSum.WithLabelValues(ep.Arm).Add(reward)
	if reward >= bandit.SuccessThreshold {
		s.metrics.successes.WithLabelValues(ep.Arm).Inc()
	}
	if s.cfg.Logs != nil {
		err := s.cfg.Logs.Reward(RewardRow{EventID: eventID, SessionID: ep.SessionID, Episode: ep.Episode, Arm: ep.Arm,
			TS: now, Reward: reward, Success: reward >= bandit.SuccessThreshold, Steps: ep.Steps, Source: source})
		s.logRowError(c, err)
	}
}

func (s *Server) handleFeedback(c echo.Context) error {
	var req FeedbackRequest
	if err := s.decodeBody(c, &req); err != nil {
		return err
	}
	if req.Reward == nil {
		return httpErr(http.StatusBadRequest, "reward is required")
	}
	r := *req.Reward
	if math.IsNaN(r) || r < 0 || r > 1 {
		return httpErr(http.StatusBadRequest, "reward %g is not in [0, 1]", r)
	}
	if req.EventID == "" && req.SessionID == "" {
		return httpErr(http.StatusBadRequest, "event_id or session_id is required")
	}
	ctx := c.Request().Context()
	sessionID, episode := req.SessionID, int64(-1)
	if req.EventID != "" {
		if err := checkID("event_id", req.EventID); err != nil {
			return err
		}
		ref, ok, err := s.store.Event(ctx, req.EventID)
		if err != nil {
			return storeErr(err)
		}
		if !ok {
			return httpErr(http.StatusNotFound, "unknown or expired event_id %q", req.EventID)
		}
		if req.SessionID != "" && req.SessionID != ref.SessionID {
			return httpErr(http.StatusBadRequest, "event %q belongs to another session", req.EventID)
		}
		sessionID, episode = ref.SessionID, ref.Episode
	} else if err := checkID("session_id", req.SessionID); err != nil {
		return err
	}
	res, err := s.store.Reward(ctx, sessionID, episode, r, decisionlog.SourceFeedback)
	if err != nil {
		return storeErr(err)
	}
	ep := res.Episode
	switch res.Status {
	case RewardApplied:
		eventID := req.EventID
		if eventID == "" {
			eventID = ep.LastEvent
		}
		s.recordRewardFor(c, ep, eventID, r, decisionlog.SourceFeedback, time.Now())
	case RewardRepeated:
		// A retry of the feedback that ended the episode: the same reply, nothing counted.
	case RewardConflict:
		if res.Source == decisionlog.SourceTimeout {
			return httpErr(http.StatusConflict, "episode %d of session %q already ended by the reward timeout (reward 0)", ep.Episode, sessionID)
		}
		return httpErr(http.StatusConflict, "episode %d of session %q already has reward %g; a retry must repeat it", ep.Episode, sessionID, res.Reward)
	case RewardNoSession:
		return httpErr(http.StatusNotFound, "unknown or expired session_id %q", sessionID)
	default:
		return httpErr(http.StatusConflict, "session %q has no episode waiting for a reward", sessionID)
	}
	s.allocMu.Lock()
	s.allocFeedback++
	s.allocMu.Unlock()
	return c.JSON(http.StatusOK, FeedbackResponse{SessionID: sessionID, Arm: ep.Arm, Episode: ep.Episode,
		Steps: ep.Steps, Reward: res.Reward, Success: res.Reward >= bandit.SuccessThreshold})
}

// Arms returns the report of GET /arms.
func (s *Server) Arms(ctx context.Context) (ArmsResponse, error) {
	states, err := s.store.States(ctx, s.names)
	if err != nil {
		return ArmsResponse{}, err
	}
	s.rngMu.Lock()
	pb := bandit.ProbBest(states, s.cfg.Prior, 10000, s.rng)
	s.rngMu.Unlock()
	alloc, err := s.allocation(ctx)
	if err != nil {
		return ArmsResponse{}, err
	}
	out := ArmsResponse{Mode: s.cfg.Mode, Sample: s.cfg.Sample}
	if s.cfg.Mode == ModeThompson {
		out.MinShare = s.cfg.MinShare
	}
	for i, a := range s.arms {
		st := states[i]
		al, be := st.Posterior(s.cfg.Prior)
		rep := ArmReport{Name: a.spec.Name, Dir: a.spec.Dir, Episodes: st.Episodes, Successes: st.Successes,
			MeanScore: st.MeanScore(), ScoreStdErr: st.ScoreStdErr(), SuccessRate: st.SuccessRate(),
			Posterior: Posterior{Alpha: al, Beta: be, Mean: al / (al + be)}, PBest: pb[i], Allocation: alloc[i]}
		a.mu.RLock()
		rep.Loaded = a.policy != nil
		rep.Policy, rep.SHA256, rep.LoadedAt = a.info.Name, a.info.SHA256, a.loadedAt
		if a.loadErr != nil {
			rep.LoadError = a.loadErr.Error()
		}
		a.mu.RUnlock()
		out.Arms = append(out.Arms, rep)
	}
	return out, nil
}

func (s *Server) handleArms(c echo.Context) error {
	r, err := s.Arms(c.Request().Context())
	if err != nil {
		return storeErr(err)
	}
	return c.JSON(http.StatusOK, r)
}

// ReadyResponse is the reply of GET /readyz.
type ReadyResponse struct {
	Ready bool `json:"ready"`
	// Degraded is true while the store serves from local state (OutageLocal).
	Degraded bool            `json:"degraded,omitempty"`
	Error    string          `json:"error,omitempty"`
	Arms     map[string]bool `json:"arms"`
	Store    StoreHealth     `json:"store"`
}

func (s *Server) handleReady(c echo.Context) error {
	r := ReadyResponse{Ready: true, Arms: map[string]bool{}, Store: s.storeHealth()}
	for _, a := range s.arms {
		r.Arms[a.spec.Name] = a.loaded()
	}
	var why []string
	if !s.Ready() {
		why = append(why, "not every arm is loaded")
	}
	switch r.Store.State {
	case StoreUnavailable:
		why = append(why, "the state store is unavailable")
	case StoreLocal:
		r.Degraded = true
	}
	if len(why) > 0 {
		r.Ready, r.Error = false, strings.Join(why, "; ")
		return c.JSON(http.StatusServiceUnavailable, r)
	}
	return c.JSON(http.StatusOK, r)
}

// Reload reloads one arm (name) or every arm (name empty) from disk. An arm whose load
// fails keeps serving its previous policy; the error is in its result.
func (s *Server) Reload(name string) ([]ReloadResult, error) {
	targets := s.arms
	if name != "" {
		a := s.byName[name]
		if a == nil {
			return nil, fmt.Errorf("unknown arm %q", name)
		}
		targets = []*arm{a}
	}
	var out []ReloadResult
	var errs []error
	for _, a := range targets {
		info, err := a.load(s.cfg.Loader)
		r := ReloadResult{Arm: a.spec.Name, OK: err == nil, Policy: info.Name, SHA256: info.SHA256}
		result := "ok"
		if err != nil {
			r.Error = err.Error()
			errs = append(errs, err)
			result = "error"
		}
		s.metrics.reloads.WithLabelValues(a.spec.Name, result).Inc()
		if err != nil {
			s.log.Error("reload failed; the previous policy keeps serving", "arm", a.spec.Name, "dir", a.spec.Dir, "error", err.Error())
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func (s *Server) handleReload(c echo.Context) error {
	if s.cfg.AdminToken == "" {
		return httpErr(http.StatusForbidden, "admin endpoints are disabled (no --admin-token)")
	}
	auth := c.Request().Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.AdminToken)) != 1 {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="shopagent"`)
		return httpErr(http.StatusUnauthorized, "missing or wrong bearer token")
	}
	name := c.QueryParam("arm")
	if name == "" && c.Request().ContentLength != 0 {
		var body struct {
			Arm string `json:"arm"`
		}
		if err := s.decodeBody(c, &body); err != nil {
			return err
		}
		name = body.Arm
	}
	if name != "" && s.byName[name] == nil {
		return httpErr(http.StatusNotFound, "unknown arm %q", name)
	}
	res, err := s.Reload(name)
	if err != nil {
		msg := "reload failed; the previous policy keeps serving: " + err.Error()
		s.logReply(c, http.StatusInternalServerError, CauseReload, msg)
		return c.JSON(http.StatusInternalServerError, map[string]any{"error": msg, "cause": CauseReload, "results": res})
	}
	return c.JSON(http.StatusOK, map[string]any{"results": res})
}

// ---- metrics ----

type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	decisions *prometheus.CounterVec
	rewards   *prometheus.CounterVec
	rewardSum *prometheus.CounterVec
	successes *prometheus.CounterVec
	reloads   *prometheus.CounterVec
	errors    *prometheus.CounterVec
	logErrors prometheus.Counter
}

func newMetrics(arms []string) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shopagent_http_requests_total",
		Help: "HTTP requests by route and status code."}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "shopagent_http_request_duration_seconds",
		Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}, []string{"route"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shopagent_decisions_total",
		Help: "Served /act decisions by arm."}, []string{"arm"})
	m.rewards = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shopagent_rewards_total",
		Help: "Ended episodes by arm and source (feedback or timeout)."}, []string{"arm", "source"})
	m.rewardSum = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shopagent_reward_sum",
		Help: "Sum of the episode rewards by arm."}, []string{"arm"})
	m.successes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shopagent_successes_total",
		Help: "Episodes with reward 1 by arm."}, []string{"arm"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shopagent_reloads_total",
		Help: "Policy reloads by arm and result."}, []string{"arm", "result"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shopagent_http_errors_total",
		Help: "Error replies by route, status code and cause (client for 4xx; store, policy, not_ready, panic, reload, internal for 5xx)."},
		[]string{"route", "code", "cause"})
	m.logErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "shopagent_log_errors_total",
		Help: "Decision and reward rows the decision log refused (the disk did not take them)."})
	m.reg.MustRegister(m.requests, m.latency, m.decisions, m.rewards, m.rewardSum, m.successes, m.reloads, m.errors, m.logErrors,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	for _, a := range arms {
		m.decisions.WithLabelValues(a)
		m.rewardSum.WithLabelValues(a)
	}
	return m
}

// cacheCollector reports the arms' action-encoding caches at scrape time (a reload
// starts a new cache, so its counters start again from 0).
type cacheCollector struct{ s *Server }

var (
	cacheHitsDesc = prometheus.NewDesc("shopagent_action_cache_hits_total",
		"Distinct actions of /act requests whose encoding came from the arm's cache (since its policy loaded).", []string{"arm"}, nil)
	cacheMissesDesc = prometheus.NewDesc("shopagent_action_cache_misses_total",
		"Distinct actions of /act requests encoded afresh (since the arm's policy loaded).", []string{"arm"}, nil)
	cacheEntriesDesc = prometheus.NewDesc("shopagent_action_cache_entries",
		"Actions in the arm's encoding cache.", []string{"arm"}, nil)
	cacheBytesDesc = prometheus.NewDesc("shopagent_action_cache_bytes",
		"Weight of the arm's encoding cache in bytes.", []string{"arm"}, nil)
	batchRequestsDesc = prometheus.NewDesc("shopagent_batch_requests_total",
		"/act requests scored by the arm's dynamic batcher (since its policy loaded; --batch-window).", []string{"arm"}, nil)
	batchesDesc = prometheus.NewDesc("shopagent_batches_total",
		"ONNX Runtime calls the arm's dynamic batcher made (requests / batches = mean batch size).", []string{"arm"}, nil)
)

// Describe implements prometheus.Collector.
func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{cacheHitsDesc, cacheMissesDesc, cacheEntriesDesc, cacheBytesDesc, batchRequestsDesc, batchesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.s.arms {
		if bs, ok := a.batchStats(); ok {
			ch <- prometheus.MustNewConstMetric(batchRequestsDesc, prometheus.CounterValue, float64(bs.Requests), a.spec.Name)
			ch <- prometheus.MustNewConstMetric(batchesDesc, prometheus.CounterValue, float64(bs.Batches), a.spec.Name)
		}
		st, ok := a.actionCache()
		if !ok {
			continue
		}
		n := a.spec.Name
		ch <- prometheus.MustNewConstMetric(cacheHitsDesc, prometheus.CounterValue, float64(st.Hits), n)
		ch <- prometheus.MustNewConstMetric(cacheMissesDesc, prometheus.CounterValue, float64(st.Misses), n)
		ch <- prometheus.MustNewConstMetric(cacheEntriesDesc, prometheus.GaugeValue, float64(st.Entries), n)
		ch <- prometheus.MustNewConstMetric(cacheBytesDesc, prometheus.GaugeValue, float64(st.Bytes), n)
	}
}

func (m *metrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // write the error reply now, so its status is counted
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, strconv.Itoa(c.Response().Status)).Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		return nil
	}
}
