package models

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"shopagent/features"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Importing a Hugging Face BERT checkpoint.
//
// ImportHF reads a BERT model.safetensors (BertModel names, or BertForPreTraining /
// BertForMaskedLM names with the "bert." prefix; old TF-style LayerNorm "gamma"/"beta"
// names are accepted), its config.json and vocab.txt, and writes a checkpoint directory
// (checkpoint.json, model.safetensors, vocab.txt; job "import-hf", step 0) that
// `train il --init` loads like a pretraining run:
//
//   - every encoder tensor (BertVariableNames) must be present with its shape;
//   - F32, F64, F16 and BF16 tensors are converted to float32; integer buffers such as
//     embeddings.position_ids are skipped;
//   - the pooler (pooler.dense) is kept under policy/bert/pooler (BertPool uses it);
//   - the masked-LM head cls.predictions.{transform.*, bias} is kept under
//     policy/cls/predictions (MLMHead); its decoder weight is tied to the word embeddings
//     and is not stored; other heads (cls.seq_relationship, classifiers) are skipped and
//     listed in the result;
//   - the tokenizer appends the four WebShop tokens to vocab.txt when it lacks them, so the
//     word embeddings (and the MLM bias) get as many extra rows, initialised to the mean of
//     the existing rows (what Hugging Face's resize_token_embeddings does by default in
//     recent versions, without the random part).

// HFBertConfig is the part of a Hugging Face BERT config.json that ImportHF reads.
type HFBertConfig struct {
	ModelType             string   `json:"model_type"`
	VocabSize             int      `json:"vocab_size"`
	HiddenSize            int      `json:"hidden_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	IntermediateSize      int      `json:"intermediate_size"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	TypeVocabSize         int      `json:"type_vocab_size"`
	HiddenAct             string   `json:"hidden_act"`
	LayerNormEps          *float64 `json:"layer_norm_eps"`
	HiddenDropoutProb     *float64 `json:"hidden_dropout_prob"`
	PositionEmbeddingType string   `json:"position_embedding_type"`
}

// ReadHFBertConfig reads a Hugging Face config.json.
func ReadHFBertConfig(path string) (HFBertConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return HFBertConfig{}, fmt.Errorf("models: HF config: %w", err)
	}
	var c HFBertConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return HFBertConfig{}, fmt.Errorf("models: HF config %s: %w", path, err)
	}
	return c, nil
}

// BertConfig converts the HF configuration to an encoder configuration and names the
// preset it matches ("tiny", "small", "base"; the vocabulary size is not compared) or
// "custom". It refuses models the encoder cannot run exactly: a model type other than
// "bert", an activation other than exact GELU, relative position embeddings, or a
// LayerNorm epsilon other than BERT's 1e-12.
func (c HFBertConfig) BertConfig() (features.BertConfig, string, error) {
	if c.ModelType != "" && c.ModelType != "bert" {
		return features.BertConfig{}, "", fmt.Errorf("models: HF config: model_type %q, only \"bert\" is supported", c.ModelType)
	}
	if c.HiddenAct != "" && c.HiddenAct != "gelu" {
		return features.BertConfig{}, "", fmt.Errorf("models: HF config: hidden_act %q, the encoder computes the exact GELU (\"gelu\")", c.HiddenAct)
	}
	if c.PositionEmbeddingType != "" && c.PositionEmbeddingType != "absolute" {
		return features.BertConfig{}, "", fmt.Errorf("models: HF config: position_embedding_type %q, only \"absolute\" is supported", c.PositionEmbeddingType)
	}
	if c.LayerNormEps != nil && math.Abs(*c.LayerNormEps-BertLayerNormEpsilon) > 1e-15 {
		return features.BertConfig{}, "", fmt.Errorf("models: HF config: layer_norm_eps %g, the encoder uses BERT's %g", *c.LayerNormEps, BertLayerNormEpsilon)
	}
	cfg := features.BertConfig{
		VocabSize: c.VocabSize, Hidden: c.HiddenSize, Layers: c.NumHiddenLayers, Heads: c.NumAttentionHeads,
		Intermediate: c.IntermediateSize, MaxPositions: c.MaxPositionEmbeddings, TypeVocab: c.TypeVocabSize, Dropout: 0.1,
	}
	if c.HiddenDropoutProb != nil {
		cfg.Dropout = *c.HiddenDropoutProb
	}
	if err := cfg.Validate(); err != nil {
		return features.BertConfig{}, "", fmt.Errorf("models: HF config (hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, max_position_embeddings, type_vocab_size, vocab_size): %w", err)
	}
	preset := "custom"
	for _, name := range features.PresetNames {
		p, _ := features.Preset(name)
		p.VocabSize, p.Dropout = cfg.VocabSize, cfg.Dropout
		if p == cfg {
			preset = name
			break
		}
	}
	return cfg, preset, nil
}

