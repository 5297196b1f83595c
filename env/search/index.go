package search

// BM25 search over an in-memory inverted index, reproducing what WebShop
// gets from pyserini (Anserini/Lucene): the EnglishAnalyzer of analysis.go,
// Lucene's BM25Similarity with k1=0.9, b=0.4 and lossy one-byte length
// norms, and Anserini's bag-of-words query (one SHOULD TermQuery per distinct
// query term, boosted by the number of times the term occurs in the query).
//
// Scoring, exactly as Lucene 9's BM25Similarity computes it in float32:
//
//	idf      = float32(ln(1 + (N - df + 0.5) / (df + 0.5)))   (in float64, as Lucene)
//	weight   = boost * idf
//	norm     = SmallFloat.intToByte4(dl)                        (stored per document)
//	normInv  = 1 / (k1 * ((1 - b) + b * byte4ToInt(norm) / avgdl))  (256-entry table)
//	score    = weight - weight / (1 + tf * normInv)             (= weight*tf/(tf+k1*(1-b+b*dl/avgdl)))
//
// where N is the number of documents with at least one term (Lucene's
// docCount), dl the number of terms the analyzer emitted for the document
// (stop words are removed and so not counted, matching discountOverlaps),
// and avgdl = float32(sumTotalTermFreq / float64(N)) from the exact lengths.
// Lucene 8 (the version WebShop's pyserini used) multiplied the weight by the
// constant (k1+1); that changes no ranking and is left out, as in Lucene 9.
// A document's score is the float64 sum of its clause scores, cast to
// float32, as Lucene's disjunction scorers do; with at most a few dozen
// clauses the float64 sum of float32 values is exact, so clause order does
// not matter. Ties are broken by lower document id (Lucene's
// TopScoreDocCollector); Lucene's own document ids come from indexing order.
//
// Layout: a term dictionary (dictTable: open addressing over 8-byte slots,
// keys back to back in one byte arena, no pointers for the GC to scan), and
// per term a contiguous run of postings in two flat arrays (doc ids []uint32
// in increasing order, term frequencies []uint8 with the rare tf >= 255 kept
// exactly in a side map), plus one norm byte per document, per term the
// largest tf*normInv of its postings, and per block of 128 postings of a
// long list its last document and largest tf*normInv (block-max).
//
// Search is MaxScore over windows of documents: query terms are sorted by
// score upper bound, and the longest prefix of low-bound terms whose bounds
// sum to at most the current k-th best score theta is "non-essential" (a
// document containing only those cannot enter the top k). Each window
// starts at the next posting of an essential term; within it, every term's
// bound is tightened to the block-max of its blocks overlapping the window
// and the partition is redone. The essential terms' postings in the window
// are accumulated into a small score array; the documents so found are the
// candidates. A non-essential term with few postings in the window
// (compared with the number of candidates) is added to the candidates by a
// sequential scan; each candidate then probes the remaining terms, in
// decreasing bound order (first against the block-max of the block that
// may hold it, then by galloping search), only while it can still beat
// theta. The result is identical to exhaustive scoring.
//
// Building: documents are cut into chunks that worker goroutines (one per
// CPU) pull in turn. A worker tokenizes and lowercases a whole document,
// then maps each token through its cache of analyzed surface forms
// (surfaceTable; a miss runs stop-word removal and Porter stemming and
// assigns a worker-local term id), counts term frequencies per document and
// radix-sorts a chunk's postings by term. The merge unites the workers'
// dictionaries (global ids in order of first occurrence in the corpus, so
// the index does not depend on the scheduling), sums document frequencies
// and scatters the chunks' postings, in parallel over ranges of terms, into
// the final arrays; postings of a term stay in document order because
// chunks are visited in order.

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// BM25 parameters used by WebShop's pyserini searcher.
const (
	bm25K1 float32 = 0.9
	bm25B  float32 = 0.4
)

const (
	maxChunkDocs = 4096 // documents per build chunk (doc offsets fit uint16)
	tfSaturated  = 255  // tfs value meaning "look in Index.bigTF"
	windowSize   = 4096 // documents per search window
	blockSize    = 128  // postings per block-max block
	scanFactor   = 16   // default Index.scanFactor

	// freeMemPostings is the number of postings from which BuildIndex
	// returns its scratch memory to the OS between phases.
	freeMemPostings = 1 << 22
	noDoc           = ^uint32(0)
)

// Index is an immutable BM25 inverted index, safe for concurrent Search calls.
type Index struct {
	numDocs  int     // documents indexed
	docCount int     // documents with at least one term (Lucene's docCount)
	sumTTF   int64   // total number of terms in all documents
	avgdl    float32 // sumTTF / docCount, as Lucene computes it

	dict  dictTable         // analyzed term <-> term id
	off   []uint64          // postings of term t are [off[t], off[t+1])
	docs  []uint32          // posting doc ids, increasing within a term
	tfs   []uint8           // posting term frequencies; tfSaturated: see bigTF
	bigTF map[uint64]uint32 // posting index -> tf, for tf >= tfSaturated

	maxTFN []float32 // per term: max over postings of tf*normInv[norm]

	// Block-max metadata: the postings of a term with more than blockSize
	// of them are cut into blocks of blockSize; block b of the index ends
	// at document blockLast[b] and its largest tf*normInv is blockMax[b].
	// Term t owns blocks [blockOff[t], blockOff[t+1]) (none if small).
	blockOff  []uint32
	blockLast []uint32
	blockMax  []float32
	norms     []uint8  // per document: SmallFloat.intToByte4(length)
	lens      []uint32 // per document: exact length in terms

	normInv [256]float32 // 1 / (k1 * ((1 - b) + b * byte4ToInt(i) / avgdl))

	// scanFactor: Search adds a non-essential term to a window's candidates
	// by scanning its postings there when it has at most scanFactor of them
	// per candidate, else by probing its postings for each candidate.
	scanFactor int

	pool sync.Pool // *searchScratch
}

// NumDocs returns the number of documents in the index.
func (ix *Index) NumDocs() int { return ix.numDocs }

// NumTerms returns the number of distinct analyzed terms in the index.
func (ix *Index) NumTerms() int { return len(ix.off) - 1 }

