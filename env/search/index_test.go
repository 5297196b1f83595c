package search

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// quantizeLen is an independent statement of Lucene's lossy length norm:
// lengths below 24 are exact, larger ones keep 24 plus the 4 most
// significant bits of (length - 24).
func quantizeLen(dl int) int {
	if dl < 24 {
		return dl
	}
	v := dl - 24
	for drop := 0; ; drop++ {
		if v>>drop < 16 {
			return 24 + (v>>drop)<<drop
		}
	}
}

// bm25Formula is the textbook BM25 term score in float64.
func bm25Formula(boost float64, tf, dl, df, n int, avgdl float64) float64 {
	idf := math.Log(1 + (float64(n-df)+0.5)/(float64(df)+0.5))
	q := float64(quantizeLen(dl))
	return boost * idf * float64(tf) / (float64(tf) + 0.9*(1-0.4+0.4*q/avgdl))
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-5*math.Max(1, math.Abs(b)) }

func TestBM25SmallFloat(t *testing.T) {
	for i := range 24 {
		if got := intToByte4(uint32(i)); got != uint8(i) {
			t.Fatalf("intToByte4(%d) = %d", i, got)
		}
	}
	if b := intToByte4(1000); b != 87 || byte4ToInt(b) != 984 {
		t.Fatalf("1000 -> byte %d -> %d, want 87 -> 984", b, byte4ToInt(b))
	}
	if b := intToByte4(math.MaxInt32); b != 255 || byte4ToInt(255) != 2013265944 {
		t.Fatalf("MaxInt32 -> %d -> %d", b, byte4ToInt(255))
	}
	for b := range 256 {
		if got := intToByte4(byte4ToInt(uint8(b))); got != uint8(b) {
			t.Fatalf("intToByte4(byte4ToInt(%d)) = %d", b, got)
		}
	}
	prev := uint8(0)
	for dl := 0; dl < 100000; dl++ {
		b := intToByte4(uint32(dl))
		if b < prev || int(byte4ToInt(b)) != quantizeLen(dl) {
			t.Fatalf("dl %d: byte %d decodes to %d, want %d", dl, b, byte4ToInt(b), quantizeLen(dl))
		}
		prev = b
	}
}

func buildFrom(docs []string) *Index {
	return BuildIndex(len(docs), func(i int) string { return docs[i] })
}

func TestBM25HandComputed(t *testing.T) {
	docs := []string{
		"red shoes",                              // red shoe: dl 2
		"Red red RED dress",                      // red×3 dress: dl 4
		"blue shoes for running",                 // blue shoe run ("for" is a stop word): dl 3
		"the of and",                             // no terms: not counted in N or avgdl
		strings.Repeat("filler ", 999) + "shoes", // dl 1000, quantized to 984
		strings.Repeat("big ", 300),              // tf 300 (above the uint8 range)
	}
	ix := buildFrom(docs)
	const n = 5 // documents with at least one term
	sum := 2 + 4 + 3 + 1000 + 300
	avgdl := float64(float32(float64(sum) / n))
	if ix.NumDocs() != 6 || ix.DocCount() != n || float64(ix.AvgDocLen()) != avgdl {
		t.Fatalf("stats: docs %d, docCount %d, avgdl %g", ix.NumDocs(), ix.DocCount(), ix.AvgDocLen())
	}
	if ix.DocLen(2) != 3 || ix.DocLen(3) != 0 || ix.DocLen(4) != 1000 {
		t.Fatalf("lengths %d %d %d", ix.DocLen(2), ix.DocLen(3), ix.DocLen(4))
	}
	if ix.DocFreq("shoe") != 3 || ix.DocFreq("red") != 2 || ix.DocFreq("shoes") != 0 {
		t.Fatalf("df shoe %d red %d", ix.DocFreq("shoe"), ix.DocFreq("red"))
	}
	checks := []struct {
		query string
		doc   int
		want  float64
	}{
		{"shoes", 0, bm25Formula(1, 1, 2, 3, n, avgdl)},
		{"shoes", 2, bm25Formula(1, 1, 3, 3, n, avgdl)},
		{"shoes", 4, bm25Formula(1, 1, 1000, 3, n, avgdl)},
		{"shoes", 1, 0},
		{"red", 1, bm25Formula(1, 3, 4, 2, n, avgdl)},
		{"red shoes", 0, bm25Formula(1, 1, 2, 2, n, avgdl) + bm25Formula(1, 1, 2, 3, n, avgdl)},
		{"red red shoe", 0, bm25Formula(2, 1, 2, 2, n, avgdl) + bm25Formula(1, 1, 2, 3, n, avgdl)},
		{"big", 5, bm25Formula(1, 300, 300, 1, n, avgdl)},
	}
	for _, c := range checks {
		got := float64(ix.Score(c.query, c.doc))
		if !near(got, c.want) {
			t.Errorf("Score(%q, %d) = %g, want %g", c.query, c.doc, got, c.want)
		}
	}
	// The quantization matters: with the exact length 1000 the score differs.
	exact := 1 * math.Log(1+(n-3+0.5)/3.5) / (1 + 0.9*(1-0.4+0.4*1000/avgdl))
	if near(float64(ix.Score("shoes", 4)), exact) {
		t.Errorf("doc length 1000 was not quantized")
	}
	if got := ix.Search("shoes", 10); !slices.Equal(got, []int{0, 2, 4}) {
		t.Errorf("Search(shoes) = %v", got)
	}
	hits := ix.SearchHits("red shoes", 10)
	if len(hits) != 4 || hits[0].Doc != 0 || hits[0].Score != ix.Score("red shoes", 0) {
		t.Errorf("SearchHits(red shoes) = %v", hits)
	}
	for i := 1; i < len(hits); i++ {
		if hits[i].Score > hits[i-1].Score {
			t.Errorf("hits not sorted: %v", hits)
		}
	}
}

