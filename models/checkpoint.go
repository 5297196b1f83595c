package models

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"shopagent/atomicfile"
	"shopagent/features"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Checkpoints.
//
// A checkpoint is a directory (RUN_DIR/checkpoints/ckpt-00001200 for step 1,200) holding:
//
//	checkpoint.json         CheckpointMeta: format version, job, global step, PolicyConfig, the
//	                        vocabulary file name, creation time, free-form provenance
//	model.safetensors       the model variables (scope "/policy/..."), float32
//	optimizer.safetensors   everything else: the optimizer moments (scope "/optimizer/..."),
//	                        the dropout random state ("/#rngState"), absent for inference-only
//	                        checkpoints
//	vocab.txt               the tokenizer's vocabulary, so a checkpoint is self-contained
//
// The tensor files use the safetensors layout (8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, raw little-endian
// data), readable by Hugging Face's safetensors library. A tensor's name is its GoMLX
// variable path, scope and name joined by "/" without the leading "/", for example
// "policy/bert/embeddings/word_embeddings/weight"; HFName gives the Hugging Face name of
// the encoder's variables.
//
// A checkpoint directory is written under a temporary name and renamed into place, so a
// crash never leaves a partial checkpoint under a final name.

// CheckpointVersion is the format version written in checkpoint.json.
const CheckpointVersion = 1

// Checkpoint file names inside a checkpoint directory.
const (
	CheckpointMetaFile      = "checkpoint.json"
	CheckpointModelFile     = "model.safetensors"
	CheckpointOptimizerFile = "optimizer.safetensors"
	CheckpointVocabFile     = "vocab.txt"
	// CheckpointsDir is the sub-directory of a run directory holding its checkpoints.
	CheckpointsDir = "checkpoints"
	// checkpointPrefix starts each checkpoint directory name; the step follows, zero padded.
	checkpointPrefix = "ckpt-"
)

// CheckpointMeta describes a checkpoint (checkpoint.json).
type CheckpointMeta struct {
	// Version is the format version (CheckpointVersion).
	Version int `json:"version"`
	// Job is the training job that wrote it ("pretrain", "il", ...).
	Job string `json:"job"`
	// Step is the global step: the number of optimizer updates applied.
	Step int64 `json:"step"`
	// Policy sizes the model.
	Policy features.PolicyConfig `json:"policy"`
	// Vocab is the vocabulary file name inside the checkpoint directory.
	Vocab string `json:"vocab"`
	// Created is the creation time (RFC 3339).
	Created string `json:"created"`
	// Info holds free-form provenance: the command line, data files, seeds, the
	// checkpoint a run was initialised from, the last loss.
	Info map[string]any `json:"info,omitempty"`
}

// Checkpoint is a loaded checkpoint.
type Checkpoint struct {
	// Dir is the checkpoint directory.
	Dir string
	// Meta is its checkpoint.json.
	Meta CheckpointMeta
	// Tokenizer reads its vocab.txt.
	Tokenizer *features.Tokenizer
	// Model holds the model variables by path ("policy/bert/...").
	Model map[string]*tensors.Tensor
	// Optimizer holds the other variables by path, nil when not loaded or absent.
	Optimizer map[string]*tensors.Tensor
}

// CheckpointDirName returns the directory name of the checkpoint of a step.
func CheckpointDirName(step int64) string { return fmt.Sprintf("%s%08d", checkpointPrefix, step) }

// variablePath is the tensor name of a variable: scope and name without the leading "/".
func variablePath(v *context.Variable) string {
	scope := strings.Trim(v.Scope(), context.ScopeSeparator)
	if scope == "" {
		return v.Name()
	}
	return scope + context.ScopeSeparator + v.Name()
}

// isModelPath reports whether a tensor name belongs to the model file.
func isModelPath(path string) bool { return strings.HasPrefix(path, PolicyScope+"/") }

