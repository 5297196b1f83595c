package features

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// The expected outputs in this file are those of Hugging Face's slow
// BertTokenizer (bert-base-uncased settings: do_lower_case=True,
// tokenize_chinese_chars=True, accents stripped) with the WebShop tokens added via
// add_tokens(..., special_tokens=True), over the fixture vocabulary
// testdata/tokenizer/vocab.txt (see make_vocab.py there for which ids are
// bert-base-uncased's own). Python's transformers package is not installable
// here, so they were derived by reasoning from HF's algorithm; golden.jsonl was
// produced by testdata/tokenizer/hf_reference.py, an independent Python port of
// that algorithm that uses Python's own Unicode tables (and uses transformers
// itself when it is importable).

const tokFixtureVocab = "testdata/tokenizer/vocab.txt"

var (
	tokFixtureOnce sync.Once
	tokFixtureTok  *Tokenizer
	tokFixtureErr  error
)

func loadTokFixture(tb testing.TB) *Tokenizer {
	tb.Helper()
	tokFixtureOnce.Do(func() { tokFixtureTok, tokFixtureErr = LoadVocab(tokFixtureVocab) })
	if tokFixtureErr != nil {
		tb.Fatal(tokFixtureErr)
	}
	return tokFixtureTok
}

func TestKnownBERTOutputs(t *testing.T) {
	tok := loadTokFixture(t)
	cases := []struct {
		text string
		want []string
	}{
		{"Hello, World!", []string{"hello", ",", "world", "!"}},
		{"unaffable", []string{"un", "##aff", "##able"}},
		{"UNAFFABLE", []string{"un", "##aff", "##able"}},
		{"Héllo Crème Brûlée", []string{"hello", "creme", "br", "##ule", "##e"}},
		{"naïve café résumé Über déjà vu", []string{"nai", "##ve", "cafe", "resume", "uber", "deja", "vu"}},
		// The accent as a combining mark (NFD input) strips the same way.
		{"Cre\u0300me", []string{"creme"}},
		{"don't", []string{"don", "'", "t"}},
		{"中国人 日本语", []string{"中", "国", "人", "日", "本", "语"}},
		{"ab中cd", []string{"a", "##b", "中", "c", "##d"}},
		// Ideographic space (U+3000, Zs) and no-break space separate words.
		{"hello\u3000world\u00a0hello", []string{"hello", "world", "hello"}},
		{"[button] Buy Now [button_]", []string{"[button]", "buy", "now", "[button_]"}},
		{"[clicked button] black [clicked button_]", []string{"[clicked button]", "black", "[clicked button_]"}},
		{"WebShop [SEP] Instruction: [SEP] i need", []string{"web", "##shop", "[SEP]", "instruction", ":", "[SEP]", "i", "need"}},
		// HF's slow tokenizer lowercases before matching the added tokens, but
		// leaves the BERT specials alone: "[sep]" is plain text.
		{"[BUTTON] Back [Clicked Button_]", []string{"[button]", "back", "[clicked button_]"}},
		{"[sep] [SEP]", []string{"[", "s", "##e", "##p", "]", "[SEP]"}},
		{"x[SEP]y", []string{"x", "[SEP]", "y"}},
		{"[button][button_]", []string{"[button]", "[button_]"}},
		{"[clicked  button]", []string{"[", "clicked", "button", "]"}},
		{"[MASK] is [UNK]", []string{"[MASK]", "is", "[UNK]"}},
		{"price: $19.99", []string{"price", ":", "$", "19", ".", "99"}},
		{"size: x-large (xl)", []string{"size", ":", "x", "-", "large", "(", "xl", ")"}},
		// Clean-up: NUL, U+FFFD, soft hyphen (Cf) and zero-width space (Cf) are
		// dropped without splitting the word; tab/newline are whitespace.
		{"a\x00b\ufffdc", []string{"a", "##b", "##c"}},
		{"hel\u00adlo wor\u200bld\tthe\nis\rmy", []string{"hello", "world", "the", "is", "my"}},
		// Invalid UTF-8 is dropped like U+FFFD.
		{"hel\xfflo", []string{"hello"}},
		// Unicode punctuation (P*) splits; symbols (S*) do not.
		{"“hello”—world…", []string{"“", "hello", "”", "—", "world", "…"}},
		{"a☃b", []string{"[UNK]"}},
		{"", []string{}},
		{" \n\t ", []string{}},
	}
	for _, c := range cases {
		got := tok.Tokenize(c.text)
		if !slices.Equal(got, c.want) {
			t.Errorf("Tokenize(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

func TestHelloWorldIDs(t *testing.T) {
	tok := loadTokFixture(t)
	// bert-base-uncased: tokenizer("Hello, World!")["input_ids"].
	want := []int32{101, 7592, 1010, 2088, 999, 102}
	if got := tok.EncodeState("Hello, World!", 512); !slices.Equal(got, want) {
		t.Errorf("EncodeState = %v, want %v", got, want)
	}
	if got := tok.Encode("Hello, World!"); !slices.Equal(got, want[1:5]) {
		t.Errorf("Encode = %v, want %v", got, want[1:5])
	}
	ids := map[string]int32{PadToken: 0, UnkToken: 100, CLSToken: 101, SEPToken: 102, MaskToken: 103}
	for s, id := range ids {
		if got, ok := tok.ID(s); !ok || got != id {
			t.Errorf("ID(%s) = %d, %v; want %d", s, got, ok, id)
		}
	}
	if tok.PadID() != 0 || tok.UNKID() != 100 || tok.CLSID() != 101 || tok.SEPID() != 102 || tok.MASKID() != 103 {
		t.Errorf("accessors: %d %d %d %d %d", tok.PadID(), tok.UNKID(), tok.CLSID(), tok.SEPID(), tok.MASKID())
	}
}

func TestWebShopTokensAppended(t *testing.T) {
	tok := loadTokFixture(t)
	const fileLines = 7593
	if tok.VocabSize() != fileLines+4 {
		t.Fatalf("VocabSize = %d, want %d", tok.VocabSize(), fileLines+4)
	}
	for i, s := range []string{ButtonToken, ButtonEndToken, ClickedButtonToken, ClickedButtonEndToken} {
		id, ok := tok.ID(s)
		if !ok || id != int32(fileLines+i) || tok.Token(id) != s {
			t.Errorf("ID(%s) = %d, %v; want %d", s, id, ok, fileLines+i)
		}
	}
	got := tok.Encode("[clicked button] 20 inch [clicked button_]")
	want := []int32{fileLines + 2, tokMustID(t, tok, "20"), tokMustID(t, tok, "inch"), fileLines + 3}
	if !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if tok.Token(-1) != "" || tok.Token(int32(tok.VocabSize())) != "" {
		t.Error("Token out of range should be empty")
	}
	if want := SpecialTokens(); !slices.Equal(want[5:], []string{"[button]", "[button_]", "[clicked button]", "[clicked button_]"}) {
		t.Errorf("SpecialTokens = %q", want)
	}
}

func tokMustID(t *testing.T, tok *Tokenizer, s string) int32 {
	t.Helper()
	id, ok := tok.ID(s)
	if !ok {
		t.Fatalf("%q not in vocab", s)
	}
	return id
}

func TestGolden(t *testing.T) {
	tok := loadTokFixture(t)
	f, err := os.Open("testdata/tokenizer/golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for line := 0; sc.Scan(); line++ {
		if line == 0 {
			continue // header: which implementation produced the file
		}
		var c struct {
			Text   string   `json:"text"`
			Tokens []string `json:"tokens"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("line %d: %v", line+1, err)
		}
		if got := tok.Tokenize(c.Text); !slices.Equal(got, c.Tokens) {
			t.Errorf("line %d: Tokenize(%q)\n got %q\nwant %q", line+1, c.Text, got, c.Tokens)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 400 {
		t.Errorf("only %d golden cases", n)
	}
}

func TestLongWords(t *testing.T) {
	tok := loadTokFixture(t)
	got := tok.Tokenize(strings.Repeat("a", 100))
	if len(got) != 100 || got[0] != "a" || got[99] != "##a" {
		t.Errorf("100 chars: %d tokens %q...", len(got), got[:min(3, len(got))])
	}
	if got := tok.Tokenize(strings.Repeat("a", 101) + " hello"); !slices.Equal(got, []string{"[UNK]", "hello"}) {
		t.Errorf("101 chars: %q", got)
	}
	// The limit counts characters after accent stripping, not bytes: 100 "é" are
	// 100 characters.
	if got := tok.Tokenize(strings.Repeat("é", 100)); len(got) != 100 {
		t.Errorf("100 é: %d tokens", len(got))
	}
	if got := tok.Tokenize(strings.Repeat("é", 101)); !slices.Equal(got, []string{"[UNK]"}) {
		t.Errorf("101 é: %q", got)
	}
	// Punctuation splits a long run into short words.
	if got := tok.Tokenize(strings.Repeat("a.", 60)); len(got) != 120 {
		t.Errorf("a.a.a...: %d tokens", len(got))
	}
}

func TestTruncation(t *testing.T) {
	tok := loadTokFixture(t)
	cls, sep := tok.CLSID(), tok.SEPID()
	text := "the of and in to is for with you this my world dog hello"
	ids := tok.Encode(text)
	if len(ids) != 14 {
		t.Fatalf("Encode: %d ids", len(ids))
	}
	wrap := func(x []int32) []int32 { return append(append([]int32{cls}, x...), sep) }

	// States keep the tail.
	if got := tok.EncodeState(text, 6); !slices.Equal(got, wrap(ids[10:])) {
		t.Errorf("EncodeState(6) = %v, want %v", got, wrap(ids[10:]))
	}
	if got := tok.EncodeState(text, 6); tok.Token(got[1]) != "my" || tok.Token(got[4]) != "hello" {
		t.Errorf("EncodeState(6) tokens %q", tokTokens(tok, got))
	}
	// Actions keep the head.
	if got := tok.EncodeAction(text, 6); !slices.Equal(got, wrap(ids[:4])) {
		t.Errorf("EncodeAction(6) = %v, want %v", got, wrap(ids[:4]))
	}
	for _, maxLen := range []int{0, -1, 16, 17, 100} {
		if got := tok.EncodeState(text, maxLen); !slices.Equal(got, wrap(ids)) {
			t.Errorf("EncodeState(%d) = %v", maxLen, got)
		}
		if got := tok.EncodeAction(text, maxLen); !slices.Equal(got, wrap(ids)) {
			t.Errorf("EncodeAction(%d) = %v", maxLen, got)
		}
	}
	if got := tok.EncodeState(text, 15); !slices.Equal(got, wrap(ids[1:])) {
		t.Errorf("EncodeState(15) = %v", got)
	}
	for _, maxLen := range []int{1, 2} {
		if got := tok.EncodeState(text, maxLen); !slices.Equal(got, []int32{cls, sep}) {
			t.Errorf("EncodeState(%d) = %v", maxLen, got)
		}
		if got := tok.EncodeAction(text, maxLen); !slices.Equal(got, []int32{cls, sep}) {
			t.Errorf("EncodeAction(%d) = %v", maxLen, got)
		}
	}
	if got := tok.EncodeState("", 10); !slices.Equal(got, []int32{cls, sep}) {
		t.Errorf("EncodeState(empty) = %v", got)
	}
	// A WebShop state: the instruction at the front is cut, the buttons at the
	// end are kept.
	obs := "Instruction: [SEP] i need a black shirt [SEP] [button] Buy Now [button_]"
	got := tokTokens(tok, tok.EncodeState(obs, 8))
	if want := []string{"[CLS]", "shirt", "[SEP]", "[button]", "buy", "now", "[button_]", "[SEP]"}; !slices.Equal(got, want) {
		t.Errorf("EncodeState(obs, 8) = %q, want %q", got, want)
	}
	got = tokTokens(tok, tok.EncodeAction("click[black shirt extension]", 6))
	if want := []string{"[CLS]", "cl", "##ick", "[", "black", "[SEP]"}; !slices.Equal(got, want) {
		t.Errorf("EncodeAction = %q, want %q", got, want)
	}
}

func tokTokens(tok *Tokenizer, ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tok.Token(id)
	}
	return out
}

func TestAppendEncode(t *testing.T) {
	tok := loadTokFixture(t)
	dst := []int32{-7}
	got := tok.AppendEncode(dst, "hello world")
	if want := []int32{-7, 7592, 2088}; !slices.Equal(got, want) {
		t.Errorf("AppendEncode = %v, want %v", got, want)
	}
}

func TestNewTokenizerErrors(t *testing.T) {
	if _, err := NewTokenizer([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]"}); err == nil || !strings.Contains(err.Error(), "[MASK]") {
		t.Errorf("missing [MASK]: err = %v", err)
	}
	if _, err := NewTokenizer([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a\nb"}); err == nil {
		t.Error("newline in token: no error")
	}
	if _, err := LoadVocab(filepath.Join(t.TempDir(), "missing.txt")); err == nil {
		t.Error("missing file: no error")
	}
	empty := filepath.Join(t.TempDir(), "empty.txt")
	os.WriteFile(empty, nil, 0o644)
	if _, err := LoadVocab(empty); err == nil {
		t.Error("empty file: no error")
	}
	// The caller's slice is not kept.
	v := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"}
	tok, err := NewTokenizer(v)
	if err != nil {
		t.Fatal(err)
	}
	v[5] = "b"
	if tok.Token(5) != "a" || tok.VocabSize() != 10 {
		t.Errorf("Token(5) = %q, VocabSize = %d", tok.Token(5), tok.VocabSize())
	}
	w := tok.Vocab()
	w[5] = "c"
	if tok.Token(5) != "a" {
		t.Error("Vocab returned the internal slice")
	}
}

func TestVocabRoundTrip(t *testing.T) {
	dir := t.TempDir()
	// CRLF line ends and a vocabulary that already holds [button].
	crlf := filepath.Join(dir, "crlf.txt")
	if err := os.WriteFile(crlf, []byte("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\n[button]\r\nhello\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := LoadVocab(crlf)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := tok.ID("hello"); id != 6 {
		t.Errorf("ID(hello) = %d", id)
	}
	if id, _ := tok.ID(ButtonToken); id != 5 {
		t.Errorf("ID([button]) = %d, want 5 (kept, not appended)", id)
	}
	if tok.VocabSize() != 10 {
		t.Errorf("VocabSize = %d, want 10", tok.VocabSize())
	}
	out := filepath.Join(dir, "vocab.txt")
	if err := tok.WriteVocab(out); err != nil {
		t.Fatal(err)
	}
	back, err := LoadVocab(out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Vocab(), tok.Vocab()) {
		t.Errorf("round trip: %q vs %q", back.Vocab(), tok.Vocab())
	}
	data, _ := os.ReadFile(out)
	if want := "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n[button]\nhello\n[button_]\n[clicked button]\n[clicked button_]\n"; string(data) != want {
		t.Errorf("file:\n%s", data)
	}
	// The fixture round-trips byte for byte, plus the four appended tokens.
	fix := loadTokFixture(t)
	if err := fix.WriteVocab(out); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(tokFixtureVocab)
	data, _ = os.ReadFile(out)
	if want := string(orig) + strings.Join(SpecialTokens()[5:], "\n") + "\n"; string(data) != want {
		t.Error("fixture did not round-trip")
	}
	if err := fix.WriteVocab(filepath.Join(dir, "no", "such", "dir", "vocab.txt")); err == nil {
		t.Error("WriteVocab into a missing folder: no error")
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok := loadTokFixture(t)
	texts := []string{tokTextRichObs, "Héllo Crème Brûlée 中国", "[clicked button] black [clicked button_]"}
	want := make([][]int32, len(texts))
	for i, s := range texts {
		want[i] = tok.EncodeState(s, 128)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g + i) % len(texts)
				if got := tok.EncodeState(texts[k], 128); !slices.Equal(got, want[k]) {
					t.Errorf("goroutine %d: mismatch on text %d", g, k)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestEncodeAllocs(t *testing.T) {
	if testing.Short() || tokRaceEnabled {
		t.Skip("allocation counts are checked in full runs without -race (sync.Pool drops items under -race)")
	}
	tok := loadTokFixture(t)
	tok.EncodeState(tokTextRichObs, 512) // warm the pool
	allocs := testing.AllocsPerRun(100, func() { tok.EncodeState(tokTextRichObs, 512) })
	// One allocation: the result. (A GC between runs may empty the pool.)
	if allocs > 1.5 {
		t.Errorf("EncodeState: %.1f allocations per call, want 1", allocs)
	}
	dst := make([]int32, 0, 1024)
	allocs = testing.AllocsPerRun(100, func() { dst = tok.AppendEncode(dst[:0], tokTextRichObs) })
	if allocs > 0.5 {
		t.Errorf("AppendEncode: %.1f allocations per call, want 0", allocs)
	}
}

func FuzzTokenize(f *testing.F) {
	tok := loadTokFixture(f)
	for _, s := range []string{
		"Hello, World!", "unaffable", "Héllo Crème Brûlée", "don't", "中国人", tokTextRichObs,
		"[button] Buy Now [button_]", "[clicked button] black [clicked button_]",
		"WebShop [SEP] Instruction: [SEP] i need", "[\u212aicked button]", "\xff\xfe[", "a\u0301\u0301",
		strings.Repeat("a", 101), "[[[[", "ΟΔΟΣ İ ß ﬁ",
	} {
		f.Add(s)
	}
	built, err := NewTokenizer(BuildVocab(slices.Values(vocabTestCorpus()), 500, 1))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		toks := tok.Tokenize(text)
		ids := tok.Encode(text)
		if ref := tokReferenceEncode(tok, text); !slices.Equal(ids, ref) {
			t.Fatalf("Encode %v, reference WordPiece %v", ids, ref)
		}
		if got, ref := built.Encode(text), tokReferenceEncode(built, text); !slices.Equal(got, ref) {
			t.Fatalf("built vocab: Encode %v, reference WordPiece %v", got, ref)
		}
		if len(ids) != len(toks) {
			t.Fatalf("Encode gave %d ids, Tokenize %d tokens", len(ids), len(toks))
		}
		for i, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("id %d out of range", id)
			}
			if want, ok := tok.ID(toks[i]); !ok || want != id {
				t.Fatalf("token %d: Encode %d, ID(%q) = %d, %v", i, id, toks[i], want, ok)
			}
			if toks[i] == "" || !utf8.ValidString(toks[i]) {
				t.Fatalf("bad token %q", toks[i])
			}
		}
		for _, maxLen := range []int{1, 3, 16} {
			st := tok.EncodeState(text, maxLen)
			ac := tok.EncodeAction(text, maxLen)
			n := min(len(ids), max(maxLen-2, 0)) + 2
			if len(st) != n || len(ac) != n || st[0] != tok.CLSID() || st[n-1] != tok.SEPID() ||
				ac[0] != tok.CLSID() || ac[n-1] != tok.SEPID() {
				t.Fatalf("maxLen %d: state %v action %v (ids %v)", maxLen, st, ac, ids)
			}
			if !slices.Equal(st[1:n-1], ids[len(ids)-(n-2):]) || !slices.Equal(ac[1:n-1], ids[:n-2]) {
				t.Fatalf("maxLen %d: wrong slice kept", maxLen)
			}
		}
	})
}

// tokReferenceEncode is Encode with WordPiece written as plainly as Hugging Face's
// WordpieceTokenizer (map lookups on every candidate, longest first), to check the
// trie that Encode uses.
func tokReferenceEncode(tok *Tokenizer, text string) []int32 {
	var c tokPieceCollector
	basicSplit(text, &tokScratch{}, &c)
	var out []int32
	for _, p := range c.pieces {
		if p.added >= 0 {
			out = append(out, tok.added[p.added])
			continue
		}
		chars := []rune(p.text)
		if len(chars) > MaxInputCharsPerWord {
			out = append(out, tok.UNKID())
			continue
		}
		var sub []int32
		for start := 0; start < len(chars); {
			end, found := len(chars), false
			for ; start < end; end-- {
				s := string(chars[start:end])
				if start > 0 {
					s = "##" + s
				}
				if id, ok := tok.ids[s]; ok {
					sub, found = append(sub, id), true
					break
				}
			}
			if !found {
				sub = []int32{tok.UNKID()}
				break
			}
			start = end
		}
		out = append(out, sub...)
	}
	if out == nil {
		out = []int32{}
	}
	return out
}

type tokPieceCollector struct {
	pieces []struct {
		added int
		text  string
	}
}

func (c *tokPieceCollector) addedToken(k int) {
	c.pieces = append(c.pieces, struct {
		added int
		text  string
	}{k, ""})
}

func (c *tokPieceCollector) basicToken(p []byte) {
	c.pieces = append(c.pieces, struct {
		added int
		text  string
	}{-1, string(p)})
}

func TestTrieMatchesReference(t *testing.T) {
	fix := loadTokFixture(t)
	built, err := NewTokenizer(BuildVocab(slices.Values(vocabTestCorpus()), 500, 1))
	if err != nil {
		t.Fatal(err)
	}
	// A vocabulary with multi-byte and odd tokens: an empty line, a lone "##",
	// a duplicate (the last id wins), a token ending inside a character.
	odd, err := NewTokenizer([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "", "##", "é", "e", "##e",
		"ab", "##ab", "a", "##b", "ab", "\xc3", "中", "##中", "x\xe4\xb8"})
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{tokTextRichObs, "abab abé eee ab中 x中 aé", strings.Repeat("ab", 50), "ÉÈ e\u0301"}
	texts = append(texts, vocabTestCorpus()...)
	data, _ := os.ReadFile("testdata/tokenizer/golden.jsonl")
	for _, line := range strings.Split(string(data), "\n") {
		var c struct{ Text string }
		if json.Unmarshal([]byte(line), &c) == nil {
			texts = append(texts, c.Text)
		}
	}
	for _, tok := range []*Tokenizer{fix, built, odd} {
		for _, text := range texts {
			if got, want := tok.Encode(text), tokReferenceEncode(tok, text); !slices.Equal(got, want) {
				t.Errorf("vocab of %d: Encode(%q) = %v, reference %v", tok.VocabSize(), text, got, want)
			}
		}
	}
	if got := odd.Tokenize("abab"); !slices.Equal(got, []string{"ab", "##ab"}) {
		t.Errorf("odd vocab: %q", got)
	}
	if id, _ := odd.ID("ab"); id != 14 {
		t.Errorf("duplicate token: ID(ab) = %d, want the last, 14", id)
	}
}

// tokTextRichObs is a WebShop item page in text_rich mode, about 1,000
// characters.
var tokTextRichObs = "You have clicked 20 inch.\nYou have clicked black.\nInstruction:\n" +
	"i need a long clip-in hair extension which is natural looking, and price lower than 40.00 dollars\n" +
	"[button] Back to Search [button_]\n[button] < Prev [button_]\ncolor\n" +
	"  [clicked button] black [clicked button_]\n  [button] dark brown [button_]\n  [button] light brown [button_]\n" +
	"  [button] natural black [button_]\n  [button] blonde [button_]\nsize\n" +
	"  [clicked button] 20 inch [clicked button_]\n  [button] 22 inch [button_]\n  [button] 24 inch [button_]\n" +
	"Foo Hair Extension 20 inch Long Straight Clip In Hair Extensions for Women, Natural Looking Synthetic " +
	"Hairpieces with Thick Double Weft, 7 Pieces 16 Clips (Black)\nPrice: $19.99\nRating: N.A.\n" +
	"[button] Description [button_]\n[button] Features [button_]\n[button] Reviews [button_]\n" +
	"[button] Attributes [button_]\n[button] Buy Now [button_]\n" +
	"Made of premium heat-resistant fiber; soft, smooth and tangle-free. Easy to apply: clip in within " +
	"minutes, no glue, no damage to your own hair. Can be curled under 180°C.\n"

func BenchmarkEncodeState(b *testing.B) {
	if n := utf8.RuneCountInString(tokTextRichObs); n < 950 || n > 1100 {
		b.Fatalf("observation has %d characters", n)
	}
	b.Run("fixture-vocab", func(b *testing.B) {
		tok := loadTokFixture(b)
		b.SetBytes(int64(len(tokTextRichObs)))
		b.ReportAllocs()
		for b.Loop() {
			tok.EncodeState(tokTextRichObs, 512)
		}
	})
	b.Run("built-vocab", func(b *testing.B) {
		corpus := strings.Split(tokTextRichObs, "\n")
		tok, err := NewTokenizer(BuildVocab(slices.Values(corpus), 400, 2))
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(tokTextRichObs)))
		b.ReportAllocs()
		for b.Loop() {
			tok.EncodeState(tokTextRichObs, 512)
		}
	})
}
