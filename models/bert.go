package models

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"shopagent/features"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
)

// BERT encoder with variables named exactly like Hugging Face's BertModel, so that a
// bert-base-uncased safetensors checkpoint maps 1:1 onto the GoMLX context.
//
// Variable naming: every HF name "a.b.c.weight" is stored as the GoMLX variable "weight" in
// scope "<root>/a/b/c", where <root> is the scope of the context passed to BertEncode (for
// example "/bert" or "/policy/encoder"). HFName and BertVariableNames convert between the
// two. HF's BertForPreTraining checkpoints prefix every name with "bert."; strip it on import.
//
// Linear layers: Hugging Face (PyTorch nn.Linear) stores a dense weight as [out, in] and
// computes y = x W^T + b. The GoMLX variables keep exactly that layout ([out, in], not
// transposed), so import and export copy tensors unchanged; the product is a DotGeneral that
// contracts x's last axis with the weight's axis 1. On the pure-Go backend that is also the
// layout its matmul kernel wants for the right-hand side ([cross, contracting]), so no
// transpose is needed in the forward pass.
//
// Numerics follow HF BERT: post-LN transformer layers, LayerNorm epsilon 1e-12, exact
// (erf) GELU, attention scores scaled by 1/sqrt(head dim), padding keys masked with a large
// negative bias before the softmax, dropout (on embeddings, attention probabilities and
// both residual branches) only when training.

// BertLayerNormEpsilon is the LayerNorm epsilon used by BERT (HF layer_norm_eps).
const BertLayerNormEpsilon = 1e-12

// BertInitStddev is the standard deviation of the normal initialisation of weights and
// embeddings (HF initializer_range).
const BertInitStddev = 0.02

// attentionMaskBias is added to the attention scores of padding keys. exp(-1e9 - max)
// underflows to exactly 0 in float32, so padding keys get exactly zero probability.
const attentionMaskBias = -1e9

// BertVariable is one encoder variable: its Hugging Face name (relative to the encoder
// root, without a "bert." prefix) and its float32 shape.
type BertVariable struct {
	Name  string
	Shape shapes.Shape
}

// BertVariableNames lists every variable created by BertEncode for cfg, with its Hugging
// Face name and shape, in HF's state-dict order. The optional pooler is listed by
// BertPoolerVariableNames.
func BertVariableNames(cfg features.BertConfig) []BertVariable {
	f32 := func(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }
	h, inter := cfg.Hidden, cfg.Intermediate
	vars := []BertVariable{
		{"embeddings.word_embeddings.weight", f32(cfg.VocabSize, h)},
		{"embeddings.position_embeddings.weight", f32(cfg.MaxPositions, h)},
		{"embeddings.token_type_embeddings.weight", f32(cfg.TypeVocab, h)},
		{"embeddings.LayerNorm.weight", f32(h)},
		{"embeddings.LayerNorm.bias", f32(h)},
	}
	linear := func(prefix string, out, in int) {
		vars = append(vars, BertVariable{prefix + ".weight", f32(out, in)}, BertVariable{prefix + ".bias", f32(out)})
	}
	norm := func(prefix string) {
		vars = append(vars, BertVariable{prefix + ".weight", f32(h)}, BertVariable{prefix + ".bias", f32(h)})
	}
	for layer := range cfg.Layers {
		p := "encoder.layer." + strconv.Itoa(layer) + "."
		linear(p+"attention.self.query", h, h)
		linear(p+"attention.self.key", h, h)
		linear(p+"attention.self.value", h, h)
		linear(p+"attention.output.dense", h, h)
		norm(p + "attention.output.LayerNorm")
		linear(p+"intermediate.dense", inter, h)
		linear(p+"output.dense", h, inter)
		norm(p + "output.LayerNorm")
	}
	return vars
}

