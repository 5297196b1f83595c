package datasets

import (
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"sync"

	"shopagent/env"
	"shopagent/env/shopgen"
	"shopagent/env/webshopdata"
)

// queryKey normalises an instruction for looking up its human queries:
// lowercased, without WebShop's price clause, with single spaces and no
// leading or trailing dots and spaces (goal_query_map.json's keys are
// WebShop's instructions without the price clause).
func queryKey(ins string) string {
	ins, _ = SplitPriceClause(strings.ToLower(ins))
	return strings.Trim(strings.Join(strings.Fields(ins), " "), ". ")
}

// embeddedQueries indexes webshopdata.GoalQueryMap() by queryKey, once.
var embeddedQueries = sync.OnceValue(func() map[string][]string {
	return indexQueries(webshopdata.GoalQueryMap())
})

// indexQueries re-keys a goal_query_map by queryKey, merging the queries of
// keys that normalise alike.
func indexQueries(m map[string][]string) map[string][]string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // merged lists in a fixed order
	out := make(map[string][]string, len(m))
	for _, k := range keys {
		key := queryKey(k)
		out[key] = append(out[key], m[k]...)
	}
	return out
}

// lookupQueries returns the human queries of an instruction (its price
// clause ignored) in m, or in webshopdata.GoalQueryMap() when m is nil.
func lookupQueries(m map[string][]string, instruction string) []string {
	if m == nil {
		return embeddedQueries()[queryKey(instruction)]
	}
	if len(m) == 0 {
		return nil
	}
	if q, ok := m[instruction]; ok {
		return q
	}
	key := queryKey(instruction)
	if q, ok := m[key]; ok {
		return q
	}
	var out []string
	for k, qs := range m {
		if queryKey(k) == key {
			out = append(out, qs...)
		}
	}
	sort.Strings(out)
	return out
}

// HumanQueriesFor returns the search queries real people typed for an
// instruction (WebShop's goal_query_map.json, embedded in webshopdata; the
// instruction's price clause, case and spacing do not matter), or nil, as
// the file has them. The expert's first search types one of them whenever
// there is one.
func HumanQueriesFor(instruction string) []string {
	return embeddedQueries()[queryKey(instruction)]
}

// IsHumanQuery reports whether query (a search action's argument) is one of
// the queries real people typed for instruction (HumanQueriesFor), as the
// expert types them: lowercased, single spaces. It tells, for a
// demonstration row, whether its search used a human query.
func IsHumanQuery(instruction, query string) bool {
	q := cleanQuery(query)
	for _, h := range HumanQueriesFor(instruction) {
		if cleanQuery(h) == q {
			return true
		}
	}
	return false
}

// cleanQuery makes a human query a search action's argument: lowercased,
// single spaces, without the brackets that delimit the argument.
func cleanQuery(q string) string {
	q = strings.NewReplacer("[", " ", "]", " ").Replace(strings.ToLower(q))
	return strings.Join(strings.Fields(q), " ")
}

// Shortened queries. People's queries (2,197 in goal_query_map.json) have
// 6.4 words on average (median 6, 10% of them 3 or fewer, 10% 10 or more):
// mostly the product with the words just before it ("gluten free chewy
// granola bars") and one or two of the attributes or options, often the size
// or colour, in the instruction's order, without "i need", fillers or the
// price; sometimes nearly the whole instruction.
const (
	// shortCopyProb is the probability of a query that keeps every content
	// word of the instruction (up to shortCopyMax words).
	shortCopyProb = 0.12
	shortCopyMax  = 16
	// shortMax is the most words of other queries.
	shortMax = 14
	// shortPreMax is the most words kept before the product type.
	shortPreMax = 4
	// shortOptionProb and shortAttrProb are the probabilities of keeping
	// each option value and each attribute.
	shortOptionProb = 0.8
	shortAttrProb   = 0.65
	// shortWordProb is the probability of keeping each other content word
	// (a brand, a model, a material).
	shortWordProb = 0.5
	// shortFrontProb is the probability of putting a kept option first
	// ("size 8 flat sandals").
	shortFrontProb = 0.2
)

// cueWords are fillers that name an option group ("dark heather color tank
// top"): a shortened query leaves them out but keeps the words before them.
var cueWords = map[string]bool{
	"color": true, "colour": true, "colored": true, "size": true, "style": true,
	"flavor": true, "flavored": true, "scent": true, "scented": true, "pack": true, "count": true,
}

// qtok is a word of the instruction.
type qtok struct {
	w      string // as written, lowercased
	norm   string // without apostrophes, for matching
	clause int    // index of the clause (text between punctuation)
	filler bool
}

