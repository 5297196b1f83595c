package features

import (
	"regexp"
	"sort"
	"strings"
)

// Search queries. The agent searches with queries from a QueryProposer: the first search of
// an episode uses the first candidate, a later search (after "back to search") the next
// one, and so on, cycling. KeywordQuery is a deterministic heuristic over the instruction;
// a learned query model (WebShop trains a BART model on human queries) can implement the
// same interface later.

// QueryProposer proposes search queries for an instruction, best first.
type QueryProposer interface {
	// Queries returns one or more non-empty candidate queries, best first.
	Queries(instruction string) []string
}

// DefaultQueryWords caps the words of a KeywordQuery query.
const DefaultQueryWords = 10

// KeywordQuery is the keyword heuristic:
//
//  1. lowercase the instruction and cut WebShop's price clause
//     (", and price lower than X dollars") and a trailing period;
//  2. cut the opening ("i am looking for", "i need", "find me", ...; the longest that
//     matches);
//  3. split into words (letters and digits, keeping inner "-", ".", "'", "&" and "/":
//     "3x-large", "6.7", "1/2");
//  4. drop filler and stop words ("a", "the", "that", "with", "for", "and", "is",
//     "color", "size", "pack", "please", "less", ...) but keep product words,
//     attributes, numbers and option words;
//  5. drop repeated words and keep the first MaxWords words.
//
// The first candidate is that query; the second is the instruction from step 2 with only
// its punctuation removed (no words dropped), a fallback when the keywords alone miss; a
// third is the first half of the keywords (at least 3), which ranks the product type
// higher when the attributes mislead the search.
type KeywordQuery struct {
	// MaxWords caps the words of the first candidate (0: DefaultQueryWords).
	MaxWords int
}

// Queries implements QueryProposer.
func (k KeywordQuery) Queries(instruction string) []string {
	maxWords := k.MaxWords
	if maxWords <= 0 {
		maxWords = DefaultQueryWords
	}
	text := stripOpening(stripPriceClause(strings.ToLower(strings.TrimSpace(instruction))))
	words := queryWordRE.FindAllString(text, -1)
	var kw []string
	seen := map[string]bool{}
	for _, w := range words {
		w = strings.Trim(w, "'")
		if w == "" || queryFiller[w] || seen[w] {
			continue
		}
		seen[w] = true
		kw = append(kw, w)
	}
	var out []string
	add := func(q string) {
		q = strings.Join(strings.Fields(q), " ")
		if q == "" {
			return
		}
		for _, o := range out {
			if o == q {
				return
			}
		}
		out = append(out, q)
	}
	if len(kw) > maxWords {
		kw = kw[:maxWords]
	}
	add(strings.Join(kw, " "))
	add(strings.Join(words, " "))
	if len(kw) > 3 {
		add(strings.Join(kw[:max(3, len(kw)/2)], " "))
	}
	if len(out) == 0 {
		add(strings.ToLower(strings.TrimSpace(instruction)))
	}
	if len(out) == 0 {
		out = []string{"shop"}
	}
	return out
}

// priceClauseRE matches WebShop's price clause at the end of an instruction.
var priceClauseRE = regexp.MustCompile(`,?\s*(and\s+)?price\s+lower\s+than\s+[0-9.,]+\s*dollars\s*\.?\s*$`)

func stripPriceClause(s string) string {
	s = priceClauseRE.ReplaceAllString(s, "")
	return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(s), "."))
}

// queryWordRE matches query words: letters and digits with inner joiners.
var queryWordRE = regexp.MustCompile(`[\p{L}\p{N}]+(?:[-.'&/][\p{L}\p{N}]+)*`)

// queryOpenings are the ways instructions start, longest first.
var queryOpenings = func() []string {
	o := strings.Split(`i am looking for|im looking for|i'm looking for|i need|i would like|i want|i want to find|i want to buy|i am interested in|looking for|i would like to buy|find me|i need to buy|get me|i am interested in buying|i want to get|i am searching for|i would like to get|buy me|im interested in|id like to find|look for|can you find me|i am in need of|show me|id like to buy|id like|im searching for|i am looking to buy|help me find|im trying to find|i need to find|can i get|im looking to buy|can you find|i need to get|id like to get|im hoping to find|i'd like|i'd like to buy|i'd like to find|i'd like to get|i'm searching for|i'm interested in|please find|search for|i am looking|im looking|i would love|i'm looking to buy|i am trying to find|i want you to find|please get me|i'm trying to find|i wish to buy|i require|i am shopping for|im shopping for|find|buy|get`, "|")
	sort.SliceStable(o, func(i, j int) bool { return len(o[i]) > len(o[j]) })
	return o
}()

func stripOpening(s string) string {
	for _, o := range queryOpenings {
		if strings.HasPrefix(s, o+" ") {
			return strings.TrimSpace(s[len(o)+1:])
		}
	}
	return s
}

// queryFiller are the words a shopper leaves out of a query: articles, pronouns,
// prepositions and conjunctions, verbs of wanting, and the names of option groups.
var queryFiller = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an the some any i im i'm id i'd me my mine we our you your it its it's
		is are be been being was were am that which who whom whose this these those there here
		and or but nor so also too as if than then with without for in of on to at by from into
		about over under up out off per via should would could can will must may might shall
		need needs want wants wanted like love looking look find get buy purchase order please
		has have having had do does did made make makes one ones something thing things item
		items product products preferably ideally very really just them they their what
		color colour colors colours colored coloured size sizes sized style styles flavor flavour
		flavors flavours flavored scent scents scented type types kind kinds pack packs count
		price priced less lower dollars dollar cheap cheaper only well available come comes both
		each other great good nice new buying interested searching trying hoping shopping
		pick choose it's that's should've not no`) {
		m[w] = true
	}
	return m
}()

// QueryTokenF1 is the token F1 between a proposed query and a reference query (lowercased
// word sets as bags): 2PR/(P+R), 0 when either is empty.
func QueryTokenF1(query, reference string) float64 {
	q := queryWordRE.FindAllString(strings.ToLower(query), -1)
	r := queryWordRE.FindAllString(strings.ToLower(reference), -1)
	if len(q) == 0 || len(r) == 0 {
		return 0
	}
	count := map[string]int{}
	for _, w := range r {
		count[w]++
	}
	common := 0
	for _, w := range q {
		if count[w] > 0 {
			count[w]--
			common++
		}
	}
	if common == 0 {
		return 0
	}
	p := float64(common) / float64(len(q))
	rec := float64(common) / float64(len(r))
	return 2 * p * rec / (p + rec)
}

// QueryWords splits an instruction into the words a query is made of: lowercased, WebShop's
// price clause and a final period cut, words as QueryTokenF1 counts them.
func QueryWords(instruction string) []string {
	return queryWordRE.FindAllString(stripPriceClause(strings.ToLower(strings.TrimSpace(instruction))), -1)
}
