// Package experiment reproduces the paper's comparison end to end: the rule agent, IL,
// IL+PG, IL+PPO, IL+DPO on the demonstrations and IL+DPO on generated trajectories, each
// trained over several seeds at equal wall-clock budgets for the RL stages, evaluated
// exhaustively on the test split and online by Thompson sampling (one arm per method),
// plus a data-efficiency curve of IL against the number of demonstrations.
//
// Every stage is a shopagent command line (env generate, datasets demos, train pretrain,
// train il, train generate, train pg/ppo/dpo, eval, abtest) run through a Runner, so the
// experiment is exactly what a user would type. A stage that finished leaves a record in
// OUT/stages/; a rerun with the same output directory skips it, so an interrupted
// experiment resumes where it stopped (a stage cut short is redone from scratch).
package experiment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Runner runs one shopagent command line (args without the program name), writing its
// output to out.
type Runner func(ctx context.Context, out io.Writer, args []string) error

// Method names accepted by Config.Methods, in table order.
const (
	MethodRule   = "rule"
	MethodIL     = "il"
	MethodPG     = "pg"
	MethodPPO    = "ppo"
	MethodDPO    = "dpo"
	MethodDPOGen = "dpo-gen"
)

// AllMethods lists every method in table order.
var AllMethods = []string{MethodRule, MethodIL, MethodPG, MethodPPO, MethodDPO, MethodDPOGen}

// Config configures an experiment.
type Config struct {
	// Out is the output directory (required).
	Out string
	// Data is a WebShop data directory; empty generates the built-in shop with the
	// WebShop goals ShopGoals (N, all or ranges; empty: the default), Products
	// products (0: the default per goal) and generator seed GenSeed into Out/shop.
	Data      string
	ShopGoals string
	Products  int
	GenSeed   int64
	// Methods to compare (default AllMethods).
	Methods []string
	// Seeds is the number of training seeds (1..Seeds) per method.
	Seeds int
	// Budget is the wall clock of each RL run (pg, ppo, dpo, dpo-gen), the same for all.
	Budget time.Duration
	// RLSteps, when positive, also caps the RL runs' steps.
	RLSteps int
	// PretrainSteps and ILSteps are the optimizer steps of pretraining and of each IL run.
	PretrainSteps, ILSteps int
	// Preset is the encoder size of pretraining.
	Preset string
	// Demos is the number of expert demonstrations (0: one per train goal).
	Demos int
	// GenKeep is the number of generated successful trajectories for dpo-gen (100).
	GenKeep int
	// Episodes and Runs of the Thompson-sampling comparison (0 episodes: skip it);
	// MinShare is its traffic floor per arm.
	Episodes, Runs int
	MinShare       float64
	// DemoCounts are the demonstration counts of the data-efficiency curve (empty: skip).
	DemoCounts []int
	// EvalFirst, when positive, evaluates on the first N test goals only.
	EvalFirst int
	// Backend is the GoMLX backend passed to every training and evaluation command.
	Backend string
	// PretrainArgs, ILArgs, RLArgs and EvalArgs are extra arguments appended to those
	// commands (e.g. "--batch 8 --max-state-len 128").
	PretrainArgs, ILArgs, RLArgs, EvalArgs []string
	// Log receives one line per stage (nil: discarded).
	Log io.Writer
}

