package models

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"shopagent/features"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
)

// The choice policy: WebShop's BertModelForWebshop, in two variants chosen by
// PolicyConfig.Model (features.ModelNames).
//
// A shared BERT encoder reads the state tokens [B, Ts] and the action tokens; a BiDAF
// attention between each action's tokens (the "input") and its state's tokens (the
// "memory") gives, per action token, [a; c; a∘c; a∘q2c] (4H).
//
// "webshop", WebShop's choice model exactly: the state is encoded with all token types 0
// (as WebShop's forward passes no token types), and the attention's output goes through
// linear 4H->H, ReLU, a masked mean over the action's tokens and linear H->1: one logit per
// action.
//
// "shopagent" (the default; a checkpoint whose config has no model is this one) adds three
// priors. The state's instruction tokens get token type 1 (features.EncodeChoice); an
// exact-match feature is appended to each action token's 4H (1 when the action token, a
// content word piece, occurs in the instruction, as in DrQA's reader; see below), so the
// first layer is linear (4H+1)->H; after linear H->1 the logit gets a learned weight
// (initially 5) times the fraction of the action's content tokens that occur in the
// instruction, plus a learned bias for the product's position on a results page.
//
// In both, padded actions get the logit -1e9, so after the log-softmax over a state's
// actions their probability is exactly 0, and a value head on the state's [CLS] (linear
// H->128, leaky ReLU, linear 128->1) estimates the return, for reinforcement learning.
//
// Variable scopes (every variable is "<scope>/<name>"; HF names in brackets; see
// ChoiceVariables):
//
//	policy/bert/...                              the encoder, Hugging Face BertModel names
//	                                             below it (see BertVariableNames, HFName)
//	policy/choice/attention/input_linear/weight  [H]   BiDAF w·a (HF attn.input_linear.weight)
//	policy/choice/attention/memory_linear/weight [H]   BiDAF w·s (attn.memory_linear.weight)
//	policy/choice/attention/dot_scale            [H]   BiDAF w·(a∘s) (attn.dot_scale)
//	policy/choice/linear_1/{weight [H,4H], bias [H]}   (linear_1) webshop
//	policy/choice/linear_1/{weight [H,4H+1], bias [H]} (linear_1, plus the exact-match column) shopagent
//	policy/choice/linear_2/{weight [1,H], bias [1]}    (linear_2)
//	policy/choice/match/weight [1]                     weight of the exact-match fraction (shopagent only)
//	policy/choice/position/bias [11]                   bias per product position, 0: not a product (shopagent only)
//	policy/value/linear_1/{weight [128,H], bias [128]}
//	policy/value/linear_2/{weight [1,128], bias [1]}
//	policy/cls/predictions/...                   the masked-LM head of pretraining (MLMHead)
//
// Dense weights are stored [out, in] like PyTorch's nn.Linear (see bert.go), so the names
// and tensors map 1:1 onto WebShop's PyTorch model (the value head is WebShop's linear_3).
// Differences from WebShop's code in both variants: the state->action (q2c) attention
// ignores the action's padding tokens (WebShop softmaxes over them too, which makes a
// logit depend on how far the batch is padded); and the initialisation: dot_scale starts at
// the constant 1/sqrt(H) (WebShop draws it uniformly in [1/sqrt(H), 1)) and the head's
// dense layers are drawn like BERT's (normal 0.02, zero bias) rather than with PyTorch's
// nn.Linear default. Why the exact-match feature: measured on the built-in shop with the
// tiny preset (docs/TRAINING.md), without it, after 4 epochs of imitation the policy chose
// the demonstrated option value 18% of the time (it had not learnt to match option words
// with the instruction); the feature is computed in the graph from the token ids, so an
// exported model needs no extra input.

// PolicyScope is the root scope of all policy variables.
const PolicyScope = "policy"

// EncoderScope is the scope of the shared BERT encoder, relative to the context root.
const EncoderScope = PolicyScope + "/bert"

// ValueHidden is the width of the value head's hidden layer.
const ValueHidden = 128

// matchScale multiplies the exact-match weight (a reparametrisation: Adam moves a weight by
// about the learning rate per step, and this logit needs a range of several units).
const matchScale = 5.0

// choiceMaskLogit is the logit of padded actions.
const choiceMaskLogit = -1e9

