package export

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"shopagent/export/onnxrt"
	"shopagent/features"
	"shopagent/models"
)

// The ONNX graph of the choice policy, built node by node from the checkpoint's variables
// so that it computes what models.PolicyGraph (models/policy.go) and models.BertEncode
// (models/bert.go) compute, in the same order of operations where it matters for float32
// rounding. See docs/EXPORT.md for the op-by-op correspondence.
//
// Dense weights are stored [out, in] in the checkpoint (PyTorch layout) and written to the
// graph transposed, [in, out], so that each dense layer is one MatMul plus an Add. Attention
// uses explicit Reshape/Transpose to [batch, heads, T, dk] where GoMLX names batch axes in a
// DotGeneral; the sums are the same.

// matchScale is models' matchScale (unexported there): the exact-match weight of the choice
// head is multiplied by it. The export-time parity check fails if the two ever differ.
const matchScale = 5.0

// maskLogit is the logit of padded actions and the additive bias of padded tokens (models'
// choiceMaskLogit and attentionMaskBias).
const maskLogit = -1e9

// graphBuilder accumulates nodes and initializers; the first error sticks.
type graphBuilder struct {
	vars   map[string]*tensors.Tensor
	nodes  []*onnx.NodeProto
	inits  []*onnx.TensorProto
	consts map[string]string
	used   map[string]bool
	inited map[string]bool
	n      int
	err    error
	// quant makes the dense layers int8 (see GraphOptions.Quantize).
	quant bool
}

func (b *graphBuilder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf(format, args...)
	}
}

// op adds a node with one output and returns the output's name.
func (b *graphBuilder) op(opType string, inputs []string, attrs ...*onnx.AttributeProto) string {
	b.n++
	out := "t" + strconv.Itoa(b.n) + "_" + opType
	b.opTo(opType, out, inputs, attrs...)
	return out
}

// opTo adds a node writing the named output.
func (b *graphBuilder) opTo(opType, out string, inputs []string, attrs ...*onnx.AttributeProto) {
	b.nodes = append(b.nodes, &onnx.NodeProto{
		Name: "n" + strconv.Itoa(len(b.nodes)) + "_" + opType, OpType: opType,
		Input: inputs, Output: []string{out}, Attribute: attrs,
	})
}

func attrInt(name string, v int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INT, I: v}
}

func attrInts(name string, v ...int64) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_INTS, Ints: v}
}

func attrFloat(name string, v float32) *onnx.AttributeProto {
	return &onnx.AttributeProto{Name: name, Type: onnx.AttributeProto_FLOAT, F: v}
}

// tensorProto makes a float32, int32 or int64 initializer.
func tensorProto(name string, data any, dims []int64) *onnx.TensorProto {
	tp := &onnx.TensorProto{Name: name, Dims: dims}
	switch d := data.(type) {
	case []float32:
		tp.DataType = int32(onnx.TensorProto_FLOAT)
		tp.RawData = make([]byte, 4*len(d))
		for i, v := range d {
			binary.LittleEndian.PutUint32(tp.RawData[4*i:], math.Float32bits(v))
		}
	case []int32:
		tp.DataType = int32(onnx.TensorProto_INT32)
		tp.RawData = make([]byte, 4*len(d))
		for i, v := range d {
			binary.LittleEndian.PutUint32(tp.RawData[4*i:], uint32(v))
		}
	case []int64:
		tp.DataType = int32(onnx.TensorProto_INT64)
		tp.RawData = make([]byte, 8*len(d))
		for i, v := range d {
			binary.LittleEndian.PutUint64(tp.RawData[8*i:], uint64(v))
		}
	}
	return tp
}

// constant returns the name of a constant initializer (deduplicated by value); dims nil
// makes a scalar.
func (b *graphBuilder) constant(data any, dims ...int64) string {
	key := fmt.Sprintf("%T%v%v", data, data, dims)
	if name, ok := b.consts[key]; ok {
		return name
	}
	name := "const_" + strconv.Itoa(len(b.consts))
	if dims == nil {
		dims = []int64{}
	}
	b.inits = append(b.inits, tensorProto(name, data, dims))
	b.consts[key] = name
	return name
}