// NumPostings returns the number of (term, document) pairs in the index.
func (ix *Index) NumPostings() int { return len(ix.docs) }

// DocCount returns the number of documents with at least one term, the N of
// the idf formula.
func (ix *Index) DocCount() int { return ix.docCount }

// AvgDocLen returns the average document length used by BM25.
func (ix *Index) AvgDocLen() float32 { return ix.avgdl }

// DocLen returns the exact number of terms of document doc, which must be
// in [0, NumDocs()).
func (ix *Index) DocLen(doc int) int { return int(ix.lens[doc]) }

// DocFreq returns the number of documents containing the analyzed term
// (as produced by Analyze, e.g. "batteri"), or 0 if it is not indexed.
func (ix *Index) DocFreq(term string) int {
	t, ok := ix.dict.findString(term)
	if !ok {
		return 0
	}
	return int(ix.off[t+1] - ix.off[t])
}

// normLengths is SmallFloat.byte4ToInt for every norm byte.
var normLengths = func() (t [256]uint32) {
	for i := range t {
		t[i] = byte4ToInt(uint8(i))
	}
	return t
}()

// longToInt4 is Lucene's SmallFloat.longToInt4: a float-like encoding of a
// non-negative integer that keeps 4 significant bits.
func longToInt4(i uint64) uint32 {
	numBits := 64 - bits.LeadingZeros64(i)
	if numBits < 4 {
		return uint32(i) // subnormal value
	}
	shift := numBits - 4
	encoded := uint32(i>>uint(shift)) & 0x07 // drop the implicit leading bit
	return encoded | uint32(shift+1)<<3      // 0 is reserved for subnormals
}

// int4ToLong is Lucene's SmallFloat.int4ToLong, the inverse of longToInt4.
func int4ToLong(i uint32) uint64 {
	b := uint64(i & 0x07)
	shift := int(i>>3) - 1
	if shift == -1 {
		return b
	}
	return (b | 0x08) << uint(shift)
}

// numFreeValues is 255 - longToInt4(math.MaxInt32) = 24: lengths below it
// are encoded exactly.
const numFreeValues = 24

// intToByte4 is Lucene's SmallFloat.intToByte4, the document length norm
// encoding of BM25Similarity: exact below 24, then 4 significant bits.
func intToByte4(i uint32) uint8 {
	if i < numFreeValues {
		return uint8(i)
	}
	return uint8(numFreeValues + longToInt4(uint64(i-numFreeValues)))
}

// byte4ToInt is Lucene's SmallFloat.byte4ToInt, decoding intToByte4.
func byte4ToInt(b uint8) uint32 {
	if b < numFreeValues {
		return uint32(b)
	}
	return uint32(numFreeValues + int4ToLong(uint32(b)-numFreeValues))
}

// bm25IDF is Lucene's BM25Similarity.idf, computed in float64, cast to float32.
func bm25IDF(df, docCount int) float32 {
	return float32(math.Log(1 + (float64(docCount-df)+0.5)/(float64(df)+0.5)))
}

// bm25Score is Lucene's BM25Scorer.score for a clause of the given weight
// (boost*idf) and x = tf * normInv; it is non-decreasing in x.
func bm25Score(weight, x float32) float32 {
	return weight - float32(weight/float32(1+x))
}

// bm25NormInv computes Lucene's per-norm cache entry in float32.
func bm25NormInv(norm uint8, avgdl float32) float32 {
	l := float32(normLengths[norm])
	return 1 / float32(bm25K1*float32(float32(1-bm25B)+float32(float32(bm25B*l)/avgdl)))
}

// BuildIndex indexes n documents; doc(i) returns the text of document i
// (already lowercased by the caller or not: the analyzer lowercases). doc is
// called exactly once per document, concurrently from several goroutines,
// and the index keeps no reference to the texts. Uses all CPUs
// (runtime.GOMAXPROCS) in parallel; the result is identical whatever the
// parallelism. To keep the peak memory of large builds down, BuildIndex
// hands its scratch memory back to the operating system between phases
// (debug.FreeOSMemory, twice). It panics if n does not fit the index's
// 32-bit document ids.
func BuildIndex(n int, doc func(i int) string) *Index {
	if n < 0 {
		n = 0
	}
	if uint64(n) >= uint64(noDoc) {
		panic(fmt.Sprintf("env: BuildIndex: %d documents exceed the limit of %d", n, noDoc-1))
	}
	procs := runtime.GOMAXPROCS(0)
	chunkDocs := (n + 8*procs - 1) / (8 * procs)
	chunkDocs = min(max(chunkDocs, 256), maxChunkDocs)
	nChunks := (n + chunkDocs - 1) / chunkDocs
	nWorkers := max(1, min(procs, nChunks))

	ix := &Index{numDocs: n, lens: make([]uint32, n), scanFactor: scanFactor}
	chunks := make([]*chunk, nChunks)
	workers := make([]*buildWorker, nWorkers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		bw := newBuildWorker(w, n/nWorkers)
		workers[w] = bw
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c := int(next.Add(1) - 1)
				if c >= nChunks {
					return
				}
				lo := c * chunkDocs
				hi := min(lo+chunkDocs, n)
				for d := lo; d < hi; d++ {
					bw.addDoc(d, lo, doc(d), ix.lens)
				}
				chunks[c] = bw.flush(lo)
			}
		}()
	}
	wg.Wait()
	ix.merge(workers, chunks, procs)
	ix.pool.New = func() any { return new(searchScratch) }
	return ix
}

// dictTable is a pointer-free dictionary of byte strings with dense ids
// (0, 1, ... in insertion order): the keys are stored back to back in buf,
// and an open-addressing index of 8-byte slots finds them. It is used for
// the builders' term dictionaries and the index's own.
type dictTable struct {
	slots []dictSlot
	mask  uint64
	seed  maphash.Seed
	buf   []byte   // all keys, concatenated
	off   []uint64 // key id is buf[off[id]:off[id+1]]
}

// dictSlot is an index entry: high hash bits (0 = empty) and the key's id.
type dictSlot struct {
	tag, id uint32
}

