package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"shopagent/env"
	"shopagent/models"
	"shopagent/train"
)

// Reinforcement-learning fine-tuning of an imitation policy (pg, ppo), preference
// optimisation (dpo) and generated demonstrations (generate). See docs/RL.md.
//
// These commands name their flags for the RL experiments: --seed is the run's seed (the
// shop's price seed is --shop-seed) and --goals the goal split rollouts draw from (the
// shop's goal source is --goal-source).

// registerRLShopFlags registers the shop flags of shopFlags under the RL commands' names.
func registerRLShopFlags(cmd *cobra.Command, f *shopFlags) { f.registerAs(cmd, "shop-seed") }

// rlFlags are the flags shared by pg, ppo and dpo.
type rlFlags struct {
	tf     trainFlags
	sf     shopFlags
	init   string
	budget time.Duration
}

func (f *rlFlags) register(cmd *cobra.Command, steps int64, batch int, lr, clip float64) {
	f.tf.register(cmd, steps, batch, lr)
	f.tf.registerExport(cmd)
	registerRLShopFlags(cmd, &f.sf)
	fl := cmd.Flags()
	fl.Int64Var(&f.tf.seed, "seed", 1, "seed of the run: rollout goals and sampling, data order (same as --train-seed)")
	fl.StringVar(&f.init, "init", "", "the imitation policy to start from (and the frozen reference): a run directory or checkpoint (required)")
	fl.DurationVar(&f.budget, "time-budget", 0, "stop cleanly, with a final checkpoint, after this much training (e.g. 2m; 0: --steps only)")
	setFlagDefault(cmd, "warmup", "0")
	setFlagDefault(cmd, "decay", train.DecayConstant)
	setFlagDefault(cmd, "clip", fmt.Sprint(clip))
}

// setFlagDefault changes a registered flag's default value.
func setFlagDefault(cmd *cobra.Command, name, value string) {
	if f := cmd.Flags().Lookup(name); f != nil {
		_ = f.Value.Set(value)
		f.DefValue = value
	}
}

// options maps the shared flags onto train.RunOptions, the time budget included.
func (f *rlFlags) options(cmd *cobra.Command) (train.RunOptions, error) {
	if f.init == "" {
		return train.RunOptions{}, fmt.Errorf("--init is required (the imitation policy's run directory or checkpoint)")
	}
	if err := f.tf.validate(); err != nil {
		return train.RunOptions{}, err
	}
	if f.budget < 0 {
		return train.RunOptions{}, fmt.Errorf("--time-budget must not be negative")
	}
	o := f.tf.options(cmd)
	o.TimeBudget = f.budget
	return o, nil
}

// rolloutFlags are the rollout flags of pg and ppo.
type rolloutFlags struct {
	goals        string
	allowTest    bool
	episodes     int
	workers      int
	searchChoice bool
	agentSteps   int
}

func (f *rolloutFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.goals, "goals", "train", "goal split the rollouts draw their goals from: train, dev, test or all")
	fl.BoolVar(&f.allowTest, "allow-test", false, "allow --goals test or all (training on the goals the agent is evaluated on)")
	fl.IntVar(&f.episodes, "episodes-per-step", 8, "rollout episodes per update (pg) or per rollout of --ppo-epochs x --minibatches updates (ppo)")
	fl.IntVar(&f.workers, "workers", 0, "episodes played at the same time (0: all of a rollout; their forwards are batched)")
	fl.BoolVar(&f.searchChoice, "search-choice", false, "the choice model also picks the search query among the proposer's candidates and the instruction (eval's agent searches with the proposer's, so off by default)")
	fl.IntVar(&f.agentSteps, "agent-max-steps", train.DefaultAgentMaxSteps, "the agent's own action budget per episode before it finishes (buys)")
}

// config is the rollouts' agent (its observation mode follows the policy's).
func (f *rolloutFlags) config() train.RolloutConfig {
	return train.RolloutConfig{Workers: f.workers, SearchChoice: f.searchChoice, AgentMaxSteps: f.agentSteps}
}

func (f *rolloutFlags) open(sf *shopFlags) (*env.Shop, []env.Goal, error) {
	if f.episodes <= 0 {
		return nil, nil, fmt.Errorf("--episodes-per-step must be positive")
	}
	if err := checkTrainSplit("--goals", f.goals, f.allowTest); err != nil {
		return nil, nil, err
	}
	shop, err := sf.open()
	if err != nil {
		return nil, nil, err
	}
	goals, err := shop.SplitGoals(f.goals)
	if err != nil {
		return nil, nil, fmt.Errorf("--goals: %w", err)
	}
	if len(goals) == 0 {
		return nil, nil, fmt.Errorf("--goals %s: no goals", f.goals)
	}
	return shop, goals, nil
}

