package webshop

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shopagent/datasets"
	"shopagent/env"
)

func TestUnknownSession(t *testing.T) {
	_, ts := newTestServer(t, Config{})
	if code, body := get(t, ts.URL+"/s/0123456789abcdef"); code != http.StatusNotFound || !strings.Contains(body, "unknown or expired session") {
		t.Errorf("GET unknown session: %d %s", code, body)
	}
	if code, _, body := post(t, ts.URL+"/s/0123456789abcdef/step", url.Values{"action": {"click[buy now]"}}); code != http.StatusNotFound {
		t.Errorf("POST step on unknown session: %d %s", code, body)
	}
	if code, body := get(t, ts.URL+"/no/such/page"); code != http.StatusNotFound {
		t.Errorf("GET unknown path: %d %s", code, body)
	}
}

func TestBadGoalAndActions(t *testing.T) {
	srv, ts := newTestServer(t, Config{})
	for _, g := range []string{"-1", "abc", "1000000"} {
		if code, _, body := post(t, ts.URL+"/new", url.Values{"goal": {g}}); code != http.StatusBadRequest {
			t.Errorf("goal %q: %d %s", g, code, body)
		}
	}
	page := startSession(t, ts.URL, "0")
	step := ts.URL + page + "/step"
	cases := []struct {
		name string
		form url.Values
		code int
		msg  string
	}{
		{"unavailable click", url.Values{"action": {"click[no such button]"}}, http.StatusBadRequest, "is not an action of this page"},
		{"buy on the search page", url.Values{"action": {"click[buy now]"}}, http.StatusBadRequest, "is not an action of this page"},
		{"not an action", url.Values{"action": {"drop table"}}, http.StatusBadRequest, "is not an action of this page"},
		{"empty search", url.Values{"action": {"search[...]"}, "query": {"  [ ] "}}, http.StatusBadRequest, "type something"},
		{"stale form", url.Values{"action": {"search[...]"}, "query": {"shoes"}, "step": {"7"}}, http.StatusConflict, "out of date"},
	}
	for _, c := range cases {
		code, _, body := post(t, step, c.form)
		if code != c.code || !strings.Contains(body, c.msg) {
			t.Errorf("%s: got %d, want %d with %q; body:\n%s", c.name, code, c.code, c.msg, body)
		}
	}
	// None of the rejected actions reached the env: the page is still the
	// search page at step 0.
	code, body := get(t, ts.URL+page)
	if code != http.StatusOK || !strings.Contains(body, `data-page="search" data-step="0"`) {
		t.Fatalf("session page after bad actions: %d\n%s", code, body)
	}
	// A search from a page without a search box is refused too.
	if code, _, body := post(t, step, url.Values{"action": {"search[...]"}, "query": {"red shoes"}, "step": {"0"}}); code != http.StatusSeeOther {
		t.Fatalf("search: %d %s", code, body)
	}
	if code, _, body := post(t, step, url.Values{"action": {"search[...]"}, "query": {"blue shoes"}}); code != http.StatusBadRequest || !strings.Contains(body, "no search box") {
		t.Errorf("search on the results page: %d %s", code, body)
	}
	_ = srv
}

