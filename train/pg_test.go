package train

import (
	stdctx "context"
	"math"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"shopagent/features"
	"shopagent/models"
)

func TestPGLossByHand(t *testing.T) {
	// Two states: [1, 0, pad] with action 0, advantage 0.5, value 0.2, return 1; a padded
	// second row (valid 0) that must not count.
	logits := tensors.FromValue([][]float32{{1, 0, -1e9}, {3, 1, 2}})
	values := tensors.FromValue([]float32{0.2, 9})
	actions := tensors.FromValue([]int32{0, 1})
	valid := tensors.FromValue([]float32{1, 0})
	adv := tensors.FromValue([]float32{0.5, 7})
	ret := tensors.FromValue([]float32{1, -3})
	hp := PGConfig{ValueCoef: 0.5, EntropyCoef: 0.1}
	got := evalLoss(t, func(in []*graph.Node) []*graph.Node {
		loss, m := PGLoss(in[0], in[1], in[2], in[3], in[4], in[5], hp)
		return append([]*graph.Node{loss}, m...)
	}, logits, values, actions, valid, adv, ret)
	lp := logSoftmax2(1, 0)
	pg := -0.5 * lp[0]
	vl := (0.2 - 1) * (0.2 - 1)
	ent := -(math.Exp(lp[0])*lp[0] + math.Exp(lp[1])*lp[1])
	want := []float64{pg + 0.5*vl - 0.1*ent, pg, vl, ent}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-5 {
			t.Fatalf("PG loss terms %v, want %v", got, want)
		}
	}
}

func TestPGTrainsEndToEnd(t *testing.T) {
	shop := smallShop(t)
	goals, _ := shop.SplitGoals("train")
	dir := t.TempDir()
	cfg, ck := rlTestConfig(t, dir, 2)
	hp := DefaultPGConfig()
	hp.EpisodesPerStep = 2
	hp.ILCoef = 0.5
	_, demos := tinyIL(t)
	data, err := LoadILData(demos, 0)
	if err != nil {
		t.Fatal(err)
	}
	enc := make([]features.EncodedChoice, len(data.Examples))
	for i, ex := range data.Examples {
		enc[i] = features.EncodeChoice(ck.Tokenizer, ck.Meta.Policy, ex)
	}
	il, err := NewILJob(ck.Meta.Policy, enc, 4, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	job, err := NewPGJob(ck.Meta.Policy, ck.Tokenizer, shop, goals, hp, RolloutConfig{SearchChoice: true}, il, 5)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(stdctx.Background(), cfg, job)
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != 2 || filepath.Base(res.Checkpoint) != models.CheckpointDirName(2) {
		t.Fatalf("result %+v", res)
	}
	rows, err := ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil || len(rows) != 2 {
		t.Fatalf("metrics %v %d", err, len(rows))
	}
	for _, k := range []string{"pg_loss", "value_loss", "entropy", "il_loss", "rollout_reward", "rollout_success", "rollout_states"} {
		if _, ok := rows[1].Extra[k]; !ok {
			t.Fatalf("metric %s missing: %v", k, rows[1].Extra)
		}
	}
	// The run is a policy like IL's: same observation mode, loadable for evaluation.
	pol, err := models.LoadPolicy(trainTestBackend(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	if pol.Meta.Job != PGJobName || pol.Config.ObsMode != ck.Meta.Policy.ObsMode {
		t.Fatalf("checkpoint meta %+v", pol.Meta)
	}
	if _, err := NewPGJob(ck.Meta.Policy, ck.Tokenizer, shop, goals, PGConfig{EpisodesPerStep: 0, Gamma: 0.9}, RolloutConfig{}, nil, 1); err == nil {
		t.Fatal("zero episodes accepted")
	}
}
