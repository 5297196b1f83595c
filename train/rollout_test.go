package train

import (
	stdctx "context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"shopagent/agent"
	"shopagent/datasets"
	"shopagent/env"
	"shopagent/features"
	"shopagent/models"
)

var tinyILOnce struct {
	sync.Once
	dir, demos string
	err        error
}

// tinyIL trains a tiny imitation policy on the small shop once for the package's RL tests
// and returns its run directory and the demonstrations file.
func tinyIL(t *testing.T) (string, string) {
	t.Helper()
	shop := smallShop(t)
	tinyILOnce.Do(func() {
		t0 := time.Now()
		dir, err := os.MkdirTemp("", "rl-il")
		if err != nil {
			tinyILOnce.err = err
			return
		}
		goals, _ := shop.SplitGoals("train")
		r, _ := shop.Splits.Split("train")
		demos := filepath.Join(dir, "demos.parquet")
		if _, err := datasets.WriteDemos(shop, datasets.DemoConfig{Goals: goals[:40], GoalOffset: r[0], Seed: 1,
			Env: env.Config{Mode: env.ObsTextRich}}, demos); err != nil {
			tinyILOnce.err = err
			return
		}
		data, err := LoadILData(demos, 0)
		if err != nil {
			tinyILOnce.err = err
			return
		}
		var docs []string
		for _, ex := range data.Examples {
			docs = append(docs, ex.Instruction, ex.State)
			docs = append(docs, ex.Actions...)
		}
		tok, err := BuildCorpusVocab(docs, 1500)
		if err != nil {
			tinyILOnce.err = err
			return
		}
		cfg, err := features.NewPolicyConfig("tiny", tok.VocabSize(), 96, 16)
		if err != nil {
			tinyILOnce.err = err
			return
		}
		cfg.ObsMode = data.ObsMode
		enc := make([]features.EncodedChoice, len(data.Examples))
		for i, ex := range data.Examples {
			enc[i] = features.EncodeChoice(tok, cfg, ex)
		}
		job, err := NewILJob(cfg, enc, 8, 0, 1)
		if err != nil {
			tinyILOnce.err = err
			return
		}
		be, err := models.NewBackend("go")
		if err != nil {
			tinyILOnce.err = err
			return
		}
		run := filepath.Join(dir, "il")
		_, err = Run(stdctx.Background(), Config{RunDir: run, Steps: 10, Schedule: Schedule{Peak: 2e-3, Warmup: 2},
			Optimizer: OptimizerConfig{ClipNorm: 1}, Seed: 1, Policy: cfg, Tokenizer: tok, Backend: be}, job)
		tinyILOnce.dir, tinyILOnce.demos, tinyILOnce.err = run, demos, err
		t.Logf("tiny IL policy built in %s", time.Since(t0))
	})
	if tinyILOnce.err != nil {
		t.Fatal(tinyILOnce.err)
	}
	return tinyILOnce.dir, tinyILOnce.demos
}

// rlTestConfig is a training configuration that starts from the tiny IL policy.
func rlTestConfig(t *testing.T, dir string, steps int64) (Config, *models.Checkpoint) {
	t.Helper()
	il, _ := tinyIL(t)
	ck, err := models.LoadCheckpoint(il, false)
	if err != nil {
		t.Fatal(err)
	}
	return Config{RunDir: dir, Steps: steps, Schedule: Schedule{Peak: 1e-3, Decay: DecayConstant},
		Optimizer: OptimizerConfig{ClipNorm: 10}, CheckpointEvery: 2, Seed: 3, Policy: ck.Meta.Policy,
		Tokenizer: ck.Tokenizer, Backend: trainTestBackend(t),
		Init: func(c *context.Context) error { _, err := ck.LoadInto(c, models.PolicyScope+"/"); return err }}, ck
}

