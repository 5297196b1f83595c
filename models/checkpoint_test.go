package models

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.safetensors")
	in := map[string]*tensors.Tensor{
		"policy/a/weight": tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
		"policy/b":        tensors.FromValue(float32(7)),
		"optimizer/n":     tensors.FromFlatDataAndDimensions([]int64{-1, 9}, 2),
	}
	if err := WriteSafetensors(p, in, map[string]string{"step": "3"}); err != nil {
		t.Fatal(err)
	}
	out, meta, err := ReadSafetensors(p)
	if err != nil {
		t.Fatal(err)
	}
	if meta["step"] != "3" || len(out) != 3 {
		t.Fatalf("meta %v, %d tensors", meta, len(out))
	}
	if got := tensors.MustCopyFlatData[float32](out["policy/a/weight"]); !slices.Equal(got, []float32{1, 2, 3, 4, 5, 6}) || !out["policy/a/weight"].Shape().Equal(in["policy/a/weight"].Shape()) {
		t.Fatalf("a = %v %s", got, out["policy/a/weight"].Shape())
	}
	if got := tensors.MustCopyFlatData[int64](out["optimizer/n"]); !slices.Equal(got, []int64{-1, 9}) {
		t.Fatalf("n = %v", got)
	}
	// Corruption gives errors, not panics.
	data, _ := os.ReadFile(p)
	for name, bad := range map[string][]byte{
		"empty":     {},
		"truncated": data[:len(data)-5],
		"header":    append([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, data[8:]...),
		"json":      append(append([]byte{}, data[:8]...), []byte("{not json")...),
	} {
		q := filepath.Join(t.TempDir(), name)
		os.WriteFile(q, bad, 0o644)
		if _, _, err := ReadSafetensors(q); err == nil || !strings.Contains(err.Error(), q) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func TestCheckpointSaveLoadPrune(t *testing.T) {
	tok := policyTestTokenizer(t)
	cfg := policyTestConfig(t, tok.VocabSize())
	ctx := context.New()
	w := tensors.FromFlatDataAndDimensions([]float32{1, 2, 3, 4}, 2, 2)
	ctx.InAbsPath("/policy/choice/linear_2").VariableWithValue("weight", w)
	ctx.InAbsPath("/optimizer/m/policy/choice/linear_2").VariableWithValue("weight", tensors.FromFlatDataAndDimensions([]float32{0, 0, 0, 1}, 2, 2)).SetTrainable(false)
	run := t.TempDir()
	for _, step := range []int64{5, 10, 15} {
		dir := filepath.Join(run, CheckpointsDir, CheckpointDirName(step))
		if err := SaveCheckpoint(dir, CheckpointMeta{Job: "il", Step: step, Policy: cfg, Info: map[string]any{"x": 1}}, ctx, tok, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := SaveCheckpoint(filepath.Join(run, CheckpointsDir, CheckpointDirName(15)), CheckpointMeta{Job: "il", Step: 15, Policy: cfg}, ctx, tok, true); err == nil {
		t.Fatal("overwrote an existing checkpoint")
	}
	if err := PruneCheckpoints(run, 2); err != nil {
		t.Fatal(err)
	}
	_, steps, err := ListCheckpoints(run)
	if err != nil || !slices.Equal(steps, []int64{10, 15}) {
		t.Fatalf("after prune: %v %v", steps, err)
	}
	ck, err := LoadCheckpoint(run, true)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Meta.Step != 15 || ck.Meta.Job != "il" || ck.Meta.Policy != cfg || ck.Tokenizer.VocabSize() != tok.VocabSize() {
		t.Fatalf("meta %+v", ck.Meta)
	}
	if _, ok := ck.Optimizer["optimizer/m/policy/choice/linear_2/weight"]; !ok {
		t.Fatalf("optimizer state missing: %v", ck.Optimizer)
	}
	ctx2 := context.New()
	if n, err := ck.LoadInto(ctx2); err != nil || n != 2 {
		t.Fatalf("LoadInto: %d %v", n, err)
	}
	v := ctx2.GetVariableByScopeAndName("/policy/choice/linear_2", "weight")
	if v == nil || !slices.Equal(tensors.MustCopyFlatData[float32](v.MustValue()), []float32{1, 2, 3, 4}) {
		t.Fatalf("loaded variable %v", v)
	}
	if m := ctx2.GetVariableByScopeAndName("/optimizer/m/policy/choice/linear_2", "weight"); m == nil || m.Trainable {
		t.Fatalf("optimizer variable %v", m)
	}

	// Bad paths and corrupt files give clear errors.
	if _, err := LoadCheckpoint(filepath.Join(run, "nope"), false); err == nil {
		t.Error("missing path accepted")
	}
	if _, err := LoadCheckpoint(t.TempDir(), false); err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("empty run dir: %v", err)
	}
	last := filepath.Join(run, CheckpointsDir, CheckpointDirName(15))
	os.WriteFile(filepath.Join(last, CheckpointModelFile), []byte("garbage!garbage!"), 0o644)
	if _, err := LoadCheckpoint(last, false); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt model file: %v", err)
	}
	os.WriteFile(filepath.Join(last, CheckpointMetaFile), []byte("{"), 0o644)
	if _, err := LoadCheckpoint(last, false); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("corrupt meta: %v", err)
	}
}