// newDictTable returns an empty table sized for about expect keys.
func newDictTable(seed maphash.Seed, expect int) dictTable {
	size := 16
	for 3*size < 4*expect {
		size <<= 1
	}
	return dictTable{
		slots: make([]dictSlot, size),
		mask:  uint64(size - 1),
		seed:  seed,
		off:   append(make([]uint64, 0, expect+1), 0),
	}
}

// len returns the number of keys.
func (t *dictTable) len() int { return len(t.off) - 1 }

// key returns the key of id.
func (t *dictTable) key(id uint32) []byte { return t.buf[t.off[id]:t.off[id+1]] }

// find looks up key, whose hash is h = maphash.Bytes(t.seed, key); when
// absent it returns the slot where add must put it.
func (t *dictTable) find(h uint64, key []byte) (id uint32, found bool, slot int) {
	tag := uint32(h>>32) | 1
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s.tag == 0 {
			return 0, false, int(i)
		}
		if s.tag == tag && string(t.key(s.id)) == string(key) {
			return s.id, true, int(i)
		}
	}
}

// findString returns the id of key, if present.
func (t *dictTable) findString(key string) (uint32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	h := maphash.String(t.seed, key)
	tag := uint32(h>>32) | 1
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s.tag == 0 {
			return 0, false
		}
		if s.tag == tag && string(t.key(s.id)) == key {
			return s.id, true
		}
	}
}

// add inserts key (with hash h, absent) at slot, as returned by find, and
// returns its id.
func (t *dictTable) add(slot int, h uint64, key []byte) uint32 {
	if 4*(t.len()+1) > 3*len(t.slots) {
		t.grow()
		_, _, slot = t.find(h, key)
	}
	id := uint32(t.len())
	t.slots[slot] = dictSlot{tag: uint32(h>>32) | 1, id: id}
	t.buf = append(t.buf, key...)
	t.off = append(t.off, uint64(len(t.buf)))
	return id
}

// grow doubles the index.
func (t *dictTable) grow() {
	t.slots = make([]dictSlot, 2*len(t.slots))
	t.mask = uint64(len(t.slots) - 1)
	for id := range t.len() {
		h := maphash.Bytes(t.seed, t.key(uint32(id)))
		i := h & t.mask
		for t.slots[i].tag != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = dictSlot{tag: uint32(h>>32) | 1, id: uint32(id)}
	}
}

// chunk holds the inverted postings of a run of consecutive documents.
type chunk struct {
	base   uint32   // first document of the chunk
	worker int      // builder whose local term ids terms uses (until merge)
	terms  []uint32 // term ids (builder-local, then global after merge)
	offs   []uint32 // postings of terms[j] are [offs[j], offs[j+1])
	docs   []uint16 // document ids relative to base
	tfs    []uint8  // term frequencies, tfSaturated: see big
	big    []bigTF  // exact tf of saturated postings, by increasing pos
}

// bigTF is an exact term frequency of a saturated posting.
type bigTF struct {
	pos uint32 // posting index within the chunk
	tf  uint32
}

// buildWorker analyzes documents for one indexing goroutine, with its own
// local term ids and its cache of analyzed surface forms.
type buildWorker struct {
	id    int
	an    analyzer
	surf  surfaceTable // lowercased token -> local term id, -1 for stop words
	dict  dictTable    // analyzed term <-> local term id
	first []uint64     // local term id -> doc<<32 | position of first occurrence

	buf    []byte            // lowercased tokens of the current document
	toks   []tokenRef        // tokens of the current document
	tfTab  []tfEntry         // per-document term counts (open addressing)
	used   []uint32          // used slots of tfTab, in first-occurrence order
	fwd    []uint64          // postings of the current chunk: term<<32 | doc<<16 | tf
	tmp    []uint64          // radix sort buffer
	hugeTF map[uint64]uint32 // term<<32 | doc<<16 -> tf, for tf >= 0xFFFF
}

// tokenRef is a lowercased token of the current document: buf[start:end].
type tokenRef struct {
	start, end uint32
	hash       uint64
}

func newBuildWorker(id, docs int) *buildWorker {
	// Guess the number of distinct tokens the worker will see, to avoid
	// growing its table many times.
	size := 1 << 12
	for size < 1<<22 && size < 8*docs {
		size <<= 1
	}
	return &buildWorker{
		id:   id,
		surf: newSurfaceTable(size),
		dict: newDictTable(maphash.MakeSeed(), size/2),
	}
}

