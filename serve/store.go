package serve

import (
	"context"
	"sync"
	"time"

	"shopagent/bandit"
)

// Session is the server's record of one session: its sticky arm and the episode it is in.
// A session's episode ends with its reward (POST /feedback, or reward 0 when no reward
// came within the reward timeout); the next decision of the session starts the next
// episode on the same arm.
type Session struct {
	ID string
	// Arm is the session's sticky arm.
	Arm string
	// ArmPropensity is the probability with which the arm was chosen for the session (1
	// when the client asked for the arm).
	ArmPropensity float64
	// Episode counts the session's ended episodes (the current episode's number).
	Episode int64
	// Steps counts the decisions of the current episode.
	Steps int64
	// LastEvent is the event id of the session's last decision.
	LastEvent string
}

// EventRef is what the store remembers of a decision event: its session and episode.
type EventRef struct {
	SessionID string
	Arm       string
	Episode   int64
}

// EndedEpisode is an episode closed by a reward or by the reward timeout.
type EndedEpisode struct {
	SessionID, Arm, LastEvent string
	Episode, Steps            int64
}

// Store keeps the shared state of the server: per-arm reward statistics (the bandit's
// posteriors), sessions with their sticky arms and pending episodes, and the event ids of
// recent decisions. MemoryStore keeps it in process; RedisStore in Redis, shared by
// replicas. Methods are safe for concurrent use.
type Store interface {
	// Session returns the session, ok false when it is unknown or expired.
	Session(ctx context.Context, id string) (s Session, ok bool, err error)
	// Assign gives an unassigned (unknown or expired) session the arm; when the session
	// already has an arm (a concurrent request or another replica won) that one is
	// returned and assigned is false.
	Assign(ctx context.Context, id, arm string, propensity float64) (s Session, assigned bool, err error)
	// Decide records a decision of the session's current episode: it increments Steps,
	// remembers the event, refreshes the session's TTL and marks the episode as waiting
	// for its reward until deadline. It returns the session after the update (the
	// decision's step index is Steps-1). ok is false when the session is unknown.
	Decide(ctx context.Context, id, eventID string, deadline time.Time) (s Session, ok bool, err error)
	// Event returns the session and episode of an event id, ok false when unknown or expired.
	Event(ctx context.Context, eventID string) (ref EventRef, ok bool, err error)
	// Finish ends the session's episode if it waits for its reward (and is episode, when
	// episode >= 0); ok is false when there is none. Each episode ends exactly once.
	Finish(ctx context.Context, id string, episode int64) (ep EndedEpisode, ok bool, err error)
	// Expired ends (at most max of) the episodes whose reward deadline passed before now,
	// each exactly once across every server sharing the store.
	Expired(ctx context.Context, now time.Time, max int) ([]EndedEpisode, error)
	// Observe adds a rewarded episode to the arm's statistics.
	Observe(ctx context.Context, arm string, reward float64) error
	// States returns the statistics of the arms, in order.
	States(ctx context.Context, arms []string) ([]bandit.ArmState, error)
	// Close releases the store.
	Close() error
}

// MemoryStore is the in-process Store. Expired sessions and events are dropped lazily
// and by Expired, which scans every session (fine for up to ~10^5 live sessions).
type MemoryStore struct {
	sessionTTL, eventTTL time.Duration
	now                  func() time.Time

	mu       sync.Mutex
	sessions map[string]*memSession
	events   map[string]memEvent
	arms     map[string]*bandit.ArmState
}

type memSession struct {
	Session
	expires  time.Time
	pending  bool
	deadline time.Time
}

type memEvent struct {
	ref     EventRef
	expires time.Time
}

// NewMemoryStore returns an in-process store; sessions expire sessionTTL after their
// last decision and event ids eventTTL after theirs.
func NewMemoryStore(sessionTTL, eventTTL time.Duration) *MemoryStore {
	return &MemoryStore{sessionTTL: sessionTTL, eventTTL: eventTTL, now: time.Now,
		sessions: map[string]*memSession{}, events: map[string]memEvent{}, arms: map[string]*bandit.ArmState{}}
}

