package models

import (
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"shopagent/features"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

var policyBackendOnce struct {
	sync.Once
	b   backends.Backend
	err error
}

func policyTestBackend(t *testing.T) backends.Backend {
	t.Helper()
	policyBackendOnce.Do(func() { policyBackendOnce.b, policyBackendOnce.err = NewBackend("go") })
	if policyBackendOnce.err != nil {
		t.Fatal(policyBackendOnce.err)
	}
	return policyBackendOnce.b
}

// testTokenizer is a small vocabulary for the tests.
func policyTestTokenizer(t *testing.T) *features.Tokenizer {
	t.Helper()
	words := strings.Fields("red blue green shoes shirt size small large buy now back to search item - instruction : i want price $ 1 2 3 4 5 6 7 8 9 0 . next > < prev description features")
	vocab := append(features.SpecialTokens()[:5], words...)
	tok, err := features.NewTokenizer(vocab)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// testPolicyConfig is the tiny preset with short lengths and no dropout.
func policyTestConfig(t *testing.T, vocab int) features.PolicyConfig {
	t.Helper()
	cfg, err := features.NewPolicyConfig("tiny", vocab, 32, 8)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Bert.Dropout = 0
	cfg.Bert.MaxPositions = 32
	cfg.ObsMode = "text_rich"
	return cfg
}

// policyForward runs PolicyGraph on a batch and returns logits [B*A] and values [B].
func policyForward(t *testing.T, ctx *context.Context, cfg features.PolicyConfig, pb *features.PolicyBatch) ([]float32, []float32) {
	t.Helper()
	exec, err := context.NewExec(policyTestBackend(t), ctx, func(ctx *context.Context, in []*graph.Node) []*graph.Node {
		l, v := PolicyGraph(ctx, cfg, PolicyInputsFrom(in), false)
		return []*graph.Node{l, ChoiceLogProbs(l), v}
	})
	if err != nil {
		t.Fatal(err)
	}
	var args []any
	for _, x := range BatchTensors(pb) {
		args = append(args, x)
	}
	out, err := exec.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0].Shape().Dimensions; len(got) != 2 || got[0] != pb.B || got[1] != pb.A {
		t.Fatalf("logits shape %v, want [%d %d]", got, pb.B, pb.A)
	}
	if got := out[2].Shape().Dimensions; len(got) != 1 || got[0] != pb.B {
		t.Fatalf("value shape %v, want [%d]", got, pb.B)
	}
	logp := tensors.MustCopyFlatData[float32](out[1])
	for b := 0; b < pb.B; b++ {
		var sum float64
		for a := 0; a < pb.A; a++ {
			p := math.Exp(float64(logp[b*pb.A+a]))
			if pb.ActionValid[b*pb.A+a] == 0 && b < pb.Real && p > 1e-6 {
				t.Errorf("padded action %d of state %d has probability %g", a, b, p)
			}
			sum += p
		}
		if b < pb.Real && math.Abs(sum-1) > 1e-4 {
			t.Errorf("state %d: probabilities sum to %g", b, sum)
		}
	}
	return tensors.MustCopyFlatData[float32](out[0]), tensors.MustCopyFlatData[float32](out[2])
}

func policyTestExamples() []features.ChoiceExample {
	return []features.ChoiceExample{
		{Instruction: "i want red shoes", State: "back to search next >", Actions: []string{"back to search", "item - red shoes - $ 5", "item - blue shirt"}, Target: 1},
		{Instruction: "i want a large blue shirt", State: "size small large buy now", Actions: []string{"buy now", "small", "large"}, Target: 2},
		{Instruction: "i want green", State: "", Actions: []string{"next >", "< prev", "description", "features", "item - green shoes", "buy now"}, Target: 4},
	}
}

func TestPolicyGraphShapesAndMasking(t *testing.T) {
	tok := policyTestTokenizer(t)
	cfg := policyTestConfig(t, tok.VocabSize())
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(3))
	var enc []features.EncodedChoice
	for _, ex := range policyTestExamples() {
		enc = append(enc, features.EncodeChoice(tok, cfg, ex))
	}
	pb, err := features.NewPolicyBatch(enc, features.DefaultBuckets(cfg), 4) // one padding state, A = 6
	if err != nil {
		t.Fatal(err)
	}
	logits, _ := policyForward(t, ctx, cfg, pb)
	for b := 0; b < pb.Real; b++ {
		for a := 0; a < pb.A; a++ {
			if pb.ActionValid[b*pb.A+a] == 0 && logits[b*pb.A+a] > -1e8 {
				t.Errorf("padded slot (%d,%d) has logit %g", b, a, logits[b*pb.A+a])
			}
		}
	}

	// Padding invariance: the first state alone (A = 4, shorter padding) gets the same
	// logits for its actions.
	alone, err := features.NewPolicyBatch(enc[:1], features.DefaultBuckets(cfg), 0)
	if err != nil {
		t.Fatal(err)
	}
	l1, _ := policyForward(t, ctx, cfg, alone)
	for a := range enc[0].Actions {
		if d := math.Abs(float64(l1[a] - logits[a])); d > 1e-4 {
			t.Errorf("action %d: logit %g alone, %g in a padded batch", a, l1[a], logits[a])
		}
	}
}

