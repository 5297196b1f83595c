package main

import (
	"path/filepath"
	"strings"
	"testing"

	"shopagent/export/exporttest"
	"shopagent/export/onnxrt"
)

func TestExportCmd(t *testing.T) {
	dir := t.TempDir()
	ck := filepath.Join(dir, "ckpt")
	if _, err := exporttest.Checkpoint(ck, exporttest.Options{Seed: 5, MaxStateLen: 64}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "policy")
	got, err := run(t, "", "export", "--checkpoint", ck, "--out", out, "--sample-goals", "1")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, got)
	}
	if !strings.Contains(got, "exported "+out) || !strings.Contains(got, "parity max |diff|") {
		t.Fatalf("output:\n%s", got)
	}
	m, err := onnxrt.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.VerifyFiles(out); err != nil {
		t.Fatal(err)
	}
	if m.MaxStateLen != 64 || m.Parity.MaxAbsDiff > 1e-4 {
		t.Fatalf("manifest %+v", m)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--out", filepath.Join(dir, "x")}, "--checkpoint and --out are required"},
		{[]string{"export", "--checkpoint", ck, "--out", out}, "already exists"},
		{[]string{"export", "--checkpoint", ck, "--out", filepath.Join(dir, "gpu"), "--device", "cuda"}, "libonnxruntime_providers_cuda.so"},
		{[]string{"export", "--checkpoint", ck, "--out", filepath.Join(dir, "tpu"), "--device", "tpu"}, "unknown device"},
	} {
		got, err := run(t, "", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v (%s), want an error containing %q", tc.args, err, got, tc.want)
		}
	}
}