func TestBM25LuceneFloat32(t *testing.T) {
	// Score must follow Lucene's float32 evaluation order exactly.
	ix := buildFrom([]string{"a b c d e f g h i j k l m n o p q r s t u v w x y z alpha", "alpha beta", "gamma"})
	df, nDocs := 2, 3
	idf := float32(math.Log(1 + (float64(nDocs-df)+0.5)/(float64(df)+0.5)))
	avgdl := float32(float64(26+2+1) / 3)
	for doc, dl := range []int{26, 2} {
		l := float32(quantizeLen(dl))
		var k1, b float32 = 0.9, 0.4
		normInv := 1 / (k1 * ((1 - b) + b*l/avgdl))
		want := idf - idf/(1+1*normInv)
		if got := ix.Score("alpha", doc); got != want {
			t.Errorf("doc %d: Score = %v, want %v", doc, got, want)
		}
	}
}

func TestSearchTiesAndLimit(t *testing.T) {
	docs := []string{"apple pie", "apple tart", "banana", "apple cake", "apple pie"}
	ix := buildFrom(docs)
	if got := ix.Search("apple", 10); !slices.Equal(got, []int{0, 1, 3, 4}) {
		t.Errorf("ties: got %v", got)
	}
	if got := ix.Search("apple", 2); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("k=2: got %v", got)
	}
	if got := ix.Search("apple pie", 1); !slices.Equal(got, []int{0}) {
		t.Errorf("k=1: got %v", got)
	}
	if got := ix.Search("apple", 0); got != nil {
		t.Errorf("k=0: got %v", got)
	}
}

func TestSearchRepeatedTerms(t *testing.T) {
	docs := []string{"alpha", "beta", "beta", "beta", "filler"}
	ix := buildFrom(docs)
	// alpha is rarer, so it wins with equal weights...
	if got := ix.Search("alpha beta", 2); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("alpha beta: %v", got)
	}
	// ...but three occurrences of beta weigh three times as much.
	if got := ix.Search("alpha beta beta Beta", 2); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("alpha beta beta beta: %v", got)
	}
	if a, b := ix.Score("beta beta", 1), ix.Score("beta", 1); a != 2*b {
		t.Errorf("boost 2: %v vs 2*%v", a, b)
	}
}

func TestSearchEmpty(t *testing.T) {
	ix := buildFrom([]string{"red shoes", "blue hat"})
	for _, q := range []string{"", "   ", "the and of", "nonexistent words", "!!!"} {
		if got := ix.Search(q, 10); len(got) != 0 {
			t.Errorf("Search(%q) = %v, want nothing", q, got)
		}
	}
	empty := BuildIndex(0, func(int) string { return "" })
	if empty.NumDocs() != 0 || empty.Search("red", 10) != nil || empty.Score("red", 0) != 0 {
		t.Errorf("empty index misbehaves")
	}
	if ix.Score("red", -1) != 0 || ix.Score("red", 2) != 0 {
		t.Errorf("out-of-range Score not 0")
	}
}

// randomCorpus makes n documents over a skewed vocabulary of 400 words.
func randomCorpus(n int, seed uint64) []string { return skewedCorpus(n, seed, 400, 2) }

