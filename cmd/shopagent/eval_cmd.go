package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"shopagent/datasets"
	"shopagent/env"
	"shopagent/features"
	"shopagent/models"
	"shopagent/train"
)

func newEvalCmd() *cobra.Command {
	var sf shopFlags
	var agent, split, asJSON, policy, backend, out, shard, queryModel string
	var workers, maxSteps, agentSteps, goalsN int
	var sample, greedy, noBatch bool
	var seed uint64
	cmd := &cobra.Command{
		Use:   "eval --agent rule --split test | eval --policy RUN_DIR --split test",
		Short: "Evaluate an agent on a goal split: score, success rate, mean steps",
		Long: `Runs one episode per goal of the split. Score is 100 x mean reward,
success rate the percent of episodes with reward 1.0 (WebShop's metrics).
Agents: rule (WebShop's baseline: search the instruction, click the first
result, buy) and random (a random walk).

With --policy (a training run directory or a checkpoint directory) the trained
policy plays instead: it searches with the keyword query proposer and the choice
model picks every click (greedy by default, --sample to draw from its
distribution); the rule agent's figures on the same goals are printed beside it.
--out writes the policy's episodes as a trajectory file (source rollout, with
each action's log-probability and the state's value).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sample && cmd.Flags().Changed("greedy") && greedy {
				return fmt.Errorf("--greedy and --sample exclude each other")
			}
			if out != "" && policy == "" {
				return fmt.Errorf("--out needs --policy")
			}
			shop, goals, err := sf.openSplit(split, goalsN)
			if err != nil {
				return err
			}
			r, err := shop.Splits.Split(split)
			if err != nil {
				return err
			}
			ids := make([]int, len(goals))
			for i := range ids {
				ids[i] = r[0] + i
			}
			if shard != "" {
				k, n, err := parseShard(shard)
				if err != nil {
					return err
				}
				goals, ids = shardGoals(goals, ids, k, n)
			}
			if len(goals) == 0 {
				return fmt.Errorf("split %q has no goals (shard %q)", split, shard)
			}
			if policy != "" {
				return evalPolicy(cmd, shop, goals, split, policyEvalOpts{
					path: policy, backend: backend, out: out, json: asJSON, workers: workers, maxSteps: maxSteps,
					agentSteps: agentSteps, sample: sample, seed: seed, noBatch: noBatch, shard: shard, goalIDs: ids, queryModel: queryModel,
				})
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
			bar := newEvalBar(len(goals), "eval "+agent)
			t := time.Now()
			eps := shop.Evaluate(goals, env.Config{Mode: env.ObsText, MaxSteps: maxSteps}, workers,
				newAgent, false, func(int) { _ = bar.Add(1) })
			_ = bar.Finish()
			sum := env.Summarize(eps)
			if asJSON != "" {
				b, _ := json.MarshalIndent(map[string]any{"agent": agent, "split": split, "shard": shard,
					"summary": sum, "sums": sumsOf(eps)}, "", "  ")
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
	cmd.Flags().StringVar(&agent, "agent", "rule", "agent: rule or random (ignored with --policy)")
	cmd.Flags().StringVar(&split, "split", "test", "goal split: test, dev, train or all")
	cmd.Flags().IntVar(&workers, "workers", 0, "parallel episodes (0 = GOMAXPROCS; with --policy 2 x GOMAXPROCS, forwards batched across workers)")
	cmd.Flags().IntVar(&maxSteps, "max-steps", 100, "step cap per episode (reward 0 when reached)")
	cmd.Flags().StringVar(&asJSON, "json", "", "also write the summary as JSON to this file")
	cmd.Flags().StringVar(&policy, "policy", "", "trained policy: a run directory (latest checkpoint) or a checkpoint directory")
	cmd.Flags().StringVar(&backend, "backend", models.DefaultBackend, "GoMLX backend for --policy")
	cmd.Flags().BoolVar(&greedy, "greedy", true, "take the policy's most likely action")
	cmd.Flags().BoolVar(&sample, "sample", false, "sample actions from the policy")
	cmd.Flags().Uint64Var(&seed, "sample-seed", 1, "seed of --sample")
	cmd.Flags().IntVar(&agentSteps, "agent-max-steps", train.DefaultAgentMaxSteps, "the policy agent's own action budget before it finishes (buys)")
	cmd.Flags().StringVar(&out, "out", "", "write the policy's episodes to this trajectory file (.parquet)")
	cmd.Flags().IntVar(&goalsN, "first", 0, "evaluate only the first N goals of the split (0 = all)")
	cmd.Flags().BoolVar(&noBatch, "no-batch", false, "with --policy: no batching of forwards across workers")
	cmd.Flags().StringVar(&queryModel, "query-model", "", "with --policy: search with a learned query model (a train query run directory) instead of the keyword heuristic")
	cmd.Flags().StringVar(&shard, "shard", "", "evaluate shard i/n of the goals: those whose index in the split is i mod n (for Indexed Jobs; --json then holds sums that add up across shards)")
	return cmd
}

// newEvalBar shows the progress of n episodes on stderr: a progress bar with rate and
// ETA on a terminal, else (logs, CI) a log line every 10% of the episodes.
func newEvalBar(n int, desc string) *episodeProgress { return newCountBar(n, desc, "episodes") }

// newCountBar is newEvalBar for other things than episodes (unit names them).
func newCountBar(n int, desc, unit string) *episodeProgress {
	p := &episodeProgress{n: n, desc: desc, unit: unit, start: time.Now()}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		p.bar = progressbar.NewOptions(n, progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription(desc), progressbar.OptionShowCount(),
			progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit),
			progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(200*time.Millisecond))
	}
	return p
}

// episodeProgress is the progress display of newEvalBar; safe for concurrent Add.
type episodeProgress struct {
	bar   *progressbar.ProgressBar
	mu    sync.Mutex
	n     int
	done  int
	desc  string
	unit  string
	start time.Time
}

// Add records k more finished episodes.
func (p *episodeProgress) Add(k int) error {
	if p.bar != nil {
		return p.bar.Add(k)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	before := p.done * 10 / max(p.n, 1)
	p.done += k
	if after := p.done * 10 / max(p.n, 1); after > before && p.done < p.n {
		el := time.Since(p.start)
		rate := float64(p.done) / el.Seconds()
		eta := time.Duration(float64(p.n-p.done) / rate * float64(time.Second))
		fmt.Fprintf(os.Stderr, "%s: %d/%d %s, %.1f %s/s, eta %s\n", p.desc, p.done, p.n, p.unit, rate, p.unit, eta.Round(time.Second))
	}
	return nil
}

// Set moves the count to done episodes.
func (p *episodeProgress) Set(done int) error {
	if p.bar != nil {
		return p.bar.Set(done)
	}
	p.mu.Lock()
	d := done - p.done
	p.mu.Unlock()
	if d > 0 {
		return p.Add(d)
	}
	return nil
}

// Finish ends the display.
func (p *episodeProgress) Finish() error {
	if p.bar != nil {
		return p.bar.Finish()
	}
	return nil
}

type policyEvalOpts struct {
	path, backend, out, json string
	workers, maxSteps        int
	agentSteps               int
	sample, noBatch          bool
	seed                     uint64
	shard                    string
	goalIDs                  []int
	queryModel               string
}

// evalPolicy evaluates a trained policy and the rule agent on the same goals.
func evalPolicy(cmd *cobra.Command, shop *env.Shop, goals []env.Goal, split string, o policyEvalOpts) error {
	be, err := models.NewBackend(o.backend)
	if err != nil {
		return err
	}
	pol, err := models.LoadPolicy(be, o.path)
	if err != nil {
		return err
	}
	defer pol.Close()
	var query features.QueryProposer // nil: the keyword heuristic
	if o.queryModel != "" {
		qm, err := models.LoadQueryModel(be, o.queryModel)
		if err != nil {
			return err
		}
		defer qm.Close()
		query = qm
		defer func() {
			if err := qm.Err(); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "query model failed at least once (fell back to the heuristic): %v\n", err)
			}
		}()
	}
	r, err := shop.Splits.Split(split)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("%s-step%d", pol.Meta.Job, pol.Meta.Step)
	mode := "greedy"
	if o.sample {
		mode = "sample"
	}
	bar := newEvalBar(len(goals), "eval policy")
	res, err := train.EvaluatePolicy(shop, goals, pol, train.EvalConfig{
		Workers: o.workers, NoBatching: o.noBatch, MaxSteps: o.maxSteps,
		Agent:  train.AgentConfig{Sample: o.sample, Seed: o.seed, MaxSteps: o.agentSteps},
		Record: o.out != "", PolicyName: name, GoalOffset: r[0], GoalIDs: o.goalIDs, Query: query,
		Progress: func(int) { _ = bar.Add(1) },
	})
	_ = bar.Finish()
	if err != nil {
		return err
	}
	t := time.Now()
	rule := env.Summarize(shop.Evaluate(goals, env.Config{Mode: env.ObsText, MaxSteps: o.maxSteps}, 0,
		func(int) env.Agent { return env.RuleAgent{} }, false, nil))
	ruleTime := time.Since(t)
	w := cmd.OutOrStdout()
	s := res.Summary
	fmt.Fprintf(w, "policy %s (%s, %s, preset %s) on %s (%d goals): score %.2f, success rate %.2f%%, mean steps %.2f (%s, %.1f episodes/s)\n",
		o.path, name, mode, pol.Config.Preset, split, s.Episodes, s.Score, s.SuccessRate, s.MeanSteps,
		res.Elapsed.Round(time.Millisecond), float64(s.Episodes)/res.Elapsed.Seconds())
	fmt.Fprintf(w, "agent rule on the same goals: score %.2f, success rate %.2f%%, mean steps %.2f (%s)\n",
		rule.Score, rule.SuccessRate, rule.MeanSteps, ruleTime.Round(time.Millisecond))
	if res.Forced > 0 || res.Errors > 0 {
		fmt.Fprintf(w, "the policy agent's safety caps chose %s; %s had scoring errors\n", plural(res.Forced, "action"), plural(res.Errors, "episode"))
	}
	if res.FirstError != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "first scoring error: %v\n", res.FirstError)
	}
	if o.out != "" {
		if err := datasets.WriteFile(o.out, res.Rows); err != nil {
			return err
		}
		fmt.Fprintf(w, "wrote %d steps of %d episodes to %s\n", len(res.Rows), len(res.Episodes), o.out)
	}
	if o.json != "" {
		b, _ := json.MarshalIndent(map[string]any{
			"agent": "policy", "policy": o.path, "checkpoint_step": pol.Meta.Step, "mode": mode, "split": split,
			"shard": o.shard, "summary": s, "sums": sumsOf(res.Episodes), "rule": rule, "elapsed_s": res.Elapsed.Seconds(), "forced_actions": res.Forced,
		}, "", "  ")
		if err := os.WriteFile(o.json, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// parseShard parses "i/n" (0 <= i < n).
func parseShard(s string) (k, n int, err error) {
	if _, err := fmt.Sscanf(s, "%d/%d", &k, &n); err != nil || n <= 0 || k < 0 || k >= n ||
		fmt.Sprintf("%d/%d", k, n) != s {
		return 0, 0, fmt.Errorf("--shard %q: want i/n with 0 <= i < n, e.g. 0/8", s)
	}
	return k, n, nil
}

// shardGoals keeps the goals whose index in the split (position in goals) is k mod n.
func shardGoals(goals []env.Goal, ids []int, k, n int) ([]env.Goal, []int) {
	var g []env.Goal
	var id []int
	for i := k; i < len(goals); i += n {
		g = append(g, goals[i])
		id = append(id, ids[i])
	}
	return g, id
}

// evalSums are the additive totals of an evaluation: summing them over the shards of a
// split and dividing gives the whole split's score and success rate exactly.
type evalSums struct {
	Episodes  int     `json:"episodes"`
	RewardSum float64 `json:"reward_sum"`
	Successes int     `json:"successes"`
	StepsSum  int     `json:"steps_sum"`
}

func sumsOf(eps []env.Episode) evalSums {
	s := evalSums{Episodes: len(eps)}
	for _, e := range eps {
		s.RewardSum += e.Reward
		s.StepsSum += e.Steps
		if e.Success() {
			s.Successes++
		}
	}
	return s
}

// plural returns "1 action", "2 actions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
