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
	rdb                  *redis.Client
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
	if o.Prefix == "" {
		o.Prefix = "shopagent:"
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	if o.EventTTL <= 0 {
		o.EventTTL = o.SessionTTL
	}
	return &RedisStore{rdb: rdb, prefix: o.Prefix, sessionTTL: o.SessionTTL, eventTTL: o.EventTTL}, nil
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
func (r *RedisStore) Close() error { return r.rdb.Close() }

// ---- reconciliation of a FailoverStore's local state ----

// reconcileRewardScript counts an episode ended elsewhere (a replica's local state during
// an outage) unless Redis has already counted it. ARGV prefix, session id, episode,
// reward, success, reward^2, source, done ttl ms, arm, steps, last event. Returns 1 when
// it counted the episode.
var reconcileRewardScript = redis.NewScript(`
local member = ARGV[2] .. '\n' .. ARGV[3]
local donekey = ARGV[1] .. 'done:' .. member
if redis.call('EXISTS', donekey) == 1 then return 0 end
redis.call('ZREM', ARGV[1] .. 'pending', member)
local ak = ARGV[1] .. 'arm:' .. ARGV[9]
redis.call('HINCRBY', ak, 'episodes', 1)
redis.call('HINCRBY', ak, 'successes', ARGV[5])
redis.call('HINCRBYFLOAT', ak, 'score_sum', ARGV[4])
redis.call('HINCRBYFLOAT', ak, 'score_sq_sum', ARGV[6])
redis.call('SET', donekey, ARGV[7] .. '\n' .. ARGV[4] .. '\n' .. ARGV[9] .. '\n' .. ARGV[10] .. '\n' .. ARGV[11], 'PX', ARGV[8])
return 1`)

// reconcileSessionScript writes a session's state as a replica's local state has it.
// ARGV prefix, session id, arm, arm propensity, episode, steps, last event, pending
// (0|1), deadline ms, session ttl ms. A pending episode that Redis has already ended is
// not made pending again.
var reconcileSessionScript = redis.NewScript(`
local key = ARGV[1] .. 'session:' .. ARGV[2]
redis.call('DEL', key)
redis.call('HSET', key, 'arm', ARGV[3], 'arm_propensity', ARGV[4], 'episode', ARGV[5], 'steps', ARGV[6], 'last_event', ARGV[7])
redis.call('PEXPIRE', key, ARGV[10])
local member = ARGV[2] .. '\n' .. ARGV[5]
if ARGV[8] == '1' and redis.call('EXISTS', ARGV[1] .. 'done:' .. member) == 0 then
  redis.call('ZADD', ARGV[1] .. 'pending', ARGV[9], member)
end
return 1`)

// reconcileReward counts an episode ended during an outage unless Redis already has;
// counted is false when it had.
func (r *RedisStore) reconcileReward(ctx context.Context, d memDone) (counted bool, err error) {
	succ := "0"
	if d.reward >= bandit.SuccessThreshold {
		succ = "1"
	}
	n, err := reconcileRewardScript.Run(ctx, r.rdb, []string{r.pendingKey(), r.doneKey(d.ep.SessionID, d.ep.Episode), r.armKey(d.ep.Arm)},
		r.prefix, d.ep.SessionID, d.ep.Episode, formatFloat(d.reward), succ, formatFloat(d.reward*d.reward), d.source,
		r.eventTTL.Milliseconds(), d.ep.Arm, d.ep.Steps, d.ep.LastEvent).Int()
	if err != nil {
		return false, unavailable("reconcile reward", err)
	}
	return n == 1, nil
}

// reconcileSession writes a session's local state.
func (r *RedisStore) reconcileSession(ctx context.Context, s Session, pending bool, deadline time.Time) error {
	p := "0"
	if pending {
		p = "1"
	}
	err := reconcileSessionScript.Run(ctx, r.rdb, []string{r.sessionKey(s.ID), r.pendingKey()}, r.prefix, s.ID, s.Arm,
		formatFloat(s.ArmPropensity), s.Episode, s.Steps, s.LastEvent, p, deadline.UnixMilli(), r.sessionTTL.Milliseconds()).Err()
	if err != nil {
		return unavailable("reconcile session", err)
	}
	return nil
}

// reconcileEvent remembers an event created during an outage.
func (r *RedisStore) reconcileEvent(ctx context.Context, eventID string, ref EventRef) error {
	v := ref.SessionID + "\n" + strconv.FormatInt(ref.Episode, 10) + "\n" + ref.Arm
	if err := r.rdb.SetNX(ctx, r.eventKey(eventID), v, r.eventTTL).Err(); err != nil {
		return unavailable("reconcile event", err)
	}
	return nil
}
