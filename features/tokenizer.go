package features

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"shopagent/atomicfile"
)

// The special tokens of BERT and the four tokens WebShop adds for its buttons.
const (
	// PadToken pads a batch of sequences to one length.
	PadToken = "[PAD]"
	// UnkToken stands for a word WordPiece cannot spell with the vocabulary.
	UnkToken = "[UNK]"
	// CLSToken starts every encoded state and action.
	CLSToken = "[CLS]"
	// SEPToken ends every encoded state and action; WebShop's text observations
	// also use it between fields, where it is kept as this token.
	SEPToken = "[SEP]"
	// MaskToken replaces the tokens to predict in masked-LM pretraining.
	MaskToken = "[MASK]"
	// ButtonToken opens a clickable button in a WebShop observation.
	ButtonToken = "[button]"
	// ButtonEndToken closes a clickable button.
	ButtonEndToken = "[button_]"
	// ClickedButtonToken opens an option button that is already selected.
	ClickedButtonToken = "[clicked button]"
	// ClickedButtonEndToken closes a selected option button.
	ClickedButtonEndToken = "[clicked button_]"
)

// MaxInputCharsPerWord is WordPiece's limit: a basic token longer than this many
// characters (code points) becomes [UNK], as in Hugging Face's WordpieceTokenizer.
const MaxInputCharsPerWord = 100

// addedTokens are matched in the raw text before basic tokenization, like Hugging
// Face's added tokens: the five BERT specials exactly (case-sensitive), the four
// WebShop tokens after lowercasing (see foldPrefix). Their order fixes the order of
// SpecialTokens and of a vocabulary built by BuildVocab.
var addedTokens = [...]string{
	PadToken, UnkToken, CLSToken, SEPToken, MaskToken,
	ButtonToken, ButtonEndToken, ClickedButtonToken, ClickedButtonEndToken,
}

// numBERTSpecial is how many of addedTokens are BERT's own special tokens.
const numBERTSpecial = 5

// SpecialTokens returns the nine tokens that are never split: [PAD] [UNK] [CLS]
// [SEP] [MASK] followed by [button] [button_] [clicked button] [clicked button_].
func SpecialTokens() []string { return slices.Clone(addedTokens[:]) }

// Tokenizer is Hugging Face's BertTokenizer for an uncased vocabulary
// (do_lower_case=True, tokenize_chinese_chars=True, accents stripped after
// lowercasing), plus WebShop's four button tokens as added tokens. It is
// immutable after construction and safe for concurrent use.
//
// Tokenization of a text:
//  1. Added tokens (SpecialTokens) are cut out of the raw text, leftmost and
//     longest first. [PAD] [UNK] [CLS] [SEP] [MASK] match exactly; the WebShop
//     tokens match case-insensitively, as HF's slow tokenizer lowercases the text
//     (except the special tokens) before it looks for added tokens.
//  2. Each remaining segment goes through BERT's basic tokenizer: NUL, U+FFFD,
//     invalid UTF-8 and other control/format/unassigned characters (Unicode
//     category C*) are dropped; whitespace becomes a space; each CJK ideograph
//     becomes a word of its own; words are split on whitespace, lowercased,
//     NFD-normalized with nonspacing marks (Mn) removed, and split around each
//     punctuation character (ASCII 33-47, 58-64, 91-96, 123-126 and Unicode P*).
//  3. Each basic token is split by WordPiece: greedy longest-match-first with the
//     "##" continuation prefix; a token that cannot be spelled, or is longer than
//     MaxInputCharsPerWord characters, becomes [UNK].
type Tokenizer struct {
	vocab []string
	ids   map[string]int32
	// added holds the ids of addedTokens, in the same order.
	added [len(addedTokens)]int32
	// initial holds every token, for the first piece of a word; cont holds the
	// "##" tokens without their "##", for the pieces after it. WordPiece's
	// longest-match-first is one walk down a trie instead of a map lookup per
	// candidate length.
	initial, cont pieceTrie
}

