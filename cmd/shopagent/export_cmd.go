package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"shopagent/export"
	"shopagent/export/onnxrt"
	"shopagent/models"
)

func newExportCmd() *cobra.Command {
	var ckpt, out, ortLib, device, backend, quantize string
	var threads, deviceID, goals int
	var tol float64
	var overwrite, asJSON, noSplit bool
	cmd := &cobra.Command{
		Use:   "export --checkpoint CKPT --out DIR",
		Short: "Export a policy checkpoint to ONNX (model.onnx, vocab.txt, policy.json)",
		Long: `Builds the policy's ONNX graph (opset 17, dynamic batch and length axes;
outputs action logits [B,A] and value [B]) from the checkpoint's variables and
writes a policy directory: model.onnx, vocab.txt and policy.json (preset, model
configuration, max lengths, observation mode, the checkpoint's provenance and the
sha256 of every file). Unless --no-split, the same policy is also written in two
graphs, actions.onnx (the action encoder) and scorer.onnx (the rest, over encoded
actions), which shopagent serve uses to cache action encodings across requests.

The export fails unless ONNX Runtime's outputs match the GoMLX forward (the
pure-Go backend by default) within --tolerance on observations of the built-in
shop (results, item, option and description pages of --sample-goals goals), for
model.onnx and for actions.onnx + scorer.onnx; the max |diff| and how often both
pick the same action are printed and stored in policy.json.

--quantize int8 makes every dense layer an int8 DynamicQuantizeMatMul (an ONNX
Runtime operator, domain com.microsoft): about 1.9x faster on CPUs with AVX-512
VNNI, at the cost of logit errors of a few hundredths (default tolerance 0.25
instead of 1e-4; docs/EXPORT.md). The ONNX Runtime library is
--ort-lib, else $SHOPAGENT_ORT_LIB, else third_party/onnxruntime/libonnxruntime.so.1
under the repository root (` + "`make onnxruntime`" + ` fetches it). See docs/EXPORT.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ckpt == "" || out == "" {
				return fmt.Errorf("--checkpoint and --out are required")
			}
			res, err := export.Export(ckpt, out, export.Options{
				ORT:     onnxrt.Options{Lib: ortLib, IntraOpThreads: threads, Device: device, DeviceID: deviceID},
				Backend: backend, Tolerance: tol, SampleGoals: goals, Overwrite: overwrite,
				Quantize: quantize, NoSplit: noSplit,
			})
			if err != nil {
				return err
			}
			if asJSON {
				b, err := json.MarshalIndent(res.Manifest, "", "  ")
				if err != nil {
					return fmt.Errorf("export: %w", err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exported %s\n", res)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&ckpt, "checkpoint", "", "policy checkpoint: a checkpoint directory or a run directory (its latest checkpoint)")
	fl.StringVar(&out, "out", "", "policy directory to write (must not exist unless --overwrite)")
	fl.StringVar(&ortLib, "ort-lib", "", "ONNX Runtime shared library (default $"+onnxrt.LibEnvVar+", else "+onnxrt.DefaultLibPath+" under the repository root)")
	fl.StringVar(&device, "device", onnxrt.DeviceCPU, "ONNX Runtime device for the parity check: cpu or cuda (needs the CUDA provider: make onnxruntime-cuda, --ort-lib third_party/onnxruntime-cuda/libonnxruntime.so.1)")
	fl.IntVar(&deviceID, "device-id", 0, "GPU with --device cuda")
	fl.IntVar(&threads, "threads", 1, "ONNX Runtime intra-op threads")
	fl.StringVar(&backend, "backend", models.DefaultBackend, "GoMLX backend of the reference forward")
	fl.Float64Var(&tol, "tolerance", 0, fmt.Sprintf("largest |ONNX Runtime - GoMLX| accepted (0: %g, or %g with --quantize)", export.DefaultTolerance, export.QuantizedTolerance))
	fl.StringVar(&quantize, "quantize", "", "int8: quantize the dense layers (ONNX Runtime's DynamicQuantizeMatMul); empty: float32")
	fl.BoolVar(&noSplit, "no-split", false, "write model.onnx only, without actions.onnx and scorer.onnx (no action-encoding cache in serve)")
	fl.IntVar(&goals, "sample-goals", 2, "built-in shop goals whose pages are compared")
	fl.BoolVar(&overwrite, "overwrite", false, "replace an existing --out directory")
	fl.BoolVar(&asJSON, "json", false, "print policy.json instead of a summary line")
	return cmd
}
