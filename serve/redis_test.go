package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedis runs a throw-away redis-server on a free loopback port (no persistence)
// and returns its URL. redis-server must be installed (make deps installs it).
func startRedis(t *testing.T) string {
	return startRedisServer(t).url
}

// redisServer is a redis-server the test can kill and restart on the same port, with an
// append-only file fsynced on every write (so that a kill loses nothing it answered).
type redisServer struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	url  string
	cmd  *exec.Cmd
}

func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: run make deps")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisServer{t: t, bin: bin, port: port, dir: t.TempDir(), url: fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", r.dir)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	waitRedis(r.t, r.url)
}

// kill kills redis-server with SIGKILL.
func (r *redisServer) kill() {
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

func waitRedis(t *testing.T, url string) {
	t.Helper()
	opt, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisSharedPosteriorAcrossReplicas(t *testing.T) {
	url := startRedis(t)
	ctx := context.Background()
	var urls []string
	var servers []*Server
	for i := 0; i < 2; i++ {
		store, err := NewRedisStore(ctx, RedisOptions{URL: url, Prefix: "test:", SessionTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ts := startServer(t, func(c *Config) {
			c.Store, c.Mode, c.Weights, c.RewardTimeout, c.Seed = store, ModeThompson, nil, time.Minute, uint64(i+1)
		})
		urls = append(urls, ts.URL)
		servers = append(servers, ts.Server)
	}
	c0, c1 := NewClient(urls[0]), NewClient(urls[1])
	perArm := map[string]int64{}
	for i := 0; i < 20; i++ {
		sid := fmt.Sprintf("r%d", i)
		// Alternate the replica that sees the session first.
		first, second := c0, c1
		if i%2 == 1 {
			first, second = c1, c0
		}
		r1, err := first.Act(ctx, ActRequest{SessionID: sid, Observation: "o", AvailableActions: shirtActions})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := second.Act(ctx, ActRequest{SessionID: sid, Observation: "o", AvailableActions: shirtActions})
		if err != nil {
			t.Fatal(err)
		}
		if r1.Arm != r2.Arm || r2.Step != 1 || r2.Propensity != r2.ActionPropensity {
			t.Fatalf("session %s: replica 1 %+v, replica 2 %+v", sid, r1, r2)
		}
		reward := float64(i % 2)
		// Reward on the other replica, by the first replica's event id.
		fb, err := second.Feedback(ctx, FeedbackRequest{EventID: r1.EventID, Reward: &reward})
		if err != nil {
			t.Fatal(err)
		}
		if fb.Steps != 2 || fb.Arm != r1.Arm {
			t.Fatalf("feedback %+v", fb)
		}
		perArm[r1.Arm]++
		// The same feedback again on the other replica is a retry: the same reply, not
		// counted twice; another reward for the episode is a conflict.
		if again, err := first.Feedback(ctx, FeedbackRequest{SessionID: sid, Reward: &reward}); err != nil || again != fb {
			t.Fatalf("retried feedback on the other replica: %+v %v, want %+v", again, err, fb)
		}
		other := 1 - reward
		var se *StatusError
		if _, err := first.Feedback(ctx, FeedbackRequest{EventID: r1.EventID, Reward: &other}); !errors.As(err, &se) || se.Code != http.StatusConflict {
			t.Fatalf("another reward on the other replica: %v", err)
		}
	}
	a0, err := c0.Arms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := c1.Arms(ctx)
	for i := range a0.Arms {
		if a0.Arms[i].Episodes != perArm[a0.Arms[i].Name] || a0.Arms[i].Posterior != a1.Arms[i].Posterior ||
			a0.Arms[i].Episodes != a1.Arms[i].Episodes || a0.Arms[i].MeanScore != a1.Arms[i].MeanScore {
			t.Fatalf("replicas disagree: %+v vs %+v (want %v)", a0.Arms[i], a1.Arms[i], perArm)
		}
	}
	// A timed-out episode is counted exactly once although both replicas sweep.
	if _, err := c0.Act(ctx, ActRequest{SessionID: "quiet", Observation: "o", AvailableActions: shirtActions}); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Minute)
	if n := servers[0].Sweep(ctx, later) + servers[1].Sweep(ctx, later); n != 1 {
		t.Fatalf("two replicas swept %d episodes, want 1", n)
	}
	after, _ := c1.Arms(ctx)
	total := int64(0)
	for _, a := range after.Arms {
		total += a.Episodes
	}
	if total != 21 {
		t.Fatalf("episodes after the timeout: %d, want 21", total)
	}
	// A session assigned on one replica keeps its arm on the other through Redis only.
	r, err := c1.Act(ctx, ActRequest{SessionID: "pinned", Observation: "o", AvailableActions: shirtActions, Arm: "b"})
	if err != nil || r.Arm != "b" {
		t.Fatalf("pinned: %+v %v", r, err)
	}
	for i := 0; i < 5; i++ {
		r, err := c0.Act(ctx, ActRequest{SessionID: "pinned", Observation: "o", AvailableActions: shirtActions})
		if err != nil || r.Arm != "b" {
			t.Fatalf("pinned on replica 0: %+v %v", r, err)
		}
	}
}

func TestRedisStoreUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := NewRedisStore(ctx, RedisOptions{URL: "redis://" + addr + "/0"}); err == nil {
		t.Fatal("connected to a closed port")
	}
	if _, err := NewRedisStore(ctx, RedisOptions{URL: "http://nope"}); err == nil {
		t.Fatal("accepted a non-redis URL")
	}
}

// outageServer is a server on a FailoverStore over r, with its own logger capturing lines.
func outageServer(t *testing.T, r *redisServer, mode string, logw io.Writer) (*testServer, *FailoverStore) {
	t.Helper()
	logger := slog.New(slog.NewJSONHandler(logw, nil))
	rs, err := NewRedisStore(context.Background(), RedisOptions{URL: r.url, Prefix: "o:", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := NewFailoverStore(rs, FailoverOptions{Mode: mode, OpenFor: 200 * time.Millisecond, ProbeEvery: 20 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *Config) {
		c.Store, c.Mode, c.Weights, c.RewardTimeout, c.Logger = fs, ModeThompson, nil, time.Hour, logger
	})
	return ts, fs
}

// TestRedisOutageFailFast: with --store-outage fail, a dead Redis trips the breaker; then
// requests are refused at once with 503 (cause store), /readyz is unready, and every
// transition is one JSON log line; after Redis comes back the probe closes the breaker
// without traffic and the posteriors are what was acknowledged.
func TestRedisOutageFailFast(t *testing.T) {
	r := startRedisServer(t)
	var logs syncBuffer
	ts, fs := outageServer(t, r, OutageFail, &logs)
	c := NewClient(ts.URL)
	ctx := context.Background()
	acked := 0
	play := func(sid string) error {
		a, err := c.Act(ctx, ActRequest{SessionID: sid, Observation: "o", AvailableActions: shirtActions})
		if err != nil {
			return err
		}
		reward := 1.0
		if _, err := c.Feedback(ctx, FeedbackRequest{EventID: a.EventID, Reward: &reward}); err != nil {
			return err
		}
		acked++
		return nil
	}
	for i := 0; i < 5; i++ {
		if err := play(fmt.Sprintf("f%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	r.kill()
	var se *StatusError
	for i := 0; i < 10; i++ {
		err := play(fmt.Sprintf("dead%d", i))
		if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
			t.Fatalf("request %d with Redis dead: %v", i, err)
		}
	}
	if h := fs.Health(); h.State != StoreUnavailable || h.Breaker != "open" {
		t.Fatalf("health with Redis dead: %+v", h)
	}
	code, m := get(t, ts.URL+"/readyz")
	if code != http.StatusServiceUnavailable || m["ready"] != false {
		t.Fatalf("readyz with Redis dead: %d %v", code, m)
	}
	// With the breaker open, no request reaches Redis: the reply names the breaker.
	code, m = post(t, ts.URL+"/act", actBody("open", "click[a]"))
	if code != 503 || m["cause"] != CauseStore || !strings.Contains(fmt.Sprint(m["error"]), "circuit breaker open") {
		t.Fatalf("act with the breaker open: %d %v", code, m)
	}
	r.start()
	waitFor(t, func() bool { return fs.Health().State == StoreOK })
	if code, _ := get(t, ts.URL+"/readyz"); code != 200 {
		t.Fatalf("readyz after recovery: %d", code)
	}
	for i := 0; i < 5; i++ {
		if err := play(fmt.Sprintf("back%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	episodes, successes, _ := armTotals(t, c)
	if episodes != int64(acked) || successes != int64(acked) {
		t.Fatalf("posteriors %d episodes %d successes, %d acknowledged", episodes, successes, acked)
	}
	for _, want := range []string{`"msg":"store breaker"`, `"to":"open"`, `"to":"closed"`, `"cause":"store"`, `"request_id":"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
}

// TestRedisOutageLocalReconciles: with --store-outage local (the default), requests go on
// while Redis is dead: sessions keep their arm and episode, new sessions get an arm by a
// hash of their id, rewards count locally; /readyz stays ready, degraded; when Redis is
// back the local changes are written back once, so the posteriors in Redis equal the
// acknowledged feedback exactly, and sessions started during the outage go on in Redis.
func TestRedisOutageLocalReconciles(t *testing.T) {
	r := startRedisServer(t)
	var logs syncBuffer
	ts, fs := outageServer(t, r, OutageLocal, &logs)
	c := NewClient(ts.URL)
	ctx := context.Background()
	var acked, succ int64
	var sum float64
	reward := func(ev string, v float64) FeedbackResponse {
		t.Helper()
		fb, err := c.Feedback(ctx, FeedbackRequest{EventID: ev, Reward: &v})
		if err != nil {
			t.Fatal(err)
		}
		acked++
		sum += v
		if v == 1 {
			succ++
		}
		return fb
	}
	act := func(sid string) ActResponse {
		t.Helper()
		a, err := c.Act(ctx, ActRequest{SessionID: sid, Observation: "o", AvailableActions: shirtActions})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	before := map[string]ActResponse{}
	for i := 0; i < 10; i++ {
		sid := fmt.Sprintf("pre%d", i)
		a := act(sid)
		if i < 5 {
			reward(a.EventID, 1)
			continue
		}
		before[sid] = a // open across the outage
	}
	r.kill()
	// During the outage: open sessions go on; a reward for a decision made before it;
	// new sessions; a retried feedback is idempotent.
	var during []ActResponse
	for sid, a := range before {
		next := act(sid)
		if next.Arm != a.Arm || next.Episode != a.Episode || next.Step != a.Step+1 {
			t.Fatalf("session %s across the outage: %+v then %+v", sid, a, next)
		}
		fb := reward(a.EventID, 0.5)
		fb2, err := c.Feedback(ctx, FeedbackRequest{EventID: a.EventID, Reward: ptr(0.5)})
		if err != nil || fb2 != fb {
			t.Fatalf("retry during the outage: %+v %v, want %+v", fb2, err, fb)
		}
	}
	for i := 0; i < 20; i++ {
		a := act(fmt.Sprintf("new%d", i))
		during = append(during, a)
		if i%2 == 0 {
			reward(a.EventID, float64(i%4)/2)
		}
	}
	if h := fs.Health(); h.State != StoreLocal || h.Unreconciled == 0 {
		t.Fatalf("health during the outage: %+v", h)
	}
	code, m := get(t, ts.URL+"/readyz")
	if code != 200 || m["degraded"] != true {
		t.Fatalf("readyz during the outage: %d %v", code, m)
	}
	// An event this replica never saw cannot be told apart from a wrong one: 503, not 404.
	code, m = post(t, ts.URL+"/feedback", `{"event_id":"never-seen","reward":1}`)
	if code != 503 || m["cause"] != CauseStore {
		t.Fatalf("unknown event during the outage: %d %v", code, m)
	}
	r.start()
	waitFor(t, func() bool { return fs.Health().State == StoreOK })
	// Redis now has every acknowledged reward once.
	rs, err := NewRedisStore(ctx, RedisOptions{URL: r.url, Prefix: "o:"})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	states, err := rs.States(ctx, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	var ep, sc int64
	var ss float64
	for _, st := range states {
		ep, sc, ss = ep+st.Episodes, sc+st.Successes, ss+st.ScoreSum
	}
	if ep != acked || sc != succ || abs(ss-sum) > 1e-9 {
		t.Fatalf("Redis after reconciliation: %d episodes, %d successes, score %g; acknowledged %d, %d, %g", ep, sc, ss, acked, succ, sum)
	}
	// Sessions of the outage go on in Redis: same arm, next step; a pending one is rewarded.
	for i, a := range during {
		next := act(fmt.Sprintf("new%d", i))
		if next.Arm != a.Arm {
			t.Fatalf("session new%d moved from %s to %s after recovery", i, a.Arm, next.Arm)
		}
		if i%2 == 1 {
			if next.Episode != a.Episode || next.Step != 1 {
				t.Fatalf("session new%d: %+v after %+v", i, next, a)
			}
			reward(a.EventID, 1)
		}
	}
	// The sticky hash: a new session's arm during an outage depends on its id only.
	probs := []float64{0.5, 0.5}
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("h%d", i)
		if ts.draw(probs, hashUnit(id)) != ts.draw(probs, hashUnit(id)) {
			t.Fatal("sticky draw differs for one id")
		}
	}
	episodes, _, _ := armTotals(t, c)
	if episodes != acked {
		t.Fatalf("posteriors after recovery: %d episodes, %d acknowledged", episodes, acked)
	}
	for _, want := range []string{"store outage: serving from local state", "store recovered: local state written back"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func ptr(v float64) *float64 { return &v }

// waitFor polls cond until it holds (the test's own timeout bounds it).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
