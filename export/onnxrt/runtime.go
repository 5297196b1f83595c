package onnxrt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"shopagent/features"

	ort "github.com/yalue/onnxruntime_go"
)

// LibEnvVar names the environment variable holding the path of libonnxruntime.so.1 (the
// Makefile exports it for the tests).
const LibEnvVar = "SHOPAGENT_ORT_LIB"

// DefaultLibPath is where `make onnxruntime` puts the library, relative to the repository
// root.
const DefaultLibPath = "third_party/onnxruntime/libonnxruntime.so.1"

// Devices accepted by Options.Device.
const (
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
)

// ResolveLibrary returns the ONNX Runtime library to load: path when given, else
// $SHOPAGENT_ORT_LIB, else DefaultLibPath under the first directory, from the working
// directory up, that holds a go.mod (the repository root, also from a package's test).
// A path that does not exist is an error saying how to get the library.
func ResolveLibrary(path string) (string, error) {
	how := "run `make onnxruntime` (it fetches libonnxruntime.so.1 1.24.3 from the npm package onnxruntime-node), or pass --ort-lib / set " + LibEnvVar
	if path == "" {
		path = os.Getenv(LibEnvVar)
	}
	if path == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("onnxrt: ONNX Runtime library: %w", err)
		}
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				path = filepath.Join(dir, DefaultLibPath)
				break
			}
			if filepath.Dir(dir) == dir {
				return "", fmt.Errorf("onnxrt: no ONNX Runtime library given and no repository root above %s: %s", wd, how)
			}
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("onnxrt: ONNX Runtime library %s: %w; %s", path, err, how)
	}
	if st.IsDir() {
		return "", fmt.Errorf("onnxrt: ONNX Runtime library %s is a directory; %s", path, how)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("onnxrt: %w", err)
	}
	return abs, nil
}

// ortEnv is the process's ONNX Runtime environment. onnxruntime_go keeps one environment
// per process (a package-level handle in the library itself), so this is the one piece of
// process-wide state here: it records which library was loaded, so that a second Init with
// another library fails clearly instead of silently running the first one. The environment
// is never destroyed: sessions come and go (model reloads), and ONNX Runtime does not
// return all memory on DestroyEnvironment anyway.
var ortEnv struct {
	mu      sync.Mutex
	lib     string
	version string
	// cudaOK is the library whose CUDA provider files CheckCUDA found loadable.
	cudaOK string
}

// loadedLibrary returns the path of the library Init loaded ("" before).
func loadedLibrary() string {
	ortEnv.mu.Lock()
	defer ortEnv.mu.Unlock()
	return ortEnv.lib
}

// Init loads the ONNX Runtime library (see ResolveLibrary for lib) and creates the process's
// environment, once; later calls with the same library (or "") are no-ops. It returns the
// library's version.
func Init(lib string) (string, error) {
	ortEnv.mu.Lock()
	defer ortEnv.mu.Unlock()
	if ortEnv.lib != "" {
		if lib == "" {
			return ortEnv.version, nil
		}
		abs, err := filepath.Abs(lib)
		if err == nil && abs == ortEnv.lib {
			return ortEnv.version, nil
		}
		return "", fmt.Errorf("onnxrt: ONNX Runtime is already loaded from %s in this process; cannot load %s too", ortEnv.lib, lib)
	}
	path, err := ResolveLibrary(lib)
	if err != nil {
		return "", err
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return "", fmt.Errorf("onnxrt: loading ONNX Runtime from %s: %w", path, err)
	}
	ortEnv.lib, ortEnv.version = path, ort.GetVersion()
	return ortEnv.version, nil
}