// HFImportOptions configures ImportHF.
type HFImportOptions struct {
	// Model is a model.safetensors file or a directory holding one.
	Model string
	// Config and Vocab default to config.json and vocab.txt beside the model file.
	Config, Vocab string
	// MaxStateLen and MaxActionLen go to the checkpoint's PolicyConfig (0: the defaults,
	// capped by the model's positions).
	MaxStateLen, MaxActionLen int
}

// HFImportResult describes an import.
type HFImportResult struct {
	// Dir is the checkpoint directory written; Meta its checkpoint.json.
	Dir  string
	Meta CheckpointMeta
	// Encoder, Pooler and MLMHead count the tensors imported into each part.
	Encoder, Pooler, MLMHead int
	// AddedTokens is the number of vocabulary tokens appended (the WebShop tokens) and
	// so of rows added to the word embeddings.
	AddedTokens int
	// Skipped lists the tensors of the file not imported (other heads, integer buffers,
	// the tied decoder).
	Skipped []string
}

// HFTensorName canonicalises a Hugging Face tensor name: it strips a "bert." prefix and
// renames TF-style LayerNorm parameters ("LayerNorm.gamma" -> "LayerNorm.weight",
// "LayerNorm.beta" -> "LayerNorm.bias").
func HFTensorName(name string) string {
	name = strings.TrimPrefix(name, "bert.")
	if strings.HasSuffix(name, "LayerNorm.gamma") {
		name = strings.TrimSuffix(name, "gamma") + "weight"
	} else if strings.HasSuffix(name, "LayerNorm.beta") {
		name = strings.TrimSuffix(name, "beta") + "bias"
	}
	return name
}

// mlmHeadNames are the cls.predictions tensors MLMHead uses, except the bias (vocabulary
// sized, handled apart).
var mlmHeadNames = []string{
	"cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
	"cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
}

