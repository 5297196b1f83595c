package train

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"shopagent/features"
	"shopagent/models"
)

// syntheticQueryRefs makes instructions whose "human" queries follow a rule the keyword
// heuristic does not know: the shopper types the colour and the product, never the
// material or the size.
func syntheticQueryRefs(n int, seed uint64) map[string][]string {
	rng := rand.New(rand.NewPCG(seed, 1))
	colors := strings.Fields("red blue green black white pink gray brown")
	materials := strings.Fields("cotton wool leather silk linen denim")
	products := strings.Fields("shirt dress jacket shoes socks scarf hat gloves")
	openings := []string{"i am looking for", "i need", "find me", "i want"}
	refs := map[string][]string{}
	for len(refs) < n {
		c, m, p := colors[rng.IntN(len(colors))], materials[rng.IntN(len(materials))], products[rng.IntN(len(products))]
		ins := fmt.Sprintf("%s a %s %s %s in size %d", openings[rng.IntN(len(openings))], c, m, p, 4+rng.IntN(10))
		refs[ins] = []string{c + " " + p}
	}
	return refs
}

func TestQueryModelLearns(t *testing.T) {
	refs := syntheticQueryRefs(64, 3)
	var docs []string
	for ins := range refs {
		docs = append(docs, ins)
	}
	tok, err := BuildCorpusVocab(docs, 300)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := features.NewPolicyConfig("tiny", tok.VocabSize(), 32, 8)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Bert.MaxPositions, cfg.Bert.Dropout = 32, 0
	be, err := models.NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	untrained, err := models.NewUntrainedQueryModel(be, cfg, tok, 1)
	if err != nil {
		t.Fatal(err)
	}
	before, err := EvaluateQueryModel(untrained, refs)
	untrained.Close()
	if err != nil {
		t.Fatal(err)
	}
	job, err := NewQueryJob(cfg, tok, refs, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Batches are a deterministic function of the step.
	a, _, _ := job.Batch(5)
	b, _, _ := job.Batch(5)
	for i := range a {
		if !a[i].Equal(b[i]) {
			t.Fatalf("batch 5 input %d differs between calls", i)
		}
	}
	dir := t.TempDir()
	res, err := Run(context.Background(), Config{
		RunDir: dir, Steps: 40, Schedule: Schedule{Peak: 3e-3, Warmup: 4, Decay: DecayLinear},
		Optimizer: OptimizerConfig{WeightDecay: 0.01, ClipNorm: 1}, Seed: 1,
		Policy: cfg, Tokenizer: tok, Backend: be,
	}, job)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ReadMetrics(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if first, last := rows[0].Loss, res.MeanLoss; !(last < 0.5*first) {
		t.Errorf("loss %.4f at the start, %.4f at the end", first, last)
	}
	m, err := models.LoadQueryModel(be, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	after, err := EvaluateQueryModel(m, refs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("token F1 on the training set: untrained %.3f, trained %.3f, heuristic %.3f, instruction %.3f (word accuracy %.3f)",
		before.Model, after.Model, after.Heuristic, after.Instruction, res.LastMetrics["word_accuracy"])
	if !(after.Model > before.Model+0.2) || !(after.Model > after.Heuristic+0.1) || after.Model < 0.9 {
		t.Errorf("trained F1 %.3f, untrained %.3f, heuristic %.3f", after.Model, before.Model, after.Heuristic)
	}
	// The model's query is the first candidate; the heuristic's follow.
	for ins := range refs {
		qs, h := m.Queries(ins), (features.KeywordQuery{}).Queries(ins)[0]
		if len(qs) < 2 || !slices.Contains(qs, h) {
			t.Errorf("%q: candidates %q lack the heuristic's query", ins, qs)
		}
		break
	}
}

func TestQueryLabelsAndSplit(t *testing.T) {
	words := features.QueryWords("Red shoes, red laces and size 9.")
	got := QueryLabels(words, []string{"red shoes size 9", "red shoes"})
	want := []float32{1, 1, 0, 0, 0, 0.5, 0.5} // red shoes red(repeat) laces and size 9
	if !slices.Equal(got, want) {
		t.Errorf("labels of %q: %v, want %v", words, got, want)
	}
	refs := syntheticQueryRefs(50, 9)
	tr, held := SplitQueryRefs(refs, 0.1, 7)
	if len(held) != 5 || len(tr) != 45 {
		t.Fatalf("split 50 at 10%%: %d train, %d held out", len(tr), len(held))
	}
	for k := range held {
		if _, ok := tr[k]; ok {
			t.Fatalf("%q in both sets", k)
		}
	}
	_, held2 := SplitQueryRefs(refs, 0.1, 7)
	_, held3 := SplitQueryRefs(refs, 0.1, 8)
	same, other := true, true
	for k := range held {
		_, ok2 := held2[k]
		_, ok3 := held3[k]
		same = same && ok2
		other = other && ok3
	}
	if !same || other {
		t.Errorf("split: same seed same set %v, other seed same set %v", same, other)
	}
}

func TestLoadQueryRefsBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := LoadQueryRefs(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := LoadQueryRefs(write("list.json", `["a", "b"]`)); err == nil || !strings.Contains(err.Error(), "instruction -> [queries]") {
		t.Errorf("a list: %v", err)
	}
	if _, err := LoadQueryRefs(write("empty.json", `{"red shoes": ["", "  "]}`)); err == nil {
		t.Error("no usable query accepted")
	}
	refs, err := LoadQueryRefs(write("ok.json", `{"i want red shoes": ["red shoes", ""], "x": []}`))
	if err != nil || len(refs) != 1 || len(refs["i want red shoes"]) != 1 {
		t.Errorf("refs %v, %v", refs, err)
	}
}
