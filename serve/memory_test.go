package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"shopagent/export"
	"shopagent/export/exporttest"
)

// MemoryBound512MiB is the documented bound (docs/SERVE.md) on the resident memory one
// /act request of 512 actions (the --max-actions default) adds to a warm server running a
// small-preset policy at the serving limits (states of 512 tokens, actions of 32), scored
// in chunks of DefaultChunkActions: beyond what the request puts in the action cache,
// which is capped by --action-cache-mb per arm.
const MemoryBound512MiB = 8

// servingFixture is a small-preset policy exported at the serving limits.
var servingFixture struct {
	sync.Once
	root, dir string
	err       error
}

func servingPolicy(t *testing.T) string {
	t.Helper()
	f := &servingFixture
	f.Do(func() {
		if f.root, f.err = os.MkdirTemp("", "shopagent-serve-mem-"); f.err != nil {
			return
		}
		ckpt := filepath.Join(f.root, "ckpt")
		f.dir = filepath.Join(f.root, "policy")
		if _, f.err = exporttest.Checkpoint(ckpt, exporttest.Options{Preset: "small", MaxStateLen: 512, MaxActionLen: 32, Seed: 5}); f.err != nil {
			return
		}
		_, f.err = export.Export(ckpt, f.dir, export.Options{SampleGoals: 1})
	})
	if f.err != nil {
		t.Fatal(f.err)
	}
	t.Cleanup(func() {}) // removed by TestMain's cleanup of servingFixture.root
	return f.dir
}

// peakRSSMiB returns the process's peak resident set (VmHWM) in MiB.
func peakRSSMiB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// actionsBody is an /act body with n distinct actions of about 40 words each (over the
// 32-token action limit) and an observation of ~40 KB (over the 512-token state limit).
func actionsBody(session string, n int) []byte {
	acts := make([]string, n)
	for i := range acts {
		acts[i] = fmt.Sprintf("click[size %d soft cotton crew neck shirt %s]", i, strings.Repeat("with long sleeves and a pocket ", 5))
	}
	obs := "[button] back to search [button_] page 1 (total results: 50) [button] next > [button_] " +
		strings.Repeat("[button] b0123456789 [button_] soft cotton crew neck shirt in red $19.99 ", 500)
	b, _ := json.Marshal(ActRequest{SessionID: session, Instruction: "i want a red cotton shirt under 30 dollars", Observation: obs, AvailableActions: acts})
	return b
}

// runMemoryChild is the child of TestMemoryPer512ActionRequest: a server with one ONNX
// arm (policy $SERVE_TEST_MEM_DIR, chunks of $SERVE_TEST_MEM_CHUNK actions); it serves a
// 10-action request, then a 512-action one, and prints its peak RSS after each.
func runMemoryChild() int {
	chunk, _ := strconv.Atoi(os.Getenv("SERVE_TEST_MEM_CHUNK"))
	loader := func(dir string) (Policy, error) {
		cacheMB := 64
		if v := os.Getenv("SERVE_TEST_MEM_CACHE"); v != "" {
			cacheMB, _ = strconv.Atoi(v)
		}
		return LoadONNXPolicy(dir, ORTOptions{ActionCacheMB: cacheMB, ChunkActions: chunk})
	}
	s, err := New(Config{Arms: []ArmSpec{{"a", os.Getenv("SERVE_TEST_MEM_DIR")}}, Loader: loader, Mode: ModeCanary,
		Weights: []float64{1}, Logger: quietLogger})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := s.LoadArms(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	h := s.Handler()
	for i, n := range []int{10, 10, 512} {
		rec := serveOnce(h, "/act", "application/json", actionsBody(fmt.Sprintf("m%d", i), n))
		if rec.Code != http.StatusOK {
			fmt.Fprintln(os.Stderr, rec.Code, rec.Body.String())
			return 1
		}
		fmt.Printf("%d %.1f\n", n, peakRSSMiB())
	}
	return 0
}

func init() {
	if os.Getenv("SERVE_TEST_MEM_CHILD") == "1" {
		os.Exit(runMemoryChild())
	}
}

// memoryGrowth runs the child and returns its peak RSS after the warm-up and after the
// 512-action request.
func memoryGrowth(t *testing.T, dir string, chunk, cacheMB int) (warm, after float64) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SERVE_TEST_MEM_CHILD=1", "SERVE_TEST_MEM_DIR="+dir, "SERVE_TEST_MEM_CHUNK="+strconv.Itoa(chunk),
		"SERVE_TEST_MEM_CACHE="+strconv.Itoa(cacheMB))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("memory child: %v\n%s", err, errb.String())
	}
	lines := strings.Fields(out.String())
	if len(lines) != 6 {
		t.Fatalf("memory child printed %q", out.String())
	}
	warm, _ = strconv.ParseFloat(lines[3], 64)
	after, _ = strconv.ParseFloat(lines[5], 64)
	return warm, after
}

// TestMemoryPer512ActionRequest: one 512-action request adds at most MemoryBound512MiB
// to a warm server's peak resident memory without an action cache, and at most that plus
// the cache's cap with one.
func TestMemoryPer512ActionRequest(t *testing.T) {
	dir := servingPolicy(t)
	for _, cacheMB := range []int{0, 64} {
		warm, after := memoryGrowth(t, dir, DefaultChunkActions, cacheMB)
		t.Logf("action cache %d MiB, chunks of %d actions: peak RSS %.1f MiB warm, %.1f MiB after a 512-action request (+%.1f)",
			cacheMB, DefaultChunkActions, warm, after, after-warm)
		if after-warm > float64(MemoryBound512MiB+cacheMB) {
			t.Fatalf("action cache %d MiB: a 512-action request added %.1f MiB to the peak RSS, over the documented %d MiB + the cache's cap",
				cacheMB, after-warm, MemoryBound512MiB)
		}
	}
	if testing.Verbose() {
		w, a := memoryGrowth(t, dir, 1<<20, 0)
		t.Logf("one ONNX Runtime run for all 512 actions, no cache: peak RSS %.1f MiB warm, %.1f MiB after (+%.1f)", w, a, a-w)
	}
}
