package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"shopagent/abtest"
	"shopagent/agent"
	"shopagent/env"
	"shopagent/serve"
)

// serverReadyWait is how long `abtest --server` waits for the server's /readyz.
const serverReadyWait = 2 * time.Minute

// runServerABTest drives a running policy server (POST /act, POST /feedback) with the
// simulator for `abtest --server`: each episode is a new session whose arm the server
// chooses; the client searches the instruction and lets the server choose every click
// (text_rich observations, as trained policies read), posting the reward at the end.
// Runs share the server's posteriors (the server is not reset between runs).
func runServerABTest(cmd *cobra.Command, shop *env.Shop, goals []env.Goal, server string, episodes, runs, concurrency int, seed uint64, outDir string) error {
	maxSteps, _ := cmd.Flags().GetInt("max-steps")
	agentSteps, _ := cmd.Flags().GetInt("agent-max-steps")
	split, _ := cmd.Flags().GetString("split")
	client := serve.NewClient(server)
	ctx, cancel := signalContext(cmd.Context())
	defer cancel()
	// A server that is starting (loading models) gets a while to become ready; one that
	// cannot be reached fails the command instead of waiting forever.
	waitCtx, cancelWait := context.WithTimeout(ctx, serverReadyWait)
	err := client.WaitReady(waitCtx)
	cancelWait()
	if err != nil {
		return fmt.Errorf("abtest --server %s: %w", server, err)
	}
	before, err := client.Arms(ctx)
	if err != nil {
		return err
	}
	bar := newEvalBar(episodes*runs, "abtest "+server)
	start := time.Now()
	eps, runErr := abtest.Drive(ctx, client, shop, goals, abtest.DriveConfig{Episodes: episodes, Runs: runs, Concurrency: concurrency,
		Seed: seed, MaxSteps: maxSteps, Agent: agent.Config{MaxSteps: agentSteps}, Progress: func(int, int) { _ = bar.Add(1) }})
	_ = bar.Finish()
	elapsed := time.Since(start)
	names := make([]string, len(before.Arms))
	for i, a := range before.Arms {
		names[i] = a.Name
	}
	var out []abtest.Episode
	unserved := 0
	for _, e := range eps {
		if e.Arm == "" {
			unserved++ // no decision was served: the server never saw the episode
			continue
		}
		out = append(out, abtest.Episode{Run: e.Run, Index: e.Index, Arm: e.Arm, Goal: e.Goal, Score: e.Reward,
			Success: e.Success, Steps: e.Steps})
	}
	if len(out) == 0 {
		if runErr != nil {
			return runErr
		}
		return fmt.Errorf("abtest --server: no episode was served")
	}
	rep := abtest.Summarize(names, out, runs, seed)
	for i := range rep.Arms {
		for _, a := range before.Arms {
			if a.Name == rep.Arms[i].Name {
				rep.Arms[i].Spec = a.Dir
			}
		}
	}
	rep.MinShare, rep.Source, rep.Split, rep.Goals, rep.Workers = before.MinShare, server, split, len(goals), concurrency
	rep.ElapsedS = elapsed.Seconds()
	w := cmd.OutOrStdout()
	fmt.Fprint(w, rep.Markdown())
	fmt.Fprintf(w, "%d episodes through %s in %s (%.1f episodes/s)\n", len(out), server, elapsed.Round(time.Millisecond),
		float64(len(out))/max(elapsed.Seconds(), 1e-9))
	if unserved > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "%d episodes ended without a served decision and are left out\n", unserved)
	}
	if after, err := client.Arms(ctx); err == nil {
		fmt.Fprintf(w, "server posteriors now:")
		for _, a := range after.Arms {
			fmt.Fprintf(w, " %s Beta(%g, %g) P(best) %.3f;", a.Name, a.Posterior.Alpha, a.Posterior.Beta, a.PBest)
		}
		fmt.Fprintln(w)
	}
	if outDir != "" {
		if err := abtest.WriteOutputs(outDir, rep); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %s to %s\n", strings.Join([]string{abtest.ReportFile, abtest.EpisodesFile, abtest.MarkdownFile, abtest.PlotFile}, ", "), outDir)
	}
	return runErr
}
