package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"shopagent/serve/decisionlog"
)

// writeLexical writes a lexical policy directory.
func writeLexical(t testing.TB, dir string, cfg LexicalConfig) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, LexicalConfigFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// quietLogger drops the server's log lines (tests that read them use their own).
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

type testServer struct {
	*Server
	URL  string
	dirs map[string]string
}

// startServer serves two lexical arms, a and b, on a loopback HTTP server.
func startServer(t *testing.T, mut func(*Config)) *testServer {
	t.Helper()
	root := t.TempDir()
	dirs := map[string]string{"a": filepath.Join(root, "a"), "b": filepath.Join(root, "b")}
	writeLexical(t, dirs["a"], LexicalConfig{Name: "lex-a", Temperature: 0.5, Bonus: map[string]float64{"buy": 1}})
	writeLexical(t, dirs["b"], LexicalConfig{Name: "lex-b", Temperature: 2})
	cfg := Config{Arms: []ArmSpec{{"a", dirs["a"]}, {"b", dirs["b"]}}, Loader: LoadLexicalPolicy,
		Mode: ModeCanary, Weights: []float64{0.5, 0.5}, Seed: 7, AdminToken: "s3cret", Logger: quietLogger}
	if mut != nil {
		mut(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.LoadArms(); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		if err := s.Shutdown(); err != nil {
			t.Error(err)
		}
	})
	return &testServer{Server: s, URL: hs.URL, dirs: dirs}
}

