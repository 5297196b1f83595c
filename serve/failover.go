package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"shopagent/bandit"
)

// Outage modes of a FailoverStore: what the server does while Redis is unreachable.
const (
	// OutageLocal serves from the replica's local state: the sessions it has served, the
	// last posteriors it read plus the rewards it counts itself, and new sessions assigned
	// by a hash of their id (so that every replica assigns a new session the same arm);
	// once Redis answers again the local changes are written back (reconciled) before
	// Redis serves again. The default: a recommender front end keeps recommending.
	OutageLocal = "local"
	// OutageFail answers 503 at once (the circuit breaker is open) and /readyz is not
	// ready, so a load balancer sends the traffic elsewhere.
	OutageFail = "fail"
)

// FailoverOptions configure a FailoverStore.
type FailoverOptions struct {
	// Mode is OutageLocal (default) or OutageFail.
	Mode string
	// Failures is the number of consecutive failed Redis commands that opens the circuit
	// breaker in OutageFail mode (default 3); in OutageLocal mode the first failure
	// switches to the local state.
	Failures uint32
	// OpenFor is how long the breaker stays open before one probe may try Redis again
	// (default 1s).
	OpenFor time.Duration
	// ProbeEvery is how often a background probe tries Redis (through the breaker) while
	// it is unreachable (default 200ms), so that recovery needs no traffic.
	ProbeEvery time.Duration
	// SessionTTL and EventTTL of the local state (see NewMemoryStore).
	SessionTTL, EventTTL time.Duration
	// Logger receives one line per outage transition (default slog.Default()).
	Logger *slog.Logger
}

// FailoverStore is a RedisStore behind a circuit breaker (github.com/sony/gobreaker),
// with a local MemoryStore that mirrors what this replica reads and writes and that
// serves during an outage in OutageLocal mode (see there). Reconciliation is exact for
// the posteriors: each episode ended locally is counted in Redis by a script that skips
// episodes Redis has already ended, so an episode counts once however often the
// reconciliation is retried or however many replicas ended it. Sessions and their
// pending episodes are written back as the local state has them (last writer wins across
// replicas: use session affinity at the load balancer for exact sessions).
type FailoverStore struct {
	primary *RedisStore
	local   *MemoryStore
	opts    FailoverOptions
	cb      *gobreaker.CircuitBreaker[any]
	log     *slog.Logger

	// mu is held for reading by every operation and for writing by the switch back
	// from the local state to Redis (after the last reconciliation).
	mu      sync.RWMutex
	isLocal atomic.Bool

	smu     sync.Mutex
	since   time.Time
	lastErr string

	// Local changes to reconcile.
	dmu      sync.Mutex
	sessions map[string]bool
	events   map[string]EventRef
	ended    map[string]bool // episodeKey

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

var _ Store = (*FailoverStore)(nil)

// NewFailoverStore wraps a connected RedisStore and starts its background probe.
func NewFailoverStore(primary *RedisStore, o FailoverOptions) (*FailoverStore, error) {
	if o.Mode == "" {
		o.Mode = OutageLocal
	}
	if o.Mode != OutageLocal && o.Mode != OutageFail {
		return nil, fmt.Errorf("serve: unknown store outage mode %q (want %s or %s)", o.Mode, OutageLocal, OutageFail)
	}
	if o.Failures == 0 {
		o.Failures = 3
	}
	if o.OpenFor <= 0 {
		o.OpenFor = time.Second
	}
	if o.ProbeEvery <= 0 {
		o.ProbeEvery = 200 * time.Millisecond
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = primary.sessionTTL
	}
	if o.EventTTL <= 0 {
		o.EventTTL = primary.eventTTL
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	f := &FailoverStore{primary: primary, local: NewMemoryStore(o.SessionTTL, o.EventTTL), opts: o, log: o.Logger,
		sessions: map[string]bool{}, events: map[string]EventRef{}, ended: map[string]bool{},
		stop: make(chan struct{}), done: make(chan struct{}), since: time.Now()}
	trip := o.Failures
	if o.Mode == OutageLocal {
		trip = 1
	}
	f.cb = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        "redis",
		MaxRequests: 1,
		Timeout:     o.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= trip },
		// Only an unreachable store counts against it (not a malformed value).
		IsSuccessful: func(err error) bool { return err == nil || !errors.Is(err, ErrStoreUnavailable) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			f.smu.Lock()
			f.since = time.Now()
			last := f.lastErr
			f.smu.Unlock()
			lvl := slog.LevelWarn
			if to == gobreaker.StateClosed {
				lvl = slog.LevelInfo
			}
			f.log.Log(context.Background(), lvl, "store breaker", "store", "redis", "from", from.String(), "to", to.String(),
				"mode", o.Mode, "last_error", last)
		},
	})
	go f.probe()
	return f, nil
}