// addDoc analyzes document d (in the chunk starting at base) and records its
// postings and length. It first tokenizes, lowercases and hashes the whole
// document, then looks the tokens up: the lookups are then independent of
// one another, so the CPU overlaps their cache misses.
func (w *buildWorker) addDoc(d, base int, text string, lens []uint32) {
	buf, toks := w.buf[:0], w.toks[:0]
	for i := 0; ; {
		st, en := nextToken(text, i)
		if st < 0 {
			break
		}
		i = en
		tok := stripPossessive(text[st:en])
		k := len(buf)
		for j := 0; j < len(tok); j++ {
			c := tok[j]
			if c >= utf8.RuneSelf {
				buf = appendLower(buf[:k], tok)
				break
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf = append(buf, c)
		}
		if len(buf) > k {
			toks = append(toks, tokenRef{uint32(k), uint32(len(buf)), maphash.Bytes(w.surf.seed, buf[k:])})
		}
	}
	w.buf, w.toks = buf, toks

	// Term ids, counted in a small per-document hash table (random
	// accesses to per-term counters would cost a cache miss per rare term).
	n := uint32(0)
	for _, t := range toks {
		key := buf[t.start:t.end]
		id, found, slot := w.surf.lookup(t.hash, key)
		if !found {
			id = w.newSurface(key, t.hash, slot, d, n)
		}
		if id >= 0 {
			w.count(uint32(id))
			n++
		}
	}
	lens[d] = n
	off := uint64(d-base) << 16
	for _, i := range w.used {
		e := &w.tfTab[i]
		v := uint64(e.id)<<32 | off
		if e.tf < 0xFFFF {
			v |= uint64(e.tf)
		} else {
			if w.hugeTF == nil {
				w.hugeTF = make(map[uint64]uint32)
			}
			w.hugeTF[v] = e.tf
			v |= 0xFFFF
		}
		w.fwd = append(w.fwd, v)
		*e = tfEntry{}
	}
	w.used = w.used[:0]
}

// tfEntry counts a term in the current document; tf == 0 marks a free slot.
type tfEntry struct {
	id, tf uint32
}

// count adds one occurrence of term id to the current document's counts.
func (w *buildWorker) count(id uint32) {
	if 2*(len(w.used)+1) > len(w.tfTab) {
		w.growTF()
	}
	mask := uint32(len(w.tfTab) - 1)
	for i := (id * 0x9E3779B1) >> 7 & mask; ; i = (i + 1) & mask {
		e := &w.tfTab[i]
		if e.tf == 0 {
			*e = tfEntry{id: id, tf: 1}
			w.used = append(w.used, i)
			return
		}
		if e.id == id {
			e.tf++
			return
		}
	}
}

// growTF doubles the per-document count table.
func (w *buildWorker) growTF() {
	old := w.tfTab
	w.tfTab = make([]tfEntry, max(1024, 2*len(old)))
	mask := uint32(len(w.tfTab) - 1)
	for k, i := range w.used {
		e := old[i]
		j := (e.id * 0x9E3779B1) >> 7 & mask
		for w.tfTab[j].tf != 0 {
			j = (j + 1) & mask
		}
		w.tfTab[j] = e
		w.used[k] = j
	}
}

// newSurface analyzes a lowercased token seen for the first time (the pos-th
// term of document d), records it in the table at slot and returns its local
// term id, or -1 if the analyzer drops it.
func (w *buildWorker) newSurface(key []byte, h uint64, slot int, d int, pos uint32) int32 {
	id := int32(-1)
	if !isStopWord(key) {
		term := w.an.stemBytes(key)
		th := maphash.Bytes(w.dict.seed, term)
		tid, ok, tslot := w.dict.find(th, term)
		if !ok {
			tid = w.dict.add(tslot, th, term)
			w.first = append(w.first, uint64(d)<<32|uint64(pos))
		}
		id = int32(tid)
	}
	w.surf.insert(slot, h, key, id)
	return id
}

// surfaceTable maps lowercased tokens to term ids during a build. It is an
// open-addressing hash table with linear probing whose keys of up to
// inlineKey bytes are stored in the slot itself, so a lookup usually costs a
// single cache line; longer keys live in an arena. It holds no pointers, so
// the garbage collector never scans it.
type surfaceTable struct {
	slots []surfaceSlot
	mask  uint64
	n     int
	arena []byte
	seed  maphash.Seed
}

const (
	inlineKey = 23   // longest key stored in the slot
	longKey   = 0xFF // surfaceSlot.klen of an arena key
)

// surfaceSlot is one 32-byte table entry.
type surfaceSlot struct {
	tag  uint32 // high bits of the hash, never 0 in a used slot
	id   int32
	klen uint8           // key length, or longKey
	key  [inlineKey]byte // the key, or arena offset and length (little endian)
}

func newSurfaceTable(size int) surfaceTable {
	return surfaceTable{
		slots: make([]surfaceSlot, size),
		mask:  uint64(size - 1),
		seed:  maphash.MakeSeed(),
	}
}

// lookup finds key, whose hash is h = maphash.Bytes(t.seed, key); when
// absent it returns the slot where insert must put it.
func (t *surfaceTable) lookup(h uint64, key []byte) (id int32, found bool, slot int) {
	tag := uint32(h>>32) | 1
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.tag == 0 {
			return 0, false, int(i)
		}
		if s.tag == tag && string(t.keyOf(s)) == string(key) {
			return s.id, true, int(i)
		}
	}
}

// keyOf returns the key of a used slot.
func (t *surfaceTable) keyOf(s *surfaceSlot) []byte {
	if s.klen != longKey {
		return s.key[:s.klen]
	}
	off := binary.LittleEndian.Uint32(s.key[0:])
	n := binary.LittleEndian.Uint32(s.key[4:])
	return t.arena[off : off+n]
}

// insert stores key (with hash h, absent from the table) in slot, as
// returned by lookup.
func (t *surfaceTable) insert(slot int, h uint64, key []byte, id int32) {
	if 4*(t.n+1) > 3*len(t.slots) {
		t.grow()
		_, _, slot = t.lookup(h, key)
	}
	s := &t.slots[slot]
	s.tag = uint32(h>>32) | 1
	s.id = id
	if len(key) <= inlineKey {
		s.klen = uint8(len(key))
		copy(s.key[:], key)
	} else {
		s.klen = longKey
		binary.LittleEndian.PutUint32(s.key[0:], uint32(len(t.arena)))
		binary.LittleEndian.PutUint32(s.key[4:], uint32(len(key)))
		t.arena = append(t.arena, key...)
	}
	t.n++
}

// grow doubles the table.
func (t *surfaceTable) grow() {
	old := t.slots
	t.slots = make([]surfaceSlot, 2*len(old))
	t.mask = uint64(len(t.slots) - 1)
	for k := range old {
		s := &old[k]
		if s.tag == 0 {
			continue
		}
		h := maphash.Bytes(t.seed, t.keyOf(s))
		i := h & t.mask
		for t.slots[i].tag != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = *s
	}
}

// flush turns the postings of the current chunk, in document order, into a
// chunk of inverted postings: a stable radix sort by term keeps the
// documents of each term in order.
func (w *buildWorker) flush(base int) *chunk {
	c := &chunk{base: uint32(base), worker: w.id}
	fwd, spare := radixSortByTerm(w.fwd, w.tmp, uint32(w.dict.len()))
	nTerms := 0
	for i := range fwd {
		if i == 0 || fwd[i]>>32 != fwd[i-1]>>32 {
			nTerms++
		}
	}
	c.terms = make([]uint32, 0, nTerms)
	c.offs = make([]uint32, 0, nTerms+1)
	c.docs = make([]uint16, len(fwd))
	c.tfs = make([]uint8, len(fwd))
	for i, v := range fwd {
		if t := uint32(v >> 32); i == 0 || t != uint32(fwd[i-1]>>32) {
			c.terms = append(c.terms, t)
			c.offs = append(c.offs, uint32(i))
		}
		c.docs[i] = uint16(v >> 16)
		tf := uint32(v & 0xFFFF)
		if tf == 0xFFFF {
			tf = w.hugeTF[v&^0xFFFF]
		}
		if tf >= tfSaturated {
			c.tfs[i] = tfSaturated
			c.big = append(c.big, bigTF{pos: uint32(i), tf: tf})
		} else {
			c.tfs[i] = uint8(tf)
		}
	}
	c.offs = append(c.offs, uint32(len(fwd)))
	w.fwd, w.tmp = fwd[:0], spare
	clear(w.hugeTF)
	return c
}

