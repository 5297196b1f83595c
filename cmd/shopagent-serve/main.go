// Command shopagent-serve is the policy server alone: `serve` (the HTTP server on ONNX
// Runtime) and `ope` (off-policy evaluation on its logs), the same commands as in
// `shopagent`, without the training stack: it links no GoMLX, so the serving image stays
// small and builds fast. Run `shopagent-serve serve --help`.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"shopagent/serve/servecmd"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "shopagent-serve:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "shopagent-serve",
		Short: "Serve exported shopping-agent policies over HTTP (ONNX Runtime), and evaluate them off-policy",
		Long: `shopagent-serve is shopagent's policy server without the training stack:
the serve and ope commands of shopagent, linked without GoMLX. See docs/SERVE.md.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(servecmd.NewServeCmd(), servecmd.NewOpeCmd())
	return root
}
