package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"shopagent/experiment"
	"shopagent/features"
)

func newExperimentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "experiment",
		Short: "End-to-end experiments (the paper's comparison of rule, IL, PG, PPO and DPO)",
	}
	cmd.AddCommand(newExperimentPaperCmd())
	return cmd
}

func newExperimentPaperCmd() *cobra.Command {
	cfg := experiment.DefaultConfig()
	var methods, sweep string
	var batch, maxState int
	cmd := &cobra.Command{
		Use:   "paper --out DIR [--methods ...] [--seeds 3] [--budget 2m]",
		Short: "The paper's comparison with a fair protocol: rule, IL, IL continued, IL+PG, IL+PPO, IL+DPO, self-generation",
		Long: `Runs the whole comparison in process on the calibrated built-in shop (generated
into OUT/shop unless --data), with the typed training functions:

  shop, expert demonstrations (one per train goal), masked-LM pretraining;
  a dev-split sweep (--sweep): each trial trains from seed 1's IL policy for
    --budget with a training seed of its own (101) and is scored on
    --sweep-goals dev goals; each method keeps its best trial (dpo's also
    serves dpo-gen, self-gen and dpo-webshop);
  per seed: IL; from it, each for the same --budget of wall clock measured
    from the start of its stage (reference passes and generation included):
    il-cont (IL continued on the demonstrations: the control for longer
    supervised training), pg, ppo, dpo (expert demonstrations), dpo-gen
    (generate from IL on the train goals, keep --gen-keep successes, DPO on
    them); self-gen: --rounds generation rounds, each from the previous
    round's policy, which is also DPO's reference; il-webshop and dpo-webshop:
    IL and DPO with WebShop's choice model (no exact-match, match-fraction or
    rank priors);
  every model evaluated once, greedily, on the test goals (all of them unless
    --eval-goals); seed 1's models meet in a Thompson-sampling A/B test
    (--thompson-episodes x --thompson-runs).

Writes to --out: results.json (configuration, every seed's figures, the sweep,
the rounds, the A/B report), results.md, scores.png (every seed a dot),
rounds.png, thompson/, stages/ (one record per stage: configuration, wall
clock, budget, result) and logs/. A rerun with the same --out skips the stages
that finished; a budgeted stage cut short is redone, IL and pretraining resume
from their last checkpoint.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Out == "" {
				return fmt.Errorf("--out is required")
			}
			var err error
			if cfg.Methods, err = experiment.ParseMethods(methods); err != nil {
				return err
			}
			if cfg.Sweep, err = experiment.ParseSweep(sweep); err != nil {
				return fmt.Errorf("--sweep: %w", err)
			}
			if batch > 0 {
				cfg.Pretrain.Batch, cfg.IL.Batch, cfg.ILCont.Batch, cfg.PG.Batch, cfg.PPO.Batch, cfg.DPO.Batch = batch, batch, batch, batch, batch, batch
			}
			if maxState > 0 {
				cfg.IL.MaxStateLen, cfg.ILCont.MaxStateLen = maxState, maxState
			}
			cfg.Log = cmd.ErrOrStderr()
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			t := time.Now()
			res, err := experiment.Run(ctx, cfg)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprint(w, res.Markdown())
			fmt.Fprintf(w, "\nexperiment finished in %s; results in %s (%s, %s, %s)\n", time.Since(t).Round(time.Second), cfg.Out,
				experiment.ResultsMarkdown, experiment.ResultsJSON, experiment.ScoresPlot)
			for _, m := range res.Methods {
				if len(m.Failures) > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %d seed(s) failed (see %s)\n", m.Label, len(m.Failures), filepath.Join(cfg.Out, "logs"))
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Out, "out", "", "output directory (required; a rerun with the same directory resumes)")
	f.StringVar(&cfg.Data, "data", "", "shop directory (empty: generate the calibrated built-in shop into OUT/shop)")
	f.StringVar(&cfg.Shop.Goals, "shop-goals", cfg.Shop.Goals, "WebShop goals of the built-in shop: N, all or index ranges")
	f.IntVar(&cfg.Shop.Products, "products", cfg.Shop.Products, "products of the built-in shop (0: 10 per goal)")
	f.Int64Var(&cfg.Shop.Seed, "gen-seed", cfg.Shop.Seed, "generator seed of the built-in shop")
	f.StringVar(&methods, "methods", strings.Join(experiment.AllMethods, ","), "methods to compare: "+strings.Join(experiment.AllMethods, ", "))
	f.IntVar(&cfg.Seeds, "seeds", cfg.Seeds, "training seeds per method")
	f.DurationVar(&cfg.Budget, "budget", cfg.Budget, "wall clock of every fine-tuning stage (il-cont, pg, ppo, dpo, each generation round), from its start")
	f.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "generation rounds (1 = dpo-gen only; self-gen adds rounds 2..N)")
	f.IntVar(&cfg.Generate.Keep, "gen-keep", cfg.Generate.Keep, "successful episodes kept per generation round")
	f.Float64Var(&cfg.GenShare, "gen-share", cfg.GenShare, "share of a generation round's budget its generation may use")
	f.Int64Var(&cfg.Pretrain.Steps, "pretrain-steps", cfg.Pretrain.Steps, "masked-LM pretraining steps")
	f.Int64Var(&cfg.IL.Steps, "il-steps", cfg.IL.Steps, "IL steps per run")
	f.StringVar(&cfg.Pretrain.Preset, "preset", cfg.Pretrain.Preset, "encoder size: "+strings.Join(features.PresetNames, ", "))
	f.IntVar(&cfg.Demos, "demos", cfg.Demos, "expert demonstrations (0: one per train goal)")
	f.IntVar(&cfg.DPO.MaxEpisodes, "dpo-episodes", cfg.DPO.MaxEpisodes, "demonstration episodes DPO uses (0: all; its reference pass over them is inside its budget)")
	f.IntVar(&batch, "batch", 0, "examples per update of every training stage (0: each job's default, 32)")
	f.IntVar(&maxState, "max-state-len", 0, "longest state in tokens of IL and its continuation (0: the default, 512)")
	f.IntVar(&cfg.Pretrain.VocabSize, "vocab-size", cfg.Pretrain.VocabSize, "size of the vocabulary learned in pretraining")
	f.IntVar(&cfg.Pretrain.MaxLen, "max-len", cfg.Pretrain.MaxLen, "tokens per pretraining sequence")
	f.StringVar(&sweep, "sweep", experiment.FormatSweep(cfg.Sweep), "dev-split trials: method:lr[:beta],... (empty: no sweep, the defaults as they are)")
	f.IntVar(&cfg.SweepGoals, "sweep-goals", cfg.SweepGoals, "dev goals each sweep trial is scored on (0: all)")
	f.IntVar(&cfg.Thompson.Episodes, "thompson-episodes", cfg.Thompson.Episodes, "Thompson-sampling episodes per run (0: skip the A/B test)")
	f.IntVar(&cfg.Thompson.Runs, "thompson-runs", cfg.Thompson.Runs, "Thompson-sampling runs")
	f.Float64Var(&cfg.Thompson.MinShare, "min-share", cfg.Thompson.MinShare, "Thompson-sampling traffic floor per arm")
	f.IntVar(&cfg.EvalGoals, "eval-goals", 0, "evaluate on the first N test goals only (0: all)")
	f.StringVar(&cfg.Backend, "backend", cfg.Backend, "GoMLX backend of every training and evaluation stage")
	f.Float64Var(&cfg.WaitLoad, "wait-load", 0, "before each budgeted stage, wait until the machine's 1-minute load average is at most this (0: no wait; on a shared machine, so budgets buy similar compute)")
	f.DurationVar(&cfg.WaitMax, "wait-max", 30*time.Minute, "longest wait for --wait-load before a stage starts anyway")
	return cmd
}