// Options configure a Session.
type Options struct {
	// Lib is the ONNX Runtime library (see ResolveLibrary); "" for the default.
	Lib string
	// IntraOpThreads is the number of threads one run may use (0 means 1). The default is 1
	// because the server runs many requests at once on one shared session: with one thread
	// per run, concurrent requests use the cores without oversubscribing them (ONNX
	// Runtime's advice for throughput); raise it for a single client wanting low latency.
	IntraOpThreads int
	// Device is "cpu" (default) or "cuda" (the CUDA execution provider: needs
	// libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so of the same
	// ONNX Runtime version beside the library, see `make onnxruntime-cuda` and CheckCUDA).
	Device string
	// DeviceID is the GPU used with Device "cuda".
	DeviceID int
}

// Session runs one exported graph: the whole policy (model.onnx: Run), the action
// encoder (actions.onnx: RunActions) or the scorer over encoded actions (scorer.onnx:
// RunScorer). It is safe for concurrent use (it wraps an onnxruntime_go
// DynamicAdvancedSession, whose Run may be called from several goroutines).
type Session struct {
	s       *ort.DynamicAdvancedSession
	graph   string
	device  string
	version string
	mu      sync.RWMutex
	closed  bool
}

// Graphs a Session can run, named by their file in a policy directory.
const (
	GraphModel   = ModelFile
	GraphActions = ActionsFile
	GraphScorer  = ScorerFile
)

// GraphIO returns the input and output names of one of the graphs (GraphModel,
// GraphActions, GraphScorer).
func GraphIO(graph string) (inputs, outputs []string, err error) {
	switch graph {
	case GraphModel:
		return InputNames, OutputNames, nil
	case GraphActions:
		return ActionInputNames, ActionOutputNames, nil
	case GraphScorer:
		return ScorerInputNames, OutputNames, nil
	}
	return nil, nil, fmt.Errorf("onnxrt: unknown graph %q (want %s, %s or %s)", graph, GraphModel, GraphActions, GraphScorer)
}

// NewSession loads model.onnx (a file: the whole policy graph) into ONNX Runtime.
func NewSession(modelPath string, o Options) (*Session, error) {
	return NewGraphSession(modelPath, GraphModel, o)
}

// NewGraphSession loads the file path, which holds the graph named graph (GraphModel,
// GraphActions or GraphScorer), into ONNX Runtime.
func NewGraphSession(path, graph string, o Options) (*Session, error) {
	inputs, outputs, err := GraphIO(graph)
	if err != nil {
		return nil, err
	}
	version, err := Init(o.Lib)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("onnxrt: model: %w", err)
	}
	device := strings.ToLower(strings.TrimSpace(o.Device))
	if device == "" {
		device = DeviceCPU
	}
	if device != DeviceCPU && device != DeviceCUDA {
		return nil, fmt.Errorf("onnxrt: unknown device %q (want cpu or cuda)", o.Device)
	}
	threads := o.IntraOpThreads
	if threads <= 0 {
		threads = 1
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxrt: session options: %w", err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		return nil, fmt.Errorf("onnxrt: intra-op threads: %w", err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("onnxrt: inter-op threads: %w", err)
	}
	if device == DeviceCUDA {
		if err := CheckCUDA(loadedLibrary()); err != nil {
			return nil, err
		}
		if err := appendCUDA(so, o.DeviceID, version); err != nil {
			return nil, err
		}
	}
	s, err := ort.NewDynamicAdvancedSession(path, inputs, outputs, so)
	if err != nil {
		return nil, fmt.Errorf("onnxrt: loading %s: %w", path, err)
	}
	return &Session{s: s, graph: graph, device: device, version: version}, nil
}

