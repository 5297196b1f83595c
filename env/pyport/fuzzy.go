package pyport

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file ports the two string-similarity measures WebShop's reward uses:
// fuzzywuzzy 0.18's fuzz.token_set_ratio (with its pure-Python fallback, i.e.
// python-Levenshtein not installed, so fuzz.ratio is built on difflib) and
// Python's difflib.SequenceMatcher(None, a, b).ratio().
//
// Both operate on Unicode code points, as Python str does. Strings that are
// pure ASCII (the usual case) take a byte-based fast path; others are decoded
// to code points. Invalid UTF-8 bytes decode to U+FFFD, one per bad byte.
// Character properties come from Go's unicode package, whose Unicode version
// may differ slightly from the one built into CPython 3.11 (Unicode 14.0);
// that only matters for characters assigned after Unicode 14.0.

// TokenSetRatio returns fuzzywuzzy 0.18's fuzz.token_set_ratio(a, b) (0..100),
// with the default force_ascii=True and full_process=True.
//
// Each string is processed like fuzzywuzzy's utils.full_process: the
// characters U+0080..U+00FF are dropped (fuzzywuzzy's "asciidammit" removes
// only that range; other non-ASCII characters are kept), every non-word
// character (regular expression (?u)\W; '_' is a word character) becomes a
// space, the result is lowercased (Python str.lower, including the final sigma
// rule and U+0130) and trimmed. If either result is empty the ratio is 0.
// Otherwise the whitespace-separated tokens of each side form two sets; with
// the sorted, space-joined intersection S and differences D1 (a minus b) and D2
// (b minus a), the result is the best fuzz.ratio among (S, S+D1), (S, S+D2)
// and (S+D1, S+D2), where fuzz.ratio(x, y) is 100 if x == y, 0 if either is
// empty, and otherwise round(100*SequenceRatio(x, y)) with round half to even.
func TokenSetRatio(a, b string) int {
	// Both processed strings share one allocation.
	var sb strings.Builder
	sb.Grow(len(a) + len(b))
	fuzzyFullProcess(&sb, a)
	n1 := sb.Len()
	fuzzyFullProcess(&sb, b)
	p := sb.String()
	p1, p2 := fuzzyTrimSpaces(p[:n1]), fuzzyTrimSpaces(p[n1:])
	if len(p1) == 0 || len(p2) == 0 {
		return 0
	}
	toks := make([]string, 0, strings.Count(p1, " ")+strings.Count(p2, " ")+2)
	toks = fuzzyAppendSortedTokens(toks, p1)
	t1 := toks[:len(toks):len(toks)]
	t2 := fuzzyAppendSortedTokens(toks[len(toks):], p2)

	// Lay out sect, sect+" "+diff1to2 and sect+" "+diff2to1 in one buffer.
	// Tokens are non-empty and contain no spaces, so omitting the separator
	// when a side is empty is exactly Python's .strip() of the concatenation.
	buf := make([]byte, 0, 2*(len(p1)+len(p2))+4)
	buf = fuzzyJoinCommon(buf, t1, t2)
	sectLen := len(buf)
	buf = fuzzyJoinDiff(buf, t1, t2, sectLen > 0)
	end12 := len(buf)
	buf = append(buf, buf[:sectLen]...)
	buf = fuzzyJoinDiff(buf, t2, t1, sectLen > 0)

	sect := buf[:sectLen]
	comb12 := buf[:end12]
	comb21 := buf[end12:]

	var m seqMatcher
	best := m.fuzzRatio(sect, comb12)
	if r := m.fuzzRatio(sect, comb21); r > best {
		best = r
	}
	if r := m.fuzzRatio(comb12, comb21); r > best {
		best = r
	}
	return best
}

// SequenceRatio returns difflib.SequenceMatcher(None, a, b).ratio() of Python
// 3.11: 2*M/T where T is the total number of code points of a and b and M is
// the number of code points in the matching blocks, or 1.0 when both are
// empty. Like difflib, it applies the "autojunk" heuristic: when b has at
// least 200 code points, every element occurring more than len(b)/100+1 times
// in b is "popular" and never starts a match (though matches may extend over
// it). The result is therefore not symmetric in a and b in general.
func SequenceRatio(a, b string) float64 {
	var m seqMatcher
	return m.ratio([]byte(a), []byte(b))
}

