// Package abtest compares agents online on the shop simulator by Thompson sampling: each
// episode picks an arm from the Beta posteriors of the arms' success probabilities
// (bandit.Thompson), plays one simulator episode on a goal drawn with a seeded RNG with
// that arm's agent, and feeds the reward back. Episodes run concurrently like a live
// system with delayed feedback: an arm is chosen when its episode starts, from the
// posteriors of the episodes finished by then, and the posterior is updated when the
// episode ends.
//
// The engine (Run) produces Episodes; Summarize turns episodes (from this engine or from
// a server-driven A/B test) into a Report: per-arm episodes, traffic share, score,
// success rate, posterior mean and P(best), pooled and as mean ± sd over independent
// runs. WriteOutputs writes report.json, episodes.parquet, report.md and abtest.png.
package abtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"shopagent/bandit"
	"shopagent/env"
	"shopagent/models"
	"shopagent/train"
)

// Episode is one played (or served) episode of an A/B test.
type Episode struct {
	// Run is the index of the independent run (each run starts from fresh posteriors).
	Run int `json:"run"`
	// Index is the episode's position in its run, in the order the episodes started.
	Index int `json:"index"`
	// Arm is the chosen arm's name.
	Arm string `json:"arm"`
	// Goal is the index of the goal in the goal list the test drew from (the split's goals).
	Goal int `json:"goal"`
	// Score is the episode's reward in [0, 1] (WebShop's score is 100 x its mean).
	Score float64 `json:"score"`
	// Success is true when the reward is 1 (bandit.SuccessThreshold).
	Success bool `json:"success"`
	// Steps is the number of environment steps.
	Steps int `json:"steps"`
}

// ArmSpec names an arm and says what plays it: "rule", "random" or the path of a policy
// run directory or checkpoint.
type ArmSpec struct {
	Name, Spec string
}

// ParseArms parses "name=SPEC,name=SPEC,..." (SPEC: rule, random, or a policy run
// directory or checkpoint). Names must be unique and non-empty.
func ParseArms(s string) ([]ArmSpec, error) {
	var out []ArmSpec
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, spec, ok := strings.Cut(part, "=")
		name, spec = strings.TrimSpace(name), strings.TrimSpace(spec)
		if !ok || name == "" || spec == "" {
			return nil, fmt.Errorf("abtest: arm %q: want name=SPEC (SPEC: rule, random or a policy run directory or checkpoint)", part)
		}
		if seen[name] {
			return nil, fmt.Errorf("abtest: arm name %q is used twice", name)
		}
		seen[name] = true
		out = append(out, ArmSpec{Name: name, Spec: spec})
	}
	if len(out) == 0 {
		return nil, errors.New("abtest: no arms (want name=SPEC,name=SPEC,...)")
	}
	return out, nil
}

// Arm is a playable arm: a factory of fresh agents (one per episode) and the observation
// mode its agents read.
type Arm struct {
	Name string
	// Spec is what the arm was loaded from (informational).
	Spec string
	// ObsMode is the observation mode of the arm's episodes.
	ObsMode env.ObsMode
	// NewAgent returns a fresh agent for one episode; seed is derived from the run seed,
	// the run and the episode index.
	NewAgent func(seed uint64) env.Agent
	// Close releases the arm's resources (nil: nothing to release).
	Close func()
}