// LoadVocab reads a BERT vocab.txt (one token per line, the id of a token is its
// zero-based line number; "\r\n" line ends are accepted) and returns a Tokenizer
// over it. The WebShop tokens are appended when the file lacks them, as
// Hugging Face's add_tokens does.
func LoadVocab(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("features: load vocab: %w", err)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("features: load vocab %s: empty file", path)
	}
	s := string(data)
	s = strings.TrimSuffix(s, "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	t, err := NewTokenizer(lines)
	if err != nil {
		return nil, fmt.Errorf("features: load vocab %s: %w", path, err)
	}
	return t, nil
}

// NewTokenizer returns a Tokenizer over vocab, where the id of a token is its
// index. vocab must contain [PAD] [UNK] [CLS] [SEP] [MASK]; [button] [button_]
// [clicked button] [clicked button_] are appended (in that order) when missing.
// A token that occurs twice maps to its last index, as in Hugging Face's
// load_vocab. Tokens must not contain a newline.
func NewTokenizer(vocab []string) (*Tokenizer, error) {
	var missing []string
	t := &Tokenizer{vocab: slices.Clone(vocab), ids: make(map[string]int32, len(vocab)+len(addedTokens))}
	for i, tok := range t.vocab {
		if strings.ContainsAny(tok, "\n") {
			return nil, fmt.Errorf("vocab token %d contains a newline", i)
		}
		t.ids[tok] = int32(i)
	}
	for k, tok := range addedTokens[:numBERTSpecial] {
		id, ok := t.ids[tok]
		if !ok {
			missing = append(missing, tok)
		}
		t.added[k] = id
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("vocab lacks special tokens %s", strings.Join(missing, " "))
	}
	for k := numBERTSpecial; k < len(addedTokens); k++ {
		tok := addedTokens[k]
		id, ok := t.ids[tok]
		if !ok {
			id = int32(len(t.vocab))
			t.vocab = append(t.vocab, tok)
			t.ids[tok] = id
		}
		t.added[k] = id
	}
	if len(t.vocab) > 1<<31-1 {
		return nil, errors.New("vocab too large for int32 ids")
	}
	t.initial = buildPieceTrie(t.ids, "")
	t.cont = buildPieceTrie(t.ids, "##")
	return t, nil
}

// VocabSize returns the number of token ids, the WebShop tokens included.
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// ID returns the id of tok and whether tok is in the vocabulary.
func (t *Tokenizer) ID(tok string) (int32, bool) {
	id, ok := t.ids[tok]
	return id, ok
}

// Token returns the token with the given id, or "" when id is out of range.
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.vocab) {
		return ""
	}
	return t.vocab[id]
}

// Vocab returns a copy of the vocabulary, indexed by id.
func (t *Tokenizer) Vocab() []string { return slices.Clone(t.vocab) }

// PadID returns the id of [PAD].
func (t *Tokenizer) PadID() int32 { return t.added[0] }

// UNKID returns the id of [UNK].
func (t *Tokenizer) UNKID() int32 { return t.added[1] }

// CLSID returns the id of [CLS].
func (t *Tokenizer) CLSID() int32 { return t.added[2] }

// SEPID returns the id of [SEP].
func (t *Tokenizer) SEPID() int32 { return t.added[3] }

// MASKID returns the id of [MASK].
func (t *Tokenizer) MASKID() int32 { return t.added[4] }

// WriteVocab writes the vocabulary (WebShop tokens included) as a vocab.txt, one
// token per line in id order, so that LoadVocab reads back the same Tokenizer. The
// file is written to a temporary name in the same folder and renamed into place.
func (t *Tokenizer) WriteVocab(path string) error {
	return writeVocabFile(path, t.vocab)
}

func writeVocabFile(path string, vocab []string) error {
	err := atomicfile.Write(path, 0o644, func(f io.Writer) error {
		w := bufio.NewWriter(f)
		for _, tok := range vocab {
			w.WriteString(tok)
			w.WriteByte('\n')
		}
		return w.Flush()
	})
	if err != nil {
		return fmt.Errorf("features: write vocab: %w", err)
	}
	return nil
}