// ImportHF converts a Hugging Face BERT checkpoint into a checkpoint directory outDir (which
// must not exist). See the comment at the top of hfimport.go for what is kept.
func ImportHF(opts HFImportOptions, outDir string) (*HFImportResult, error) {
	if opts.Model == "" {
		return nil, fmt.Errorf("models: import HF: no model given")
	}
	if outDir == "" {
		return nil, fmt.Errorf("models: import HF: no output directory given")
	}
	modelPath := opts.Model
	st, err := os.Stat(modelPath)
	if err != nil {
		return nil, fmt.Errorf("models: import HF: %w", err)
	}
	if st.IsDir() {
		modelPath = filepath.Join(modelPath, "model.safetensors")
		if _, err := os.Stat(modelPath); err != nil {
			if _, e2 := os.Stat(filepath.Join(opts.Model, "model.safetensors.index.json")); e2 == nil {
				return nil, fmt.Errorf("models: import HF: %s holds a sharded checkpoint (model.safetensors.index.json), which is not supported; merge the shards into one model.safetensors", opts.Model)
			}
			return nil, fmt.Errorf("models: import HF: %s has no model.safetensors: %w", opts.Model, err)
		}
	}
	dir := filepath.Dir(modelPath)
	cfgPath, vocabPath := opts.Config, opts.Vocab
	if cfgPath == "" {
		cfgPath = filepath.Join(dir, "config.json")
	}
	if vocabPath == "" {
		vocabPath = filepath.Join(dir, CheckpointVocabFile)
	}
	hfc, err := ReadHFBertConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	bert, preset, err := hfc.BertConfig()
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, cfgPath)
	}
	tok, err := features.LoadVocab(vocabPath)
	if err != nil {
		return nil, err
	}
	raw, nonFloat, sum, err := ReadHFSafetensors(modelPath)
	if err != nil {
		return nil, err
	}

	// Canonical names.
	byName := map[string]*tensors.Tensor{}
	origName := map[string]string{}
	for name, t := range raw {
		c := HFTensorName(name)
		if prev, dup := origName[c]; dup {
			return nil, fmt.Errorf("models: import HF %s: tensors %q and %q both map to %q", modelPath, prev, name, c)
		}
		byName[c], origName[c] = t, name
	}
	res := &HFImportResult{Skipped: nonFloat}
	model := map[string]*tensors.Tensor{}
	used := map[string]bool{}
	path := func(scope, hf string) string { return scope + "/" + strings.ReplaceAll(hf, ".", "/") }
	take := func(hf string, want shapes.Shape) (*tensors.Tensor, error) {
		t, ok := byName[hf]
		if !ok {
			return nil, fmt.Errorf("models: import HF %s: tensor %q (or \"bert.%s\") is missing", modelPath, hf, hf)
		}
		if !t.Shape().Equal(want) {
			return nil, fmt.Errorf("models: import HF %s: tensor %q has shape %v, config.json implies %v", modelPath, origName[hf], t.Shape().Dimensions, want.Dimensions)
		}
		used[hf] = true
		return t, nil
	}

	// Encoder.
	wordName := "embeddings.word_embeddings.weight"
	for _, v := range BertVariableNames(bert) {
		t, err := take(v.Name, v.Shape)
		if err != nil {
			return nil, err
		}
		model[path(EncoderScope, v.Name)] = t
		res.Encoder++
	}
	for c := range byName {
		if !used[c] && (strings.HasPrefix(c, "embeddings.") || strings.HasPrefix(c, "encoder.")) {
			return nil, fmt.Errorf("models: import HF %s: unexpected encoder tensor %q for a %d-layer config (check config.json)", modelPath, origName[c], bert.Layers)
		}
	}
	// Pooler: all or nothing.
	poolerVars := BertPoolerVariableNames(bert)
	if _, ok := byName[poolerVars[0].Name]; ok {
		for _, v := range poolerVars {
			t, err := take(v.Name, v.Shape)
			if err != nil {
				return nil, err
			}
			model[path(EncoderScope, v.Name)] = t
			res.Pooler++
		}
	}
	// Masked-LM head: all or nothing.
	f32 := func(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }
	if _, ok := byName[mlmHeadNames[0]]; ok {
		want := map[string]shapes.Shape{
			mlmHeadNames[0]: f32(bert.Hidden, bert.Hidden), mlmHeadNames[1]: f32(bert.Hidden),
			mlmHeadNames[2]: f32(bert.Hidden), mlmHeadNames[3]: f32(bert.Hidden),
		}
		for _, n := range mlmHeadNames {
			t, err := take(n, want[n])
			if err != nil {
				return nil, err
			}
			model[path(PolicyScope, n)] = t
			res.MLMHead++
		}
		biasName := "cls.predictions.bias"
		if _, ok := byName[biasName]; !ok {
			biasName = "cls.predictions.decoder.bias"
		}
		bias, err := take(biasName, f32(bert.VocabSize))
		if err != nil {
			return nil, err
		}
		model[path(PolicyScope, "cls.predictions.bias")] = bias
		res.MLMHead++
		if dec, ok := byName["cls.predictions.decoder.weight"]; ok {
			used["cls.predictions.decoder.weight"] = true
			if !dec.Shape().Equal(f32(bert.VocabSize, bert.Hidden)) || !sameValues(dec, byName[wordName]) {
				return nil, fmt.Errorf("models: import HF %s: cls.predictions.decoder.weight differs from the word embeddings; only a tied decoder is supported", modelPath)
			}
			res.Skipped = append(res.Skipped, origName["cls.predictions.decoder.weight"]+" (tied to the word embeddings)")
		}
		if _, ok := byName["cls.predictions.decoder.bias"]; ok && !used["cls.predictions.decoder.bias"] {
			used["cls.predictions.decoder.bias"] = true
			res.Skipped = append(res.Skipped, origName["cls.predictions.decoder.bias"]+" (tied to cls.predictions.bias)")
		}
	}
	for c := range byName {
		if !used[c] {
			res.Skipped = append(res.Skipped, origName[c])
		}
	}
	sort.Strings(res.Skipped)

	// The vocabulary: vocab.txt plus the WebShop tokens the tokenizer appends.
	rows := bert.VocabSize
	added := tok.VocabSize() - rows
	if added < 0 || added > len(features.SpecialTokens()) {
		return nil, fmt.Errorf("models: import HF: %s gives %d tokens (with the WebShop tokens), the word embeddings have %d rows (vocab_size); the vocabulary does not belong to this model", vocabPath, tok.VocabSize(), rows)
	}
	if added > 0 {
		wp := path(EncoderScope, wordName)
		model[wp] = appendMeanRows(model[wp], added)
		bp := path(PolicyScope, "cls.predictions.bias")
		if b, ok := model[bp]; ok {
			model[bp] = appendMeanRows(b, added)
		}
		bert.VocabSize += added
	}
	res.AddedTokens = added

	maxState, maxAction := opts.MaxStateLen, opts.MaxActionLen
	if maxState <= 0 {
		maxState = features.DefaultMaxStateLen
	}
	if maxAction <= 0 {
		maxAction = features.DefaultMaxActionLen
	}
	pcfg := features.PolicyConfig{Preset: preset, Bert: bert, MaxStateLen: min(maxState, bert.MaxPositions), MaxActionLen: min(maxAction, bert.MaxPositions)}
	if err := pcfg.Validate(); err != nil {
		return nil, fmt.Errorf("models: import HF: %w", err)
	}
	meta := CheckpointMeta{Job: "import-hf", Step: 0, Policy: pcfg, Info: map[string]any{
		"source_model": modelPath, "source_sha256": sum, "source_config": cfgPath, "source_vocab": vocabPath,
		"hf_vocab_size": rows, "added_tokens": added, "skipped": res.Skipped,
		"encoder_tensors": res.Encoder, "pooler_tensors": res.Pooler, "mlm_head_tensors": res.MLMHead,
	}}
	if err := WriteCheckpoint(outDir, meta, model, nil, tok); err != nil {
		return nil, err
	}
	meta.Version, meta.Vocab = CheckpointVersion, CheckpointVocabFile
	res.Dir, res.Meta = outDir, meta
	return res, nil
}