// LoadArms builds the arms of specs: rule and random agents, or trained policies loaded
// on the GoMLX backend named by backend. Each policy's forward passes are batched across
// up to workers concurrent episodes (train.BatchScorer). Close the arms when done.
func LoadArms(specs []ArmSpec, backend string, workers int, agentCfg train.AgentConfig) ([]Arm, error) {
	arms := make([]Arm, 0, len(specs))
	fail := func(err error) ([]Arm, error) {
		CloseArms(arms)
		return nil, err
	}
	for _, s := range specs {
		switch s.Spec {
		case "rule":
			arms = append(arms, Arm{Name: s.Name, Spec: s.Spec, ObsMode: env.ObsText,
				NewAgent: func(uint64) env.Agent { return env.RuleAgent{} }})
		case "random":
			arms = append(arms, Arm{Name: s.Name, Spec: s.Spec, ObsMode: env.ObsText,
				NewAgent: func(seed uint64) env.Agent { return env.NewRandomAgent(seed, 0.05) }})
		default:
			if _, err := os.Stat(s.Spec); err != nil {
				return fail(fmt.Errorf("abtest: arm %s=%s: not rule, random, nor a policy run directory or checkpoint (%w)", s.Name, s.Spec, err))
			}
			be, err := models.NewBackend(backend)
			if err != nil {
				return fail(fmt.Errorf("abtest: arm %s: %w", s.Name, err))
			}
			pol, err := models.LoadPolicy(be, s.Spec)
			if err != nil {
				return fail(fmt.Errorf("abtest: arm %s: %w", s.Name, err))
			}
			mode := env.ObsTextRich
			if pol.Config.ObsMode != "" {
				m, err := env.ParseObsMode(pol.Config.ObsMode)
				if err != nil {
					pol.Close()
					return fail(fmt.Errorf("abtest: arm %s: policy observation mode: %w", s.Name, err))
				}
				mode = m
			}
			var scorer train.Scorer = pol
			if workers > 1 {
				scorer = train.NewBatchScorer(pol, workers, 0)
			}
			cfg := agentCfg
			arms = append(arms, Arm{Name: s.Name, Spec: s.Spec, ObsMode: mode, Close: pol.Close,
				NewAgent: func(seed uint64) env.Agent {
					c := cfg
					c.Seed = seed
					return train.NewPolicyAgent(scorer, nil, c)
				}})
		}
	}
	return arms, nil
}

// CloseArms closes every arm that has a Close function.
func CloseArms(arms []Arm) {
	for _, a := range arms {
		if a.Close != nil {
			a.Close()
		}
	}
}

// Config configures Run.
type Config struct {
	// Episodes is the number of episodes per run; Runs the number of independent runs.
	Episodes, Runs int
	// Workers is the number of concurrent episodes (0: 2 x GOMAXPROCS).
	Workers int
	// Bandit chooses the arms (zero value: Thompson with a uniform prior, no floor).
	Bandit bandit.Thompson
	// Seed seeds the goal draws, the arm choices and the agents.
	Seed uint64
	// MaxSteps is the environment's step cap (0: 100, WebShop's).
	MaxSteps int
	// Progress, when non-nil, is called after each episode with the number done over
	// all runs and the total.
	Progress func(done, total int)
}

// Result is what Run played.
type Result struct {
	// Episodes in (run, index) order.
	Episodes []Episode
	// Errors counts episodes whose agent reported a scoring error (it then acted by a
	// fallback); FirstError is the first of them.
	Errors     int
	FirstError error
	Elapsed    time.Duration
}