func TestPolicyCheckpointScoreAndChunks(t *testing.T) {
	tok := policyTestTokenizer(t)
	cfg := policyTestConfig(t, tok.VocabSize())
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(5))
	var enc []features.EncodedChoice
	for _, ex := range policyTestExamples() {
		enc = append(enc, features.EncodeChoice(tok, cfg, ex))
	}
	pb, _ := features.NewPolicyBatch(enc, features.DefaultBuckets(cfg), 0)
	policyForward(t, ctx, cfg, pb) // creates and initialises the variables
	dir := filepath.Join(t.TempDir(), "run", CheckpointsDir, CheckpointDirName(7))
	if err := SaveCheckpoint(dir, CheckpointMeta{Job: "il", Step: 7, Policy: cfg}, ctx, tok, false); err != nil {
		t.Fatal(err)
	}
	pol, err := LoadPolicy(policyTestBackend(t), filepath.Dir(filepath.Dir(dir))) // the run directory
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	if pol.Meta.Step != 7 || pol.Config.ObsMode != "text_rich" {
		t.Fatalf("meta %+v", pol.Meta)
	}
	// 40 actions: scored in two chunks; each action's logit does not depend on the others.
	var many []string
	for i := 0; i < 40; i++ {
		many = append(many, []string{"red", "blue", "green shoes", "small", "large", "buy now", "item - red shirt"}[i%7]+" "+string(rune('1'+i%9)))
	}
	big := features.ChoiceExample{Instruction: "i want red shoes size 5", State: "size 5 6 7", Actions: many}
	small := features.ChoiceExample{Instruction: big.Instruction, State: big.State, Actions: many[:10]}
	scores, err := pol.Score([]features.ChoiceExample{big, small, policyTestExamples()[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(scores) != 3 || len(scores[0].Logits) != 40 || len(scores[1].Logits) != 10 {
		t.Fatalf("scores %d / %d / %d", len(scores), len(scores[0].Logits), len(scores[1].Logits))
	}
	var sum float64
	for _, lp := range scores[0].LogProbs {
		sum += math.Exp(lp)
	}
	if math.Abs(sum-1) > 1e-6 {
		t.Fatalf("chunked probabilities sum to %g", sum)
	}
	for i := 0; i < 10; i++ {
		if d := math.Abs(scores[0].Logits[i] - scores[1].Logits[i]); d > 1e-4 {
			t.Fatalf("action %d: logit %g in 40 actions, %g in 10", i, scores[0].Logits[i], scores[1].Logits[i])
		}
	}
	if b := scores[2].Best(); b < 0 || b >= 3 {
		t.Fatalf("best %d", b)
	}

	// A checkpoint without the choice head (pretraining) is refused with a clear error.
	pre := filepath.Join(t.TempDir(), "pre")
	model := map[string]*tensors.Tensor{}
	ck, _ := LoadCheckpoint(dir, false)
	for k, v := range ck.Model {
		if strings.HasPrefix(k, EncoderScope+"/") {
			model[k] = v
		}
	}
	if err := WriteCheckpoint(pre, CheckpointMeta{Job: "pretrain", Step: 1, Policy: cfg}, model, nil, tok); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPolicy(policyTestBackend(t), pre); err == nil || !strings.Contains(err.Error(), "not a choice policy") {
		t.Fatalf("pretraining checkpoint as policy: %v", err)
	}
}