// checkTrainSplit refuses to train on the test split (or "all", which holds
// it) unless allowed: the agent is evaluated on those goals.
func checkTrainSplit(flag, split string, allow bool) error {
	if (split == "test" || split == "all") && !allow {
		return fmt.Errorf("%s %s: training on the test split's goals leaks the evaluation goals into training; use train or dev, or pass --allow-test to do it anyway", flag, split)
	}
	return nil
}

// runRL runs a fine-tuning job under a signal context and prints its outcome (the
// trainer itself says when the time budget stopped it).
func runRL(cmd *cobra.Command, run func(ctx context.Context) (*train.RunResult, error)) error {
	ctx, cancel := signalContext(cmd.Context())
	defer cancel()
	res, err := run(ctx)
	if err != nil {
		return err
	}
	printRun(cmd, res)
	return nil
}

func newTrainPGCmd() *cobra.Command {
	var rf rlFlags
	var ro rolloutFlags
	hp := train.DefaultPGConfig()
	var demos string
	cmd := &cobra.Command{
		Use:   "pg --init IL_RUN --out RUN_DIR",
		Short: "Policy-gradient fine-tuning (an actor-critic with Monte Carlo returns, after WebShop's) of an imitation policy",
		Long: `Fine-tunes a choice policy in the simulator with an actor-critic after WebShop's
(Monte Carlo returns where WebShop's uses 8-step bootstrapped ones; see docs/RL.md):
each step rolls out --episodes-per-step whole episodes on random goals of --goals
(sampling from the current policy), then makes one update on their choices with
loss = -A log pi(a|s) + --value-coef (V - R)^2 - --entropy-coef H, returns with
--gamma bootstrapped from the value when the step cap cuts an episode, advantage
A = R - V, gradient clipping at --clip (10). --il-coef with --demos adds the
imitation loss on demonstrations. The run directory is a policy like IL's
(shopagent eval --policy RUN_DIR). See docs/RL.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := rf.options(cmd)
			if err != nil {
				return err
			}
			shop, goals, err := ro.open(&rf.sf)
			if err != nil {
				return err
			}
			hp.EpisodesPerStep = ro.episodes
			r := train.PGRun{RunOptions: o, Init: rf.init, PG: hp, Rollout: ro.config(), Demos: demos}
			r.Info["goals"] = ro.goals
			return runRL(cmd, func(ctx context.Context) (*train.RunResult, error) { return train.RunPG(ctx, shop, goals, r) })
		},
	}
	rf.register(cmd, 200, 32, 1e-4, 10)
	ro.register(cmd)
	fl := cmd.Flags()
	fl.Float64Var(&hp.Gamma, "gamma", hp.Gamma, "discount of the returns (WebShop's 0.9)")
	fl.Float64Var(&hp.ValueCoef, "value-coef", hp.ValueCoef, "weight of the value loss (WebShop's w_td)")
	fl.Float64Var(&hp.EntropyCoef, "entropy-coef", hp.EntropyCoef, "weight of the entropy bonus (WebShop's w_en)")
	fl.Float64Var(&hp.ILCoef, "il-coef", 0, "weight of the imitation loss on --demos (WebShop's w_il; 0: off)")
	fl.IntVar(&hp.MaxStates, "max-states", hp.MaxStates, "at most this many states per update (a random subset of the rollouts' choices)")
	fl.StringVar(&demos, "demos", "", "demonstrations for --il-coef (a trajectory file or directory)")
	return cmd
}

func newTrainPPOCmd() *cobra.Command {
	var rf rlFlags
	var ro rolloutFlags
	hp := train.DefaultPPOConfig()
	cmd := &cobra.Command{
		Use:   "ppo --init IL_RUN --out RUN_DIR",
		Short: "PPO fine-tuning of an imitation policy, with a KL penalty to it",
		Long: `Fine-tunes a choice policy in the simulator with PPO: each iteration rolls out
--episodes-per-step episodes on random goals of --goals with the current policy
(sampling), computes advantages (GAE with --gamma and --gae-lambda; lambda 1 is
A = R - V), then makes --ppo-epochs passes of --minibatches updates each with the
clipped surrogate (--clip-eps), the value loss (--value-coef), the entropy bonus
(--entropy-coef) and the KL divergence to the frozen initial policy (--kl-coef,
reference log-probabilities computed at rollout time), a loss term unless
--kl-in-reward puts it into the rewards per step, as InstructGPT does. --steps counts updates.
The run directory is a policy like IL's (shopagent eval --policy RUN_DIR).
See docs/RL.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := rf.options(cmd)
			if err != nil {
				return err
			}
			shop, goals, err := ro.open(&rf.sf)
			if err != nil {
				return err
			}
			hp.EpisodesPerRollout = ro.episodes
			r := train.PPORun{RunOptions: o, Init: rf.init, PPO: hp, Rollout: ro.config()}
			r.Info["goals"] = ro.goals
			return runRL(cmd, func(ctx context.Context) (*train.RunResult, error) { return train.RunPPO(ctx, shop, goals, r) })
		},
	}
	rf.register(cmd, 400, 32, 1e-4, 1)
	ro.register(cmd)
	fl := cmd.Flags()
	fl.Float64Var(&hp.Epsilon, "clip-eps", hp.Epsilon, "PPO's clipping range epsilon of the probability ratio")
	fl.Float64Var(&hp.Gamma, "gamma", hp.Gamma, "discount")
	fl.Float64Var(&hp.Lambda, "gae-lambda", hp.Lambda, "GAE's lambda (1: advantage = R - V)")
	fl.Float64Var(&hp.ValueCoef, "value-coef", hp.ValueCoef, "weight of the value loss (c1)")
	fl.Float64Var(&hp.EntropyCoef, "entropy-coef", hp.EntropyCoef, "weight of the entropy bonus (c2)")
	fl.Float64Var(&hp.KLCoef, "kl-coef", hp.KLCoef, "weight of the KL divergence to the frozen initial policy (beta; 0: off)")
	fl.BoolVar(&hp.KLInReward, "kl-in-reward", false, "apply beta as InstructGPT does, a per-step penalty beta (log pi_old - log pi_ref) of the action taken on the rewards, instead of the loss term")
	fl.IntVar(&hp.Epochs, "ppo-epochs", hp.Epochs, "passes over each rollout (K)")
	fl.IntVar(&hp.Minibatches, "minibatches", hp.Minibatches, "minibatches per pass")
	fl.BoolVar(&hp.NormAdv, "norm-adv", hp.NormAdv, "normalise the advantages over each rollout")
	return cmd
}