func (b *graphBuilder) f32(v float32) string { return b.constant([]float32{v}) }
func (b *graphBuilder) i32(v int32) string   { return b.constant([]int32{v}) }
func (b *graphBuilder) i64(v int64) string   { return b.constant([]int64{v}) }
func (b *graphBuilder) i64s(v ...int64) string {
	return b.constant(v, int64(len(v)))
}

// variable returns the float32 data of a checkpoint variable after checking its shape.
func (b *graphBuilder) variable(path string, dims ...int) []float32 {
	t, ok := b.vars[path]
	if !ok {
		b.fail("export: checkpoint has no variable %s", path)
		return nil
	}
	if t.DType() != dtypes.Float32 || !slices.Equal(t.Shape().Dimensions, dims) {
		b.fail("export: variable %s is %s, want float32 %v", path, t.Shape(), dims)
		return nil
	}
	data, err := tensors.CopyFlatData[float32](t)
	if err != nil {
		b.fail("export: variable %s: %w", path, err)
		return nil
	}
	b.used[path] = true
	return data
}

// weight adds a checkpoint variable as an initializer named after it, with the given
// graph dims (same element count and order as the variable's dims).
func (b *graphBuilder) weight(path string, varDims []int, graphDims ...int64) string {
	if b.inited[path] {
		return path
	}
	b.inited[path] = true
	data := b.variable(path, varDims...)
	if data == nil {
		return path
	}
	if graphDims == nil {
		for _, d := range varDims {
			graphDims = append(graphDims, int64(d))
		}
	}
	b.inits = append(b.inits, tensorProto(path, data, graphDims))
	return path
}

// dense adds x W^T + b for the HF linear layer at scope (weight [out, in], bias [out]); the
// weight is stored transposed as "<scope>/weight_t" [in, out]. With quantization, layers
// wider than one output are one com.microsoft DynamicQuantizeMatMul instead (see
// quantizeDense).
func (b *graphBuilder) dense(x, scope string, in, out int) string {
	bias := b.weight(scope+"/bias", []int{out})
	if b.quant && out > 1 {
		return b.quantizedDense(x, scope, in, out, bias)
	}
	name := scope + "/weight_t"
	if !b.inited[name] {
		b.inited[name] = true
		b.addTransposed(name, scope+"/weight", in, out)
	}
	return b.op("Add", []string{b.op("MatMul", []string{x, name}), bias})
}

// quantizedDense is dense as ONNX Runtime's DynamicQuantizeMatMul (domain com.microsoft):
// the weight is stored transposed as int8 "<scope>/weight_q" [in, out] with one symmetric
// scale per output column, max |w| / 127 ("<scope>/weight_scale" [out], zero points 0);
// ONNX Runtime quantizes the input per call (uint8, asymmetric, over the whole tensor),
// multiplies in integers and rescales to float32, adding the bias.
func (b *graphBuilder) quantizedDense(x, scope string, in, out int, bias string) string {
	q, scale, zero := scope+"/weight_q", scope+"/weight_scale", scope+"/weight_zero"
	if !b.inited[q] {
		b.inited[q] = true
		w := b.variable(scope+"/weight", out, in)
		if w == nil {
			return q
		}
		qs, sc := quantizeColumns(w, in, out)
		b.inits = append(b.inits,
			&onnx.TensorProto{Name: q, Dims: []int64{int64(in), int64(out)}, DataType: int32(onnx.TensorProto_INT8), RawData: qs},
			tensorProto(scale, sc, []int64{int64(out)}),
			&onnx.TensorProto{Name: zero, Dims: []int64{int64(out)}, DataType: int32(onnx.TensorProto_INT8), RawData: make([]byte, out)})
	}
	b.n++
	y := "t" + strconv.Itoa(b.n) + "_DynamicQuantizeMatMul"
	b.nodes = append(b.nodes, &onnx.NodeProto{
		Name: "n" + strconv.Itoa(len(b.nodes)) + "_DynamicQuantizeMatMul", OpType: "DynamicQuantizeMatMul", Domain: msDomain,
		Input: []string{x, q, scale, zero, bias}, Output: []string{y},
	})
	return y
}