// Tokenize returns the tokens of text (see Tokenizer), without [CLS] and [SEP].
func (t *Tokenizer) Tokenize(text string) []string {
	sc := getTokScratch()
	ids := t.appendIDs(sc.ids[:0], text, sc)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = t.vocab[id]
	}
	sc.ids = ids[:0]
	putTokScratch(sc)
	return out
}

// Encode returns the token ids of text, without [CLS] and [SEP]. It equals the
// ids of Tokenize(text).
func (t *Tokenizer) Encode(text string) []int32 {
	sc := getTokScratch()
	ids := t.appendIDs(sc.ids[:0], text, sc)
	out := slices.Clone(ids)
	if out == nil {
		out = []int32{}
	}
	sc.ids = ids[:0]
	putTokScratch(sc)
	return out
}

// AppendEncode appends the token ids of text (as Encode) to dst and returns the
// extended slice; it allocates only to grow dst.
func (t *Tokenizer) AppendEncode(dst []int32, text string) []int32 {
	sc := getTokScratch()
	dst = t.appendIDs(dst, text, sc)
	putTokScratch(sc)
	return dst
}

// EncodeState returns [CLS] + tokens + [SEP] truncated FROM THE LEFT (keep the
// tail) to maxLen total: when text has more than maxLen-2 tokens, only its last
// maxLen-2 are kept, as Hugging Face's truncation_side="left". maxLen <= 0 means
// no limit; maxLen 1 or 2 gives [CLS] [SEP].
func (t *Tokenizer) EncodeState(text string, maxLen int) []int32 {
	return t.encodePair(text, maxLen, true)
}

// EncodeAction returns [CLS] + tokens + [SEP] truncated from the right to maxLen
// total: when text has more than maxLen-2 tokens, only its first maxLen-2 are kept.
// maxLen <= 0 means no limit; maxLen 1 or 2 gives [CLS] [SEP].
func (t *Tokenizer) EncodeAction(text string, maxLen int) []int32 {
	return t.encodePair(text, maxLen, false)
}

func (t *Tokenizer) encodePair(text string, maxLen int, keepTail bool) []int32 {
	sc := getTokScratch()
	all := t.appendIDs(sc.ids[:0], text, sc)
	ids := all
	if maxLen > 0 {
		keep := max(maxLen-2, 0)
		if len(ids) > keep {
			if keepTail {
				ids = ids[len(ids)-keep:]
			} else {
				ids = ids[:keep]
			}
		}
	}
	out := make([]int32, len(ids)+2)
	out[0] = t.added[2]
	copy(out[1:], ids)
	out[len(out)-1] = t.added[3]
	sc.ids = all[:0]
	putTokScratch(sc)
	return out
}

// tokScratch holds the buffers of one encoding call; pooled so that the hot path does
// not allocate.
type tokScratch struct {
	ids  []int32
	word []byte // the current whitespace-delimited word, cleaned
	low  []byte // the word lowercased (non-ASCII path)
	norm []byte // the word in NFD without Mn (non-ASCII path)
	enc  tokEncoder
}

var tokScratchPool = sync.Pool{New: func() any {
	return &tokScratch{
		ids:  make([]int32, 0, 512),
		word: make([]byte, 0, 64),
		low:  make([]byte, 0, 64),
		norm: make([]byte, 0, 64),
	}
}}

func getTokScratch() *tokScratch { return tokScratchPool.Get().(*tokScratch) }

func putTokScratch(sc *tokScratch) {
	// Do not keep the buffers of a huge text alive.
	if cap(sc.ids) > 1<<16 || cap(sc.word) > 1<<16 || cap(sc.norm) > 1<<16 || cap(sc.low) > 1<<16 {
		return
	}
	tokScratchPool.Put(sc)
}

// basicSink receives what basicSplit finds, in text order.
type basicSink interface {
	// addedToken receives the index in addedTokens of a token cut out of the text.
	addedToken(k int)
	// basicToken receives one basic token: lowercased, accents stripped, not empty,
	// no whitespace. p is only valid during the call.
	basicToken(p []byte)
}

