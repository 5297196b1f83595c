package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shopagent/serve"
)

// The serve-only binary must not link GoMLX (nor anything of training): `go list -deps`
// lists every package it is built from.
func TestNoGoMLXLinked(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "shopagent/cmd/shopagent-serve").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	has := map[string]bool{}
	for _, d := range deps {
		has[d] = true
		if strings.Contains(d, "gomlx") || d == "shopagent/models" || d == "shopagent/train" || d == "shopagent/export" {
			t.Errorf("shopagent-serve links %s", d)
		}
	}
	// It does link the server and ONNX Runtime (the list is the real one).
	for _, want := range []string{"shopagent/serve", "shopagent/export/onnxrt", "github.com/yalue/onnxruntime_go", "github.com/labstack/echo/v4"} {
		if !has[want] {
			t.Errorf("shopagent-serve does not link %s (deps: %d packages)", want, len(deps))
		}
	}
}

func lexicalArm(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lex")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, serve.LexicalConfigFile), []byte(`{"name":"lex","temperature":0.5}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// On this machine's CPU-only ONNX Runtime library (make onnxruntime), --device cuda stops
// the server at once with one error naming the missing provider and the make target.
func TestServeCUDAWithoutProvider(t *testing.T) {
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"serve", "--arms", "a=" + lexicalArm(t), "--device", "cuda", "--addr", "127.0.0.1:0"})
	err := cmd.Execute()
	if err == nil {
		t.Fatalf("serve --device cuda started without a CUDA provider:\n%s", out.String())
	}
	for _, want := range []string{"libonnxruntime_providers_cuda.so", "make onnxruntime-cuda"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	cmd = newRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"serve", "--arms", "a=" + lexicalArm(t), "--device", "tpu"})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "want cpu or cuda") {
		t.Errorf("--device tpu: %v", err)
	}
}

// The binary serves: /act on a lexical arm answers with one of the offered actions.
func TestServeAct(t *testing.T) {
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"serve", "--arms", "a=" + lexicalArm(t), "--addr", "127.0.0.1:0", "--addr-file", addrFile, "--drain", "1s"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	var addr string
	for deadline := time.Now().Add(20 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			addr = strings.TrimSpace(string(b))
		} else if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", out.String())
		}
	}
	body := `{"session_id":"s1","instruction":"red shoes","observation":"results","available_actions":["click[red shoes]","click[blue hat]"]}`
	var resp serve.ActResponse
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err := http.Post("http://"+addr+"/act", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		code := r.StatusCode
		err = json.NewDecoder(r.Body).Decode(&resp)
		r.Body.Close()
		if code == http.StatusOK && err == nil {
			break
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("/act: status %d, %v", code, err)
		}
	}
	if resp.Action != "click[red shoes]" || resp.Arm != "a" || len(resp.Probabilities) != 2 {
		t.Fatalf("/act answered %+v", resp)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, out.String())
	}
}
