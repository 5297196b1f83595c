package search

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// synthCorpus generates realistic-ish product documents from a seeded
// vocabulary: Zipf-distributed words (with English function words at the
// top ranks and inflected variants so stemming has work to do), numbers and
// sizes ("3.5", "1,000", "12-pack"), unique model codes, title case,
// punctuation, and a title + description + bullet + options structure of
// about 150 words. Document i depends only on the seed and i.
type synthCorpus struct {
	seed  uint64
	arena string   // the words, by rank, back to back
	off   []uint32 // word i is arena[off[i]:off[i+1]]
	zipfL float64  // ln((len(off)-1+zipfC)/zipfC)
}

var functionWords = strings.Fields(`the and for with of a to in is this that on it are
by as be or your you our from can at will not an its has have more into no
their than these they then there such was if but all one each also our`)

func newSynthCorpus(seed uint64, vocabSize int) *synthCorpus {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	cons := strings.Split("b c d f g h j k l m n p r s t v w z br cr dr fl gr pl st tr ch sh th", " ")
	vows := strings.Split("a e i o u ea ai ou oo y", " ")
	suffixes := []string{"s", "ing", "ed", "er", "ers", "ly", "ness", "ation", "able", "ies"}
	seen := make(map[string]bool, vocabSize)
	words := slices.Clone(functionWords)
	for _, w := range words {
		seen[w] = true
	}
	for len(words) < vocabSize {
		var sb strings.Builder
		for range 1 + r.IntN(3) {
			sb.WriteString(cons[r.IntN(len(cons))])
			sb.WriteString(vows[r.IntN(len(vows))])
		}
		if r.IntN(2) == 0 {
			sb.WriteString(cons[r.IntN(len(cons))])
		}
		base := sb.String()
		if seen[base] {
			continue
		}
		seen[base] = true
		words = append(words, base)
		// A few inflected variants at nearby ranks.
		for range r.IntN(3) {
			v := base + suffixes[r.IntN(len(suffixes))]
			if !seen[v] && len(words) < vocabSize {
				seen[v] = true
				words = append(words, v)
			}
		}
	}
	// One arena, so that the words a document draws share few cache lines.
	off := make([]uint32, 1, len(words)+1)
	for _, w := range words {
		off = append(off, off[len(off)-1]+uint32(len(w)))
	}
	return &synthCorpus{
		seed:  seed,
		arena: strings.Join(words, ""),
		off:   off,
		zipfL: math.Log((float64(len(words)) + zipfC) / zipfC),
	}
}

// zipfC is the Zipf-Mandelbrot offset: rank r has probability ∝ 1/(r+zipfC).
const zipfC = 2.7

// wordAt draws a vocabulary word from the uniform u in [0, 1) by inverting
// the continuous Zipf-Mandelbrot CDF (no table lookups).
func (g *synthCorpus) wordAt(u float64) string {
	x := zipfC*math.Exp(u*g.zipfL) - zipfC
	i := min(int(x), len(g.off)-2)
	return g.arena[g.off[i]:g.off[i+1]]
}

func (g *synthCorpus) word(r *rand.Rand) string { return g.wordAt(r.Float64()) }

// appendToken appends one generated token to b, using one random draw.
func (g *synthCorpus) appendToken(b []byte, r *rand.Rand, title bool) []byte {
	u := r.Uint64()
	switch x := (u & 0xffff) * 100 >> 16; { // 0..99
	case x < 4: // numbers and sizes
		v := int64(u>>16) & 0xffff
		switch (u >> 32) % 5 {
		case 0:
			return strconv.AppendFloat(b, float64(v%1000)/10, 'f', 1, 64)
		case 1:
			b = strconv.AppendInt(b, 1+v%24, 10)
			return append(b, "-pack"...)
		case 2:
			b = strconv.AppendInt(b, 1+v%9, 10)
			return append(b, ",000"...)
		default:
			return strconv.AppendInt(b, v%100, 10)
		}
	case x < 6: // model codes: mostly unique terms
		v := u >> 16
		for range 6 + v%5 {
			v /= 5 // 6-10 characters from the remaining bits, then fresh ones
			if v < 36 {
				v = r.Uint64()
			}
			if c := v % 36; c < 10 {
				b = append(b, byte('0'+c))
			} else {
				b = append(b, byte('a'+c-10))
			}
			v /= 36
		}
		return b
	}
	w := g.wordAt(float64(u>>11) / (1 << 53))
	if title || u&0x1f0000 == 0 { // title case, or 1 in 32 words
		return append(append(b, w[0]-'a'+'A'), w[1:]...)
	}
	return append(b, w...)
}