func post(t *testing.T, url, body string, hdr ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: reply %d is not a JSON object: %q", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

func actBody(session string, actions ...string) string {
	b, _ := json.Marshal(ActRequest{SessionID: session, Instruction: "i want a red shirt, buy it",
		Observation: "results page: red shirt, blue shirt", AvailableActions: actions})
	return string(b)
}

var shirtActions = []string{"click[red shirt]", "click[blue hat]", "click[buy now]", "click[< prev]"}

func TestActFeedbackArmsSticky(t *testing.T) {
	ts := startServer(t, nil)
	c := NewClient(ts.URL)
	ctx := context.Background()
	perArm := map[string]int{}
	var firstEvents []string
	for i := 0; i < 40; i++ {
		sid := fmt.Sprintf("s%d", i)
		r1, err := c.Act(ctx, ActRequest{SessionID: sid, Observation: "red shirt page", Instruction: "red shirt", AvailableActions: shirtActions})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := c.Act(ctx, ActRequest{SessionID: sid, Observation: "red shirt item", Instruction: "red shirt", AvailableActions: shirtActions})
		if err != nil {
			t.Fatal(err)
		}
		if r1.Arm != r2.Arm {
			t.Fatalf("session %s moved from arm %s to %s", sid, r1.Arm, r2.Arm)
		}
		if r1.ArmPropensity != 0.5 || math.Abs(r1.Propensity-0.5) > 1e-12 || r2.Propensity != 1 || r1.Step != 0 || r2.Step != 1 {
			t.Fatalf("propensities/steps: first %+v second %+v", r1, r2)
		}
		if len(r1.Probabilities) != len(shirtActions) || r1.Action != shirtActions[r1.Index] {
			t.Fatalf("reply %+v", r1)
		}
		for j, p := range r1.Probabilities {
			if p > r1.Probabilities[r1.Index] {
				t.Fatalf("greedy chose %d but %d has probability %g", r1.Index, j, p)
			}
		}
		want := map[string]string{"a": "lex-a", "b": "lex-b"}[r1.Arm]
		if r1.Policy != want {
			t.Fatalf("arm %s served policy %q", r1.Arm, r1.Policy)
		}
		perArm[r1.Arm]++
		firstEvents = append(firstEvents, r1.EventID)
		// Half the rewards by session id, half by event id (of an earlier step).
		reward := 0.5
		if i%4 == 0 {
			reward = 1
		}
		req := FeedbackRequest{SessionID: sid, Reward: &reward}
		if i%2 == 1 {
			req = FeedbackRequest{EventID: r1.EventID, Reward: &reward}
		}
		fb, err := c.Feedback(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if fb.Arm != r1.Arm || fb.Steps != 2 || fb.Episode != 0 || fb.Success != (reward == 1) {
			t.Fatalf("feedback reply %+v", fb)
		}
	}
	if perArm["a"] < 8 || perArm["b"] < 8 {
		t.Fatalf("canary 0.5/0.5 split 40 sessions as %v", perArm)
	}
	// A second reward for the same episode conflicts; unknown ids are 404.
	reward := 1.0
	var se *StatusError
	if _, err := c.Feedback(ctx, FeedbackRequest{EventID: firstEvents[1], Reward: &reward}); !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Fatalf("double feedback: %v", err)
	}
	if _, err := c.Feedback(ctx, FeedbackRequest{EventID: "nope", Reward: &reward}); !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Fatalf("unknown event: %v", err)
	}
	if _, err := c.Feedback(ctx, FeedbackRequest{SessionID: "nobody", Reward: &reward}); !errors.As(err, &se) || se.Code != http.StatusNotFound {
		t.Fatalf("unknown session: %v", err)
	}
	// The next decision of a rewarded session starts episode 1 on the same arm.
	r, err := c.Act(ctx, ActRequest{SessionID: "s0", Observation: "x", AvailableActions: shirtActions})
	if err != nil || r.Episode != 1 || r.Step != 0 || r.Propensity != 1 {
		t.Fatalf("next episode: %+v %v", r, err)
	}
	// An explicit arm that differs from the session's is a conflict; a new session may pick one.
	other := map[string]string{"a": "b", "b": "a"}[r.Arm]
	if _, err := c.Act(ctx, ActRequest{SessionID: "s0", Observation: "x", AvailableActions: shirtActions, Arm: other}); !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Fatalf("arm conflict: %v", err)
	}
	forced, err := c.Act(ctx, ActRequest{SessionID: "forced", Observation: "x", AvailableActions: shirtActions, Arm: "b"})
	if err != nil || forced.Arm != "b" || forced.ArmPropensity != 1 {
		t.Fatalf("forced arm: %+v %v", forced, err)
	}

	arms, err := c.Arms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for _, a := range arms.Arms {
		total += a.Episodes
		if a.Episodes != int64(perArm[a.Name]) {
			t.Fatalf("arm %s: %d episodes, want %d", a.Name, a.Episodes, perArm[a.Name])
		}
		if a.Posterior.Alpha != 1+float64(a.Successes) || a.Posterior.Beta != 1+float64(a.Episodes-a.Successes) {
			t.Fatalf("arm %s posterior %+v after %d/%d", a.Name, a.Posterior, a.Successes, a.Episodes)
		}
		if a.Allocation != 0.5 || !a.Loaded || a.SHA256 == "" {
			t.Fatalf("arm report %+v", a)
		}
	}
	if total != 40 || math.Abs(arms.Arms[0].PBest+arms.Arms[1].PBest-1) > 1e-9 {
		t.Fatalf("arms %+v", arms)
	}
	code, m := get(t, ts.URL+"/healthz")
	if code != 200 || m["status"] != "ok" {
		t.Fatalf("healthz %d %v", code, m)
	}
}

