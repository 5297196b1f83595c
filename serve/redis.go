package serve

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"shopagent/bandit"
	"shopagent/serve/decisionlog"
)

// DefaultRedisTimeout bounds each Redis round trip (dial, read, write, waiting for a
// pooled connection): Redis answers in well under a millisecond on a LAN, so a request
// that waits this long is talking to a dead or hung server.
const DefaultRedisTimeout = 100 * time.Millisecond

// ReconcileTimeout bounds one batch of a FailoverStore's write back (up to
// reconcileBatch episodes or sessions in one script).
const ReconcileTimeout = 5 * time.Second

// reconcileBatch is the number of episodes, sessions or events written back per round trip.
const reconcileBatch = 500

// RedisOptions configure a RedisStore.
type RedisOptions struct {
	// URL is redis://[:password@]host:port/db.
	URL string
	// Prefix prefixes every key (default "shopagent:").
	Prefix string
	// SessionTTL and EventTTL: see NewMemoryStore.
	SessionTTL, EventTTL time.Duration
	// Timeout bounds every dial, read, write and pool wait (default DefaultRedisTimeout).
	// Commands are not retried: a failed command is the caller's to handle (the circuit
	// breaker of a FailoverStore).
	Timeout time.Duration
}

// RedisStore keeps the server's state in Redis so that replicas share one posterior and
// one session map. Keys (prefix P, default "shopagent:"):
//
//	P arm:NAME        hash episodes, successes (HINCRBY), score_sum, score_sq_sum (HINCRBYFLOAT)
//	P session:ID      hash arm, arm_propensity, episode, steps, last_event; PEXPIRE session TTL
//	P event:ID        string "SESSION\nEPISODE\nARM"; PEXPIRE event TTL
//	P pending         sorted set of "SESSION\nEPISODE" scored by the reward deadline (unix ms)
//	P done:SESSION\nEPISODE  string "SOURCE\nREWARD\nARM\nSTEPS\nLAST_EVENT"; PEXPIRE event TTL
//	P applied:ID      marks a reconciled batch of a FailoverStore (see there)
//
// An episode ends exactly once, in one Lua script: whoever removes its member from P
// pending (ZREM returns 1) advances the session's episode, adds the reward to the arm's
// hash and writes the done record, which later rewards for the episode are compared with.
// Single Redis instance (the scripts touch keys they compute; not Redis Cluster).
type RedisStore struct {
	rdb *redis.Client
	// bulk is a second connection pool with a longer timeout (ReconcileTimeout) for the
	// writes back of a FailoverStore's local state, which are large.
	bulk                 *redis.Client
	prefix               string
	sessionTTL, eventTTL time.Duration
}

// NewRedisStore connects to Redis and checks it with PING.
func NewRedisStore(ctx context.Context, o RedisOptions) (*RedisStore, error) {
	opt, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("serve: redis url: %w", err)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultRedisTimeout
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = o.Timeout, o.Timeout, o.Timeout, o.Timeout
	opt.MaxRetries = -1 // no retries: a script may have run before its reply was lost
	opt.ContextTimeoutEnabled = true
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("serve: redis %s: %w", opt.Addr, err)
	}
	bulkOpt := *opt
	bulkOpt.ReadTimeout, bulkOpt.WriteTimeout, bulkOpt.PoolSize = ReconcileTimeout, ReconcileTimeout, 2
	bulk := redis.NewClient(&bulkOpt)
	if o.Prefix == "" {
		o.Prefix = "shopagent:"
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.EventTTL <= 0 {
		o.EventTTL = o.SessionTTL
	}
	return &RedisStore{rdb: rdb, bulk: bulk, prefix: o.Prefix, sessionTTL: o.SessionTTL, eventTTL: o.EventTTL}, nil
}

func (r *RedisStore) sessionKey(id string) string { return r.prefix + "session:" + id }
func (r *RedisStore) eventKey(id string) string   { return r.prefix + "event:" + id }
func (r *RedisStore) armKey(name string) string   { return r.prefix + "arm:" + name }
func (r *RedisStore) pendingKey() string          { return r.prefix + "pending" }
func (r *RedisStore) doneKey(id string, ep int64) string {
	return r.prefix + "done:" + episodeKey(id, ep)
}