// tokEncoder turns basic tokens into ids with WordPiece.
type tokEncoder struct {
	t   *Tokenizer
	dst []int32
}

func (e *tokEncoder) addedToken(k int)    { e.dst = append(e.dst, e.t.added[k]) }
func (e *tokEncoder) basicToken(p []byte) { e.dst = e.t.wordPiece(e.dst, p) }

func (t *Tokenizer) appendIDs(dst []int32, text string, sc *tokScratch) []int32 {
	e := &sc.enc // in the pooled scratch: a sink passed as an interface escapes
	*e = tokEncoder{t: t, dst: dst}
	basicSplit(text, sc, e)
	dst = e.dst
	*e = tokEncoder{}
	return dst
}

// basicSplit cuts the added tokens out of text and runs BERT's basic tokenizer on
// the segments between them.
func basicSplit(text string, sc *tokScratch, sink basicSink) {
	segStart, i := 0, 0
	for i < len(text) {
		j := strings.IndexByte(text[i:], '[')
		if j < 0 {
			break
		}
		i += j
		if k, n := matchAdded(text[i:]); n > 0 {
			basicSegment(text[segStart:i], sc, sink)
			sink.addedToken(k)
			i += n
			segStart = i
			continue
		}
		i++
	}
	basicSegment(text[segStart:], sc, sink)
}

// matchAdded returns the index in addedTokens and the byte length of the longest
// added token that s starts with, or n == 0. s starts with '['.
func matchAdded(s string) (k, n int) {
	if len(s) < 5 {
		return -1, 0
	}
	k = -1
	switch c := s[1]; {
	case c >= 'A' && c <= 'Z': // [PAD] [UNK] [CLS] [SEP] [MASK]: exact, like HF's special tokens
		for i, tok := range addedTokens[:numBERTSpecial] {
			if strings.HasPrefix(s, tok) {
				return i, len(tok)
			}
		}
		fallthrough // a capital B or C may start a WebShop token
	default:
		for i := numBERTSpecial; i < len(addedTokens); i++ {
			if m := foldPrefix(s, addedTokens[i]); m > n {
				k, n = i, m
			}
		}
	}
	return k, n
}

// foldPrefix returns the byte length of the prefix of s that equals the ASCII
// token tok after lowercasing s character by character, or 0. This is how HF's
// slow tokenizer sees an added token in uncased text: it lowercases every
// character with Python's str.lower before matching. U+0130 (İ) lowercases to two
// characters in Python and so never matches "i"; U+212A (Kelvin sign) lowercases
// to "k" and matches.
func foldPrefix(s, tok string) int {
	i := 0
	for j := 0; j < len(tok); j++ {
		if i >= len(s) {
			return 0
		}
		if c := s[i]; c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != tok[j] {
				return 0
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0x130 || unicode.ToLower(r) != rune(tok[j]) {
			return 0
		}
		i += size
	}
	return i
}

// basicSegment is BERT's BasicTokenizer on a text without added tokens: clean
// text, pad CJK ideographs, split on whitespace, then lowercase, strip accents and
// split on punctuation word by word.
func basicSegment(s string, sc *tokScratch, sink basicSink) {
	word := sc.word[:0]
	ascii := true
	flush := func() {
		if len(word) > 0 {
			basicWord(word, ascii, sc, sink)
			word = word[:0]
			ascii = true
		}
	}
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			i++
			switch {
			case c == ' ' || c == '\t' || c == '\n' || c == '\r':
				flush()
			case c < 0x20 || c == 0x7f: // NUL and other Cc: dropped
			default:
				word = append(word, c)
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError: // U+FFFD, or invalid UTF-8: dropped
		case isBertChinese(r):
			flush()
			word = append(word, s[i-size:i]...)
			ascii = false
			flush()
		case isBertSpace(r):
			flush()
		case isBertControl(r): // Cc, Cf, Co, Cs, Cn: dropped
		default:
			word = append(word, s[i-size:i]...)
			ascii = false
		}
	}
	flush()
	sc.word = word
}

