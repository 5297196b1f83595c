// Command shopagent trains, evaluates and serves language-model shopping
// agents on a WebShop-compatible simulator. Run `shopagent --help`.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"shopagent/serve/servecmd"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "shopagent:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "shopagent",
		Short: "Train, evaluate and serve shopping agents on a WebShop-compatible simulator",
		Long: `shopagent reproduces the WebShop benchmark in Go: a shop simulator with
WebShop's pages, actions, search and reward, on real WebShop data or a
generated shop, and the agents that shop in it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newEnvCmd(), newEvalCmd(), newDatasetsCmd(), newTrainCmd(), newModelsCmd(),
		newExportCmd(), servecmd.NewServeCmd(), newAbtestCmd(), servecmd.NewOpeCmd(), newExperimentCmd())
	return root
}
