package export_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"google.golang.org/protobuf/proto"

	"shopagent/export"
	"shopagent/export/exporttest"
	"shopagent/export/onnxrt"
	"shopagent/models"
)

// testCheckpoints builds the package's perturbed tiny checkpoints, one per choice model,
// once each, under one temporary root.
var testCheckpoints struct {
	sync.Mutex
	root string
	dirs map[string]string
}

// modelCheckpoint returns the tiny test checkpoint of a choice model ("" for the default).
func modelCheckpoint(t *testing.T, model string) string {
	t.Helper()
	testCheckpoints.Lock()
	defer testCheckpoints.Unlock()
	if dir, ok := testCheckpoints.dirs[model]; ok {
		return dir
	}
	if testCheckpoints.root == "" {
		root, err := os.MkdirTemp("", "shopagent-export-test-")
		if err != nil {
			t.Fatal(err)
		}
		testCheckpoints.root, testCheckpoints.dirs = root, map[string]string{}
	}
	dir := filepath.Join(testCheckpoints.root, "ckpt-"+model)
	if _, err := exporttest.Checkpoint(dir, exporttest.Options{Seed: 3, Model: model}); err != nil {
		t.Fatal(err)
	}
	testCheckpoints.dirs[model] = dir
	return dir
}

// tinyCheckpoint is the default (shopagent) model's test checkpoint.
func tinyCheckpoint(t *testing.T) string { return modelCheckpoint(t, "") }

func TestMain(m *testing.M) {
	code := m.Run()
	if testCheckpoints.root != "" {
		os.RemoveAll(testCheckpoints.root)
	}
	os.Exit(code)
}

// exportTiny exports the tiny test checkpoint to a new directory and returns the
// directory and its verified manifest.
func exportTiny(t *testing.T, opts export.Options) (string, *onnxrt.Manifest) {
	t.Helper()
	return exportModel(t, "", opts)
}

// exportModel exports a choice model's test checkpoint (see modelCheckpoint) to a new
// directory and returns the directory and its verified manifest.
func exportModel(t *testing.T, model string, opts export.Options) (string, *onnxrt.Manifest) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "policy")
	res, err := export.Export(modelCheckpoint(t, model), out, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", res)
	m, err := onnxrt.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.VerifyFiles(out); err != nil {
		t.Fatal(err)
	}
	return out, m
}

func TestExportParityAndManifest(t *testing.T) {
	ck := tinyCheckpoint(t)
	out, m := exportTiny(t, export.Options{})
	p := m.Parity
	if p.MaxAbsDiff > export.DefaultTolerance || p.Samples < 6 || p.Actions < 30 || p.ORTVersion != "1.24.3" || p.Backend == "" || p.Agreement != 1 {
		t.Fatalf("parity %+v", p)
	}
	// The split graphs are there, hashed, and checked with the rest.
	if !m.Split || m.Quantize != "" || len(m.Files()) != 4 {
		t.Fatalf("manifest split %v quantize %q files %v", m.Split, m.Quantize, m.Files())
	}
	for _, f := range []string{onnxrt.ActionsFile, onnxrt.ScorerFile} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil || len(m.SHA256[f]) != 64 {
			t.Fatalf("%s: %v, sha256 %q", f, err, m.SHA256[f])
		}
	}
	t.Logf("parity: max |diff| %.3g (logits %.3g, values %.3g) over %d observations, %d actions",
		p.MaxAbsDiff, p.MaxLogitDiff, p.MaxValueDiff, p.Samples, p.Actions)
	src, err := models.LoadCheckpoint(ck, false)
	if err != nil {
		t.Fatal(err)
	}
	if m.Preset != "tiny" || m.Policy != src.Meta.Policy || m.MaxStateLen != 128 || m.MaxActionLen != 16 ||
		m.ObsMode != "text_rich" || m.Model != "shopagent" || m.Opset != 17 || m.Provenance.Step != 7 || m.Provenance.Job != "il" ||
		m.Provenance.Info["source"] != "exporttest" || len(m.Inputs) != models.NumPolicyInputs {
		t.Fatalf("manifest %+v", m)
	}
	vocab, err := os.ReadFile(filepath.Join(out, onnxrt.VocabFile))
	if err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(filepath.Join(src.Dir, models.CheckpointVocabFile))
	if string(vocab) != string(orig) {
		t.Fatal("vocab.txt differs from the checkpoint's")
	}
	// The directory exists now: a second export is refused unless overwriting.
	if _, err := export.Export(ck, out, export.Options{}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second export: %v", err)
	}
	// An impossible tolerance fails the export and leaves nothing behind.
	bad := filepath.Join(t.TempDir(), "strict")
	if p.MaxAbsDiff > 0 {
		if _, err := export.Export(ck, bad, export.Options{Tolerance: p.MaxAbsDiff / 1e3}); !errors.Is(err, export.ErrParity) {
			t.Fatalf("strict export: %v", err)
		}
		if _, err := os.Stat(bad); err == nil {
			t.Fatal("a failed export left its directory")
		}
	}
}