// PolicyInputs are the graph inputs of the policy (see PolicyBatch for their meaning):
// StateIDs, StateMask, StateTypes [B, Ts]; ActionIDs, ActionMask [U, Ta]; ActionIndex
// [B, A] (int32); ActionValid [B, A] (float32); ActionPos [B, A] (int32).
type PolicyInputs struct {
	StateIDs, StateMask, StateTypes, ActionIDs, ActionMask, ActionIndex, ActionValid, ActionPos *graph.Node
}

// NumPolicyInputs is the number of PolicyInputs tensors.
const NumPolicyInputs = 8

// PolicyInputsFrom wraps the first NumPolicyInputs graph inputs, in PolicyInputs order.
func PolicyInputsFrom(in []*graph.Node) PolicyInputs {
	return PolicyInputs{StateIDs: in[0], StateMask: in[1], StateTypes: in[2], ActionIDs: in[3],
		ActionMask: in[4], ActionIndex: in[5], ActionValid: in[6], ActionPos: in[7]}
}

// BatchTensors returns the batch as graph inputs in PolicyInputs order.
func BatchTensors(pb *features.PolicyBatch) []*tensors.Tensor {
	return []*tensors.Tensor{
		tensors.FromFlatDataAndDimensions(pb.StateIDs, pb.B, pb.Ts),
		tensors.FromFlatDataAndDimensions(pb.StateMask, pb.B, pb.Ts),
		tensors.FromFlatDataAndDimensions(pb.StateTypes, pb.B, pb.Ts),
		tensors.FromFlatDataAndDimensions(pb.ActionIDs, pb.U, pb.Ta),
		tensors.FromFlatDataAndDimensions(pb.ActionMask, pb.U, pb.Ta),
		tensors.FromFlatDataAndDimensions(pb.ActionIndex, pb.B, pb.A),
		tensors.FromFlatDataAndDimensions(pb.ActionValid, pb.B, pb.A),
		tensors.FromFlatDataAndDimensions(pb.ActionPos, pb.B, pb.A),
	}
}