// doc returns the text of document i.
func (g *synthCorpus) doc(i int) string {
	r := rand.New(rand.NewPCG(g.seed, uint64(i)))
	b := make([]byte, 0, 1536)
	part := func(words int, title bool) {
		for j := range words {
			if j > 0 {
				if j%11 == 5 {
					b = append(b, ',')
				}
				b = append(b, ' ')
			}
			b = g.appendToken(b, r, title)
		}
		b = append(b, ". "...)
	}
	part(6+r.IntN(15), true)    // title
	part(40+r.IntN(160), false) // description
	part(10+r.IntN(20), false)  // first bullet
	b = append(b, "color: "...)
	b = append(b, g.word(r)...)
	b = append(b, ", size: "...)
	b = strconv.AppendInt(b, int64(r.IntN(14)), 10)
	return string(b)
}

// queries makes realistic queries of 5-12 words: mostly words of a random
// product's text (biased to its title), sometimes a random word.
func (g *synthCorpus) queries(n, numDocs int) []string {
	r := rand.New(rand.NewPCG(g.seed^0xabcdef, 99))
	qs := make([]string, n)
	for i := range qs {
		words := strings.Fields(strings.NewReplacer(",", "", ".", "").Replace(g.doc(r.IntN(numDocs))))
		k := 5 + r.IntN(8)
		var q []string
		for len(q) < k {
			if r.IntN(8) == 0 {
				q = append(q, g.word(r))
				continue
			}
			span := min(len(words), 25)
			if r.IntN(3) == 0 {
				span = len(words)
			}
			q = append(q, words[r.IntN(span)])
		}
		qs[i] = strings.Join(q, " ")
	}
	return qs
}

func BenchmarkBuildIndex1k(b *testing.B) {
	g := newSynthCorpus(1, 50000)
	docs := make([]string, 1000)
	for i := range docs {
		docs[i] = g.doc(i)
	}
	for b.Loop() {
		BuildIndex(len(docs), func(i int) string { return docs[i] })
	}
}

func BenchmarkSearch1k(b *testing.B) {
	g := newSynthCorpus(1, 50000)
	docs := make([]string, 1000)
	for i := range docs {
		docs[i] = g.doc(i)
	}
	ix := BuildIndex(len(docs), func(i int) string { return docs[i] })
	qs := g.queries(1000, len(docs))
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		ix.Search(qs[i%len(qs)], 50)
		i++
	}
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func peakRSS() (int64, error) { return procStatus("VmHWM:") }

// currentRSS returns the process's resident set size (VmRSS) in bytes.
func currentRSS() (int64, error) { return procStatus("VmRSS:") }

// procStatus reads a "kB" field of /proc/self/status (Linux), in bytes.
func procStatus(field string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", field, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read %s: parse %q: %w", field, rest, err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", field, err)
	}
	return 0, fmt.Errorf("read %s: not in /proc/self/status", field)
}

// cpuSeconds returns the process's user+system CPU time from
// /proc/self/stat (Linux; USER_HZ is 100 there).
func cpuSeconds() (float64, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	// Fields after the parenthesized command name; utime and stime are the
	// 14th and 15th fields of the whole line.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu time: short /proc/self/stat")
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cpu time: parse %q %q", f[11], f[12])
	}
	return (u + st) / 100, nil
}

// queryLatencies are per-query search times over a query set.
type queryLatencies struct {
	wall    []time.Duration // first run of each query
	wallMin []time.Duration // best of three runs: filters out preemption by other processes
	hits    int
}

// measureQueries runs every query three times (k=50) on one locked thread.
func measureQueries(ix *Index, qs []string) *queryLatencies {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	l := &queryLatencies{}
	for _, q := range qs {
		t := time.Now()
		l.hits += len(ix.Search(q, 50))
		w := time.Since(t)
		best := w
		for range 2 {
			t := time.Now()
			ix.Search(q, 50)
			best = min(best, time.Since(t))
		}
		l.wall = append(l.wall, w)
		l.wallMin = append(l.wallMin, best)
	}
	return l
}

func (l *queryLatencies) report(b *testing.B) {
	ms := func(d []time.Duration, p float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[int(p*float64(len(s)-1))].Nanoseconds()) / 1e6
	}
	mean := func(d []time.Duration) float64 {
		var t time.Duration
		for _, x := range d {
			t += x
		}
		return float64(t.Nanoseconds()) / 1e6 / float64(len(d))
	}
	b.ReportMetric(ms(l.wall, 0.5), "search_p50_ms")
	b.ReportMetric(ms(l.wall, 0.99), "search_p99_ms")
	b.ReportMetric(mean(l.wall), "search_mean_ms")
	b.ReportMetric(ms(l.wallMin, 0.5), "search_best3_p50_ms")
	b.ReportMetric(ms(l.wallMin, 0.9), "search_best3_p90_ms")
	b.ReportMetric(ms(l.wallMin, 0.99), "search_best3_p99_ms")
	b.ReportMetric(float64(l.hits)/float64(len(l.wall)), "hits/query")
}

