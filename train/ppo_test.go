package train

import (
	stdctx "context"
	"math"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"shopagent/models"
)

func TestPPOLossByHand(t *testing.T) {
	// Three states over two actions, logits [0, 0]: pi(a) = 0.5 for every action.
	//   row 0: old log-prob log(0.25) -> ratio 2 > 1+eps, advantage +1: clipped to 1.2;
	//   row 1: old log-prob log(1) -> ratio 0.5 < 1-eps, advantage -1: min(-0.5, -0.8) = -0.8;
	//   row 2: old log-prob log(0.5) -> ratio 1, advantage 2: 2 (inside the range).
	logits := tensors.FromValue([][]float32{{0, 0}, {0, 0}, {0, 0}})
	values := tensors.FromValue([]float32{0, 1, 0.5})
	actions := tensors.FromValue([]int32{0, 1, 0})
	valid := tensors.FromValue([]float32{1, 1, 1})
	old := tensors.FromValue([]float32{float32(math.Log(0.25)), 0, float32(math.Log(0.5))})
	adv := tensors.FromValue([]float32{1, -1, 2})
	ret := tensors.FromValue([]float32{1, 1, 0.5})
	// Reference: [0.8, 0.2] everywhere: KL(pi||ref) = 0.5 log(0.5/0.8) + 0.5 log(0.5/0.2).
	lr8, lr2 := float32(math.Log(0.8)), float32(math.Log(0.2))
	ref := tensors.FromValue([][]float32{{lr8, lr2}, {lr8, lr2}, {lr8, lr2}})
	hp := PPOConfig{Epsilon: 0.2, ValueCoef: 0.5, EntropyCoef: 0.01, KLCoef: 0.1}
	got := evalLoss(t, func(in []*graph.Node) []*graph.Node {
		loss, m := PPOLoss(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], hp)
		return append([]*graph.Node{loss}, m...)
	}, logits, values, actions, valid, old, adv, ret, ref)
	clip := -(1.2 - 0.8 + 2) / 3
	vl := (1.0 + 0 + 0) / 3
	ent := math.Log(2)
	kl := 0.5*math.Log(0.5/0.8) + 0.5*math.Log(0.5/0.2)
	approx := (math.Log(0.25) - math.Log(0.5) + 0 - math.Log(0.5) + 0) / 3
	want := []float64{clip + 0.5*vl - 0.01*ent + 0.1*kl, clip, vl, ent, kl, 2.0 / 3, approx}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-5 {
			t.Fatalf("PPO terms %v, want %v", got, want)
		}
	}
	// With the KL in the rewards the loss has no KL term (kl_ref is still reported).
	hp.KLInReward = true
	got = evalLoss(t, func(in []*graph.Node) []*graph.Node {
		loss, m := PPOLoss(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], hp)
		return append([]*graph.Node{loss}, m...)
	}, logits, values, actions, valid, old, adv, ret, ref)
	if math.Abs(got[0]-(clip+0.5*vl-0.01*ent)) > 1e-5 || math.Abs(got[4]-kl) > 1e-5 {
		t.Fatalf("KL in reward: loss %g (want %g), kl_ref %g (want %g)", got[0], clip+0.5*vl-0.01*ent, got[4], kl)
	}
	// The clipped side has no gradient: with only row 0 (ratio 2 > 1.2, A > 0), the
	// surrogate's gradient with respect to the logits is 0.
	g := evalGrad(t, func(l *graph.Node, in []*graph.Node) *graph.Node {
		loss, _ := PPOLoss(l, in[0], in[1], in[2], in[3], in[4], in[5], in[6], PPOConfig{Epsilon: 0.2})
		return loss
	}, tensors.FromValue([][]float32{{0, 0}}), tensors.FromValue([]float32{0}), tensors.FromValue([]int32{0}),
		tensors.FromValue([]float32{1}), tensors.FromValue([]float32{float32(math.Log(0.25))}), tensors.FromValue([]float32{1}),
		tensors.FromValue([]float32{0}), tensors.FromValue([][]float32{{0, 0}}))
	if math.Abs(g[0])+math.Abs(g[1]) > 1e-7 {
		t.Fatalf("gradient through the clipped side: %v", g)
	}
	// Advantage normalisation.
	rows := []rlRow{{adv: 1}, {adv: 3}}
	NormalizeAdvantages(rows)
	if rows[0].adv != -1 || rows[1].adv != 1 {
		t.Fatalf("normalised %v", rows)
	}
}