// unavailable wraps a Redis error as ErrStoreUnavailable (every error of a command that
// did not get a reply, and every reply error: both mean the store is not serving).
func unavailable(op string, err error) error {
	return fmt.Errorf("serve: redis %s: %w: %w", op, ErrStoreUnavailable, err)
}

func parseSession(id string, m map[string]string) (Session, error) {
	s := Session{ID: id, Arm: m["arm"], LastEvent: m["last_event"]}
	var err error
	if s.ArmPropensity, err = strconv.ParseFloat(m["arm_propensity"], 64); err != nil {
		return s, fmt.Errorf("serve: redis session %s: arm_propensity: %w", id, err)
	}
	if s.Episode, err = strconv.ParseInt(m["episode"], 10, 64); err != nil {
		return s, fmt.Errorf("serve: redis session %s: episode: %w", id, err)
	}
	if s.Steps, err = strconv.ParseInt(m["steps"], 10, 64); err != nil {
		return s, fmt.Errorf("serve: redis session %s: steps: %w", id, err)
	}
	return s, nil
}

// Session implements Store.
func (r *RedisStore) Session(ctx context.Context, id string) (Session, bool, error) {
	m, err := r.rdb.HGetAll(ctx, r.sessionKey(id)).Result()
	if err != nil {
		return Session{}, false, unavailable("session", err)
	}
	if len(m) == 0 || m["arm"] == "" {
		return Session{}, false, nil
	}
	s, err := parseSession(id, m)
	return s, err == nil, err
}

// assignScript sets the session's arm unless it has one. KEYS[1] session; ARGV arm,
// propensity, ttl ms. Returns the session's fields and 1 when it assigned.
var assignScript = redis.NewScript(`
local assigned = 0
if redis.call('HSETNX', KEYS[1], 'arm', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'arm_propensity', ARGV[2], 'episode', 0, 'steps', 0, 'last_event', '')
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  assigned = 1
end
local f = redis.call('HMGET', KEYS[1], 'arm', 'arm_propensity', 'episode', 'steps', 'last_event')
return {f[1], f[2], f[3], f[4], f[5] or '', tostring(assigned)}`)

// Assign implements Store.
func (r *RedisStore) Assign(ctx context.Context, id, arm string, propensity float64) (Session, bool, error) {
	res, err := assignScript.Run(ctx, r.rdb, []string{r.sessionKey(id)},
		arm, strconv.FormatFloat(propensity, 'g', -1, 64), r.sessionTTL.Milliseconds()).StringSlice()
	if err != nil {
		return Session{}, false, unavailable("assign", err)
	}
	if len(res) != 6 {
		return Session{}, false, fmt.Errorf("serve: redis assign: %d fields", len(res))
	}
	s, err := parseSession(id, map[string]string{"arm": res[0], "arm_propensity": res[1], "episode": res[2], "steps": res[3], "last_event": res[4]})
	return s, res[5] == "1", err
}