// radixSortByTerm sorts postings term<<32 | rest by term (their high 32
// bits), stably, with terms below maxTerm, using tmp as scratch space. It
// returns the sorted postings and the other buffer, for reuse.
func radixSortByTerm(a, tmp []uint64, maxTerm uint32) (sorted, spare []uint64) {
	const digitBits = 11
	if cap(tmp) < len(a) {
		tmp = make([]uint64, len(a))
	}
	tmp = tmp[:len(a)]
	for shift := 32; shift < 32+bits.Len32(maxTerm); shift += digitBits {
		var count [1 << digitBits]int
		for _, v := range a {
			count[(v>>shift)&(1<<digitBits-1)]++
		}
		sum := 0
		for i, n := range count {
			count[i] = sum
			sum += n
		}
		for _, v := range a {
			dig := (v >> shift) & (1<<digitBits - 1)
			tmp[count[dig]] = v
			count[dig]++
		}
		a, tmp = tmp, a
	}
	return a, tmp
}

// merge combines the builders' dictionaries and the chunks into the final
// index. Global term ids are assigned in order of first occurrence in the
// corpus, so they do not depend on how chunks were spread over builders.
func (ix *Index) merge(workers []*buildWorker, chunks []*chunk, procs int) {
	// Union of the dictionaries; uniq index -> first occurrence.
	keys, keyBytes := 0, 0
	for _, w := range workers {
		w.surf = surfaceTable{} // no longer needed: let the GC have it
		keys += w.dict.len()
		keyBytes += len(w.dict.buf)
	}
	seed := maphash.MakeSeed()
	union := newDictTable(seed, keys)
	union.buf = make([]byte, 0, keyBytes)
	firstOcc := make([]uint64, 0, keys)
	l2g := make([][]uint32, len(workers))
	for wi, w := range workers {
		m := make([]uint32, w.dict.len())
		for lid := range m {
			key := w.dict.key(uint32(lid))
			h := maphash.Bytes(seed, key)
			u, found, slot := union.find(h, key)
			if !found {
				u = union.add(slot, h, key)
				firstOcc = append(firstOcc, w.first[lid])
			} else if w.first[lid] < firstOcc[u] {
				firstOcc[u] = w.first[lid]
			}
			m[lid] = u
		}
		l2g[wi] = m
		w.dict, w.first = dictTable{}, nil
	}
	// Global ids in order of first occurrence. The union becomes the index's
	// dictionary: same slots with renumbered ids, keys stored in id order.
	nTerms := union.len()
	order := make([]uint32, nTerms)
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(a, b uint32) int { return cmp.Compare(firstOcc[a], firstOcc[b]) })
	firstOcc = nil
	rank := make([]uint32, nTerms)
	buf := make([]byte, 0, len(union.buf))
	off := make([]uint64, 1, nTerms+1)
	for r, u := range order {
		rank[u] = uint32(r)
		buf = append(buf, union.key(u)...)
		off = append(off, uint64(len(buf)))
	}
	for i := range union.slots {
		if union.slots[i].tag != 0 {
			union.slots[i].id = rank[union.slots[i].id]
		}
	}
	union.buf, union.off = buf, off
	ix.dict = union
	order = nil
	for _, m := range l2g {
		for i, u := range m {
			m[i] = rank[u]
		}
	}
	rank = nil

	// Chunk term ids to global ids; document frequencies and offsets.
	parallelRange(len(chunks), procs, func(lo, hi int) {
		for _, c := range chunks[lo:hi] {
			m := l2g[c.worker]
			for j, id := range c.terms {
				c.terms[j] = m[id]
			}
		}
	})
	l2g = nil
	df := make([]uint64, nTerms+1)
	for _, c := range chunks {
		for j, t := range c.terms {
			df[t] += uint64(c.offs[j+1] - c.offs[j])
		}
	}
	var total uint64
	for t := 0; t < nTerms; t++ {
		d := df[t]
		df[t] = total
		total += d
	}
	df[nTerms] = total
	ix.off = df
	// The builders' tables are garbage now; for a large index, hand their
	// memory back before the posting arrays are allocated, to keep the peak
	// RSS down.
	large := total >= freeMemPostings
	if large {
		debug.FreeOSMemory()
	}

	// Scatter chunk postings into the final arrays, in parallel over ranges
	// of terms with about the same number of postings each.
	ix.docs = make([]uint32, total)
	ix.tfs = make([]uint8, total)
	bounds := termRanges(ix.off, procs)
	bigs := make([][]bigPosting, len(bounds)-1)
	parallelTasks(len(bounds)-1, procs, func(r int) {
		tLo, tHi := uint32(bounds[r]), uint32(bounds[r+1])
		cur := slices.Clone(ix.off[tLo:tHi])
		var big []bigPosting
		for _, c := range chunks {
			for j, t := range c.terms {
				if t < tLo || t >= tHi {
					continue
				}
				p := cur[t-tLo]
				for i := c.offs[j]; i < c.offs[j+1]; i++ {
					ix.docs[p] = c.base + uint32(c.docs[i])
					tf := c.tfs[i]
					ix.tfs[p] = tf
					if tf == tfSaturated {
						k, _ := slices.BinarySearchFunc(c.big, i, func(b bigTF, pos uint32) int { return cmp.Compare(b.pos, pos) })
						big = append(big, bigPosting{p, c.big[k].tf})
					}
					p++
				}
				cur[t-tLo] = p
			}
		}
		bigs[r] = big
	})
	clear(chunks)
	for _, b := range bigs {
		for _, bp := range b {
			if ix.bigTF == nil {
				ix.bigTF = make(map[uint64]uint32)
			}
			ix.bigTF[bp.pos] = bp.tf
		}
	}

	// Collection statistics, norms and the BM25 cache.
	ix.norms = make([]uint8, ix.numDocs)
	for d, l := range ix.lens {
		ix.sumTTF += int64(l)
		if l > 0 {
			ix.docCount++
		}
		ix.norms[d] = intToByte4(l)
	}
	if ix.docCount > 0 {
		ix.avgdl = float32(float64(ix.sumTTF) / float64(ix.docCount))
	} else {
		ix.avgdl = 1
	}
	for i := range ix.normInv {
		ix.normInv[i] = bm25NormInv(uint8(i), ix.avgdl)
	}

	// Per-term and per-block maxima of tf*normInv, the basis of the score
	// upper bounds used for pruning.
	ix.maxTFN = make([]float32, nTerms)
	ix.blockOff = make([]uint32, nTerms+1)
	var nb uint32
	for t := range nTerms {
		ix.blockOff[t] = nb
		if df := ix.off[t+1] - ix.off[t]; df > blockSize {
			nb += uint32((df + blockSize - 1) / blockSize)
		}
	}
	ix.blockOff[nTerms] = nb
	ix.blockLast = make([]uint32, nb)
	ix.blockMax = make([]float32, nb)
	parallelTasks(len(bounds)-1, procs, func(r int) {
		for t := bounds[r]; t < bounds[r+1]; t++ {
			var m float32
			b := ix.blockOff[t]
			bm := float32(0)
			for p := ix.off[t]; p < ix.off[t+1]; p++ {
				x := float32(ix.tfAt(int(p)) * ix.normInv[ix.norms[ix.docs[p]]])
				m = max(m, x)
				if b < ix.blockOff[t+1] {
					bm = max(bm, x)
					if k := p - ix.off[t] + 1; k%blockSize == 0 || p+1 == ix.off[t+1] {
						ix.blockLast[b], ix.blockMax[b] = ix.docs[p], bm
						b, bm = b+1, 0
					}
				}
			}
			ix.maxTFN[t] = m
		}
	})
	if large {
		debug.FreeOSMemory() // the chunks are garbage now
	}
}