// methodLabels are the table's names of the methods.
var methodLabels = map[string]string{
	MethodRule: "Rule", MethodIL: "IL", MethodPG: "IL+PG", MethodPPO: "IL+PPO",
	MethodDPO: "IL+DPO (demos)", MethodDPOGen: "IL+DPO (generated)",
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

// ParseCounts parses a comma-separated list of positive integers.
func ParseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("experiment: %q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func (c *Config) validate() error {
	switch {
	case c.Out == "":
		return errors.New("experiment: no output directory")
	case c.Seeds <= 0:
		return errors.New("experiment: seeds must be positive")
	case c.PretrainSteps <= 0 || c.ILSteps <= 0:
		return errors.New("experiment: pretraining and IL steps must be positive")
	case c.Budget <= 0 && c.needsRL():
		return errors.New("experiment: the RL budget must be positive")
	case c.Episodes > 0 && c.Runs <= 0:
		return errors.New("experiment: Thompson runs must be positive")
	}
	for _, m := range c.Methods {
		if !slices.Contains(AllMethods, m) {
			return fmt.Errorf("experiment: unknown method %q", m)
		}
	}
	return nil
}

func (c *Config) needsRL() bool {
	for _, m := range c.Methods {
		if m != MethodRule && m != MethodIL {
			return true
		}
	}
	return false
}

// StageRecord is what a finished stage leaves in OUT/stages/NAME.json.
type StageRecord struct {
	Name     string   `json:"name"`
	Args     []string `json:"args"`
	ElapsedS float64  `json:"elapsed_s"`
	// Resumed is true when this invocation skipped the stage (it had finished before).
	Resumed bool `json:"-"`
}

// ErrNotImplemented marks a stage whose command is not in this build.
var ErrNotImplemented = errors.New("command not implemented in this build")

// exp is one experiment's state.
type exp struct {
	ctx    context.Context
	cfg    Config
	run    Runner
	log    io.Writer
	stages []StageRecord
	// remade are the outputs of the stages this invocation ran.
	remade []string
}

func (x *exp) path(parts ...string) string {
	return filepath.Join(append([]string{x.cfg.Out}, parts...)...)
}

func (x *exp) logf(format string, args ...any) {
	fmt.Fprintf(x.log, format+"\n", args...)
}

// stage runs one command unless a previous invocation finished it (its record and all
// its outputs exist). Outputs of an unfinished attempt are removed first, so a stage
// cut short is redone from scratch.
func (x *exp) stage(name string, outputs []string, args ...string) (StageRecord, error) {
	recPath := x.path("stages", name+".json")
	// A stage whose inputs were remade by this invocation is remade too.
	stale := false
	for _, a := range args {
		for _, p := range x.remade {
			stale = stale || strings.Contains(a, p)
		}
	}
	if b, err := os.ReadFile(recPath); err == nil && !stale {
		var rec StageRecord
		ok := json.Unmarshal(b, &rec) == nil && slices.Equal(rec.Args, args)
		for _, o := range outputs {
			if _, err := os.Stat(o); err != nil {
				ok = false
			}
		}
		if ok {
			rec.Resumed = true
			x.stages = append(x.stages, rec)
			x.logf("stage %-24s done before (%.1fs), skipped", name, rec.ElapsedS)
			return rec, nil
		}
	}
	if err := x.ctx.Err(); err != nil {
		return StageRecord{}, err
	}
	for _, o := range outputs {
		if err := os.RemoveAll(o); err != nil {
			return StageRecord{}, fmt.Errorf("experiment: stage %s: %w", name, err)
		}
	}
	for _, d := range []string{"stages", "logs"} {
		if err := os.MkdirAll(x.path(d), 0o755); err != nil {
			return StageRecord{}, fmt.Errorf("experiment: %w", err)
		}
	}
	logPath := x.path("logs", name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return StageRecord{}, fmt.Errorf("experiment: %w", err)
	}
	fmt.Fprintf(lf, "$ shopagent %s\n", strings.Join(args, " "))
	x.logf("stage %-24s shopagent %s", name, strings.Join(args, " "))
	t := time.Now()
	runErr := x.run(x.ctx, lf, args)
	elapsed := time.Since(t)
	if runErr != nil {
		fmt.Fprintf(lf, "error: %v\n", runErr)
	}
	lf.Close()
	if runErr != nil {
		if strings.Contains(runErr.Error(), "not implemented yet") {
			runErr = fmt.Errorf("%w (%v)", ErrNotImplemented, runErr)
		}
		x.logf("stage %-24s failed after %s: %v (log: %s)", name, elapsed.Round(time.Millisecond), runErr, logPath)
		return StageRecord{}, fmt.Errorf("stage %s: %w", name, runErr)
	}
	for _, o := range outputs {
		if _, err := os.Stat(o); err != nil {
			return StageRecord{}, fmt.Errorf("stage %s finished without its output: %w", name, err)
		}
	}
	rec := StageRecord{Name: name, Args: args, ElapsedS: elapsed.Seconds()}
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := os.WriteFile(recPath, append(b, '\n'), 0o644); err != nil {
		return StageRecord{}, fmt.Errorf("experiment: %w", err)
	}
	x.stages = append(x.stages, rec)
	x.remade = append(x.remade, outputs...)
	x.logf("stage %-24s finished in %s", name, elapsed.Round(time.Millisecond))
	return rec, nil
}

// shopArgs are the arguments that select the experiment's shop.
func (x *exp) shopArgs(data string) []string { return []string{"--data", data} }

func (x *exp) backendArgs() []string {
	if x.cfg.Backend == "" {
		return nil
	}
	return []string{"--backend", x.cfg.Backend}
}

// evalSummary is the part of `eval --json` the experiment reads.
type evalSummary struct {
	Summary struct {
		Episodes    int     `json:"episodes"`
		Score       float64 `json:"score"`
		SuccessRate float64 `json:"success_rate"`
		MeanSteps   float64 `json:"mean_steps"`
	} `json:"summary"`
}

func readEval(path string) (evalSummary, error) {
	var s evalSummary
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// evaluate runs `eval` on the test split for a policy (run != "") or the rule agent.
func (x *exp) evaluate(name, data, run string) (evalSummary, StageRecord, error) {
	js := x.path("eval", name+".json")
	if err := os.MkdirAll(filepath.Dir(js), 0o755); err != nil {
		return evalSummary{}, StageRecord{}, fmt.Errorf("experiment: %w", err)
	}
	args := append([]string{"eval"}, x.shopArgs(data)...)
	if run == "" {
		args = append(args, "--agent", "rule")
	} else {
		args = append(args, "--policy", run)
		args = append(args, x.backendArgs()...)
	}
	args = append(args, "--split", "test", "--json", js)
	if x.cfg.EvalFirst > 0 {
		args = append(args, "--first", strconv.Itoa(x.cfg.EvalFirst))
	}
	args = append(args, x.cfg.EvalArgs...)
	rec, err := x.stage("eval-"+name, []string{js}, args...)
	if err != nil {
		return evalSummary{}, rec, err
	}
	s, err := readEval(js)
	if err != nil {
		return s, rec, fmt.Errorf("stage eval-%s: %w", name, err)
	}
	return s, rec, nil
}

// Run runs (or resumes) the experiment and writes results.json, results.md and the
// plots into cfg.Out. A method whose stage fails (an RL command missing from the build,
// say) is reported as skipped with the reason; the shared stages (shop, demonstrations,
// pretraining) failing, or cancellation, end the experiment with an error.
func Run(ctx context.Context, cfg Config, run Runner) (*Results, error) {
	if len(cfg.Methods) == 0 {
		cfg.Methods = slices.Clone(AllMethods)
	}
	if cfg.Preset == "" {
		cfg.Preset = "tiny"
	}
	if cfg.GenKeep <= 0 {
		cfg.GenKeep = 100
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if run == nil {
		return nil, errors.New("experiment: no runner")
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	log := cfg.Log
	if log == nil {
		log = io.Discard
	}
	x := &exp{ctx: ctx, cfg: cfg, run: run, log: log}
	start := time.Now()
	res := &Results{Config: resultConfig(cfg)}

	// The shop.
	data := cfg.Data
	if data == "" {
		data = x.path("shop")
		args := []string{"env", "generate", "--out", data, "--quiet"}
		if cfg.ShopGoals != "" {
			args = append(args, "--goals", cfg.ShopGoals)
		}
		if cfg.Products > 0 {
			args = append(args, "--products", strconv.Itoa(cfg.Products))
		}
		if cfg.GenSeed != 0 {
			args = append(args, "--seed", strconv.FormatInt(cfg.GenSeed, 10))
		}
		if _, err := x.stage("shop", []string{data}, args...); err != nil {
			return nil, err
		}
	}
	res.Config.Data = data

	needIL := false
	for _, m := range cfg.Methods {
		needIL = needIL || m != MethodRule
	}
	needIL = needIL || len(cfg.DemoCounts) > 0
	demos := x.path("demos", "train.parquet")
	pretrain := x.path("runs", "pretrain")
	var pretrainS float64
	if needIL {
		if err := os.MkdirAll(x.path("demos"), 0o755); err != nil {
			return nil, fmt.Errorf("experiment: %w", err)
		}
		args := append([]string{"datasets", "demos"}, x.shopArgs(data)...)
		args = append(args, "--split", "train", "--obs", "text_rich", "--out", demos)
		if cfg.Demos > 0 {
			args = append(args, "--n", strconv.Itoa(cfg.Demos))
		}
		if _, err := x.stage("demos", []string{demos}, args...); err != nil {
			return nil, err
		}
		args = append([]string{"train", "pretrain"}, x.shopArgs(data)...)
		args = append(args, "--preset", cfg.Preset, "--steps", strconv.Itoa(cfg.PretrainSteps), "--out", pretrain, "--no-progress")
		args = append(args, x.backendArgs()...)
		args = append(args, cfg.PretrainArgs...)
		rec, err := x.stage("pretrain", []string{pretrain}, args...)
		if err != nil {
			return nil, err
		}
		pretrainS = rec.ElapsedS
	}

	// trainIL trains one IL run on a demonstration file.
	trainIL := func(name, demoFile string, seed int) (string, StageRecord, error) {
		dir := x.path("runs", name)
		args := append([]string{"train", "il"}, x.shopArgs(data)...)
		args = append(args, "--demos", demoFile, "--init", pretrain, "--steps", strconv.Itoa(cfg.ILSteps),
			"--train-seed", strconv.Itoa(seed), "--out", dir, "--no-progress")
		args = append(args, x.backendArgs()...)
		args = append(args, cfg.ILArgs...)
		rec, err := x.stage(name, []string{dir}, args...)
		return dir, rec, err
	}
	// rlArgs are the contract flags of pg/ppo/dpo.
	rlArgs := func(job, init, dir string, seed int) []string {
		args := []string{"train", job, "--init", init, "--out", dir, "--seed", strconv.Itoa(seed),
			"--time-budget", cfg.Budget.String(), "--data", data}
		if cfg.RLSteps > 0 {
			args = append(args, "--steps", strconv.Itoa(cfg.RLSteps))
		}
		return args
	}

	methods := map[string]*MethodResult{}
	for _, m := range cfg.Methods {
		methods[m] = &MethodResult{Method: m, Label: methodLabels[m]}
		if m == MethodDPOGen {
			methods[m].Label = fmt.Sprintf("IL+DPO (%d generated)", cfg.GenKeep)
		}
	}
	skip := func(m string, seed int, err error) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		mr := methods[m]
		mr.Failures = append(mr.Failures, fmt.Sprintf("seed %d: %v", seed, err))
	}
	thompsonRuns := map[string]string{} // method -> seed 1's model

	if slices.Contains(cfg.Methods, MethodRule) {
		s, rec, err := x.evaluate("rule", data, "")
		if err != nil {
			skip(MethodRule, 1, err)
		} else {
			methods[MethodRule].Seeds = append(methods[MethodRule].Seeds, SeedResult{Seed: 1, Run: "rule",
				Episodes: s.Summary.Episodes, Score: s.Summary.Score, SuccessRate: s.Summary.SuccessRate,
				MeanSteps: s.Summary.MeanSteps, EvalWallS: rec.ElapsedS})
			thompsonRuns[MethodRule] = "rule"
		}
	}
	for seed := 1; seed <= cfg.Seeds && needILMethods(cfg.Methods); seed++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ilName := fmt.Sprintf("il-s%d", seed)
		ilDir, ilRec, ilErr := trainIL(ilName, demos, seed)
		ilWall := pretrainS + ilRec.ElapsedS
		record := func(m, run string, trainS float64) {
			s, rec, err := x.evaluate(fmt.Sprintf("%s-s%d", m, seed), data, run)
			if err != nil {
				skip(m, seed, err)
				return
			}
			methods[m].Seeds = append(methods[m].Seeds, SeedResult{Seed: seed, Run: run,
				Episodes: s.Summary.Episodes, Score: s.Summary.Score, SuccessRate: s.Summary.SuccessRate,
				MeanSteps: s.Summary.MeanSteps, TrainWallS: trainS, EvalWallS: rec.ElapsedS})
			if seed == 1 {
				thompsonRuns[m] = run
			}
		}
		for _, m := range cfg.Methods {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if m == MethodRule {
				continue
			}
			if ilErr != nil {
				skip(m, seed, fmt.Errorf("no IL model: %w", ilErr))
				continue
			}
			if m == MethodIL {
				record(m, ilDir, ilWall)
				continue
			}
			dir := x.path("runs", fmt.Sprintf("%s-s%d", m, seed))
			var args []string
			extraS := 0.0
			switch m {
			case MethodPG, MethodPPO:
				args = rlArgs(m, ilDir, dir, seed)
			case MethodDPO:
				args = append(rlArgs("dpo", ilDir, dir, seed), "--demos", demos)
			case MethodDPOGen:
				gen := x.path("generated", fmt.Sprintf("gen-s%d.parquet", seed))
				if err := os.MkdirAll(filepath.Dir(gen), 0o755); err != nil {
					return nil, fmt.Errorf("experiment: %w", err)
				}
				grec, err := x.stage(fmt.Sprintf("generate-s%d", seed), []string{gen}, "train", "generate",
					"--policy", ilDir, "--out", gen, "--keep", strconv.Itoa(cfg.GenKeep), "--seed", strconv.Itoa(seed),
					"--split", "train", "--data", data)
				if err != nil {
					skip(m, seed, err)
					continue
				}
				extraS = grec.ElapsedS
				args = append(rlArgs("dpo", ilDir, dir, seed), "--demos", gen)
			}
			args = append(args, x.backendArgs()...)
			args = append(args, cfg.RLArgs...)
			rec, err := x.stage(fmt.Sprintf("%s-s%d", m, seed), []string{dir}, args...)
			if err != nil {
				skip(m, seed, err)
				continue
			}
			record(m, dir, ilWall+extraS+rec.ElapsedS)
		}
	}

	// Thompson sampling: one arm per method, seed 1's model.
	if cfg.Episodes > 0 {
		var arms []string
		for _, m := range cfg.Methods {
			if r, ok := thompsonRuns[m]; ok {
				arms = append(arms, m+"="+r)
			}
		}
		if len(arms) > 0 {
			dir := x.path("thompson")
			args := append([]string{"abtest"}, x.shopArgs(data)...)
			args = append(args, "--arms", strings.Join(arms, ","), "--episodes", strconv.Itoa(cfg.Episodes),
				"--runs", strconv.Itoa(cfg.Runs), "--split", "test", "--min-share", strconv.FormatFloat(cfg.MinShare, 'g', -1, 64),
				"--bandit-seed", "1", "--out", dir)
			if cfg.EvalFirst > 0 {
				args = append(args, "--first", strconv.Itoa(cfg.EvalFirst))
			}
			args = append(args, x.backendArgs()...)
			if _, err := x.stage("thompson", []string{dir}, args...); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				res.ThompsonError = err.Error()
			} else if err := res.readThompson(dir, methods); err != nil {
				res.ThompsonError = err.Error()
			}
		}
	}

	// Data efficiency: IL (seed 1) against the number of demonstrations.
	for _, n := range cfg.DemoCounts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := DataPoint{Demos: n}
		file := x.path("demos", fmt.Sprintf("train-n%d.parquet", n))
		args := append([]string{"datasets", "demos"}, x.shopArgs(data)...)
		args = append(args, "--split", "train", "--obs", "text_rich", "--n", strconv.Itoa(n), "--out", file)
		_, err := x.stage(fmt.Sprintf("demos-n%d", n), []string{file}, args...)
		var dir string
		var rec StageRecord
		if err == nil {
			dir, rec, err = trainIL(fmt.Sprintf("il-n%d", n), file, 1)
		}
		var s evalSummary
		if err == nil {
			s, _, err = x.evaluate(fmt.Sprintf("il-n%d", n), data, dir)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			p.Error = err.Error()
		} else {
			p.Score, p.SuccessRate, p.MeanSteps, p.TrainWallS = s.Summary.Score, s.Summary.SuccessRate, s.Summary.MeanSteps, pretrainS+rec.ElapsedS
		}
		res.DataEfficiency = append(res.DataEfficiency, p)
	}

	for _, m := range cfg.Methods {
		mr := methods[m]
		mr.finish()
		res.Methods = append(res.Methods, *mr)
	}
	res.Stages = x.stages
	res.ElapsedS = time.Since(start).Seconds()
	if err := res.Write(cfg.Out); err != nil {
		return res, err
	}
	return res, nil
}

func needILMethods(ms []string) bool {
	for _, m := range ms {
		if m != MethodRule {
			return true
		}
	}
	return false
}