// basicWord lowercases w, strips accents and splits it on punctuation. w is
// non-empty and holds no whitespace or control characters. w may be overwritten.
func basicWord(w []byte, ascii bool, sc *tokScratch, sink basicSink) {
	if ascii {
		if w[0] == '[' && w[len(w)-1] == ']' {
			// never_split: HF's BasicTokenizer keeps the special tokens whole. (They
			// are already cut out by basicSplit; kept for fidelity.)
			for k, tok := range addedTokens[:numBERTSpecial] {
				if string(w) == tok {
					sink.addedToken(k)
					return
				}
			}
		}
		start := 0
		for i, c := range w {
			if 'A' <= c && c <= 'Z' {
				w[i] = c + ('a' - 'A')
				continue
			}
			if isBertASCIIPunct(c) {
				if start < i {
					sink.basicToken(w[start:i])
				}
				sink.basicToken(w[i : i+1])
				start = i + 1
			}
		}
		if start < len(w) {
			sink.basicToken(w[start:])
		}
		return
	}
	// Lowercase (Go's simple case mapping equals Python's str.lower applied one
	// character at a time, after accent stripping), then NFD and drop Mn.
	low := sc.low[:0]
	for i := 0; i < len(w); {
		r, size := utf8.DecodeRune(w[i:])
		i += size
		low = utf8.AppendRune(low, unicode.ToLower(r))
	}
	sc.low = low
	nfd := norm.NFD.Append(sc.norm[:0], low...)
	// Drop Mn in place, then split on punctuation.
	n := 0
	for i := 0; i < len(nfd); {
		r, size := utf8.DecodeRune(nfd[i:])
		if r >= utf8.RuneSelf && unicode.Is(unicode.Mn, r) {
			i += size
			continue
		}
		n += copy(nfd[n:], nfd[i:i+size])
		i += size
	}
	sc.norm = nfd
	p := nfd[:n]
	start := 0
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		if isBertPunct(r) {
			if start < i {
				sink.basicToken(p[start:i])
			}
			sink.basicToken(p[i : i+size])
			start = i + size
		}
		i += size
	}
	if start < len(p) {
		sink.basicToken(p[start:])
	}
}

// wordPiece appends the WordPiece ids of the basic token p to dst: greedy
// longest-match-first, pieces after the first looked up with the "##" prefix; a
// token that cannot be spelled, or has more than MaxInputCharsPerWord characters,
// is one [UNK].
func (t *Tokenizer) wordPiece(dst []int32, p []byte) []int32 {
	if len(p) > MaxInputCharsPerWord && utf8.RuneCount(p) > MaxInputCharsPerWord {
		return append(dst, t.added[1])
	}
	// Most words of a real vocabulary are whole tokens: one map lookup (no
	// allocation for a []byte key) settles them.
	if id, ok := t.ids[string(p)]; ok {
		return append(dst, id)
	}
	mark := len(dst)
	trie := &t.initial
	for start := 0; start < len(p); {
		id, n := trie.longest(p[start:])
		if n == 0 {
			return append(dst[:mark], t.added[1])
		}
		dst = append(dst, id)
		start += n
		trie = &t.cont
	}
	return dst
}

// pieceTrie is a byte trie over vocabulary tokens, flattened into arrays. Node 0
// is the root; the children of node i are the edges first[i]:first[i+1], sorted
// by label, except the root's, which are also indexed by rootNext.
type pieceTrie struct {
	first    []int32 // per node, then one more entry
	label    []byte  // per edge
	child    []int32 // per edge
	id       []int32 // per node: the token ending there, or -1
	rootNext [256]int32
}

