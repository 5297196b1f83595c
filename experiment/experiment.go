// Package experiment runs the paper's comparison end to end on one shop, with a fair
// protocol: the rule agent; IL; then, from each seed's IL policy and each with the same
// wall-clock budget measured from the start of its stage (reference passes and
// generation included), IL continued on the demonstrations (the control for "more
// supervised training"), IL+PG, IL+PPO, IL+DPO on the expert demonstrations and IL+DPO
// on the policy's own generated successes; rounds of self-generation beyond the paper
// (generate from the latest policy, DPO on its successes with the previous round as the
// reference); and WebShop's choice model (no exact-match, match-fraction or rank priors)
// for IL and IL+DPO. Hyperparameters are chosen on the dev split by a small documented
// sweep (from seed 1's IL, with a training seed of its own); every final model is evaluated once, greedily, on
// every test goal, and seed 1's models meet in a Thompson-sampling A/B test.
//
// The stages call the typed training functions of package train in process; each leaves
// a record in OUT/stages/ (its configuration, wall clock, budget and result), so a rerun
// resumes where an interrupted one stopped and every number in results.json can be
// traced to a record.
package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"shopagent/abtest"
	"shopagent/bandit"
	"shopagent/datasets"
	"shopagent/env"
	"shopagent/env/shopgen"
	"shopagent/features"
	"shopagent/models"
	"shopagent/train"
)

// Method names accepted by Config.Methods, in table order.
const (
	MethodRule       = "rule"
	MethodIL         = "il"
	MethodILCont     = "il-cont"
	MethodPG         = "pg"
	MethodPPO        = "ppo"
	MethodDPO        = "dpo"
	MethodDPOGen     = "dpo-gen"
	MethodSelfGen    = "self-gen"
	MethodILWebShop  = "il-webshop"
	MethodDPOWebShop = "dpo-webshop"
)

// AllMethods lists every method in table order.
var AllMethods = []string{MethodRule, MethodIL, MethodILCont, MethodPG, MethodPPO, MethodDPO, MethodDPOGen, MethodSelfGen,
	MethodILWebShop, MethodDPOWebShop}

// methodLabels are the table's names of the methods.
var methodLabels = map[string]string{
	MethodRule: "Rule (search the instruction, first result, buy)", MethodIL: "IL", MethodILCont: "IL, continued (control)",
	MethodPG: "IL+PG", MethodPPO: "IL+PPO", MethodDPO: "IL+DPO (expert demos)", MethodDPOGen: "IL+DPO (generated), round 1",
	MethodILWebShop: "IL, WebShop's model", MethodDPOWebShop: "IL+DPO (expert demos), WebShop's model",
}

// budgeted are the methods trained for Config.Budget from an IL policy.
var budgeted = []string{MethodILCont, MethodPG, MethodPPO, MethodDPO}

// ThompsonConfig configures the Thompson-sampling comparison of seed 1's models.
type ThompsonConfig struct {
	// Episodes per run and Runs (0 episodes: skip the comparison).
	Episodes, Runs int
	// MinShare is the traffic floor per arm.
	MinShare float64
	// Workers are the concurrent episodes (0: 2 x GOMAXPROCS).
	Workers int
	// Seed seeds the goal draws, arm choices and agents.
	Seed uint64
}

// Config configures an experiment. DefaultConfig holds every default; the CLI maps its
// flags onto it.
type Config struct {
	// Out is the output directory (required).
	Out string `json:"-"`
	// Data is a shop directory; empty generates the built-in shop with Shop into
	// Out/shop. ShopSeed is the shop's price seed (env.ShopOptions).
	Data     string         `json:"data,omitempty"`
	Shop     shopgen.Config `json:"shop"`
	ShopSeed uint64         `json:"shop_seed"`
	// Methods to compare (default AllMethods; every method but rule needs IL, dpo-gen
	// and self-gen need each other's rounds).
	Methods []string `json:"methods"`
	// Seeds is the number of training seeds (1..Seeds) per method.
	Seeds int `json:"seeds"`
	// Budget is the wall clock of every stage that trains from an IL policy (IL
	// continued, PG, PPO, DPO, each generation round with its DPO), measured from the
	// start of the stage.
	Budget time.Duration `json:"budget"`
	// Rounds is the number of generation rounds (round 1 is dpo-gen; rounds 2.. are
	// self-gen).
	Rounds int `json:"rounds"`
	// GenShare is the share of a generation round's budget its generation may use
	// before DPO starts (it stops earlier once Generate.Keep episodes are kept).
	GenShare float64 `json:"gen_share"`
	// Demos is the number of expert demonstrations (0: one per train goal); Expert
	// and DemoSeed configure them.
	Demos    int                   `json:"demos"`
	Expert   datasets.ExpertConfig `json:"expert"`
	DemoSeed uint64                `json:"demo_seed"`
	// The training stages' configurations (Out, Seed, Init, Backend and deadlines are
	// set per stage).
	Pretrain train.PretrainRun    `json:"pretrain"`
	IL       train.ILRun          `json:"il"`
	ILCont   train.ILRun          `json:"il_cont"`
	PG       train.PGRun          `json:"pg"`
	PPO      train.PPORun         `json:"ppo"`
	DPO      train.DPORun         `json:"dpo"`
	Generate train.GenerateConfig `json:"generate"`
	// Sweep are the dev-split trials of the hyperparameter selection, trained from seed
	// 1's IL policy (empty: the configurations above are used as they are); SweepGoals
	// the number of dev goals they are evaluated on (0: all); SweepSeed the trials'
	// training seed.
	Sweep      []Trial `json:"sweep"`
	SweepGoals int     `json:"sweep_goals"`
	SweepSeed  int64   `json:"sweep_seed"`
	// EvalGoals, when positive, evaluates on the first N test goals only (0: all).
	EvalGoals int `json:"eval_goals,omitempty"`
	// EvalWorkers are the concurrent evaluation episodes (0: 2 x GOMAXPROCS).
	EvalWorkers int `json:"eval_workers,omitempty"`
	// Agent is the evaluated agent's configuration (greedy by default).
	Agent    train.AgentConfig `json:"agent"`
	Thompson ThompsonConfig    `json:"thompson"`
	// Backend is the GoMLX backend of every training and evaluation stage.
	Backend string `json:"backend"`
	// WaitLoad, when positive, makes every budgeted stage wait (up to WaitMax) until the
	// machine's one-minute load average is at most WaitLoad, so that wall-clock budgets
	// buy about the same compute on a shared machine; the load is recorded either way.
	WaitLoad float64       `json:"-"`
	WaitMax  time.Duration `json:"-"`
	// Log receives one line per stage with progress and ETA (nil: discarded).
	Log io.Writer `json:"-"`
}