// PolicyGraph builds the policy's forward pass and returns the action logits [B, A]
// (padded slots -1e9) and the state values [B], with the choice model cfg.Model names.
// Variables are created or reused under ctx's "policy" scope (see the file comment and
// ChoiceVariables: the "webshop" model creates no exact-match or position variables and
// reads neither the state's token types nor ActionPos nor which action tokens are content
// tokens); train enables dropout.
func PolicyGraph(ctx *context.Context, cfg features.PolicyConfig, in PolicyInputs, train bool) (logits, value *graph.Node) {
	ctx = ctx.Checked(false)
	pctx := ctx.In(PolicyScope)
	h := cfg.Bert.Hidden
	g := in.StateIDs.Graph()
	priors := cfg.ChoiceModel() == features.ModelShopAgent
	stateTypes := in.StateTypes
	if !priors {
		stateTypes = nil // WebShop encodes the state with token type 0 throughout
	}
	stateH := BertEncodeWithTypes(pctx.In("bert"), cfg.Bert, in.StateIDs, stateTypes, in.StateMask, train) // [B, Ts, H]
	uniqH := BertEncode(pctx.In("bert"), cfg.Bert, in.ActionIDs, in.ActionMask, train)                     // [U, Ta, H]

	// Each action slot's token states and mask: [B, A, Ta, H], [B, A, Ta].
	idx := graph.InsertAxes(in.ActionIndex, -1)
	actH := graph.Gather(uniqH, idx)
	actMaskRaw := graph.Gather(in.ActionMask, idx) // 0 padding, 1 token, 2 content token
	actMask := graph.ConvertDType(graph.GreaterThan(actMaskRaw, graph.ScalarZero(g, actMaskRaw.DType())), dtypes.Float32)
	stateMask := graph.ConvertDType(in.StateMask, dtypes.Float32)

	out := biAttention(pctx.In("choice").In("attention"), actH, actMask, stateH, stateMask) // [B, A, Ta, 4H]
	cctx := pctx.In("choice")
	var em, actContent *graph.Node
	if priors {
		actContent = graph.ConvertDType(graph.Equal(actMaskRaw, graph.Scalar(g, actMaskRaw.DType(), 2)), dtypes.Float32)
		insMask := graph.Mul(stateMask, graph.ConvertDType(graph.Equal(in.StateTypes,
			graph.ScalarOne(g, in.StateTypes.DType())), dtypes.Float32)) // the instruction's tokens
		em = exactMatch(graph.Gather(in.ActionIDs, idx), actContent, in.StateIDs, insMask) // [B, A, Ta, 1]
		out = graph.Concatenate([]*graph.Node{out, em}, -1)
	}
	hid := graph.Max(hfDense(cctx.In("linear_1"), out, choiceInputs(cfg), h), graph.ScalarZero(g, dtypes.Float32))
	// Masked mean over the action's tokens.
	m := graph.InsertAxes(actMask, -1)
	sum := graph.ReduceSum(graph.Mul(hid, m), 2)                                          // [B, A, H]
	count := graph.Max(graph.ReduceSum(actMask, 2), graph.Scalar(g, dtypes.Float32, 1.0)) // [B, A]
	pooled := graph.Div(sum, graph.InsertAxes(count, -1))
	logits = graph.Reshape(hfDense(cctx.In("linear_2"), pooled, h, 1), pooled.Shape().Dimensions[0], pooled.Shape().Dimensions[1])
	if priors {
		// Direct exact-match pathway: a learned weight (initially 1, times matchScale)
		// times the fraction of the action's content tokens that occur in the instruction.
		nContent := graph.Max(graph.ReduceSum(actContent, 2), graph.Scalar(g, dtypes.Float32, 1.0))
		matchFrac := graph.Div(graph.ReduceSum(graph.Reshape(em, em.Shape().Dimensions[:3]...), 2), nContent) // [B, A]
		mw := cctx.In("match").WithInitializer(initializers.One).
			VariableWithShape("weight", shapes.Make(dtypes.Float32, 1)).ValueGraph(g)
		logits = graph.Add(logits, graph.Mul(matchFrac, graph.MulScalar(graph.Reshape(mw, 1, 1), matchScale)))
		// A learned bias per product position on the results page (the search engine's rank).
		posBias := cctx.In("position").WithInitializer(initializers.Zero).
			VariableWithShape("bias", shapes.Make(dtypes.Float32, features.MaxResultPosition+1)).ValueGraph(g)
		posTerm := graph.Gather(graph.Reshape(posBias, features.MaxResultPosition+1, 1), graph.InsertAxes(in.ActionPos, -1)) // [B, A, 1]
		logits = graph.Add(logits, graph.Reshape(posTerm, logits.Shape().Dimensions...))
	}
	valid := graph.GreaterThan(in.ActionValid, graph.ScalarZero(g, in.ActionValid.DType()))
	logits = graph.Where(valid, logits, graph.Scalar(g, dtypes.Float32, choiceMaskLogit))

	value = ValueHead(pctx.In("value"), cfg, stateH)
	return logits, value
}

// choiceInputs is the input width of the choice head's linear_1: 4H, plus the exact-match
// column in the ModelShopAgent model.
func choiceInputs(cfg features.PolicyConfig) int {
	if cfg.ChoiceModel() == features.ModelWebShop {
		return 4 * cfg.Bert.Hidden
	}
	return 4*cfg.Bert.Hidden + 1
}

// ChoiceVariables returns the shapes of the choice head's variables (full paths, see the
// file comment) in the configuration's choice model: those of WebShop's head, plus
// policy/choice/match/weight and policy/choice/position/bias, and the wider linear_1, in
// the ModelShopAgent model.
func ChoiceVariables(cfg features.PolicyConfig) map[string]shapes.Shape {
	h := cfg.Bert.Hidden
	f32 := func(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }
	c := PolicyScope + "/choice/"
	vars := map[string]shapes.Shape{
		c + "attention/input_linear/weight": f32(h), c + "attention/memory_linear/weight": f32(h),
		c + "attention/dot_scale": f32(h),
		c + "linear_1/weight":     f32(h, choiceInputs(cfg)), c + "linear_1/bias": f32(h),
		c + "linear_2/weight": f32(1, h), c + "linear_2/bias": f32(1),
	}
	if cfg.ChoiceModel() == features.ModelShopAgent {
		vars[c+"match/weight"] = f32(1)
		vars[c+"position/bias"] = f32(features.MaxResultPosition + 1)
	}
	return vars
}

