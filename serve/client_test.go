package serve

import (
	"context"
	"io"
	"math"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestServeONNXArm(t *testing.T) {
	if _, err := os.Stat("../third_party/onnxruntime/libonnxruntime.so.1"); err != nil && os.Getenv("SHOPAGENT_ORT_LIB") == "" {
		t.Skip("no ONNX Runtime library")
	}
	_, dir, samples := exportedPolicy(t)
	ts := startServer(t, func(c *Config) {
		c.Arms = []ArmSpec{{"onnx", dir}}
		c.Mode, c.Weights = ModeThompson, nil
		c.Loader = func(d string) (Policy, error) { return LoadONNXPolicy(d, ORTOptions{ActionCacheMB: 16}) }
	})
	direct, err := LoadONNXPolicy(dir, ORTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	c := NewClient(ts.URL)
	for _, s := range append(samples[:min(3, len(samples))], samples[0]) {
		acts := clickActions(s)
		r, err := c.Act(context.Background(), ActRequest{SessionID: "onnx", Observation: s.Text, AvailableActions: acts})
		if err != nil {
			t.Fatal(err)
		}
		d, err := direct.Act("", s.Text, acts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range acts {
			if math.Abs(r.Probabilities[i]-d.Probabilities[i]) > 1e-6 {
				t.Fatalf("served probability %g, direct %g", r.Probabilities[i], d.Probabilities[i])
			}
			if d.Probabilities[i] > d.Probabilities[r.Index] {
				t.Fatalf("greedy served %d, but %d is likelier", r.Index, i)
			}
		}
		if r.Arm != "onnx" || r.PolicySHA256 != direct.Info().SHA256 || math.Abs(r.Value-d.Value) > 1e-6 {
			t.Fatalf("reply %+v", r)
		}
	}
	// The arm's action cache is on /metrics: the repeated page's actions were hits.
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	hits := regexp.MustCompile(`shopagent_action_cache_hits_total\{arm="onnx"\} (\d+)`).FindSubmatch(body)
	misses := regexp.MustCompile(`shopagent_action_cache_misses_total\{arm="onnx"\} (\d+)`).FindSubmatch(body)
	if hits == nil || misses == nil || string(hits[1]) == "0" || string(misses[1]) == "0" ||
		!strings.Contains(string(body), `shopagent_action_cache_entries{arm="onnx"}`) {
		t.Fatalf("no action cache metrics with hits and misses:\n%s", body)
	}
}
