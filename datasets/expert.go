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
// DefaultExpertConfig.
type ExpertConfig struct {
	// Noise is the probability, at each step, of taking a random available
	// click instead of the expert's action ("buy now" and the search page's
	// "search" button excluded, so noise never ends an episode); the expert
	// then recovers from wherever the click led.
	Noise float64
	// ReadProb is the probability of opening the description or the features
	// of the goal product (then "< prev") before choosing options.
	ReadProb float64
	// MaxPages is the number of result pages scanned per search (WebShop has
	// at most 5 pages of 10).
	MaxPages int
	// MaxSearches is the number of searches before the expert gives up on
	// finding the goal product and buys the best-looking result.
	MaxSearches int
}

// DefaultExpertConfig returns the defaults: no noise, reading with
// probability 0.2, 5 pages per search, 3 searches.
func DefaultExpertConfig() ExpertConfig {
	return ExpertConfig{ReadProb: 0.2, MaxPages: 5, MaxSearches: 3}
}

// candidate is a result seen during the last search (for the fallback).
type candidate struct {
	asin  string // lowercased
	page  int
	score float64
}

// Expert is a scripted shopper that knows its goal (the env.Goal struct: the
// ASIN, attributes, options and price cap) and acts only through
// observations and actions like any agent. It searches with a human-like
// query derived from the instruction, scans up to MaxPages pages of results
// for the goal product, searches again with more specific queries (all
// attributes and options, then the product's title words) up to MaxSearches
// times, and otherwise buys the best-looking result of its last search. On
// the product's page it sometimes reads the description or features, clicks
// each goal option and buys. An Expert plays one episode of its goal and is
// deterministic for a seed; it is not safe for concurrent use.
type Expert struct {
	goal   env.Goal
	cfg    ExpertConfig
	rng    *rand.Rand
	target string // lowercased goal ASIN

	product []string // product words of the instruction
	phrases []string // attributes and option values

	// Search state.
	searches   int
	query      string
	scanned    map[int]bool
	searchDone bool
	cands      []candidate
	fallback   string // lowercased ASIN bought as a fallback, "" before
	fbPage     int

	// Item state.
	item       string // product of the current item page visit
	readPlan   bool
	readDone   bool
	optClicked map[string]bool
	lastAction string

	random int
}

// NewExpert returns an expert for one episode of goal, deterministic for seed.
// Zero MaxPages or MaxSearches take the defaults.
func NewExpert(goal env.Goal, cfg ExpertConfig, seed uint64) *Expert {
	d := DefaultExpertConfig()
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = d.MaxPages
	}
	if cfg.MaxSearches <= 0 {
		cfg.MaxSearches = d.MaxSearches
	}
	x := &Expert{
		goal:       goal,
		cfg:        cfg,
		rng:        rand.New(rand.NewPCG(seed, 0x6578706572740a)),
		target:     strings.ToLower(goal.ASIN),
		scanned:    map[int]bool{},
		optClicked: map[string]bool{},
	}
	x.product, x.phrases = instructionParts(goal)
	return x
}

// RandomActions returns the number of random (noise) actions taken so far.
func (x *Expert) RandomActions() int { return x.random }

// Searches returns the number of searches planned so far (a query repeated
// to recover from a random click is not counted).
func (x *Expert) Searches() int { return x.searches }

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
			x.random++
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

// decide is the expert's own action for an observation.
func (x *Expert) decide(obs env.Observation) string {
	switch obs.Page {
	case env.PageSearch:
		if x.searches == 0 || (x.searchDone && x.searches < x.cfg.MaxSearches) {
			x.query = x.nextQuery()
			x.searches++
			x.searchDone = false
			x.fallback = ""
			x.cands = x.cands[:0]
			clear(x.scanned)
		}
		return env.Search(x.query)
	case env.PageResults:
		return x.onResults(obs)
	case env.PageItem:
		if x.item != "" && (x.item == x.target || x.item == x.fallback) {
			return x.onTarget(obs)
		}
		return env.Click(env.ClickPrev)
	case env.PageDescription, env.PageFeatures, env.PageReviews, env.PageAttributes:
		return env.Click(env.ClickPrev)
	}
	return env.Click(env.ClickBackToSearch)
}