// bigPosting is the exact tf of a saturated posting of the final index.
type bigPosting struct {
	pos uint64
	tf  uint32
}

// termRanges splits the terms into about 4*procs contiguous ranges with
// similar numbers of postings; it returns the range boundaries.
func termRanges(off []uint64, procs int) []int {
	nTerms := len(off) - 1
	parts := max(1, 4*procs)
	total := off[nTerms]
	bounds := []int{0}
	for r := 1; r < parts; r++ {
		target := total * uint64(r) / uint64(parts)
		t := sort.Search(nTerms, func(i int) bool { return off[i] >= target })
		if t > bounds[len(bounds)-1] {
			bounds = append(bounds, t)
		}
	}
	if bounds[len(bounds)-1] != nTerms || len(bounds) == 1 {
		bounds = append(bounds, nTerms)
	}
	return bounds
}

// parallelTasks runs task(0..n-1) on up to procs goroutines.
func parallelTasks(n, procs int, task func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(procs, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				task(i)
			}
		}()
	}
	wg.Wait()
}

// parallelRange runs fn over up to procs contiguous slices of [0, n).
func parallelRange(n, procs int, fn func(lo, hi int)) {
	parts := max(1, min(procs, n))
	parallelTasks(parts, procs, func(i int) {
		fn(n*i/parts, n*(i+1)/parts)
	})
}

// tfAt returns the term frequency of posting p.
func (ix *Index) tfAt(p int) float32 {
	tf := ix.tfs[p]
	if tf == tfSaturated {
		if v, ok := ix.bigTF[uint64(p)]; ok {
			return float32(v)
		}
	}
	return float32(tf)
}

// postingScore is the BM25 score of posting p (of document d) for a clause
// of weight w.
func (ix *Index) postingScore(w float32, p int, d uint32) float32 {
	return bm25Score(w, float32(ix.tfAt(p)*ix.normInv[ix.norms[d]]))
}

// queryTerm is one clause of a query being evaluated.
type queryTerm struct {
	id       uint32
	weight   float32 // boost * idf
	ub       float32 // upper bound of the clause score
	cur, end int     // postings cursor
	bcur     uint32  // block cursor
	bend     uint32  // end of the term's blocks
	wub      float32 // upper bound of the clause score in the current window
	pBase    int     // first posting of the term: block b starts at
	bBase    uint32  // pBase + (b-bBase)*blockSize
	lastB    uint32  // block whose score bound is lastBS
	lastBS   float64
	wcount   int // estimated number of postings in the current window
}

// Hit is a search result: a document id and its BM25 score.
type Hit struct {
	Doc   int
	Score float32
}

// hit is a top-k heap entry.
type hit struct {
	score float32
	doc   uint32
}

// worse orders heap entries: lower score, then higher doc id, is worse.
func worse(a, b hit) bool {
	return a.score < b.score || (a.score == b.score && a.doc > b.doc)
}

// searchScratch holds the per-call buffers of Search, pooled per index.
type searchScratch struct {
	an     analyzer
	toks   []string
	qt     []queryTerm
	cum    []float64
	wcum   []float64
	bs     []float64
	porder []int
	pcum   []float64
	order  []int
	heap   []hit
	acc    [windowSize]float64
	words  [windowSize / 64]uint64
}