// appendMeanRows returns t ([rows, ...] float32) with n more rows, each the mean of t's rows.
func appendMeanRows(t *tensors.Tensor, n int) *tensors.Tensor {
	dims := t.Shape().Dimensions
	old := tensors.MustCopyFlatData[float32](t)
	width := 1
	for _, d := range dims[1:] {
		width *= d
	}
	mean := make([]float64, width)
	for r := 0; r < dims[0]; r++ {
		for k := range width {
			mean[k] += float64(old[r*width+k])
		}
	}
	out := make([]float32, 0, len(old)+n*width)
	out = append(out, old...)
	for range n {
		for k := range width {
			out = append(out, float32(mean[k]/float64(max(1, dims[0]))))
		}
	}
	newDims := append([]int{dims[0] + n}, dims[1:]...)
	return tensors.FromFlatDataAndDimensions(out, newDims...)
}

func sameValues(a, b *tensors.Tensor) bool {
	if a == nil || b == nil || !a.Shape().Equal(b.Shape()) {
		return false
	}
	x, y := tensors.MustCopyFlatData[float32](a), tensors.MustCopyFlatData[float32](b)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// ReadHFSafetensors reads a Hugging Face safetensors file: its floating-point tensors (F32,
// F64, F16, BF16) converted to float32, by name; the names of the other tensors (integer
// buffers), which are not read; and the file's SHA-256 (hex). A truncated or corrupt file
// gives an error naming it.
func ReadHFSafetensors(path string) (map[string]*tensors.Tensor, []string, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, "", fmt.Errorf("models: safetensors: %w", err)
	}
	h := sha256.Sum256(data)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("models: safetensors %s: corrupt file: %s", path, fmt.Sprintf(format, args...))
	}
	if len(data) < 8 {
		return nil, nil, "", bad("%d bytes", len(data))
	}
	hlen := binary.LittleEndian.Uint64(data[:8])
	if hlen > maxSafetensorsHeader || hlen > uint64(len(data)-8) {
		return nil, nil, "", bad("header length %d for a %d-byte file", hlen, len(data))
	}
	var header map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data[8 : 8+hlen]))
	if err := dec.Decode(&header); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, "", bad("header: %v", err)
	}
	body := data[8+hlen:]
	out := map[string]*tensors.Tensor{}
	var other []string
	for _, name := range sortedKeys(header) {
		if name == "__metadata__" {
			continue
		}
		var e safetensorsEntry
		if err := json.Unmarshal(header[name], &e); err != nil {
			return nil, nil, "", bad("tensor %s: %v", name, err)
		}
		size := int64(1)
		for _, d := range e.Shape {
			if d < 0 {
				return nil, nil, "", bad("tensor %s: negative dimension in %v", name, e.Shape)
			}
			size *= int64(d)
		}
		elem, float := hfDTypeSize(e.DType)
		if elem == 0 {
			return nil, nil, "", bad("tensor %s: unknown dtype %q", name, e.DType)
		}
		lo, hi := e.Offsets[0], e.Offsets[1]
		if lo < 0 || hi < lo || hi > int64(len(body)) || hi-lo != size*elem {
			return nil, nil, "", bad("tensor %s: offsets %v for %s%v in %d bytes of data", name, e.Offsets, e.DType, e.Shape, len(body))
		}
		if !float {
			other = append(other, name+" ("+e.DType+")")
			continue
		}
		out[name] = tensors.FromFlatDataAndDimensions(decodeFloats(e.DType, body[lo:hi]), e.Shape...)
	}
	return out, other, hex.EncodeToString(h[:]), nil
}

