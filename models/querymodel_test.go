package models

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"shopagent/features"
)

func queryTestTokenizer(t *testing.T) *features.Tokenizer {
	t.Helper()
	vocab := features.BuildVocab(func(yield func(string) bool) {
		for _, s := range []string{
			"i am looking for red running shoes in size 9 with rubber soles",
			"i need a blue cotton shirt that is machine washable, size large",
			"find me gluten free granola bars, 12 pack",
		} {
			if !yield(s) {
				return
			}
		}
	}, 200, 1)
	tok, err := features.NewTokenizer(vocab)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestEncodeQuery(t *testing.T) {
	tok := queryTestTokenizer(t)
	ins := "I am looking for red running shoes in size 9-wide, and price lower than 40.00 dollars"
	e := EncodeQuery(tok, ins, 64)
	wantWords := []string{"i", "am", "looking", "for", "red", "running", "shoes", "in", "size", "9-wide"}
	if !slices.Equal(e.Words, wantWords) {
		t.Fatalf("words %q, want %q (price clause cut)", e.Words, wantWords)
	}
	if e.IDs[0] != tok.CLSID() || e.IDs[len(e.IDs)-1] != tok.SEPID() || len(e.Types) != len(e.IDs) {
		t.Fatalf("ids %v types %v", e.IDs, e.Types)
	}
	heur := strings.Fields(features.KeywordQuery{}.Queries(ins)[0])
	for i, w := range e.Words {
		f := e.First[i]
		if f <= 0 || f >= len(e.IDs)-1 {
			t.Fatalf("word %q: first piece at %d", w, f)
		}
		if got := tok.Encode(w)[0]; e.IDs[f] != got {
			t.Errorf("word %q: first piece id %d, want %d", w, e.IDs[f], got)
		}
		if e.Heuristic[i] != slices.Contains(heur, w) || (e.Types[f] == 1) != e.Heuristic[i] {
			t.Errorf("word %q: heuristic %v, type %d (heuristic query %q)", w, e.Heuristic[i], e.Types[f], heur)
		}
	}
	// "9-wide" is three pieces; all get the word's type.
	last := e.First[len(e.Words)-1]
	if n := len(tok.Encode("9-wide")); len(e.IDs)-1-last != n {
		t.Errorf("9-wide: %d pieces in the encoding, tokenizer gives %d", len(e.IDs)-1-last, n)
	}
	// A short limit cuts words (First -1) but keeps [CLS] ... [SEP] within it.
	short := EncodeQuery(tok, ins, 6)
	if len(short.IDs) > 6 || short.First[len(short.First)-1] != -1 || short.First[0] != 1 {
		t.Errorf("maxLen 6: ids %v first %v", short.IDs, short.First)
	}
}

func TestDecodeQuery(t *testing.T) {
	words := []string{"red", "shoes", "red", "size", "9", "for"}
	probs := []float64{0.9, 0.8, 0.95, 0.4, 0.6, 0.1}
	if got := DecodeQuery(words, probs, 0.5, 10); got != "red shoes 9" {
		t.Errorf("decode %q", got)
	}
	if got := DecodeQuery(words, probs, 0.5, 2); got != "red shoes" {
		t.Errorf("decode max 2: %q", got)
	}
	if got := DecodeQuery(words, probs, 0.35, 3); got != "red shoes 9" { // 0.4 (size) is the least probable
		t.Errorf("decode max 3: %q", got)
	}
	if got := DecodeQuery(words, probs, 0.99, 10); got != "" {
		t.Errorf("decode nothing: %q", got)
	}
}

func TestQueryModelSaveLoad(t *testing.T) {
	backend := policyTestBackend(t)
	tok := queryTestTokenizer(t)
	cfg := policyTestConfig(t, tok.VocabSize())
	m, err := NewUntrainedQueryModel(backend, cfg, tok, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ins := []string{
		"i need a blue cotton shirt that is machine washable, size large, and price lower than 30.00 dollars",
		"find me gluten free granola bars",
		"red shoes",
	}
	encs, probs, err := m.KeepProbs(ins)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ins {
		if len(probs[i]) != len(encs[i].Words) {
			t.Fatalf("%q: %d probabilities for %d words", ins[i], len(probs[i]), len(encs[i].Words))
		}
		for _, p := range probs[i] {
			if !(p > 0 && p < 1) {
				t.Fatalf("%q: probability %g", ins[i], p)
			}
		}
	}
	// A batch scores like single calls.
	_, one, err := m.KeepProbs(ins[1:2])
	if err != nil {
		t.Fatal(err)
	}
	for k := range one[0] {
		if math.Abs(one[0][k]-probs[1][k]) > 1e-5 {
			t.Fatalf("batched %g vs single %g", probs[1][k], one[0][k])
		}
	}
	// Candidates: the model's query, then the heuristic's, all distinct.
	m.Threshold = 1e-9 // keep every word: the model's query is the whole instruction's words
	qs := m.Queries(ins[0])
	if qs[0] != DecodeQuery(encs[0].Words, probs[0], 1e-9, features.DefaultQueryWords) || len(strings.Fields(qs[0])) != features.DefaultQueryWords {
		t.Errorf("first candidate %q", qs[0])
	}
	for _, h := range (features.KeywordQuery{}).Queries(ins[0]) {
		if !slices.Contains(qs, h) {
			t.Errorf("heuristic candidate %q missing from %q", h, qs)
		}
	}
	if m.Err() != nil {
		t.Fatal(m.Err())
	}

	// Save and load: the same probabilities.
	dir := filepath.Join(t.TempDir(), "ckpt")
	meta := CheckpointMeta{Job: QueryJobName, Policy: cfg}
	if err := SaveCheckpoint(dir, meta, m.Context(), tok, false); err != nil {
		t.Fatal(err)
	}
	m2, err := LoadQueryModel(backend, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	_, probs2, err := m2.KeepProbs(ins)
	if err != nil {
		t.Fatal(err)
	}
	for i := range probs {
		for k := range probs[i] {
			if math.Abs(probs[i][k]-probs2[i][k]) > 1e-6 {
				t.Fatalf("%q word %d: %g before saving, %g after loading", ins[i], k, probs[i][k], probs2[i][k])
			}
		}
	}
	// A checkpoint without the tagger (an imported encoder) is not a query model.
	hf := filepath.Join(t.TempDir(), "hf")
	if _, err := ImportHF(HFImportOptions{Model: hfTinyDir}, hf); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadQueryModel(backend, hf); err == nil || !strings.Contains(err.Error(), "not a query model") {
		t.Errorf("loading an encoder-only checkpoint as a query model: %v", err)
	}
}
