package features

import (
	"container/heap"
	"slices"
	"strings"
	"unicode/utf8"
)

// BuildVocab learns a WordPiece vocabulary of about size tokens from a corpus
// (catalog and instruction text), so that no pretrained vocab.txt has to be
// downloaded. texts yields the corpus once (an iter.Seq[string]); it may stop
// early by returning false from yield.
//
// The corpus is split with the Tokenizer's own basic tokenizer (added tokens cut
// out, lowercase, accents stripped, punctuation split, CJK ideographs alone), so
// training sees exactly the basic tokens WordPiece will see. Basic tokens longer
// than MaxInputCharsPerWord characters are ignored (WordPiece turns them into
// [UNK] anyway). The vocabulary is, in id order:
//
//  1. [PAD] [UNK] [CLS] [SEP] [MASK] [button] [button_] [clicked button]
//     [clicked button_] (ids 0-8);
//  2. every character seen, in code point order, then the "##" form of every one
//     of them, so that any word made of seen characters is spelled without
//     [UNK] (these are always included, even beyond size);
//  3. merged pieces, in the order they were learned, until the vocabulary holds
//     size tokens: the merges of byte-pair encoding with WordPiece's "##"
//     continuation prefix (what Hugging Face's WordPieceTrainer does). Each word
//     starts as its characters (c0 ##c1 ##c2 ...); repeatedly the adjacent pair
//     with the highest count (summed over word frequencies) is merged everywhere
//     into one piece (a + b without b's "##"), and the new piece is added when it
//     is not already in the vocabulary. Ties are broken by the left piece, then
//     the right piece, in string order. Merging stops early when no pair occurs
//     at least minFreq times (minFreq < 1 counts as 1).
//
// Frequent words thus become whole tokens and frequent stems and suffixes become
// pieces. The result depends only on the multiset of texts, not on their order or
// on map iteration: the same corpus always gives the same vocabulary.
func BuildVocab(texts func(yield func(string) bool), size int, minFreq int) []string {
	minFreq = max(minFreq, 1)

	// Count the basic tokens of the corpus.
	counter := &vocabWordCounter{counts: make(map[string]*int64)}
	sc := &tokScratch{}
	if texts != nil {
		texts(func(s string) bool {
			basicSplit(s, sc, counter)
			return true
		})
	}
	words := make([]string, 0, len(counter.counts))
	alphabet := make(map[rune]bool)
	for w := range counter.counts {
		if utf8.RuneCountInString(w) > MaxInputCharsPerWord {
			continue
		}
		words = append(words, w)
		for _, r := range w {
			alphabet[r] = true
		}
	}
	slices.Sort(words)
	chars := make([]rune, 0, len(alphabet))
	for r := range alphabet {
		chars = append(chars, r)
	}
	slices.Sort(chars)

	// The base vocabulary: special tokens, characters, ## characters.
	b := &vocabBPE{index: make(map[string]int32)}
	for _, tok := range addedTokens {
		b.add(tok)
	}
	for _, r := range chars {
		b.add(string(r))
	}
	for _, r := range chars {
		b.add("##" + string(r))
	}

	// Each word as its characters.
	b.syms = make([][]int32, len(words))
	b.freq = make([]int64, len(words))
	for i, w := range words {
		s := make([]int32, 0, len(w))
		for j, r := range w {
			if j == 0 {
				s = append(s, b.index[string(r)])
			} else {
				s = append(s, b.index["##"+string(r)])
			}
		}
		b.syms[i] = s
		b.freq[i] = *counter.counts[w]
	}
	b.merge(size, int64(minFreq))
	return b.vocab
}

// vocabWordCounter counts basic tokens; it ignores added tokens.
type vocabWordCounter struct {
	counts map[string]*int64
}

func (c *vocabWordCounter) addedToken(int) {}

func (c *vocabWordCounter) basicToken(p []byte) {
	if n, ok := c.counts[string(p)]; ok {
		*n++
		return
	}
	n := int64(1)
	c.counts[string(p)] = &n
}

// bpePair is two adjacent pieces, by id.
type bpePair struct{ a, b int32 }

// vocabBPE is the state of the merge loop of BuildVocab.
type vocabBPE struct {
	vocab []string
	index map[string]int32
	syms  [][]int32 // each word as piece ids
	freq  []int64   // each word's count in the corpus

	count map[bpePair]int64   // occurrences of each pair, weighted by word count
	where map[bpePair][]int32 // words that may hold each pair (a superset)
	queue bpeQueue
}