// fuzzyFullProcess writes fuzzywuzzy's utils.full_process(s,
// force_ascii=True) to sb, except for the final strip (see fuzzyTrimSpaces).
// The output is valid UTF-8 whose only whitespace is ' '.
func fuzzyFullProcess(sb *strings.Builder, s string) {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_':
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			default:
				c = ' '
			}
			sb.WriteByte(c)
		}
		return
	}

	// General path: drop U+0080..U+00FF (fuzzywuzzy's asciidammit), replace
	// non-word runes by spaces (invalid UTF-8 decodes to U+FFFD, a non-word
	// rune).
	rs := make([]rune, 0, len(s))
	for _, r := range s {
		if r >= 0x80 && r <= 0xFF {
			continue
		}
		if !fuzzyIsWord(r) {
			r = ' '
		}
		rs = append(rs, r)
	}
	// Python str.lower: full lowercase mapping (only U+0130 expands) and the
	// context-dependent final sigma.
	for i, r := range rs {
		switch {
		case r < utf8.RuneSelf:
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
		case r == 0x130: // LATIN CAPITAL LETTER I WITH DOT ABOVE
			sb.WriteByte('i')
			r = 0x307 // COMBINING DOT ABOVE
		case r == 0x3A3: // GREEK CAPITAL LETTER SIGMA
			r = fuzzyLowerSigma(rs, i)
		default:
			r = unicode.ToLower(r)
		}
		sb.WriteRune(r)
	}
}

// fuzzyIsWord reports whether r matches Python's (?u)\w: str.isalnum() or '_'.
func fuzzyIsWord(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_'
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}

// fuzzyLowerSigma ports CPython's handle_capital_sigma: U+03A3 at index i of
// rs lowercases to final sigma U+03C2 when preceded by a cased character
// (skipping case-ignorable ones) and not followed by one.
func fuzzyLowerSigma(rs []rune, i int) rune {
	j := i - 1
	for j >= 0 && fuzzyIsCaseIgnorable(rs[j]) {
		j--
	}
	final := j >= 0 && fuzzyIsCased(rs[j])
	if final && i+1 < len(rs) {
		j = i + 1
		for j < len(rs) && fuzzyIsCaseIgnorable(rs[j]) {
			j++
		}
		final = j == len(rs) || !fuzzyIsCased(rs[j])
	}
	if final {
		return 0x3C2
	}
	return 0x3C3
}

// fuzzyIsCased reports the Unicode "Cased" property.
func fuzzyIsCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

// fuzzyIsCaseIgnorable reports the Unicode "Case_Ignorable" property for the
// characters that can occur after full_process's \W substitution (word
// characters and spaces). Of the property's members (Mn, Me, Cf, Lm, Sk and
// some punctuation), only Lm letters are word characters; the rest are listed
// for completeness.
func fuzzyIsCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '^', '`', 0xA8, 0xAD, 0xAF, 0xB4, 0xB7, 0xB8,
		0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// fuzzyTrimSpaces trims leading and trailing ' ' bytes (Python's strip(),
// given that ' ' is the only whitespace left by full_process).
func fuzzyTrimSpaces(s string) string {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}

// fuzzyAppendSortedTokens appends the distinct space-separated tokens of p to
// toks, sorted in code-point order (bytewise order of valid UTF-8 is
// code-point order), and returns the extended slice.
func fuzzyAppendSortedTokens(toks []string, p string) []string {
	n := len(toks)
	for len(p) > 0 {
		i := strings.IndexByte(p, ' ')
		if i < 0 {
			toks = append(toks, p)
			break
		}
		if i > 0 {
			toks = append(toks, p[:i])
		}
		p = p[i+1:]
	}
	slices.Sort(toks[n:])
	return toks[:n+len(slices.Compact(toks[n:]))]
}

// fuzzyJoinCommon appends the space-joined tokens present in both sorted sets.
func fuzzyJoinCommon(buf []byte, t1, t2 []string) []byte {
	first := true
	for i, j := 0, 0; i < len(t1) && j < len(t2); {
		switch c := strings.Compare(t1[i], t2[j]); {
		case c < 0:
			i++
		case c > 0:
			j++
		default:
			if !first {
				buf = append(buf, ' ')
			}
			buf = append(buf, t1[i]...)
			first = false
			i++
			j++
		}
	}
	return buf
}