func (m *MemoryStore) live(id string) *memSession {
	s := m.sessions[id]
	if s == nil {
		return nil
	}
	if !s.pending && m.now().After(s.expires) {
		delete(m.sessions, id)
		return nil
	}
	return s
}

// Session implements Store.
func (m *MemoryStore) Session(_ context.Context, id string) (Session, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.live(id); s != nil {
		return s.Session, true, nil
	}
	return Session{}, false, nil
}

// Assign implements Store.
func (m *MemoryStore) Assign(_ context.Context, id, arm string, propensity float64) (Session, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.live(id); s != nil {
		return s.Session, false, nil
	}
	s := &memSession{Session: Session{ID: id, Arm: arm, ArmPropensity: propensity}, expires: m.now().Add(m.sessionTTL)}
	m.sessions[id] = s
	return s.Session, true, nil
}

// Decide implements Store.
func (m *MemoryStore) Decide(_ context.Context, id, eventID string, deadline time.Time) (Session, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.live(id)
	if s == nil {
		return Session{}, false, nil
	}
	now := m.now()
	s.Steps++
	s.LastEvent = eventID
	s.pending, s.deadline = true, deadline
	s.expires = now.Add(m.sessionTTL)
	m.events[eventID] = memEvent{ref: EventRef{SessionID: id, Arm: s.Arm, Episode: s.Episode}, expires: now.Add(m.eventTTL)}
	return s.Session, true, nil
}

// Event implements Store.
func (m *MemoryStore) Event(_ context.Context, eventID string) (EventRef, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.events[eventID]
	if !ok {
		return EventRef{}, false, nil
	}
	if m.now().After(e.expires) {
		delete(m.events, eventID)
		return EventRef{}, false, nil
	}
	return e.ref, true, nil
}

func (m *MemoryStore) finish(s *memSession) EndedEpisode {
	ep := EndedEpisode{SessionID: s.ID, Arm: s.Arm, LastEvent: s.LastEvent, Episode: s.Episode, Steps: s.Steps}
	s.pending = false
	s.Episode++
	s.Steps = 0
	return ep
}

// Finish implements Store.
func (m *MemoryStore) Finish(_ context.Context, id string, episode int64) (EndedEpisode, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.live(id)
	if s == nil || !s.pending || (episode >= 0 && episode != s.Episode) {
		return EndedEpisode{}, false, nil
	}
	return m.finish(s), true, nil
}

// Expired implements Store.
func (m *MemoryStore) Expired(_ context.Context, now time.Time, max int) ([]EndedEpisode, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []EndedEpisode
	for id, s := range m.sessions {
		if s.pending && now.After(s.deadline) {
			if len(out) < max {
				out = append(out, m.finish(s))
			}
			continue
		}
		if !s.pending && now.After(s.expires) {
			delete(m.sessions, id)
		}
	}
	for id, e := range m.events {
		if now.After(e.expires) {
			delete(m.events, id)
		}
	}
	return out, nil
}

// Observe implements Store.
func (m *MemoryStore) Observe(_ context.Context, arm string, reward float64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.arms[arm]
	if a == nil {
		a = &bandit.ArmState{Name: arm}
		m.arms[arm] = a
	}
	a.Observe(reward)
	return nil
}

// States implements Store.
func (m *MemoryStore) States(_ context.Context, arms []string) ([]bandit.ArmState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]bandit.ArmState, len(arms))
	for i, name := range arms {
		if a := m.arms[name]; a != nil {
			out[i] = *a
		} else {
			out[i] = bandit.ArmState{Name: name}
		}
	}
	return out, nil
}

// Close implements Store.
func (m *MemoryStore) Close() error { return nil }
