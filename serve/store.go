package serve

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"shopagent/bandit"
	"shopagent/serve/decisionlog"
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

// RewardStatus is the outcome of Store.Reward.
type RewardStatus int

// Outcomes of Store.Reward.
const (
	// RewardApplied: this call ended the episode and added the reward to the arm.
	RewardApplied RewardStatus = iota
	// RewardRepeated: the episode had already ended by feedback with the same reward; the
	// call is a retry and changes nothing.
	RewardRepeated
	// RewardConflict: the episode had already ended with another reward, or by timeout.
	RewardConflict
	// RewardNoEpisode: the session is known but no such episode waits for a reward, nor
	// has ended recently.
	RewardNoEpisode
	// RewardNoSession: the session is unknown or expired.
	RewardNoSession
)

// RewardResult is what Store.Reward did.
type RewardResult struct {
	Status RewardStatus
	// Episode is the ended episode (all statuses but RewardNoEpisode).
	Episode EndedEpisode
	// Reward and Source are what ended the episode (the call's own when RewardApplied).
	Reward float64
	Source string
}

// ErrStoreUnavailable is wrapped by the errors of a store that cannot reach its backend.
var ErrStoreUnavailable = errors.New("state store unavailable")

// Store keeps the shared state of the server: per-arm reward statistics (the bandit's
// posteriors), sessions with their sticky arms and pending episodes, the event ids of
// recent decisions and the rewards of recently ended episodes. MemoryStore keeps it in
// process; RedisStore in Redis, shared by replicas; FailoverStore in Redis with a local
// fallback. Methods are safe for concurrent use.
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
	// Reward ends the session's episode (episode, or the current one when episode < 0)
	// with reward from source and adds the reward to the arm's statistics, in one atomic
	// step; each episode ends exactly once. An episode that already ended is reported
	// (RewardRepeated or RewardConflict) and nothing changes. For the current episode
	// (episode < 0) of a session with no episode waiting, the last ended one is reported.
	Reward(ctx context.Context, id string, episode int64, reward float64, source string) (RewardResult, error)
	// Expired ends (at most max of) the episodes whose reward deadline passed before now
	// with reward 0 (source timeout), each exactly once across every server sharing the
	// store, and returns them.
	Expired(ctx context.Context, now time.Time, max int) ([]EndedEpisode, error)
	// States returns the statistics of the arms, in order.
	States(ctx context.Context, arms []string) ([]bandit.ArmState, error)
	// Close releases the store.
	Close() error
}

// StoreHealth describes a store's backend.
type StoreHealth struct {
	// Backend is "memory" or "redis".
	Backend string `json:"backend"`
	// State is "ok"; "local" when a FailoverStore serves from its local state during an
	// outage of its backend; "unavailable" when requests that need the store fail.
	State string `json:"state"`
	// Breaker is the circuit breaker's state (closed, half-open, open), if any.
	Breaker string `json:"breaker,omitempty"`
	// Since is when State began; Error the last backend error.
	Since time.Time `json:"since,omitzero"`
	Error string    `json:"error,omitempty"`
	// Unreconciled counts the sessions and arms changed locally during an outage that
	// are not yet written back.
	Unreconciled int `json:"unreconciled,omitempty"`
}

// Store health states.
const (
	StoreOK          = "ok"
	StoreLocal       = "local"
	StoreUnavailable = "unavailable"
)

// healthReporter is implemented by stores that can be unhealthy.
type healthReporter interface {
	Health() StoreHealth
}