// fuzzyJoinDiff appends the space-joined tokens of sorted set t1 missing from
// sorted set t2, preceded by a space if sep is set and there is any.
func fuzzyJoinDiff(buf []byte, t1, t2 []string, sep bool) []byte {
	j := 0
	for _, tok := range t1 {
		for j < len(t2) && t2[j] < tok {
			j++
		}
		if j < len(t2) && t2[j] == tok {
			continue
		}
		if sep {
			buf = append(buf, ' ')
		}
		buf = append(buf, tok...)
		sep = true
	}
	return buf
}

// seqMatcher holds scratch space for difflib's matching-block computation so
// that several comparisons can share allocations. The zero value is ready.
type seqMatcher struct {
	slab   []int32 // backing store for the per-comparison tables below
	runeID map[rune]int32
	ra, rb []int32
}

// seqTables are the tables of one comparison, all carved from the slab.
// The indices of b holding symbol c are pos[start[c]:start[c+1]], ascending
// (difflib's b2j). j2len and stamp are two alternating rows of difflib's
// j2len dict; see seqLongestMatch.
type seqTables struct {
	start, pos   []int32
	j2len, stamp [2][]int32
	gen          int32
}

// seqSpan is one pending (alo, ahi, blo, bhi) range of get_matching_blocks.
type seqSpan struct{ alo, ahi, blo, bhi int }

// fuzzRatio is fuzzywuzzy's fuzz.ratio (with its check_for_equivalence and
// check_empty_string decorators) on processed strings.
func (m *seqMatcher) fuzzRatio(a, b []byte) int {
	if string(a) == string(b) {
		return 100
	}
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	// utils.intr is int(round(x)); Python 3 rounds half to even.
	return int(math.RoundToEven(100 * m.ratio(a, b)))
}

// ratio is SequenceMatcher(None, a, b).ratio() over the code points of the
// UTF-8 strings a and b.
func (m *seqMatcher) ratio(a, b []byte) float64 {
	var matches, length int
	if fuzzyIsASCII(a) && fuzzyIsASCII(b) {
		length = len(a) + len(b)
		if len(b) < 200 && bytes.Contains(b, a) {
			// Shortcut: without popular elements the longest match is all
			// of a (at its first occurrence in b) and nothing remains on
			// either side of it.
			matches = len(a)
		} else {
			matches = seqMatches(m, a, b, utf8.RuneSelf)
		}
	} else {
		// Map code points to dense symbols: those of b first, then one
		// shared symbol (with no occurrences in b) for the rest of a.
		if m.runeID == nil {
			m.runeID = make(map[rune]int32)
		} else {
			clear(m.runeID)
		}
		m.rb = m.rb[:0]
		for _, r := range string(b) {
			id, ok := m.runeID[r]
			if !ok {
				id = int32(len(m.runeID))
				m.runeID[r] = id
			}
			m.rb = append(m.rb, id)
		}
		other := int32(len(m.runeID))
		m.ra = m.ra[:0]
		for _, r := range string(a) {
			id, ok := m.runeID[r]
			if !ok {
				id = other
			}
			m.ra = append(m.ra, id)
		}
		matches = seqMatches(m, m.ra, m.rb, int(other)+1)
		length = len(m.ra) + len(m.rb)
	}
	if length == 0 {
		return 1.0
	}
	return 2.0 * float64(matches) / float64(length)
}

// fuzzyIsASCII reports whether every byte of b is below 0x80.
func fuzzyIsASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// seqMatches returns the total size of difflib's get_matching_blocks for
// sequences a and b whose elements are symbols below alphabet. The blocks'
// order and merging of adjacent blocks do not change their total size, so
// only the sizes are summed.
func seqMatches[T byte | int32](m *seqMatcher, a, b []T, alphabet int) int {
	la, lb := len(a), len(b)
	if la == 0 || lb == 0 {
		return 0
	}
	t := seqIndexB(m, b, alphabet)
	var stackBuf [32]seqSpan
	stack := append(stackBuf[:0], seqSpan{0, la, 0, lb})
	total := 0
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i, j, k := seqLongestMatch(&t, a, b, s.alo, s.ahi, s.blo, s.bhi)
		if k > 0 {
			total += k
			if s.alo < i && s.blo < j {
				stack = append(stack, seqSpan{s.alo, i, s.blo, j})
			}
			if i+k < s.ahi && j+k < s.bhi {
				stack = append(stack, seqSpan{i + k, s.ahi, j + k, s.bhi})
			}
		}
	}
	return total
}