// BertPoolerVariableNames lists the variables created by BertPool: pooler.dense.weight
// [hidden, hidden] and pooler.dense.bias [hidden].
func BertPoolerVariableNames(cfg features.BertConfig) []BertVariable {
	return []BertVariable{
		{"pooler.dense.weight", shapes.Make(dtypes.Float32, cfg.Hidden, cfg.Hidden)},
		{"pooler.dense.bias", shapes.Make(dtypes.Float32, cfg.Hidden)},
	}
}

// HFName returns the Hugging Face name of a GoMLX variable created by BertEncode or BertPool,
// given the scope of the context that was passed to them (e.g. "/bert"). ok is false when the
// variable is not under root.
func HFName(root string, v *context.Variable) (name string, ok bool) {
	scope := v.Scope()
	root = strings.TrimSuffix(root, context.ScopeSeparator)
	if root != "" && scope != root && !strings.HasPrefix(scope, root+context.ScopeSeparator) {
		return "", false
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(scope, root), context.ScopeSeparator)
	if rel == "" {
		return v.Name(), true
	}
	return strings.ReplaceAll(rel, context.ScopeSeparator, ".") + "." + v.Name(), true
}

// ScopeForHFName returns the GoMLX scope and variable name under root for a Hugging Face
// name such as "encoder.layer.0.attention.self.query.weight".
func ScopeForHFName(root, hfName string) (scope, name string) {
	parts := strings.Split(hfName, ".")
	root = strings.TrimSuffix(root, context.ScopeSeparator)
	scope = root + context.ScopeSeparator + strings.Join(parts[:len(parts)-1], context.ScopeSeparator)
	return scope, parts[len(parts)-1]
}

// BertEncode runs the BERT encoder over token ids [B, T] (any integer dtype) with an
// attention mask [B, T] (bool, integer or float; non-zero/true marks real tokens, nil means
// no padding) and returns the last hidden states [B, T, Hidden] in float32. All tokens get
// token type 0; see BertEncodeWithTypes.
//
// Variables are created (or reused) under ctx's current scope with Hugging Face names (see
// BertVariableNames). The context is used unchecked, so BertEncode may be called several
// times in one graph (e.g. for states and actions) and the calls share the weights. Dropout
// is applied only when train is true and cfg.Dropout > 0; it draws from ctx's random state.
// Invalid configurations or shapes panic (GoMLX's graph-building convention); call
// cfg.Validate first to get an error instead.
func BertEncode(ctx *context.Context, cfg features.BertConfig, ids, mask *graph.Node, train bool) *graph.Node {
	return BertEncodeWithTypes(ctx, cfg, ids, nil, mask, train)
}

// BertEncodeWithTypes is BertEncode with explicit token type ids [B, T] (nil means all 0).
func BertEncodeWithTypes(ctx *context.Context, cfg features.BertConfig, ids, typeIDs, mask *graph.Node, train bool) *graph.Node {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if ids.Rank() != 2 || !ids.DType().IsInt() {
		panic(fmt.Errorf("models: BertEncode ids must be an integer [batch, seq] tensor, got %s", ids.Shape()))
	}
	batch, seq := ids.Shape().Dimensions[0], ids.Shape().Dimensions[1]
	if seq > cfg.MaxPositions {
		panic(fmt.Errorf("models: BertEncode sequence length %d exceeds max positions %d", seq, cfg.MaxPositions))
	}
	ctx = ctx.Checked(false)
	b := bertBuilder{ctx: ctx, cfg: cfg, train: train && cfg.Dropout > 0}

	x := b.embeddings(ids, typeIDs)
	var maskBias *graph.Node // [B, 1, 1, T] additive bias on attention scores.
	if mask != nil {
		if !slices.Equal(mask.Shape().Dimensions, []int{batch, seq}) {
			panic(fmt.Errorf("models: BertEncode mask shape %s, want [%d %d]", mask.Shape(), batch, seq))
		}
		var isPad *graph.Node
		if mask.DType() == dtypes.Bool {
			isPad = graph.LogicalNot(mask)
		} else {
			isPad = graph.Equal(mask, graph.ScalarZero(mask.Graph(), mask.DType()))
		}
		maskBias = graph.MulScalar(graph.ConvertDType(isPad, dtypes.Float32), attentionMaskBias)
		maskBias = graph.Reshape(maskBias, batch, 1, 1, seq)
	}
	for layer := range cfg.Layers {
		x = b.layer(ctx.In("encoder").In("layer").In(strconv.Itoa(layer)), x, maskBias)
	}
	return x
}