// skewedCorpus makes n documents over vocabSize words; word rank is
// vocabSize*u^power for a uniform u, so a larger power gives rarer words.
func skewedCorpus(n int, seed uint64, vocabSize int, power float64) []string {
	r := rand.New(rand.NewPCG(seed, 7))
	vocab := make([]string, vocabSize)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%dx", i)
	}
	docs := make([]string, n)
	var sb strings.Builder
	for d := range docs {
		sb.Reset()
		words := 1 + r.IntN(30)
		if d%97 == 0 {
			words = 400 + r.IntN(200) // a few long documents
		}
		for range words {
			// A power of a uniform: low ranks are much more frequent.
			u := math.Pow(r.Float64(), power)
			sb.WriteString(vocab[min(int(u*float64(len(vocab))), len(vocab)-1)])
			sb.WriteByte(' ')
		}
		docs[d] = sb.String()
	}
	return docs
}

func randomQueries(n int, seed uint64) []string { return skewedQueries(n, seed, 420) }

func skewedQueries(n int, seed uint64, maxWord int) []string {
	r := rand.New(rand.NewPCG(seed, 9))
	qs := make([]string, n)
	for i := range qs {
		var parts []string
		for range 1 + r.IntN(12) {
			parts = append(parts, fmt.Sprintf("w%dx", r.IntN(maxWord)))
		}
		qs[i] = strings.Join(parts, " ")
	}
	return qs
}

// bruteForce ranks every document exhaustively (term at a time over all
// postings), checking a sample against Score.
func bruteForce(ix *Index, q string, k int) []int {
	type sd struct {
		s float32
		d int
	}
	acc := make([]float64, ix.NumDocs())
	qt := ix.queryTerms(new(searchScratch), q)
	for _, t := range qt {
		for p := t.cur; p < t.end; p++ {
			d := ix.docs[p]
			acc[d] += float64(ix.postingScore(t.weight, p, d))
		}
	}
	var all []sd
	for d, s := range acc {
		if s > 0 {
			all = append(all, sd{float32(s), d})
		}
	}
	slices.SortFunc(all, func(a, b sd) int {
		if a.s != b.s {
			if a.s > b.s {
				return -1
			}
			return 1
		}
		return a.d - b.d
	})
	var out []int
	for i := 0; i < len(all) && i < k; i++ {
		if i < 20 && ix.Score(q, all[i].d) != all[i].s {
			panic("Score disagrees with exhaustive scoring")
		}
		out = append(out, all[i].d)
	}
	return out
}

func TestSearchMatchesBruteForce(t *testing.T) {
	// Spans several 4096-document windows, so MaxScore pruning is exercised.
	docs := randomCorpus(10000, 3)
	ix := buildFrom(docs)
	queries := randomQueries(40, 4)
	queries = append(queries, "w0x", "w1x w2x w3x w4x w5x w6x w7x", "w399x w0x w0x")
	for _, q := range queries {
		all := bruteForce(ix, q, ix.NumDocs())
		for _, f := range []int{0, 1 << 30, scanFactor} {
			ix.scanFactor = f
			for _, k := range []int{1, 10, 50} {
				got := ix.Search(q, k)
				want := all[:min(k, len(all))]
				if !slices.Equal(got, want) {
					t.Fatalf("scanFactor %d: Search(%q, %d) = %v, want %v", f, q, k, got, want)
				}
			}
		}
	}
}

func TestSearchMatchesBruteForceRareTerms(t *testing.T) {
	// Many rare terms (lists without blocks), a few very common ones, and
	// more documents: windows are skipped and thresholds rise quickly.
	docs := skewedCorpus(30000, 11, 5000, 3)
	ix := buildFrom(docs)
	queries := skewedQueries(60, 12, 5000)
	// Only common terms (every list has block-max blocks): the threshold
	// depends on the window and block bounds.
	queries = append(queries, skewedQueries(60, 13, 40)...)
	for _, q := range queries {
		all := bruteForce(ix, q, ix.NumDocs())
		// Non-essential terms always probed, always scanned, or either.
		for _, f := range []int{0, 1 << 30, scanFactor} {
			ix.scanFactor = f
			for _, k := range []int{1, 5, 50, 500} {
				got := ix.Search(q, k)
				want := all[:min(k, len(all))]
				if !slices.Equal(got, want) {
					t.Fatalf("scanFactor %d: Search(%q, %d) = %v, want %v", f, q, k, got, want)
				}
			}
		}
	}
}