func TestBadInput(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxBody = 4096; c.MaxActions = 5; c.MaxText = 200 })
	many := make([]string, 6)
	for i := range many {
		many[i] = fmt.Sprintf("click[%d]", i)
	}
	cases := []struct {
		name, path, body string
		code             int
	}{
		{"malformed", "/act", `{"session_id": "x", `, 400},
		{"not an object", "/act", `[1,2]`, 400},
		{"empty body", "/act", ``, 400},
		{"trailing data", "/act", actBody("x", "click[a]") + `{}`, 400},
		{"wrong type", "/act", `{"session_id": 5, "observation": "o", "available_actions": ["a"]}`, 400},
		{"no session", "/act", actBody("", "click[a]"), 400},
		{"control chars in session", "/act", actBody("a\nb", "click[a]"), 400},
		{"zero actions", "/act", actBody("x"), 400},
		{"too many actions", "/act", actBody("x", many...), 400},
		{"empty action", "/act", actBody("x", "click[a]", ""), 400},
		{"long observation", "/act", `{"session_id":"x","observation":"` + strings.Repeat("o", 300) + `","available_actions":["a"]}`, 400},
		{"long action", "/act", actBody("x", strings.Repeat("a", 201)), 400},
		{"body over limit", "/act", `{"session_id":"x","observation":"` + strings.Repeat("o", 5000) + `","available_actions":["a"]}`, 413},
		{"unknown arm", "/act", `{"session_id":"x","observation":"o","available_actions":["a"],"arm":"zzz"}`, 400},
		{"feedback malformed", "/feedback", `{"reward":`, 400},
		{"feedback no reward", "/feedback", `{"session_id":"x"}`, 400},
		{"feedback no ids", "/feedback", `{"reward":1}`, 400},
		{"feedback reward out of range", "/feedback", `{"session_id":"x","reward":1.5}`, 400},
		{"feedback negative reward", "/feedback", `{"session_id":"x","reward":-0.1}`, 400},
		{"feedback unknown event", "/feedback", `{"event_id":"deadbeef","reward":1}`, 404},
		{"feedback unknown session", "/feedback", `{"session_id":"ghost","reward":1}`, 404},
		{"feedback session without decision in flight", "/feedback", `{"session_id":"x","reward":1}`, 404},
		{"unknown route", "/nope", `{}`, 404},
		// Actions as WebShop parses them: greedy (.+)\[(.+)\] from the start.
		{"bracketed title", "/act", actBody("x", "click[widget [2-pack]]"), 400},
		{"bracketed option", "/act", actBody("x", "click[size: 10 [us]]"), 400},
		{"bracketed query", "/act", actBody("x", "search[red [xl] shirt]"), 400},
		{"empty click", "/act", actBody("x", "click[]"), 400},
		{"upper-case verb", "/act", actBody("x", "CLICK[x]"), 400},
		{"no brackets", "/act", actBody("x", "buy now"), 400},
		{"leading space", "/act", actBody("x", " click[a]"), 400},
		{"nested opening bracket", "/act", actBody("x", "click[[x]"), 400},
		{"invalid UTF-8", "/act", "{\"session_id\":\"x\xff\",\"observation\":\"o\",\"available_actions\":[\"click[a]\"]}", 400},
		{"invalid UTF-8 in feedback", "/feedback", "{\"session_id\":\"\xc3\",\"reward\":1}", 400},
	}
	for _, tc := range cases {
		code, m := post(t, ts.URL+tc.path, tc.body)
		if code != tc.code {
			t.Errorf("%s: status %d, want %d (%v)", tc.name, code, tc.code, m)
		}
		if e, _ := m["error"].(string); e == "" {
			t.Errorf("%s: no error message in %v", tc.name, m)
		}
	}
	// Content types other than JSON are 415, whatever the body.
	for _, ct := range []string{"text/plain", "", "application/x-www-form-urlencoded", "application/json; charset=latin1", "application/jsonx"} {
		code, m := post(t, ts.URL+"/act", actBody("ct", "click[a]"), "Content-Type", ct)
		if code != http.StatusUnsupportedMediaType || !strings.Contains(fmt.Sprint(m["error"]), "application/json") {
			t.Errorf("Content-Type %q: %d %v", ct, code, m)
		}
	}
	for _, ct := range []string{"application/json; charset=utf-8", "application/vnd.shopagent+json"} {
		if code, m := post(t, ts.URL+"/act", actBody("ct", "click[a]"), "Content-Type", ct); code != 200 {
			t.Errorf("Content-Type %q: %d %v", ct, code, m)
		}
	}
	// What WebShop's parser accepts is served: the argument runs to the last ']'.
	for _, a := range []string{"click[a]]", "search[red shirt]", "click[ ]", "click[b01]"} {
		if code, m := post(t, ts.URL+"/act", actBody("ok-"+a, a, "click[other]")); code != 200 {
			t.Errorf("action %q: %d %v", a, code, m)
		}
	}
	// The 400 names the action and says why.
	_, m := post(t, ts.URL+"/act", actBody("x", "click[a]", "click[widget [2-pack]]"))
	if e := fmt.Sprint(m["error"]); !strings.Contains(e, `available_actions[1] "click[widget [2-pack]]"`) || !strings.Contains(e, `"click[widget "`) {
		t.Errorf("error %q does not name the action and its parsed name", e)
	}
	// The server still works afterwards.
	if code, m := post(t, ts.URL+"/act", actBody("ok", "click[a]", "click[b]")); code != 200 {
		t.Fatalf("act after bad input: %d %v", code, m)
	}
}

