package models

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// The fixture models/testdata/hf-tiny is written by models/testdata/gen_hf_tiny.py (numpy):
// HF-named weights and the expected encoder output from an independent numpy forward pass.
const hfTinyDir = "testdata/hf-tiny"

type hfExpected struct {
	IDs        [][]int32     `json:"ids"`
	TokenTypes [][]int32     `json:"token_types"`
	Mask       [][]int32     `json:"mask"`
	Hidden     [][][]float64 `json:"last_hidden_state"`
	Pooled     [][]float64   `json:"pooler_output"`
}

func TestImportHFTiny(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bert")
	res, err := ImportHF(HFImportOptions{Model: hfTinyDir}, out)
	if err != nil {
		t.Fatal(err)
	}
	hfc, err := ReadHFBertConfig(filepath.Join(hfTinyDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	src, nonFloat, _, err := ReadHFSafetensors(filepath.Join(hfTinyDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(nonFloat) != 1 || !strings.HasPrefix(nonFloat[0], "bert.embeddings.position_ids") {
		t.Errorf("non-float tensors %q, want the position_ids buffer", nonFloat)
	}
	ck, err := LoadCheckpoint(out, false)
	if err != nil {
		t.Fatalf("the imported checkpoint does not load: %v", err)
	}
	cfg := ck.Meta.Policy.Bert
	// vocab.txt lacks the four WebShop tokens: the tokenizer appends them, the embeddings
	// get four rows.
	if res.AddedTokens != 4 || cfg.VocabSize != hfc.VocabSize+4 || ck.Tokenizer.VocabSize() != cfg.VocabSize {
		t.Fatalf("added %d tokens, config vocab %d, tokenizer %d (HF %d)", res.AddedTokens, cfg.VocabSize, ck.Tokenizer.VocabSize(), hfc.VocabSize)
	}
	if cfg.Hidden != hfc.HiddenSize || cfg.Layers != hfc.NumHiddenLayers || cfg.Heads != hfc.NumAttentionHeads ||
		cfg.Intermediate != hfc.IntermediateSize || cfg.MaxPositions != hfc.MaxPositionEmbeddings || ck.Meta.Policy.Preset != "custom" {
		t.Fatalf("config %+v (preset %q) from %+v", cfg, ck.Meta.Policy.Preset, hfc)
	}
	if ck.Meta.Job != "import-hf" || ck.Meta.Step != 0 {
		t.Errorf("meta job %q step %d", ck.Meta.Job, ck.Meta.Step)
	}
	if want := len(BertVariableNames(cfg)); res.Encoder != want || res.Pooler != 2 || res.MLMHead != 5 {
		t.Errorf("imported encoder %d (want %d), pooler %d, MLM head %d", res.Encoder, want, res.Pooler, res.MLMHead)
	}
	for _, s := range []string{"cls.seq_relationship.weight", "cls.seq_relationship.bias", "bert.embeddings.position_ids (I64)"} {
		if !slices.Contains(res.Skipped, s) {
			t.Errorf("skipped %q, want %q among them", res.Skipped, s)
		}
	}

	// Every HF tensor lands, unchanged, in the variable of the same name.
	rows := hfc.VocabSize
	checked := 0
	for name, want := range src {
		hf := HFTensorName(name)
		var p string
		switch {
		case strings.HasPrefix(hf, "cls.seq_relationship."):
			continue
		case strings.HasPrefix(hf, "cls."):
			p = PolicyScope + "/" + strings.ReplaceAll(hf, ".", "/")
		default:
			p = EncoderScope + "/" + strings.ReplaceAll(hf, ".", "/")
		}
		got, ok := ck.Model[p]
		if !ok {
			t.Errorf("%s: no variable %s", name, p)
			continue
		}
		w, g := f32s(t, want), f32s(t, got)
		if hf == "embeddings.word_embeddings.weight" || hf == "cls.predictions.bias" {
			width := len(w) / rows
			if len(g) != len(w)+4*width {
				t.Fatalf("%s: %d values, want %d + 4 rows", p, len(g), len(w))
			}
			for k := range width { // the added rows are the mean of the others
				var mean float64
				for r := range rows {
					mean += float64(w[r*width+k])
				}
				mean /= float64(rows)
				for r := rows; r < rows+4; r++ {
					if math.Abs(float64(g[r*width+k])-mean) > 1e-5 {
						t.Fatalf("%s: added row %d col %d = %g, want the mean %g", p, r, k, g[r*width+k], mean)
					}
				}
			}
			g = g[:len(w)]
		}
		if !slices.Equal(w, g) {
			t.Errorf("%s: values differ from %s", p, name)
		}
		checked++
	}
	if checked != len(src)-2 {
		t.Errorf("checked %d of %d tensors", checked, len(src))
	}

	// The encoder on the imported weights reproduces the numpy reference forward pass.
	var exp hfExpected
	b, err := os.ReadFile(filepath.Join(hfTinyDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	ctx := context.New()
	if _, err := ck.LoadInto(ctx, EncoderScope+"/"); err != nil {
		t.Fatal(err)
	}
	exec, err := context.NewExec(testBackend(t), ctx, func(ctx *context.Context, ids, types, mask *graph.Node) []*graph.Node {
		enc := ctx.In(PolicyScope).In("bert")
		h := BertEncodeWithTypes(enc, cfg, ids, types, mask, false)
		return []*graph.Node{h, BertPool(enc, cfg, h)}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	outs, err := exec.Exec(tensors.FromValue(exp.IDs), tensors.FromValue(exp.TokenTypes), tensors.FromValue(exp.Mask))
	if err != nil {
		t.Fatal(err)
	}
	hidden, pooled := f32s(t, outs[0]), f32s(t, outs[1])
	var maxDiff float64
	h, seq := cfg.Hidden, len(exp.IDs[0])
	for bi := range exp.IDs {
		for pos := range seq {
			if exp.Mask[bi][pos] == 0 {
				continue // padding positions are not compared (HF computes them too, but nobody reads them)
			}
			for k := range h {
				maxDiff = max(maxDiff, math.Abs(exp.Hidden[bi][pos][k]-float64(hidden[(bi*seq+pos)*h+k])))
			}
		}
		for k := range h {
			maxDiff = max(maxDiff, math.Abs(exp.Pooled[bi][k]-float64(pooled[bi*h+k])))
		}
	}
	if maxDiff > 1e-4 {
		t.Fatalf("encoder vs numpy reference: max |diff| %g > 1e-4", maxDiff)
	}
	t.Logf("encoder vs numpy reference: max |diff| %.2g", maxDiff)
}

func TestImportHFHalfPrecision(t *testing.T) {
	// model-half.safetensors: no "bert." prefix, gamma/beta LayerNorm names, BF16
	// embeddings and F16 layers; config.json and vocab.txt are found beside it.
	out := filepath.Join(t.TempDir(), "half")
	res, err := ImportHF(HFImportOptions{Model: filepath.Join(hfTinyDir, "model-half.safetensors")}, out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pooler != 2 || res.MLMHead != 0 {
		t.Errorf("pooler %d, MLM head %d tensors", res.Pooler, res.MLMHead)
	}
	ck, err := LoadCheckpoint(out, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ck.Model[PolicyScope+"/cls/predictions/bias"]; ok {
		t.Error("an MLM head appeared from nowhere")
	}
	ref, _, _, err := ReadHFSafetensors(filepath.Join(hfTinyDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range BertVariableNames(ck.Meta.Policy.Bert) {
		want := f32s(t, ref["bert."+v.Name])
		got := f32s(t, ck.Model[EncoderScope+"/"+strings.ReplaceAll(v.Name, ".", "/")])
		rel := 1.0 / 2048 // F16: 11 significant bits
		if strings.HasPrefix(v.Name, "embeddings.") {
			rel = 1.0 / 256 // BF16: 8 significant bits
		}
		for i := range want {
			if d := math.Abs(float64(want[i] - got[i])); d > rel*math.Abs(float64(want[i]))+1e-7 {
				t.Fatalf("%s[%d]: %g from half precision, %g in F32", v.Name, i, got[i], want[i])
			}
		}
	}
}

func TestFloat16ToFloat32(t *testing.T) {
	for _, c := range []struct {
		bits uint16
		want float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x3555, 0.33325195}, {0x7bff, 65504},
		{0x0001, 1.0 / (1 << 24)}, {0x0400, 1.0 / (1 << 14)}, {0x8000, float32(math.Copysign(0, -1))},
		{0x7c00, float32(math.Inf(1))}, {0xfc00, float32(math.Inf(-1))},
	} {
		if got := Float16ToFloat32(c.bits); got != c.want || math.Signbit(float64(got)) != math.Signbit(float64(c.want)) {
			t.Errorf("Float16ToFloat32(%#04x) = %g, want %g", c.bits, got, c.want)
		}
	}
	if got := Float16ToFloat32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("Float16ToFloat32(NaN) = %g", got)
	}
}

// hfVariant copies the fixture to a temporary directory after edit changes its tensors
// (by HF name) and cfgEdit its config; it returns the directory.
func hfVariant(t *testing.T, edit func(map[string]*tensors.Tensor), cfgEdit func(map[string]any)) string {
	t.Helper()
	dir := t.TempDir()
	ts, _, _, err := ReadHFSafetensors(filepath.Join(hfTinyDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(ts)
	}
	if err := WriteSafetensors(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(hfTinyDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfgEdit != nil {
		cfgEdit(cfg)
	}
	b, _ = json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := os.ReadFile(filepath.Join(hfTinyDir, "vocab.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vocab.txt"), v, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestImportHFBadInput(t *testing.T) {
	const key = "bert.encoder.layer.1.attention.self.key.weight"
	cases := []struct {
		name string
		dir  func(t *testing.T) string
		want []string // substrings of the error
	}{
		{"missing tensor", func(t *testing.T) string {
			return hfVariant(t, func(m map[string]*tensors.Tensor) { delete(m, key) }, nil)
		}, []string{"encoder.layer.1.attention.self.key.weight", "missing"}},
		{"wrong shape", func(t *testing.T) string {
			return hfVariant(t, func(m map[string]*tensors.Tensor) {
				m[key] = tensors.FromFlatDataAndDimensions(make([]float32, 16*8), 16, 8)
			}, nil)
		}, []string{key, "shape [16 8]", "[16 16]"}},
		{"config with fewer layers", func(t *testing.T) string {
			return hfVariant(t, nil, func(c map[string]any) { c["num_hidden_layers"] = 1 })
		}, []string{"unexpected encoder tensor", "encoder.layer.1"}},
		{"config heads", func(t *testing.T) string {
			return hfVariant(t, nil, func(c map[string]any) { c["num_attention_heads"] = 3 })
		}, []string{"not a multiple of heads"}},
		{"config epsilon", func(t *testing.T) string {
			return hfVariant(t, nil, func(c map[string]any) { c["layer_norm_eps"] = 1e-5 })
		}, []string{"layer_norm_eps"}},
		{"config activation", func(t *testing.T) string {
			return hfVariant(t, nil, func(c map[string]any) { c["hidden_act"] = "gelu_new" })
		}, []string{"hidden_act"}},
		{"vocabulary of another model", func(t *testing.T) string {
			return hfVariant(t, nil, func(c map[string]any) { c["vocab_size"] = 40 })
		}, []string{"word_embeddings", "shape"}},
		{"untied decoder", func(t *testing.T) string {
			return hfVariant(t, func(m map[string]*tensors.Tensor) {
				m["cls.predictions.decoder.weight"] = tensors.FromFlatDataAndDimensions(make([]float32, 50*16), 50, 16)
			}, nil)
		}, []string{"decoder.weight", "tied"}},
		{"truncated file", func(t *testing.T) string {
			dir := hfVariant(t, nil, nil)
			p := filepath.Join(dir, "model.safetensors")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b[:len(b)-100], 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, []string{"corrupt file", "offsets"}},
		{"garbage header", func(t *testing.T) string {
			dir := hfVariant(t, nil, nil)
			if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), []byte("\x10\x00\x00\x00\x00\x00\x00\x00{not json at all"), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, []string{"corrupt file", "header"}},
		{"no model file", func(t *testing.T) string { return t.TempDir() }, []string{"no model.safetensors"}},
		{"no vocabulary", func(t *testing.T) string {
			dir := hfVariant(t, nil, nil)
			os.Remove(filepath.Join(dir, "vocab.txt"))
			return dir
		}, []string{"vocab"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			_, err := ImportHF(HFImportOptions{Model: c.dir(t)}, out)
			if err == nil {
				t.Fatal("import succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, statErr := os.Stat(out); statErr == nil {
				t.Error("a failed import left an output directory")
			}
		})
	}
	// An existing output is never overwritten.
	out := t.TempDir()
	if _, err := ImportHF(HFImportOptions{Model: hfTinyDir}, out); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("import over an existing directory: %v", err)
	}
}
