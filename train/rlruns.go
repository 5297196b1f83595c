package train

import (
	stdctx "context"
	"fmt"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"shopagent/datasets"
	"shopagent/env"
	"shopagent/features"
	"shopagent/models"
)

// The typed entry points of the jobs that start from a trained policy: PG, PPO and DPO
// fine-tune it (their run directories are policies like IL's), and generation rolls it
// out and keeps its successful episodes.

// rlStart is what a fine-tuning run takes from its initial policy.
type rlStart struct {
	ck   *models.Checkpoint
	pcfg features.PolicyConfig
	be   backends.Backend
	cfg  Config
}

// startFrom loads the initial policy and prepares the trainer's Config of a run that
// fine-tunes it.
func startFrom(o RunOptions, initPath string, steps int64) (*rlStart, error) {
	if initPath == "" {
		return nil, fmt.Errorf("train: the initial policy (an IL run or checkpoint) is required")
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	ck, err := models.LoadCheckpoint(initPath, false)
	if err != nil {
		return nil, fmt.Errorf("train: initial policy: %w", err)
	}
	pcfg := ck.Meta.Policy
	if o.Dropout >= 0 {
		pcfg.Bert.Dropout = o.Dropout
	}
	cfg, err := o.config(pcfg, ck.Tokenizer, steps)
	if err != nil {
		return nil, err
	}
	cfg.Info["init"], cfg.Info["init_job"], cfg.Info["init_step"] = ck.Dir, ck.Meta.Job, ck.Meta.Step
	cfg.Init = func(c *context.Context) error {
		n, err := ck.LoadInto(c, models.PolicyScope+"/")
		if err != nil {
			return err
		}
		o.logf("policy initialised from %s (job %s, step %d, %d variables)", ck.Dir, ck.Meta.Job, ck.Meta.Step, n)
		return nil
	}
	return &rlStart{ck: ck, pcfg: pcfg, be: cfg.Backend, cfg: cfg}, nil
}

// reference loads the frozen reference policy (the initial checkpoint) again from disk:
// the training context starts from the same tensors, which the updates overwrite.
func (s *rlStart) reference() (*models.Policy, error) {
	p, err := models.LoadPolicy(s.be, s.ck.Dir)
	if err != nil {
		return nil, fmt.Errorf("train: reference policy: %w", err)
	}
	return p, nil
}

// obsMode is the observation mode the initial policy was trained on.
func (s *rlStart) obsMode() (env.ObsMode, error) {
	if s.pcfg.ObsMode == "" {
		return env.ObsTextRich, nil
	}
	return env.ParseObsMode(s.pcfg.ObsMode)
}

// rlOptions are the RunOptions defaults of fine-tuning: no warm-up, constant learning
// rate.
func rlOptions(steps int64, lr, clip float64) RunOptions {
	o := DefaultRunOptions()
	o.Steps, o.LR, o.Clip, o.Warmup, o.Decay = steps, lr, clip, 0, DecayConstant
	return o
}

// PGRun configures RunPG.
type PGRun struct {
	RunOptions
	// Init is the policy to start from (an IL run or checkpoint).
	Init string
	// PG holds the algorithm's hyperparameters; Rollout the agent of the rollouts.
	PG      PGConfig
	Rollout RolloutConfig
	// Demos are the demonstrations of the imitation term (PG.ILCoef > 0).
	Demos string
}

// DefaultPGRun returns PG's defaults: 200 updates, learning rate 1e-4, gradient
// clipping at 10 (WebShop's), DefaultPGConfig.
func DefaultPGRun() PGRun { return PGRun{RunOptions: rlOptions(200, 1e-4, 10), PG: DefaultPGConfig()} }

// RunPG fine-tunes a policy with PG on rollouts over goals.
func RunPG(ctx stdctx.Context, shop *env.Shop, goals []env.Goal, r PGRun) (*RunResult, error) {
	start := time.Now()
	s, err := startFrom(r.RunOptions, r.Init, r.Steps)
	if err != nil {
		return nil, err
	}
	if r.Rollout.ObsMode == "" {
		if r.Rollout.ObsMode, err = s.obsMode(); err != nil {
			return nil, err
		}
	}
	var il *ILJob
	if r.PG.ILCoef > 0 {
		if r.Demos == "" {
			return nil, fmt.Errorf("train: pg: the imitation term needs demonstrations")
		}
		data, err := LoadILData(r.Demos, 0)
		if err != nil {
			return nil, err
		}
		enc := make([]features.EncodedChoice, len(data.Examples))
		for i, ex := range data.Examples {
			enc[i] = features.EncodeChoice(s.ck.Tokenizer, s.pcfg, ex)
		}
		if il, err = NewILJob(s.pcfg, enc, r.Batch, 0, uint64(r.Seed)); err != nil {
			return nil, err
		}
	}
	job, err := NewPGJob(s.pcfg, s.ck.Tokenizer, shop, goals, r.PG, r.Rollout, il, uint64(r.Seed))
	if err != nil {
		return nil, err
	}
	info := map[string]any{"hyperparameters": r.PG, "goals": len(goals), "demos": r.Demos}
	s.cfg.Info["hyperparameters"] = r.PG
	r.logf("pg: preset %s, %d goals, %d episodes per step, up to %d steps", s.pcfg.Preset, len(goals), r.PG.EpisodesPerStep, r.Steps)
	res, err := Run(ctx, s.cfg, job)
	if err != nil {
		return nil, err
	}
	return finish("pg", r.Out, start, res, info)
}

// PPORun configures RunPPO.
type PPORun struct {
	RunOptions
	// Init is the policy to start from, and the frozen reference of the KL term.
	Init string
	// PPO holds the algorithm's hyperparameters; Rollout the agent of the rollouts.
	PPO     PPOConfig
	Rollout RolloutConfig
}

// DefaultPPORun returns PPO's defaults: 400 updates, learning rate 1e-4, clipping at 1,
// DefaultPPOConfig.
func DefaultPPORun() PPORun {
	return PPORun{RunOptions: rlOptions(400, 1e-4, 1), PPO: DefaultPPOConfig()}
}

// RunPPO fine-tunes a policy with PPO on rollouts over goals.
func RunPPO(ctx stdctx.Context, shop *env.Shop, goals []env.Goal, r PPORun) (*RunResult, error) {
	start := time.Now()
	s, err := startFrom(r.RunOptions, r.Init, r.Steps)
	if err != nil {
		return nil, err
	}
	if r.Rollout.ObsMode == "" {
		if r.Rollout.ObsMode, err = s.obsMode(); err != nil {
			return nil, err
		}
	}
	var ref Scorer
	if r.PPO.KLCoef > 0 {
		p, err := s.reference()
		if err != nil {
			return nil, err
		}
		defer p.Close()
		ref = p
	}
	job, err := NewPPOJob(s.pcfg, s.ck.Tokenizer, shop, goals, r.PPO, r.Rollout, ref, uint64(r.Seed))
	if err != nil {
		return nil, err
	}
	info := map[string]any{"hyperparameters": r.PPO, "goals": len(goals)}
	s.cfg.Info["hyperparameters"] = r.PPO
	r.logf("ppo: preset %s, %d goals, %d episodes per rollout, %d updates per rollout, up to %d steps",
		s.pcfg.Preset, len(goals), r.PPO.EpisodesPerRollout, job.UpdatesPerRollout(), r.Steps)
	res, err := Run(ctx, s.cfg, job)
	if err != nil {
		return nil, err
	}
	return finish("ppo", r.Out, start, res, info)
}

// DPORun configures RunDPO.
type DPORun struct {
	RunOptions
	// Init is the policy to start from, and the frozen reference.
	Init string
	// Demos are the trajectories whose actions are preferred (expert, human or
	// generated); MinReward keeps only episodes with at least that final reward.
	Demos     string
	MinReward float64
	// MaxEpisodes, when positive, uses that many of the demonstration episodes, drawn
	// at random with the run's seed: the reference pass scores every click step used,
	// which on a CPU can take minutes for thousands of steps.
	MaxEpisodes int
	// DPO holds the algorithm's hyperparameters (DPO.Batch follows Batch).
	DPO DPOConfig
}

// DefaultDPORun returns DPO's defaults: 300 updates, learning rate 5e-5, clipping at 1,
// DefaultDPOConfig.
func DefaultDPORun() DPORun {
	return DPORun{RunOptions: rlOptions(300, 5e-5, 1), DPO: DefaultDPOConfig()}
}

// RunDPO optimises a policy on per-step preference pairs from the demonstrations. The
// reference's log-probabilities are computed first, inside the run's deadline.
func RunDPO(ctx stdctx.Context, r DPORun) (*RunResult, error) {
	start := time.Now()
	if r.Demos == "" {
		return nil, fmt.Errorf("train: dpo: demonstrations are required")
	}
	s, err := startFrom(r.RunOptions, r.Init, max(r.Steps, 1))
	if err != nil {
		return nil, err
	}
	r.DPO.Batch = r.Batch
	data, err := LoadILData(r.Demos, r.MinReward)
	if err != nil {
		return nil, err
	}
	if r.MaxEpisodes > 0 && r.MaxEpisodes < data.Episodes {
		r.logf("dpo: %d of the %d demonstration episodes, drawn with seed %d", r.MaxEpisodes, data.Episodes, r.Seed)
		data = data.SubsetEpisodes(r.MaxEpisodes, uint64(r.Seed))
	}
	ref, err := s.reference()
	if err != nil {
		return nil, err
	}
	defer ref.Close()
	t := time.Now()
	pairs, err := BuildDPOData(data.Examples, ref, s.ck.Tokenizer, s.pcfg, r.DPO.Rejected)
	if err != nil {
		return nil, err
	}
	r.logf("dpo: %d click steps of %d episodes (%d forced steps left out); the reference already picks the demonstrated action in %d of them, "+
		"so %d states give %d preference pairs (rejected: %s); reference pass %s",
		pairs.Examples, data.Episodes, data.Forced, pairs.Agree, len(pairs.States), pairs.Pairs, r.DPO.Rejected, time.Since(t).Round(time.Millisecond))
	if pairs.TooMany > 0 {
		r.logf("dpo: %d steps with more actions than the largest batch bucket were left out", pairs.TooMany)
	}
	job, err := NewDPOJob(s.pcfg, pairs, r.DPO, uint64(r.Seed))
	if err != nil {
		return nil, err
	}
	if r.Epochs > 0 {
		s.cfg.Steps = int64(r.Epochs * job.BatchesPerEpoch())
		s.cfg.Schedule.Total = 0
	}
	info := map[string]any{"demos": r.Demos, "hyperparameters": r.DPO, "pairs": pairs.Pairs, "states": len(pairs.States),
		"reference_agrees": pairs.Agree, "forced_skipped": data.Forced}
	s.cfg.Info["hyperparameters"], s.cfg.Info["demos"], s.cfg.Info["pairs"] = r.DPO, r.Demos, pairs.Pairs
	res, err := Run(ctx, s.cfg, job)
	if err != nil {
		return nil, err
	}
	return finish("dpo", r.Out, start, res, info)
}

// GenerateRun configures RunGenerate.
type GenerateRun struct {
	// Policy is the policy to roll out (a run directory or checkpoint); Backend runs it.
	Policy  string
	Backend string
	// Out is the trajectory file written (generated episodes, source "generated").
	Out string
	// Generate configures the generation (Keep, MaxEpisodes, Seed, PruneLoops, the
	// agent); its ObsMode defaults to the policy's.
	Generate GenerateConfig
	// Deadline stops generating at this wall-clock time (zero: none).
	Deadline time.Time
}

// DefaultGenerateRun returns generation's defaults: keep 100 successful episodes of a
// sampled rollout, loops pruned.
func DefaultGenerateRun() GenerateRun {
	return GenerateRun{Backend: models.DefaultBackend, Generate: GenerateConfig{Keep: 100, Seed: 1, PruneLoops: true}}
}

// RunGenerate rolls out the policy on goals (goals[0] is the shop's goal goalOffset) and
// writes the episodes that earned reward 1.0 to r.Out.
func RunGenerate(ctx stdctx.Context, shop *env.Shop, goals []env.Goal, goalOffset int, r GenerateRun) (GenerateStats, error) {
	var st GenerateStats
	if r.Policy == "" || r.Out == "" {
		return st, fmt.Errorf("train: generate: a policy and an output file are required")
	}
	be, err := models.NewBackend(r.Backend)
	if err != nil {
		return st, err
	}
	pol, err := models.LoadPolicy(be, r.Policy)
	if err != nil {
		return st, err
	}
	defer pol.Close()
	g := r.Generate
	if g.Rollout.ObsMode == "" && pol.Config.ObsMode != "" {
		if g.Rollout.ObsMode, err = env.ParseObsMode(pol.Config.ObsMode); err != nil {
			return st, err
		}
	}
	if g.PolicyName == "" {
		g.PolicyName = fmt.Sprintf("%s-step%d", pol.Meta.Job, pol.Meta.Step)
	}
	g.GoalOffset = goalOffset
	g.Stop = func() bool { return ctx.Err() != nil || (!r.Deadline.IsZero() && !time.Now().Before(r.Deadline)) }
	w, err := datasets.Create(r.Out, datasets.WriterOptions{})
	if err != nil {
		return st, err
	}
	st, err = Generate(shop, goals, pol, g, func(rows []datasets.Step) error { return w.Write(rows...) })
	if err != nil {
		_ = w.Abort()
		return st, err
	}
	return st, w.Close()
}
