package datasets

import (
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"shopagent/env"
	"shopagent/env/pyport"
)

// ExpertPolicy is the policy name of expert demonstrations.
const ExpertPolicy = "expert"

// ExpertConfig holds the scripted expert's knobs. Start from
// DefaultExpertConfig: the zero value is a direct expert (shortened queries,
// no reading, no detours, no noise) with the default page, search and detour
// limits.
type ExpertConfig struct {
	// Noise is the probability, at each step, of taking a random available
	// click instead of the expert's action ("buy now" and the search page's
	// "search" button excluded, so noise never ends an episode); the expert
	// then recovers from wherever the click led.
	Noise float64
	// ReadProb is the probability, at each visit to a product page the
	// expert opens (the goal product's or a detour's), of reading its
	// description or its features (then "< prev") before going on.
	ReadProb float64
	// OpenOtherProb is the probability, at each view of a results page, of
	// first opening a result that is not the goal product (one of the three
	// most goal-like results of the page not opened yet in this search),
	// looking at it and going back: a detour.
	OpenOtherProb float64
	// PageAheadProb is the probability, when the goal product shows on a
	// results page that has a next page, of looking at the next page first
	// and coming back (at most once per search): a detour.
	PageAheadProb float64
	// ReformulateProb is the probability, at the first results page of the
	// episode's first search, of going back and searching again with a
	// reformulated query (another human query for the instruction, or
	// another short query): a detour, an extra search that does not count
	// towards MaxSearches.
	ReformulateProb float64
	// MaxDetours bounds the detours of an episode (opened other results,
	// pages looked ahead, reformulations), so that detours never keep the
	// expert from buying.
	MaxDetours int
	// MaxPages is the number of result pages scanned per search (WebShop has
	// at most 5 pages of 10).
	MaxPages int
	// MaxSearches is the number of searches (reformulations aside) before
	// the expert gives up on finding the goal product and buys the
	// best-looking result.
	MaxSearches int
	// HumanQueryProb is the probability that the first search types one of
	// the real people's queries for the instruction, when HumanQueries has
	// some (1: whenever it has); otherwise the expert types a shortened query
	// made from the instruction. A reformulated search types another human
	// query with the same probability.
	HumanQueryProb float64
	// HumanQueries are real people's search queries by instruction (the
	// instruction without its price clause, as in WebShop's
	// goal_query_map.json). Nil means the embedded
	// webshopdata.GoalQueryMap(); an empty map means none.
	HumanQueries map[string][]string
}

// DefaultExpertConfig returns the defaults: no noise; reading with
// probability 0.3; detours: another result opened with probability 0.4 per
// results page viewed, the next page looked at with probability 0.3 when the
// goal product shows, a reformulated search with probability 0.25, at most 4
// detours an episode; 5 pages per search, 3 searches; WebShop's human
// queries whenever the instruction has some. On the default shop's train goals these give about 11 steps an
// episode, as WebShop's human demonstrations have, and still 100% success
// (see "The expert demonstrator" in docs/TRAINING.md).
func DefaultExpertConfig() ExpertConfig {
	return ExpertConfig{
		ReadProb: 0.3, OpenOtherProb: 0.4, PageAheadProb: 0.3, ReformulateProb: 0.25, MaxDetours: 4,
		MaxPages: 5, MaxSearches: 3, HumanQueryProb: 1,
	}
}

// ExpertReport describes what an expert did in its episode, for statistics.
type ExpertReport struct {
	// Searches counts the searches the expert planned (reformulations
	// included; a query repeated to recover from a random click is not
	// counted).
	Searches int
	// HumanQuery is true when the first query was a real person's query for
	// the instruction; FirstQuery is that first query.
	HumanQuery bool
	FirstQuery string
	// Detours taken, by kind: results opened that were not the goal
	// product (on purpose, not by noise), next pages looked at while the goal
	// product showed, reformulated searches.
	OpenedOthers, PagesAhead, Reformulations int
	// RandomActions counts noise actions.
	RandomActions int
	// OpenOtherChances and PageAheadChances count the draws behind
	// OpenedOthers and PagesAhead (the results views, and the views showing
	// the goal product with a next page, where a detour was possible);
	// ReformulateChances the draws behind Reformulations (0 or 1).
	OpenOtherChances, PageAheadChances, ReformulateChances int
}

// candidate is a result seen during the last search (for the fallback).
type candidate struct {
	asin  string // lowercased
	page  int
	score float64
}

