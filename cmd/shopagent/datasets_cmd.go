package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"shopagent/datasets"
	"shopagent/env"
)

func newDatasetsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "datasets",
		Short: "Trajectory files: inspect them, import human demonstrations, generate expert demonstrations",
		Long: `Trajectory files are Parquet files with one row per step (episode_id, source,
policy, goal_id, instruction, step, page, observation, available_actions,
action, action_index, logprob, value, reward, done, final_reward).`,
	}
	cmd.AddCommand(newDatasetsInspectCmd(), newDatasetsImportHumanCmd(), newDatasetsDemosCmd())
	return cmd
}

func newDatasetsInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect FILE|DIR",
		Short: "Summarise a trajectory file, every *.parquet file of a directory, or a policy server's logs",
		Long: `Prints episodes, steps, episodes and steps per source, the mean final
reward and success rate (over episodes with a known final reward), mean steps
per episode and the action mix (search, click on a product, click on an option,
navigation, buy now).

Given the log directory of shopagent serve --logs DIR (it has decisions/,
rewards/ or wal/), prints the decision and reward logs instead: files, rows
(also those still in the write-ahead log, read without changing it), sessions,
episodes and per arm decisions, rewards, timeouts, mean reward, success rate
and policies.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if datasets.IsServeLogDir(args[0]) {
				s, err := datasets.InspectServeLogs(args[0])
				if err != nil {
					return err
				}
				if asJSON {
					b, err := json.MarshalIndent(s, "", "  ")
					if err != nil {
						return err
					}
					_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
					return err
				}
				return printServeLogSummary(cmd.OutOrStdout(), s)
			}
			s, err := datasets.Inspect(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				b, err := json.MarshalIndent(s, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return err
			}
			return printSummary(cmd.OutOrStdout(), s)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the summary as JSON")
	return cmd
}

func printServeLogSummary(out io.Writer, s datasets.ServeLogSummary) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "path\t%s (policy server logs: %d decision and %d reward files, %d WAL segments)\n", s.Path, s.DecisionFiles, s.RewardFiles, s.WALSegments)
	fmt.Fprintf(tw, "decisions\t%d (%d in the WAL)\n", s.Decisions, s.WALDecisions)
	fmt.Fprintf(tw, "rewards\t%d (%d in the WAL)\n", s.Rewards, s.WALRewards)
	fmt.Fprintf(tw, "sessions\t%d\n", s.Sessions)
	fmt.Fprintf(tw, "episodes\t%d (%d without a reward yet)\n", s.Episodes, s.Unrewarded)
	if !s.First.IsZero() {
		fmt.Fprintf(tw, "time span\t%s .. %s\n", s.First.UTC().Format(time.RFC3339), s.Last.UTC().Format(time.RFC3339))
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "arm\tdecisions\trewards\ttimeouts\tmean reward\tsuccess\tpolicies\n")
	for _, a := range s.Arms {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.4f\t%.2f%%\t%s\n", a.Arm, a.Decisions, a.Rewards, a.Timeouts, a.MeanReward, a.SuccessRate, strings.Join(a.Policies, ","))
	}
	return tw.Flush()
}

func printSummary(out io.Writer, s datasets.Summary) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "path\t%s (%d file(s))\n", s.Path, s.Files)
	fmt.Fprintf(tw, "episodes\t%d\n", s.Episodes)
	fmt.Fprintf(tw, "steps\t%d\n", s.Steps)
	fmt.Fprintf(tw, "mean steps/episode\t%.2f\n", s.MeanSteps)
	if s.Rewarded > 0 {
		fmt.Fprintf(tw, "mean final reward\t%.4f (%d episodes with a known reward)\n", s.MeanFinalReward, s.Rewarded)
		fmt.Fprintf(tw, "success rate\t%.2f%%\n", s.SuccessRate)
	} else {
		fmt.Fprintf(tw, "mean final reward\tunknown (no episode has a final reward)\n")
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "source\tepisodes\tsteps\n")
	for _, c := range s.Sources {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", c.Source, c.Episodes, c.Steps)
	}
	fmt.Fprintln(tw)
	total := s.Actions.Total()
	pct := func(n int) string {
		if total == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(total))
	}
	fmt.Fprintf(tw, "action\tcount\tshare\n")
	for _, r := range []struct {
		name string
		n    int
	}{
		{"search", s.Actions.Search}, {"click product", s.Actions.ClickASIN},
		{"click option", s.Actions.ClickOption}, {"navigation", s.Actions.Navigation},
		{"buy now", s.Actions.BuyNow}, {"other", s.Actions.Other},
	} {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", r.name, r.n, pct(r.n))
	}
	return tw.Flush()
}

func newDatasetsImportHumanCmd() *cobra.Command {
	var sf shopFlags
	var in, out string
	var replay bool
	cmd := &cobra.Command{
		Use:   "import-human --in il_trajs_finalized_images.jsonl --out human.parquet",
		Short: "Convert WebShop's human demonstrations to a trajectory file (source human)",
		Long: `Reads WebShop's il_trajs_finalized_images.jsonl (one episode per line: states,