// BertPool applies HF's pooler to the hidden states [B, T, H]: tanh(dense(hidden[:, 0])),
// returning [B, H]. Its variables are pooler.dense.weight/bias under ctx's scope.
func BertPool(ctx *context.Context, cfg features.BertConfig, hidden *graph.Node) *graph.Node {
	ctx = ctx.Checked(false)
	cls := TokenAt(hidden, 0)
	return graph.Tanh(linear(ctx.In("pooler").In("dense"), cls, cfg.Hidden, cfg.Hidden))
}

// TokenAt returns x[:, pos, :] for x [B, T, H] as [B, H] (e.g. the [CLS] state at pos 0).
//
// It is a DotGeneral with a constant one-hot vector rather than a Slice: on the pure-Go
// backend Slice has no gradient (its VJP needs Pad, which simplego does not implement),
// while this costs B*T*H multiply-adds and differentiates through DotGeneral.
func TokenAt(x *graph.Node, pos int) *graph.Node {
	if x.Rank() != 3 || pos < 0 || pos >= x.Shape().Dimensions[1] {
		panic(fmt.Errorf("models: TokenAt(%s, %d): want [batch, seq, hidden] and 0 <= pos < seq", x.Shape(), pos))
	}
	seq := x.Shape().Dimensions[1]
	oneHot := make([]float32, seq)
	oneHot[pos] = 1
	sel := graph.Const(x.Graph(), oneHot)
	if sel.DType() != x.DType() {
		sel = graph.ConvertDType(sel, x.DType())
	}
	return graph.DotGeneral(x, []int{1}, nil, sel, []int{0}, nil)
}

type bertBuilder struct {
	ctx   *context.Context
	cfg   features.BertConfig
	train bool
}

func (b *bertBuilder) embeddings(ids, typeIDs *graph.Node) *graph.Node {
	cfg := b.cfg
	g := ids.Graph()
	ctx := b.ctx.In("embeddings")
	batch, seq := ids.Shape().Dimensions[0], ids.Shape().Dimensions[1]
	normal := initializers.RandomNormalFn(ctx, BertInitStddev)
	word := ctx.In("word_embeddings").WithInitializer(normal).
		VariableWithShape("weight", shapes.Make(dtypes.Float32, cfg.VocabSize, cfg.Hidden)).ValueGraph(g)
	pos := ctx.In("position_embeddings").WithInitializer(normal).
		VariableWithShape("weight", shapes.Make(dtypes.Float32, cfg.MaxPositions, cfg.Hidden)).ValueGraph(g)
	types := ctx.In("token_type_embeddings").WithInitializer(normal).
		VariableWithShape("weight", shapes.Make(dtypes.Float32, cfg.TypeVocab, cfg.Hidden)).ValueGraph(g)

	x := graph.Gather(word, graph.InsertAxes(ids, -1)) // [B, T, H]
	// Rows 0..T-1 of the position table, broadcast over the batch. A Gather rather than a
	// Slice: Slice's gradient needs Pad, which the pure-Go backend does not implement.
	posIdx := graph.Iota(g, shapes.Make(dtypes.Int32, seq, 1), 0)
	posEmb := graph.Gather(pos, posIdx) // [T, H]
	if typeIDs == nil {
		// Token type 0 everywhere: row 0 of the type table.
		typeEmb := graph.Gather(types, graph.Zeros(g, shapes.Make(dtypes.Int32, 1, 1))) // [1, H]
		x = graph.Add(x, graph.InsertAxes(graph.Add(posEmb, typeEmb), 0))
	} else {
		if !slices.Equal(typeIDs.Shape().Dimensions, []int{batch, seq}) || !typeIDs.DType().IsInt() {
			panic(fmt.Errorf("models: BertEncode token type ids %s, want integer [%d %d]", typeIDs.Shape(), batch, seq))
		}
		typeEmb := graph.Gather(types, graph.InsertAxes(typeIDs, -1)) // [B, T, H]
		x = graph.Add(graph.Add(x, typeEmb), graph.InsertAxes(posEmb, 0))
	}
	x = layerNorm(ctx.In("LayerNorm"), x, cfg.Hidden)
	return b.dropout(x)
}