// appendCUDA adds the CUDA execution provider (CheckCUDA has found its files loadable), or
// says why it cannot.
func appendCUDA(so *ort.SessionOptions, deviceID int, version string) error {
	if deviceID < 0 {
		return fmt.Errorf("onnxrt: CUDA device id %d is negative", deviceID)
	}
	hint := fmt.Sprintf("ONNX Runtime %s's CUDA provider loads but did not start on GPU %d (its log line on stderr says why: "+
		"no GPU visible, a driver too old for CUDA 13, ...); check nvidia-smi, or use --device cpu", version, deviceID)
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("%w (%v): %s", ErrCUDAUnavailable, err, hint)
	}
	defer co.Destroy()
	if err := co.Update(map[string]string{"device_id": strconv.Itoa(deviceID)}); err != nil {
		return fmt.Errorf("%w: options (%v): %s", ErrCUDAUnavailable, err, hint)
	}
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return fmt.Errorf("%w (%v): %s", ErrCUDAUnavailable, err, hint)
	}
	return nil
}

// Device returns "cpu" or "cuda".
func (s *Session) Device() string { return s.device }

// Version returns the ONNX Runtime version.
func (s *Session) Version() string { return s.version }

// ErrClosed is returned by Run after Close.
var ErrClosed = errors.New("onnxrt: session closed")

// Graph returns the graph the session runs (GraphModel, GraphActions or GraphScorer).
func (s *Session) Graph() string { return s.graph }

// Run scores a batch with the whole policy graph (GraphModel): it returns the logits
// [B*A] (row-major, padded slots -1e9) and the values [B].
func (s *Session) Run(pb *features.PolicyBatch) (logits, values []float32, err error) {
	if err := s.want(GraphModel); err != nil {
		return nil, nil, err
	}
	return s.score(pb, nil)
}

// RunScorer scores a batch with the scorer graph (GraphScorer), given the encoder states
// of its distinct actions: hidden is [U, Ta, H] (row-major) for pb's ActionIDs rows, as
// RunActions returns them (the values at padding positions do not matter). It returns what
// Run returns.
func (s *Session) RunScorer(pb *features.PolicyBatch, hidden []float32, h int) (logits, values []float32, err error) {
	if err := s.want(GraphScorer); err != nil {
		return nil, nil, err
	}
	if pb == nil || h <= 0 || len(hidden) != pb.U*pb.Ta*h {
		return nil, nil, fmt.Errorf("onnxrt: action_hidden has %d values, want U x Ta x H", len(hidden))
	}
	t, err := ort.NewTensor(ort.NewShape(int64(pb.U), int64(pb.Ta), int64(h)), hidden)
	if err != nil {
		return nil, nil, fmt.Errorf("onnxrt: input tensor: %w", err)
	}
	return s.score(pb, t)
}