actions, available_actions, action_idxs; images are ignored) and writes one row
per step with source "human". The instruction is parsed from the first state
and each step's page is inferred from its text.

The demonstrations do not record their reward, so final_reward is NaN unless
--replay is given: then each episode is matched to the shop goal with the same
instruction (the shop flags pick the shop; use WebShop's data with --data) and
its purchase is scored by replaying the actions in the simulator.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" || out == "" {
				return fmt.Errorf("--in and --out are required")
			}
			var opts datasets.HumanOptions
			if replay {
				shop, err := sf.open()
				if err != nil {
					return err
				}
				opts.Shop = shop
			}
			w, err := datasets.Create(out, datasets.WriterOptions{})
			if err != nil {
				return err
			}
			t := time.Now()
			st, err := datasets.ImportHumanEpisodes(in, opts, func(ep []datasets.Step) error { return w.Write(ep...) })
			if err != nil {
				w.Abort()
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d human episodes (%d steps) from %s into %s (%s)\n",
				st.Episodes, st.Steps, in, out, time.Since(t).Round(time.Millisecond))
			if replay {
				scored := st.Replayed + st.Scored
				mean, rate := math.NaN(), math.NaN()
				if scored > 0 {
					mean, rate = st.RewardSum/float64(scored), 100*float64(st.Successes)/float64(scored)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "replay: %d matched a shop goal, %d replayed, %d scored directly; mean reward %.4f, success rate %.2f%%\n",
					st.Matched, st.Replayed, st.Scored, mean, rate)
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&in, "in", "", "WebShop human demonstrations (il_trajs_finalized_images.jsonl)")
	cmd.Flags().StringVar(&out, "out", "", "trajectory file to write (.parquet)")
	cmd.Flags().BoolVar(&replay, "replay", false, "score each demonstration by replaying it on the shop (see the shop flags)")
	return cmd
}

