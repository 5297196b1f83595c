package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/gomlx/gomlx/backends"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/spf13/cobra"

	"shopagent/datasets"
	"shopagent/env"
	"shopagent/features"
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

// rlSetup is what pg, ppo and dpo share: the initial policy, its configuration, the backend
// and the training configuration that starts from it.
type rlSetup struct {
	ck   *models.Checkpoint
	pcfg features.PolicyConfig
	be   backends.Backend
	cfg  train.Config
	mode env.ObsMode
}

func (f *rlFlags) setup(cmd *cobra.Command) (*rlSetup, error) {
	if f.init == "" {
		return nil, fmt.Errorf("--init is required (the imitation policy's run directory or checkpoint)")
	}
	if err := f.tf.validate(); err != nil {
		return nil, err
	}
	if f.budget < 0 {
		return nil, fmt.Errorf("--time-budget must not be negative")
	}
	train.InstallFastDotGradients()
	ck, err := models.LoadCheckpoint(f.init, false)
	if err != nil {
		return nil, fmt.Errorf("--init: %w", err)
	}
	be, err := models.NewBackend(f.tf.backend)
	if err != nil {
		return nil, err
	}
	pcfg := ck.Meta.Policy
	if f.tf.dropout >= 0 {
		pcfg.Bert.Dropout = f.tf.dropout
	}
	mode := env.ObsTextRich
	if pcfg.ObsMode != "" {
		if mode, err = env.ParseObsMode(pcfg.ObsMode); err != nil {
			return nil, fmt.Errorf("--init: %w", err)
		}
	}
	cfg := f.tf.config(cmd, be, pcfg, ck.Tokenizer)
	cfg.TimeBudget = f.budget
	cfg.Info["init"] = ck.Dir
	cfg.Info["init_job"] = ck.Meta.Job
	cfg.Info["init_step"] = ck.Meta.Step
	cfg.Init = func(c *mlctx.Context) error {
		n, err := ck.LoadInto(c, models.PolicyScope+"/")
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "policy initialised from %s (job %s, step %d, %d variables)\n", ck.Dir, ck.Meta.Job, ck.Meta.Step, n)
		return nil
	}
	return &rlSetup{ck: ck, pcfg: pcfg, be: be, cfg: cfg, mode: mode}, nil
}

