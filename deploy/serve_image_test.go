package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The serve image builds the serve-only binary (no GoMLX: cmd/shopagent-serve's own test
// checks its imports), runs it, and has a CUDA variant fetching ONNX Runtime's CUDA
// provider through the Makefile; compose's load driver, which needs the full CLI, builds
// the training image.
func TestServeImage(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docker", "Dockerfile.serve"))
	if err != nil {
		t.Fatal(err)
	}
	var builds []string
	entry := ""
	for _, line := range joinContinuations(string(raw)) {
		if strings.Contains(line, "go build") {
			builds = append(builds, line)
		}
		if strings.HasPrefix(line, "ENTRYPOINT ") {
			entry = line
		}
	}
	if len(builds) != 1 || !strings.HasSuffix(strings.TrimSpace(builds[0]), "./cmd/shopagent-serve") {
		t.Errorf("Dockerfile.serve must build ./cmd/shopagent-serve only, builds %q", builds)
	}
	if !strings.Contains(entry, "/usr/local/bin/shopagent-serve") {
		t.Errorf("ENTRYPOINT %q must run shopagent-serve", entry)
	}
	for _, want := range []string{"make onnxruntime-cuda", "make onnxruntime ", "ARG VARIANT=cpu", "libonnxruntime_providers_*.so"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("Dockerfile.serve lacks %q (the CUDA variant)", want)
		}
	}
	if !regexp.MustCompile(`RUNTIME_BASE=nvidia/cuda:13\.\d+\.\d+-cudnn-runtime-ubuntu24\.04`).Match(raw) {
		t.Error("Dockerfile.serve must document the CUDA 13 runtime base of the CUDA variant")
	}
	mk, err := os.ReadFile(filepath.Join("..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^onnxruntime-cuda:`).Match(mk) {
		t.Error("the Makefile has no onnxruntime-cuda target, which Dockerfile.serve runs")
	}
	compose, err := os.ReadFile(filepath.Join("..", "docker", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if i := strings.Index(string(compose), "loadgen:"); i < 0 || !strings.Contains(string(compose[i:]), "dockerfile: docker/Dockerfile.train") {
		t.Error("compose's loadgen (abtest) must build the training image: the serve image has no abtest")
	}
}