// Expert is a scripted shopper that knows its goal (the env.Goal struct: the
// ASIN, attributes, options and price cap) and acts only through
// observations and actions like any agent. Its first search types a real
// person's query for the instruction when ExpertConfig.HumanQueries has one
// (with probability HumanQueryProb), otherwise a short query in the style of people's (the product and one or
// two of the attributes or options). It scans up to MaxPages pages of results
// for the goal product, searches again with more specific queries (all
// attributes and options, then the product's title words) up to MaxSearches
// times, and otherwise buys the best-looking result of its last search. On
// the way it makes people's detours at the configured rates: it opens other
// results and goes back, looks at the next page, reformulates its first
// query, and reads descriptions and features. On the product's page it
// clicks each goal option and buys. An Expert plays one episode of its goal
// and is deterministic for a seed; it is not safe for concurrent use.
type Expert struct {
	goal   env.Goal
	cfg    ExpertConfig
	rng    *rand.Rand
	target string // lowercased goal ASIN

	product []string // product words of the instruction
	phrases []string // attributes and option values
	qp      queryParts
	human   []string // real people's queries for the instruction

	// Search state.
	budget     int    // searches counted against MaxSearches
	query      string // the current search's query
	pending    string // the query of the next search, once decided
	scanned    map[int]bool
	cands      []candidate
	fallback   string // lowercased ASIN bought as a fallback, "" before
	fbPage     int
	opened     map[string]bool // results opened in this search
	ahead      int             // page to come back to after looking ahead, 0 if none
	aheadDone  bool            // looked ahead in this search
	resultsSaw bool            // a results page of the episode was acted on

	// Item state.
	item       string // product of the current item page visit
	readPlan   bool
	readDone   bool
	optClicked map[string]bool
	lastAction string

	detours int
	rep     ExpertReport
}

// NewExpert returns an expert for one episode of goal, deterministic for seed.
// Zero MaxPages, MaxSearches or MaxDetours take the defaults.
func NewExpert(goal env.Goal, cfg ExpertConfig, seed uint64) *Expert {
	d := DefaultExpertConfig()
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = d.MaxPages
	}
	if cfg.MaxSearches <= 0 {
		cfg.MaxSearches = d.MaxSearches
	}
	if cfg.MaxDetours <= 0 {
		cfg.MaxDetours = d.MaxDetours
	}
	x := &Expert{
		goal:       goal,
		cfg:        cfg,
		rng:        rand.New(rand.NewPCG(seed, 0x6578706572740a)),
		target:     strings.ToLower(goal.ASIN),
		scanned:    map[int]bool{},
		opened:     map[string]bool{},
		optClicked: map[string]bool{},
	}
	x.product, x.phrases = instructionParts(goal)
	x.qp = newQueryParts(goal)
	x.human = lookupQueries(cfg.HumanQueries, goal.Instruction)
	return x
}

// RandomActions returns the number of random (noise) actions taken so far.
func (x *Expert) RandomActions() int { return x.rep.RandomActions }

// Searches returns the number of searches planned so far (reformulations
// included; a query repeated to recover from a random click is not counted).
func (x *Expert) Searches() int { return x.rep.Searches }

// Report returns what the expert did so far.
func (x *Expert) Report() ExpertReport { return x.rep }

// Act implements env.Agent.
func (x *Expert) Act(obs env.Observation) string {
	x.observe(obs)
	if x.cfg.Noise > 0 && x.rng.Float64() < x.cfg.Noise {
		var opts []string
		for _, c := range obs.Clickables {
			if c != env.ClickSearch && c != env.ClickBuyNow {
				opts = append(opts, c)
			}
		}
		if len(opts) > 0 {
			c := opts[x.rng.IntN(len(opts))]
			x.rep.RandomActions++
			if obs.Page == env.PageItem && isOptionValue(obs, c) {
				clear(x.optClicked) // the click may have replaced a goal option
			}
			return x.take(env.Click(c))
		}
	}
	return x.take(x.decide(obs))
}

// take records an action before returning it.
func (x *Expert) take(action string) string {
	x.lastAction = action
	return action
}