// queryTerms analyzes query into weighted clauses of terms present in the
// index: each distinct term once, boosted by its count in the query.
func (ix *Index) queryTerms(sc *searchScratch, query string) []queryTerm {
	sc.toks = sc.toks[:0]
	for i := 0; ; {
		st, en := nextToken(query, i)
		if st < 0 {
			break
		}
		i = en
		low := sc.an.lowerToken(query[st:en])
		if len(low) == 0 || isStopWord(low) {
			continue
		}
		sc.toks = append(sc.toks, sc.an.stem(low))
	}
	slices.Sort(sc.toks)
	qt := sc.qt[:0]
	for i := 0; i < len(sc.toks); {
		j := i + 1
		for j < len(sc.toks) && sc.toks[j] == sc.toks[i] {
			j++
		}
		if id, ok := ix.dict.findString(sc.toks[i]); ok {
			df := int(ix.off[id+1] - ix.off[id])
			w := float32(j-i) * bm25IDF(df, ix.docCount)
			qt = append(qt, queryTerm{
				id:     id,
				weight: w,
				ub:     bm25Score(w, ix.maxTFN[id]),
				cur:    int(ix.off[id]),
				end:    int(ix.off[id+1]),
				bcur:   ix.blockOff[id],
				bend:   ix.blockOff[id+1],
				pBase:  int(ix.off[id]),
				bBase:  ix.blockOff[id],
				lastB:  noDoc,
			})
		}
		i = j
	}
	sc.qt = qt
	return qt
}

// Search returns up to k document ids ranked by BM25 (k1=0.9, b=0.4), best
// first; ties broken by lower document id. The query is analyzed with the
// same analyzer; each distinct query term is one clause whose weight is its
// count in the query (Lucene BooleanQuery of SHOULD TermQuery clauses with
// boosts, as pyserini's bag-of-words query does). Documents matching no
// query term are never returned. Search is safe for concurrent use.
func (ix *Index) Search(query string, k int) []int {
	sc := ix.pool.Get().(*searchScratch)
	defer ix.pool.Put(sc)
	hits := ix.search(sc, query, k)
	if len(hits) == 0 {
		return nil
	}
	out := make([]int, len(hits))
	for i, h := range hits {
		out[i] = int(h.doc)
	}
	return out
}

// SearchHits is Search returning the scores too.
func (ix *Index) SearchHits(query string, k int) []Hit {
	sc := ix.pool.Get().(*searchScratch)
	defer ix.pool.Put(sc)
	hits := ix.search(sc, query, k)
	if len(hits) == 0 {
		return nil
	}
	out := make([]Hit, len(hits))
	for i, h := range hits {
		out[i] = Hit{Doc: int(h.doc), Score: h.score}
	}
	return out
}

// search returns the k best hits, best first, in scratch memory.
func (ix *Index) search(sc *searchScratch, query string, k int) []hit {
	if k <= 0 || len(ix.docs) == 0 {
		return nil
	}
	qt := ix.queryTerms(sc, query)
	if len(qt) == 0 {
		return nil
	}
	heap := ix.topK(sc, qt, k)
	slices.SortFunc(heap, func(a, b hit) int {
		if worse(a, b) {
			return 1
		}
		if worse(b, a) {
			return -1
		}
		return 0
	})
	return heap
}