func TestExportInt8AndNoSplit(t *testing.T) {
	ck := tinyCheckpoint(t)
	out, m := exportTiny(t, export.Options{Quantize: "int8", NoSplit: true})
	p := m.Parity
	// int8 changes the logits by a little, not by nothing, and not the choices.
	if m.Quantize != "int8" || m.Split || p.Tolerance != export.QuantizedTolerance ||
		!(p.MaxAbsDiff > 1e-5 && p.MaxAbsDiff < 0.1) || p.Agreement < 0.9 {
		t.Fatalf("int8 manifest quantize %q split %v parity %+v", m.Quantize, m.Split, p)
	}
	if _, err := os.Stat(filepath.Join(out, onnxrt.ActionsFile)); err == nil {
		t.Fatal("NoSplit wrote actions.onnx")
	}
	raw, err := os.ReadFile(filepath.Join(out, onnxrt.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "DynamicQuantizeMatMul") {
		t.Fatal("int8 model.onnx has no DynamicQuantizeMatMul")
	}
	if _, err := export.Export(ck, filepath.Join(t.TempDir(), "x"), export.Options{Quantize: "int4"}); err == nil || !strings.Contains(err.Error(), "quantization") {
		t.Fatalf("int4: %v", err)
	}
}

func TestParityDetectsAWrongGraph(t *testing.T) {
	ck, err := models.LoadCheckpoint(tinyCheckpoint(t), false)
	if err != nil {
		t.Fatal(err)
	}
	backend, err := models.NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	policy, err := models.NewPolicy(backend, ck)
	if err != nil {
		t.Fatal(err)
	}
	defer policy.Close()
	// Export a graph whose position bias differs from the GoMLX model's by 1e-3.
	bias := ck.Model["policy/choice/position/bias"]
	data, err := tensors.CopyFlatData[float32](bias)
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] += 1e-3
	}
	ck.Model["policy/choice/position/bias"] = tensors.FromFlatDataAndDimensions(data, len(data))
	model, err := export.BuildGraph(ck, export.GraphOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.onnx")
	raw, err := proto.Marshal(model)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	sess, err := onnxrt.NewSession(path, onnxrt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	samples, err := export.SampleObservations("text_rich", 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := export.CheckParity(policy, sess.Run, samples, export.DefaultTolerance)
	if !errors.Is(err, export.ErrParity) || p.MaxLogitDiff < 5e-4 {
		t.Fatalf("a 1e-3 shift of the position bias passed: %v, %+v", err, p)
	}
}

func TestExportErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := export.Export(filepath.Join(dir, "missing"), filepath.Join(dir, "out"), export.Options{}); err == nil {
		t.Fatal("missing checkpoint exported")
	}
	// A pretraining-like checkpoint (no choice head) is not a policy.
	src, err := models.LoadCheckpoint(tinyCheckpoint(t), false)
	if err != nil {
		t.Fatal(err)
	}
	model := map[string]*tensors.Tensor{}
	for k, v := range src.Model {
		if strings.HasPrefix(k, models.EncoderScope+"/") {
			model[k] = v
		}
	}
	pre := filepath.Join(dir, "pretrain")
	if err := models.WriteCheckpoint(pre, models.CheckpointMeta{Job: "pretrain", Policy: src.Meta.Policy}, model, nil, src.Tokenizer); err != nil {
		t.Fatal(err)
	}
	if _, err := export.Export(pre, filepath.Join(dir, "out"), export.Options{}); err == nil || !strings.Contains(err.Error(), "not a choice policy") {
		t.Fatalf("pretraining checkpoint: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Fatal("a failed export left its directory")
	}
}