// MemoryStore is the in-process Store. Expired sessions and events are dropped lazily
// and by Expired, which scans every session (fine for up to ~10^5 live sessions).
type MemoryStore struct {
	sessionTTL, eventTTL time.Duration
	now                  func() time.Time

	mu       sync.Mutex
	sessions map[string]*memSession
	events   map[string]memEvent
	done     map[string]memDone
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

// memDone is the record of an ended episode, kept for retries of its feedback.
type memDone struct {
	ep      EndedEpisode
	reward  float64
	source  string
	expires time.Time
}

// NewMemoryStore returns an in-process store; sessions expire sessionTTL after their
// last decision, event ids and the records of ended episodes eventTTL after theirs.
func NewMemoryStore(sessionTTL, eventTTL time.Duration) *MemoryStore {
	return &MemoryStore{sessionTTL: sessionTTL, eventTTL: eventTTL, now: time.Now,
		sessions: map[string]*memSession{}, events: map[string]memEvent{}, done: map[string]memDone{},
		arms: map[string]*bandit.ArmState{}}
}

func episodeKey(id string, episode int64) string { return id + "\n" + strconv.FormatInt(episode, 10) }

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

// end ends s's pending episode with reward: the arm's statistics and the done record.
func (m *MemoryStore) end(s *memSession, reward float64, source string) EndedEpisode {
	ep := EndedEpisode{SessionID: s.ID, Arm: s.Arm, LastEvent: s.LastEvent, Episode: s.Episode, Steps: s.Steps}
	s.pending = false
	s.Episode++
	s.Steps = 0
	m.observe(ep.Arm, reward)
	m.done[episodeKey(ep.SessionID, ep.Episode)] = memDone{ep: ep, reward: reward, source: source, expires: m.now().Add(m.eventTTL)}
	return ep
}

func (m *MemoryStore) observe(arm string, reward float64) {
	a := m.arms[arm]
	if a == nil {
		a = &bandit.ArmState{Name: arm}
		m.arms[arm] = a
	}
	a.Observe(reward)
}

// doneResult reports an ended episode's record to a reward for it.
func doneResult(d memDone, reward float64, source string) RewardResult {
	st := RewardConflict
	if d.source == decisionlog.SourceFeedback && source == decisionlog.SourceFeedback && d.reward == reward {
		st = RewardRepeated
	}
	return RewardResult{Status: st, Episode: d.ep, Reward: d.reward, Source: d.source}
}

// Reward implements Store.
func (m *MemoryStore) Reward(_ context.Context, id string, episode int64, reward float64, source string) (RewardResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.live(id)
	if s != nil && s.pending && (episode < 0 || episode == s.Episode) {
		ep := m.end(s, reward, source)
		return RewardResult{Status: RewardApplied, Episode: ep, Reward: reward, Source: source}, nil
	}
	if episode < 0 {
		if s == nil {
			return RewardResult{Status: RewardNoSession}, nil
		}
		episode = s.Episode - 1
	}
	if d, ok := m.done[episodeKey(id, episode)]; ok && !m.now().After(d.expires) {
		return doneResult(d, reward, source), nil
	}
	if s == nil {
		return RewardResult{Status: RewardNoSession}, nil
	}
	return RewardResult{Status: RewardNoEpisode}, nil
}

// Expired implements Store.
func (m *MemoryStore) Expired(_ context.Context, now time.Time, max int) ([]EndedEpisode, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []EndedEpisode
	for id, s := range m.sessions {
		if s.pending && now.After(s.deadline) {
			if len(out) < max {
				out = append(out, m.end(s, 0, decisionlog.SourceTimeout))
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
	for k, d := range m.done {
		if now.After(d.expires) {
			delete(m.done, k)
		}
	}
	return out, nil
}

// Observe adds a rewarded episode to the arm's statistics (without a session: tests and
// tools).
func (m *MemoryStore) Observe(arm string, reward float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.observe(arm, reward)
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

// Health implements healthReporter: a memory store is always healthy.
func (m *MemoryStore) Health() StoreHealth { return StoreHealth{Backend: "memory", State: StoreOK} }

// Close implements Store.
func (m *MemoryStore) Close() error { return nil }

// ---- the local mirror of a FailoverStore ----

// putSession sets a session's state as another store reported it.
func (m *MemoryStore) putSession(s Session, pending bool, deadline time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[s.ID] = &memSession{Session: s, expires: m.now().Add(m.sessionTTL), pending: pending, deadline: deadline}
}

// putEvent remembers an event as another store reported it.
func (m *MemoryStore) putEvent(eventID string, ref EventRef) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events[eventID] = memEvent{ref: ref, expires: m.now().Add(m.eventTTL)}
}

// putEnded records an episode ended by another store: the session moves to the next
// episode and the done record is kept (the arm's statistics are set by setStates).
func (m *MemoryStore) putEnded(ep EndedEpisode, reward float64, source string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sessions[ep.SessionID]; s != nil && s.Episode == ep.Episode {
		s.pending = false
		s.Episode++
		s.Steps = 0
	}
	m.done[episodeKey(ep.SessionID, ep.Episode)] = memDone{ep: ep, reward: reward, source: source, expires: m.now().Add(m.eventTTL)}
}

// prune drops what expired before now, pending or not (the mirror of a FailoverStore,
// whose episodes the backend ends).
func (m *MemoryStore) prune(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, s := range m.sessions {
		if now.After(s.expires) {
			delete(m.sessions, id)
		}
	}
	for id, e := range m.events {
		if now.After(e.expires) {
			delete(m.events, id)
		}
	}
	for k, d := range m.done {
		if now.After(d.expires) {
			delete(m.done, k)
		}
	}
}

// setStates replaces the arms' statistics.
func (m *MemoryStore) setStates(states []bandit.ArmState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, st := range states {
		c := st
		m.arms[st.Name] = &c
	}
}

// sessionState returns a session with its pending flag and deadline.
func (m *MemoryStore) sessionState(id string) (Session, bool, time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if s == nil {
		return Session{}, false, time.Time{}, false
	}
	return s.Session, s.pending, s.deadline, true
}

// doneRecord returns the record of an ended episode.
func (m *MemoryStore) doneRecord(id string, episode int64) (memDone, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.done[episodeKey(id, episode)]
	return d, ok
}

// ---- rebuilding from the logs ----

// RebuildStats counts what Rebuild restored.
type RebuildStats struct {
	Rewards, Sessions, Pending, Events int
}

// Rebuild restores the store from decision and reward logs (a server without Redis
// restarting after a crash): every reward row counts in its arm's statistics; sessions
// whose last decision is within the session TTL of now come back with their arm, arm
// propensity, episode and steps, their episode pending until the last decision plus
// rewardTimeout unless a reward row ended it; events and the rewards of ended episodes
// within the event TTL come back too. Call it before serving.
func (m *MemoryStore) Rebuild(decisions []decisionlog.DecisionKey, rewards []decisionlog.RewardRow, now time.Time, rewardTimeout time.Duration) RebuildStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	var st RebuildStats
	ended := map[string]decisionlog.RewardRow{}
	for _, r := range rewards {
		m.observe(r.Arm, r.Reward)
		st.Rewards++
		ended[episodeKey(r.SessionID, r.Episode)] = r
	}
	sort.Slice(decisions, func(i, j int) bool {
		a, b := decisions[i], decisions[j]
		if a.SessionID != b.SessionID {
			return a.SessionID < b.SessionID
		}
		if a.Episode != b.Episode {
			return a.Episode < b.Episode
		}
		return a.Step < b.Step
	})
	for i, d := range decisions {
		if now.Sub(d.TS) <= m.eventTTL {
			m.events[d.EventID] = memEvent{ref: EventRef{SessionID: d.SessionID, Arm: d.Arm, Episode: d.Episode}, expires: d.TS.Add(m.eventTTL)}
			st.Events++
		}
		if i+1 < len(decisions) && decisions[i+1].SessionID == d.SessionID {
			continue // not the session's last decision
		}
		if now.Sub(d.TS) > m.sessionTTL {
			continue
		}
		s := &memSession{Session: Session{ID: d.SessionID, Arm: d.Arm, ArmPropensity: d.ArmPropensity,
			Episode: d.Episode, Steps: d.Step + 1, LastEvent: d.EventID}, expires: d.TS.Add(m.sessionTTL)}
		if _, done := ended[episodeKey(d.SessionID, d.Episode)]; done {
			s.Episode++
			s.Steps = 0
		} else {
			s.pending, s.deadline = true, d.TS.Add(rewardTimeout)
			st.Pending++
		}
		m.sessions[d.SessionID] = s
		st.Sessions++
	}
	for k, r := range ended {
		if now.Sub(r.TS) <= m.eventTTL {
			m.done[k] = memDone{ep: EndedEpisode{SessionID: r.SessionID, Arm: r.Arm, LastEvent: r.EventID, Episode: r.Episode, Steps: r.Steps},
				reward: r.Reward, source: r.Source, expires: r.TS.Add(m.eventTTL)}
		}
	}
	return st
}

// splitEpisodeKey splits an episodeKey.
func splitEpisodeKey(k string) (string, int64) {
	i := strings.LastIndexByte(k, '\n')
	ep, _ := strconv.ParseInt(k[i+1:], 10, 64)
	return k[:i], ep
}

// RebuildFromLogs restores the store from the decision and reward logs under dir (see
// Rebuild): every reward file, and the decision files of the dates within the session and
// event TTLs of now. Open the logs with decisionlog.Open first: it recovers what a crash
// left in the WAL.
func (m *MemoryStore) RebuildFromLogs(dir string, now time.Time, rewardTimeout time.Duration) (RebuildStats, error) {
	rews, err := decisionlog.ReadRewards(dir)
	if err != nil {
		return RebuildStats{}, fmt.Errorf("serve: rebuild from logs: %w", err)
	}
	keys, err := decisionlog.ReadDecisionKeys(dir, now.Add(-max(m.sessionTTL, m.eventTTL)))
	if err != nil {
		return RebuildStats{}, fmt.Errorf("serve: rebuild from logs: %w", err)
	}
	return m.Rebuild(keys, rews, now, rewardTimeout), nil
}