// evalGrad returns the gradient of fn's scalar output with respect to its first input.
func evalGrad(t *testing.T, fn func(x *graph.Node, in []*graph.Node) *graph.Node, x *tensors.Tensor, in ...*tensors.Tensor) []float64 {
	t.Helper()
	exec, err := graph.NewExec(trainTestBackend(t), func(ins []*graph.Node) *graph.Node {
		return graph.Gradient(fn(ins[0], ins[1:]), ins[0])[0]
	})
	if err != nil {
		t.Fatal(err)
	}
	args := []any{x}
	for _, a := range in {
		args = append(args, a)
	}
	outs, err := exec.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	flat := tensors.MustCopyFlatData[float32](outs[0])
	res := make([]float64, len(flat))
	for i, v := range flat {
		res[i] = float64(v)
	}
	return res
}

// KLRewardPenalty moves beta (log pi_old - log pi_ref) of the action taken into each
// scored step's reward.
func TestKLRewardPenalty(t *testing.T) {
	l := math.Log
	b := &RolloutBatch{Episodes: []RolloutEpisode{{Steps: []RolloutStep{
		{Action: 1, LogProb: l(0.5), RefLogProbs: []float64{l(0.75), l(0.25)}, Value: 0.1},          // log 2 more likely than the reference
		{Action: -1, Value: math.NaN(), Reward: 0},                                                  // a fixed search: untouched
		{Action: 0, LogProb: l(0.5), RefLogProbs: []float64{l(0.5), l(0.5)}, Value: 0.2, Reward: 1}, // same as the reference
	}}}}
	mean := KLRewardPenalty(b, 0.1)
	steps := b.Episodes[0].Steps
	if math.Abs(steps[0].Reward-(-0.1*l(2))) > 1e-12 || steps[1].Reward != 0 || math.Abs(steps[2].Reward-1) > 1e-12 {
		t.Fatalf("rewards %v %v %v", steps[0].Reward, steps[1].Reward, steps[2].Reward)
	}
	if math.Abs(mean-0.1*l(2)/2) > 1e-12 {
		t.Fatalf("mean penalty %g", mean)
	}
}

func TestPPOTrainsAndResumes(t *testing.T) {
	shop := smallShop(t)
	goals, _ := shop.SplitGoals("train")
	il, _ := tinyIL(t)
	ref, err := models.LoadPolicy(trainTestBackend(t), il)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	hp := DefaultPPOConfig()
	hp.Epochs, hp.Minibatches, hp.EpisodesPerRollout = 1, 2, 2
	dir := t.TempDir()
	newJob := func() *PPOJob {
		_, ck := rlTestConfig(t, dir, 1)
		j, err := NewPPOJob(ck.Meta.Policy, ck.Tokenizer, shop, goals, hp, RolloutConfig{SearchChoice: true}, ref, 9)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	// Two updates (one rollout), then resumed to four (a second rollout).
	cfg, _ := rlTestConfig(t, dir, 2)
	res, err := Run(stdctx.Background(), cfg, newJob())
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != 2 {
		t.Fatalf("first run reached step %d", res.Step)
	}
	cfg, _ = rlTestConfig(t, dir, 4)
	cfg.Resume = true
	res, err = Run(stdctx.Background(), cfg, newJob())
	if err != nil {
		t.Fatal(err)
	}
	if res.StartStep != 2 || res.Step != 4 || filepath.Base(res.Checkpoint) != models.CheckpointDirName(4) {
		t.Fatalf("resumed run %+v", res)
	}
	rows, err := ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil || len(rows) != 4 {
		t.Fatalf("metrics %v, %d rows", err, len(rows))
	}
	// The first minibatch of a rollout is on-policy (no dropout): ratio 1, KL to the
	// reference 0 at step 1, nothing clipped.
	if kl := rows[0].Extra["kl_ref"]; math.Abs(kl) > 1e-4 {
		t.Fatalf("KL at the first step %g", kl)
	}
	if cf := rows[0].Extra["clip_frac"]; cf != 0 {
		t.Fatalf("clip fraction at the first step %g", cf)
	}
	for _, k := range []string{"clip_loss", "value_loss", "entropy", "approx_kl", "rollout_reward", "rollout_success"} {
		if _, ok := rows[3].Extra[k]; !ok {
			t.Fatalf("metric %s missing: %v", k, rows[3].Extra)
		}
	}
	// A time budget stops the run cleanly with a checkpoint.
	cfg, _ = rlTestConfig(t, dir, 100)
	cfg.Resume, cfg.TimeBudget = true, 1
	res, err = Run(stdctx.Background(), cfg, newJob())
	if err != nil || !res.BudgetReached || res.Step != 4 {
		t.Fatalf("time budget: %+v %v", res, err)
	}
}
