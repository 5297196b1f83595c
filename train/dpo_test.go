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

func TestDPOLossByHand(t *testing.T) {
	// State 0: policy logits [1, 0, 0], reference log-probs [log .5, log .25, log .25],
	// chosen 0, rejected 1. State 1: rejected 1 and 2 (the "all" mode), chosen 0.
	lp := logSoftmax2(1, 0, 0)
	ref := []float64{math.Log(0.5), math.Log(0.25), math.Log(0.25)}
	f32 := func(xs []float64) []float32 {
		out := make([]float32, len(xs))
		for i, x := range xs {
			out[i] = float32(x)
		}
		return out
	}
	logits := tensors.FromValue([][]float32{{1, 0, 0}, {1, 0, 0}})
	chosen := tensors.FromValue([]int32{0, 0})
	rej := tensors.FromValue([][]float32{{0, 1, 0}, {0, 1, 1}})
	refT := tensors.FromValue([][]float32{f32(ref), f32(ref)})
	beta := 0.5
	got := evalLoss(t, func(in []*graph.Node) []*graph.Node {
		loss, m := DPOLoss(in[0], in[1], in[2], in[3], beta)
		return append([]*graph.Node{loss}, m...)
	}, logits, chosen, rej, refT)
	margin := beta * ((lp[0] - ref[0]) - (lp[1] - ref[1])) // the same for all three pairs
	nll := -math.Log(1 / (1 + math.Exp(-margin)))
	want := []float64{nll, 1, margin, beta * (lp[0] - ref[0])}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-5 {
			t.Fatalf("DPO terms %v, want %v", got, want)
		}
	}
	// Policy = reference: margin 0, loss log 2.
	got = evalLoss(t, func(in []*graph.Node) []*graph.Node {
		loss, _ := DPOLoss(in[0], in[1], in[2], in[3], beta)
		return []*graph.Node{loss}
	}, tensors.FromValue([][]float32{f32(ref)}), tensors.FromValue([]int32{0}), tensors.FromValue([][]float32{{0, 1, 0}}),
		tensors.FromValue([][]float32{f32(ref)}))
	if math.Abs(got[0]-math.Ln2) > 1e-6 {
		t.Fatalf("loss at the reference %g, want log 2", got[0])
	}
	// Gradient sign: descending the loss raises the chosen logit and lowers the rejected.
	g := evalGrad(t, func(l *graph.Node, in []*graph.Node) *graph.Node {
		loss, _ := DPOLoss(l, in[0], in[1], in[2], beta)
		return loss
	}, tensors.FromValue([][]float32{{1, 0, 0}}), tensors.FromValue([]int32{0}), tensors.FromValue([][]float32{{0, 1, 0}}),
		tensors.FromValue([][]float32{f32(ref)}))
	if !(g[0] < 0 && g[1] > 0) || math.Abs(g[2]) > 1e-7 {
		t.Fatalf("gradient %v: want negative for the chosen, positive for the rejected, 0 for the other", g)
	}
}

func TestDPOTrainsEndToEnd(t *testing.T) {
	il, demos := tinyIL(t)
	ref, err := models.LoadPolicy(trainTestBackend(t), il)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	data, err := LoadILData(demos, 0)
	if err != nil {
		t.Fatal(err)
	}
	exs := data.Examples[:min(48, len(data.Examples))]
	if _, err := BuildDPOData(exs, ref, ref.Tokenizer, ref.Config, "worst"); err == nil {
		t.Fatal("unknown rejected mode accepted")
	}
	all, err := BuildDPOData(exs, ref, ref.Tokenizer, ref.Config, RejectedAll)
	if err != nil {
		t.Fatal(err)
	}
	pairs := 0
	for _, ex := range exs {
		pairs += len(ex.Actions) - 1
	}
	if all.Pairs != pairs || len(all.States) != len(exs) {
		t.Fatalf("rejected all: %d pairs in %d states, want %d in %d", all.Pairs, len(all.States), pairs, len(exs))
	}
	d, err := BuildDPOData(exs, ref, ref.Tokenizer, ref.Config, RejectedReference)
	if err != nil {
		t.Fatal(err)
	}
	if d.Pairs != len(d.States) || d.Agree+len(d.States) != len(exs) {
		t.Fatalf("rejected reference: %+v", d)
	}
	for i, s := range d.States {
		if d.Rejected[i][0] == s.Target {
			t.Fatal("rejected the chosen action")
		}
	}
	dir := t.TempDir()
	cfg, ck := rlTestConfig(t, dir, 3)
	hp := DefaultDPOConfig()
	hp.Batch = 8
	job, err := NewDPOJob(ck.Meta.Policy, d, hp, 2)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(stdctx.Background(), cfg, job)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil || len(rows) != 3 || res.Step != 3 {
		t.Fatalf("metrics %v %d rows, step %d", err, len(rows), res.Step)
	}
	// Step 1 starts at the reference: loss log 2, margins 0.
	if math.Abs(rows[0].Loss-math.Ln2) > 1e-3 || math.Abs(rows[0].Extra["dpo_margin"]) > 1e-3 {
		t.Fatalf("first step %+v", rows[0])
	}
	if !(rows[2].Loss < rows[0].Loss) {
		t.Fatalf("DPO loss did not fall: %g -> %g", rows[0].Loss, rows[2].Loss)
	}
}