// quantizeColumns quantizes the [out, in] weight w to int8, transposed to [in, out] (raw
// bytes), with one symmetric scale per output: round(w / (max |w| / 127)).
func quantizeColumns(w []float32, in, out int) ([]byte, []float32) {
	qs := make([]byte, in*out)
	sc := make([]float32, out)
	for o := range out {
		var m float64
		for i := range in {
			m = max(m, math.Abs(float64(w[o*in+i])))
		}
		s := m / 127
		if s == 0 {
			s = 1
		}
		sc[o] = float32(s)
		for i := range in {
			v := math.Round(float64(w[o*in+i]) / s)
			qs[i*out+o] = byte(int8(max(-127, min(127, v))))
		}
	}
	return qs, sc
}

// msDomain is ONNX Runtime's operator domain (for the quantized dense layers).
const msDomain = "com.microsoft"

// addTransposed adds the [out, in] variable at path as the [in, out] initializer name.
func (b *graphBuilder) addTransposed(name, path string, in, out int) {
	if w := b.variable(path, out, in); w != nil {
		wt := make([]float32, len(w))
		for o := range out {
			for i := range in {
				wt[i*out+o] = w[o*in+i]
			}
		}
		b.inits = append(b.inits, tensorProto(name, wt, []int64{int64(in), int64(out)}))
	}
}

// layerNorm is LayerNormalization over the last axis with BERT's epsilon (GoMLX computes
// mean, variance of the centred values, (x - mean) / sqrt(var + eps), then gamma and beta:
// the same formula).
func (b *graphBuilder) layerNorm(x, scope string, h int) string {
	gamma := b.weight(scope+"/weight", []int{h})
	beta := b.weight(scope+"/bias", []int{h})
	return b.op("LayerNormalization", []string{x, gamma, beta},
		attrInt("axis", -1), attrFloat("epsilon", float32(models.BertLayerNormEpsilon)))
}

// gelu is 0.5 * (x * (1 + erf(x / sqrt 2))) (opset 17 has no Gelu), written in the form
// ONNX Runtime's GeluFusion turns into one Gelu kernel; GoMLX computes the same formula in
// another order, which the parity check shows changes nothing that matters.
func (b *graphBuilder) gelu(x string) string {
	e := b.op("Erf", []string{b.op("Div", []string{x, b.f32(float32(math.Sqrt2))})})
	return b.op("Mul", []string{b.op("Mul", []string{x, b.op("Add", []string{e, b.f32(1)})}), b.f32(0.5)})
}

func (b *graphBuilder) unsqueeze(x string, axes ...int64) string {
	return b.op("Unsqueeze", []string{x, b.i64s(axes...)})
}

func (b *graphBuilder) squeeze(x string, axes ...int64) string {
	return b.op("Squeeze", []string{x, b.i64s(axes...)})
}

func (b *graphBuilder) toFloat(x string) string {
	return b.op("Cast", []string{x}, attrInt("to", int64(onnx.TensorProto_FLOAT)))
}

// reduceSum sums over one axis without keeping it (opset 13+: axes is an input).
func (b *graphBuilder) reduceSum(x string, axis int64) string {
	return b.op("ReduceSum", []string{x, b.i64s(axis)}, attrInt("keepdims", 0))
}

// reduceMax takes the max over one axis without keeping it (opset 17: axes is an attribute).
func (b *graphBuilder) reduceMax(x string, axis int64) string {
	return b.op("ReduceMax", []string{x}, attrInts("axes", axis), attrInt("keepdims", 0))
}

// oneMinus is 1 - x.
func (b *graphBuilder) oneMinus(x string) string { return b.op("Sub", []string{b.f32(1), x}) }