// Mode returns the outage mode.
func (f *FailoverStore) Mode() string { return f.opts.Mode }

// viaBreaker runs a Redis command through the breaker.
func viaBreaker[T any](f *FailoverStore, op func() (T, error)) (T, error) {
	v, err := f.cb.Execute(func() (any, error) { return op() })
	if err != nil {
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			err = fmt.Errorf("serve: redis: %w (circuit breaker %s)", ErrStoreUnavailable, f.cb.State())
		} else if errors.Is(err, ErrStoreUnavailable) {
			f.smu.Lock()
			f.lastErr = err.Error()
			f.smu.Unlock()
		}
		var zero T
		return zero, err
	}
	if v == nil {
		var zero T
		return zero, nil
	}
	return v.(T), nil
}

// fallBack reports whether an operation that failed with err should run locally, and
// switches to the local state when it should.
func (f *FailoverStore) fallBack(err error) bool {
	if f.opts.Mode != OutageLocal || !errors.Is(err, ErrStoreUnavailable) {
		return false
	}
	if f.isLocal.CompareAndSwap(false, true) {
		f.smu.Lock()
		f.since = time.Now()
		f.smu.Unlock()
		f.log.Warn("store outage: serving from local state", "store", "redis", "mode", OutageLocal, "error", err.Error())
	}
	return true
}

// outage wraps a local miss: during an outage this replica cannot tell.
func outage(what string) error {
	return fmt.Errorf("serve: %s is not known to this replica and the shared store is unreachable; retry later: %w", what, ErrStoreUnavailable)
}

type sessionResult struct {
	s  Session
	ok bool
}

// Session implements Store.
func (f *FailoverStore) Session(ctx context.Context, id string) (Session, bool, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if !f.isLocal.Load() {
		r, err := viaBreaker(f, func() (sessionResult, error) {
			s, ok, err := f.primary.Session(ctx, id)
			return sessionResult{s, ok}, err
		})
		if !f.fallBack(err) {
			return r.s, r.ok, err
		}
	}
	return f.local.Session(ctx, id)
}

// Assign implements Store.
func (f *FailoverStore) Assign(ctx context.Context, id, arm string, propensity float64) (Session, bool, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if !f.isLocal.Load() {
		r, err := viaBreaker(f, func() (sessionResult, error) {
			s, ok, err := f.primary.Assign(ctx, id, arm, propensity)
			return sessionResult{s, ok}, err
		})
		if err == nil {
			f.local.putSession(r.s, false, time.Time{})
			return r.s, r.ok, nil
		}
		if !f.fallBack(err) {
			return Session{}, false, err
		}
	}
	s, ok, err := f.local.Assign(ctx, id, arm, propensity)
	if err == nil {
		f.dirtySession(id)
	}
	return s, ok, err
}

// Decide implements Store.
func (f *FailoverStore) Decide(ctx context.Context, id, eventID string, deadline time.Time) (Session, bool, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if !f.isLocal.Load() {
		r, err := viaBreaker(f, func() (sessionResult, error) {
			s, ok, err := f.primary.Decide(ctx, id, eventID, deadline)
			return sessionResult{s, ok}, err
		})
		if err == nil {
			if r.ok {
				f.local.putSession(r.s, true, deadline)
				f.local.putEvent(eventID, EventRef{SessionID: id, Arm: r.s.Arm, Episode: r.s.Episode})
			}
			return r.s, r.ok, nil
		}
		if !f.fallBack(err) {
			return Session{}, false, err
		}
	}
	s, ok, err := f.local.Decide(ctx, id, eventID, deadline)
	if err == nil && ok {
		f.dmu.Lock()
		f.sessions[id] = true
		f.events[eventID] = EventRef{SessionID: id, Arm: s.Arm, Episode: s.Episode}
		f.dmu.Unlock()
	}
	return s, ok, err
}