// DefaultConfig returns the experiment's defaults: the calibrated built-in shop
// (shopgen.DefaultConfig: 2,500 WebShop goals, test 500 / dev 1,000 / train 1,000), one
// human-like expert demonstration per train goal, tiny-preset pretraining (300 steps)
// and IL (500 steps), 3 seeds, a 4-minute budget per fine-tuning stage, DPO on 100
// demonstration episodes (its reference pass scores each of their click steps inside
// the budget), 3 generation rounds keeping 100 successful episodes each, DefaultSweep
// on 200 dev goals, and
// Thompson sampling with 1,000 episodes x 3 runs.
func DefaultConfig() Config {
	gen := train.DefaultGenerateRun().Generate
	gen.Keep, gen.PruneLoops = 100, true
	dpo := train.DefaultDPORun()
	dpo.MaxEpisodes = 100 // the reference pass over them is part of DPO's budget
	// The committed run (docs/RESULTS.md): 1,000 pretraining and IL steps, 2 minutes per
	// fine-tuning stage; with the SIMD kernels about two hours on 2 cores.
	pretrain := train.DefaultPretrainRun()
	pretrain.Steps = 1000
	il := train.DefaultILRun()
	il.Steps = 1000
	ilCont := train.DefaultILRun()
	ilCont.InitPolicy, ilCont.LR, ilCont.Warmup, ilCont.Decay = true, 1e-4, 0, train.DecayConstant
	return Config{
		Shop: shopgen.DefaultConfig(), ShopSeed: 1,
		Methods: slices.Clone(AllMethods), Seeds: 3, Budget: 2 * time.Minute, Rounds: 3, GenShare: 0.5,
		Expert: datasets.DefaultExpertConfig(), DemoSeed: 1,
		Pretrain: pretrain, IL: il, ILCont: ilCont,
		PG: train.DefaultPGRun(), PPO: train.DefaultPPORun(), DPO: dpo, Generate: gen,
		Sweep: DefaultSweep(), SweepGoals: 200, SweepSeed: 101,
		Thompson: ThompsonConfig{Episodes: 1000, Runs: 3, MinShare: 0.02, Seed: 1},
		Backend:  models.DefaultBackend,
	}
}

// ParseMethods parses a comma-separated method list, in table order, without repeats.
func ParseMethods(s string) ([]string, error) {
	want := map[string]bool{}
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		if m == "" {
			continue
		}
		if !slices.Contains(AllMethods, m) {
			return nil, fmt.Errorf("experiment: unknown method %q (want %s)", m, strings.Join(AllMethods, ", "))
		}
		want[m] = true
	}
	var out []string
	for _, m := range AllMethods {
		if want[m] {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("experiment: no methods")
	}
	return out, nil
}