// reference loads the frozen reference policy (the initial checkpoint). It is loaded again
// from disk: the training context was initialised with s.ck's tensors, which the updates
// overwrite, so the reference must not share them.
func (s *rlSetup) reference() (*models.Policy, error) {
	p, err := models.LoadPolicy(s.be, s.ck.Dir)
	if err != nil {
		return nil, fmt.Errorf("--init: %w", err)
	}
	return p, nil
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

func (f *rolloutFlags) config(mode env.ObsMode) train.RolloutConfig {
	return train.RolloutConfig{Workers: f.workers, SearchChoice: f.searchChoice, ObsMode: mode, AgentMaxSteps: f.agentSteps}
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

func runRL(cmd *cobra.Command, name string, s *rlSetup, job train.Job) error {
	ctx, cancel := signalContext(cmd.Context())
	defer cancel()
	res, err := train.Run(ctx, s.cfg, job)
	if err != nil {
		return err
	}
	// The trainer itself says when the time budget stopped it.
	return reportRun(cmd, name, res)
}

func newTrainPGCmd() *cobra.Command {
	var rf rlFlags
	var ro rolloutFlags
	hp := train.DefaultPGConfig()
	var demos string
	cmd := &cobra.Command{
		Use:   "pg --init IL_RUN --out RUN_DIR",
		Short: "Policy-gradient fine-tuning (WebShop's actor-critic) of an imitation policy",
		Long: `Fine-tunes a choice policy in the simulator with WebShop's actor-critic: each
step rolls out --episodes-per-step episodes on random goals of --goals (sampling
from the current policy), then makes one update on their choices with
loss = -A log pi(a|s) + --value-coef (V - R)^2 - --entropy-coef H, returns with
--gamma bootstrapped from the value when the step cap cuts an episode, advantage
A = R - V, gradient clipping at --clip (10). --il-coef with --demos adds the
imitation loss on demonstrations. The run directory is a policy like IL's
(shopagent eval --policy RUN_DIR). See docs/RL.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := rf.setup(cmd)
			if err != nil {
				return err
			}
			shop, goals, err := ro.open(&rf.sf)
			if err != nil {
				return err
			}
			hp.EpisodesPerStep = ro.episodes
			var il *train.ILJob
			if hp.ILCoef > 0 {
				if demos == "" {
					return fmt.Errorf("--il-coef needs --demos")
				}
				data, err := train.LoadILData(demos, 0)
				if err != nil {
					return err
				}
				enc := make([]features.EncodedChoice, len(data.Examples))
				for i, ex := range data.Examples {
					enc[i] = features.EncodeChoice(s.ck.Tokenizer, s.pcfg, ex)
				}
				if il, err = train.NewILJob(s.pcfg, enc, rf.tf.batch, 0, uint64(rf.tf.seed)); err != nil {
					return err
				}
				s.cfg.Info["demos"] = demos
			}
			job, err := train.NewPGJob(s.pcfg, s.ck.Tokenizer, shop, goals, hp, ro.config(s.mode), il, uint64(rf.tf.seed))
			if err != nil {
				return err
			}
			s.cfg.Info["hyperparameters"] = hp
			s.cfg.Info["goals"] = ro.goals
			fmt.Fprintf(cmd.ErrOrStderr(), "pg: preset %s, %d %s goals, %d episodes per step, up to %d steps (time budget %s)\n",
				s.pcfg.Preset, len(goals), ro.goals, hp.EpisodesPerStep, rf.tf.steps, rf.budget)
			return runRL(cmd, "pg", s, job)
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
reference log-probabilities computed at rollout time). --steps counts updates.
The run directory is a policy like IL's (shopagent eval --policy RUN_DIR).
See docs/RL.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := rf.setup(cmd)
			if err != nil {
				return err
			}
			shop, goals, err := ro.open(&rf.sf)
			if err != nil {
				return err
			}
			hp.EpisodesPerRollout = ro.episodes
			var ref train.Scorer
			if hp.KLCoef > 0 {
				p, err := s.reference()
				if err != nil {
					return err
				}
				defer p.Close()
				ref = p
			}
			job, err := train.NewPPOJob(s.pcfg, s.ck.Tokenizer, shop, goals, hp, ro.config(s.mode), ref, uint64(rf.tf.seed))
			if err != nil {
				return err
			}
			s.cfg.Info["hyperparameters"] = hp
			s.cfg.Info["goals"] = ro.goals
			fmt.Fprintf(cmd.ErrOrStderr(), "ppo: preset %s, %d %s goals, %d episodes per rollout, %d updates per rollout, up to %d steps (time budget %s)\n",
				s.pcfg.Preset, len(goals), ro.goals, hp.EpisodesPerRollout, job.UpdatesPerRollout(), rf.tf.steps, rf.budget)
			return runRL(cmd, "ppo", s, job)
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
	var epochs int
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
			if epochs > 0 {
				rf.tf.steps = 1 // replaced below
			}
			s, err := rf.setup(cmd)
			if err != nil {
				return err
			}
			hp.Batch = rf.tf.batch
			t := time.Now()
			data, err := train.LoadILData(demos, minReward)
			if err != nil {
				return err
			}
			ref, err := s.reference()
			if err != nil {
				return err
			}
			defer ref.Close()
			pairs, err := train.BuildDPOData(data.Examples, ref, s.ck.Tokenizer, s.pcfg, hp.Rejected)
			if err != nil {
				return err
			}
			if hp.Rejected == train.RejectedReference {
				fmt.Fprintf(cmd.ErrOrStderr(), "dpo: %d click steps from %d episodes; the reference policy (--init) already picks the demonstrated action on %d of them, which give no pair; on the other %d its pick is the rejected action against the demonstrated one: %d preference pairs (%s)\n",
					pairs.Examples, data.Episodes, pairs.Agree, len(pairs.States), pairs.Pairs, time.Since(t).Round(time.Millisecond))
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "dpo: %d click steps from %d episodes; every other action of a step is rejected against the demonstrated one: %d preference pairs over %d steps (%s)\n",
					pairs.Examples, data.Episodes, pairs.Pairs, len(pairs.States), time.Since(t).Round(time.Millisecond))
			}
			if pairs.TooMany > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "dpo: %d steps with more actions than the largest batch bucket were left out\n", pairs.TooMany)
			}
			job, err := train.NewDPOJob(s.pcfg, pairs, hp, uint64(rf.tf.seed))
			if err != nil {
				return err
			}
			if epochs > 0 {
				rf.tf.steps = int64(epochs * job.BatchesPerEpoch())
				s.cfg.Steps = rf.tf.steps
			}
			s.cfg.Info["demos"] = demos
			s.cfg.Info["hyperparameters"] = hp
			s.cfg.Info["pairs"] = pairs.Pairs
			return runRL(cmd, "dpo", s, job)
		},
	}
	rf.register(cmd, 300, 32, 5e-5, 1)
	fl := cmd.Flags()
	fl.StringVar(&demos, "demos", "", "trajectories whose actions are preferred: a file or directory (expert, human or generated)")
	fl.Float64Var(&hp.Beta, "beta", hp.Beta, "DPO's beta (temperature of the implicit reward)")
	fl.StringVar(&hp.Rejected, "rejected", hp.Rejected, "rejected actions: reference (the initial policy's greedy action where it differs) or all")
	fl.Float64Var(&minReward, "min-reward", 0, "use only episodes with at least this final reward")
	fl.IntVar(&epochs, "epochs", 0, "passes over the preference states (overrides --steps when > 0)")
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
			train.InstallFastDotGradients()
			be, err := models.NewBackend(backend)
			if err != nil {
				return err
			}
			pol, err := models.LoadPolicy(be, policy)
			if err != nil {
				return err
			}
			defer pol.Close()
			shop, err := sf.open()
			if err != nil {
				return err
			}
			goals, err := shop.SplitGoals(split)
			if err != nil {
				return err
			}
			r, _ := shop.Splits.Split(split)
			mode := env.ObsTextRich
			if pol.Config.ObsMode != "" {
				if mode, err = env.ParseObsMode(pol.Config.ObsMode); err != nil {
					return err
				}
			}
			w, err := datasets.Create(out, datasets.WriterOptions{})
			if err != nil {
				return err
			}
			name := fmt.Sprintf("%s-step%d", pol.Meta.Job, pol.Meta.Step)
			bar := newEvalBar(max(1, min(maxEpisodes, len(goals))), "generate")
			if maxEpisodes <= 0 {
				bar = newEvalBar(len(goals), "generate")
			}
			t := time.Now()
			st, err := train.Generate(shop, goals, pol, train.GenerateConfig{
				Keep: keep, MaxEpisodes: maxEpisodes, Seed: seed, PruneLoops: prune, Chunk: chunk,
				Rollout:    train.RolloutConfig{Greedy: greedy, SearchChoice: searchChoice, ObsMode: mode, AgentMaxSteps: agentSteps},
				PolicyName: name, GoalOffset: r[0],
				Progress: func(played, kept int) { _ = bar.Set(played) },
			}, func(rows []datasets.Step) error { return w.Write(rows...) })
			_ = bar.Finish()
			if err != nil {
				_ = w.Abort()
				return err
			}
			if err := w.Close(); err != nil {
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