// decideScript: KEYS session, pending, event; ARGV session id, event id, deadline ms,
// session ttl ms, event ttl ms. Returns the session's fields or nil when unknown.
var decideScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'arm') == 0 then return false end
redis.call('HINCRBY', KEYS[1], 'steps', 1)
redis.call('HSET', KEYS[1], 'last_event', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local f = redis.call('HMGET', KEYS[1], 'arm', 'arm_propensity', 'episode', 'steps')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1] .. '\n' .. f[3])
redis.call('SET', KEYS[3], ARGV[1] .. '\n' .. f[3] .. '\n' .. f[1], 'PX', ARGV[5])
return f`)

// Decide implements Store.
func (r *RedisStore) Decide(ctx context.Context, id, eventID string, deadline time.Time) (Session, bool, error) {
	res, err := decideScript.Run(ctx, r.rdb, []string{r.sessionKey(id), r.pendingKey(), r.eventKey(eventID)},
		id, eventID, deadline.UnixMilli(), r.sessionTTL.Milliseconds(), r.eventTTL.Milliseconds()).StringSlice()
	if errors.Is(err, redis.Nil) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, unavailable("decide", err)
	}
	if len(res) != 4 {
		return Session{}, false, fmt.Errorf("serve: redis decide: %d fields", len(res))
	}
	s, err := parseSession(id, map[string]string{"arm": res[0], "arm_propensity": res[1], "episode": res[2], "steps": res[3], "last_event": eventID})
	return s, err == nil, err
}

// Event implements Store.
func (r *RedisStore) Event(ctx context.Context, eventID string) (EventRef, bool, error) {
	v, err := r.rdb.Get(ctx, r.eventKey(eventID)).Result()
	if errors.Is(err, redis.Nil) {
		return EventRef{}, false, nil
	}
	if err != nil {
		return EventRef{}, false, unavailable("event", err)
	}
	parts := strings.Split(v, "\n")
	if len(parts) != 3 {
		return EventRef{}, false, fmt.Errorf("serve: redis event %s: malformed value", eventID)
	}
	ep, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return EventRef{}, false, fmt.Errorf("serve: redis event %s: %w", eventID, err)
	}
	return EventRef{SessionID: parts[0], Episode: ep, Arm: parts[2]}, true, nil
}

// rewardScript ends an episode and counts its reward, atomically. KEYS session, pending;
// ARGV prefix, session id, episode (-1: current), reward, success (0|1), reward^2,
// source, done ttl ms. Returns {status, episode, record} with status "ended" (this call
// ended it), "done" (it had ended: record is its done record) or "none".
var rewardScript = redis.NewScript(`
local sid = ARGV[2]
local ep = ARGV[3]
if ep == '-1' then
  ep = redis.call('HGET', KEYS[1], 'episode')
  if not ep then return {'nosession', '', ''} end
  if not redis.call('ZSCORE', KEYS[2], sid .. '\n' .. ep) then
    local prev = tostring(tonumber(ep) - 1)
    local d = redis.call('GET', ARGV[1] .. 'done:' .. sid .. '\n' .. prev)
    if d then return {'done', prev, d} end
    return {'none', '', ''}
  end
end
local member = sid .. '\n' .. ep
local donekey = ARGV[1] .. 'done:' .. member
if redis.call('ZREM', KEYS[2], member) == 0 then
  local d = redis.call('GET', donekey)
  if d then return {'done', ep, d} end
  if redis.call('EXISTS', KEYS[1]) == 0 then return {'nosession', '', ''} end
  return {'none', '', ''}
end
local f = redis.call('HMGET', KEYS[1], 'arm', 'episode', 'steps', 'last_event')
if not f[1] then return {'nosession', '', ''} end
if f[2] == ep then
  redis.call('HINCRBY', KEYS[1], 'episode', 1)
  redis.call('HSET', KEYS[1], 'steps', 0)
