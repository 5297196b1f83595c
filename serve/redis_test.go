package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startRedis runs a throw-away redis-server on a free loopback port (no persistence)
// and returns its URL. redis-server must be installed (make deps installs it).
func startRedis(t *testing.T) string {
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
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
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
	return url
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