// qphrase is a goal attribute or option value and where the instruction
// has its words (nil when it does not).
type qphrase struct {
	text   string
	option bool
	idx    []int
}

// queryParts is what the short queries of a goal are made of.
type queryParts struct {
	toks     []qtok
	typeFrom int // the product type's words are toks[typeFrom:typeTo]; typeTo 0 when not found
	typeTo   int
	phrases  []qphrase
}

// clauseRE splits an instruction into clauses at punctuation (see
// splitDots for dots).
var clauseRE = regexp.MustCompile(`[,;:!?()"]`)

// splitDots writes a comma for every dot that is not a number's ("6.7"),
// so that "speaker.please" is two clauses.
func splitDots(s string) string {
	b := []byte(s)
	digit := func(i int) bool { return i >= 0 && i < len(b) && b[i] >= '0' && b[i] <= '9' }
	for i := range b {
		if b[i] == '.' && !(digit(i-1) && digit(i+1)) {
			b[i] = ','
		}
	}
	return string(b)
}

// queryFiller are more words a shortened query leaves out: requests to the
// shop's assistant ("please choose").
var queryFiller = map[string]bool{
	"choose": true, "select": true, "pick": true, "please": true, "up": true, "let": true,
	"know": true, "thats": true, "got": true, "give": true, "where": true, "help": true,
}

// newQueryParts finds, in the goal's instruction, the product type (by
// shopgen.Parse), the goal's attributes and options.
func newQueryParts(g env.Goal) queryParts {
	var qp queryParts
	text := instructionText(g)
	for c, clause := range clauseRE.Split(splitDots(text), -1) {
		for _, w := range words(clause) {
			norm := strings.ReplaceAll(w, "'", "")
			fill := filler[w] || filler[norm] || queryFiller[norm]
			qp.toks = append(qp.toks, qtok{w: w, norm: norm, clause: c, filler: fill})
		}
	}
	// The product type: the last run of its words, as Parse reads it.
	if typ := strings.Fields(shopgen.Parse(text).Type); len(typ) > 0 {
		for i := len(qp.toks) - len(typ); i >= 0; i-- {
			ok := true
			for j, t := range typ {
				if !sameWord(qp.toks[i+j].norm, t) {
					ok = false
					break
				}
			}
			if ok {
				qp.typeFrom, qp.typeTo = i, i+len(typ)
				break
			}
		}
	}
	add := func(p string, option bool) {
		p = strings.Join(words(strings.ToLower(p)), " ")
		if p == "" || strings.Contains(p, "dummy") {
			return
		}
		for _, q := range qp.phrases {
			if q.text == p {
				return
			}
		}
		qp.phrases = append(qp.phrases, qphrase{text: p, option: option, idx: qp.locate(p)})
	}
	for _, o := range g.Options {
		add(o.Value, true)
	}
	for _, a := range g.Attributes {
		add(a, false)
	}
	return qp
}

// instructionText is the goal's instruction lowercased, without the price
// clause, a synthetic goal's option suffix and the opening ("i am looking
// for").
func instructionText(g env.Goal) string {
	text, _ := SplitPriceClause(strings.ToLower(g.Instruction))
	if g.Synthetic && len(g.Options) > 0 {
		if i := strings.LastIndex(text, " with "+strings.ToLower(g.Options[0].Name)+": "); i >= 0 {
			text = text[:i]
		}
	}
	text = strings.TrimSpace(strings.Trim(strings.TrimSpace(text), "."))
	for _, o := range openings {
		if strings.HasPrefix(text, o+" ") {
			return text[len(o)+1:]
		}
	}
	return text
}

// sameWord compares words ignoring a plural "s" ("packs", "pack").
func sameWord(a, b string) bool {
	return a == b || a == b+"s" || b == a+"s" || a == b+"es" || b == a+"es"
}

// tokenHas reports whether an instruction word is w or has w as a part of
// a hyphenated compound ("roll-on" has "roll").
func tokenHas(tok, w string) bool {
	if sameWord(tok, w) {
		return true
	}
	if strings.Contains(tok, "-") {
		for _, part := range strings.Split(tok, "-") {
			if sameWord(part, w) {
				return true
			}
		}
	}
	return false
}

