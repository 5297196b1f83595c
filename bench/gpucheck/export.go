package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"shopagent/export"
	"shopagent/export/exporttest"
	"shopagent/export/onnxrt"
)

// ExportResult is what `gpucheck export -json` writes.
type ExportResult struct {
	Preset   string        `json:"preset"`
	Device   string        `json:"device"`
	Backend  string        `json:"backend"`
	Quantize string        `json:"quantize,omitempty"`
	Seconds  float64       `json:"seconds"`
	Parity   onnxrt.Parity `json:"parity"`
	Dir      string        `json:"dir"`
}

// runExport writes a policy directory with random weights (no training: a stand-in of the
// right size, as bench/exportpolicy) and exports it with the parity check against GoMLX on
// the chosen ONNX Runtime device and GoMLX backend.
func runExport(args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	preset := fs.String("preset", "small", "encoder preset: tiny, small or base")
	out := fs.String("out", "", "policy directory to write (must not exist)")
	device := fs.String("device", "cpu", "ONNX Runtime device of the parity check: cpu or cuda")
	lib := fs.String("ort-lib", "", "ONNX Runtime library (default $SHOPAGENT_ORT_LIB)")
	backend := fs.String("backend", "go", "GoMLX backend of the checkpoint and of the parity reference")
	quantize := fs.String("quantize", "", "int8: quantized dense layers")
	tol := fs.Float64("tolerance", 0, "parity tolerance (0: export's default)")
	jsonOut := fs.String("json", "", "write the result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-out is required")
	}
	start := time.Now()
	tmp, err := os.MkdirTemp("", "gpucheck-export-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ckpt := filepath.Join(tmp, "ckpt")
	// The serving limits: states up to 512 tokens, actions up to 32.
	if _, err := exporttest.Checkpoint(ckpt, exporttest.Options{Preset: *preset, MaxStateLen: 512, MaxActionLen: 32, Seed: 1, Backend: *backend}); err != nil {
		return err
	}
	res, err := export.Export(ckpt, *out, export.Options{SampleGoals: 1, Quantize: *quantize, Backend: *backend, Tolerance: *tol,
		ORT: onnxrt.Options{Lib: *lib, Device: *device}})
	if err != nil {
		return err
	}
	r := ExportResult{Preset: *preset, Device: *device, Backend: *backend, Quantize: *quantize,
		Seconds: time.Since(start).Seconds(), Parity: res.Manifest.Parity, Dir: *out}
	fmt.Printf("exported %s (%s, %s): parity max |diff| %.3g (tolerance %.3g) on %s, ONNX Runtime %s, %.1f s\n",
		*out, *preset, *device, r.Parity.MaxAbsDiff, r.Parity.Tolerance, *device, r.Parity.ORTVersion, r.Seconds)
	return writeJSON(*jsonOut, r)
}

// writeJSON writes v as indented JSON to path (nothing when path is "").
func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