// layer is one post-LN transformer layer: x = LN(x + Attn(x)); x = LN(x + FFN(x)).
func (b *bertBuilder) layer(ctx *context.Context, x, maskBias *graph.Node) *graph.Node {
	cfg := b.cfg
	h := cfg.Hidden
	attn := b.selfAttention(ctx.In("attention").In("self"), x, maskBias) // [B, heads, T, dk]
	attn = attentionOutput(ctx.In("attention").In("output").In("dense"), attn, h)
	attn = b.dropout(attn)
	x = layerNorm(ctx.In("attention").In("output").In("LayerNorm"), graph.Add(x, attn), h)

	ff := linear(ctx.In("intermediate").In("dense"), x, h, cfg.Intermediate)
	ff = gelu(ff)
	ff = linear(ctx.In("output").In("dense"), ff, cfg.Intermediate, h)
	ff = b.dropout(ff)
	return layerNorm(ctx.In("output").In("LayerNorm"), graph.Add(x, ff), h)
}

// selfAttention is BERT's multi-head self-attention up to (not including) the output
// dense. It returns the per-head context [B, heads, T, dk].
//
// No explicit transposes: q, k and v are only reshaped to [B, T, heads, dk] and the two
// attention products name (batch, head) as DotGeneral batch axes wherever they are; the
// backend lays the operands out for its kernel anyway (the pure-Go backend copies every
// operand into blocks), so a separate transpose would be an extra copy.
func (b *bertBuilder) selfAttention(ctx *context.Context, x, maskBias *graph.Node) *graph.Node {
	cfg := b.cfg
	dims := x.Shape().Dimensions
	batch, seq, h := dims[0], dims[1], dims[2]
	heads, dk := cfg.Heads, cfg.Hidden/cfg.Heads
	split := func(t *graph.Node) *graph.Node { return graph.Reshape(t, batch, seq, heads, dk) }
	// The 1/sqrt(dk) scale is folded into the query (one [B,T,H] multiply instead of one
	// on the [B,heads,T,T] scores).
	q := split(graph.MulScalar(linear(ctx.In("query"), x, h, h), 1/math.Sqrt(float64(dk))))
	k := split(linear(ctx.In("key"), x, h, h))
	v := split(linear(ctx.In("value"), x, h, h))

	// scores[b, n, i, j] = sum_d q[b, i, n, d] * k[b, j, n, d]
	scores := graph.DotGeneral(q, []int{3}, []int{0, 2}, k, []int{3}, []int{0, 2}) // [B, heads, T, T]
	if maskBias != nil {
		scores = graph.Add(scores, maskBias)
	}
	probs := graph.Softmax(scores, -1)
	probs = b.dropout(probs)
	// context[b, n, i, d] = sum_j probs[b, n, i, j] * v[b, j, n, d]
	return graph.DotGeneral(probs, []int{3}, []int{0, 1}, v, []int{1}, []int{0, 2}) // [B, heads, T, dk]
}

