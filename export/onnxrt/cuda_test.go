package onnxrt

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot returns the directory holding go.mod above the test's working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("no go.mod above %s", wd)
		}
	}
}

// The CPU library of `make onnxruntime` (which `make test` installs)
// has no CUDA provider beside it: --device cuda must say so, naming the missing files and
// the make target, before ONNX Runtime is asked.
func TestCheckCUDAWithoutProvider(t *testing.T) {
	lib, err := ResolveLibrary("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(lib); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ProvidersSharedFile, ProvidersCUDAFile} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(lib), f)); err == nil {
			t.Fatalf("%s has %s beside it: this test needs the CPU-only library of make onnxruntime", lib, f)
		}
	}
	err = CheckCUDA(lib)
	if !errors.Is(err, ErrCUDAUnavailable) {
		t.Fatalf("CheckCUDA(%s) = %v, want ErrCUDAUnavailable", lib, err)
	}
	for _, want := range []string{ProvidersCUDAFile, ProvidersSharedFile, "make onnxruntime-cuda", CUDADir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// A session on the CUDA device fails the same way (no panic, no ONNX Runtime call).
	model := filepath.Join(t.TempDir(), ModelFile)
	if err := os.WriteFile(model, []byte("not reached"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = NewSession(model, Options{Lib: lib, Device: DeviceCUDA})
	if !errors.Is(err, ErrCUDAUnavailable) || !strings.Contains(err.Error(), ProvidersCUDAFile) {
		t.Fatalf("NewSession on cuda: %v", err)
	}
}

// With the provider files of `make onnxruntime-cuda`: on a machine without the CUDA 13
// runtime the error names the first library the loader could not find and what to
// install; on a machine with it the provider loads. SHOPAGENT_REQUIRE_ORT_CUDA=1 (set by
// `make test-cuda-error` and bench/gpu_check.sh) turns a missing provider directory into a
// failure instead of a skip.
func TestCheckCUDAWithProvider(t *testing.T) {
	lib := filepath.Join(repoRoot(t), CUDADir, "libonnxruntime.so.1")
	if _, err := os.Stat(filepath.Join(filepath.Dir(lib), ProvidersCUDAFile)); err != nil {
		if os.Getenv("SHOPAGENT_REQUIRE_ORT_CUDA") == "1" {
			t.Fatalf("no CUDA provider (%v): run make onnxruntime-cuda", err)
		}
		t.Skipf("no CUDA provider in %s (make onnxruntime-cuda downloads it, 179 MB)", CUDADir)
	}
	// One process loads one ONNX Runtime library: the checks run in child processes of
	// this test binary, one on the CUDA directory's library, one on the CPU library of
	// `make onnxruntime` with the CUDA directory's provider files linked beside it (another
	// ONNX Runtime version: refused).
	switch os.Getenv("SHOPAGENT_CUDA_CHILD") {
	case "":
		cpuLib, err := ResolveLibrary("")
		if err != nil {
			t.Fatal(err)
		}
		mixed := t.TempDir()
		for _, l := range []struct{ from, to string }{
			{cpuLib, "libonnxruntime.so.1"},
			{filepath.Join(filepath.Dir(lib), ProvidersSharedFile), ProvidersSharedFile},
			{filepath.Join(filepath.Dir(lib), ProvidersCUDAFile), ProvidersCUDAFile},
		} {
			if err := os.Symlink(l.from, filepath.Join(mixed, l.to)); err != nil {
				t.Fatal(err)
			}
		}
		for _, child := range []struct{ mode, lib string }{{"provider", lib}, {"mixed", filepath.Join(mixed, "libonnxruntime.so.1")}} {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestCheckCUDAWithProvider$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "SHOPAGENT_CUDA_CHILD="+child.mode, "SHOPAGENT_CUDA_CHILD_LIB="+child.lib)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestCheckCUDAWithProvider") {
				t.Fatalf("child %s: %v\n%s", child.mode, err, out)
			}
			t.Logf("child %s:\n%s", child.mode, out)
		}
		return
	case "mixed":
		lib = os.Getenv("SHOPAGENT_CUDA_CHILD_LIB")
		version, err := Init(lib)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckCUDA(lib)
		t.Logf("CheckCUDA(%s): %v", lib, err)
		if !errors.Is(err, ErrCUDAUnavailable) || !strings.Contains(err.Error(), "is not of ONNX Runtime "+version) {
			t.Fatalf("ONNX Runtime %s with another version's CUDA provider: CheckCUDA = %v", version, err)
		}
		return
	}
	lib = os.Getenv("SHOPAGENT_CUDA_CHILD_LIB")
	missing := ""
	for _, l := range strings.Split(cudaLibraries, ", ") {
		if msg := probeLibrary(l, false); msg != "" {
			missing = l
			break
		}
	}
	err := CheckCUDA(lib)
	t.Logf("CheckCUDA(%s): %v", lib, err)
	if missing == "" {
		if msg := probeLibrary("libcuda.so.1", false); msg != "" {
			if !errors.Is(err, ErrCUDAUnavailable) || !strings.Contains(err.Error(), "libcuda.so.1") || !strings.Contains(err.Error(), "NVIDIA driver") {
				t.Fatalf("CUDA runtime present, no driver: CheckCUDA = %v", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("CUDA runtime and driver present, but CheckCUDA = %v", err)
		}
		return
	}
	if !errors.Is(err, ErrCUDAUnavailable) {
		t.Fatalf("CheckCUDA(%s) = %v, want ErrCUDAUnavailable (%s is missing here)", lib, err, missing)
	}
	msg := err.Error()
	for _, want := range []string{ProvidersCUDAFile, ": cannot open shared object file", "CUDA 13", "--device cpu"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	// The loader reports the first needed library it cannot find: one of the CUDA
	// libraries, and at least one is missing here.
	named := false
	for _, l := range strings.Split(cudaLibraries, ", ") {
		named = named || strings.Contains(msg, l+": cannot open shared object file")
	}
	if !named {
		t.Errorf("error %q names none of %s", msg, cudaLibraries)
	}
}

func TestCUDAInstallHint(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{"libcublasLt.so.13: cannot open shared object file: No such file or directory", "libcublasLt.so.13 is not on the loader path"},
		{"libcuda.so.1: cannot open shared object file: No such file or directory", "NVIDIA driver's libcuda.so.1"},
		{"/x/libonnxruntime_providers_cuda.so: undefined symbol: Provider_GetHost", "CUDA 13 runtime"},
	} {
		if got := cudaInstallHint(tc.msg); !strings.Contains(got, tc.want) {
			t.Errorf("cudaInstallHint(%q) = %q, want it to contain %q", tc.msg, got, tc.want)
		}
	}
}
