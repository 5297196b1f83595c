package serve

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

// fuzzServer is a server with two lexical arms and the in-process store: nothing in it
// can fail on the server's side, so every 5xx it answers is a client mistake answered as
// a server fault.
func fuzzServer(f *testing.F) http.Handler {
	f.Helper()
	root := f.TempDir()
	var specs []ArmSpec
	for _, name := range []string{"a", "b"} {
		dir := filepath.Join(root, name)
		writeLexical(f, dir, LexicalConfig{Name: "lex-" + name, Bonus: map[string]float64{"buy": 1}})
		specs = append(specs, ArmSpec{Name: name, Dir: dir})
	}
	s, err := New(Config{Arms: specs, Loader: LoadLexicalPolicy, Mode: ModeCanary, Weights: []float64{1, 1},
		Seed: 1, MaxActions: 16, MaxText: 4096, MaxBody: 64 << 10, Logger: quietLogger})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.LoadArms(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Shutdown() })
	return s.Handler()
}

// checkReply fails on a 5xx and on a reply that is not the contract's JSON.
func checkReply(t *testing.T, path string, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("POST %s %q: reply %d is not a JSON object: %q", path, body, rec.Code, rec.Body.String())
	}
	if rec.Code >= 400 {
		if e, _ := m["error"].(string); e == "" {
			t.Fatalf("POST %s %q: %d without an error message: %s", path, body, rec.Code, rec.Body.String())
		}
	}
}

func serveOnce(h http.Handler, path, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// FuzzServer posts generated bodies under generated content types to /act (even route)
// and /feedback (odd route). `make test` runs it for a few seconds after the seeds.
func FuzzServer(f *testing.F) {
	for _, b := range []string{
		actBody("s1", "click[red shirt]", "click[buy now]", "search[red shirt]"),
		actBody("s1", "click[widget [2-pack]]"),
		actBody("s2", "click[a]]", "CLICK[x]", "buy now", "click[]"),
		`{"session_id":"s1","observation":"o","available_actions":["click[a]"],"arm":"b"}`,
		`{"session_id":"s1","reward":1}`, `{"event_id":"e","reward":0.5}`, `{"session_id":"s1","reward":1e400}`,
		`{"session_id":"s1","reward":null}`, `{"session_id":"","event_id":"","reward":-0}`,
		`[]`, `null`, `{}`, `{"session_id":"\u0000"}`, "{\"session_id\":\"\xff\"}", `{"available_actions":[null]}`,
	} {
		for route := uint8(0); route < 2; route++ {
			f.Add(route, "application/json", []byte(b))
		}
	}
	f.Add(uint8(0), "text/plain", []byte(actBody("s3", "click[a]")))
	f.Add(uint8(1), "application/json; charset=utf-16", []byte(`{"session_id":"s1","reward":1}`))
	f.Add(uint8(0), "application/json;;", []byte(`{}`))
	h := fuzzServer(f)
	f.Fuzz(func(t *testing.T, route uint8, contentType string, body []byte) {
		path := []string{"/act", "/feedback"}[route%2]
		checkReply(t, path, body, serveOnce(h, path, contentType, body))
	})
}

// FuzzActFeedback plays generated episodes: an /act with generated fields, then
// /feedback for its event (or its session) with a generated reward, then the same
// feedback again. A 5xx fails; so does a retried feedback that is not answered as the
// first one was.
func FuzzActFeedback(f *testing.F) {
	f.Add("u1", "i want a red shirt", "[button] back to search [button_] red shirt", "click[red shirt]", "search[red [xl] shirt]", "", 1.0, true)
	f.Add("u2", "", "", "click[b01]", "click[buy now]", "a", 0.5, false)
	f.Add("u\n3", "\x00", "\xff\xfe", "click[]", "click[x", "zzz", -1.0, true)
	f.Add("u4", "instr", "obs", "click[a]]", "search[[q]]", "b", 2.0, false)
	h := fuzzServer(f)
	f.Fuzz(func(t *testing.T, session, instruction, observation, a1, a2, arm string, reward float64, byEvent bool) {
		body, _ := json.Marshal(ActRequest{SessionID: session, Instruction: instruction, Observation: observation,
			AvailableActions: []string{a1, a2}, Arm: arm})
		rec := serveOnce(h, "/act", "application/json", body)
		checkReply(t, "/act", body, rec)
		if rec.Code != http.StatusOK {
			return
		}
		var act ActResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &act); err != nil || act.EventID == "" {
			t.Fatalf("act reply %s: %v", rec.Body.String(), err)
		}
		fb := FeedbackRequest{SessionID: session, Reward: &reward}
		if byEvent {
			fb = FeedbackRequest{EventID: act.EventID, Reward: &reward}
		}
		body, _ = json.Marshal(fb)
		first := serveOnce(h, "/feedback", "application/json", body)
		checkReply(t, "/feedback", body, first)
		again := serveOnce(h, "/feedback", "application/json", body)
		checkReply(t, "/feedback", body, again)
		if first.Code == http.StatusOK && (again.Code != http.StatusOK || again.Body.String() != first.Body.String()) {
			t.Fatalf("retried feedback %s: first %d %s, again %d %s", body, first.Code, first.Body.String(), again.Code, again.Body.String())
		}
	})
}
