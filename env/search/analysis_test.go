package search

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAnalyzeEnglish(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"women's shoes", []string{"women", "shoe"}},
		{"Dog’s bowl", []string{"dog", "bowl"}},
		{"JOHN'S", []string{"john"}},
		{"don't", []string{"don't"}},
		{"3.5 oz", []string{"3.5", "oz"}},
		{"6.76 fl oz bottle", []string{"6.76", "fl", "oz", "bottl"}},
		{"1,000 pieces", []string{"1,000", "piec"}},
		{"$19.99, 50% off", []string{"19.99", "50", "off"}},
		{"12-pack", []string{"12", "pack"}},
		{"long-lasting", []string{"long", "last"}},
		{"X-Large wi-fi", []string{"x", "larg", "wi", "fi"}},
		{"The running of the batteries", []string{"run", "batteri"}},
		{"a an and are as at be but by for if in into is it no not of on or such that the their then there these they this to was will with", nil},
		{"café CAFÉ", []string{"café", "café"}},
		{"U.S.A. made", []string{"u.s.a", "made"}},
		{"www.amazon.com", []string{"www.amazon.com"}},
		{"foo:bar", []string{"foo:bar"}},
		{"snake_case_name", []string{"snake_case_nam"}},
		{"ABC123def", []string{"abc123def"}},
		{"5'11 tall", []string{"5'11", "tall"}},
		{"1.b", []string{"1", "b"}},
		{"3.5.7", []string{"3.5.7"}},
		{"hello...world", []string{"hello", "world"}},
		{"item;1;2", []string{"item", "1;2"}},
		{"  \t\n", nil},
		{"", nil},
		{"generalization oscillators agreed hopping", []string{"gener", "oscil", "agre", "hop"}},
		{"Brand® Name™", []string{"brand", "®", "name", "™"}},
		{"I ❤️ it", []string{"i", "❤\uFE0F"}},
		{"中文字", []string{"中", "文", "字"}},
		{"ひらがな", []string{"ひ", "ら", "が", "な"}},
		{"カタカナ", []string{"カタカナ"}},
		{"ภาษาไทย", []string{"ภาษาไทย"}},
		{"naïve résumé", []string{"naïv", "résumé"}},
		{"co\u00ADoperate", []string{"co\u00ADoper"}},
	}
	for _, c := range cases {
		got := Analyze(nil, c.in)
		if !slices.Equal(got, c.want) {
			t.Errorf("Analyze(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAnalyzeAppends(t *testing.T) {
	dst := []string{"keep"}
	got := Analyze(dst, "Red Shoes")
	if !slices.Equal(got, []string{"keep", "red", "shoe"}) {
		t.Fatalf("got %q", got)
	}
}

func TestAnalyzeMaxTokenLength(t *testing.T) {
	got := Analyze(nil, strings.Repeat("x", 300)+" y")
	if len(got) != 3 || got[0] != strings.Repeat("x", 255) || got[1] != strings.Repeat("x", 45) || got[2] != "y" {
		t.Fatalf("got %d tokens, lengths %v", len(got), lens(got))
	}
	// A cut never leaves a dangling separator.
	got = Analyze(nil, strings.Repeat("ab.", 100))
	for _, g := range got {
		if len(g) > 255 || strings.HasSuffix(g, ".") {
			t.Fatalf("bad token %q", g)
		}
	}
}

func lens(s []string) []int {
	var l []int
	for _, x := range s {
		l = append(l, len(x))
	}
	return l
}

func TestAnalyzeTokenizerBoundaries(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"a.b.c.", []string{"a.b.c"}},
		{"x'", []string{"x"}},
		{"'quoted'", []string{"quoted"}},
		{"_a_", []string{"_a_"}},
		{"__", nil},
		{"#1", []string{"1"}},
		{"#\uFE0F\u20E3", []string{"#\uFE0F\u20E3"}},
		{"🇺🇸🇬🇧", []string{"🇺🇸", "🇬🇧"}},
		{"👩\u200D💻 ok", []string{"👩\u200D💻", "ok"}},
		{"👍🏽", []string{"👍🏽"}},
		{"ℹabc", []string{"ℹabc"}},
		{"1,000.50", []string{"1,000.50"}},
		{"1,,000", []string{"1", "000"}},
		{"a1b2", []string{"a1b2"}},
		{"e.g.,", []string{"e.g"}},
	}
	for _, c := range cases {
		var got []string
		for i := 0; ; {
			st, en := nextToken(c.in, i)
			if st < 0 {
				break
			}
			got = append(got, c.in[st:en])
			i = en
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("tokens(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAnalyzeRandomInputs(t *testing.T) {
	// No panics, valid UTF-8 terms, no empty terms. (Stems may be stop words:
	// "ase" stems to "as", and Lucene removes stop words before stemming.)
	alphabet := []rune("aeiouyAEIOUYbcdstzSZ0123456789 .,;:'’\"-_#*é中ひカภ❤\uFE0F\u200D\u20E3🇺🏽\u0301")
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		n := r.IntN(40)
		b := make([]rune, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		s := string(b)
		for _, term := range Analyze(nil, s) {
			if term == "" || !utf8.ValidString(term) {
				t.Fatalf("Analyze(%q) produced bad term %q", s, term)
			}
		}
	}
	// Invalid UTF-8 must not panic either.
	Analyze(nil, "\xff\xfeabc\xc3")
}

func BenchmarkAnalyze(b *testing.B) {
	text := "Women's Long-Lasting Running Shoes, Lightweight Breathable Mesh 12-pack of 3.5 oz batteries for the U.S.A. market — café edition"
	b.SetBytes(int64(len(text)))
	var dst []string
	for b.Loop() {
		dst = Analyze(dst[:0], text)
	}
}