// encoder is models.BertEncodeWithTypes (types "" for all-zero token types, as
// models.BertEncode) over ids and mask [N, T] (int32), returning [N, T, H].
func (b *graphBuilder) encoder(cfg features.BertConfig, ids, types, mask string) string {
	root := models.EncoderScope + "/"
	h, heads := cfg.Hidden, cfg.Heads
	dk := h / heads
	emb := root + "embeddings/"
	word := b.weight(emb+"word_embeddings/weight", []int{cfg.VocabSize, h})
	posTable := b.weight(emb+"position_embeddings/weight", []int{cfg.MaxPositions, h})
	typeTable := b.weight(emb+"token_type_embeddings/weight", []int{cfg.TypeVocab, h})

	x := b.op("Gather", []string{word, ids}) // [N, T, H]
	seq := b.op("Gather", []string{b.op("Shape", []string{ids}), b.i64(1)})
	posEmb := b.op("Gather", []string{posTable, b.op("Range", []string{b.i64(0), seq, b.i64(1)})}) // [T, H]
	if types == "" {
		typeEmb := b.op("Gather", []string{typeTable, b.i64(0)}) // [H]: row 0
		x = b.op("Add", []string{x, b.op("Add", []string{posEmb, typeEmb})})
	} else {
		typeEmb := b.op("Gather", []string{typeTable, types}) // [N, T, H]
		x = b.op("Add", []string{b.op("Add", []string{x, typeEmb}), posEmb})
	}
	x = b.layerNorm(x, emb+"LayerNorm", h)

	isPad := b.toFloat(b.op("Equal", []string{mask, b.i32(0)}))
	maskBias := b.unsqueeze(b.op("Mul", []string{isPad, b.f32(maskLogit)}), 1, 2) // [N, 1, 1, T]
	splitShape := b.i64s(0, 0, int64(heads), int64(dk))
	mergeShape := b.i64s(0, 0, int64(h))
	for layer := range cfg.Layers {
		p := root + "encoder/layer/" + strconv.Itoa(layer) + "/"
		q := b.op("Mul", []string{b.dense(x, p+"attention/self/query", h, h), b.f32(float32(1 / math.Sqrt(float64(dk))))})
		k := b.dense(x, p+"attention/self/key", h, h)
		v := b.dense(x, p+"attention/self/value", h, h)
		qh := b.op("Transpose", []string{b.op("Reshape", []string{q, splitShape})}, attrInts("perm", 0, 2, 1, 3)) // [N, heads, T, dk]
		kh := b.op("Transpose", []string{b.op("Reshape", []string{k, splitShape})}, attrInts("perm", 0, 2, 3, 1)) // [N, heads, dk, T]
		vh := b.op("Transpose", []string{b.op("Reshape", []string{v, splitShape})}, attrInts("perm", 0, 2, 1, 3)) // [N, heads, T, dk]
		scores := b.op("Add", []string{b.op("MatMul", []string{qh, kh}), maskBias})
		probs := b.op("Softmax", []string{scores}, attrInt("axis", -1))
		ctx := b.op("MatMul", []string{probs, vh})                                                                  // [N, heads, T, dk]
		ctx = b.op("Reshape", []string{b.op("Transpose", []string{ctx}, attrInts("perm", 0, 2, 1, 3)), mergeShape}) // [N, T, H]
		attn := b.dense(ctx, p+"attention/output/dense", h, h)
		x = b.layerNorm(b.op("Add", []string{x, attn}), p+"attention/output/LayerNorm", h)
		ff := b.gelu(b.dense(x, p+"intermediate/dense", h, cfg.Intermediate))
		ff = b.dense(ff, p+"output/dense", cfg.Intermediate, h)
		x = b.layerNorm(b.op("Add", []string{x, ff}), p+"output/LayerNorm", h)
	}
	return x
}

// biAttention is models' biAttention: act [B, A, Ta, H] (mask [B, A, Ta] float), st
// [B, Ts, H] (mask [B, Ts] float) -> [B, A, Ta, 4H].
func (b *graphBuilder) biAttention(h int, act, actMask, st, stMask string) string {
	scope := models.PolicyScope + "/choice/attention/"
	wIn := b.weight(scope+"input_linear/weight", []int{h}, int64(h), 1)
	wMem := b.weight(scope+"memory_linear/weight", []int{h}, int64(h), 1)
	scale := b.weight(scope+"dot_scale", []int{h})

	inDot := b.op("MatMul", []string{act, wIn})                                       // [B, A, Ta, 1]
	memDot := b.squeeze(b.op("MatMul", []string{st, wMem}), 2)                        // [B, Ts]
	scaled := b.op("Mul", []string{act, scale})                                       // [B, A, Ta, H]
	stT := b.unsqueeze(b.op("Transpose", []string{st}, attrInts("perm", 0, 2, 1)), 1) // [B, 1, H, Ts]
	cross := b.op("MatMul", []string{scaled, stT})                                    // [B, A, Ta, Ts]
	memBias := b.op("Mul", []string{b.oneMinus(stMask), b.f32(maskLogit)})
	att := b.op("Add", []string{cross, inDot})
	att = b.op("Add", []string{att, b.unsqueeze(b.op("Add", []string{memDot, memBias}), 1, 2)})

	w1 := b.op("Softmax", []string{att}, attrInt("axis", -1))
	c := b.op("MatMul", []string{w1, b.unsqueeze(st, 1)}) // [B, A, Ta, H]
	best := b.reduceMax(att, -1)                          // [B, A, Ta]
	best = b.op("Add", []string{best, b.op("Mul", []string{b.oneMinus(actMask), b.f32(maskLogit)})})
	w2 := b.op("Softmax", []string{best}, attrInt("axis", -1))
	q2c := b.op("MatMul", []string{b.unsqueeze(w2, 2), act}) // [B, A, 1, H]
	return b.op("Concat", []string{act, c, b.op("Mul", []string{act, c}), b.op("Mul", []string{q2c, c})}, attrInt("axis", -1))
}