// observe updates the state from the page the last action led to.
func (x *Expert) observe(obs env.Observation) {
	if obs.Page != env.PageItem {
		return
	}
	a := env.ParseAction(x.lastAction)
	if a.Name == "click" && looksLikeASIN(a.Arg) {
		// A new visit to a product page.
		x.item = a.Arg
		x.readDone = false
		x.readPlan = x.cfg.ReadProb > 0 && x.rng.Float64() < x.cfg.ReadProb
		clear(x.optClicked)
	}
}

// detour reports whether to take a detour drawn with probability p, counting
// the chance in *chances and the detour in *taken.
func (x *Expert) detour(p float64, chances, taken *int) bool {
	if p <= 0 || x.detours >= x.cfg.MaxDetours || x.fallback != "" {
		return false
	}
	*chances++
	if x.rng.Float64() >= p {
		return false
	}
	x.detours++
	*taken++
	return true
}

// decide is the expert's own action for an observation.
func (x *Expert) decide(obs env.Observation) string {
	switch obs.Page {
	case env.PageSearch:
		switch {
		case x.pending != "":
			x.startSearch(x.pending)
			x.pending = ""
		case x.rep.Searches == 0:
			x.budget++
			x.startSearch(x.firstQuery())
		}
		return env.Search(x.query)
	case env.PageResults:
		return x.onResults(obs)
	case env.PageItem:
		if x.item != "" && (x.item == x.target || x.item == x.fallback) {
			return x.onTarget(obs)
		}
		if x.item != "" && x.readPlan && !x.readDone {
			return x.read()
		}
		return env.Click(env.ClickPrev)
	case env.PageDescription, env.PageFeatures, env.PageReviews, env.PageAttributes:
		return env.Click(env.ClickPrev)
	}
	return env.Click(env.ClickBackToSearch)
}

// startSearch makes q the current search's query and forgets the last
// search's results.
func (x *Expert) startSearch(q string) {
	x.query = q
	x.rep.Searches++
	x.fallback = ""
	x.cands = x.cands[:0]
	x.ahead, x.aheadDone = 0, false
	clear(x.scanned)
	clear(x.opened)
}

// searchAgain plans the next search with query q and leaves the results.
func (x *Expert) searchAgain(q string) string {
	x.pending = q
	return env.Click(env.ClickBackToSearch)
}

// onResults acts on a results page: detours, then the goal product, the
// next page, another search or the fallback.
func (x *Expert) onResults(obs env.Observation) string {
	if x.pending != "" {
		return env.Click(env.ClickBackToSearch) // a random click got in the way
	}
	page, total := parseResultsPage(obs.Text)
	var asins []string
	for _, c := range obs.Clickables {
		if looksLikeASIN(c) {
			asins = append(asins, c)
		}
	}
	if !x.scanned[page] {
		x.scanned[page] = true
		for _, r := range parseResults(obs.Text, asins) {
			x.cands = append(x.cands, candidate{asin: r.asin, page: page, score: x.looks(r)})
		}
	}
	first := !x.resultsSaw
	x.resultsSaw = true
	if x.ahead > 0 {
		if page > x.ahead {
			return env.Click(env.ClickPrev) // back from looking ahead
		}
		x.ahead = 0
	}
	if first && x.detour(x.cfg.ReformulateProb, &x.rep.ReformulateChances, &x.rep.Reformulations) {
		return x.searchAgain(x.reformulation())
	}
	here := false
	for _, a := range asins {
		if a == x.target {
			here = true
		}
	}
	if here && !x.aheadDone && page*10 < total && page < x.cfg.MaxPages {
		x.aheadDone = true
		if x.detour(x.cfg.PageAheadProb, &x.rep.PageAheadChances, &x.rep.PagesAhead) {
			x.ahead = page
			return env.Click(env.ClickNext)
		}
	}
	if others := x.otherResults(obs.Text, asins); len(others) > 0 &&
		x.detour(x.cfg.OpenOtherProb, &x.rep.OpenOtherChances, &x.rep.OpenedOthers) {
		other := others[x.rng.IntN(min(3, len(others)))]
		x.opened[other] = true
		return env.Click(other)
	}
	if here {
		x.opened[x.target] = true
		return env.Click(x.target)
	}
	if x.fallback != "" {
		for _, a := range asins {
			if a == x.fallback {
				return env.Click(a)
			}
		}
		if page > x.fbPage && page > 1 {
			return env.Click(env.ClickPrev)
		}
		if page < x.fbPage {
			return env.Click(env.ClickNext)
		}
		x.fallback = "" // not where it was: choose again below
	}
	for q := 1; q < page; q++ {
		if !x.scanned[q] {
			return env.Click(env.ClickPrev)
		}
	}
	if page < x.cfg.MaxPages && len(asins) > 0 && page*10 < total {
		return env.Click(env.ClickNext)
	}
	if x.budget < x.cfg.MaxSearches {
		x.budget++
		return x.searchAgain(x.nextQuery())
	}
	// Fallback: the best-looking result of the last search.
	if len(x.cands) == 0 {
		x.budget++
		return x.searchAgain(x.nextQuery())
	}
	best := x.cands[0]
	for _, c := range x.cands[1:] {
		if c.score > best.score {
			best = c
		}
	}
	x.fallback, x.fbPage = best.asin, best.page
	switch {
	case best.page == page:
		return env.Click(best.asin)
	case best.page < page:
		return env.Click(env.ClickPrev)
	}
	return env.Click(env.ClickNext)
}