// RunActions encodes n actions of ta tokens (ids and mask [n, ta], row-major, as
// features.PolicyBatch's ActionIDs and ActionMask) with the action-encoder graph
// (GraphActions) and returns their encoder states [n, ta, h] (row-major).
func (s *Session) RunActions(ids, mask []int32, n, ta, h int) ([]float32, error) {
	if err := s.want(GraphActions); err != nil {
		return nil, err
	}
	if n <= 0 || ta <= 0 || h <= 0 || len(ids) != n*ta || len(mask) != n*ta {
		return nil, fmt.Errorf("onnxrt: action batch of %d ids and %d mask values, want %d x %d", len(ids), len(mask), n, ta)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	var ins []ort.Value
	defer func() {
		for _, v := range ins {
			v.Destroy()
		}
	}()
	for _, data := range [][]int32{ids, mask} {
		t, err := ort.NewTensor(ort.NewShape(int64(n), int64(ta)), data)
		if err != nil {
			return nil, fmt.Errorf("onnxrt: input tensor: %w", err)
		}
		ins = append(ins, t)
	}
	outs := []ort.Value{nil}
	if err := s.s.Run(ins, outs); err != nil {
		return nil, fmt.Errorf("onnxrt: run: %w", err)
	}
	defer outs[0].Destroy()
	ht, ok := outs[0].(*ort.Tensor[float32])
	if !ok {
		return nil, fmt.Errorf("onnxrt: output is %T, want a float32 tensor", outs[0])
	}
	if len(ht.GetData()) != n*ta*h {
		return nil, fmt.Errorf("onnxrt: action_hidden shape %v, want [%d %d %d]", ht.GetShape(), n, ta, h)
	}
	return append([]float32(nil), ht.GetData()...), nil
}

func (s *Session) want(graph string) error {
	if s.graph != graph {
		return fmt.Errorf("onnxrt: the session runs %s, not %s", s.graph, graph)
	}
	return nil
}

// score runs the model or scorer graph on pb (hidden: the scorer's action_hidden input,
// nil for the model graph; score destroys it).
func (s *Session) score(pb *features.PolicyBatch, hidden ort.Value) (logits, values []float32, err error) {
	var ins []ort.Value
	defer func() {
		for _, v := range ins {
			v.Destroy()
		}
		if hidden != nil {
			hidden.Destroy()
		}
	}()
	if pb == nil || pb.B <= 0 || pb.Ts <= 0 || pb.A <= 0 || pb.U <= 0 || pb.Ta <= 0 {
		return nil, nil, fmt.Errorf("onnxrt: empty or malformed batch")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, nil, ErrClosed
	}
	addI := func(data []int32, d0, d1 int) error {
		if len(data) != d0*d1 {
			return fmt.Errorf("onnxrt: input %d has %d values, want %d x %d", len(ins), len(data), d0, d1)
		}
		t, err := ort.NewTensor(ort.NewShape(int64(d0), int64(d1)), data)
		if err != nil {
			return fmt.Errorf("onnxrt: input tensor: %w", err)
		}
		ins = append(ins, t)
		return nil
	}
	for _, in := range []struct {
		data   []int32
		d0, d1 int
	}{
		{pb.StateIDs, pb.B, pb.Ts}, {pb.StateMask, pb.B, pb.Ts}, {pb.StateTypes, pb.B, pb.Ts},
		{pb.ActionIDs, pb.U, pb.Ta}, {pb.ActionMask, pb.U, pb.Ta}, {pb.ActionIndex, pb.B, pb.A},
	} {
		if err := addI(in.data, in.d0, in.d1); err != nil {
			return nil, nil, err
		}
	}
	if len(pb.ActionValid) != pb.B*pb.A {
		return nil, nil, fmt.Errorf("onnxrt: action_valid has %d values, want %d x %d", len(pb.ActionValid), pb.B, pb.A)
	}
	valid, err := ort.NewTensor(ort.NewShape(int64(pb.B), int64(pb.A)), pb.ActionValid)
	if err != nil {
		return nil, nil, fmt.Errorf("onnxrt: input tensor: %w", err)
	}
	ins = append(ins, valid)
	if err := addI(pb.ActionPos, pb.B, pb.A); err != nil {
		return nil, nil, err
	}
	run := ins
	if hidden != nil {
		run = append(append([]ort.Value(nil), ins...), hidden)
	}
	outs := []ort.Value{nil, nil}
	if err := s.s.Run(run, outs); err != nil {
		return nil, nil, fmt.Errorf("onnxrt: run: %w", err)
	}
	defer func() {
		for _, v := range outs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	lt, ok1 := outs[0].(*ort.Tensor[float32])
	vt, ok2 := outs[1].(*ort.Tensor[float32])
	if !ok1 || !ok2 {
		return nil, nil, fmt.Errorf("onnxrt: outputs are %T and %T, want float32 tensors", outs[0], outs[1])
	}
	if len(lt.GetData()) != pb.B*pb.A || len(vt.GetData()) != pb.B {
		return nil, nil, fmt.Errorf("onnxrt: output shapes %v and %v, want [%d %d] and [%d]", lt.GetShape(), vt.GetShape(), pb.B, pb.A, pb.B)
	}
	return append([]float32(nil), lt.GetData()...), append([]float32(nil), vt.GetData()...), nil
}

// Close releases the session; runs in flight finish first. Later Runs return ErrClosed.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.s.Destroy(); err != nil {
		return fmt.Errorf("onnxrt: close: %w", err)
	}
	return nil
}