end
local ak = ARGV[1] .. 'arm:' .. f[1]
redis.call('HINCRBY', ak, 'episodes', 1)
redis.call('HINCRBY', ak, 'successes', ARGV[5])
redis.call('HINCRBYFLOAT', ak, 'score_sum', ARGV[4])
redis.call('HINCRBYFLOAT', ak, 'score_sq_sum', ARGV[6])
local rec = ARGV[7] .. '\n' .. ARGV[4] .. '\n' .. f[1] .. '\n' .. (f[3] or '0') .. '\n' .. (f[4] or '')
redis.call('SET', donekey, rec, 'PX', ARGV[8])
return {'ended', ep, rec}`)

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// parseDone parses a done record "SOURCE\nREWARD\nARM\nSTEPS\nLAST_EVENT".
func parseDone(id string, episode int64, rec string) (memDone, error) {
	p := strings.Split(rec, "\n")
	if len(p) != 5 {
		return memDone{}, fmt.Errorf("serve: redis: malformed done record of %s episode %d", id, episode)
	}
	reward, err := strconv.ParseFloat(p[1], 64)
	if err != nil {
		return memDone{}, fmt.Errorf("serve: redis: done record of %s: %w", id, err)
	}
	steps, _ := strconv.ParseInt(p[3], 10, 64)
	return memDone{ep: EndedEpisode{SessionID: id, Arm: p[2], Episode: episode, Steps: steps, LastEvent: p[4]},
		reward: reward, source: p[0]}, nil
}

// Reward implements Store.
func (r *RedisStore) Reward(ctx context.Context, id string, episode int64, reward float64, source string) (RewardResult, error) {
	if episode < 0 {
		episode = -1
	}
	succ := "0"
	if reward >= bandit.SuccessThreshold {
		succ = "1"
	}
	res, err := rewardScript.Run(ctx, r.rdb, []string{r.sessionKey(id), r.pendingKey()}, r.prefix, id, episode,
		formatFloat(reward), succ, formatFloat(reward*reward), source, r.eventTTL.Milliseconds()).StringSlice()
	if err != nil {
		return RewardResult{}, unavailable("reward", err)
	}
	if len(res) != 3 {
		return RewardResult{}, fmt.Errorf("serve: redis reward: %d fields", len(res))
	}
	switch res[0] {
	case "none":
		return RewardResult{Status: RewardNoEpisode}, nil
	case "nosession":
		return RewardResult{Status: RewardNoSession}, nil
	}
	ep, err := strconv.ParseInt(res[1], 10, 64)
	if err != nil {
		return RewardResult{}, fmt.Errorf("serve: redis reward: episode %q", res[1])
	}
	d, err := parseDone(id, ep, res[2])
	if err != nil {
		return RewardResult{}, err
	}
	if res[0] == "ended" {
		return RewardResult{Status: RewardApplied, Episode: d.ep, Reward: reward, Source: source}, nil
	}
	return doneResult(d, reward, source), nil
}

// Expired implements Store.
func (r *RedisStore) Expired(ctx context.Context, now time.Time, max int) ([]EndedEpisode, error) {
	members, err := r.rdb.ZRangeByScore(ctx, r.pendingKey(), &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(now.UnixMilli(), 10), Count: int64(max)}).Result()
	if err != nil {
		return nil, unavailable("expired", err)
	}
	var out []EndedEpisode
	for _, m := range members {
		id, epStr, ok := strings.Cut(m, "\n")
		ep, err := strconv.ParseInt(epStr, 10, 64)
		if !ok || err != nil {
			r.rdb.ZRem(ctx, r.pendingKey(), m)
			continue
		}
		res, err := r.Reward(ctx, id, ep, 0, decisionlog.SourceTimeout)
		if err != nil {
			return out, err
		}
		if res.Status == RewardApplied {
			out = append(out, res.Episode)
		} else if res.Status == RewardNoEpisode || res.Status == RewardNoSession {
			r.rdb.ZRem(ctx, r.pendingKey(), m) // its session expired: nothing to count it on
		}
	}
	return out, nil
}

// States implements Store.
func (r *RedisStore) States(ctx context.Context, arms []string) ([]bandit.ArmState, error) {
	cmds := make([]*redis.MapStringStringCmd, len(arms))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, a := range arms {
			cmds[i] = p.HGetAll(ctx, r.armKey(a))
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("states", err)
	}
	out := make([]bandit.ArmState, len(arms))
	for i, a := range arms {
		m := cmds[i].Val()
		st := bandit.ArmState{Name: a}
		st.Episodes, _ = strconv.ParseInt(m["episodes"], 10, 64)
		st.Successes, _ = strconv.ParseInt(m["successes"], 10, 64)
		st.ScoreSum, _ = strconv.ParseFloat(m["score_sum"], 64)
		st.ScoreSqSum, _ = strconv.ParseFloat(m["score_sq_sum"], 64)
		out[i] = st
	}
	return out, nil
}

// Ping checks that Redis answers.
func (r *RedisStore) Ping(ctx context.Context) error {
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Close implements Store.
func (r *RedisStore) Close() error { return errors.Join(r.rdb.Close(), r.bulk.Close()) }

// ---- reconciliation of a FailoverStore's local state ----

// reconcileRewardsScript counts episodes ended elsewhere (a replica's local state during
// an outage), each unless Redis has already counted it. ARGV prefix, done ttl ms, then
// per episode: session id, episode, reward, success, reward^2, source, arm, steps, last
// event. Returns the number it counted.
var reconcileRewardsScript = redis.NewScript(`
local n = 0
for i = 3, #ARGV, 9 do
  local member = ARGV[i] .. '\n' .. ARGV[i+1]
  local donekey = ARGV[1] .. 'done:' .. member
  if redis.call('EXISTS', donekey) == 0 then
    redis.call('ZREM', ARGV[1] .. 'pending', member)
    local ak = ARGV[1] .. 'arm:' .. ARGV[i+6]
    redis.call('HINCRBY', ak, 'episodes', 1)
    redis.call('HINCRBY', ak, 'successes', ARGV[i+3])
    redis.call('HINCRBYFLOAT', ak, 'score_sum', ARGV[i+2])
    redis.call('HINCRBYFLOAT', ak, 'score_sq_sum', ARGV[i+4])
    redis.call('SET', donekey, ARGV[i+5] .. '\n' .. ARGV[i+2] .. '\n' .. ARGV[i+6] .. '\n' .. ARGV[i+7] .. '\n' .. ARGV[i+8], 'PX', ARGV[2])
    n = n + 1
  end