// SaveCheckpoint writes the variables of ctx as checkpoint dir (which must not exist; its
// parent is created), with meta and the tokenizer's vocabulary. withOptimizer also writes
// the non-model variables (optimizer state, random state). Variables without a value are
// skipped.
func SaveCheckpoint(dir string, meta CheckpointMeta, ctx *context.Context, tok *features.Tokenizer, withOptimizer bool) error {
	model := map[string]*tensors.Tensor{}
	other := map[string]*tensors.Tensor{}
	for v := range ctx.IterVariables() {
		if !v.HasValue() {
			continue
		}
		t, err := v.Value()
		if err != nil {
			return fmt.Errorf("models: checkpoint variable %s: %w", v.ScopeAndName(), err)
		}
		p := variablePath(v)
		if isModelPath(p) {
			model[p] = t
		} else {
			other[p] = t
		}
	}
	if len(model) == 0 {
		return fmt.Errorf("models: checkpoint %s: the context has no model variables under %q", dir, PolicyScope)
	}
	if !withOptimizer {
		other = nil
	}
	return WriteCheckpoint(dir, meta, model, other, tok)
}

// WriteCheckpoint writes a checkpoint directory from tensors (see SaveCheckpoint); other
// may be nil.
func WriteCheckpoint(dir string, meta CheckpointMeta, model, other map[string]*tensors.Tensor, tok *features.Tokenizer) error {
	if tok == nil {
		return fmt.Errorf("models: checkpoint %s: no tokenizer", dir)
	}
	meta.Version = CheckpointVersion
	meta.Vocab = CheckpointVocabFile
	if meta.Created == "" {
		meta.Created = time.Now().UTC().Format(time.RFC3339)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("models: checkpoint: %w", err)
	}
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("models: checkpoint %s already exists", dir)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("models: checkpoint: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("models: checkpoint: %w", err)
	}
	if err := WriteSafetensors(filepath.Join(tmp, CheckpointModelFile), model, map[string]string{"step": strconv.FormatInt(meta.Step, 10)}); err != nil {
		return err
	}
	if len(other) > 0 {
		if err := WriteSafetensors(filepath.Join(tmp, CheckpointOptimizerFile), other, nil); err != nil {
			return err
		}
	}
	if err := tok.WriteVocab(filepath.Join(tmp, CheckpointVocabFile)); err != nil {
		return fmt.Errorf("models: checkpoint vocab: %w", err)
	}
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fmt.Errorf("models: checkpoint meta: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, CheckpointMetaFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("models: checkpoint meta: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("models: checkpoint: %w", err)
	}
	ok = true
	return nil
}

// ListCheckpoints returns the checkpoint directories of a run directory with their steps,
// in increasing step order. A missing checkpoints folder gives an empty list.
func ListCheckpoints(runDir string) ([]string, []int64, error) {
	root := filepath.Join(runDir, CheckpointsDir)
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("models: list checkpoints: %w", err)
	}
	type ck struct {
		dir  string
		step int64
	}
	var cks []ck
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, checkpointPrefix) {
			continue
		}
		step, err := strconv.ParseInt(strings.TrimPrefix(name, checkpointPrefix), 10, 64)
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, name, CheckpointMetaFile)); err != nil {
			continue
		}
		cks = append(cks, ck{filepath.Join(root, name), step})
	}
	sort.Slice(cks, func(i, j int) bool { return cks[i].step < cks[j].step })
	dirs := make([]string, len(cks))
	steps := make([]int64, len(cks))
	for i, c := range cks {
		dirs[i], steps[i] = c.dir, c.step
	}
	return dirs, steps, nil
}

// ResolveCheckpoint turns a path into a checkpoint directory: a checkpoint directory is
// returned as is; a run directory gives its latest checkpoint.
func ResolveCheckpoint(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("models: checkpoint %s: %w", path, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("models: checkpoint %s is not a directory (want a run directory or a checkpoint directory)", path)
	}
	if _, err := os.Stat(filepath.Join(path, CheckpointMetaFile)); err == nil {
		return path, nil
	}
	dirs, _, err := ListCheckpoints(path)
	if err != nil {
		return "", err
	}
	if len(dirs) == 0 {
		return "", fmt.Errorf("models: %s holds no checkpoint (no %s, no %s/%s*)", path, CheckpointMetaFile, CheckpointsDir, checkpointPrefix)
	}
	return dirs[len(dirs)-1], nil
}