// ValueHead is the value head on the state's [CLS] hidden state: linear H->128, leaky ReLU
// (slope 0.01), linear 128->1. It returns [B].
func ValueHead(ctx *context.Context, cfg features.PolicyConfig, stateH *graph.Node) *graph.Node {
	cls := TokenAt(stateH, 0)
	x := hfDense(ctx.In("linear_1"), cls, cfg.Bert.Hidden, ValueHidden)
	x = graph.Max(x, graph.MulScalar(x, 0.01))
	x = hfDense(ctx.In("linear_2"), x, ValueHidden, 1)
	return graph.Reshape(x, x.Shape().Dimensions[0])
}

// biAttention is WebShop's BiAttention between action tokens act [B, A, Ta, H] (mask
// [B, A, Ta]) and state tokens st [B, Ts, H] (mask [B, Ts]), returning
// [a; c; a∘c; q2c∘c] per action token: [B, A, Ta, 4H].
func biAttention(ctx *context.Context, act, actMask, st, stMask *graph.Node) *graph.Node {
	g := act.Graph()
	h := act.Shape().Dimensions[3]
	normal := initializers.RandomNormalFn(ctx, BertInitStddev)
	f32 := func(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }
	wIn := ctx.In("input_linear").WithInitializer(normal).VariableWithShape("weight", f32(h)).ValueGraph(g)
	wMem := ctx.In("memory_linear").WithInitializer(normal).VariableWithShape("weight", f32(h)).ValueGraph(g)
	scale := ctx.WithInitializer(func(g *graph.Graph, s shapes.Shape) *graph.Node {
		return graph.BroadcastToDims(graph.Scalar(g, dtypes.Float32, 1/math.Sqrt(float64(h))), s.Dimensions...)
	}).VariableWithShape("dot_scale", f32(h)).ValueGraph(g)

	inDot := graph.DotGeneral(act, []int{3}, nil, wIn, []int{0}, nil)  // [B, A, Ta]
	memDot := graph.DotGeneral(st, []int{2}, nil, wMem, []int{0}, nil) // [B, Ts]
	scaled := graph.Mul(act, graph.Reshape(scale, 1, 1, 1, h))
	cross := graph.DotGeneral(scaled, []int{3}, []int{0}, st, []int{2}, []int{0}) // [B, A, Ta, Ts]
	b, a, ta := act.Shape().Dimensions[0], act.Shape().Dimensions[1], act.Shape().Dimensions[2]
	ts := st.Shape().Dimensions[1]
	memBias := graph.MulScalar(graph.OneMinus(stMask), choiceMaskLogit) // [B, Ts]
	att := graph.Add(cross, graph.Reshape(inDot, b, a, ta, 1))
	att = graph.Add(att, graph.Reshape(graph.Add(memDot, memBias), b, 1, 1, ts))

	w1 := graph.Softmax(att, -1)                                          // [B, A, Ta, Ts]
	c := graph.DotGeneral(w1, []int{3}, []int{0}, st, []int{1}, []int{0}) // [B, A, Ta, H]
	// State->action attention over the action's real tokens.
	best := graph.ReduceMax(att, -1) // [B, A, Ta]
	best = graph.Add(best, graph.MulScalar(graph.OneMinus(actMask), choiceMaskLogit))
	w2 := graph.Softmax(best, -1)
	q2c := graph.DotGeneral(w2, []int{2}, []int{0, 1}, act, []int{2}, []int{0, 1}) // [B, A, H]
	q2c = graph.Reshape(q2c, b, a, 1, h)
	return graph.Concatenate([]*graph.Node{act, c, graph.Mul(act, c), graph.Mul(q2c, c)}, -1)
}