// Run plays cfg.Runs independent runs of cfg.Episodes episodes each on goals (each
// episode's goal drawn uniformly with a seeded RNG), choosing the arm of each episode by
// Thompson sampling. With one worker a run is reproducible from the seed; with several
// the choices depend on which episodes have finished, as in a live system. On
// cancellation it returns the episodes finished so far and the context's error.
func Run(ctx context.Context, shop *env.Shop, goals []env.Goal, arms []Arm, cfg Config) (*Result, error) {
	switch {
	case shop == nil:
		return nil, errors.New("abtest: no shop")
	case len(goals) == 0:
		return nil, errors.New("abtest: no goals")
	case len(arms) == 0:
		return nil, errors.New("abtest: no arms")
	case cfg.Episodes <= 0 || cfg.Runs <= 0:
		return nil, fmt.Errorf("abtest: episodes (%d) and runs (%d) must be positive", cfg.Episodes, cfg.Runs)
	}
	for _, a := range arms {
		if a.NewAgent == nil {
			return nil, fmt.Errorf("abtest: arm %s has no agent", a.Name)
		}
	}
	if cfg.Bandit.Prior == (bandit.Prior{}) {
		cfg.Bandit.Prior = bandit.UniformPrior
	}
	if err := cfg.Bandit.Validate(len(arms)); err != nil {
		return nil, fmt.Errorf("abtest: %w", err)
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	workers = min(workers, cfg.Episodes)
	maxSteps := cfg.MaxSteps
	if maxSteps <= 0 {
		maxSteps = 100
	}
	start := time.Now()
	res := &Result{}
	total := cfg.Episodes * cfg.Runs
	for r := 0; r < cfg.Runs; r++ {
		eps, err := runOne(ctx, shop, goals, arms, cfg, r, workers, maxSteps, res, total)
		res.Episodes = append(res.Episodes, eps...)
		if err != nil {
			res.Elapsed = time.Since(start)
			return res, err
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// job is one episode handed to a worker.
type job struct {
	index, arm, goal int
}

// runState is one run's bandit, shared by its workers under mu.
type runState struct {
	mu        sync.Mutex
	states    []bandit.ArmState
	chooseRng *rand.Rand
	goalRng   *rand.Rand
	next      int
	eps       []Episode
	done      []bool
	finished  int
}

func runOne(ctx context.Context, shop *env.Shop, goals []env.Goal, arms []Arm, cfg Config, run, workers, maxSteps int, res *Result, total int) ([]Episode, error) {
	st := &runState{
		states:    make([]bandit.ArmState, len(arms)),
		chooseRng: rand.New(rand.NewPCG(cfg.Seed, uint64(2*run+1))),
		goalRng:   rand.New(rand.NewPCG(cfg.Seed, uint64(2*run+2))),
		eps:       make([]Episode, cfg.Episodes),
		done:      make([]bool, cfg.Episodes),
	}
	for i, a := range arms {
		st.states[i].Name = a.Name
	}
	// take chooses the next episode's arm and goal from the posteriors of the episodes
	// finished so far.
	take := func() (job, bool) {
		st.mu.Lock()
		defer st.mu.Unlock()
		if st.next >= cfg.Episodes || ctx.Err() != nil {
			return job{}, false
		}
		j := job{index: st.next, arm: cfg.Bandit.Choose(st.states, st.chooseRng), goal: st.goalRng.IntN(len(goals))}
		st.next++
		return j, true
	}
	var resMu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			envs := map[env.ObsMode]*env.Env{}
			for {
				j, ok := take()
				if !ok {
					return
				}
				arm := arms[j.arm]
				e := envs[arm.ObsMode]
				if e == nil {
					e = shop.NewEnv(env.Config{Mode: arm.ObsMode, MaxSteps: maxSteps})
					envs[arm.ObsMode] = e
				}
				agent := arm.NewAgent(cfg.Seed ^ (uint64(run)<<32 + uint64(j.index) + 1))
				ep := env.RunEpisode(e, goals[j.goal], agent, false)
				var agentErr error
				if a, ok := agent.(interface{ Err() error }); ok {
					agentErr = a.Err()
				}
				out := Episode{Run: run, Index: j.index, Arm: arm.Name, Goal: j.goal, Score: ep.Reward,
					Success: ep.Reward >= bandit.SuccessThreshold, Steps: ep.Steps}
				st.mu.Lock()
				st.states[j.arm].Observe(ep.Reward)
				st.eps[j.index] = out
				st.done[j.index] = true
				st.finished++
				finished := st.finished
				st.mu.Unlock()
				resMu.Lock()
				if agentErr != nil {
					res.Errors++
					if res.FirstError == nil {
						res.FirstError = fmt.Errorf("arm %s: %w", arm.Name, agentErr)
					}
				}
				if cfg.Progress != nil {
					cfg.Progress(len(res.Episodes)+finished, total)
				}
				resMu.Unlock()
			}
		}()
	}
	wg.Wait()
	var eps []Episode
	for i, d := range st.done {
		if d {
			eps = append(eps, st.eps[i])
		}
	}
	if err := ctx.Err(); err != nil {
		return eps, fmt.Errorf("abtest: run %d interrupted after %d episodes: %w", run, len(eps), err)
	}
	return eps, nil
}