// LoadCheckpoint reads a checkpoint (a checkpoint directory, or a run directory for its
// latest checkpoint). withOptimizer also reads the optimizer file when present. Missing or
// corrupt files give errors naming them.
func LoadCheckpoint(path string, withOptimizer bool) (*Checkpoint, error) {
	dir, err := ResolveCheckpoint(path)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, CheckpointMetaFile))
	if err != nil {
		return nil, fmt.Errorf("models: checkpoint: %w", err)
	}
	var meta CheckpointMeta
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("models: checkpoint %s: corrupt %s: %w", dir, CheckpointMetaFile, err)
	}
	if meta.Version != CheckpointVersion {
		return nil, fmt.Errorf("models: checkpoint %s: format version %d, want %d", dir, meta.Version, CheckpointVersion)
	}
	if err := meta.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("models: checkpoint %s: %w", dir, err)
	}
	vocab := meta.Vocab
	if vocab == "" {
		vocab = CheckpointVocabFile
	}
	tok, err := features.LoadVocab(filepath.Join(dir, vocab))
	if err != nil {
		return nil, fmt.Errorf("models: checkpoint %s: %w", dir, err)
	}
	if tok.VocabSize() != meta.Policy.Bert.VocabSize {
		return nil, fmt.Errorf("models: checkpoint %s: vocabulary has %d tokens, the model %d", dir, tok.VocabSize(), meta.Policy.Bert.VocabSize)
	}
	model, _, err := ReadSafetensors(filepath.Join(dir, CheckpointModelFile))
	if err != nil {
		return nil, err
	}
	ck := &Checkpoint{Dir: dir, Meta: meta, Tokenizer: tok, Model: model}
	if withOptimizer {
		p := filepath.Join(dir, CheckpointOptimizerFile)
		if _, err := os.Stat(p); err == nil {
			if ck.Optimizer, _, err = ReadSafetensors(p); err != nil {
				return nil, err
			}
		}
	}
	return ck, nil
}

// LoadInto sets the checkpoint's variables in ctx (creating them), the model variables
// whose path starts with one of prefixes (all when none is given) and, when loaded, the
// optimizer variables. It returns the number of variables set.
func (c *Checkpoint) LoadInto(ctx *context.Context, prefixes ...string) (int, error) {
	n := 0
	set := func(path string, t *tensors.Tensor) error {
		scope, name := context.RootScope, path
		if i := strings.LastIndex(path, "/"); i >= 0 {
			scope, name = context.ScopeSeparator+path[:i], path[i+1:]
		}
		if name == "" {
			return fmt.Errorf("models: checkpoint %s: bad variable name %q", c.Dir, path)
		}
		v := ctx.GetVariableByScopeAndName(scope, name)
		if v == nil {
			v = ctx.InAbsPath(scope).Checked(false).VariableWithValue(name, t)
			if !isModelPath(path) {
				v.SetTrainable(false)
			}
		} else {
			if !v.Shape().Equal(t.Shape()) {
				return fmt.Errorf("models: checkpoint %s: variable %s has shape %s, the model wants %s", c.Dir, path, t.Shape(), v.Shape())
			}
			if err := v.SetValue(t); err != nil {
				return fmt.Errorf("models: checkpoint %s: set %s: %w", c.Dir, path, err)
			}
		}
		n++
		return nil
	}
	for _, p := range sortedKeys(c.Model) {
		if len(prefixes) > 0 && !hasAnyPrefix(p, prefixes) {
			continue
		}
		if err := set(p, c.Model[p]); err != nil {
			return n, err
		}
	}
	for _, p := range sortedKeys(c.Optimizer) {
		if err := set(p, c.Optimizer[p]); err != nil {
			return n, err
		}
	}
	return n, nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// PruneCheckpoints removes all but the keep most recent checkpoints of a run directory
// (keep <= 0 keeps all).
func PruneCheckpoints(runDir string, keep int) error {
	if keep <= 0 {
		return nil
	}
	dirs, _, err := ListCheckpoints(runDir)
	if err != nil {
		return err
	}
	for i := 0; i < len(dirs)-keep; i++ {
		if err := os.RemoveAll(dirs[i]); err != nil {
			return fmt.Errorf("models: prune checkpoint: %w", err)
		}
	}
	return nil
}

// safetensors dtype names.
var safetensorsDTypes = map[dtypes.DType]string{
	dtypes.Float32: "F32", dtypes.Float64: "F64", dtypes.Int32: "I32", dtypes.Int64: "I64",
	dtypes.Uint32: "U32", dtypes.Uint64: "U64", dtypes.Int8: "I8", dtypes.Uint8: "U8",
	dtypes.Int16: "I16", dtypes.Uint16: "U16", dtypes.Bool: "BOOL",
}

type safetensorsEntry struct {
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// maxSafetensorsHeader bounds the JSON header read from a file (corrupt length fields).
const maxSafetensorsHeader = 100 << 20

// WriteSafetensors writes tensors to a safetensors file (written to a temporary name and
// renamed). metadata goes to the header's "__metadata__".
func WriteSafetensors(path string, ts map[string]*tensors.Tensor, metadata map[string]string) error {
	names := sortedKeys(ts)
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, n := range names {
		t := ts[n]
		dt, ok := safetensorsDTypes[t.DType()]
		if !ok {
			return fmt.Errorf("models: safetensors %s: tensor %s has unsupported dtype %s", path, n, t.DType())
		}
		size := int64(t.Shape().Memory())
		dims := t.Shape().Dimensions
		if dims == nil {
			dims = []int{}
		}
		header[n] = safetensorsEntry{DType: dt, Shape: dims, Offsets: [2]int64{off, off + size}}
		off += size
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("models: safetensors %s: %w", path, err)
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return fmt.Errorf("models: safetensors: %w", err)
	}
	defer f.Abort() // a no-op after Commit
	w := newBufWriter(f.File)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hb)))
	w.write(lenBuf[:])
	w.write(hb)
	for _, n := range names {
		if err := ts[n].ConstBytes(func(data []byte) { w.write(data) }); err != nil {
			return fmt.Errorf("models: safetensors %s: tensor %s: %w", path, n, err)
		}
	}
	if err := w.flush(); err != nil {
		return fmt.Errorf("models: safetensors %s: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("models: safetensors %s: %w", path, err)
	}
	return nil
}