func newTrainDPOCmd() *cobra.Command {
	var rf rlFlags
	hp := train.DefaultDPOConfig()
	var demos string
	var minReward float64
	var epochs, maxEpisodes int
	cmd := &cobra.Command{
		Use:   "dpo --init IL_RUN --demos FILE_OR_DIR --out RUN_DIR",
		Short: "DPO on per-step preference pairs: demonstrated action vs the reference's",
		Long: `Direct preference optimisation of a choice policy on the click steps of
trajectories (--demos: expert or human demonstrations, or generated ones from
'shopagent train generate'): at each step the demonstrated action is preferred to
the frozen initial policy's greedy action where they differ (--rejected
reference) or to every other action (--rejected all); loss
-log sigmoid(beta ((log pi(c) - log ref(c)) - (log pi(r) - log ref(r)))).
The reference's log-probabilities are computed once, before training. The run
directory is a policy like IL's (shopagent eval --policy RUN_DIR). See docs/RL.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if demos == "" {
				return fmt.Errorf("--demos is required")
			}
			o, err := rf.options(cmd)
			if err != nil {
				return err
			}
			o.Epochs = epochs
			r := train.DPORun{RunOptions: o, Init: rf.init, Demos: demos, MinReward: minReward, MaxEpisodes: maxEpisodes, DPO: hp}
			return runRL(cmd, func(ctx context.Context) (*train.RunResult, error) { return train.RunDPO(ctx, r) })
		},
	}
	rf.register(cmd, 300, 32, 5e-5, 1)
	fl := cmd.Flags()
	fl.StringVar(&demos, "demos", "", "trajectories whose actions are preferred: a file or directory (expert, human or generated)")
	fl.Float64Var(&hp.Beta, "beta", hp.Beta, "DPO's beta (temperature of the implicit reward)")
	fl.StringVar(&hp.Rejected, "rejected", hp.Rejected, "rejected actions: reference (the initial policy's greedy action where it differs) or all")
	fl.Float64Var(&minReward, "min-reward", 0, "use only episodes with at least this final reward")
	fl.IntVar(&epochs, "epochs", 0, "passes over the preference states (overrides --steps when > 0)")
	fl.IntVar(&maxEpisodes, "max-episodes", 0, "use this many demonstration episodes, drawn at random with --seed (0: all; the reference pass scores every click step used)")
	return cmd
}

func newTrainGenerateCmd() *cobra.Command {
	var sf shopFlags
	var policy, out, split, backend string
	var keep, maxEpisodes, chunk, agentSteps int
	var seed uint64
	var prune, greedy, searchChoice, allowTest bool
	cmd := &cobra.Command{
		Use:   "generate --policy RUN_DIR --out FILE.parquet",
		Short: "Roll out a policy and keep its successful episodes as generated demonstrations",
		Long: `Plays episodes with the policy on the goals of --split (a seeded order, sampling
from the policy) and writes those that earned reward 1.0 as a trajectory file of
source "generated" (for 'train dpo --demos' or 'train il --demos'). It stops after
--keep kept episodes or --max-episodes played. --prune-loops removes loops from
the kept episodes (search -> back -> search again, item -> back -> the same
results page, sub-page -> back), as WebShop's paper suggests.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if policy == "" || out == "" {
				return fmt.Errorf("--policy and --out are required")
			}
			if keep < 0 || maxEpisodes < 0 {
				return fmt.Errorf("--keep and --max-episodes must not be negative")
			}
			if err := checkTrainSplit("--split", split, allowTest); err != nil {
				return err
			}
			shop, err := sf.open()
			if err != nil {
				return err
			}
			goals, err := shop.SplitGoals(split)
			if err != nil {
				return err
			}
			r, _ := shop.Splits.Split(split)
			total := len(goals)
			if maxEpisodes > 0 {
				total = max(1, min(maxEpisodes, len(goals)))
			}
			bar := newEvalBar(total, "generate")
			g := train.DefaultGenerateRun()
			g.Policy, g.Backend, g.Out = policy, backend, out
			g.Generate = train.GenerateConfig{
				Keep: keep, MaxEpisodes: maxEpisodes, Seed: seed, PruneLoops: prune, Chunk: chunk,
				Rollout:  train.RolloutConfig{Greedy: greedy, SearchChoice: searchChoice, AgentMaxSteps: agentSteps},
				Progress: func(played, kept int) { _ = bar.Set(played) },
			}
			ctx, cancel := signalContext(cmd.Context())
			defer cancel()
			t := time.Now()
			st, err := train.RunGenerate(ctx, shop, goals, r[0], g)
			_ = bar.Finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "generate: %d episodes played (score %.2f, success rate %.2f%%), %d kept, %d steps written to %s (%d loop steps pruned) in %s\n",
				st.Played, st.Summary.Score, st.Summary.SuccessRate, st.Kept, st.Steps, filepath.Clean(out), st.Pruned, time.Since(t).Round(time.Millisecond))
			return nil
		},
	}
	registerRLShopFlags(cmd, &sf)
	fl := cmd.Flags()
	fl.StringVar(&policy, "policy", "", "the policy: a run directory (latest checkpoint) or a checkpoint directory")
	fl.StringVar(&out, "out", "", "trajectory file to write (.parquet)")
	fl.StringVar(&split, "split", "train", "goal split: train, dev, test or all")
	fl.IntVar(&keep, "keep", 0, "stop after this many kept episodes (0: no limit)")
	fl.IntVar(&maxEpisodes, "max-episodes", 0, "stop after this many episodes (0: one pass over the split's goals)")
	fl.Uint64Var(&seed, "seed", 1, "seed of the goal order and the sampling")
	fl.BoolVar(&prune, "prune-loops", false, "remove loops from the kept episodes")
	fl.BoolVar(&greedy, "greedy", false, "take the policy's most likely action instead of sampling")
	fl.BoolVar(&searchChoice, "search-choice", false, "the choice model picks the search query (default: the proposer's, as eval)")
	fl.IntVar(&chunk, "workers", 16, "episodes played at the same time")
	fl.IntVar(&agentSteps, "agent-max-steps", train.DefaultAgentMaxSteps, "the agent's own action budget per episode")
	fl.StringVar(&backend, "backend", models.DefaultBackend, "GoMLX backend")
	return cmd
}
