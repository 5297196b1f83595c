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
)

// RedisStore keeps the server's state in Redis so that replicas share one posterior and
// one session map. Keys (prefix P, default "shopagent:"):
//
//	P arm:NAME        hash episodes, successes (HINCRBY), score_sum, score_sq_sum (HINCRBYFLOAT)
//	P session:ID      hash arm, arm_propensity, episode, steps, last_event; PEXPIRE session TTL
//	P event:ID        string "SESSION\nEPISODE\nARM"; PEXPIRE event TTL
//	P pending         sorted set of "SESSION\nEPISODE" scored by the reward deadline (unix ms)
//
// An episode ends exactly once: whoever removes its member from P pending (ZREM returns
// 1) counts it, in a Lua script that also advances the session's episode.
type RedisStore struct {
	rdb                  *redis.Client
	prefix               string
	sessionTTL, eventTTL time.Duration
}

// NewRedisStore connects to the Redis server at url (redis://[:password@]host:port/db)
// and checks it with PING.
func NewRedisStore(ctx context.Context, url, prefix string, sessionTTL, eventTTL time.Duration) (*RedisStore, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("serve: redis url: %w", err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("serve: redis %s: %w", opt.Addr, err)
	}
	if prefix == "" {
		prefix = "shopagent:"
	}
	return &RedisStore{rdb: rdb, prefix: prefix, sessionTTL: sessionTTL, eventTTL: eventTTL}, nil
}

func (r *RedisStore) sessionKey(id string) string { return r.prefix + "session:" + id }
func (r *RedisStore) eventKey(id string) string   { return r.prefix + "event:" + id }
func (r *RedisStore) armKey(name string) string   { return r.prefix + "arm:" + name }
func (r *RedisStore) pendingKey() string          { return r.prefix + "pending" }

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
		return Session{}, false, fmt.Errorf("serve: redis session: %w", err)
	}
	if len(m) == 0 || m["arm"] == "" {
		return Session{}, false, nil
	}
	s, err := parseSession(id, m)
	return s, err == nil, err
}

// assignScript sets the session's arm unless it has one. KEYS[1] session; ARGV arm,
// propensity, ttl ms. Returns 1 when it assigned.
var assignScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], 'arm', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'arm_propensity', ARGV[2], 'episode', 0, 'steps', 0, 'last_event', '')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`)

// Assign implements Store.
func (r *RedisStore) Assign(ctx context.Context, id, arm string, propensity float64) (Session, bool, error) {
	n, err := assignScript.Run(ctx, r.rdb, []string{r.sessionKey(id)},
		arm, strconv.FormatFloat(propensity, 'g', -1, 64), r.sessionTTL.Milliseconds()).Int()
	if err != nil {
		return Session{}, false, fmt.Errorf("serve: redis assign: %w", err)
	}
	s, ok, err := r.Session(ctx, id)
	if err != nil {
		return Session{}, false, err
	}
	if !ok {
		return Session{}, false, fmt.Errorf("serve: redis assign: session %s vanished", id)
	}
	return s, n == 1, nil
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
		return Session{}, false, fmt.Errorf("serve: redis decide: %w", err)
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
		return EventRef{}, false, fmt.Errorf("serve: redis event: %w", err)
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

// finishScript: KEYS session, pending; ARGV session id, episode (-1: current). Returns
// {arm, episode, steps, last_event} or nil when no episode waits for its reward.
var finishScript = redis.NewScript(`
local ep = ARGV[2]
if ep == '-1' then
  ep = redis.call('HGET', KEYS[1], 'episode')
  if not ep then return false end
end
if redis.call('ZREM', KEYS[2], ARGV[1] .. '\n' .. ep) == 0 then return false end
local f = redis.call('HMGET', KEYS[1], 'arm', 'episode', 'steps', 'last_event')
if not f[1] then return {'', ep, '0', ''} end
if f[2] == ep then
  redis.call('HINCRBY', KEYS[1], 'episode', 1)
  redis.call('HSET', KEYS[1], 'steps', 0)
end
return {f[1], ep, f[3], f[4]}`)

func (r *RedisStore) finish(ctx context.Context, id string, episode int64) (EndedEpisode, bool, error) {
	res, err := finishScript.Run(ctx, r.rdb, []string{r.sessionKey(id), r.pendingKey()}, id, episode).StringSlice()
	if errors.Is(err, redis.Nil) {
		return EndedEpisode{}, false, nil
	}
	if err != nil {
		return EndedEpisode{}, false, fmt.Errorf("serve: redis finish: %w", err)
	}
	if len(res) != 4 {
		return EndedEpisode{}, false, fmt.Errorf("serve: redis finish: %d fields", len(res))
	}
	ep, _ := strconv.ParseInt(res[1], 10, 64)
	steps, _ := strconv.ParseInt(res[2], 10, 64)
	return EndedEpisode{SessionID: id, Arm: res[0], Episode: ep, Steps: steps, LastEvent: res[3]}, true, nil
}

// Finish implements Store.
func (r *RedisStore) Finish(ctx context.Context, id string, episode int64) (EndedEpisode, bool, error) {
	if episode < 0 {
		episode = -1
	}
	return r.finish(ctx, id, episode)
}

// Expired implements Store.
func (r *RedisStore) Expired(ctx context.Context, now time.Time, max int) ([]EndedEpisode, error) {
	members, err := r.rdb.ZRangeByScore(ctx, r.pendingKey(), &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(now.UnixMilli(), 10), Count: int64(max)}).Result()
	if err != nil {
		return nil, fmt.Errorf("serve: redis expired: %w", err)
	}
	var out []EndedEpisode
	for _, m := range members {
		id, epStr, ok := strings.Cut(m, "\n")
		ep, err := strconv.ParseInt(epStr, 10, 64)
		if !ok || err != nil {
			r.rdb.ZRem(ctx, r.pendingKey(), m)
			continue
		}
		e, ok, err := r.finish(ctx, id, ep)
		if err != nil {
			return out, err
		}
		if ok && e.Arm != "" {
			out = append(out, e)
		}
	}
	return out, nil
}

// Observe implements Store: one MULTI/EXEC of HINCRBY and HINCRBYFLOAT on the arm's hash.
func (r *RedisStore) Observe(ctx context.Context, arm string, reward float64) error {
	succ := int64(0)
	if reward >= bandit.SuccessThreshold {
		succ = 1
	}
	key := r.armKey(arm)
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HIncrBy(ctx, key, "episodes", 1)
		p.HIncrBy(ctx, key, "successes", succ)
		p.HIncrByFloat(ctx, key, "score_sum", reward)
		p.HIncrByFloat(ctx, key, "score_sq_sum", reward*reward)
		return nil
	})
	if err != nil {
		return fmt.Errorf("serve: redis observe: %w", err)
	}
	return nil
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
		return nil, fmt.Errorf("serve: redis states: %w", err)
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

// Close implements Store.
func (r *RedisStore) Close() error { return r.rdb.Close() }