// exactMatch is the exact-match feature of each action token: 1 when the token id occurs
// among the state tokens selected by stateMask (the instruction's), else 0 (and 0 where
// actMask is 0: padding, punctuation and special tokens), as [B, A, Ta, 1]. actIDs is [B, A, Ta], stateIDs [B, Ts]; the masks are
// float32.
func exactMatch(actIDs, actMask, stateIDs, stateMask *graph.Node) *graph.Node {
	d := actIDs.Shape().Dimensions
	b, a, ta := d[0], d[1], d[2]
	ts := stateIDs.Shape().Dimensions[1]
	sIDs := stateIDs
	if sIDs.DType() != actIDs.DType() {
		sIDs = graph.ConvertDType(sIDs, actIDs.DType())
	}
	eq := graph.Equal(graph.Reshape(actIDs, b, a, ta, 1), graph.Reshape(sIDs, b, 1, 1, ts))
	m := graph.Mul(graph.ConvertDType(eq, dtypes.Float32), graph.Reshape(stateMask, b, 1, 1, ts))
	em := graph.Mul(graph.ReduceMax(m, -1), actMask)
	return graph.StopGradient(graph.Reshape(em, b, a, ta, 1))
}

// hfDense is an nn.Linear with HF layout: weight [out, in] (normal 0.02), bias [out]
// (zeros), applied over x's last axis.
func hfDense(ctx *context.Context, x *graph.Node, in, out int) *graph.Node {
	g := x.Graph()
	w := ctx.WithInitializer(initializers.RandomNormalFn(ctx, BertInitStddev)).
		VariableWithShape("weight", shapes.Make(dtypes.Float32, out, in)).ValueGraph(g)
	b := ctx.WithInitializer(initializers.Zero).
		VariableWithShape("bias", shapes.Make(dtypes.Float32, out)).ValueGraph(g)
	y := graph.DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
	dims := make([]int, y.Rank())
	for i := range dims {
		dims[i] = 1
	}
	dims[len(dims)-1] = out
	return graph.Add(y, graph.Reshape(b, dims...))
}

// hfLayerNorm normalises over the last axis with BERT's epsilon: weight (ones), bias (zeros).
func hfLayerNorm(ctx *context.Context, x *graph.Node, h int) *graph.Node {
	g := x.Graph()
	gamma := ctx.WithInitializer(initializers.One).VariableWithShape("weight", shapes.Make(dtypes.Float32, h)).ValueGraph(g)
	beta := ctx.WithInitializer(initializers.Zero).VariableWithShape("bias", shapes.Make(dtypes.Float32, h)).ValueGraph(g)
	mean := graph.ReduceAndKeep(x, graph.ReduceMean, -1)
	centered := graph.Sub(x, mean)
	variance := graph.ReduceAndKeep(graph.Square(centered), graph.ReduceMean, -1)
	normed := graph.Div(centered, graph.Sqrt(graph.AddScalar(variance, BertLayerNormEpsilon)))
	dims := make([]int, x.Rank())
	for i := range dims {
		dims[i] = 1
	}
	dims[len(dims)-1] = h
	return graph.Add(graph.Mul(normed, graph.Reshape(gamma, dims...)), graph.Reshape(beta, dims...))
}

// ChoiceLogProbs returns the log-softmax of logits [B, A] over each row (padded slots,
// at -1e9, get log-probability about -1e9, probability 0).
func ChoiceLogProbs(logits *graph.Node) *graph.Node {
	maxL := graph.StopGradient(graph.ReduceAndKeep(logits, graph.ReduceMax, -1))
	shifted := graph.Sub(logits, maxL)
	lse := graph.Log(graph.ReduceAndKeep(graph.Exp(shifted), graph.ReduceSum, -1))
	return graph.Sub(shifted, lse)
}

// MLMHead is BERT's masked-LM head (HF BertForPreTraining's cls.predictions) on hidden
// states [N, H] of the masked positions: dense H->H, exact GELU, LayerNorm, then a decoder
// tied to the word embeddings (scope wordEmbScope, variable "weight" [V, H]) plus a bias [V].
// Variables: <ctx>/cls/predictions/transform/dense/{weight,bias},
// <ctx>/cls/predictions/transform/LayerNorm/{weight,bias}, <ctx>/cls/predictions/bias.
// It returns the logits [N, V].
func MLMHead(ctx *context.Context, cfg features.BertConfig, wordEmb, hidden *graph.Node) *graph.Node {
	ctx = ctx.Checked(false).In("cls").In("predictions")
	g := hidden.Graph()
	x := hfDense(ctx.In("transform").In("dense"), hidden, cfg.Hidden, cfg.Hidden)
	x = graph.Mul(x, graph.MulScalar(graph.OnePlus(graph.Erf(graph.MulScalar(x, 1/math.Sqrt2))), 0.5))
	x = hfLayerNorm(ctx.In("transform").In("LayerNorm"), x, cfg.Hidden)
	bias := ctx.WithInitializer(initializers.Zero).
		VariableWithShape("bias", shapes.Make(dtypes.Float32, cfg.VocabSize)).ValueGraph(g)
	logits := graph.DotGeneral(x, []int{1}, nil, wordEmb, []int{1}, nil) // [N, V]
	return graph.Add(logits, graph.InsertAxes(bias, 0))
}

