package models

import (
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"shopagent/features"
)

// webShopHeadVariables are the variables of WebShop's BertModelForWebshop beyond the
// encoder, by their names here (attn.*, linear_1, linear_2 and linear_3, the value head),
// with their shapes for hidden size h.
func webShopHeadVariables(h int) map[string][]int {
	return map[string][]int{
		"policy/choice/attention/input_linear/weight":  {h},
		"policy/choice/attention/memory_linear/weight": {h},
		"policy/choice/attention/dot_scale":            {h},
		"policy/choice/linear_1/weight":                {h, 4 * h},
		"policy/choice/linear_1/bias":                  {h},
		"policy/choice/linear_2/weight":                {1, h},
		"policy/choice/linear_2/bias":                  {1},
		"policy/value/linear_1/weight":                 {ValueHidden, h},
		"policy/value/linear_1/bias":                   {ValueHidden},
		"policy/value/linear_2/weight":                 {1, ValueHidden},
		"policy/value/linear_2/bias":                   {1},
	}
}

// modelTestBatch encodes the test examples for cfg (no padding states).
func modelTestBatch(t *testing.T, tok *features.Tokenizer, cfg features.PolicyConfig) *features.PolicyBatch {
	t.Helper()
	var enc []features.EncodedChoice
	for _, ex := range policyTestExamples() {
		enc = append(enc, features.EncodeChoice(tok, cfg, ex))
	}
	pb, err := features.NewPolicyBatch(enc, features.DefaultBuckets(cfg), 0)
	if err != nil {
		t.Fatal(err)
	}
	return pb
}

// headVariables returns the shapes of ctx's variables outside the encoder.
func headVariables(ctx *context.Context) map[string][]int {
	got := map[string][]int{}
	for v := range ctx.IterVariables() {
		p := variablePath(v)
		if strings.HasPrefix(p, PolicyScope+"/") && !strings.HasPrefix(p, EncoderScope+"/") {
			got[p] = v.Shape().Dimensions
		}
	}
	return got
}

func TestChoiceModelVariables(t *testing.T) {
	tok := policyTestTokenizer(t)
	for _, model := range []string{features.ModelWebShop, features.ModelShopAgent, ""} {
		cfg := policyTestConfig(t, tok.VocabSize())
		cfg.Model = model
		h := cfg.Bert.Hidden
		ctx := context.New()
		policyForward(t, ctx, cfg, modelTestBatch(t, tok, cfg))
		got := headVariables(ctx)
		want := webShopHeadVariables(h)
		if cfg.ChoiceModel() == features.ModelShopAgent {
			want["policy/choice/linear_1/weight"] = []int{h, 4*h + 1}
			want["policy/choice/match/weight"] = []int{1}
			want["policy/choice/position/bias"] = []int{features.MaxResultPosition + 1}
		}
		if !maps.EqualFunc(got, want, slices.Equal) {
			t.Errorf("model %q: head variables\n%v\nwant\n%v", model, got, want)
		}
		for p, s := range ChoiceVariables(cfg) {
			if !slices.Equal(got[p], s.Dimensions) {
				t.Errorf("model %q: ChoiceVariables says %s is %v, the graph made %v", model, p, s.Dimensions, got[p])
			}
		}
		if n := len(ChoiceVariables(cfg)) + 4; n != len(want) {
			t.Errorf("model %q: ChoiceVariables has %d variables, want %d", model, n-4, len(want)-4)
		}
	}
}

// perturbedInputs returns copies of pb that differ from it only in what the "shopagent"
// model's priors read: the results-page positions, the content flags of the action tokens
// (the exact-match feature counts content tokens only), and the state's token types.
func perturbedInputs(pb *features.PolicyBatch) map[string]*features.PolicyBatch {
	out := map[string]*features.PolicyBatch{}
	pos := *pb
	pos.ActionPos = slices.Clone(pb.ActionPos)
	for i := range pos.ActionPos {
		pos.ActionPos[i] = int32((i*7 + 3) % (features.MaxResultPosition + 1))
	}
	out["positions"] = &pos
	content := *pb
	content.ActionMask = slices.Clone(pb.ActionMask)
	for i, m := range content.ActionMask {
		if m == 2 {
			content.ActionMask[i] = 1
		}
	}
	out["content"] = &content
	types := *pb
	types.StateTypes = make([]int32, len(pb.StateTypes))
	out["token types"] = &types
	return out
}

