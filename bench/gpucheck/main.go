// Command gpucheck holds the Go parts of bench/gpu_check.sh (docs/GPU.md), built on the CPU
// machine and carried to the GPU machine with the shopagent binary:
//
//	gpucheck export -preset small -out DIR [-device cuda] [-backend xla:...] [-json F]   random-weight policy, exported and parity-checked
//	gpucheck parity -policy DIR -data SHOP [-device cuda] [-json F]   ONNX Runtime's CUDA EP against its CPU EP on real pages
//	gpucheck load -url URL -data SHOP [-conc 1,8,64] [-json F]        POST /act load driver (latency, throughput)
//	gpucheck trainrate -log FILE -job il [-json F]                    step rate and compile time from a train log
//	gpucheck report -dir OUT                                          OUT/results.json and OUT/results.md from the parts
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gpucheck export|parity|load|trainrate|report [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"export": runExport, "parity": runParity, "load": runLoad, "trainrate": runTrainRate, "report": runReport,
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "gpucheck: unknown command %q (export, parity, load, trainrate, report)\n", os.Args[1])
		os.Exit(2)
	}
	if err := cmd(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "gpucheck %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