// attentionOutput is attention.output.dense applied to the per-head context [B, heads, T,
// dk]: the HF weight [out, in] is viewed as [out, heads, dk] (in = head*dk + d) and both
// head axes are contracted, giving [B, T, out] without transposing the context.
func attentionOutput(ctx *context.Context, perHead *graph.Node, out int) *graph.Node {
	g := perHead.Graph()
	dims := perHead.Shape().Dimensions
	heads, dk := dims[1], dims[3]
	w := ctx.WithInitializer(initializers.RandomNormalFn(ctx, BertInitStddev)).
		VariableWithShape("weight", shapes.Make(dtypes.Float32, out, heads*dk)).ValueGraph(g)
	bias := ctx.WithInitializer(initializers.Zero).
		VariableWithShape("bias", shapes.Make(dtypes.Float32, out)).ValueGraph(g)
	y := graph.DotGeneral(perHead, []int{1, 3}, nil, graph.Reshape(w, out, heads, dk), []int{1, 2}, nil) // [B, T, out]
	return graph.Add(y, expandToRank(bias, y.Rank()))
}

// dropout zeroes elements with probability cfg.Dropout and scales the rest by 1/(1-p),
// only when training.
func (b *bertBuilder) dropout(x *graph.Node) *graph.Node {
	if !b.train {
		return x
	}
	rate := b.cfg.Dropout
	g := x.Graph()
	rnd := b.ctx.RandomUniform(g, shapes.Make(x.DType(), x.Shape().Dimensions...))
	keep := graph.GreaterOrEqual(rnd, graph.Scalar(g, x.DType(), rate))
	return graph.Where(keep, graph.MulScalar(x, 1/(1-rate)), graph.ZerosLike(x))
}

// linear is an HF nn.Linear: weight [out, in] (normal 0.02), bias [out] (zeros), y = x W^T + b
// over x's last axis.
func linear(ctx *context.Context, x *graph.Node, in, out int) *graph.Node {
	g := x.Graph()
	w := ctx.WithInitializer(initializers.RandomNormalFn(ctx, BertInitStddev)).
		VariableWithShape("weight", shapes.Make(dtypes.Float32, out, in)).ValueGraph(g)
	bias := ctx.WithInitializer(initializers.Zero).
		VariableWithShape("bias", shapes.Make(dtypes.Float32, out)).ValueGraph(g)
	y := graph.DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
	return graph.Add(y, expandToRank(bias, y.Rank()))
}

// layerNorm normalises x over its last axis with BERT's epsilon; weight (ones) and bias
// (zeros) have shape [h].
func layerNorm(ctx *context.Context, x *graph.Node, h int) *graph.Node {
	g := x.Graph()
	gamma := ctx.WithInitializer(initializers.One).
		VariableWithShape("weight", shapes.Make(dtypes.Float32, h)).ValueGraph(g)
	beta := ctx.WithInitializer(initializers.Zero).
		VariableWithShape("bias", shapes.Make(dtypes.Float32, h)).ValueGraph(g)
	mean := graph.ReduceAndKeep(x, graph.ReduceMean, -1)
	centered := graph.Sub(x, mean)
	variance := graph.ReduceAndKeep(graph.Square(centered), graph.ReduceMean, -1)
	// Sqrt+Div, not Rsqrt: GoMLX v0.26.0 defines no gradient for Rsqrt.
	normed := graph.Div(centered, graph.Sqrt(graph.AddScalar(variance, BertLayerNormEpsilon)))
	return graph.Add(graph.Mul(normed, expandToRank(gamma, x.Rank())), expandToRank(beta, x.Rank()))
}

// gelu is the exact GELU used by HF's "gelu": x * 0.5 * (1 + erf(x / sqrt(2))).
func gelu(x *graph.Node) *graph.Node {
	cdf := graph.MulScalar(graph.OnePlus(graph.Erf(graph.MulScalar(x, 1/math.Sqrt2))), 0.5)
	return graph.Mul(x, cdf)
}

// expandToRank prefixes a vector with size-1 axes up to the given rank, for broadcasting
// (GoMLX binary ops only broadcast between equal ranks).
func expandToRank(v *graph.Node, rank int) *graph.Node {
	if v.Rank() >= rank {
		return v
	}
	dims := make([]int, rank)
	for i := range dims {
		dims[i] = 1
	}
	copy(dims[rank-v.Rank():], v.Shape().Dimensions)
	return graph.Reshape(v, dims...)
}
