package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shopagent/abtest"
	"shopagent/serve"
	"shopagent/serve/decisionlog"
)

// TestServeAbtestOpe runs `serve` in process on a loopback port with two lexical arms,
// drives it with `abtest --server`, shuts it down (flushing the logs) and evaluates a
// third policy on the logs with `ope`.
func TestServeAbtestOpe(t *testing.T) {
	shopDir := testShopDir(t)
	root := t.TempDir()
	for name, cfg := range map[string]string{
		"greedy": `{"name":"lex-greedy","temperature":0.3}`,
		"flat":   `{"name":"lex-flat","temperature":3}`,
		"target": `{"name":"lex-target","temperature":1,"bonus":{"buy":1}}`,
	} {
		if err := os.MkdirAll(filepath.Join(root, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name, serve.LexicalConfigFile), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logDir, addrFile := filepath.Join(root, "logs"), filepath.Join(root, "addr")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	serveCmd := newRootCmd()
	var serveOut bytes.Buffer
	serveCmd.SetOut(&serveOut)
	serveCmd.SetErr(&serveOut)
	serveCmd.SetArgs([]string{"serve", "--arms", "greedy=" + filepath.Join(root, "greedy") + ",flat=" + filepath.Join(root, "flat"),
		"--mode", "canary", "--weights", "0.5,0.5", "--sample", "--seed", "3", "--addr", "127.0.0.1:0", "--addr-file", addrFile,
		"--logs", logDir, "--log-flush", "1h", "--admin-token", "tok"})
	done := make(chan error, 1)
	go func() { done <- serveCmd.ExecuteContext(ctx) }()
	var addr string
	for deadline := time.Now().Add(20 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			addr = strings.TrimSpace(string(b))
		} else if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", serveOut.String())
		}
	}
	url := "http://" + addr
	outDir := filepath.Join(root, "abtest")
	out, err := run(t, "", "abtest", "--server", url, "--data", shopDir, "--episodes", "12", "--runs", "1",
		"--concurrency", "3", "--out", outDir)
	if err != nil {
		t.Fatalf("abtest --server: %v\n%s", err, out)
	}
	rep, err := abtest.ReadReport(filepath.Join(outDir, abtest.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if rep.TotalEpisodes != 12 || rep.Source != url || len(rep.Arms) != 2 {
		t.Fatalf("report %+v\n%s", rep, out)
	}
	if !strings.Contains(out, "server posteriors now") {
		t.Fatalf("abtest output:\n%s", out)
	}
	// Graceful shutdown flushes the logs.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, serveOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not shut down")
	}
	decs, err := decisionlog.ReadDecisions(logDir)
	if err != nil || len(decs) == 0 {
		t.Fatalf("decision logs: %d, %v", len(decs), err)
	}
	rews, err := decisionlog.ReadRewards(logDir)
	if err != nil || len(rews) != 12 {
		t.Fatalf("reward logs: %d, %v", len(rews), err)
	}
	// datasets inspect reads the server's logs.
	out, err = run(t, "", "datasets", "inspect", logDir)
	if err != nil {
		t.Fatalf("datasets inspect: %v\n%s", err, out)
	}
	for _, want := range []string{"policy server logs", fmt.Sprintf("decisions  %d (0 in the WAL)", len(decs)), "rewards    12 (0 in the WAL)", "greedy", "flat"} {
		if !strings.Contains(out, want) {
			t.Fatalf("datasets inspect output lacks %q:\n%s", want, out)
		}
	}
	jsonPath := filepath.Join(root, "ope.json")
	out, err = run(t, "", "ope", "--logs", logDir, "--policy", filepath.Join(root, "target"), "--ci", "normal", "--json", jsonPath)
	if err != nil {
		t.Fatalf("ope: %v\n%s", err, out)
	}
	for _, want := range []string{"IPS", "SNIPS", "DR", "12 logged episodes"} {
		if !strings.Contains(out, want) {
			t.Fatalf("ope output lacks %q:\n%s", want, out)
		}
	}
	var got struct {
		Report serve.OPEReport `json:"report"`
	}
	b, _ := os.ReadFile(jsonPath)
	if err := json.Unmarshal(b, &got); err != nil || got.Report.Episodes != 12 || got.Report.Greedy {
		t.Fatalf("ope json: %v %+v", err, got.Report)
	}
}

func TestServeFlagErrors(t *testing.T) {
	x, y := t.TempDir(), t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "no arms"},
		{[]string{"serve", "--arms", "a"}, "want name=DIR"},
		{[]string{"serve", "--arms", "a=" + x + ",a=" + y}, "used twice"},
		{[]string{"serve", "--arms", "a=" + x + ",b=" + y, "--mode", "canary", "--weights", "1"}, "weights"},
		{[]string{"serve", "--arms", "a=" + x, "--weights", "1"}, "--weights needs --mode canary"},
		{[]string{"serve", "--arms", "a=" + x, "--mode", "epsilon"}, "unknown mode"},
		{[]string{"serve", "--arms", "a=" + x, "--reward-timeout", "2h", "--session-ttl", "1h"}, "shorter than the reward timeout"},
		{[]string{"serve", "--arms", "a=" + x + ",b=" + y, "--min-share", "0.6"}, "share"},
		{[]string{"serve", "--arms", "a=" + x, "--store-outage", "maybe"}, "--store-outage"},
		{[]string{"serve", "--arms", "a=" + x, "--log-format", "xml"}, "--log-format"},
		// A policy directory that does not exist stops the server at once, saying what to
		// check, with one "serve:" at most.
		{[]string{"serve", "--arms", "a=" + x + ",ppo=" + filepath.Join(x, "nope")}, "arm ppo: policy directory " + filepath.Join(x, "nope") + " does not exist (check --arms"},
		{[]string{"ope", "--logs", "x"}, "required"},
	} {
		_, err := run(t, "", c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Count(err.Error(), "serve:") > 1 {
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}