func newDatasetsDemosCmd() *cobra.Command {
	var sf shopFlags
	var split, out, obs string
	var n, workers, maxSteps int
	var demoSeed uint64
	ecfg := datasets.DefaultExpertConfig()
	cmd := &cobra.Command{
		Use:   "demos --split train --n N --out expert.parquet",
		Short: "Generate expert demonstrations on a shop (source expert)",
		Long: `A scripted expert that knows each goal (product, attributes, options, price
cap) but acts only through the shop's pages like any agent. Its first search
types a real person's query for the instruction when WebShop's
goal_query_map.json (embedded) has one, with probability --human-query-prob,
otherwise a short query in their style (the product and one or two attributes
or options). It scans up to --max-pages result pages for the goal product,
searches again with more specific queries (up to --max-searches searches),
otherwise buys the best-looking result; on the product page it clicks the
goal's options and buys. On the way it makes people's detours at the given
rates, at most --max-detours an episode: it opens other results and goes back
(--open-other-prob, per results page), looks at the next page when the goal
product shows (--page-ahead-prob), searches again with a reformulated query
after its first results page (--reformulate-prob), and reads the description
or features of a product it opens (--read-prob). Setting the four to 0 gives
the direct expert. --noise makes it take a random click with that probability
at each step (and recover). Episodes cycle over the split's goals; the output
is the same for the same flags whatever --workers. Rows are labelled source
"expert", policy "expert"; a search row used a human query when its query is
among the instruction's in goal_query_map.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			mode, err := env.ParseObsMode(obs)
			if err != nil {
				return err
			}
			for _, p := range []struct {
				name string
				v    float64
			}{
				{"--noise", ecfg.Noise}, {"--read-prob", ecfg.ReadProb}, {"--open-other-prob", ecfg.OpenOtherProb},
				{"--page-ahead-prob", ecfg.PageAheadProb}, {"--reformulate-prob", ecfg.ReformulateProb},
				{"--human-query-prob", ecfg.HumanQueryProb},
			} {
				if p.v < 0 || p.v > 1 {
					return fmt.Errorf("%s must be in [0, 1], not %g", p.name, p.v)
				}
			}
			if ecfg.MaxDetours < 0 || ecfg.MaxPages < 1 || ecfg.MaxSearches < 1 {
				return fmt.Errorf("--max-detours must be at least 0, --max-pages and --max-searches at least 1")
			}
			cfg := ecfg
			if cfg.MaxDetours == 0 {
				cfg.OpenOtherProb, cfg.PageAheadProb, cfg.ReformulateProb = 0, 0, 0
			}
			shop, err := sf.open()
			if err != nil {
				return err
			}
			r, err := shop.Splits.Split(split)
			if err != nil {
				return err
			}
			goals := shop.Goals[r[0]:r[1]]
			if len(goals) == 0 {
				return fmt.Errorf("split %q has no goals", split)
			}
			episodes := n
			if episodes <= 0 {
				episodes = len(goals)
			}
			bar := newEvalBar(episodes, "expert demos")
			t := time.Now()
			st, err := datasets.WriteDemos(shop, datasets.DemoConfig{
				Goals: goals, GoalOffset: r[0], Episodes: episodes, Expert: cfg,
				Seed: demoSeed, Workers: workers,
				Env:      env.Config{Mode: mode, MaxSteps: maxSteps},
				Progress: func(int) { _ = bar.Add(1) },
			}, out)
			_ = bar.Finish()
			if err != nil {
				return err
			}
			return printDemoStats(cmd.OutOrStdout(), split, len(goals), cfg.Noise, st, out, time.Since(t))
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&split, "split", "train", "goal split: test, dev, train or all")
	f.IntVar(&n, "n", 0, "episodes to generate, cycling over the split's goals (0 = one per goal)")
	f.StringVar(&out, "out", "", "trajectory file to write (.parquet)")
	f.Float64Var(&ecfg.Noise, "noise", ecfg.Noise, "probability of a random click at each step")
	f.Float64Var(&ecfg.ReadProb, "read-prob", ecfg.ReadProb, "probability of reading the description or features of a product the expert opens")
	f.Float64Var(&ecfg.OpenOtherProb, "open-other-prob", ecfg.OpenOtherProb, "detour: probability, per results page viewed, of opening another result first and going back")
	f.Float64Var(&ecfg.PageAheadProb, "page-ahead-prob", ecfg.PageAheadProb, "detour: probability of looking at the next page when the goal product shows (once per search)")
	f.Float64Var(&ecfg.ReformulateProb, "reformulate-prob", ecfg.ReformulateProb, "detour: probability of searching again with a reformulated query after the first results page")
	f.IntVar(&ecfg.MaxDetours, "max-detours", ecfg.MaxDetours, "most detours per episode (0 = none)")
	f.IntVar(&ecfg.MaxPages, "max-pages", ecfg.MaxPages, "result pages scanned per search")
	f.IntVar(&ecfg.MaxSearches, "max-searches", ecfg.MaxSearches, "searches (reformulations aside) before buying the best-looking result")
	f.Float64Var(&ecfg.HumanQueryProb, "human-query-prob", ecfg.HumanQueryProb, "probability of searching first with a real person's query for the instruction when WebShop's goal_query_map.json has one")
	f.Uint64Var(&demoSeed, "demo-seed", 1, "seed of the expert's queries and choices (--seed is the shop's price seed)")
	f.IntVar(&workers, "workers", 0, "parallel episodes (0 = GOMAXPROCS)")
	f.StringVar(&obs, "obs", "text", "observation mode stored in the rows: text or text_rich")
	f.IntVar(&maxSteps, "max-steps", 100, "step cap per episode (reward 0 when reached)")
	return cmd
}

// printDemoStats prints what datasets demos generated.
func printDemoStats(w io.Writer, split string, goals int, noise float64, st datasets.DemoStats, out string, took time.Duration) error {
	per := func(n int) float64 {
		if st.Episodes == 0 {
			return 0
		}
		return float64(n) / float64(st.Episodes)
	}
	pct := func(n int) float64 { return 100 * per(n) }
	fmt.Fprintf(w, "expert on %s (%d goals, %d episodes, noise %g): success rate %.2f%%, mean reward %.4f (score %.2f), mean steps %.2f\n",
		split, goals, st.Episodes, noise, st.SuccessRate, st.MeanReward, 100*st.MeanReward, st.MeanSteps)
	fmt.Fprintf(w, "bought the goal product in %d episodes, %d searches, %d random actions, %d truncated\n",
		st.BoughtGoal, st.Searches, st.RandomActions, st.Truncated)
	fmt.Fprintf(w, "first query: a human query in %d episodes (%.1f%%), a shortened one in the others; %.2f words on average\n",
		st.HumanQueries, pct(st.HumanQueries), st.MeanQueryWords)
	fmt.Fprintf(w, "per episode: %.2f searches, %.2f results pages viewed (at most %d), %.2f products opened (at most %d), %.2f reads\n",
		per(st.Searches), per(st.ResultsViews), st.MaxResultsViews, per(st.ItemsOpened), st.MaxItemsOpened, per(st.Reads))
	fmt.Fprintf(w, "detours: %d other results opened, %d next pages looked at, %d reformulated searches\n",
		st.OpenedOthers, st.PagesAhead, st.Reformulations)
	_, err := fmt.Fprintf(w, "wrote %d steps to %s (%s)\n", st.Steps, out, took.Round(time.Millisecond))
	return err
}