// locate returns the indices of the instruction's words that spell phrase p
// (its content words, within a window a little longer than the phrase), or
// nil when the instruction does not have them.
func (qp *queryParts) locate(p string) []int {
	var parts []string
	for _, w := range strings.Fields(p) {
		w = strings.ReplaceAll(w, "'", "")
		if !filler[w] {
			parts = append(parts, w)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	span := len(strings.Fields(p)) + 2
	var best []int
	for start := range qp.toks {
		var idx []int
		used := map[int]bool{}
		for _, w := range parts {
			found := -1
			for i := start; i < len(qp.toks) && i < start+span; i++ {
				if !used[i] && tokenHas(qp.toks[i].norm, w) {
					found = i
					break
				}
			}
			if found < 0 {
				idx = nil
				break
			}
			used[found] = true
			idx = append(idx, found)
		}
		if idx != nil {
			sort.Ints(idx)
			if best == nil || idx[len(idx)-1]-idx[0] < best[len(best)-1]-best[0] {
				best = idx
			}
		}
	}
	return best
}

// short draws a query in the style of people's (see the constants above), or
// "" when the instruction's product type was not found.
func (qp *queryParts) short(rng *rand.Rand) string {
	if qp.typeTo == 0 {
		return ""
	}
	if rng.Float64() < shortCopyProb {
		var out []string
		for _, t := range qp.toks {
			if !t.filler && len(out) < shortCopyMax {
				out = append(out, t.w)
			}
		}
		return strings.Join(out, " ")
	}
	// sel holds the chosen words by priority: the product type 0, the
	// words before it 1, options 2, attributes 3, other words 4.
	sel := map[int]int{}
	pick := func(i, prio int) {
		if p, ok := sel[i]; !ok || prio < p {
			sel[i] = prio
		}
	}
	for i := qp.typeFrom; i < qp.typeTo; i++ {
		pick(i, 0)
	}
	// The words just before the product type, in its clause.
	c := qp.toks[qp.typeFrom].clause
	for i, n := qp.typeFrom-1, 0; i >= 0 && n < shortPreMax; i, n = i-1, n+1 {
		t := qp.toks[i]
		if t.clause != c || t.filler && !cueWords[t.norm] {
			break
		}
		if !t.filler {
			pick(i, 1)
		}
	}
	var front []int
	var extra []string
	for _, p := range qp.phrases {
		prob := shortAttrProb
		if p.option {
			prob = shortOptionProb
		}
		if rng.Float64() >= prob {
			continue
		}
		if p.idx == nil {
			extra = append(extra, p.text)
			continue
		}
		from, to := p.idx[0], p.idx[len(p.idx)-1]
		if p.option && from > 0 && qp.toks[from-1].w == "size" {
			from-- // "size 8"
		}
		if p.option && rng.Float64() < shortFrontProb && (from >= qp.typeTo || to < qp.typeFrom) {
			for i := from; i <= to; i++ {
				if !qp.toks[i].filler || i == from {
					front = append(front, i)
				}
			}
			continue
		}
		prio := 3
		if p.option {
			prio = 2
		}
		for i := from; i <= to; i++ {
			if !qp.toks[i].filler || i == from {
				pick(i, prio)
			}
		}
	}
	// Other content words (brands, models, materials), some of them.
	inPhrase := map[int]bool{}
	for _, p := range qp.phrases {
		for _, i := range p.idx {
			inPhrase[i] = true
		}
	}
	for i, t := range qp.toks {
		if _, ok := sel[i]; !ok && !t.filler && !inPhrase[i] && rng.Float64() < shortWordProb {
			pick(i, 4)
		}
	}
	// At most shortMax words: drop the least important, farthest from the
	// product type first.
	for len(sel)+len(front) > shortMax {
		drop, dp, dd := -1, -1, -1
		for i, p := range sel {
			d := max(qp.typeFrom-i, i-qp.typeTo)
			if p > dp || p == dp && (d > dd || d == dd && i > drop) {
				drop, dp, dd = i, p, d
			}
		}
		if dp <= 0 {
			break
		}
		delete(sel, drop)
	}
	var out []string
	inFront := map[int]bool{}
	for _, i := range front {
		inFront[i] = true
		out = append(out, qp.toks[i].w)
	}
	for i := range qp.toks {
		if _, ok := sel[i]; ok && !inFront[i] {
			out = append(out, qp.toks[i].w)
		}
	}
	have := map[string]bool{}
	for _, w := range out {
		for _, part := range wordParts(w) {
			have[part] = true
		}
	}
	for _, e := range extra {
		if len(out)+len(strings.Fields(e)) > shortMax {
			break
		}
		for _, w := range wordParts(e) {
			if !have[w] && !filler[w] {
				out = append(out, e) // unless its words are all there already
				break
			}
		}
	}
	return strings.Join(strings.Fields(strings.Join(out, " ")), " ")
}