func TestDiscountedReturnsAndGAE(t *testing.T) {
	// Reward 1 at the last of three steps, gamma 0.9: 0.81, 0.9, 1.
	got := DiscountedReturns([]float64{0, 0, 1}, 0, 0.9)
	want := []float64{0.81, 0.9, 1}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("returns %v, want %v", got, want)
		}
	}
	// Cut by the step cap: bootstrapped from V(s_T) = 0.5: 0.9^2*0.5, 0.9*0.5+... .
	got = DiscountedReturns([]float64{0, 0.2}, 0.5, 0.9)
	if math.Abs(got[1]-(0.2+0.45)) > 1e-12 || math.Abs(got[0]-0.9*0.65) > 1e-12 {
		t.Fatalf("bootstrapped returns %v", got)
	}
	// GAE with lambda 1 is R - V.
	r, v := []float64{0, 0, 1}, []float64{0.3, 0.5, 0.7}
	adv := GAE(r, v, 0, 0.9, 1)
	for i := range adv {
		if math.Abs(adv[i]-(want[i]-v[i])) > 1e-12 {
			t.Fatalf("GAE(1) %v", adv)
		}
	}
	// Lambda 0.5 by hand: deltas 0+0.45-0.3=0.15, 0+0.63-0.5=0.13, 1-0.7=0.3;
	// A2 = 0.3, A1 = 0.13 + 0.45*0.3 = 0.265, A0 = 0.15 + 0.45*0.265 = 0.26925.
	adv = GAE(r, v, 0, 0.9, 0.5)
	for i, w := range []float64{0.26925, 0.265, 0.3} {
		if math.Abs(adv[i]-w) > 1e-12 {
			t.Fatalf("GAE(0.5) %v", adv)
		}
	}
	// Unscored steps fold their reward into the next scored one.
	ep := RolloutEpisode{Steps: []RolloutStep{{Value: math.NaN()}, {Value: 0.1}, {Value: 0.2, Reward: 1}}}
	steps, rw, vals := scoredSteps(ep)
	if len(steps) != 2 || rw[1] != 1 || vals[0] != 0.1 {
		t.Fatalf("scored steps %v %v", rw, vals)
	}
}

func TestCollectRolloutsRecordsChoices(t *testing.T) {
	shop := smallShop(t)
	goals, _ := shop.SplitGoals("train")
	sc := &prefScorer{prefer: []string{"buy now", "item - "}}
	ref := &prefScorer{prefer: []string{"item - "}}
	b, err := CollectRollouts(shop, goals, []int{0, 1, 2, 3}, sc, ref, RolloutConfig{SearchChoice: true}, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Episodes) != 4 || b.Summary.Episodes != 4 {
		t.Fatalf("%d episodes", len(b.Episodes))
	}
	for _, ep := range b.Episodes {
		if len(ep.Steps) != ep.Episode.Steps {
			t.Fatalf("%d records for %d steps", len(ep.Steps), ep.Episode.Steps)
		}
		first := ep.Steps[0]
		if !first.Search || !first.Trainable || len(first.Example.Actions) < 2 || !strings.HasPrefix(first.Example.Actions[first.Action], "search[") {
			t.Fatalf("search step %+v", first)
		}
		last := ep.Steps[len(ep.Steps)-1]
		if last.Reward != ep.Episode.Reward {
			t.Fatalf("last reward %g, episode %g", last.Reward, ep.Episode.Reward)
		}
		for k, s := range ep.Steps {
			if k < len(ep.Steps)-1 && s.Reward != 0 {
				t.Fatalf("reward before the end: %+v", s)
			}
			if s.Action >= 0 {
				var sum float64
				for _, lp := range s.LogProbs {
					sum += math.Exp(lp)
				}
				if math.Abs(sum-1) > 1e-9 || s.LogProb != s.LogProbs[s.Action] || s.Value != 0.5 || len(s.RefLogProbs) != len(s.LogProbs) {
					t.Fatalf("step %+v", s)
				}
			}
		}
	}
	// Without the search choice the proposer's first query is used and not trained.
	b, err = CollectRollouts(shop, goals, []int{5}, sc, nil, RolloutConfig{Greedy: true}, 1)
	if err != nil {
		t.Fatal(err)
	}
	s0 := b.Episodes[0].Steps[0]
	if s0.Trainable || s0.Action != -1 || !math.IsNaN(s0.Value) {
		t.Fatalf("fixed search %+v", s0)
	}
	if _, err := CollectRollouts(shop, goals, []int{len(goals)}, sc, nil, RolloutConfig{}, 1); err == nil {
		t.Fatal("goal out of range accepted")
	}
	qs := agent.SearchCandidates(features.KeywordQuery{}, "I want red shoes, and price lower than 40.00 dollars")
	if qs[len(qs)-1] != "i want red shoes, and price lower than 40.00 dollars" {
		t.Fatalf("candidates %q", qs)
	}
}

// evalLoss runs a loss function on constant inputs and returns its outputs as float64.
func evalLoss(t *testing.T, fn func(in []*graph.Node) []*graph.Node, in ...*tensors.Tensor) []float64 {
	t.Helper()
	exec, err := graph.NewExec(trainTestBackend(t), func(ins []*graph.Node) []*graph.Node { return fn(ins) })
	if err != nil {
		t.Fatal(err)
	}
	args := make([]any, len(in))
	for i, x := range in {
		args[i] = x
	}
	outs, err := exec.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	res := make([]float64, len(outs))
	for i, o := range outs {
		res[i] = float64(tensors.ToScalar[float32](o))
	}
	return res
}

// logSoftmax2 returns the log-softmax of a row.
func logSoftmax2(xs ...float64) []float64 { return features.LogSoftmax(xs) }
