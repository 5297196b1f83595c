package onnxrt

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

// probe_library dlopens path and returns NULL when it loads (it stays loaded: ONNX
// Runtime loads it next), else the loader's message (static storage of dlerror).
static const char *probe_library(const char *path, int global) {
	void *h = dlopen(path, RTLD_LAZY | (global ? RTLD_GLOBAL : RTLD_LOCAL));
	if (h == NULL) {
		const char *e = dlerror();
		return e == NULL ? "unknown dlopen error" : e;
	}
	return NULL;
}
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unsafe"
)

// CUDA provider files: ONNX Runtime's core library loads them from its own directory when a
// session asks for the CUDA execution provider (the "provider bridge").
const (
	ProvidersSharedFile = "libonnxruntime_providers_shared.so"
	ProvidersCUDAFile   = "libonnxruntime_providers_cuda.so"
)

// CUDADir is where `make onnxruntime-cuda` puts ONNX Runtime with its CUDA provider,
// relative to the repository root.
const CUDADir = "third_party/onnxruntime-cuda"

// cudaLibraries are the CUDA 13 libraries the CUDA provider of ONNX Runtime 1.29 links
// against (ldd of libonnxruntime_providers_cuda.so), besides the driver's libcuda.so.1.
const cudaLibraries = "libcublasLt.so.13, libcublas.so.13, libcudart.so.13, libcurand.so.10"

// ErrCUDAUnavailable is wrapped by every error saying that the CUDA execution provider
// cannot be used (missing provider files, missing CUDA libraries, no driver).
var ErrCUDAUnavailable = errors.New("onnxrt: CUDA execution provider unavailable")

// CheckCUDA checks that the ONNX Runtime library lib (see ResolveLibrary; it is loaded,
// as Init does) can use its CUDA execution provider on this machine: the provider files
// sit beside it, are of the library's ONNX Runtime version, and load, with every library
// they need. It does so before ONNX Runtime tries (ONNX Runtime only reports "Failed to
// load shared library", and logs the reason to stderr), so that the error names the
// missing file and says what to install. It does not check that a GPU is present: the
// driver reports that when a session is created.
func CheckCUDA(lib string) error {
	version, err := Init(lib)
	if err != nil {
		return err
	}
	path := loadedLibrary()
	ortEnv.mu.Lock()
	defer ortEnv.mu.Unlock()
	if ortEnv.cudaOK == path {
		return nil
	}
	if err := checkCUDAFiles(path, version); err != nil {
		return err
	}
	ortEnv.cudaOK = path
	return nil
}

// checkCUDAFiles does CheckCUDA's work for the loaded library path of ONNX Runtime version.
func checkCUDAFiles(path, version string) error {
	dir := filepath.Dir(path)
	var missing []string
	for _, f := range []string{ProvidersSharedFile, ProvidersCUDAFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: ONNX Runtime %s at %s has no %s beside it (a CPU-only library); "+
			"run `make onnxruntime-cuda` and give --ort-lib %s/libonnxruntime.so.1 (or set %s)",
			ErrCUDAUnavailable, version, path, strings.Join(missing, " and "), CUDADir, LibEnvVar)
	}
	// The provider must be of the core's version (the provider bridge is not a stable
	// interface): its version string, NUL-terminated, is in the file.
	cudaPath := filepath.Join(dir, ProvidersCUDAFile)
	ok, err := fileContains(cudaPath, []byte("\x00"+version+"\x00"))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCUDAUnavailable, err)
	}
	if !ok {
		return fmt.Errorf("%w: %s is not of ONNX Runtime %s, the version of %s (core and provider must be one version: "+
			"run `make onnxruntime-cuda` and give --ort-lib %s/libonnxruntime.so.1)", ErrCUDAUnavailable, cudaPath, version, path, CUDADir)
	}
	// The shared provider library goes in with RTLD_GLOBAL, as ONNX Runtime loads it: the
	// CUDA provider resolves symbols against it.
	for _, f := range []struct {
		name   string
		global bool
	}{{ProvidersSharedFile, true}, {ProvidersCUDAFile, false}} {
		p := filepath.Join(dir, f.name)
		if msg := probeLibrary(p, f.global); msg != "" {
			return fmt.Errorf("%w: loading %s: %s; %s", ErrCUDAUnavailable, p, msg, cudaInstallHint(msg))
		}
	}
	return nil
}

// fileContains reports whether the file holds needle, reading it in blocks.
func fileContains(path string, needle []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("onnxrt: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20+len(needle))
	keep := 0
	for {
		n, err := io.ReadFull(f, buf[keep:])
		n += keep
		if bytes.Contains(buf[:n], needle) {
			return true, nil
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("onnxrt: read %s: %w", path, err)
		}
		keep = min(len(needle)-1, n)
		copy(buf, buf[n-keep:n])
	}
}

// probeLibrary dlopens path and returns "" when it loads, else the loader's message.
func probeLibrary(path string, global bool) string {
	cs := C.CString(path)
	defer C.free(unsafe.Pointer(cs))
	g := C.int(0)
	if global {
		g = 1
	}
	if msg := C.probe_library(cs, g); msg != nil {
		return C.GoString(msg)
	}
	return ""
}

// cudaInstallHint says what to install given the loader's message about a provider file.
func cudaInstallHint(msg string) string {
	missing, _, ok := strings.Cut(msg, ": cannot open shared object file")
	switch {
	case ok && strings.HasPrefix(missing, "libcuda.so"):
		return "the NVIDIA driver's " + missing + " is not on the loader path: this machine has no NVIDIA driver (use --device cpu), or add the driver's library directory to LD_LIBRARY_PATH"
	case ok && !strings.Contains(missing, "/"):
		return missing + " is not on the loader path: the CUDA provider of ONNX Runtime 1.29 needs the CUDA 13 runtime (" +
			cudaLibraries + "): install it (e.g. the nvidia/cuda:13.0.x-runtime images, or the pip wheels nvidia-cublas, " +
			"nvidia-cuda-runtime and nvidia-curand with their lib directories on LD_LIBRARY_PATH), or use --device cpu"
	}
	return "the CUDA provider needs the CUDA 13 runtime (" + cudaLibraries + ") and the NVIDIA driver (libcuda.so.1) on the loader path, or use --device cpu"
}