// buildPieceTrie builds the trie of the tokens of ids that start with prefix,
// with prefix removed.
func buildPieceTrie(ids map[string]int32, prefix string) pieceTrie {
	type node struct {
		id       int32
		children map[byte]int32
	}
	nodes := []node{{id: -1}}
	for tok, id := range ids {
		if !strings.HasPrefix(tok, prefix) || len(tok) == len(prefix) {
			continue
		}
		cur := int32(0)
		for i := len(prefix); i < len(tok); i++ {
			next, ok := nodes[cur].children[tok[i]]
			if !ok {
				next = int32(len(nodes))
				nodes = append(nodes, node{id: -1})
				if nodes[cur].children == nil {
					nodes[cur].children = make(map[byte]int32)
				}
				nodes[cur].children[tok[i]] = next
			}
			cur = next
		}
		nodes[cur].id = id
	}
	// Flatten breadth-first so that node numbers follow the edge order.
	tr := pieceTrie{first: make([]int32, 0, len(nodes)+1), id: make([]int32, 0, len(nodes))}
	order := []int32{0}
	newID := make([]int32, len(nodes))
	for k := 0; k < len(order); k++ {
		old := order[k]
		tr.first = append(tr.first, int32(len(tr.label)))
		tr.id = append(tr.id, nodes[old].id)
		labels := make([]byte, 0, len(nodes[old].children))
		for c := range nodes[old].children {
			labels = append(labels, c)
		}
		slices.Sort(labels)
		for _, c := range labels {
			ch := nodes[old].children[c]
			newID[ch] = int32(len(order))
			order = append(order, ch)
			tr.label = append(tr.label, c)
			tr.child = append(tr.child, newID[ch])
		}
	}
	tr.first = append(tr.first, int32(len(tr.label)))
	for i := range tr.rootNext {
		tr.rootNext[i] = -1
	}
	for e := tr.first[0]; e < tr.first[1]; e++ {
		tr.rootNext[tr.label[e]] = tr.child[e]
	}
	return tr
}

// next returns the child of node along byte c, or -1.
func (tr *pieceTrie) next(node int32, c byte) int32 {
	lo, hi := tr.first[node], tr.first[node+1]
	labels := tr.label[lo:hi]
	if len(labels) > 16 {
		if e := bytes.IndexByte(labels, c); e >= 0 {
			return tr.child[int(lo)+e]
		}
		return -1
	}
	for e, l := range labels {
		if l == c {
			return tr.child[int(lo)+e]
		}
		if l > c { // labels are sorted
			break
		}
	}
	return -1
}

// longest returns the id and byte length of the longest token that p starts
// with and that ends on a character boundary of p, or n == 0.
func (tr *pieceTrie) longest(p []byte) (id int32, n int) {
	if len(tr.id) == 0 || len(p) == 0 {
		return -1, 0
	}
	id = -1
	node := tr.rootNext[p[0]]
	for i := 1; node >= 0; i++ {
		if tid := tr.id[node]; tid >= 0 && (i == len(p) || utf8.RuneStart(p[i])) {
			id, n = tid, i
		}
		if i == len(p) {
			break
		}
		node = tr.next(node, p[i])
	}
	return id, n
}

// isBertASCIIPunct reports whether c is one of BERT's ASCII punctuation characters:
// 33-47, 58-64, 91-96, 123-126 (all non-alphanumeric printable ASCII).
func isBertASCIIPunct(c byte) bool {
	return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)
}

// isBertPunct is BERT's _is_punctuation: the ASCII ranges above or Unicode category P*.
func isBertPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return isBertASCIIPunct(byte(r))
	}
	return unicode.IsPunct(r)
}

// isBertSpace reports whether a non-ASCII, non-control r separates words: BERT's
// _is_whitespace (category Zs) plus U+2028 and U+2029, which survive BERT's
// clean-up and are whitespace to Python's str.split.
func isBertSpace(r rune) bool {
	return r == 0x2028 || r == 0x2029 || unicode.Is(unicode.Zs, r)
}

// isBertControl reports whether a non-ASCII r is in a category C* (Cc, Cf, Cs, Co,
// Cn), which BERT's _clean_text drops.
func isBertControl(r rune) bool {
	return !unicode.IsLetter(r) && !unicode.IsMark(r) && !unicode.IsNumber(r) &&
		!unicode.IsPunct(r) && !unicode.IsSymbol(r) && !unicode.Is(unicode.Z, r)
}

// isBertChinese is BERT's _is_chinese_char: the CJK Unified Ideographs blocks and
// their extensions and compatibility blocks (not Japanese kana or Hangul).
func isBertChinese(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}