// TestRecordEpisodeHTTP plays an episode with plain form posts (the rule
// agent's moves) and checks the recorded file against an env replay.
func TestRecordEpisodeHTTP(t *testing.T) {
	rec := t.TempDir()
	srv, ts := newTestServer(t, Config{RecordDir: rec, ReplayDir: rec})
	goal := srv.Goals()[1]
	page := startSession(t, ts.URL, "1")
	step := ts.URL + page + "/step"
	actions := []string{env.Search(goal.Instruction)}
	if code, _, body := post(t, step, url.Values{"action": {"search[...]"}, "query": {goal.Instruction}}); code != http.StatusSeeOther {
		t.Fatalf("search: %d %s", code, body)
	}
	_, body := get(t, ts.URL+page)
	i := strings.Index(body, `class="product-link"`)
	if i < 0 {
		t.Fatalf("no product on the results page:\n%s", body)
	}
	j := strings.LastIndex(body[:i], `value="`)
	click := body[j+len(`value="`) : j+strings.Index(body[j:], `" id=`)]
	for _, a := range []string{click, "click[buy now]"} {
		if code, _, body := post(t, step, url.Values{"action": {a}}); code != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", a, code, body)
		}
		actions = append(actions, a)
	}
	_, body = get(t, ts.URL+page)
	if !strings.Contains(body, `id="reward"`) || !strings.Contains(body, `id="recorded"`) {
		t.Fatalf("done page without reward or record:\n%s", body)
	}
	files, err := datasets.Files(rec)
	if err != nil || len(files) != 1 {
		t.Fatalf("recorded files: %v %v", files, err)
	}
	rows, err := datasets.ReadSteps(files[0])
	if err != nil {
		t.Fatal(err)
	}
	want := replayReward(t, srv.cfg.Shop, goal, srv.cfg.Env, actions)
	checkRows(t, rows, actions, want, srv.GoalID(1))
	// A step after the end is refused.
	if code, _, _ := post(t, step, url.Values{"action": {"click[buy now]"}}); code != http.StatusConflict {
		t.Errorf("step after done: %d", code)
	}
}

// replayReward plays actions on a fresh env and returns the final reward.
func replayReward(t *testing.T, shop *env.Shop, goal env.Goal, cfg env.Config, actions []string) float64 {
	t.Helper()
	e := shop.NewEnv(cfg)
	e.Reset(goal)
	var r float64
	for i, a := range actions {
		_, rew, done, info := e.Step(a)
		if !info.Valid {
			t.Fatalf("replay: action %d %q invalid", i, a)
		}
		r = rew
		if done != (i == len(actions)-1) {
			t.Fatalf("replay: done=%v at action %d of %d", done, i, len(actions))
		}
	}
	return r
}

func checkRows(t *testing.T, rows []datasets.Step, actions []string, reward float64, goalID int64) {
	t.Helper()
	if len(rows) != len(actions) {
		t.Fatalf("recorded %d rows, want %d", len(rows), len(actions))
	}
	for i, r := range rows {
		if r.Action != actions[i] {
			t.Errorf("row %d action %q, want %q", i, r.Action, actions[i])
		}
		if r.Source != datasets.SourceHuman || r.Policy != HumanPolicy || r.GoalID != goalID || int(r.Step) != i {
			t.Errorf("row %d labels: source %q policy %q goal %d step %d", i, r.Source, r.Policy, r.GoalID, r.Step)
		}
		if r.EpisodeID != rows[0].EpisodeID || r.FinalReward != reward || r.Done != (i == len(rows)-1) {
			t.Errorf("row %d: episode %q final %v done %v (want reward %v)", i, r.EpisodeID, r.FinalReward, r.Done, reward)
		}
		if r.Observation == "" || len(r.AvailableActions) == 0 {
			t.Errorf("row %d has no observation or actions", i)
		}
		wantIdx := datasets.ActionIndex(r.Action, r.AvailableActions)
		if int(r.ActionIndex) != wantIdx || (strings.HasPrefix(r.Action, "click[") && wantIdx < 0) {
			t.Errorf("row %d action index %d, want %d", i, r.ActionIndex, wantIdx)
		}
	}
	if last := rows[len(rows)-1]; last.Reward != reward {
		t.Errorf("last row reward %v, want %v", last.Reward, reward)
	}
}