func TestBuildIndexDeterministic(t *testing.T) {
	docs := randomCorpus(3000, 5)
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	a := buildFrom(docs)
	runtime.GOMAXPROCS(5)
	b := buildFrom(docs)
	same := slices.Equal(a.dict.buf, b.dict.buf) && slices.Equal(a.dict.off, b.dict.off) && slices.Equal(a.off, b.off) &&
		slices.Equal(a.docs, b.docs) && slices.Equal(a.tfs, b.tfs) &&
		slices.Equal(a.norms, b.norms) && slices.Equal(a.maxTFN, b.maxTFN) &&
		reflect.DeepEqual(a.bigTF, b.bigTF) && a.normInv == b.normInv
	if !same {
		t.Fatal("index depends on GOMAXPROCS")
	}
}

func TestSearchConcurrent(t *testing.T) {
	docs := randomCorpus(2000, 6)
	ix := buildFrom(docs)
	queries := randomQueries(30, 8)
	want := make([][]int, len(queries))
	for i, q := range queries {
		want[i] = ix.Search(q, 20)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rep := range 3 {
				for i := range queries {
					j := (i + g + rep) % len(queries)
					if got := ix.Search(queries[j], 20); !slices.Equal(got, want[j]) {
						errs <- fmt.Sprintf("goroutine %d: Search(%q) = %v, want %v", g, queries[j], got, want[j])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestBM25HugeTermFrequency(t *testing.T) {
	// tf above the uint8 postings range and above the 16-bit build counter.
	docs := []string{strings.Repeat("zap ", 70000) + "end", "zap", "end end"}
	ix := buildFrom(docs)
	n := 3
	avgdl := float64(float32(float64(70001+1+2) / 3))
	want := bm25Formula(1, 70000, 70001, 2, n, avgdl)
	if got := float64(ix.Score("zap", 0)); !near(got, want) {
		t.Errorf("Score(zap, 0) = %g, want %g", got, want)
	}
	if got := ix.Search("zap", 5); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("Search(zap) = %v", got)
	}
}

func TestIndexBlockMaxMetadata(t *testing.T) {
	docs := skewedCorpus(20000, 21, 3000, 3)
	ix := buildFrom(docs)
	r := rand.New(rand.NewPCG(5, 5))
	blocked := 0
	for term := range ix.NumTerms() {
		lo, hi := ix.off[term], ix.off[term+1]
		var m float32
		for p := lo; p < hi; p++ {
			m = max(m, ix.tfAt(int(p))*ix.normInv[ix.norms[ix.docs[p]]])
		}
		if ix.maxTFN[term] != m {
			t.Fatalf("term %d: maxTFN %v, want %v", term, ix.maxTFN[term], m)
		}
		bLo, bHi := ix.blockOff[term], ix.blockOff[term+1]
		if hi-lo <= blockSize {
			if bLo != bHi {
				t.Fatalf("term %d with %d postings has blocks", term, hi-lo)
			}
			continue
		}
		blocked++
		if want := uint32((hi - lo + blockSize - 1) / blockSize); bHi-bLo != want {
			t.Fatalf("term %d: %d blocks, want %d", term, bHi-bLo, want)
		}
		for b := bLo; b < bHi; b++ {
			pLo := lo + uint64(b-bLo)*blockSize
			pHi := min(pLo+blockSize, hi)
			var bm float32
			for p := pLo; p < pHi; p++ {
				bm = max(bm, ix.tfAt(int(p))*ix.normInv[ix.norms[ix.docs[p]]])
			}
			if ix.blockMax[b] != bm || ix.blockLast[b] != ix.docs[pHi-1] {
				t.Fatalf("term %d block %d: max %v last %d, want %v %d", term, b-bLo, ix.blockMax[b], ix.blockLast[b], bm, ix.docs[pHi-1])
			}
		}
		// windowBound never underestimates the best score in a window.
		qt := queryTerm{weight: 1.5, cur: int(lo), end: int(hi), bcur: bLo, bend: bHi}
		qt.ub = bm25Score(qt.weight, ix.maxTFN[term])
		for ws := uint32(r.IntN(500)); ws < uint32(ix.NumDocs()); ws += uint32(1 + r.IntN(3000)) {
			we := uint64(ws) + uint64(1+r.IntN(2*windowSize))
			got := ix.windowBound(&qt, ws, we)
			var want float32
			for p := lo; p < hi; p++ {
				if d := ix.docs[p]; d >= ws && uint64(d) < we {
					want = max(want, ix.postingScore(qt.weight, int(p), d))
				}
			}
			if got < want {
				t.Fatalf("term %d window [%d,%d): bound %v < best score %v", term, ws, we, got, want)
			}
		}
	}
	if blocked == 0 {
		t.Fatal("no term has blocks")
	}
}