func (c *Config) validate() error {
	switch {
	case c.Out == "":
		return errors.New("experiment: no output directory")
	case c.Seeds <= 0:
		return errors.New("experiment: seeds must be positive")
	case c.Pretrain.Steps <= 0 || (c.IL.Steps <= 0 && c.IL.Epochs <= 0):
		return errors.New("experiment: pretraining and IL steps must be positive")
	case c.Budget <= 0 && c.needsBudget():
		return errors.New("experiment: the budget must be positive")
	case c.GenShare <= 0 || c.GenShare >= 1:
		return errors.New("experiment: the generation share of a round's budget must be in (0, 1)")
	case c.has(MethodSelfGen) && c.Rounds < 2:
		return errors.New("experiment: self-generation needs at least 2 rounds")
	case c.Thompson.Episodes > 0 && c.Thompson.Runs <= 0:
		return errors.New("experiment: Thompson runs must be positive")
	case c.Generate.Keep <= 0 && (c.has(MethodDPOGen) || c.has(MethodSelfGen)):
		return errors.New("experiment: generation must keep at least one episode")
	}
	for _, m := range c.Methods {
		if !slices.Contains(AllMethods, m) {
			return fmt.Errorf("experiment: unknown method %q", m)
		}
	}
	for _, t := range c.Sweep {
		if err := t.validate(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) has(m string) bool { return slices.Contains(c.Methods, m) }

func (c *Config) needsBudget() bool {
	for _, m := range c.Methods {
		if m != MethodRule && m != MethodIL && m != MethodILWebShop {
			return true
		}
	}
	return false
}

// exp is one experiment's state.
type exp struct {
	cfg   Config
	st    *stager
	shop  *env.Shop
	data  string
	demos string
	// test and dev are the evaluation goals and their offsets in the shop's goals.
	test, dev, trainGoals []env.Goal
	testOff, devOff       int
	trainOff              int
}

func (x *exp) dry() bool { return x.st.dry }

// Run runs (or resumes) the experiment and writes results.json, results.md and the
// plots into cfg.Out. A method whose stage fails is reported with the reason and the
// others go on; the shared stages (shop, demonstrations, pretraining, IL) failing, or
// cancellation, end the experiment with an error.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	if len(cfg.Methods) == 0 {
		cfg.Methods = slices.Clone(AllMethods)
	}
	if cfg.has(MethodSelfGen) && !cfg.has(MethodDPOGen) {
		cfg.Methods, _ = ParseMethods(strings.Join(append(cfg.Methods, MethodDPOGen), ","))
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	unlock, err := lockDir(cfg.Out)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// A dry pass counts the stages (for the progress lines' ETA); the real pass runs them.
	dry := &exp{cfg: cfg, st: newStager(ctx, cfg.Out, nil)}
	dry.st.dry = true
	if _, err := dry.run(); err != nil {
		return nil, err
	}
	x := &exp{cfg: cfg, st: newStager(ctx, cfg.Out, cfg.Log)}
	x.st.planned, x.st.waitLoad, x.st.waitMax = dry.st.planned, cfg.WaitLoad, cfg.WaitMax
	res, err := x.run()
	if err != nil {
		return nil, err
	}
	if err := res.Write(cfg.Out); err != nil {
		return res, err
	}
	return res, nil
}

// run is the experiment's plan, top to bottom.
func (x *exp) run() (*Results, error) {
	cfg := x.cfg
	start := time.Now()
	if err := x.openShop(); err != nil {
		return nil, err
	}
	res := &Results{Config: cfg, Shop: x.shopInfo()}
	methods := map[string]*MethodResult{}
	for _, m := range cfg.Methods {
		if m == MethodSelfGen {
			for r := 2; r <= cfg.Rounds; r++ {
				name := roundMethod(r)
				methods[name] = &MethodResult{Method: name, Label: fmt.Sprintf("Self-generation, round %d", r), Round: r}
			}
			continue
		}
		methods[m] = &MethodResult{Method: m, Label: methodLabels[m]}
		if m == MethodDPOGen {
			methods[m].Round = 1
		}
	}
	fail := func(m string, seed int, err error) error {
		if isCancel(err) {
			return err
		}
		if mr := methods[m]; mr != nil {
			mr.Failures = append(mr.Failures, fmt.Sprintf("seed %d: %v", seed, err))
		}
		return nil
	}
	seed1 := map[string]string{} // method -> seed 1's model, for Thompson sampling

	if cfg.has(MethodRule) {
		ev, rec, err := x.evalRule()
		if err != nil {
			if err := fail(MethodRule, 1, err); err != nil {
				return nil, err
			}
		} else {
			methods[MethodRule].add(SeedResult{Seed: 1, Run: "rule", Eval: ev, EvalWallS: rec.ElapsedS})
			seed1[MethodRule] = "rule"
		}
	}
	if !x.needsIL() {
		return x.finish(res, methods, start)
	}
	if err := x.demonstrations(); err != nil {
		return nil, err
	}
	pretrain, err := x.pretrain()
	if err != nil {
		return nil, err
	}

	// The dev-split sweep (run after seed 1's IL, from it; its runs have their own
	// training seed, so the final runs of every seed are fresh).
	selected := map[string]Trial{}
	sweep := func(il, ilStage string) error {
		for i, t := range cfg.Sweep {
			if !x.sweeps(t.Method) {
				continue
			}
			sr := SweepResult{Trial: t, Index: i}
			name := fmt.Sprintf("sweep-%s-%d", t.Method, i)
			rec, err := x.fineTune(name, t.Method, t, il, ilStage, cfg.SweepSeed)
			if err == nil {
				var ev EvalResult
				ev, _, err = x.evalPolicy("dev-"+name, filepath.Join("runs", name), rec.Name, x.devGoals(), x.devOff, "dev")
				sr.Dev, sr.StageWallS = ev, rec.ElapsedS
			}
			if err != nil {
				if isCancel(err) {
					return err
				}
				sr.Error = err.Error()
			}
			res.Sweep = append(res.Sweep, sr)
		}
		selected = selectTrials(res.Sweep)
		for i := range res.Sweep {
			if s, ok := selected[res.Sweep[i].Trial.Method]; ok && s == res.Sweep[i].Trial {
				res.Sweep[i].Selected = true
			}
		}
		return nil
	}
	trialFor := func(m string) Trial {
		switch m {
		case MethodDPOGen, MethodSelfGen, MethodDPOWebShop:
			m = MethodDPO
		}
		if t, ok := selected[m]; ok {
			return t
		}
		return Trial{Method: m}
	}

	// Every seed's IL policies first: they are step-counted, so a busy machine only makes
	// them slower, while the budgeted stages after them are better run on a quiet one
	// (WaitLoad).
	for seed := int64(1); seed <= int64(cfg.Seeds); seed++ {
		if _, _, err := x.trainIL(fmt.Sprintf("il-s%d", seed), seed, features.ModelShopAgent, pretrain); err != nil {
			return nil, err
		}
		if cfg.has(MethodILWebShop) || cfg.has(MethodDPOWebShop) {
			if _, _, err := x.trainIL(fmt.Sprintf("il-webshop-s%d", seed), seed, features.ModelWebShop, pretrain); err != nil {
				return nil, err
			}
		}
	}
	for seed := int64(1); seed <= int64(cfg.Seeds); seed++ {
		s := int(seed)
		record := func(m, name, run string, dep string, wallBehind, stageWall, budget float64, extra func(*SeedResult)) error {
			ev, rec, err := x.evalPolicy("test-"+name, run, dep, x.testGoals(), x.testOff, "test")
			if err != nil {
				return fail(m, s, err)
			}
			tr := x.st.records[dep]
			sr := SeedResult{Seed: s, Run: run, Eval: ev, EvalWallS: rec.ElapsedS, TrainWallS: wallBehind, StageWallS: stageWall, BudgetS: budget,
				Load: (tr.LoadStart + tr.LoadEnd) / 2}
			if extra != nil {
				extra(&sr)
			}
			methods[m].add(sr)
			if s == 1 {
				seed1[m] = run
			}
			return nil
		}
		shared := x.st.records["pretrain"].ElapsedS + x.st.records["demos"].ElapsedS
		ilName := fmt.Sprintf("il-s%d", s)
		il, ilRec, err := x.trainIL(ilName, seed, features.ModelShopAgent, pretrain)
		if err != nil {
			return nil, err
		}
		ilWall := shared + ilRec.ElapsedS
		if seed == 1 && len(cfg.Sweep) > 0 && x.needsSweep() {
			if err := sweep(il, ilRec.Name); err != nil {
				return nil, err
			}
		}
		if cfg.has(MethodIL) {
			if err := record(MethodIL, ilName, il, ilRec.Name, ilWall, ilRec.ElapsedS, 0, nil); err != nil {
				return nil, err
			}
		}
		for _, m := range budgeted {
			if !cfg.has(m) {
				continue
			}
			name := fmt.Sprintf("%s-s%d", m, s)
			rec, err := x.fineTune(name, m, trialFor(m), il, ilRec.Name, seed)
			if err != nil {
				if err := fail(m, s, err); err != nil {
					return nil, err
				}
				continue
			}
			if err := record(m, name, filepath.Join("runs", name), rec.Name, ilWall+rec.ElapsedS, rec.ElapsedS, rec.BudgetS, nil); err != nil {
				return nil, err
			}
		}
		// Generation rounds: round 1 from IL (dpo-gen), round r from round r-1 (self-gen).
		if cfg.has(MethodDPOGen) {
			prev, prevRec, wall, used := il, ilRec.Name, ilWall, 0
			last := 1
			if cfg.has(MethodSelfGen) {
				last = cfg.Rounds
			}
			for r := 1; r <= last; r++ {
				m := MethodDPOGen
				if r > 1 {
					m = roundMethod(r)
				}
				name := fmt.Sprintf("gen-r%d-s%d", r, s)
				rec, rr, err := x.generationRound(name, prev, prevRec, trialFor(MethodDPOGen), seed, r)
				gs := rr.Generate
				if err != nil {
					if err := fail(m, s, err); err != nil {
						return nil, err
					}
					break
				}
				used += gs.Kept
				wall += rec.ElapsedS
				run := filepath.Join("runs", name)
				if rr.Unchanged {
					run = prev // no success to learn from: the round keeps its policy
				}
				k, u := gs.Kept, used
				if err := record(m, name, run, rec.Name, wall, rec.ElapsedS, rec.BudgetS, func(sr *SeedResult) {
					sr.Generated, sr.GeneratedTotal, sr.GeneratedPlayed, sr.Unchanged = k, u, gs.Played, rr.Unchanged
				}); err != nil {
					return nil, err
				}
				if !filepath.IsAbs(run) {
					run = x.st.path(run)
				}
				prev, prevRec = run, rec.Name
			}
		}
		if cfg.has(MethodILWebShop) || cfg.has(MethodDPOWebShop) {
			wName := fmt.Sprintf("il-webshop-s%d", s)
			wil, wRec, err := x.trainIL(wName, seed, features.ModelWebShop, pretrain)
			if err != nil {
				return nil, err
			}
			wWall := shared + wRec.ElapsedS
			if cfg.has(MethodILWebShop) {
				if err := record(MethodILWebShop, wName, wil, wRec.Name, wWall, wRec.ElapsedS, 0, nil); err != nil {
					return nil, err
				}
			}
			if cfg.has(MethodDPOWebShop) {
				name := fmt.Sprintf("dpo-webshop-s%d", s)
				rec, err := x.fineTune(name, MethodDPO, trialFor(MethodDPOWebShop), wil, wRec.Name, seed)
				if err != nil {
					if err := fail(MethodDPOWebShop, s, err); err != nil {
						return nil, err
					}
				} else if err := record(MethodDPOWebShop, name, filepath.Join("runs", name), rec.Name, wWall+rec.ElapsedS, rec.ElapsedS, rec.BudgetS, nil); err != nil {
					return nil, err
				}
			}
		}
	}

	// Thompson sampling: one arm per method, seed 1's model.
	if cfg.Thompson.Episodes > 0 {
		var specs []abtest.ArmSpec
		var deps []string
		for _, m := range x.tableOrder(methods) {
			if r, ok := seed1[m]; ok {
				specs = append(specs, abtest.ArmSpec{Name: m, Spec: r})
			}
		}
		for _, name := range x.st.order {
			if strings.HasPrefix(name, "test-") && strings.HasSuffix(name, "-s1") || name == "test-rule" {
				deps = append(deps, name)
			}
		}
		if len(specs) > 1 {
			rep, err := x.thompson(specs, deps)
			if err != nil {
				if isCancel(err) {
					return nil, err
				}
				res.ThompsonError = err.Error()
			} else {
				res.Thompson = rep
			}
		}
	}
	return x.finish(res, methods, start)
}

// roundMethod names the method of self-generation round r.
func roundMethod(r int) string { return fmt.Sprintf("%s-r%d", MethodSelfGen, r) }

func (x *exp) needsIL() bool {
	for _, m := range x.cfg.Methods {
		if m != MethodRule {
			return true
		}
	}
	return false
}

// sweeps reports whether the sweep has trials for a method that runs (dpo's serve
// dpo-gen, self-gen and dpo-webshop too).
func (x *exp) sweeps(m string) bool {
	if m == MethodDPO {
		return x.cfg.has(MethodDPO) || x.cfg.has(MethodDPOGen) || x.cfg.has(MethodDPOWebShop)
	}
	return x.cfg.has(m)
}

func (x *exp) needsSweep() bool {
	for _, t := range x.cfg.Sweep {
		if x.sweeps(t.Method) {
			return true
		}
	}
	return false
}

// tableOrder lists the methods present in table order (rounds after dpo-gen).
func (x *exp) tableOrder(methods map[string]*MethodResult) []string {
	var out []string
	for _, m := range AllMethods {
		if m == MethodSelfGen {
			for r := 2; r <= x.cfg.Rounds; r++ {
				if _, ok := methods[roundMethod(r)]; ok {
					out = append(out, roundMethod(r))
				}
			}
			continue
		}
		if _, ok := methods[m]; ok {
			out = append(out, m)
		}
	}
	return out
}

// finish sums the methods up and fills the results.
func (x *exp) finish(res *Results, methods map[string]*MethodResult, start time.Time) (*Results, error) {
	for _, m := range x.tableOrder(methods) {
		mr := methods[m]
		mr.finish()
		if res.Thompson != nil {
			for _, a := range res.Thompson.Arms {
				if a.Name == m {
					mr.InThompson, mr.ThompsonProbBest, mr.ThompsonShare = true, a.ProbBest, a.Share
					mr.ThompsonScore, mr.ThompsonSuccess = a.MeanScore, a.SuccessRate
				}
			}
		}
		mr.Published = published[m]
		res.Methods = append(res.Methods, *mr)
	}
	res.Rounds = roundsOf(res.Methods)
	for _, name := range x.st.order {
		r := x.st.records[name]
		res.Stages = append(res.Stages, StageSummary{Name: r.Name, ElapsedS: r.ElapsedS, BudgetS: r.BudgetS,
			Load: (r.LoadStart + r.LoadEnd) / 2, Resumed: r.Resumed})
	}
	res.ElapsedS = time.Since(start).Seconds()
	return res, nil
}

// openShop generates the built-in shop (a stage) unless Data names one, and opens it.
func (x *exp) openShop() error {
	cfg := x.cfg
	x.data = cfg.Data
	if x.data == "" {
		x.data = x.st.path("shop")
		if _, err := x.st.stage(stageSpec{name: "shop", config: cfg.Shop, outputs: []string{"shop"},
			run: func(ctx context.Context, _ time.Time) (any, error) {
				if err := shopgen.Generate(cfg.Shop, x.data, nil); err != nil {
					return nil, err
				}
				return nil, nil
			}}); err != nil {
			return err
		}
	}
	if x.dry() {
		return nil
	}
	shop, err := env.OpenShop(x.data, env.ShopOptions{Seed: cfg.ShopSeed})
	if err != nil {
		return fmt.Errorf("experiment: %w", err)
	}
	x.shop = shop
	for _, sp := range []struct {
		name  string
		goals *[]env.Goal
		off   *int
	}{{"test", &x.test, &x.testOff}, {"dev", &x.dev, &x.devOff}, {"train", &x.trainGoals, &x.trainOff}} {
		g, err := shop.SplitGoals(sp.name)
		if err != nil {
			return fmt.Errorf("experiment: %w", err)
		}
		r, _ := shop.Splits.Split(sp.name)
		*sp.goals, *sp.off = g, r[0]
	}
	if len(x.test) == 0 || len(x.trainGoals) == 0 {
		return fmt.Errorf("experiment: the shop %s has no test or train goals", x.data)
	}
	return nil
}

func (x *exp) shopInfo() ShopInfo {
	if x.shop == nil {
		return ShopInfo{Dir: x.data}
	}
	return ShopInfo{Dir: x.data, Products: len(x.shop.Catalog.Products), Goals: len(x.shop.Goals),
		Test: len(x.test), Dev: len(x.dev), Train: len(x.trainGoals), EvalGoals: len(x.testGoals()), SweepGoals: len(x.devGoals())}
}

func (x *exp) testGoals() []env.Goal {
	if x.cfg.EvalGoals > 0 && x.cfg.EvalGoals < len(x.test) {
		return x.test[:x.cfg.EvalGoals]
	}
	return x.test
}

func (x *exp) devGoals() []env.Goal {
	if x.cfg.SweepGoals > 0 && x.cfg.SweepGoals < len(x.dev) {
		return x.dev[:x.cfg.SweepGoals]
	}
	return x.dev
}

// demonstrations writes the expert demonstrations on the train goals.
func (x *exp) demonstrations() error {
	cfg := x.cfg
	x.demos = x.st.path("demos", "train.parquet")
	key := struct {
		Expert   datasets.ExpertConfig
		Episodes int
		Seed     uint64
	}{cfg.Expert, cfg.Demos, cfg.DemoSeed}
	_, err := x.st.stage(stageSpec{name: "demos", config: key, deps: x.shopDeps(), outputs: []string{"demos/train.parquet"},
		run: func(ctx context.Context, _ time.Time) (any, error) {
			if err := os.MkdirAll(filepath.Dir(x.demos), 0o755); err != nil {
				return nil, err
			}
			return datasets.WriteDemos(x.shop, datasets.DemoConfig{Goals: x.trainGoals, GoalOffset: x.trainOff,
				Episodes: cfg.Demos, Expert: cfg.Expert, Seed: cfg.DemoSeed,
				Env: env.Config{Mode: env.ObsTextRich, MaxSteps: 100}}, x.demos)
		}})
	return err
}

func (x *exp) shopDeps() []string {
	if x.cfg.Data == "" {
		return []string{"shop"}
	}
	return nil
}

// options prepares a stage's RunOptions: run directory, seed, backend, log file.
func (x *exp) options(o train.RunOptions, name string, seed int64) train.RunOptions {
	o.Out, o.Seed, o.Backend, o.ProgressBar, o.Resume = x.st.path("runs", name), seed, x.cfg.Backend, false, false
	o.Info = map[string]any{"experiment_stage": name}
	o.LogEvery = 5 // budgeted runs have no step count to take 10% of
	return o
}

// withLog runs fn with the stage's log file as the run's log.
func (x *exp) withLog(name string, fn func(w io.Writer) (any, error)) (any, error) {
	f, err := x.st.logFile(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	res, err := fn(f)
	if err != nil {
		fmt.Fprintf(f, "error: %v\n", err)
	}
	return res, err
}

// pretrain runs the masked-LM pretraining shared by every policy.
func (x *exp) pretrain() (string, error) {
	r := x.cfg.Pretrain
	r.RunOptions = x.options(r.RunOptions, "pretrain", 1)
	dir := r.Out
	_, err := x.st.stage(stageSpec{name: "pretrain", config: r, deps: x.shopDeps(), outputs: []string{"runs/pretrain"}, resumable: true,
		run: func(ctx context.Context, _ time.Time) (any, error) {
			return x.withLog("pretrain", func(w io.Writer) (any, error) {
				r.Log, r.Resume = w, true
				res, err := train.RunPretrain(ctx, x.shop, r)
				if err != nil {
					return nil, err
				}
				if res.Interrupted {
					return nil, context.Canceled // resumed from its checkpoint next time
				}
				return res.Summary(), nil
			})
		}})
	return dir, err
}

// trainIL trains an IL policy on the expert demonstrations from the pretrained encoder.
func (x *exp) trainIL(name string, seed int64, model, pretrain string) (string, StageRecord, error) {
	r := x.cfg.IL
	r.RunOptions = x.options(r.RunOptions, name, seed)
	r.Demos, r.InitPath, r.Model = x.demos, pretrain, model
	rec, err := x.st.stage(stageSpec{name: name, config: r, deps: []string{"demos", "pretrain"}, outputs: []string{"runs/" + name}, resumable: true,
		run: func(ctx context.Context, _ time.Time) (any, error) {
			return x.withLog(name, func(w io.Writer) (any, error) {
				r.Log, r.Resume = w, true
				res, err := train.RunIL(ctx, r)
				if err != nil {
					return nil, err
				}
				if res.Interrupted {
					return nil, context.Canceled // resumed from its checkpoint next time
				}
				return res.Summary(), nil
			})
		}})
	return r.Out, rec, err
}

// fineTune trains method m (il-cont, pg, ppo or dpo) from the policy init for the
// budget, measured from the stage's start.
func (x *exp) fineTune(name, m string, t Trial, init, initStage string, seed int64) (StageRecord, error) {
	cfg := x.cfg
	var config any
	var run func(ctx context.Context, deadline time.Time, w io.Writer) (*train.RunResult, error)
	const unbounded = 1 << 40 // the deadline stops the run
	switch m {
	case MethodILCont:
		r := cfg.ILCont
		r.RunOptions = x.options(t.apply(r.RunOptions), name, seed)
		r.Steps, r.Epochs, r.Demos, r.InitPath, r.InitPolicy = unbounded, 0, x.demos, init, true
		config = r
		run = func(ctx context.Context, d time.Time, w io.Writer) (*train.RunResult, error) {
			r.Deadline, r.Log = d, w
			return train.RunIL(ctx, r)
		}
	case MethodPG:
		r := cfg.PG
		r.RunOptions = x.options(t.apply(r.RunOptions), name, seed)
		r.Steps, r.Init = unbounded, init
		config = r
		run = func(ctx context.Context, d time.Time, w io.Writer) (*train.RunResult, error) {
			r.Deadline, r.Log = d, w
			return train.RunPG(ctx, x.shop, x.trainGoals, r)
		}
	case MethodPPO:
		r := cfg.PPO
		r.RunOptions = x.options(t.apply(r.RunOptions), name, seed)
		r.Steps, r.Init = unbounded, init
		config = r
		run = func(ctx context.Context, d time.Time, w io.Writer) (*train.RunResult, error) {
			r.Deadline, r.Log = d, w
			return train.RunPPO(ctx, x.shop, x.trainGoals, r)
		}
	case MethodDPO:
		r := cfg.DPO
		r.RunOptions = x.options(t.apply(r.RunOptions), name, seed)
		if t.Beta > 0 {
			r.DPO.Beta = t.Beta
		}
		r.Steps, r.Epochs, r.Init, r.Demos = unbounded, 0, init, x.demos
		config = r
		run = func(ctx context.Context, d time.Time, w io.Writer) (*train.RunResult, error) {
			r.Deadline, r.Log = d, w
			return train.RunDPO(ctx, r)
		}
	default:
		return StageRecord{}, fmt.Errorf("experiment: %s is not a fine-tuning method", m)
	}
	deps := []string{initStage}
	if m == MethodILCont || m == MethodDPO {
		deps = append(deps, "demos")
	}
	return x.st.stage(stageSpec{name: name, config: config, deps: deps, outputs: []string{"runs/" + name}, budget: cfg.Budget,
		run: func(ctx context.Context, start time.Time) (any, error) {
			return x.withLog(name, func(w io.Writer) (any, error) {
				res, err := run(ctx, start.Add(cfg.Budget), w)
				if err != nil {
					return nil, err
				}
				if res.Interrupted {
					return nil, context.Canceled
				}
				return res.Summary(), nil
			})
		}})
}

// roundResult is what a generation round's stage records.
type roundResult struct {
	Generate  train.GenerateStats `json:"generate"`
	GenerateS float64             `json:"generate_s"`
	DPO       train.RunSummary    `json:"dpo"`
	// Unchanged is true when generation kept no successful episode: there is nothing
	// to prefer, so the round trains nothing and keeps the previous policy.
	Unchanged bool `json:"unchanged,omitempty"`
}

// generationRound generates successful episodes from the policy prev on the train goals
// (up to GenShare of the budget, or Generate.Keep kept), then trains DPO on them with
// prev as the initial and reference policy until the budget is spent. A round whose
// generation kept nothing keeps prev (roundResult.Unchanged).
func (x *exp) generationRound(name, prev, prevStage string, t Trial, seed int64, round int) (StageRecord, roundResult, error) {
	cfg := x.cfg
	gen := train.DefaultGenerateRun()
	gen.Policy, gen.Backend, gen.Generate = prev, cfg.Backend, cfg.Generate
	gen.Generate.Seed = uint64(1000*seed + int64(round))
	gen.Out = x.st.path("generated", name+".parquet")
	r := cfg.DPO
	r.RunOptions = x.options(t.apply(r.RunOptions), name, seed)
	if t.Beta > 0 {
		r.DPO.Beta = t.Beta
	}
	r.Steps, r.Epochs, r.Init, r.Demos = 1<<40, 0, prev, gen.Out
	config := struct {
		Generate train.GenerateRun `json:"generate"`
		DPO      train.DPORun      `json:"dpo"`
		GenShare float64           `json:"gen_share"`
	}{gen, r, cfg.GenShare}
	rec, err := x.st.stage(stageSpec{name: name, config: config, deps: []string{prevStage},
		outputs: []string{"generated/" + name + ".parquet"}, budget: cfg.Budget,
		run: func(ctx context.Context, start time.Time) (any, error) {
			return x.withLog(name, func(w io.Writer) (any, error) {
				if err := os.RemoveAll(r.Out); err != nil { // an interrupted attempt's run
					return nil, err
				}
				if err := os.MkdirAll(filepath.Dir(gen.Out), 0o755); err != nil {
					return nil, err
				}
				g := gen
				g.Deadline = start.Add(time.Duration(cfg.GenShare * float64(cfg.Budget)))
				gs, err := train.RunGenerate(ctx, x.shop, x.trainGoals, x.trainOff, g)
				if err != nil {
					return nil, err
				}
				genS := time.Since(start).Seconds()
				fmt.Fprintf(w, "generate: %d episodes played (score %.2f, success rate %.2f%%), %d kept in %.1fs\n",
					gs.Played, gs.Summary.Score, gs.Summary.SuccessRate, gs.Kept, genS)
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if gs.Kept == 0 {
					fmt.Fprintf(w, "generation kept no successful episode: the round keeps %s\n", prev)
					return roundResult{Generate: gs, GenerateS: genS, Unchanged: true}, nil
				}
				d := r
				d.Deadline, d.Log = start.Add(cfg.Budget), w
				res, err := train.RunDPO(ctx, d)
				if errors.Is(err, train.ErrNoData) {
					// Every kept step is what the reference would do anyway: no pair.
					fmt.Fprintf(w, "%v: the round keeps %s\n", err, prev)
					return roundResult{Generate: gs, GenerateS: genS, Unchanged: true}, nil
				}
				if err != nil {
					return nil, err
				}
				if res.Interrupted {
					return nil, context.Canceled
				}
				return roundResult{Generate: gs, GenerateS: genS, DPO: res.Summary()}, nil
			})
		}})
	var rr roundResult
	if err != nil || x.dry() {
		return rec, rr, err
	}
	if err := rec.decode(&rr); err != nil {
		return rec, rr, err
	}
	if !rr.Unchanged {
		if _, err := os.Stat(r.Out); err != nil {
			return rec, rr, fmt.Errorf("experiment: stage %s: %w", name, err)
		}
	}
	return rec, rr, nil
}

// EvalResult is one greedy evaluation.
type EvalResult struct {
	Split       string  `json:"split"`
	Episodes    int     `json:"episodes"`
	Score       float64 `json:"score"`
	SuccessRate float64 `json:"success_rate"`
	MeanSteps   float64 `json:"mean_steps"`
	// Forced counts actions chosen by the agent's safety caps; Errors episodes with
	// scoring errors.
	Forced int `json:"forced_actions"`
	Errors int `json:"errors"`
}

// evalPolicy evaluates the policy run (relative to OUT, or absolute) on goals.
func (x *exp) evalPolicy(name, run, dep string, goals []env.Goal, offset int, split string) (EvalResult, StageRecord, error) {
	cfg := x.cfg
	dir := run
	if !filepath.IsAbs(dir) {
		dir = x.st.path(run)
	}
	key := struct {
		Split string
		Goals int
		Agent train.AgentConfig
	}{split, len(goals), cfg.Agent}
	rec, err := x.st.stage(stageSpec{name: name, config: key, deps: []string{dep},
		run: func(ctx context.Context, _ time.Time) (any, error) {
			be, err := models.NewBackend(cfg.Backend)
			if err != nil {
				return nil, err
			}
			pol, err := models.LoadPolicy(be, dir)
			if err != nil {
				return nil, err
			}
			defer pol.Close()
			res, err := train.EvaluatePolicy(x.shop, goals, pol, train.EvalConfig{Workers: cfg.EvalWorkers, Agent: cfg.Agent, GoalOffset: offset})
			if err != nil {
				return nil, err
			}
			s := res.Summary
			return EvalResult{Split: split, Episodes: s.Episodes, Score: s.Score, SuccessRate: s.SuccessRate, MeanSteps: s.MeanSteps,
				Forced: res.Forced, Errors: res.Errors}, nil
		}})
	if err != nil || x.dry() {
		return EvalResult{}, rec, err
	}
	var ev EvalResult
	err = rec.decode(&ev)
	return ev, rec, err
}

// evalRule evaluates the rule agent on the test goals.
func (x *exp) evalRule() (EvalResult, StageRecord, error) {
	key := struct{ Goals int }{len(x.testGoals())}
	rec, err := x.st.stage(stageSpec{name: "test-rule", config: key, deps: x.shopDeps(),
		run: func(ctx context.Context, _ time.Time) (any, error) {
			s := env.Summarize(x.shop.Evaluate(x.testGoals(), env.Config{Mode: env.ObsText}, 0,
				func(int) env.Agent { return env.RuleAgent{} }, false, nil))
			return EvalResult{Split: "test", Episodes: s.Episodes, Score: s.Score, SuccessRate: s.SuccessRate, MeanSteps: s.MeanSteps}, nil
		}})
	if err != nil || x.dry() {
		return EvalResult{}, rec, err
	}
	var ev EvalResult
	err = rec.decode(&ev)
	return ev, rec, err
}

// thompson runs the Thompson-sampling comparison of the arms on the test goals and
// writes its outputs to OUT/thompson.
func (x *exp) thompson(specs []abtest.ArmSpec, deps []string) (*abtest.Report, error) {
	cfg := x.cfg
	tc := cfg.Thompson
	if tc.Workers <= 0 {
		tc.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	abs := make([]abtest.ArmSpec, len(specs))
	for i, s := range specs {
		abs[i] = s
		if s.Spec != "rule" && !filepath.IsAbs(s.Spec) {
			abs[i].Spec = x.st.path(s.Spec)
		}
	}
	key := struct {
		Arms     []abtest.ArmSpec
		Thompson ThompsonConfig
		Goals    int
		Agent    train.AgentConfig
	}{specs, tc, len(x.testGoals()), cfg.Agent}
	rec, err := x.st.stage(stageSpec{name: "thompson", config: key, deps: deps, outputs: []string{ThompsonDir},
		run: func(ctx context.Context, _ time.Time) (any, error) {
			arms, err := abtest.LoadArms(abs, cfg.Backend, tc.Workers, cfg.Agent)
			if err != nil {
				return nil, err
			}
			defer abtest.CloseArms(arms)
			b := bandit.Thompson{Prior: bandit.UniformPrior, MinShare: tc.MinShare}
			res, err := abtest.Run(ctx, x.shop, x.testGoals(), arms, abtest.Config{Episodes: tc.Episodes, Runs: tc.Runs,
				Workers: tc.Workers, Seed: tc.Seed, Bandit: b})
			if err != nil {
				return nil, err
			}
			names := make([]string, len(specs))
			for i, s := range specs {
				names[i] = s.Name
			}
			rep := abtest.Summarize(names, res.Episodes, tc.Runs, tc.Seed)
			for i := range rep.Arms {
				rep.Arms[i].Spec = specs[i].Spec
			}
			rep.MinShare, rep.Source, rep.Split, rep.Goals, rep.Workers = tc.MinShare, "in-process", "test", len(x.testGoals()), tc.Workers
			rep.ElapsedS, rep.Errors = res.Elapsed.Seconds(), res.Errors
			if err := abtest.WriteOutputs(x.st.path(ThompsonDir), rep); err != nil {
				return nil, err
			}
			return rep, nil
		}})
	if err != nil || x.dry() {
		return nil, err
	}
	var rep abtest.Report
	if err := rec.decode(&rep); err != nil {
		return nil, err
	}
	return &rep, nil
}