// otherResults lists the results of the page a detour may open, most
// goal-like first: neither the goal product nor opened already in this
// search. The detour opens one of the first three.
func (x *Expert) otherResults(text string, asins []string) []string {
	var out []string
	score := map[string]float64{}
	for _, r := range parseResults(text, asins) {
		if r.asin != x.target && !x.opened[r.asin] {
			out = append(out, r.asin)
			score[r.asin] = x.looks(r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return score[out[i]] > score[out[j]] })
	return out
}

// read opens the description or the features of the product page.
func (x *Expert) read() string {
	x.readDone = true
	if x.rng.IntN(2) == 0 {
		return env.Click(env.ClickDescription)
	}
	return env.Click(env.ClickFeatures)
}

// onTarget acts on the page of the product to buy: maybe read, choose the
// goal's options, buy.
func (x *Expert) onTarget(obs env.Observation) string {
	if x.readPlan && !x.readDone {
		return x.read()
	}
	values := optionValues(obs)
	for _, o := range x.goal.Options {
		v, ok := matchOption(o, values)
		if ok && !x.optClicked[v] {
			x.optClicked[v] = true
			return env.Click(v)
		}
	}
	return env.Click(env.ClickBuyNow)
}

// looks scores how well a result matches the goal, for the fallback and the
// detours: goal words in the title, and the price under the cap.
func (x *Expert) looks(r result) float64 {
	title := map[string]bool{}
	for _, w := range wordParts(strings.ToLower(r.title)) {
		title[w] = true
	}
	var s float64
	for _, w := range wordParts(strings.Join(x.product, " ")) {
		if title[w] {
			s += 2
		}
	}
	for _, p := range x.phrases {
		for _, w := range wordParts(p) {
			if title[w] {
				s++
			}
		}
	}
	if r.price > 0 && r.price <= x.goal.PriceUpper {
		s += 3
	}
	return s
}

// useHuman draws whether a search types a human query, with probability
// HumanQueryProb (no draw at 0 or 1).
func (x *Expert) useHuman() bool {
	p := x.cfg.HumanQueryProb
	return p >= 1 || p > 0 && x.rng.Float64() < p
}

// firstQuery is the episode's first query: one of the instruction's human
// queries (chosen with the episode's seed) when it has some and useHuman
// says so, else a short query in their style.
func (x *Expert) firstQuery() string {
	q := ""
	if len(x.human) > 0 && x.useHuman() {
		q = cleanQuery(x.human[x.rng.IntN(len(x.human))])
		x.rep.HumanQuery = q != ""
	}
	if q == "" {
		q = x.qp.short(x.rng)
	}
	if q == "" {
		q = joinCapped(x.product, x.phrases, 8, x.rng, true)
	}
	if q == "" {
		q = x.fallbackQuery()
	}
	x.rep.FirstQuery = q
	return q
}

// reformulation is the query of a reformulated first search: another human
// query for the instruction (see useHuman), else another short query, else
// the longer query of all attributes and options.
func (x *Expert) reformulation() string {
	var others []string
	for _, h := range x.human {
		if h = cleanQuery(h); h != "" && h != x.query {
			others = append(others, h)
		}
	}
	if len(others) > 0 && x.useHuman() {
		return others[x.rng.IntN(len(others))]
	}
	for range 8 {
		if q := x.qp.short(x.rng); q != "" && q != x.query {
			return q
		}
	}
	if q := joinCapped(x.product, x.phrases, 12, x.rng, false); q != "" && q != x.query {
		return q
	}
	return x.fallbackQuery()
}

// nextQuery builds the query of a search after the first: a longer one with
// every attribute and option, then the product's title words.
func (x *Expert) nextQuery() string {
	var q string
	if x.budget <= 2 {
		q = joinCapped(x.product, x.phrases, 12, x.rng, false)
	} else {
		q = titleQuery(x.goal.Name, 8)
	}
	if q == "" || q == x.query {
		q = titleQuery(x.goal.Name, 8)
		if q == x.query {
			q = titleQuery(x.goal.Name, 5)
		}
	}
	if q == "" {
		q = x.fallbackQuery()
	}
	return q
}

// fallbackQuery is the instruction itself, lowercased.
func (x *Expert) fallbackQuery() string {
	return strings.ToLower(strings.TrimSpace(x.goal.Instruction))
}

// joinCapped joins product words and phrases into a query of at most maxWords
// words, dropping phrases from the end first, then the first product words.
// With shuffle, each phrase goes before or after the product words at random.
func joinCapped(product, phrases []string, maxWords int, rng *rand.Rand, shuffle bool) string {
	n := len(product)
	if n > maxWords {
		product = product[n-maxWords:]
		n = maxWords
	}
	var before, after []string
	for _, p := range phrases {
		w := len(strings.Fields(p))
		if n+w > maxWords {
			continue
		}
		n += w
		if shuffle && rng.IntN(3) == 0 {
			before = append(before, p)
		} else {
			after = append(after, p)
		}
	}
	parts := append(append(append([]string{}, before...), product...), after...)
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}

// titleQuery is the first maxWords words of a product title, lowercased,
// without punctuation.
func titleQuery(title string, maxWords int) string {
	w := words(strings.ToLower(title))
	if len(w) > maxWords {
		w = w[:maxWords]
	}
	return strings.Join(w, " ")
}

// openings are the ways instructions start (WebShop's human instructions),
// longest first after sorting.
var openings = func() []string {
	o := []string{
		"i am looking for", "im looking for", "i'm looking for", "i need", "i would like",
		"i want", "i want to find", "i want to buy", "i am interested in", "looking for",
		"i would like to buy", "find me", "i need to buy", "get me", "i am interested in buying",
		"i want to get", "i am searching for", "i would like to get", "buy me", "im interested in",
		"id like to find", "look for", "can you find me", "i am in need of", "show me",
		"id like to buy", "id like", "im searching for", "i am looking to buy", "help me find",
		"im trying to find", "i need to find", "can i get", "im looking to buy", "can you find",
		"i need to get", "id like to get", "im hoping to find", "i'd like", "i'd like to buy",
		"i'd like to find", "i'd like to get", "i'm searching for", "i'm interested in",
		"please find", "search for", "i am looking", "im looking", "i would love",
	}
	sort.SliceStable(o, func(i, j int) bool { return len(o[i]) > len(o[j]) })
	return o
}()

// filler are words a shopper leaves out of a query.
var filler = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an the some any i im id me my we our you your it its is are be been
		was were am that which who whom this these those there here and or but nor with without for in
		of on to at by from as into about also should would could can will must need needs want wants
		like looking find get buy please has have having made make one ones something thing things
		item items product products preferably ideally do does very really so just them they their
		it's i'm i'd color colour colors size sizes style styles flavor flavour flavors scent
		pack packs count type kind flavored scented colored price less lower than dollars under if not no only well
		available comes come both each other great good nice new buying purchase order`) {
		m[w] = true
	}
	return m
}()

// instructionParts splits a goal's instruction into product words (neither
// filler nor part of an attribute or option) and the attribute and option
// phrases, in instruction order where they appear in it.
func instructionParts(g env.Goal) (product, phrases []string) {
	text := instructionText(g)
	seen := map[string]bool{}
	phraseWord := map[string]bool{}
	add := func(p string) {
		p = strings.Join(words(strings.ToLower(p)), " ")
		for _, w := range wordParts(p) {
			phraseWord[w] = true
		}
		if p == "" || seen[p] || strings.Contains(p, "dummy_attr") || strings.Contains(p, "dummy attr") {
			return
		}
		seen[p] = true
		phrases = append(phrases, p)
	}
	for _, a := range g.Attributes {
		add(a)
	}
	for _, o := range g.Options {
		add(o.Value)
	}
	// Order phrases by where they appear in the instruction (absent ones last).
	pos := func(p string) int {
		if i := strings.Index(text, p); i >= 0 {
			return i
		}
		return len(text) + 1
	}
	sort.SliceStable(phrases, func(i, j int) bool { return pos(phrases[i]) < pos(phrases[j]) })
	for _, w := range words(text) {
		keep := false
		for _, part := range strings.Split(w, "-") {
			if !filler[part] && !phraseWord[part] {
				keep = true
			}
		}
		if keep && !filler[w] {
			product = append(product, w)
		}
	}
	return product, phrases
}

// wordRE matches the words of a text: letters, digits and inner hyphens,
// dots or apostrophes ("3x-large", "6.7", "women's").
var wordRE = regexp.MustCompile(`[\p{L}\p{N}]+(?:[-.'&][\p{L}\p{N}]+)*`)

// words splits text into words (see wordRE), keeping hyphenated words whole.
func words(text string) []string {
	return wordRE.FindAllString(text, -1)
}

// wordParts is words with hyphenated words split into their parts, for
// comparing texts that spell compounds differently ("non-gmo", "non gmo").
func wordParts(text string) []string {
	var out []string
	for _, w := range words(text) {
		out = append(out, strings.Split(w, "-")...)
	}
	return out
}

// optionValues returns the option values of an item page: the clickables
// after "buy now".
func optionValues(obs env.Observation) []string {
	for i, c := range obs.Clickables {
		if c == env.ClickBuyNow {
			return obs.Clickables[i+1:]
		}
	}
	return nil
}

// isOptionValue reports whether c is an option value of the item page obs.
func isOptionValue(obs env.Observation, c string) bool {
	for _, v := range optionValues(obs) {
		if v == c {
			return true
		}
	}
	return false
}

// matchOption finds the page's value for a goal option: the same text, or
// the most similar one by WebShop's token_set_ratio when above 85 (the
// reward's own threshold).
func matchOption(o env.GoalOption, values []string) (string, bool) {
	want := strings.ToLower(strings.TrimSpace(o.Value))
	for _, v := range values {
		if v == want {
			return v, true
		}
	}
	best, bestScore := "", 85
	for _, v := range values {
		if s := pyport.TokenSetRatio(want, v); s > bestScore {
			best, bestScore = v, s
		}
	}
	return best, best != ""
}

// pageRE matches the results header, "Page 2 (Total results: 50)".
var pageRE = regexp.MustCompile(`Page (\d+) \(Total results: (\d+)\)`)

// parseResultsPage returns the page number and the total number of results of
// a results page (1 and 0 when the header is missing).
func parseResultsPage(text string) (page, total int) {
	m := pageRE.FindStringSubmatch(text)
	if m == nil {
		return 1, 0
	}
	page, _ = strconv.Atoi(m[1])
	total, _ = strconv.Atoi(m[2])
	return page, total
}

// result is one product of a results page.
type result struct {
	asin, title string
	price       float64
}

// parseResults reads the products of a results page (text or text_rich):
// each clickable ASIN is followed by its title and price.
func parseResults(text string, asins []string) []result {
	var fields []string
	if strings.Contains(text, " [SEP] ") || !strings.Contains(text, "\n") {
		fields = strings.Split(text, " [SEP] ")
	} else {
		for _, l := range strings.Split(text, "\n") {
			l = strings.TrimSpace(l)
			for _, m := range []string{"[clicked button_]", "[clicked button]", "[button_]", "[button]"} {
				l = strings.ReplaceAll(l, m, "")
			}
			if l = strings.TrimSpace(l); l != "" {
				fields = append(fields, l)
			}
		}
	}
	want := map[string]bool{}
	for _, a := range asins {
		want[a] = true
	}
	var out []result
	for i, f := range fields {
		a := strings.ToLower(strings.TrimSpace(f))
		if !want[a] || i+1 >= len(fields) {
			continue
		}
		r := result{asin: a, title: fields[i+1]}
		if i+2 < len(fields) {
			r.price = parsePrice(fields[i+2])
		}
		out = append(out, r)
	}
	return out
}

// parsePrice reads the (lowest) price of a price text like "$10.99" or
// "$5.99 to $7.99"; 0 when there is none.
func parsePrice(s string) float64 {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "$") {
		return 0
	}
	s = s[1:]
	if i := strings.IndexAny(s, " "); i >= 0 {
		s = s[:i]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return v
}