// Event implements Store.
func (f *FailoverStore) Event(ctx context.Context, eventID string) (EventRef, bool, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	type res struct {
		ref EventRef
		ok  bool
	}
	if !f.isLocal.Load() {
		r, err := viaBreaker(f, func() (res, error) {
			ref, ok, err := f.primary.Event(ctx, eventID)
			return res{ref, ok}, err
		})
		if !f.fallBack(err) {
			return r.ref, r.ok, err
		}
	}
	ref, ok, err := f.local.Event(ctx, eventID)
	if err == nil && !ok {
		return EventRef{}, false, outage(fmt.Sprintf("event %q", eventID))
	}
	return ref, ok, err
}

// Reward implements Store.
func (f *FailoverStore) Reward(ctx context.Context, id string, episode int64, reward float64, source string) (RewardResult, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if !f.isLocal.Load() {
		r, err := viaBreaker(f, func() (RewardResult, error) { return f.primary.Reward(ctx, id, episode, reward, source) })
		if err == nil {
			if r.Status == RewardApplied {
				f.local.putEnded(r.Episode, reward, source)
			}
			return r, nil
		}
		if !f.fallBack(err) {
			return RewardResult{}, err
		}
	}
	r, err := f.local.Reward(ctx, id, episode, reward, source)
	if err != nil {
		return r, err
	}
	switch r.Status {
	case RewardApplied:
		f.dirtyEnded(r.Episode)
	case RewardNoSession, RewardNoEpisode:
		return RewardResult{}, outage(fmt.Sprintf("the episode of session %q", id))
	}
	return r, nil
}

// Expired implements Store.
func (f *FailoverStore) Expired(ctx context.Context, now time.Time, max int) ([]EndedEpisode, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if !f.isLocal.Load() {
		eps, err := viaBreaker(f, func() ([]EndedEpisode, error) { return f.primary.Expired(ctx, now, max) })
		if err == nil {
			for _, ep := range eps {
				f.local.putEnded(ep, 0, "timeout")
			}
			f.local.prune(now)
			return eps, nil
		}
		if !f.fallBack(err) {
			return eps, err
		}
	}
	eps, err := f.local.Expired(ctx, now, max)
	for _, ep := range eps {
		f.dirtyEnded(ep)
	}
	return eps, err
}

// States implements Store.
func (f *FailoverStore) States(ctx context.Context, arms []string) ([]bandit.ArmState, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if !f.isLocal.Load() {
		st, err := viaBreaker(f, func() ([]bandit.ArmState, error) { return f.primary.States(ctx, arms) })
		if err == nil {
			f.local.setStates(st)
			return st, nil
		}
		if !f.fallBack(err) {
			return nil, err
		}
	}
	return f.local.States(ctx, arms)
}

func (f *FailoverStore) unreconciled() int {
	f.dmu.Lock()
	defer f.dmu.Unlock()
	return len(f.sessions) + len(f.ended) + len(f.events)
}

func (f *FailoverStore) dirtySession(id string) {
	f.dmu.Lock()
	f.sessions[id] = true
	f.dmu.Unlock()
}

func (f *FailoverStore) dirtyEnded(ep EndedEpisode) {
	f.dmu.Lock()
	f.sessions[ep.SessionID] = true
	f.ended[episodeKey(ep.SessionID, ep.Episode)] = true
	f.dmu.Unlock()
}

// Health implements healthReporter.
func (f *FailoverStore) Health() StoreHealth {
	// The breaker calls OnStateChange with its lock held, and that takes smu: never ask
	// the breaker while holding smu.
	cbState := f.cb.State()
	f.smu.Lock()
	h := StoreHealth{Backend: "redis", State: StoreOK, Breaker: cbState.String(), Since: f.since, Error: f.lastErr}
	f.smu.Unlock()
	switch {
	case f.isLocal.Load():
		h.State = StoreLocal
	case cbState != gobreaker.StateClosed:
		h.State = StoreUnavailable
	}
	if h.State == StoreOK {
		h.Error = ""
	}
	f.dmu.Lock()
	h.Unreconciled = len(f.sessions) + len(f.ended) + len(f.events)
	f.dmu.Unlock()
	return h
}