// BenchmarkLargeCorpus builds an index over SHOPAGENT_BENCH_DOCS synthetic
// products (e.g. 1181436, WebShop's full catalog) and reports build time,
// peak RSS and search latency percentiles over 1,000 queries (k=50). Run it
// once:
//
//	SHOPAGENT_BENCH_DOCS=1181436 GOMAXPROCS=2 go test ./env/ -run '^$' \
//	    -bench LargeCorpus -benchtime 1x -timeout 30m
//
// By default document texts are generated on the fly inside BuildIndex's
// doc callback (build_s then includes generation; gen_only_s is the
// generation alone); SHOPAGENT_BENCH_PREGEN=1 generates them first into
// memory, so build_s is indexing alone and the peak RSS includes the texts
// (see rss_before_build_MiB).
func BenchmarkLargeCorpus(b *testing.B) {
	n, err := strconv.Atoi(os.Getenv("SHOPAGENT_BENCH_DOCS"))
	if err != nil || n <= 0 {
		b.Skip("set SHOPAGENT_BENCH_DOCS to the number of documents")
	}
	g := newSynthCorpus(42, 300000)

	// Text generation alone, to separate it from indexing time. With
	// SHOPAGENT_BENCH_PREGEN=1 the texts are kept, in one string, and the
	// build reads them from memory, like a loaded catalog; otherwise the
	// build generates them on the fly and nothing but the index is resident.
	pregen := os.Getenv("SHOPAGENT_BENCH_PREGEN") == "1"
	gcpu0, _ := cpuSeconds()
	t0 := time.Now()
	var genBytes atomic.Int64
	procs := runtime.GOMAXPROCS(0)
	texts := make([]string, procs) // part p: documents [p*n/procs, (p+1)*n/procs)
	offs := make([][]int, procs)
	parallelTasks(procs, procs, func(p int) {
		var sb strings.Builder
		var s int64
		for i := p * n / procs; i < (p+1)*n/procs; i++ {
			d := g.doc(i)
			s += int64(len(d))
			if pregen {
				offs[p] = append(offs[p], sb.Len())
				sb.WriteString(d)
			}
		}
		offs[p] = append(offs[p], sb.Len())
		texts[p] = sb.String()
		genBytes.Add(s)
	})
	doc := g.doc
	if pregen {
		doc = func(i int) string {
			p := (i*procs + procs - 1) / n // first part that can hold i
			for (p+1)*n/procs <= i {
				p++
			}
			for p > 0 && p*n/procs > i {
				p--
			}
			j := i - p*n/procs
			return texts[p][offs[p][j]:offs[p][j+1]]
		}
	}
	genTime := time.Since(t0)
	gcpu1, _ := cpuSeconds()
	debug.FreeOSMemory()
	rss0, err := currentRSS()
	if err != nil {
		b.Fatal(err)
	}
	// Reset the peak RSS so that it measures the build (Linux >= 4.0).
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset VmHWM (%v): peak_rss_MiB covers the whole process", err)
	}

	cpu0, _ := cpuSeconds()
	t0 = time.Now()
	ix := BuildIndex(n, doc)
	buildTime := time.Since(t0)
	cpu1, _ := cpuSeconds()
	rss, err := peakRSS()
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	qs := g.queries(1000, n)
	lat := measureQueries(ix, qs)
	// Parallel throughput with all CPUs (concurrent Search calls).
	t0 = time.Now()
	var wg sync.WaitGroup
	for p := range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < len(qs); i += runtime.GOMAXPROCS(0) {
				ix.Search(qs[i], 50)
			}
		}()
	}
	wg.Wait()
	qps := float64(len(qs)) / time.Since(t0).Seconds()

	for b.Loop() { // keeps the benchmark framework happy; use -benchtime 1x
	}
	b.ReportMetric(float64(n), "docs")
	b.ReportMetric(float64(genBytes.Load())/float64(n), "bytes/doc")
	b.ReportMetric(float64(ix.sumTTF)/float64(n), "terms/doc")
	b.ReportMetric(float64(ix.NumTerms()), "distinct_terms")
	b.ReportMetric(float64(ix.NumPostings()), "postings")
	b.ReportMetric(genTime.Seconds(), "gen_only_s")
	b.ReportMetric(gcpu1-gcpu0, "gen_only_cpu_s")
	b.ReportMetric(buildTime.Seconds(), "build_s")
	b.ReportMetric(cpu1-cpu0, "build_cpu_s")
	b.ReportMetric(float64(rss)/(1<<20), "peak_rss_MiB")
	b.ReportMetric(float64(rss0)/(1<<20), "rss_before_build_MiB")
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap_after_build_MiB")
	lat.report(b)
	b.ReportMetric(qps, "search_qps_all_cpus")
	b.Logf("example query: %q -> %v", qs[0], ix.Search(qs[0], 5))
}
