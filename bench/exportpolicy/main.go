// Command exportpolicy writes an exported ONNX policy directory with random weights (no
// training): a stand-in of the right size for load tests of the server.
//
//	go run ./bench/exportpolicy -preset small -out DIR [-quantize int8] [-device cuda]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"shopagent/export"
	"shopagent/export/exporttest"
	"shopagent/export/onnxrt"
)

func main() {
	preset := flag.String("preset", "small", "encoder preset: tiny, small or base")
	out := flag.String("out", "", "policy directory to write (must not exist)")
	quantize := flag.String("quantize", "", "int8: quantized dense layers (shopagent export --quantize int8)")
	device := flag.String("device", "", "ONNX Runtime device of the parity check: cpu (default) or cuda")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "exportpolicy: -out is required")
		os.Exit(2)
	}
	tmp, err := os.MkdirTemp("", "exportpolicy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "exportpolicy:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(tmp)
	ckpt := filepath.Join(tmp, "ckpt")
	// The serving limits: states up to 512 tokens, actions up to 32.
	if _, err := exporttest.Checkpoint(ckpt, exporttest.Options{Preset: *preset, MaxStateLen: 512, MaxActionLen: 32, Seed: 1}); err != nil {
		fmt.Fprintln(os.Stderr, "exportpolicy:", err)
		os.Exit(1)
	}
	if _, err := export.Export(ckpt, *out, export.Options{SampleGoals: 1, Quantize: *quantize, ORT: onnxrt.Options{Device: *device}}); err != nil {
		fmt.Fprintln(os.Stderr, "exportpolicy:", err)
		os.Exit(1)
	}
	fmt.Println(*out)
}