// probe tries Redis while it is unreachable: through the breaker (so at most one probe
// per OpenFor), a PING, then in the local state the reconciliation.
func (f *FailoverStore) probe() {
	defer close(f.done)
	t := time.NewTicker(f.opts.ProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		if !f.isLocal.Load() && f.cb.State() == gobreaker.StateClosed {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		_, err := viaBreaker(f, func() (any, error) {
			if err := f.primary.pingBulk(ctx); err != nil {
				return nil, err
			}
			if f.isLocal.Load() {
				return nil, f.reconcile(ctx)
			}
			return nil, nil
		})
		cancel()
		if err != nil {
			continue
		}
	}
}

// reconcile writes the local changes back to Redis and, once none is left, switches
// back to Redis.
func (f *FailoverStore) reconcile(ctx context.Context) error {
	t := time.Now()
	counted, skipped, sessions := 0, 0, 0
	for pass := 0; ; pass++ {
		// The final pass runs with every operation held off: first write back without
		// holding them off until little is left.
		last := pass > 0 && (pass >= 20 || f.unreconciled() <= 100)
		if last {
			f.mu.Lock()
		}
		c, s, n, err := f.reconcileOnce(ctx)
		counted, skipped, sessions = counted+c, skipped+s, sessions+n
		if err != nil {
			if last {
				f.mu.Unlock()
			}
			return err
		}
		if last {
			f.isLocal.Store(false)
			f.smu.Lock()
			f.since = time.Now()
			f.lastErr = ""
			f.smu.Unlock()
			f.mu.Unlock()
			f.log.Info("store recovered: local state written back", "store", "redis", "episodes_counted", counted,
				"episodes_already_counted", skipped, "sessions", sessions, "took_ms", time.Since(t).Milliseconds())
			return nil
		}
	}
}

// reconcileOnce writes back the local changes recorded so far, in batches: ended
// episodes first (each counted once), then sessions, then events. What is not written
// back stays recorded for the next try.
func (f *FailoverStore) reconcileOnce(ctx context.Context) (counted, skipped, sessions int, err error) {
	f.dmu.Lock()
	ended, sess, events := f.ended, f.sessions, f.events
	f.ended, f.sessions, f.events = map[string]bool{}, map[string]bool{}, map[string]EventRef{}
	f.dmu.Unlock()
	defer func() {
		// Put back whatever was not written (all of it after an error).
		f.dmu.Lock()
		for k := range ended {
			f.ended[k] = true
		}
		for k := range sess {
			f.sessions[k] = true
		}
		for k, v := range events {
			f.events[k] = v
		}
		f.dmu.Unlock()
	}()
	var batch []memDone
	var keys []string
	flushEnded := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := f.primary.reconcileRewards(ctx, batch)
		if err != nil {
			return err
		}
		counted, skipped = counted+n, skipped+len(batch)-n
		for _, k := range keys {
			delete(ended, k)
		}
		batch, keys = batch[:0], keys[:0]
		return nil
	}
	for k := range ended {
		id, ep := splitEpisodeKey(k)
		if d, ok := f.local.doneRecord(id, ep); ok {
			batch = append(batch, d)
		}
		keys = append(keys, k)
		if len(keys) == reconcileBatch {
			if err := flushEnded(); err != nil {
				return counted, skipped, sessions, err
			}
		}
	}
	if err := flushEnded(); err != nil {
		return counted, skipped, sessions, err
	}
	var sb []localSession
	var ids []string
	flushSessions := func() error {
		if len(sb) > 0 {
			if err := f.primary.reconcileSessions(ctx, sb); err != nil {
				return err
			}
			sessions += len(sb)
		}
		for _, id := range ids {
			delete(sess, id)
		}
		sb, ids = sb[:0], ids[:0]
		return nil
	}
	for id := range sess {
		if s, pending, deadline, ok := f.local.sessionState(id); ok {
			sb = append(sb, localSession{s: s, pending: pending, deadline: deadline})
		}
		ids = append(ids, id)
		if len(ids) == reconcileBatch {
			if err := flushSessions(); err != nil {
				return counted, skipped, sessions, err
			}
		}
	}
	if err := flushSessions(); err != nil {
		return counted, skipped, sessions, err
	}
	if len(events) > 0 {
		if err := f.primary.reconcileEvents(ctx, events); err != nil {
			return counted, skipped, sessions, err
		}
		events = map[string]EventRef{}
	}
	return counted, skipped, sessions, nil
}

// Close stops the probe and closes Redis.
func (f *FailoverStore) Close() error {
	f.stopOnce.Do(func() { close(f.stop) })
	<-f.done
	return f.primary.Close()
}