func TestWebShopModelIgnoresPriors(t *testing.T) {
	tok := policyTestTokenizer(t)
	for _, model := range features.ModelNames {
		cfg := policyTestConfig(t, tok.VocabSize())
		cfg.Model = model
		ctx := context.New()
		ctx.SetParam(context.ParamInitialSeed, int64(11))
		pb := modelTestBatch(t, tok, cfg)
		base, baseV := policyForward(t, ctx, cfg, pb)
		if model == features.ModelShopAgent {
			// The position bias starts at 0: give each position its own bias.
			v := ctx.GetVariableByScopeAndName("/policy/choice/position", "bias")
			if v == nil {
				t.Fatal("no position bias")
			}
			bias := make([]float32, features.MaxResultPosition+1)
			for i := range bias {
				bias[i] = float32(i) / 4
			}
			if err := v.SetValue(tensors.FromFlatDataAndDimensions(bias, len(bias))); err != nil {
				t.Fatal(err)
			}
			base, baseV = policyForward(t, ctx, cfg, pb)
		}
		// Every state has a real action with a content token of its instruction.
		matched := 0
		for i, m := range pb.ActionMask {
			for _, w := range []string{"red", "large", "green"} {
				if id, _ := tok.ID(w); m == 2 && pb.ActionIDs[i] == id {
					matched++
				}
			}
		}
		if matched < 3 {
			t.Fatalf("the test batch has %d matching content tokens", matched)
		}
		for what, alt := range perturbedInputs(pb) {
			l, v := policyForward(t, ctx, cfg, alt)
			var maxDiff float64
			for i := range l {
				if pb.ActionValid[i] > 0 {
					maxDiff = max(maxDiff, math.Abs(float64(l[i]-base[i])))
				}
			}
			var valueDiff float64
			for i := range v {
				valueDiff = max(valueDiff, math.Abs(float64(v[i]-baseV[i])))
			}
			t.Logf("%s model, other %s: max |logit diff| %.3g, max |value diff| %.3g", model, what, maxDiff, valueDiff)
			switch {
			case model == features.ModelWebShop && (maxDiff != 0 || valueDiff != 0):
				t.Errorf("webshop model: changing the %s changed the logits by %g, the values by %g", what, maxDiff, valueDiff)
			case model == features.ModelShopAgent && maxDiff < 1e-3:
				t.Errorf("shopagent model: changing the %s left the logits as they were (max diff %g)", what, maxDiff)
			}
		}
	}
}

