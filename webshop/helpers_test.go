package webshop

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"shopagent/env"
	"shopagent/env/shopgen"
)

// testDir holds the generated shop of the test binary (set by TestMain).
var testDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "webshop-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testShop generates a small built-in shop once per test binary.
var testShop = sync.OnceValues(func() (*env.Shop, error) {
	dir := filepath.Join(testDir, "shop")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := shopgen.DefaultConfig()
	cfg.Goals = shopgen.SampleGoals(30, 30, 90)
	if err := shopgen.Generate(cfg, dir, nil); err != nil {
		return nil, err
	}
	return env.OpenShop(dir, env.ShopOptions{Seed: 1})
})

func shopForTest(t *testing.T) *env.Shop {
	t.Helper()
	shop, err := testShop()
	if err != nil {
		t.Fatalf("test shop: %v", err)
	}
	return shop
}

// newTestServer starts the web shop on a loopback port.
func newTestServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Shop == nil {
		cfg.Shop = shopForTest(t)
	}
	cfg.Logf = t.Logf
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts
}

// noRedirect is an HTTP client that returns redirects as they are.
func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// post posts a form and returns the status, the Location header and the body.
func post(t *testing.T, u string, form url.Values) (int, string, string) {
	t.Helper()
	resp, err := noRedirect().PostForm(u, form)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startSession starts goal i and returns the session's page path.
func startSession(t *testing.T, base string, goal string) string {
	t.Helper()
	code, loc, body := post(t, base+"/new", url.Values{"goal": {goal}})
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/s/") {
		t.Fatalf("POST /new goal=%s: %d %q %s", goal, code, loc, body)
	}
	return loc
}
