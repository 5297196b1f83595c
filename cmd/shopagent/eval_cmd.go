package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"shopagent/env"
)

func newEvalCmd() *cobra.Command {
	var sf shopFlags
	var agent, split, asJSON string
	var workers, maxSteps int
	cmd := &cobra.Command{
		Use:   "eval --agent rule --split test",
		Short: "Evaluate an agent on a goal split: score, success rate, mean steps",
		Long: `Runs one episode per goal of the split. Score is 100 x mean reward,
success rate the percent of episodes with reward 1.0 (WebShop's metrics).
Agents: rule (WebShop's baseline: search the instruction, click the first
result, buy) and random (a random walk).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			shop, err := sf.open()
			if err != nil {
				return err
			}
			goals, err := shop.SplitGoals(split)
			if err != nil {
				return err
			}
			var newAgent func(int) env.Agent
			switch agent {
			case "rule":
				newAgent = func(int) env.Agent { return env.RuleAgent{} }
			case "random":
				newAgent = func(w int) env.Agent { return env.NewRandomAgent(uint64(w), 0.05) }
			default:
				return fmt.Errorf("unknown --agent %q (want rule or random)", agent)
			}
			bar := progressbar.NewOptions(len(goals), progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionSetDescription("eval "+agent), progressbar.OptionShowCount(),
				progressbar.OptionShowIts(), progressbar.OptionSetItsString("episodes"),
				progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish(),
				progressbar.OptionThrottle(200*time.Millisecond))
			t := time.Now()
			eps := shop.Evaluate(goals, env.Config{Mode: env.ObsText, MaxSteps: maxSteps}, workers,
				newAgent, false, func(int) { _ = bar.Add(1) })
			_ = bar.Finish()
			sum := env.Summarize(eps)
			if asJSON != "" {
				b, _ := json.MarshalIndent(map[string]any{"agent": agent, "split": split, "summary": sum}, "", "  ")
				if err := os.WriteFile(asJSON, append(b, '\n'), 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s on %s (%d goals): score %.2f, success rate %.2f%%, mean steps %.2f (%s)\n",
				agent, split, sum.Episodes, sum.Score, sum.SuccessRate, sum.MeanSteps, time.Since(t).Round(time.Millisecond))
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&agent, "agent", "rule", "agent: rule or random")
	cmd.Flags().StringVar(&split, "split", "test", "goal split: test, dev, train or all")
	cmd.Flags().IntVar(&workers, "workers", 0, "parallel episodes (0 = GOMAXPROCS)")
	cmd.Flags().IntVar(&maxSteps, "max-steps", 100, "step cap per episode (reward 0 when reached)")
	cmd.Flags().StringVar(&asJSON, "json", "", "also write the summary as JSON to this file")
	return cmd
}