// onResults scans a results page.
func (x *Expert) onResults(obs env.Observation) string {
	page, total := parseResultsPage(obs.Text)
	var asins []string
	for _, c := range obs.Clickables {
		if looksLikeASIN(c) {
			asins = append(asins, c)
		}
	}
	for _, a := range asins {
		if a == x.target {
			return env.Click(a)
		}
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
	if !x.scanned[page] {
		x.scanned[page] = true
		for _, r := range parseResults(obs.Text, asins) {
			x.cands = append(x.cands, candidate{asin: r.asin, page: page, score: x.looks(r)})
		}
	}
	for q := 1; q < page; q++ {
		if !x.scanned[q] {
			return env.Click(env.ClickPrev)
		}
	}
	if page < x.cfg.MaxPages && len(asins) > 0 && page*10 < total {
		return env.Click(env.ClickNext)
	}
	x.searchDone = true
	if x.searches < x.cfg.MaxSearches {
		return env.Click(env.ClickBackToSearch)
	}
	// Fallback: the best-looking result of the last search.
	if len(x.cands) == 0 {
		return env.Click(env.ClickBackToSearch)
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

// onTarget acts on the page of the product to buy: maybe read, choose the
// goal's options, buy.
func (x *Expert) onTarget(obs env.Observation) string {
	if x.readPlan && !x.readDone {
		x.readDone = true
		if x.rng.IntN(2) == 0 {
			return env.Click(env.ClickDescription)
		}
		return env.Click(env.ClickFeatures)
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

// looks scores how well a result matches the goal, for the fallback: goal
// words in the title, and the price under the cap.
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

// nextQuery builds the query of the next search: first a short human-like
// query (product words and 1-3 attributes or options), then a longer one with
// every attribute and option, then the product's title words.
func (x *Expert) nextQuery() string {
	var q string
	switch x.searches {
	case 0:
		q = x.humanQuery()
	case 1:
		q = joinCapped(x.product, x.phrases, 12, x.rng, false)
	default:
		q = titleQuery(x.goal.Name, 8)
	}
	if q == "" || (x.searches > 0 && q == x.query) {
		q = titleQuery(x.goal.Name, 8)
		if q == x.query {
			q = titleQuery(x.goal.Name, 5)
		}
	}
	if q == "" {
		q = strings.ToLower(strings.TrimSpace(x.goal.Instruction))
	}
	return q
}

// humanQuery is a short query like the ones people type: the instruction's
// product words with one to three attributes or options, at most 8 words.
func (x *Expert) humanQuery() string {
	k := 1 + x.rng.IntN(3)
	idx := x.rng.Perm(len(x.phrases))
	if k > len(idx) {
		k = len(idx)
	}
	chosen := make([]string, 0, k)
	sort.Ints(idx[:k]) // keep the instruction's order of the chosen phrases
	for _, i := range idx[:k] {
		chosen = append(chosen, x.phrases[i])
	}
	return joinCapped(x.product, chosen, 8, x.rng, true)
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
	text, _ := SplitPriceClause(strings.ToLower(g.Instruction))
	if g.Synthetic && len(g.Options) > 0 {
		if i := strings.LastIndex(text, " with "+strings.ToLower(g.Options[0].Name)+": "); i >= 0 {
			text = text[:i]
		}
	}
	text = strings.TrimSpace(strings.Trim(strings.TrimSpace(text), "."))
	for _, o := range openings {
		if strings.HasPrefix(text, o+" ") {
			text = text[len(o)+1:]
			break
		}
	}
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