// panicPolicy panics on Act: the Recover middleware turns it into a 500.
type panicPolicy struct{}

func (panicPolicy) Act(string, string, []string) (Decision, error) { panic("boom") }
func (panicPolicy) Info() PolicyInfo                               { return PolicyInfo{Name: "panic"} }
func (panicPolicy) Close() error                                   { return nil }

// badPolicy returns the wrong number of probabilities.
type badPolicy struct{}

func (badPolicy) Act(string, string, []string) (Decision, error) {
	return Decision{Probabilities: []float64{1}}, nil
}
func (badPolicy) Info() PolicyInfo { return PolicyInfo{Name: "bad"} }
func (badPolicy) Close() error     { return nil }

func TestPolicyFailuresAre500(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.Loader = func(dir string) (Policy, error) {
			if strings.HasSuffix(dir, "a") {
				return panicPolicy{}, nil
			}
			return badPolicy{}, nil
		}
	})
	for _, arm := range []string{"a", "b"} {
		b, _ := json.Marshal(ActRequest{SessionID: "p" + arm, Observation: "o", AvailableActions: []string{"click[x]", "click[y]"}, Arm: arm})
		code, m := post(t, ts.URL+"/act", string(b))
		if code != 500 || m["error"] == nil {
			t.Fatalf("arm %s: %d %v", arm, code, m)
		}
	}
}