// inputInfo describes a graph input or output.
func inputInfo(name string, elem onnx.TensorProto_DataType, dims ...string) *onnx.ValueInfoProto {
	shape := &onnx.TensorShapeProto{}
	for _, d := range dims {
		shape.Dim = append(shape.Dim, &onnx.TensorShapeProto_Dimension{Value: &onnx.TensorShapeProto_Dimension_DimParam{DimParam: d}})
	}
	return &onnx.ValueInfoProto{Name: name, Type: &onnx.TypeProto{Value: &onnx.TypeProto_TensorType{
		TensorType: &onnx.TypeProto_Tensor{ElemType: int32(elem), Shape: shape}}}}
}

// GraphOptions choose how the exported graphs compute.
type GraphOptions struct {
	// Quantize is "" (float32) or "int8": every dense layer of the encoder and heads with
	// more than one output becomes an int8 DynamicQuantizeMatMul of ONNX Runtime (domain
	// com.microsoft; not a standard ONNX op), about 1.9x faster on a CPU with AVX-512 VNNI.
	// Embeddings, attention products, layer norms and the BiDAF products stay float32.
	Quantize string
}

// Quantizations lists the accepted GraphOptions.Quantize values.
var Quantizations = []string{"", "int8"}

// graph input names.
const (
	inStateIDs = "state_ids"
	inStateMsk = "state_mask"
	inStateTyp = "state_type_ids"
	inActIDs   = "action_ids"
	inActMsk   = "action_mask"
	inActIdx   = "action_index"
	inActValid = "action_valid"
	inActPos   = "action_pos"
	inActH     = "action_hidden"
)

func newBuilder(ck *models.Checkpoint, opts GraphOptions) (*graphBuilder, error) {
	if err := ck.Meta.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	switch opts.Quantize {
	case "", "int8":
	default:
		return nil, fmt.Errorf("export: unknown quantization %q (want none or int8)", opts.Quantize)
	}
	return &graphBuilder{vars: ck.Model, consts: map[string]string{}, used: map[string]bool{}, inited: map[string]bool{},
		quant: opts.Quantize == "int8"}, nil
}

// BuildGraph builds the ONNX model (opset 17) of the policy in a loaded checkpoint: inputs
// onnxrt.InputNames (all models.PolicyInputs), outputs logits [B, A] and value [B], with
// dynamic axes B (states), Ts (state tokens), A (action slots), U (distinct actions) and Ta
// (action tokens). Every variable of the choice and value heads and of the encoder is used;
// the masked-LM head (pretraining only) is left out.
func BuildGraph(ck *models.Checkpoint, opts GraphOptions) (*onnx.ModelProto, error) {
	b, err := newBuilder(ck, opts)
	if err != nil {
		return nil, err
	}
	uniqH := b.encoder(ck.Meta.Policy.Bert, inActIDs, "", inActMsk) // [U, Ta, H]
	b.head(ck.Meta.Policy, uniqH)
	return b.model(ck, "shopagent_policy", onnxrt.InputNames, onnxrt.OutputNames,
		"shopagent choice policy (models.PolicyGraph): action logits [B, A] (padded slots -1e9) and state values [B]")
}

