package export_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"shopagent/export"
	"shopagent/export/onnxrt"
	"shopagent/features"
	"shopagent/models"
)

// initializerDims maps a graph's initializers to their dims.
func initializerDims(t *testing.T, path string) map[string][]int64 {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m onnx.ModelProto
	if err := proto.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	dims := map[string][]int64{}
	for _, in := range m.Graph.Initializer {
		dims[in.Name] = in.Dims
	}
	return dims
}

func TestExportWebShopModel(t *testing.T) {
	ck, err := models.LoadCheckpoint(modelCheckpoint(t, features.ModelWebShop), false)
	if err != nil {
		t.Fatal(err)
	}
	h := int64(ck.Meta.Policy.Bert.Hidden)
	for _, quant := range export.Quantizations {
		out, m := exportModel(t, features.ModelWebShop, export.Options{Quantize: quant})
		p := m.Parity
		tol := export.DefaultTolerance
		if quant != "" {
			tol = export.QuantizedTolerance
		}
		// Parity covers model.onnx and actions.onnx + scorer.onnx.
		if m.Model != features.ModelWebShop || m.Policy.Model != features.ModelWebShop || !m.Split || m.Quantize != quant ||
			p.MaxAbsDiff > tol || p.Samples < 6 || p.Actions < 30 || p.Agreement < 0.9 {
			t.Fatalf("quantize %q: manifest model %q / %q, split %v, parity %+v", quant, m.Model, m.Policy.Model, m.Split, p)
		}
		t.Logf("webshop model, quantize %q: parity max |diff| %.3g (logits %.3g, values %.3g), agreement %.2f",
			quant, p.MaxAbsDiff, p.MaxLogitDiff, p.MaxValueDiff, p.Agreement)
		if quant == "" && p.Agreement != 1 {
			t.Fatalf("float32 agreement %g", p.Agreement)
		}
		for _, f := range []string{onnxrt.ModelFile, onnxrt.ScorerFile} {
			dims := initializerDims(t, filepath.Join(out, f))
			w := "policy/choice/linear_1/weight_t"
			if quant != "" {
				w = "policy/choice/linear_1/weight_q"
			}
			if !slices.Equal(dims[w], []int64{4 * h, h}) {
				t.Errorf("%s %s: %s is %v, want [4H, H] = [%d %d]", quant, f, w, dims[w], 4*h, h)
			}
			for name := range dims {
				if strings.Contains(name, "/match/") || strings.Contains(name, "/position/") {
					t.Errorf("%s %s has the shopagent model's %s", quant, f, name)
				}
			}
		}
	}

	// ONNX Runtime's logits of the webshop model do not depend on what the shopagent
	// model's priors read: results-page positions, content flags, state token types.
	out, _ := exportModel(t, features.ModelWebShop, export.Options{NoSplit: true})
	sess, err := onnxrt.NewSession(filepath.Join(out, onnxrt.ModelFile), onnxrt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	samples, err := export.SampleObservations("text_rich", 2)
	if err != nil {
		t.Fatal(err)
	}
	var enc []features.EncodedChoice
	positions := 0
	for _, s := range samples {
		ex, _ := features.ChoiceFromObservation(s.Text, s.Clickables)
		e := features.EncodeChoice(ck.Tokenizer, ck.Meta.Policy, ex)
		for _, p := range e.Positions {
			if p > 0 {
				positions++
			}
		}
		enc = append(enc, e)
	}
	if positions == 0 {
		t.Fatal("no results page among the samples")
	}
	pb, err := onnxrt.ExactBatch(enc)
	if err != nil {
		t.Fatal(err)
	}
	base, baseV, err := sess.Run(pb)
	if err != nil {
		t.Fatal(err)
	}
	for what, alt := range map[string]func(*features.PolicyBatch){
		"positions": func(b *features.PolicyBatch) {
			for i := range b.ActionPos {
				b.ActionPos[i] = int32((i*7 + 3) % (features.MaxResultPosition + 1))
			}
		},
		"content": func(b *features.PolicyBatch) {
			for i, m := range b.ActionMask {
				if m == 2 {
					b.ActionMask[i] = 1
				}
			}
		},
		"token types": func(b *features.PolicyBatch) { clear(b.StateTypes) },
	} {
		c := *pb
		c.ActionPos, c.ActionMask, c.StateTypes = slices.Clone(pb.ActionPos), slices.Clone(pb.ActionMask), slices.Clone(pb.StateTypes)
		alt(&c)
		l, v, err := sess.Run(&c)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(l, base) || !slices.Equal(v, baseV) {
			t.Errorf("webshop model.onnx: other %s changed the outputs", what)
		}
	}
}

// A policy.json written before the model field existed is the shopagent model; a model
// that contradicts the policy config is refused.
func TestManifestModel(t *testing.T) {
	out, m := exportTiny(t, export.Options{NoSplit: true})
	if m.Model != features.ModelShopAgent || m.Policy.Model != features.ModelShopAgent {
		t.Fatalf("manifest model %q, policy model %q", m.Model, m.Policy.Model)
	}
	path := filepath.Join(out, onnxrt.ManifestFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	write := func() {
		t.Helper()
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc["model"] = features.ModelWebShop
	write()
	if _, err := onnxrt.ReadManifest(out); err == nil || !strings.Contains(err.Error(), "model") {
		t.Fatalf("contradicting model: %v", err)
	}
	delete(doc, "model")
	delete(doc["policy"].(map[string]any), "model")
	write()
	old, err := onnxrt.ReadManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	if old.Model != "" || old.Policy.ChoiceModel() != features.ModelShopAgent {
		t.Fatalf("legacy manifest: model %q, choice model %q", old.Model, old.Policy.ChoiceModel())
	}
	doc["policy"].(map[string]any)["model"] = "bert"
	write()
	if _, err := onnxrt.ReadManifest(out); err == nil || !strings.Contains(err.Error(), "choice model") {
		t.Fatalf("unknown model: %v", err)
	}
}
