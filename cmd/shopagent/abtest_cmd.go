package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"shopagent/abtest"
	"shopagent/bandit"
	"shopagent/models"
	"shopagent/train"
)

func newAbtestCmd() *cobra.Command {
	var sf shopFlags
	var arms, split, out, backend, server string
	var episodes, runs, workers, maxSteps, agentSteps, goalsN, concurrency int
	var minShare float64
	var seed uint64
	var sample bool
	cmd := &cobra.Command{
		Use:   "abtest --arms a=SPEC,b=SPEC,... [--episodes 1000] [--runs 3] [--out DIR]",
		Short: "Compare agents online on the simulator by Thompson sampling",
		Long: `Plays --runs independent A/B tests of --episodes episodes each. Every episode
draws a goal of --split at random (seeded), picks an arm by Thompson sampling
of the Beta posteriors of the arms' success rates (with a floor of
--min-share of the traffic per arm), plays the goal with that arm's agent and
feeds the reward back. --workers episodes run at once: an arm is chosen when
its episode starts and its posterior updated when it ends, as in a live system
with delayed feedback (with --workers 1 a run is reproducible from the seed).

An arm is name=SPEC: SPEC is rule (WebShop's rule baseline), random (a random
walk) or a trained policy (a run directory or a checkpoint directory; greedy
unless --sample).

Prints per arm the episodes, traffic share, score (100 x mean reward), success
rate, mean steps, posterior mean and the probability of being the best arm,
with the spread over runs; --out DIR writes report.json, episodes.parquet
(run, episode, arm, goal, score, success, steps), report.md and abtest.png
(cumulative score, success rate and traffic share per arm against episodes,
averaged over runs).

With --server URL the episodes are played against a running policy server
(shopagent serve) instead, --concurrency sessions at a time; the server
chooses the arms.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if episodes <= 0 || runs <= 0 {
				return fmt.Errorf("--episodes and --runs must be positive")
			}
			if server == "" && arms == "" {
				return fmt.Errorf("--arms is required (name=SPEC,...; SPEC: rule, random or a policy run directory or checkpoint)")
			}
			var specs []abtest.ArmSpec
			if server == "" {
				var err error
				if specs, err = abtest.ParseArms(arms); err != nil {
					return err
				}
				if err := (bandit.Thompson{Prior: bandit.UniformPrior, MinShare: minShare}).Validate(len(specs)); err != nil {
					return fmt.Errorf("--min-share: %w", err)
				}
			}
			shop, goals, err := sf.openSplit(split, goalsN)
			if err != nil {
				return err
			}
			if server != "" {
				if concurrency <= 0 {
					return fmt.Errorf("--concurrency must be positive")
				}
				return runServerABTest(cmd, shop, goals, server, episodes, runs, concurrency, seed, out)
			}
			if workers <= 0 {
				workers = 2 * runtime.GOMAXPROCS(0)
			}
			ac := train.AgentConfig{Sample: sample, MaxSteps: agentSteps}
			loaded, err := abtest.LoadArms(specs, backend, workers, ac)
			if err != nil {
				return err
			}
			defer abtest.CloseArms(loaded)
			bar := newEvalBar(episodes*runs, "abtest")
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			res, runErr := abtest.Run(ctx, shop, goals, loaded, abtest.Config{
				Episodes: episodes, Runs: runs, Workers: workers, Seed: seed, MaxSteps: maxSteps,
				Bandit:   bandit.Thompson{Prior: bandit.UniformPrior, MinShare: minShare},
				Progress: func(int, int) { _ = bar.Add(1) },
			})
			_ = bar.Finish()
			if res == nil {
				return runErr
			}
			names := make([]string, len(specs))
			for i, s := range specs {
				names[i] = s.Name
			}
			rep := abtest.Summarize(names, res.Episodes, runs, seed)
			for i := range rep.Arms {
				for _, s := range specs {
					if s.Name == rep.Arms[i].Name {
						rep.Arms[i].Spec = s.Spec
					}
				}
			}
			rep.MinShare, rep.Source, rep.Split, rep.Goals, rep.Workers = minShare, "in-process", split, len(goals), workers
			rep.ElapsedS, rep.Errors = res.Elapsed.Seconds(), res.Errors
			w := cmd.OutOrStdout()
			fmt.Fprint(w, rep.Markdown())
			fmt.Fprintf(w, "%d episodes in %s (%.1f episodes/s)\n", len(res.Episodes), res.Elapsed.Round(time.Millisecond),
				float64(len(res.Episodes))/max(res.Elapsed.Seconds(), 1e-9))
			if res.Errors > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d episodes had scoring errors; first: %v\n", res.Errors, res.FirstError)
			}
			if out != "" {
				if err := abtest.WriteOutputs(out, rep); err != nil {
					return err
				}
				fmt.Fprintf(w, "wrote %s\n", strings.Join([]string{abtest.ReportFile, abtest.EpisodesFile, abtest.MarkdownFile, abtest.PlotFile}, ", ")+" to "+out)
			}
			return runErr
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&arms, "arms", "", "arms: name=SPEC,... (SPEC: rule, random, or a policy run directory or checkpoint)")
	f.IntVar(&episodes, "episodes", 1000, "episodes per run")
	f.IntVar(&runs, "runs", 3, "independent runs (each from fresh posteriors)")
	f.StringVar(&split, "split", "test", "goal split the episodes draw from: test, dev, train or all")
	f.IntVar(&goalsN, "first", 0, "draw only from the first N goals of the split (0 = all)")
	f.Float64Var(&minShare, "min-share", 0.02, "traffic floor per arm (uniform draws with probability min-share x arms)")
	f.Uint64Var(&seed, "bandit-seed", 1, "seed of the goal draws, arm choices and agents (--seed is the shop's price seed)")
	f.IntVar(&workers, "workers", 0, "concurrent episodes (0 = 2 x GOMAXPROCS; policy forwards are batched across them)")
	f.IntVar(&maxSteps, "max-steps", 100, "step cap per episode (reward 0 when reached)")
	f.IntVar(&agentSteps, "agent-max-steps", train.DefaultAgentMaxSteps, "a policy agent's own action budget before it finishes (buys)")
	f.BoolVar(&sample, "sample", false, "policy arms sample their actions instead of taking the most likely")
	f.StringVar(&backend, "backend", models.DefaultBackend, "GoMLX backend for policy arms")
	f.StringVar(&out, "out", "", "directory for report.json, episodes.parquet, report.md and abtest.png (empty: print only)")
	f.StringVar(&server, "server", "", "play against a running policy server at this URL instead of in process")
	f.IntVar(&concurrency, "concurrency", 8, "with --server: sessions in flight at once")
	return cmd
}
