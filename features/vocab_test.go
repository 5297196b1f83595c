package features

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// vocabTestCorpus is a small catalog-and-instruction corpus.
func vocabTestCorpus() []string {
	colors := []string{"black", "white", "navy blue", "dark brown", "light pink", "grey"}
	items := []string{"running shoes", "cotton t-shirt", "leather wallet", "wireless headphones",
		"hair extension", "water bottle", "coffee table", "desk lamp", "yoga pants", "phone case"}
	var out []string
	for i := range 300 {
		c, it := colors[i%len(colors)], items[(i*7)%len(items)]
		out = append(out,
			fmt.Sprintf("i'm looking for %s %s for women, and price lower than %d.00 dollars", c, it, 20+i%60),
			fmt.Sprintf("[button] %s %s - Size %d, Pack of %d [button_]", strings.ToUpper(c[:1])+c[1:], it, 5+i%8, 1+i%4),
			fmt.Sprintf("Instruction: [SEP] find me %s %s that is easy to clean, machine washable", it, c),
		)
	}
	out = append(out, "Café crème for naïve résumé writers", "中文 商品 描述", "Größe: XL")
	return out
}

func TestBuildVocabLayout(t *testing.T) {
	corpus := vocabTestCorpus()
	v := BuildVocab(slices.Values(corpus), 300, 2)
	if len(v) != 300 {
		t.Fatalf("len = %d, want 300", len(v))
	}
	if !slices.Equal(v[:9], SpecialTokens()) {
		t.Errorf("first tokens %q", v[:9])
	}
	seen := map[string]bool{}
	for i, tok := range v {
		if seen[tok] {
			t.Errorf("duplicate token %q at %d", tok, i)
		}
		seen[tok] = true
		if tok == "" || strings.Contains(tok, "\n") {
			t.Errorf("bad token %q at %d", tok, i)
		}
	}
	// Every character seen, normalized as the tokenizer sees it, in both forms;
	// no capitals or accents (the corpus is lowercased and stripped first).
	for _, c := range []string{"a", "z", "'", "-", ",", ".", "0", "9", "中", "文", "ß", "e"} {
		if !seen[c] || !seen["##"+c] {
			t.Errorf("character %q missing (or its ## form)", c)
		}
	}
	for _, c := range []string{"A", "é", "I", "[button]x"} {
		if seen[c] {
			t.Errorf("unexpected token %q", c)
		}
	}
	// Frequent words become whole tokens; "button" and "sep" come only from
	// the special tokens, which are cut out before counting.
	for _, w := range []string{"looking", "for", "women", "price", "dollars", "black", "instruction"} {
		if !seen[w] {
			t.Errorf("frequent word %q is not a token", w)
		}
	}
	for _, w := range []string{"button", "sep"} {
		if seen[w] {
			t.Errorf("%q learned from a special token", w)
		}
	}
}

func TestBuildVocabHeldOut(t *testing.T) {
	corpus := vocabTestCorpus()
	v := BuildVocab(slices.Values(corpus), 400, 2)
	tok, err := NewTokenizer(v)
	if err != nil {
		t.Fatal(err)
	}
	// With minFreq 2 this small corpus runs out of pairs before 400 tokens.
	if tok.VocabSize() != len(v) || len(v) > 400 || len(v) < 250 {
		t.Errorf("VocabSize = %d, built %d (WebShop tokens should already be in the built vocab)", tok.VocabSize(), len(v))
	}
	// Unseen words, but every character was seen in the corpus.
	heldOut := "[clicked button] Navy Blüe Wool Socks, Machine-Washable: Crème Brûlée Scented Candle 中 [SEP] zebra"
	toks := tok.Tokenize(heldOut)
	if slices.Contains(toks, UnkToken) {
		t.Errorf("held-out sentence has [UNK]: %q", toks)
	}
	if toks[0] != ClickedButtonToken || !slices.Contains(toks, SEPToken) {
		t.Errorf("special tokens lost: %q", toks)
	}
	// A character never seen is [UNK].
	if got := tok.Tokenize("snow☃man"); !slices.Equal(got, []string{UnkToken}) {
		t.Errorf("unseen character: %q", got)
	}
	// Frequent words are one token.
	if got := tok.Tokenize("Looking for women"); !slices.Equal(got, []string{"looking", "for", "women"}) {
		t.Errorf("frequent words: %q", got)
	}
}

func TestBuildVocabDeterministic(t *testing.T) {
	corpus := vocabTestCorpus()
	a := BuildVocab(slices.Values(corpus), 500, 1)
	for i := range 3 {
		shuffled := slices.Clone(corpus)
		rand.New(rand.NewPCG(uint64(i), 1)).Shuffle(len(shuffled), func(x, y int) {
			shuffled[x], shuffled[y] = shuffled[y], shuffled[x]
		})
		if b := BuildVocab(slices.Values(shuffled), 500, 1); !slices.Equal(a, b) {
			t.Fatalf("run %d: vocabulary differs", i)
		}
	}
}

func TestBuildVocabLimits(t *testing.T) {
	corpus := vocabTestCorpus()
	base := BuildVocab(slices.Values(corpus), 0, 1) // specials and characters only
	full := BuildVocab(slices.Values(corpus), 400, 1)
	if !slices.Equal(full[:len(base)], base) {
		t.Error("the base alphabet is not a prefix of the full vocabulary")
	}
	// A very high minFreq stops merging: only the base remains.
	if got := BuildVocab(slices.Values(corpus), 400, 1_000_000); !slices.Equal(got, base) {
		t.Errorf("minFreq 1e6: %d tokens, want %d", len(got), len(base))
	}
	// A tiny corpus cannot fill a large vocabulary: merging stops when every
	// word is one piece.
	small := BuildVocab(slices.Values([]string{"abc abc abd"}), 1000, 1)
	want := []string{"a", "b", "c", "d", "##a", "##b", "##c", "##d", "ab", "abc", "abd"}
	if !slices.Equal(small[9:], want) {
		t.Errorf("small corpus: %q, want %q", small[9:], want)
	}
	// An empty corpus gives the special tokens, and a tokenizer can use it.
	empty := BuildVocab(nil, 100, 1)
	if !slices.Equal(empty, SpecialTokens()) {
		t.Errorf("empty corpus: %q", empty)
	}
	if _, err := NewTokenizer(empty); err != nil {
		t.Error(err)
	}
	// Words over MaxInputCharsPerWord characters are ignored.
	long := BuildVocab(slices.Values([]string{strings.Repeat("q", 101)}), 100, 1)
	if len(long) != 9 {
		t.Errorf("over-long word: %q", long[9:])
	}
	// An iterator that is stopped early is fine; yield's result is respected.
	calls := 0
	BuildVocab(func(yield func(string) bool) {
		for _, s := range corpus {
			calls++
			if !yield(s) {
				return
			}
		}
	}, 50, 1)
	if calls != len(corpus) {
		t.Errorf("iterator consumed %d of %d texts", calls, len(corpus))
	}
}

func TestBuildVocabTieBreak(t *testing.T) {
	// "xy" and "ab" both occur twice; ties go to the lexically smaller left piece.
	v := BuildVocab(slices.Values([]string{"xy ab xy ab"}), 9+8+1, 1)
	if got := v[len(v)-1]; got != "ab" {
		t.Errorf("first merge = %q, want ab", got)
	}
}

func BenchmarkBuildVocab(b *testing.B) {
	corpus := vocabTestCorpus()
	b.ReportAllocs()
	for b.Loop() {
		BuildVocab(slices.Values(corpus), 2000, 2)
	}
}