func TestWebShopCheckpointRoundTrip(t *testing.T) {
	tok := policyTestTokenizer(t)
	cfg := policyTestConfig(t, tok.VocabSize())
	cfg.Model = features.ModelWebShop
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(13))
	pb := modelTestBatch(t, tok, cfg)
	want, _ := policyForward(t, ctx, cfg, pb)
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := SaveCheckpoint(dir, CheckpointMeta{Job: "il", Step: 3, Policy: cfg}, ctx, tok, false); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, CheckpointMetaFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"model": "webshop"`) {
		t.Fatalf("checkpoint.json does not record the model:\n%s", raw)
	}
	ck, err := LoadCheckpoint(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if ck.Meta.Policy.Model != features.ModelWebShop {
		t.Fatalf("loaded model %q", ck.Meta.Policy.Model)
	}
	// Exactly WebShop's parameter set besides the encoder.
	h := cfg.Bert.Hidden
	got := map[string][]int{}
	for p, v := range ck.Model {
		if !strings.HasPrefix(p, EncoderScope+"/") {
			got[p] = v.Shape().Dimensions
		}
	}
	if w := webShopHeadVariables(h); !maps.EqualFunc(got, w, slices.Equal) {
		t.Fatalf("checkpoint head variables\n%v\nwant\n%v", got, w)
	}
	pol, err := NewPolicy(policyTestBackend(t), ck)
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	scores, err := pol.Score(policyTestExamples())
	if err != nil {
		t.Fatal(err)
	}
	for b, s := range scores {
		for a, l := range s.Logits {
			if d := math.Abs(l - float64(want[b*pb.A+a])); d > 1e-4 {
				t.Fatalf("state %d action %d: loaded policy %g, graph %g", b, a, l, want[b*pb.A+a])
			}
		}
	}

	// A checkpoint whose variables are not those of the model its config names is refused.
	bad := *ck
	bad.Meta.Policy.Model = features.ModelShopAgent
	if _, err := NewPolicy(policyTestBackend(t), &bad); err == nil || !strings.Contains(err.Error(), "match/weight") {
		t.Fatalf("webshop variables as a shopagent policy: %v", err)
	}
	bad.Model = maps.Clone(ck.Model)
	bad.Model["policy/choice/match/weight"] = tensors.FromFlatDataAndDimensions([]float32{1}, 1)
	bad.Model["policy/choice/position/bias"] = tensors.FromFlatDataAndDimensions(make([]float32, features.MaxResultPosition+1), features.MaxResultPosition+1)
	if _, err := NewPolicy(policyTestBackend(t), &bad); err == nil || !strings.Contains(err.Error(), "linear_1/weight has shape") {
		t.Fatalf("a [H, 4H] linear_1 as a shopagent policy: %v", err)
	}
	bad.Meta.Policy.Model = features.ModelWebShop
	if _, err := NewPolicy(policyTestBackend(t), &bad); err == nil || !strings.Contains(err.Error(), "not part of the webshop choice model") {
		t.Fatalf("shopagent variables in a webshop policy: %v", err)
	}
}

// An old checkpoint, whose config has no "model", is the shopagent model.
func TestCheckpointWithoutModelIsShopAgent(t *testing.T) {
	tok := policyTestTokenizer(t)
	cfg := policyTestConfig(t, tok.VocabSize())
	if cfg.Model != features.ModelShopAgent {
		t.Fatalf("NewPolicyConfig's model is %q", cfg.Model)
	}
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(17))
	pb := modelTestBatch(t, tok, cfg)
	want, _ := policyForward(t, ctx, cfg, pb)
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := SaveCheckpoint(dir, CheckpointMeta{Job: "il", Step: 3, Policy: cfg}, ctx, tok, false); err != nil {
		t.Fatal(err)
	}
	// Rewrite checkpoint.json as it was before the field existed.
	metaPath := filepath.Join(dir, CheckpointMetaFile)
	raw, err := os.ReadFile(metaPath)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	policy := meta["policy"].(map[string]any)
	if policy["model"] != features.ModelShopAgent {
		t.Fatalf("checkpoint.json policy %v", policy)
	}
	delete(policy, "model")
	if raw, err = json.Marshal(meta); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(metaPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := LoadPolicy(policyTestBackend(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	if pol.Config.Model != "" || pol.Config.ChoiceModel() != features.ModelShopAgent {
		t.Fatalf("old checkpoint: model %q, choice model %q", pol.Config.Model, pol.Config.ChoiceModel())
	}
	scores, err := pol.Score(policyTestExamples())
	if err != nil {
		t.Fatal(err)
	}
	for b, s := range scores {
		for a, l := range s.Logits {
			if d := math.Abs(l - float64(want[b*pb.A+a])); d > 1e-4 {
				t.Fatalf("state %d action %d: old checkpoint %g, graph %g", b, a, l, want[b*pb.A+a])
			}
		}
	}
}
