package models

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gomlx/go-xla/pkg/pjrt"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/backends/xla"
)

// DefaultBackend is the backend NewBackend uses when given an empty name and
// $GOMLX_BACKEND is unset: GoMLX's pure-Go backend ("simplego").
const DefaultBackend = "go"

// DefaultGoConfig is the pure-Go backend configuration used for a bare "go" (or "").
//
//   - parallelism=-1: GoMLX v0.26.0's default worker pool is limited to 2 x NumCPU tasks and
//     is shared by the op scheduler (independent ops run in parallel) and by DotGeneral (which
//     waits on the same pool for its sub-tasks): on a 2-core machine training hung at 0% CPU
//     in nested workersPool.WaitToStart. With -1 the pool is unbounded, nothing ever waits
//     for a slot, so it cannot deadlock, and independent ops still overlap (measured ~25%
//     faster per training step than "ops_sequential", the other deadlock-free setting).
//     simplego prints "SimpleGo backend: parallelism set to -1" on stdout when it parses it.
//   - dotgeneral_large: always use simplego's blocked matrix-multiplication kernel. By
//     default products whose output per batch element is at most 128x128 (attention scores,
//     128x128 weight gradients) go to a non-blocked loop that ran at about half the speed.
//
// See docs/GOMLX.md for the measurements.
const DefaultGoConfig = "parallelism=-1,dotgeneral_large"

// xlaBackendNames are the names under which GoMLX registers its XLA (PJRT) backend.
var xlaBackendNames = []string{"xla", "stablehlo", "hlo", "shlo"}

// NewBackend returns a GoMLX backend.
//
// name is "<backend>" or "<backend>:<config>":
//
//   - "" uses $GOMLX_BACKEND when set, otherwise DefaultBackend ("go").
//   - "go" is the pure-Go backend with DefaultGoConfig, its float32 matrix products run on
//     package matmul's SIMD kernels (see MatmulKernel and MatmulEnvVar); "go:<config>" passes <config>
//     verbatim to simplego instead (comma-separated: parallelism=N, ops_sequential,
//     ops_parallel, dotgeneral_small, dotgeneral_large). Keep parallelism=-1 or
//     ops_sequential in any custom config, or training can deadlock on small machines.
//   - "xla" (aliases "stablehlo", "hlo", "shlo") uses a PJRT plugin: "xla" picks the first
//     plugin found (cuda before cpu), "xla:cuda" or "xla:cpu" a named one, "xla:/path/to/
//     pjrt_c_api_x_plugin.so" an explicit file; options follow a comma ("xla:cuda,tf32").
//     Plugins are searched in $PJRT_PLUGIN_LIBRARY_PATH (":"-separated; go-xla reads it at
//     program start), else ~/.local/lib/go-xla, /usr/local/lib/go-xla and the system
//     library paths.
//
// NewBackend never downloads anything: GoMLX's XLA backend normally auto-installs missing
// plugins from the internet (unless $GOMLX_NO_AUTO_INSTALL is set); here the plugin is
// resolved to an absolute path first, which bypasses auto-install, and a missing plugin is
// a clear error instead.
func NewBackend(name string) (backends.Backend, error) {
	spec := strings.TrimSpace(name)
	if spec == "" {
		spec = strings.TrimSpace(os.Getenv(backends.ConfigEnvVar))
	}
	if spec == "" {
		spec = DefaultBackend
	}
	kind, config, _ := strings.Cut(spec, ":")
	kind = strings.ToLower(strings.TrimSpace(kind))
	switch {
	case kind == simplego.BackendName:
		if config == "" {
			config = DefaultGoConfig
		}
		if _, err := MatmulKernel(); err != nil {
			return nil, fmt.Errorf("models: creating backend %q: %w", spec, err)
		}
		backend, err := newSimpleGo(config)
		if err != nil {
			return nil, fmt.Errorf("models: creating backend %q: %w", spec, err)
		}
		return backend, nil
	case slices.Contains(xlaBackendNames, kind):
		backend, err := newXLABackend(config)
		if err != nil {
			return nil, fmt.Errorf("models: creating backend %q: %w", spec, err)
		}
		return backend, nil
	default:
		return nil, fmt.Errorf("models: unknown backend %q (valid: go, go:<config>, xla, xla:cuda, xla:cpu, xla:/path/plugin.so)", spec)
	}
}

// newXLABackend creates the XLA backend for config "<plugin>[,options...]" without ever
// triggering GoMLX's plugin auto-install.
func newXLABackend(config string) (backends.Backend, error) {
	plugin, options, _ := strings.Cut(config, ",")
	plugin = strings.TrimSpace(plugin)
	path := plugin
	if !filepath.IsAbs(plugin) {
		available := pjrt.AvailablePlugins()
		names := make([]string, 0, len(available))
		for n := range available {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(available) == 0 {
			return nil, fmt.Errorf("no PJRT plugin found (searched $PJRT_PLUGIN_LIBRARY_PATH=%q, "+
				"/usr/local/lib/go-xla, ~/.local/lib/go-xla and the system library paths); install one "+
				"(e.g. pjrt_c_api_cpu_plugin.so, or the CUDA plugin from jax-cuda*-pjrt) and set "+
				"PJRT_PLUGIN_LIBRARY_PATH, or use the pure-Go backend \"go\"", os.Getenv("PJRT_PLUGIN_LIBRARY_PATH"))
		}
		if plugin == "" {
			for _, preferred := range xla.DefaultPlugins {
				if _, ok := available[preferred]; ok {
					plugin = preferred
					break
				}
			}
			if plugin == "" {
				plugin = names[0]
			}
		}
		p, ok := available[plugin]
		if !ok {
			return nil, fmt.Errorf("PJRT plugin %q not found; available plugins: %s (set PJRT_PLUGIN_LIBRARY_PATH to add more)",
				plugin, strings.Join(names, ", "))
		}
		path = p
		if plugin == "cpu" && !strings.Contains(options, "shared_buffers") {
			// What xla.New enables for a plugin named "cpu"; lost when passing a path.
			options = strings.Trim(options+",shared_buffers", ",")
		}
	} else if _, err := os.Stat(plugin); err != nil {
		return nil, fmt.Errorf("PJRT plugin file: %w", err)
	}
	if options != "" {
		path += "," + options
	}
	// An absolute path makes xla.New skip auto-install.
	backend, err := xla.New(path)
	if err != nil {
		return nil, err
	}
	return backend, nil
}