// ReadSafetensors reads every tensor of a safetensors file and its metadata. A truncated
// or corrupt file gives an error naming it.
func ReadSafetensors(path string) (map[string]*tensors.Tensor, map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("models: safetensors: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("models: safetensors %s: corrupt file: %s", path, fmt.Sprintf(format, args...))
	}
	if len(data) < 8 {
		return nil, nil, bad("%d bytes", len(data))
	}
	hlen := binary.LittleEndian.Uint64(data[:8])
	if hlen > maxSafetensorsHeader || hlen > uint64(len(data)-8) {
		return nil, nil, bad("header length %d for a %d-byte file", hlen, len(data))
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data[8 : 8+hlen]))
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, bad("header: %v", err)
	}
	body := data[8+hlen:]
	byName := map[string]dtypes.DType{}
	for dt, n := range safetensorsDTypes {
		byName[n] = dt
	}
	out := map[string]*tensors.Tensor{}
	var meta map[string]string
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, bad("metadata: %v", err)
			}
			continue
		}
		var e safetensorsEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, bad("tensor %s: %v", name, err)
		}
		dt, ok := byName[e.DType]
		if !ok {
			return nil, nil, bad("tensor %s: unsupported dtype %q", name, e.DType)
		}
		for _, d := range e.Shape {
			if d < 0 {
				return nil, nil, bad("tensor %s: negative dimension in %v", name, e.Shape)
			}
		}
		shape := shapes.Make(dt, e.Shape...)
		lo, hi := e.Offsets[0], e.Offsets[1]
		if lo < 0 || hi < lo || hi > int64(len(body)) || hi-lo != int64(shape.Memory()) {
			return nil, nil, bad("tensor %s: offsets %v for shape %s in %d bytes of data", name, e.Offsets, shape, len(body))
		}
		t := tensors.FromShape(shape)
		if err := t.MutableBytes(func(dst []byte) { copy(dst, body[lo:hi]) }); err != nil {
			return nil, nil, fmt.Errorf("models: safetensors %s: tensor %s: %w", path, name, err)
		}
		out[name] = t
	}
	return out, meta, nil
}

// bufWriter is a buffered writer that remembers the first error.
type bufWriter struct {
	f   *os.File
	buf []byte
	err error
}

func newBufWriter(f *os.File) *bufWriter { return &bufWriter{f: f, buf: make([]byte, 0, 1<<20)} }

func (w *bufWriter) write(p []byte) {
	if w.err != nil {
		return
	}
	if len(w.buf)+len(p) > cap(w.buf) {
		w.err = w.flush()
		if w.err != nil {
			return
		}
		if len(p) > cap(w.buf) {
			_, w.err = w.f.Write(p)
			return
		}
	}
	w.buf = append(w.buf, p...)
}

func (w *bufWriter) flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) > 0 {
		_, w.err = w.f.Write(w.buf)
		w.buf = w.buf[:0]
	}
	return w.err
}