// add returns the id of tok, appending it to the vocabulary if new.
func (b *vocabBPE) add(tok string) int32 {
	if id, ok := b.index[tok]; ok {
		return id
	}
	id := int32(len(b.vocab))
	b.vocab = append(b.vocab, tok)
	b.index[tok] = id
	return id
}

// merge runs BPE merges until the vocabulary holds size tokens or no pair occurs
// minFreq times.
func (b *vocabBPE) merge(size int, minFreq int64) {
	if len(b.vocab) >= size {
		return
	}
	b.count = make(map[bpePair]int64)
	b.where = make(map[bpePair][]int32)
	for wi, s := range b.syms {
		for k := 0; k+1 < len(s); k++ {
			p := bpePair{s[k], s[k+1]}
			b.count[p] += b.freq[wi]
			b.note(p, int32(wi))
		}
	}
	b.queue = bpeQueue{vocab: &b.vocab}
	for p, n := range b.count {
		b.queue.items = append(b.queue.items, bpePairCount{p, n})
	}
	heap.Init(&b.queue)

	seen := make([]uint32, len(b.syms)) // stamp of the merge that last visited a word
	delta := make(map[bpePair]int64)
	var stamp uint32
	for len(b.vocab) < size && b.queue.Len() > 0 {
		top := heap.Pop(&b.queue).(bpePairCount)
		if b.count[top.p] != top.n {
			continue // stale: the pair's count changed and was pushed again
		}
		if top.n < minFreq {
			break
		}
		a, c := top.p.a, top.p.b
		merged := b.add(b.vocab[a] + strings.TrimPrefix(b.vocab[c], "##"))
		stamp++
		clear(delta)
		for _, wi := range b.where[top.p] {
			if seen[wi] == stamp {
				continue
			}
			seen[wi] = stamp
			s, f := b.syms[wi], b.freq[wi]
			if !bpeHasPair(s, a, c) {
				continue
			}
			for k := 0; k+1 < len(s); k++ {
				delta[bpePair{s[k], s[k+1]}] -= f
			}
			j := 0
			for k := 0; k < len(s); j++ {
				if k+1 < len(s) && s[k] == a && s[k+1] == c {
					s[j] = merged
					k += 2
				} else {
					s[j] = s[k]
					k++
				}
			}
			s = s[:j]
			b.syms[wi] = s
			for k := 0; k+1 < len(s); k++ {
				p := bpePair{s[k], s[k+1]}
				delta[p] += f
				if s[k] == merged || s[k+1] == merged {
					b.note(p, wi)
				}
			}
		}
		delete(b.where, top.p)
		for p, d := range delta {
			if d == 0 {
				continue
			}
			n := b.count[p] + d
			if n <= 0 {
				delete(b.count, p)
				delete(b.where, p)
				continue
			}
			b.count[p] = n
			heap.Push(&b.queue, bpePairCount{p, n})
		}
	}
}

// note records that word wi may hold pair p.
func (b *vocabBPE) note(p bpePair, wi int32) {
	ws := b.where[p]
	if len(ws) > 0 && ws[len(ws)-1] == wi {
		return
	}
	b.where[p] = append(ws, wi)
}

func bpeHasPair(s []int32, a, c int32) bool {
	for k := 0; k+1 < len(s); k++ {
		if s[k] == a && s[k+1] == c {
			return true
		}
	}
	return false
}

type bpePairCount struct {
	p bpePair
	n int64
}

// bpeQueue is a max-heap of pair counts: highest count first, ties by the left
// piece's string, then the right piece's string. Entries go stale when a count
// changes; the merge loop skips them.
type bpeQueue struct {
	items []bpePairCount
	vocab *[]string
}

func (q *bpeQueue) Len() int { return len(q.items) }

func (q *bpeQueue) Less(i, j int) bool {
	x, y := q.items[i], q.items[j]
	if x.n != y.n {
		return x.n > y.n
	}
	v := *q.vocab
	if x.p.a != y.p.a {
		return v[x.p.a] < v[y.p.a]
	}
	return v[x.p.b] < v[y.p.b]
}

func (q *bpeQueue) Swap(i, j int) { q.items[i], q.items[j] = q.items[j], q.items[i] }

func (q *bpeQueue) Push(x any) { q.items = append(q.items, x.(bpePairCount)) }

func (q *bpeQueue) Pop() any {
	it := q.items[len(q.items)-1]
	q.items = q.items[:len(q.items)-1]
	return it
}