// hfDTypeSize returns the element size of a safetensors dtype (0 when unknown) and whether
// it is a floating-point type ImportHF converts.
func hfDTypeSize(dt string) (int64, bool) {
	switch dt {
	case "F64":
		return 8, true
	case "F32":
		return 4, true
	case "F16", "BF16":
		return 2, true
	case "I64", "U64":
		return 8, false
	case "I32", "U32":
		return 4, false
	case "I16", "U16":
		return 2, false
	case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2":
		return 1, false
	}
	return 0, false
}

// decodeFloats converts little-endian F64/F32/F16/BF16 data to float32.
func decodeFloats(dt string, b []byte) []float32 {
	var out []float32
	switch dt {
	case "F64":
		out = make([]float32, len(b)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case "F32":
		out = make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case "F16":
		out = make([]float32, len(b)/2)
		for i := range out {
			out[i] = Float16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case "BF16":
		out = make([]float32, len(b)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	}
	return out
}

// Float16ToFloat32 converts IEEE 754 half-precision bits to a float32 (exactly: every
// half-precision value, subnormals, infinities and NaNs included, is a float32).
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0:
		f := float32(mant) / (1 << 24) // subnormal (or zero): mant x 2^-24
		if sign != 0 {
			f = -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	default:
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	}
}