// WordEmbeddings returns the encoder's word embedding table [V, H] in graph g, creating the
// variable if needed (under ctx's encoder scope "policy/bert").
func WordEmbeddings(ctx *context.Context, cfg features.BertConfig, g *graph.Graph) *graph.Node {
	c := ctx.Checked(false).In(PolicyScope).In("bert").In("embeddings").In("word_embeddings")
	return c.WithInitializer(initializers.RandomNormalFn(c, BertInitStddev)).
		VariableWithShape("weight", shapes.Make(dtypes.Float32, cfg.VocabSize, cfg.Hidden)).ValueGraph(g)
}

// Policy runs a trained choice policy for inference: it scores the actions of states with
// the model's compiled forward pass (one executable per padded shape, cached). It is safe
// for concurrent use.
type Policy struct {
	// Config sizes the model; Tokenizer encodes its inputs.
	Config    features.PolicyConfig
	Tokenizer *features.Tokenizer
	// Buckets are the padded shapes used.
	Buckets features.BucketSizes
	// Meta is the checkpoint's meta.
	Meta CheckpointMeta

	ctx  *context.Context
	exec *context.Exec
}

// missingEncoderVariables lists the encoder variables the checkpoint's configuration
// needs and the checkpoint lacks; a present one with the wrong shape is an error (what
// names the checkpoint's role in it).
func (ck *Checkpoint) missingEncoderVariables(what string) ([]string, error) {
	var missing []string
	for _, v := range BertVariableNames(ck.Meta.Policy.Bert) {
		p := EncoderScope + "/" + strings.ReplaceAll(v.Name, ".", "/")
		if t, ok := ck.Model[p]; !ok {
			missing = append(missing, p)
		} else if !t.Shape().Equal(v.Shape) {
			return nil, fmt.Errorf("models: %s %s: %s has shape %s, the config wants %s", what, ck.Dir, p, t.Shape(), v.Shape)
		}
	}
	return missing, nil
}

// NewPolicy builds a Policy from a loaded checkpoint on a backend. The checkpoint must hold
// the encoder and the choice head of the choice model its config names, and no other
// choice-head variables (a pretraining checkpoint has no choice head: it is an error); a
// missing value head is initialised randomly (values are then meaningless).
func NewPolicy(backend backends.Backend, ck *Checkpoint) (*Policy, error) {
	cfg := ck.Meta.Policy
	missing, err := ck.missingEncoderVariables("checkpoint")
	if err != nil {
		return nil, err
	}
	head := ChoiceVariables(cfg)
	for _, p := range slices.Sorted(maps.Keys(head)) {
		if _, ok := ck.Model[p]; !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("models: checkpoint %s (job %q) is not a choice policy: %d variables missing, e.g. %s", ck.Dir, ck.Meta.Job, len(missing), missing[0])
	}
	for _, p := range slices.Sorted(maps.Keys(ck.Model)) {
		want, ok := head[p]
		switch {
		case ok && !ck.Model[p].Shape().Equal(want):
			return nil, fmt.Errorf("models: checkpoint %s: %s has shape %s, the %s choice model wants %s", ck.Dir, p, ck.Model[p].Shape(), cfg.ChoiceModel(), want)
		case !ok && strings.HasPrefix(p, PolicyScope+"/choice/"):
			return nil, fmt.Errorf("models: checkpoint %s: variable %s is not part of the %s choice model its config names", ck.Dir, p, cfg.ChoiceModel())
		}
	}
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(1))
	if _, err := ck.LoadInto(ctx, PolicyScope+"/"); err != nil {
		return nil, err
	}
	p := &Policy{Config: cfg, Tokenizer: ck.Tokenizer, Buckets: features.DefaultBuckets(cfg), Meta: ck.Meta, ctx: ctx}
	exec, err := context.NewExec(backend, ctx, func(ctx *context.Context, in []*graph.Node) []*graph.Node {
		logits, value := PolicyGraph(ctx, cfg, PolicyInputsFrom(in), false)
		return []*graph.Node{logits, value}
	})
	if err != nil {
		return nil, fmt.Errorf("models: policy: %w", err)
	}
	exec.SetMaxCache(-1)
	p.exec = exec
	// On the XLA backend: the XLA shape set, compiled now (docs/GPU.md).
	if err := p.useBackendShapes(backend); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// LoadPolicy loads a policy checkpoint (a checkpoint directory or a run directory for its