// BuildActionGraph builds the action encoder of the policy (actions.onnx): inputs
// action_ids and action_mask [U, Ta] (int32), output action_hidden [U, Ta, H], the shared
// BERT encoder's states of each action's tokens. A token's state does not depend on the
// padding after it, so a server may cache each action's rows and reuse them in any batch.
func BuildActionGraph(ck *models.Checkpoint, opts GraphOptions) (*onnx.ModelProto, error) {
	b, err := newBuilder(ck, opts)
	if err != nil {
		return nil, err
	}
	b.opTo("Identity", inActH, []string{b.encoder(ck.Meta.Policy.Bert, inActIDs, "", inActMsk)})
	return b.model(ck, "shopagent_policy_actions", onnxrt.ActionInputNames, onnxrt.ActionOutputNames,
		"shopagent choice policy, action encoder: the encoder states [U, Ta, H] of the distinct actions' tokens")
}

// BuildScorerGraph builds the policy over encoded actions (scorer.onnx): the inputs of
// BuildGraph plus action_hidden [U, Ta, H] (BuildActionGraph's output for action_ids and
// action_mask), its outputs. BuildActionGraph followed by BuildScorerGraph computes what
// BuildGraph computes.
func BuildScorerGraph(ck *models.Checkpoint, opts GraphOptions) (*onnx.ModelProto, error) {
	b, err := newBuilder(ck, opts)
	if err != nil {
		return nil, err
	}
	b.head(ck.Meta.Policy, inActH)
	return b.model(ck, "shopagent_policy_scorer", onnxrt.ScorerInputNames, onnxrt.OutputNames,
		"shopagent choice policy over encoded actions: action logits [B, A] (padded slots -1e9) and state values [B]")
}

// head adds the state encoder, the choice head over the distinct actions' encoder states
// uniqH [U, Ta, H] and the value head, writing the outputs logits and value. The
// features.ModelWebShop choice model reads neither state_type_ids, action_pos nor (beyond
// the action encoder) action_ids: the graph keeps them as inputs, unused, so that both
// models have the same interface.
func (b *graphBuilder) head(cfg features.PolicyConfig, uniqH string) {
	h := cfg.Bert.Hidden
	priors := cfg.ChoiceModel() == features.ModelShopAgent
	stateTypes := ""
	if priors {
		stateTypes = inStateTyp
	}
	stateH := b.encoder(cfg.Bert, inStateIDs, stateTypes, inStateMsk) // [B, Ts, H]

	actH := b.op("Gather", []string{uniqH, inActIdx})          // [B, A, Ta, H]
	actMaskRaw := b.op("Gather", []string{inActMsk, inActIdx}) // [B, A, Ta]: 0 pad, 1 token, 2 content
	actMask := b.toFloat(b.op("Greater", []string{actMaskRaw, b.i32(0)}))
	stateMask := b.toFloat(inStateMsk)

	out := b.biAttention(h, actH, actMask, stateH, stateMask)
	var em, actContent string
	width := 4 * h
	if priors {
		actContent = b.toFloat(b.op("Equal", []string{actMaskRaw, b.i32(2)}))
		insMask := b.op("Mul", []string{stateMask, b.toFloat(b.op("Equal", []string{inStateTyp, b.i32(1)}))})
		// Exact match: 1 where the action token occurs among the instruction's tokens.
		gathered := b.op("Gather", []string{inActIDs, inActIdx}) // [B, A, Ta]
		eq := b.op("Equal", []string{b.unsqueeze(gathered, 3), b.unsqueeze(inStateIDs, 1, 2)})
		m := b.op("Mul", []string{b.toFloat(eq), b.unsqueeze(insMask, 1, 2)}) // [B, A, Ta, Ts]
		em = b.op("Mul", []string{b.reduceMax(m, -1), actContent})            // [B, A, Ta]
		out = b.op("Concat", []string{out, b.unsqueeze(em, 3)}, attrInt("axis", -1))
		width++
	}

	choice := models.PolicyScope + "/choice/"
	hid := b.op("Relu", []string{b.dense(out, choice+"linear_1", width, h)})
	sum := b.reduceSum(b.op("Mul", []string{hid, b.unsqueeze(actMask, 3)}), 2) // [B, A, H]
	count := b.op("Max", []string{b.reduceSum(actMask, 2), b.f32(1)})          // [B, A]
	pooled := b.op("Div", []string{sum, b.unsqueeze(count, 2)})                // [B, A, H]
	logits := b.squeeze(b.dense(pooled, choice+"linear_2", h, 1), 2)           // [B, A]
	if priors {
		nContent := b.op("Max", []string{b.reduceSum(actContent, 2), b.f32(1)}) // [B, A]
		matchFrac := b.op("Div", []string{b.reduceSum(em, 2), nContent})        // [B, A]
		mw := b.op("Mul", []string{b.weight(choice+"match/weight", []int{1}), b.f32(matchScale)})
		logits = b.op("Add", []string{logits, b.op("Mul", []string{matchFrac, mw})})
		posBias := b.weight(choice+"position/bias", []int{features.MaxResultPosition + 1})
		logits = b.op("Add", []string{logits, b.op("Gather", []string{posBias, inActPos})})
	}
	valid := b.op("Greater", []string{inActValid, b.f32(0)})
	b.opTo("Where", "logits", []string{valid, logits, b.f32(maskLogit)})

	// Value head on [CLS].
	cls := b.op("Gather", []string{stateH, b.i64(0)}, attrInt("axis", 1)) // [B, H]
	v := b.dense(cls, models.PolicyScope+"/value/linear_1", h, models.ValueHidden)
	v = b.op("Max", []string{v, b.op("Mul", []string{v, b.f32(0.01)})})
	v = b.dense(v, models.PolicyScope+"/value/linear_2", models.ValueHidden, 1)
	b.opTo("Squeeze", "value", []string{v, b.i64s(1)})
}