func TestReloadFailureKeepsServing(t *testing.T) {
	var logs syncBuffer
	ts := startServer(t, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	c := NewClient(ts.URL)
	ctx := context.Background()
	act := func() ActResponse {
		r, err := c.Act(ctx, ActRequest{SessionID: "r", Observation: "o", AvailableActions: shirtActions, Arm: "a"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	old := act()
	if code, _ := post(t, ts.URL+"/admin/reload", `{"arm":"a"}`); code != 401 {
		t.Fatalf("reload without token: %d", code)
	}
	if code, _ := post(t, ts.URL+"/admin/reload", `{"arm":"a"}`, "Authorization", "Bearer wrong"); code != 401 {
		t.Fatalf("reload with a wrong token: %d", code)
	}
	if code, _ := post(t, ts.URL+"/admin/reload", `{"arm":"zz"}`, "Authorization", "Bearer s3cret"); code != 404 {
		t.Fatalf("reload of an unknown arm: %d", code)
	}
	// Corrupt the policy: the reload fails and the old policy keeps serving.
	if err := os.WriteFile(filepath.Join(ts.dirs["a"], LexicalConfigFile), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, m := post(t, ts.URL+"/admin/reload?arm=a", "", "Authorization", "Bearer s3cret")
	if code != 500 || !strings.Contains(fmt.Sprint(m["error"]), "previous policy keeps serving") {
		t.Fatalf("failed reload: %d %v", code, m)
	}
	if r := act(); r.PolicySHA256 != old.PolicySHA256 {
		t.Fatalf("failed reload changed the policy: %s -> %s", old.PolicySHA256, r.PolicySHA256)
	}
	// The failed reload is one JSON line naming the arm, and its 500 one more with the
	// request id and the cause.
	for _, want := range []string{`"msg":"reload failed; the previous policy keeps serving","arm":"a"`,
		`"msg":"request failed","request_id":"`, `"status":500,"cause":"reload"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	if code, _ := get(t, ts.URL+"/readyz"); code != 200 {
		t.Fatalf("readyz after a failed reload: %d", code)
	}
	arms, _ := c.Arms(ctx)
	if arms.Arms[0].LoadError == "" {
		t.Fatalf("arms report no load error: %+v", arms.Arms[0])
	}
	// Fix it: a reload of all arms swaps in the new policy.
	writeLexical(t, ts.dirs["a"], LexicalConfig{Name: "lex-a2", Temperature: 0.1})
	code, m = post(t, ts.URL+"/admin/reload", "", "Authorization", "Bearer s3cret")
	if code != 200 || len(m["results"].([]any)) != 2 {
		t.Fatalf("reload: %d %v", code, m)
	}
	if r := act(); r.PolicySHA256 == old.PolicySHA256 || r.Policy != "lex-a2" {
		t.Fatalf("reload did not swap the policy: %+v", r)
	}
	// No token configured: reload is disabled.
	ts2 := startServer(t, func(c *Config) { c.AdminToken = "" })
	if code, _ := post(t, ts2.URL+"/admin/reload", "", "Authorization", "Bearer "); code != 403 {
		t.Fatalf("reload without a configured token: %d", code)
	}
}

func TestReadyzWaitsForArms(t *testing.T) {
	release := make(chan struct{})
	s, err := New(Config{Arms: []ArmSpec{{"a", "x"}}, Logger: quietLogger, Loader: func(dir string) (Policy, error) {
		<-release
		return NewLexicalPolicy(LexicalConfig{Name: "late"})
	}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	defer s.Shutdown()
	done := make(chan error)
	go func() { done <- s.LoadArms() }()
	if code, m := get(t, hs.URL+"/readyz"); code != 503 || m["ready"] != false {
		t.Fatalf("readyz before load: %d %v", code, m)
	}
	if code, _ := post(t, hs.URL+"/act", actBody("x", "click[a]")); code != 503 {
		t.Fatalf("act before load: %d", code)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, hs.URL+"/readyz"); code != 200 {
		t.Fatalf("readyz after load: %d", code)
	}
}

func TestRewardTimeoutCountsZero(t *testing.T) {
	logDir := t.TempDir()
	logs, err := decisionlog.Open(decisionlog.Config{Dir: logDir})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *Config) { c.RewardTimeout = time.Minute; c.Logs = logs })
	c := NewClient(ts.URL)
	ctx := context.Background()
	r, err := c.Act(ctx, ActRequest{SessionID: "late", Observation: "o", AvailableActions: shirtActions})
	if err != nil {
		t.Fatal(err)
	}
	if n := ts.Sweep(ctx, time.Now()); n != 0 {
		t.Fatalf("swept %d episodes before the timeout", n)
	}
	if n := ts.Sweep(ctx, time.Now().Add(2*time.Minute)); n != 1 {
		t.Fatalf("swept %d episodes after the timeout, want 1", n)
	}
	reward := 1.0
	var se *StatusError
	if _, err := c.Feedback(ctx, FeedbackRequest{EventID: r.EventID, Reward: &reward}); !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Fatalf("feedback after timeout: %v", err)
	}
	arms, _ := c.Arms(ctx)
	for _, a := range arms.Arms {
		if a.Name == r.Arm && (a.Episodes != 1 || a.MeanScore != 0 || a.Posterior.Beta != 2) {
			t.Fatalf("timed-out arm %+v", a)
		}
	}
	if err := logs.Cut(); err != nil {
		t.Fatal(err)
	}
	rews, err := decisionlog.ReadRewards(logDir)
	if err != nil || len(rews) != 1 || rews[0].Source != "timeout" || rews[0].Reward != 0 || rews[0].EventID != r.EventID || rews[0].Steps != 1 {
		t.Fatalf("reward log %+v %v", rews, err)
	}
}

func TestThompsonAllocationAndMinShare(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.Mode, c.Weights, c.MinShare, c.PBestRefresh = ModeThompson, nil, 0.1, time.Hour
	})
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		ts.store.(*MemoryStore).Observe("a", 1)
		ts.store.(*MemoryStore).Observe("b", 0)
	}
	c := NewClient(ts.URL)
	counts := map[string]int{}
	for i := 0; i < 200; i++ {
		r, err := c.Act(ctx, ActRequest{SessionID: fmt.Sprintf("t%d", i), Observation: "o", AvailableActions: shirtActions})
		if err != nil {
			t.Fatal(err)
		}
		counts[r.Arm]++
		want := 0.9 // P(best) ~ 1 for a: min share 0.1 + (1 - 0.2) x 1
		if r.Arm == "b" {
			want = 0.1
		}
		if math.Abs(r.ArmPropensity-want) > 0.01 || r.Propensity != r.ArmPropensity {
			t.Fatalf("arm %s propensity %g, want about %g", r.Arm, r.ArmPropensity, want)
		}
	}
	// b keeps about its 10% floor: 20 expected, binomial sd ~4.2.
	if counts["b"] < 6 || counts["b"] > 40 {
		t.Fatalf("allocation %v with min share 0.1", counts)
	}
}

func TestSampledActionsAndMetrics(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.Sample = true })
	c := NewClient(ts.URL)
	ctx := context.Background()
	seen := map[int]bool{}
	for i := 0; i < 60; i++ {
		r, err := c.Act(ctx, ActRequest{SessionID: "m", Observation: "o", AvailableActions: shirtActions, Arm: "b"})
		if err != nil {
			t.Fatal(err)
		}
		seen[r.Index] = true
		if math.Abs(r.ActionPropensity-r.Probabilities[r.Index]) > 1e-12 {
			t.Fatalf("sampled propensity %g, probability %g", r.ActionPropensity, r.Probabilities[r.Index])
		}
	}
	if len(seen) < 3 {
		t.Fatalf("sampling at temperature 2 chose only %v", seen)
	}
	reward := 1.0
	if _, err := c.Feedback(ctx, FeedbackRequest{SessionID: "m", Reward: &reward}); err != nil {
		t.Fatal(err)
	}
	post(t, ts.URL+"/act", `{bad`)
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`shopagent_http_requests_total{code="200",route="/act"} 60`,
		`shopagent_http_requests_total{code="400",route="/act"} 1`,
		`shopagent_decisions_total{arm="b"} 60`,
		`shopagent_decisions_total{arm="a"} 0`,
		`shopagent_rewards_total{arm="b",source="feedback"} 1`,
		`shopagent_successes_total{arm="b"} 1`,
		`shopagent_http_request_duration_seconds_count{route="/act"} 61`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestConcurrentSessions(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.Mode, c.Weights = ModeThompson, nil })
	c := NewClient(ts.URL)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				sid := fmt.Sprintf("w%d-%d", w, i)
				var arm string
				for s := 0; s < 3; s++ {
					r, err := c.Act(ctx, ActRequest{SessionID: sid, Observation: "o", AvailableActions: shirtActions})
					if err != nil {
						errs <- err
						return
					}
					if arm != "" && r.Arm != arm {
						errs <- fmt.Errorf("session %s switched arms", sid)
						return
					}
					arm = r.Arm
				}
				reward := float64(w % 2)
				if _, err := c.Feedback(ctx, FeedbackRequest{SessionID: sid, Reward: &reward}); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	arms, _ := c.Arms(ctx)
	if arms.Arms[0].Episodes+arms.Arms[1].Episodes != 160 {
		t.Fatalf("arms %+v", arms)
	}
}

// TestClientErrorsCountedAndSampled: every 4xx is counted by route, code and cause; the
// log has one line per route and status per RejectLogEvery, saying how many it left out.
func TestClientErrorsCountedAndSampled(t *testing.T) {
	var logs syncBuffer
	ts := startServer(t, func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		c.RejectLogEvery = time.Hour
	})
	for i := 0; i < 5; i++ {
		if code, _ := post(t, ts.URL+"/act", `{bad`); code != 400 {
			t.Fatalf("malformed JSON: %d", code)
		}
	}
	if code, _ := post(t, ts.URL+"/act", actBody("x", "click[a]"), "Content-Type", "text/plain"); code != 415 {
		t.Fatalf("text/plain: %d", code)
	}
	if n := strings.Count(logs.String(), `"msg":"request rejected"`); n != 2 {
		t.Fatalf("%d rejected lines for 5 x 400 and 1 x 415, want 2 (one per status):\n%s", n, logs.String())
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`shopagent_http_errors_total{cause="client",code="400",route="/act"} 5`,
		`shopagent_http_errors_total{cause="client",code="415",route="/act"} 1`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The next 400 after the sampling window says how many it left out.
	ts.rejectMu.Lock()
	for k, v := range ts.rejectLast {
		v.last = time.Time{}
		ts.rejectLast[k] = v
	}
	ts.rejectMu.Unlock()
	post(t, ts.URL+"/act", `{bad`)
	if !strings.Contains(logs.String(), `"not_logged_since_last":4`) {
		t.Fatalf("the next logged 400 does not count the 4 left out:\n%s", logs.String())
	}
}

// A request's greedy flag takes the argmax even when the server samples, and its
// action propensity is then 1 (the decision was not drawn).
func TestGreedyRequestUnderSampling(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.Sample = true })
	c := NewClient(ts.URL)
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		r, err := c.Act(ctx, ActRequest{SessionID: "g", Observation: "o", AvailableActions: shirtActions, Arm: "b", Greedy: true})
		if err != nil {
			t.Fatal(err)
		}
		for j, p := range r.Probabilities {
			if p > r.Probabilities[r.Index] || (p == r.Probabilities[r.Index] && j < r.Index) {
				t.Fatalf("greedy request got index %d (p %g), but %d has p %g", r.Index, r.Probabilities[r.Index], j, p)
			}
		}
		if r.ActionPropensity != 1 {
			t.Fatalf("greedy decision logged with action propensity %g", r.ActionPropensity)
		}
	}
}

// With a long time refresh, the Thompson allocation is still recomputed after
// PBestRefreshFeedback rewards, so a short test adapts to what it has seen.
func TestAllocationRefreshesAfterFeedback(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.Mode, c.Weights, c.MinShare, c.PBestRefresh, c.PBestRefreshFeedback = ModeThompson, nil, 0.1, time.Hour, 3
	})
	c := NewClient(ts.URL)
	ctx := context.Background()
	first, err := c.Act(ctx, ActRequest{SessionID: "s0", Observation: "o", AvailableActions: shirtActions})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(first.ArmPropensity-0.5) > 0.05 {
		t.Fatalf("equal priors: arm propensity %g, want about 0.5", first.ArmPropensity)
	}
	// Rewards arrive: arm a always succeeds, b never.
	for i := 0; i < 40; i++ {
		ts.store.(*MemoryStore).Observe("a", 1)
		ts.store.(*MemoryStore).Observe("b", 0)
	}
	one, zero := 1.0, 0.0
	for i := 1; i <= 3; i++ {
		sid := fmt.Sprintf("s%d", i)
		r, err := c.Act(ctx, ActRequest{SessionID: sid, Observation: "o", AvailableActions: shirtActions})
		if err != nil {
			t.Fatal(err)
		}
		// Until the third reward the cached allocation holds.
		if math.Abs(r.ArmPropensity-0.5) > 0.05 {
			t.Fatalf("allocation changed after %d rewards: propensity %g", i-1, r.ArmPropensity)
		}
		rew := &zero
		if r.Arm == "a" {
			rew = &one
		}
		if _, err := c.Feedback(ctx, FeedbackRequest{SessionID: sid, Reward: rew}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := c.Act(ctx, ActRequest{SessionID: "s4", Observation: "o", AvailableActions: shirtActions})
	if err != nil {
		t.Fatal(err)
	}
	want := 0.9
	if r.Arm == "b" {
		want = 0.1
	}
	if math.Abs(r.ArmPropensity-want) > 0.01 {
		t.Fatalf("after 3 rewards arm %s has propensity %g, want about %g", r.Arm, r.ArmPropensity, want)
	}
}
