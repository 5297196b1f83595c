package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"shopagent/env/shopgen"
	"shopagent/experiment"
	"shopagent/features"
	"shopagent/models"
)

func newExperimentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "experiment",
		Short: "End-to-end experiments (the paper's comparison of rule, IL, PG, PPO and DPO)",
	}
	cmd.AddCommand(newExperimentPaperCmd())
	return cmd
}

// cliRunner runs a shopagent command line in process, as a user would type it.
func cliRunner(ctx context.Context, out io.Writer, args []string) error {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(out)
	root.SetErr(out)
	root.SetIn(strings.NewReader(""))
	return root.ExecuteContext(ctx)
}

func newExperimentPaperCmd() *cobra.Command {
	var cfg experiment.Config
	var methods, counts, pretrainArgs, ilArgs, rlArgs, evalArgs string
	gen := shopgen.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "paper --out DIR [--methods rule,il,pg,ppo,dpo,dpo-gen] [--seeds 3] [--budget 2m]",
		Short: "Reproduce the paper's comparison: rule, IL, IL+PG, IL+PPO, IL+DPO (demos and generated)",
		Long: `Runs the whole comparison through shopagent's own commands, as a user would:
env generate (the built-in shop, unless --data), datasets demos --split train,
train pretrain, then per seed train il, train pg / ppo / dpo (on the expert
demonstrations) and train generate + train dpo (on --gen-keep generated
successful trajectories), every RL run with the same wall-clock --budget from
the seed's IL model; each model is evaluated on every test goal (eval) and
seed 1's models meet in a Thompson-sampling A/B test (abtest, one arm per
method). A data-efficiency curve trains IL (seed 1) on --demo-counts expert
demonstrations each.

Writes to --out: results.md (method, score and success rate mean ± sd over
seeds, steps, training wall time, Thompson P(best) and traffic share),
results.json, scores.png (bars with sd error bars), thompson/ (the abtest
outputs and abtest.png), data_efficiency.png, and every stage's log in logs/.
A rerun with the same --out skips the stages that finished (an interrupted
experiment resumes). A method whose command fails or is missing from the
build is reported as skipped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Out == "" {
				return fmt.Errorf("--out is required")
			}
			var err error
			if cfg.Methods, err = experiment.ParseMethods(methods); err != nil {
				return err
			}
			if cfg.DemoCounts, err = experiment.ParseCounts(counts); err != nil {
				return fmt.Errorf("--demo-counts: %w", err)
			}
			cfg.ShopGoals, cfg.Products, cfg.GenSeed = gen.Goals, gen.Products, gen.Seed
			cfg.PretrainArgs, cfg.ILArgs = strings.Fields(pretrainArgs), strings.Fields(ilArgs)
			cfg.RLArgs, cfg.EvalArgs = strings.Fields(rlArgs), strings.Fields(evalArgs)
			cfg.Log = cmd.ErrOrStderr()
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			t := time.Now()
			res, err := experiment.Run(ctx, cfg, cliRunner)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprint(w, res.Markdown())
			fmt.Fprintf(w, "\nexperiment finished in %s; results in %s (%s, %s, %s)\n", time.Since(t).Round(time.Second), cfg.Out,
				experiment.ResultsMarkdown, experiment.ResultsJSON, experiment.ScoresPlot)
			for _, m := range res.Methods {
				if len(m.Failures) > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %d seed(s) skipped (see %s)\n", m.Label, len(m.Failures), filepath.Join(cfg.Out, "logs"))
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Out, "out", "", "output directory (required; a rerun with the same directory resumes)")
	f.StringVar(&cfg.Data, "data", "", "WebShop data directory (empty: generate the built-in shop into OUT/shop)")
	f.StringVar(&gen.Goals, "shop-goals", gen.Goals, "WebShop goals of the built-in shop: N, all or index ranges")
	f.IntVar(&gen.Products, "products", gen.Products, "products of the built-in shop (0: 10 per goal)")
	f.Int64Var(&gen.Seed, "gen-seed", gen.Seed, "generator seed of the built-in shop")
	f.StringVar(&methods, "methods", strings.Join(experiment.AllMethods, ","), "methods to compare: "+strings.Join(experiment.AllMethods, ", "))
	f.IntVar(&cfg.Seeds, "seeds", 3, "training seeds per method")
	f.DurationVar(&cfg.Budget, "budget", 2*time.Minute, "wall clock of every RL run (pg, ppo, dpo, dpo-gen), the same for all")
	f.IntVar(&cfg.RLSteps, "rl-steps", 0, "also cap the RL runs at N steps (0: the budget alone)")
	f.IntVar(&cfg.PretrainSteps, "pretrain-steps", 300, "masked-LM pretraining steps")
	f.IntVar(&cfg.ILSteps, "il-steps", 500, "IL steps per run")
	f.StringVar(&cfg.Preset, "preset", "tiny", "encoder size: "+strings.Join(features.PresetNames, ", "))
	f.IntVar(&cfg.Demos, "demos", 0, "expert demonstrations for IL and DPO (0: one per train goal)")
	f.IntVar(&cfg.GenKeep, "gen-keep", 100, "generated successful trajectories for dpo-gen")
	f.IntVar(&cfg.Episodes, "episodes", 1000, "Thompson-sampling episodes per run (0: skip the A/B test)")
	f.IntVar(&cfg.Runs, "runs", 3, "Thompson-sampling runs")
	f.Float64Var(&cfg.MinShare, "min-share", 0.02, "Thompson-sampling traffic floor per arm")
	f.StringVar(&counts, "demo-counts", "10,30,100,300,1000", "demonstration counts of the IL data-efficiency curve (empty: skip)")
	f.IntVar(&cfg.EvalFirst, "eval-first", 0, "evaluate on the first N test goals only (0: all)")
	f.StringVar(&cfg.Backend, "backend", models.DefaultBackend, "GoMLX backend of every training and evaluation stage")
	f.StringVar(&pretrainArgs, "pretrain-args", "", "extra arguments for train pretrain (e.g. \"--batch 16 --max-len 64\")")
	f.StringVar(&ilArgs, "il-args", "", "extra arguments for train il (e.g. \"--batch 16 --max-state-len 256\")")
	f.StringVar(&rlArgs, "rl-args", "", "extra arguments for train pg/ppo/dpo")
	f.StringVar(&evalArgs, "eval-args", "", "extra arguments for eval")
	return cmd
}