func TestReplayBadPaths(t *testing.T) {
	outside := t.TempDir()
	dir := t.TempDir()
	shop := shopForTest(t)
	// A real expert file inside the replay dir, and one outside it that a
	// symbolic link points to.
	goals, _ := shop.SplitGoals("test")
	cfg := datasets.DemoConfig{Goals: goals[:2], Seed: 3, Workers: 1, Env: env.Config{Mode: env.ObsTextRich}}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := datasets.WriteDemos(shop, cfg, filepath.Join(dir, "sub", "expert.parquet")); err != nil {
		t.Fatal(err)
	}
	if _, err := datasets.WriteDemos(shop, cfg, filepath.Join(outside, "secret.parquet")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.parquet"), filepath.Join(dir, "link.parquet")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.parquet"), []byte("not parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, ts := newTestServer(t, Config{ReplayDir: dir})
	rel, _ := filepath.Rel(dir, filepath.Join(outside, "secret.parquet"))
	cases := []struct {
		file string
		code int
	}{
		{"../" + filepath.Base(outside) + "/secret.parquet", http.StatusBadRequest},
		{filepath.ToSlash(rel), http.StatusBadRequest},
		{filepath.Join(outside, "secret.parquet"), http.StatusBadRequest},
		{"sub/../../x.parquet", http.StatusBadRequest},
		{"sub/../sub/expert.parquet", http.StatusBadRequest}, // not clean
		{"link.parquet", http.StatusBadRequest},              // symlink out of the dir
		{"sub/expert.txt", http.StatusBadRequest},
		{`sub\expert.parquet`, http.StatusBadRequest},
		{"missing.parquet", http.StatusNotFound},
		{"junk.parquet", http.StatusUnprocessableEntity},
		{"sub", http.StatusBadRequest},
	}
	for _, c := range cases {
		code, body := get(t, ts.URL+"/replay?file="+url.QueryEscape(c.file))
		if code != c.code {
			t.Errorf("file %q: got %d, want %d\n%s", c.file, code, c.code, body)
		}
		if strings.Contains(body, "expert-") {
			t.Errorf("file %q: the response shows episodes", c.file)
		}
	}
	// The good file lists its episodes; an episode steps; bad episode and
	// step values are refused.
	code, body := get(t, ts.URL+"/replay")
	if code != http.StatusOK || !strings.Contains(body, "sub/expert.parquet") || strings.Contains(body, "secret") {
		t.Fatalf("file list: %d\n%s", code, body)
	}
	code, body = get(t, ts.URL+"/replay?file=sub/expert.parquet")
	if code != http.StatusOK || strings.Count(body, `class="episode-link"`) != 2 {
		t.Fatalf("episode list: %d\n%s", code, body)
	}
	rows, err := datasets.ReadSteps(filepath.Join(dir, "sub", "expert.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	ep := url.QueryEscape(rows[0].EpisodeID)
	code, body = get(t, ts.URL+"/replay?file=sub/expert.parquet&episode="+ep+"&step=1")
	if code != http.StatusOK || !strings.Contains(body, `id="replay-prev"`) || !strings.Contains(body, templateEscape(rows[1].Action)) {
		t.Fatalf("episode step 1: %d\n%s", code, body)
	}
	for _, q := range []string{"&episode=nope", "&episode=" + ep + "&step=-1", "&episode=" + ep + "&step=x", "&episode=" + ep + "&step=100000"} {
		code, _ := get(t, ts.URL+"/replay?file=sub/expert.parquet"+q)
		if code != http.StatusNotFound && code != http.StatusBadRequest {
			t.Errorf("%s: got %d", q, code)
		}
	}
	// Without a replay dir the view is off.
	_, ts2 := newTestServer(t, Config{})
	if code, _ := get(t, ts2.URL+"/replay?file=sub/expert.parquet"); code != http.StatusNotFound {
		t.Errorf("replay without --replay-dir: %d", code)
	}
}

// templateEscape is how html/template writes an action inside text.
func templateEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")
	return r.Replace(s)
}

func TestNewConfigErrors(t *testing.T) {
	shop := shopForTest(t)
	for name, cfg := range map[string]Config{
		"no shop":     {},
		"bad split":   {Shop: shop, Split: "nope"},
		"bad mode":    {Shop: shop, Env: env.Config{Mode: "html"}},
		"missing dir": {Shop: shop, RecordDir: filepath.Join(t.TempDir(), "missing")},
		"file as dir": {Shop: shop, ReplayDir: writeFile(t)},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted the config", name)
		}
	}
}

func writeFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