end
return n`)

// reconcileSessionsScript writes sessions' state as a replica's local state has them.
// ARGV prefix, session ttl ms, then per session: id, arm, arm propensity, episode, steps,
// last event, pending (0|1), deadline ms. A pending episode that Redis has already ended
// is not made pending again.
var reconcileSessionsScript = redis.NewScript(`
for i = 3, #ARGV, 8 do
  local key = ARGV[1] .. 'session:' .. ARGV[i]
  redis.call('DEL', key)
  redis.call('HSET', key, 'arm', ARGV[i+1], 'arm_propensity', ARGV[i+2], 'episode', ARGV[i+3], 'steps', ARGV[i+4], 'last_event', ARGV[i+5])
  redis.call('PEXPIRE', key, ARGV[2])
  local member = ARGV[i] .. '\n' .. ARGV[i+3]
  if ARGV[i+6] == '1' and redis.call('EXISTS', ARGV[1] .. 'done:' .. member) == 0 then
    redis.call('ZADD', ARGV[1] .. 'pending', ARGV[i+7], member)
  end
end
return 1`)

// reconcileRewards counts episodes ended during an outage, each unless Redis already has;
// it returns how many it counted.
func (r *RedisStore) reconcileRewards(ctx context.Context, eps []memDone) (int, error) {
	args := []any{r.prefix, r.eventTTL.Milliseconds()}
	for _, d := range eps {
		succ := "0"
		if d.reward >= bandit.SuccessThreshold {
			succ = "1"
		}
		args = append(args, d.ep.SessionID, d.ep.Episode, formatFloat(d.reward), succ, formatFloat(d.reward*d.reward),
			d.source, d.ep.Arm, d.ep.Steps, d.ep.LastEvent)
	}
	n, err := reconcileRewardsScript.Run(ctx, r.bulk, []string{r.pendingKey()}, args...).Int()
	if err != nil {
		return 0, unavailable("reconcile rewards", err)
	}
	return n, nil
}

// localSession is a session of the local state with its pending flag and deadline.
type localSession struct {
	s        Session
	pending  bool
	deadline time.Time
}

// reconcileSessions writes sessions' local state.
func (r *RedisStore) reconcileSessions(ctx context.Context, ss []localSession) error {
	args := []any{r.prefix, r.sessionTTL.Milliseconds()}
	for _, l := range ss {
		p := "0"
		if l.pending {
			p = "1"
		}
		args = append(args, l.s.ID, l.s.Arm, formatFloat(l.s.ArmPropensity), l.s.Episode, l.s.Steps, l.s.LastEvent, p, l.deadline.UnixMilli())
	}
	if err := reconcileSessionsScript.Run(ctx, r.bulk, []string{r.pendingKey()}, args...).Err(); err != nil {
		return unavailable("reconcile sessions", err)
	}
	return nil
}

// reconcileEvents remembers events created during an outage.
func (r *RedisStore) reconcileEvents(ctx context.Context, events map[string]EventRef) error {
	_, err := r.bulk.Pipelined(ctx, func(p redis.Pipeliner) error {
		for id, ref := range events {
			p.SetNX(ctx, r.eventKey(id), ref.SessionID+"\n"+strconv.FormatInt(ref.Episode, 10)+"\n"+ref.Arm, r.eventTTL)
		}
		return nil
	})
	if err != nil {
		return unavailable("reconcile events", err)
	}
	return nil
}

// pingBulk checks Redis on the bulk pool (the probe of a FailoverStore: a loaded Redis may
// answer slower than the serving timeout).
func (r *RedisStore) pingBulk(ctx context.Context) error {
	if err := r.bulk.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}