// topK runs windowed MaxScore (see the file comment) and returns the k
// best hits as a heap.
func (ix *Index) topK(sc *searchScratch, qt []queryTerm, k int) []hit {
	slices.SortFunc(qt, func(a, b queryTerm) int {
		if c := cmp.Compare(a.ub, b.ub); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	cum := sc.cum[:0]
	var s float64
	for _, t := range qt {
		s += float64(t.ub)
		cum = append(cum, s)
	}
	sc.cum = cum
	order := sc.order[:0]
	for i := range qt {
		order = append(order, i)
	}
	sc.order = order
	wcum := append(sc.wcum[:0], cum...)
	sc.wcum = wcum
	bs := append(sc.bs[:0], cum...)
	sc.bs = bs
	heap := sc.heap[:0]
	docs, norms := ix.docs, ix.norms
	theta := float32(-1) // k-th best score once the heap is full
	nonEss := 0          // qt[:nonEss] cannot make a document competitive alone
	acc, words := &sc.acc, &sc.words
	wStart := uint32(0)
	for {
		for nonEss < len(qt) && float32(cum[nonEss]) <= theta {
			nonEss++
		}
		if nonEss == len(qt) {
			break
		}
		next := noDoc
		for e := nonEss; e < len(qt); e++ {
			t := &qt[e]
			t.cur = advance(docs, t.cur, t.end, wStart)
			if t.cur < t.end && docs[t.cur] < next {
				next = docs[t.cur]
			}
		}
		if next == noDoc {
			break
		}
		wStart = next
		wEnd := uint64(wStart) + windowSize

		// Window bounds, and the terms in increasing window-bound order.
		for i := range qt {
			qt[i].wub = ix.windowBound(&qt[i], wStart, wEnd)
		}
		for i := 1; i < len(order); i++ {
			for j := i; j > 0 && qt[order[j]].wub < qt[order[j-1]].wub; j-- {
				order[j], order[j-1] = order[j-1], order[j]
			}
		}
		s = 0
		wNonEss := 0
		for i, o := range order {
			s += float64(qt[o].wub)
			wcum[i] = s
			if float32(s) <= theta {
				wNonEss = i + 1
			}
		}

		// Accumulate the window-essential terms.
		found := false
		for _, o := range order[wNonEss:] {
			t := &qt[o]
			if t.wub == 0 {
				continue
			}
			w := t.weight
			p := advance(docs, t.cur, t.end, wStart)
			for ; p < t.end; p++ {
				d := docs[p]
				if uint64(d) >= wEnd {
					break
				}
				x := d - wStart
				acc[x] += float64(bm25Score(w, float32(ix.tfAt(p)*ix.normInv[norms[d]])))
				words[x>>6] |= 1 << (x & 63)
				found = true
			}
			t.cur = p
		}
		if !found {
			wStart = uint32(min(wEnd, uint64(noDoc)))
			continue
		}

		// Non-essential terms with few postings in the window compared with
		// the candidates are added to the candidates by a sequential scan;
		// the others are probed per candidate (galloping search).
		nCand := 0
		for _, w := range words {
			nCand += bits.OnesCount64(w)
		}
		porder, pcum := sc.porder[:0], sc.pcum[:0]
		s = 0
		for _, o := range order[:wNonEss] {
			t := &qt[o]
			if t.wub == 0 {
				continue
			}
			if t.wcount > ix.scanFactor*nCand {
				porder = append(porder, o)
				s += float64(t.wub)
				pcum = append(pcum, s)
				continue
			}
			w := t.weight
			p := advance(docs, t.cur, t.end, wStart)
			for ; p < t.end; p++ {
				d := docs[p]
				if uint64(d) >= wEnd {
					break
				}
				x := d - wStart
				if words[x>>6]&(1<<(x&63)) != 0 {
					acc[x] += float64(bm25Score(w, float32(ix.tfAt(p)*ix.normInv[norms[d]])))
				}
			}
			t.cur = p
		}
		sc.porder, sc.pcum = porder, pcum

		// Score the candidates.
		for wi := range words {
			word := words[wi]
			if word == 0 {
				continue
			}
			words[wi] = 0
			for word != 0 {
				o := uint32(wi<<6 + bits.TrailingZeros64(word))
				word &= word - 1
				partial := acc[o]
				acc[o] = 0
				d := wStart + o
				if len(porder) == 0 {
					if float32(partial) <= theta {
						continue
					}
				} else if !ix.probe(qt, porder, pcum, bs, &partial, d, theta) {
					continue
				}
				h := hit{score: float32(partial), doc: d}
				if len(heap) < k {
					heap = append(heap, h)
					siftUp(heap, len(heap)-1)
					if len(heap) == k {
						theta = heap[0].score
					}
				} else if h.score > theta {
					heap[0] = h
					siftDown(heap, 0)
					theta = heap[0].score
				}
			}
		}
		if wEnd > uint64(noDoc) {
			break
		}
		wStart = uint32(wEnd)
	}
	sc.heap = heap
	return heap
}

// probe completes the score of candidate document d, whose partial score
// from the window-essential terms is *partial, with the other terms: terms
// are qt[order[j]] for j in [0, len(order)), in increasing window bound, and
// wcum their cumulative window bounds. It returns false as soon as d cannot
// score above theta. First the window bounds, then the block-max bounds of
// the blocks that may hold d (metadata only), and only then the postings
// themselves, last term first.
func (ix *Index) probe(qt []queryTerm, order []int, wcum, bs []float64, partial *float64, d uint32, theta float32) bool {
	p := *partial
	n := len(order)
	if float32(p+wcum[n-1]) <= theta {
		return false
	}
	// Block bounds.
	var rest float64
	for j := n - 1; j >= 0; j-- {
		t := &qt[order[j]]
		if t.bcur == t.bend {
			bs[j] = float64(t.wub) // no blocks: the window bound
		} else {
			b := t.bcur
			for b < t.bend && ix.blockLast[b] < d {
				b++
			}
			t.bcur = b
			switch {
			case b == t.bend:
				bs[j] = 0 // no postings left
			case b != t.lastB:
				t.lastB, t.lastBS = b, float64(bm25Score(t.weight, ix.blockMax[b]))
				bs[j] = t.lastBS
			default:
				bs[j] = t.lastBS
			}
		}
		rest += bs[j]
	}
	if float32(p+rest) <= theta {
		return false
	}
	// Postings.
	docs := ix.docs
	for j := n - 1; j >= 0; j-- {
		if bs[j] == 0 {
			continue
		}
		rest -= bs[j]
		t := &qt[order[j]]
		if t.bcur < t.bend {
			// Postings before the block that may hold d are all before d.
			if q := t.pBase + int(t.bcur-t.bBase)*blockSize; q > t.cur {
				t.cur = q
			}
		}
		t.cur = advance(docs, t.cur, t.end, d)
		if t.cur < t.end && docs[t.cur] == d {
			p += float64(ix.postingScore(t.weight, t.cur, d))
		}
		if float32(p+rest) <= theta {
			return false
		}
	}
	*partial = p
	return true
}

// windowBound returns an upper bound of t's clause score over documents
// [ws, we): 0 if it has no posting there, else the score at the largest
// block-max of its blocks that overlap the window (its global bound if the
// term has no blocks). It moves t's block cursor forward.
func (ix *Index) windowBound(t *queryTerm, ws uint32, we uint64) float32 {
	if t.bcur == t.bend { // no blocks: the term's own bound, if it is present
		t.cur = advance(ix.docs, t.cur, t.end, ws)
		t.wcount = 0
		if t.cur < t.end && uint64(ix.docs[t.cur]) < we {
			t.wcount = min(t.end-t.cur, blockSize)
			return t.ub
		}
		return 0
	}
	last := ix.blockLast
	for t.bcur < t.bend && last[t.bcur] < ws {
		t.bcur++
	}
	t.wcount = 0
	if t.bcur == t.bend {
		return 0
	}
	var m float32
	for b := t.bcur; b < t.bend; b++ {
		m = max(m, ix.blockMax[b])
		t.wcount += blockSize
		if uint64(last[b]) >= we {
			break
		}
	}
	// The first block may end inside the window without any posting in it.
	return bm25Score(t.weight, m)
}

// advance returns the first posting index in [cur, end) whose document is
// >= target (or end), by galloping from cur.
func advance(docs []uint32, cur, end int, target uint32) int {
	if cur >= end || docs[cur] >= target {
		return cur
	}
	lo, step := cur, 1 // docs[lo] < target
	hi := cur + 1
	for hi < end && docs[hi] < target {
		lo = hi
		step <<= 1
		hi = cur + step
	}
	if hi > end {
		hi = end
	}
	// docs[lo] < target, and hi == end or docs[hi] >= target.
	lo++
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if docs[m] < target {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// siftUp restores the heap (worst entry at the root) after appending at i.
func siftUp(h []hit, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !worse(h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

// siftDown restores the heap after replacing the entry at i.
func siftDown(h []hit, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && worse(h[r], h[l]) {
			m = r
		}
		if !worse(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// Score returns the BM25 score of document doc for query, computed
// directly from the postings (0 if the document matches no query term). It
// equals the score Search ranks by.
func (ix *Index) Score(query string, doc int) float32 {
	if doc < 0 || doc >= ix.numDocs {
		return 0
	}
	sc := ix.pool.Get().(*searchScratch)
	defer ix.pool.Put(sc)
	var s float64
	for _, t := range ix.queryTerms(sc, query) {
		p, found := slices.BinarySearch(ix.docs[t.cur:t.end], uint32(doc))
		if found {
			s += float64(ix.postingScore(t.weight, t.cur+p, uint32(doc)))
		}
	}
	return float32(s)
}
