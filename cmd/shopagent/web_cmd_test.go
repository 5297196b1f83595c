package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"shopagent/env/shopgen"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
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

// TestEnvWebCmd runs `env web` on a loopback port, fetches the start page and
// stops it by cancelling its context.
func TestEnvWebCmd(t *testing.T) {
	data := t.TempDir()
	cfg := shopgen.DefaultConfig()
	cfg.Goals = shopgen.SampleGoals(10, 10, 20)
	if err := shopgen.Generate(cfg, data, nil); err != nil {
		t.Fatal(err)
	}
	rec := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRootCmd()
	var out syncBuffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"env", "web", "--addr", "127.0.0.1:0", "--data", data, "--split", "dev", "--record", rec})
	errc := make(chan error, 1)
	go func() { errc <- root.ExecuteContext(ctx) }()
	re := regexp.MustCompile(`web shop on (http://\S+)`)
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		}
		select {
		case err := <-errc:
			t.Fatalf("env web exited early: %v; output %q", err, out.String())
		default:
		}
	}
	if base == "" {
		t.Fatalf("no URL printed: %q", out.String())
	}
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<b>dev</b> split") || !strings.Contains(string(body), `id="replay-files"`) {
		t.Fatalf("start page: %d\n%s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("env web after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("env web did not stop")
	}
}

func TestEnvWebCmdBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"env", "web", "--obs", "html"},
		{"env", "web", "--addr", "127.0.0.1:0", "--data", t.TempDir()},
	} {
		root := newRootCmd()
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.SetArgs(args)
		if err := root.Execute(); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