// latest checkpoint) on a backend.
func LoadPolicy(backend backends.Backend, path string) (*Policy, error) {
	ck, err := LoadCheckpoint(path, false)
	if err != nil {
		return nil, err
	}
	return NewPolicy(backend, ck)
}

// Close releases the compiled executables.
func (p *Policy) Close() {
	if p.exec != nil {
		p.exec.Finalize()
	}
}

// Score runs the policy on states. States with more actions than the largest Actions
// bucket are scored in chunks of actions (the log-softmax is taken over all of them).
func (p *Policy) Score(examples []features.ChoiceExample) ([]features.ChoiceScores, error) {
	return ScoreChoices(examples, p.Tokenizer, p.Config, p.Buckets, p.exec.Exec)
}

// ScoreChoices scores the examples with a compiled policy forward pass run (its
// arguments: a PolicyBatch's Tensors; its results: logits [B, A] and value [B]), as
// Policy.Score does: states with more actions than the largest action bucket are scored
// in chunks (each action's logit depends only on its state), batches are cut at the
// largest batch bucket, and the log-softmax is taken over all of a state's actions.
func ScoreChoices(examples []features.ChoiceExample, tok *features.Tokenizer, cfg features.PolicyConfig, buckets features.BucketSizes,
	run func(args ...any) ([]*tensors.Tensor, error)) ([]features.ChoiceScores, error) {
	maxA := buckets.Actions[len(buckets.Actions)-1]
	maxB := buckets.Batch[len(buckets.Batch)-1]
	type row struct {
		ex     int // example index
		offset int // first action of the chunk
	}
	var rows []row
	var enc []features.EncodedChoice
	for i, ex := range examples {
		if len(ex.Actions) == 0 {
			return nil, fmt.Errorf("models: policy: state %d has no actions", i)
		}
		ex.Target = -1
		e := features.EncodeChoice(tok, cfg, ex)
		for lo := 0; lo < len(e.Actions); lo += maxA {
			hi := min(lo+maxA, len(e.Actions))
			rows = append(rows, row{i, lo})
			enc = append(enc, features.EncodedChoice{State: e.State, StateTypes: e.StateTypes, Actions: e.Actions[lo:hi],
				ActionContent: e.ActionContent[lo:hi], Positions: e.Positions[lo:hi], Target: -1})
		}
	}
	out := make([]features.ChoiceScores, len(examples))
	for i, ex := range examples {
		out[i].Logits = make([]float64, len(ex.Actions))
	}
	for lo := 0; lo < len(enc); lo += maxB {
		hi := min(lo+maxB, len(enc))
		pb, err := features.NewPolicyBatch(enc[lo:hi], buckets, 0)
		if err != nil {
			return nil, err
		}
		args := make([]any, 0, NumPolicyInputs)
		for _, t := range BatchTensors(pb) {
			args = append(args, t)
		}
		res, err := run(args...)
		if err != nil {
			return nil, fmt.Errorf("models: policy forward: %w", err)
		}
		logits := tensors.MustCopyFlatData[float32](res[0])
		values := tensors.MustCopyFlatData[float32](res[1])
		for k := lo; k < hi; k++ {
			r := rows[k]
			b := k - lo
			for j := range enc[k].Actions {
				out[r.ex].Logits[r.offset+j] = float64(logits[b*pb.A+j])
			}
			if r.offset == 0 {
				out[r.ex].Value = float64(values[b])
			}
		}
	}
	for i := range out {
		out[i].LogProbs = features.LogSoftmax(out[i].Logits)
	}
	return out, nil
}