// seqIndexB builds difflib's b2j (SequenceMatcher.__chain_b with
// isjunk=None and autojunk=True) as counting-sorted position lists, and
// zeroed j2len rows for b.
func seqIndexB[T byte | int32](m *seqMatcher, b []T, alphabet int) seqTables {
	lb := len(b)
	need := 2*alphabet + 1 + lb + 4*(lb+1)
	if cap(m.slab) < need {
		m.slab = make([]int32, need)
	}
	slab := m.slab[:need]
	var t seqTables
	t.start, slab = slab[:alphabet+1], slab[alphabet+1:]
	cursor, slab := slab[:alphabet], slab[alphabet:]
	t.pos, slab = slab[:lb], slab[lb:]
	for p := range 2 {
		t.j2len[p], slab = slab[:lb+1], slab[lb+1:]
		t.stamp[p], slab = slab[:lb+1], slab[lb+1:]
		clear(t.stamp[p])
	}

	start := t.start
	clear(start)
	for _, c := range b {
		start[int(c)+1]++
	}
	if lb >= 200 {
		// "Popular" elements (more than 1% plus one of b) are removed from
		// b2j. They are not junk: matches may still extend over them.
		ntest := int32(lb/100 + 1)
		for c := 1; c <= alphabet; c++ {
			if start[c] > ntest {
				start[c] = 0
			}
		}
	}
	for c := 1; c <= alphabet; c++ {
		start[c] += start[c-1]
	}
	copy(cursor, start)
	for j, c := range b {
		ci := int(c)
		if start[ci] == start[ci+1] {
			continue // popular
		}
		t.pos[cursor[ci]] = int32(j)
		cursor[ci]++
	}
	return t
}

// seqLongestMatch ports SequenceMatcher.find_longest_match(alo, ahi, blo,
// bhi) for isjunk=None: the longest block a[i:i+k] == b[j:j+k] within the
// ranges, earliest in a, then earliest in b, found through b2j (so never
// starting on a popular element) and then extended over equal neighbours on
// both sides.
//
// Python builds a fresh j2len dict per element of a. Here two alternating
// rows of length len(b)+1 are used instead, and an entry counts only if its
// stamp is the previous row's, so nothing needs clearing between rows.
func seqLongestMatch[T byte | int32](t *seqTables, a, b []T, alo, ahi, blo, bhi int) (besti, bestj, bestsize int) {
	besti, bestj = alo, blo
	if int(t.gen) > math.MaxInt32-(ahi-alo)-2 {
		clear(t.stamp[0])
		clear(t.stamp[1])
		t.gen = 0
	}
	t.gen++ // stamp of the (empty) row before alo; never written
	for i := alo; i < ahi; i++ {
		t.gen++
		cur := t.gen
		curLen, curStamp := t.j2len[cur&1], t.stamp[cur&1]
		prevLen, prevStamp := t.j2len[(cur-1)&1], t.stamp[(cur-1)&1]
		c := int(a[i])
		for _, jj := range t.pos[t.start[c]:t.start[c+1]] {
			j := int(jj)
			if j < blo {
				continue
			}
			if j >= bhi {
				break
			}
			// j2len[j-1] of the previous row lives at index j.
			k := int32(1)
			if prevStamp[j] == cur-1 {
				k = prevLen[j] + 1
			}
			curLen[j+1] = k
			curStamp[j+1] = cur
			if int(k) > bestsize {
				besti, bestj, bestsize = i-int(k)+1, j-int(k)+1, int(k)
			}
		}
	}
	// With no junk, only difflib's first pair of extension loops can fire.
	// They extend the match (even an empty one) over equal neighbours, which
	// matters only for popular elements.
	for besti > alo && bestj > blo && a[besti-1] == b[bestj-1] {
		besti, bestj, bestsize = besti-1, bestj-1, bestsize+1
	}
	for besti+bestsize < ahi && bestj+bestsize < bhi && a[besti+bestsize] == b[bestj+bestsize] {
		bestsize++
	}
	return besti, bestj, bestsize
}