// inputInfos maps graph input and output names to their types and dynamic axes.
var inputInfos = map[string]struct {
	elem onnx.TensorProto_DataType
	dims []string
}{
	inStateIDs: {onnx.TensorProto_INT32, []string{"B", "Ts"}}, inStateMsk: {onnx.TensorProto_INT32, []string{"B", "Ts"}},
	inStateTyp: {onnx.TensorProto_INT32, []string{"B", "Ts"}}, inActIDs: {onnx.TensorProto_INT32, []string{"U", "Ta"}},
	inActMsk: {onnx.TensorProto_INT32, []string{"U", "Ta"}}, inActIdx: {onnx.TensorProto_INT32, []string{"B", "A"}},
	inActValid: {onnx.TensorProto_FLOAT, []string{"B", "A"}}, inActPos: {onnx.TensorProto_INT32, []string{"B", "A"}},
	inActH:   {onnx.TensorProto_FLOAT, []string{"U", "Ta", "H"}},
	"logits": {onnx.TensorProto_FLOAT, []string{"B", "A"}}, "value": {onnx.TensorProto_FLOAT, []string{"B"}},
}

// model wraps the builder's nodes in a model with the named inputs and outputs.
func (b *graphBuilder) model(ck *models.Checkpoint, name string, inputs, outputs []string, doc string) (*onnx.ModelProto, error) {
	if b.err != nil {
		return nil, b.err
	}
	g := &onnx.GraphProto{Name: name, Node: b.nodes, Initializer: b.inits, DocString: doc}
	for _, list := range []struct {
		names []string
		to    *[]*onnx.ValueInfoProto
	}{{inputs, &g.Input}, {outputs, &g.Output}} {
		for _, n := range list.names {
			info, ok := inputInfos[n]
			if !ok {
				return nil, fmt.Errorf("export: no type for graph input or output %s", n)
			}
			*list.to = append(*list.to, inputInfo(n, info.elem, info.dims...))
		}
	}
	opsets := []*onnx.OperatorSetIdProto{{Domain: "", Version: onnxrt.Opset}}
	if b.quant {
		opsets = append(opsets, &onnx.OperatorSetIdProto{Domain: msDomain, Version: 1})
	}
	cfg := ck.Meta.Policy
	return &onnx.ModelProto{
		IrVersion:    8, // the IR version of opset 17 (ONNX 1.12)
		OpsetImport:  opsets,
		ProducerName: "shopagent", ProducerVersion: strconv.Itoa(onnxrt.FormatVersion),
		Graph: g,
		MetadataProps: []*onnx.StringStringEntryProto{
			{Key: "preset", Value: cfg.Preset}, {Key: "job", Value: ck.Meta.Job},
			{Key: "step", Value: strconv.FormatInt(ck.Meta.Step, 10)},
		},
	}, nil
}
