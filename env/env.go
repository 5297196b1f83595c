package env

import (
	"fmt"
	"shopagent/env/pyport"
	"strconv"
	"strings"
)

// PageKind names a page of the shop.
type PageKind string

// The pages of WebShop.
const (
	PageSearch      PageKind = "search"
	PageResults     PageKind = "results"
	PageItem        PageKind = "item"
	PageDescription PageKind = "description"
	PageFeatures    PageKind = "features"
	PageReviews     PageKind = "reviews"
	PageAttributes  PageKind = "attributes"
	PageDone        PageKind = "done"
)

// ObsMode selects the observation text format.
type ObsMode string

// Observation modes, as WebShop's text environment names them.
const (
	ObsText     ObsMode = "text"
	ObsTextRich ObsMode = "text_rich"
)

// ParseObsMode checks an observation mode name.
func ParseObsMode(s string) (ObsMode, error) {
	switch ObsMode(s) {
	case ObsText, ObsTextRich:
		return ObsMode(s), nil
	}
	return "", fmt.Errorf("unknown observation mode %q (want text or text_rich)", s)
}

// Clickable labels of WebShop's pages (lowercased, as actions use them).
const (
	ClickSearch       = "search"
	ClickBackToSearch = "back to search"
	ClickPrev         = "< prev"
	ClickNext         = "next >"
	ClickDescription  = "description"
	ClickFeatures     = "features"
	ClickReviews      = "reviews"
	ClickAttributes   = "attributes"
	ClickBuyNow       = "buy now"
)

// Observation is what the agent sees after Reset or Step.
type Observation struct {
	Page PageKind `json:"page"`
	Text string   `json:"text"`
	// Instruction is the goal's instruction text, shown on every page.
	Instruction string `json:"instruction"`
	// HasSearchBar is true on the search page; search[...] works from any
	// page, as in WebShop, but only the search page offers it.
	HasSearchBar bool `json:"has_search_bar"`
	// Clickables are the page's click targets, lowercased, in page order.
	Clickables []string `json:"clickables"`
}

// Actions returns the available actions as action strings: "search[...]"
// (a template: the agent fills in the query) when the page has a search bar,
// then "click[x]" for every clickable.
func (o Observation) Actions() []string {
	out := make([]string, 0, len(o.Clickables)+1)
	if o.HasSearchBar {
		out = append(out, "search[...]")
	}
	for _, c := range o.Clickables {
		out = append(out, Click(c))
	}
	return out
}

// StepInfo holds what Step knows beyond the observation and reward.
type StepInfo struct {
	// Valid is false when the action was a no-op (unparseable, not available).
	Valid bool `json:"valid"`
	// Reason says why an invalid action did nothing; empty for valid ones.
	Reason string `json:"reason,omitempty"`
	// Truncated is true when the step cap ended the episode.
	Truncated bool `json:"truncated,omitempty"`
	// Purchase is set when the episode ended with "buy now".
	Purchase *Purchase `json:"purchase,omitempty"`
	// Steps is the number of steps taken so far in the episode.
	Steps int `json:"steps"`
}

// Purchase records what was bought and the reward's components.
type Purchase struct {
	ASIN    string     `json:"asin"`
	Options []string   `json:"options"`
	Price   float64    `json:"price"`
	Reward  RewardInfo `json:"reward"`
}

// Config configures an environment.
type Config struct {
	Mode ObsMode
	// MaxSteps ends an episode with reward 0 after this many steps (WebShop's
	// baselines use 100); 0 means no cap.
	MaxSteps int
	// ShowAttributes adds the "attributes" sub-page to item pages.
	ShowAttributes bool
	// Seed seeds the draws of a "<r>" (random products) search, which WebShop
	// makes with Python's unseeded global random.
	Seed uint64
}

type selected struct{ group, value string }

// Env is one shop session. It is not safe for concurrent use; run one Env per
// goroutine over a shared Shop.
type Env struct {
	shop *Shop
	cfg  Config

	goal       Goal
	page       PageKind
	keywords   string
	results    []int
	pageNum    int
	item       int
	options    []selected
	visited    map[string]bool
	steps      int
	done       bool
	obs        Observation
	sb         strings.Builder
	lastReward float64
	rng        *pyport.Random
}

// NewEnv returns an environment over the shop. Call Reset before Step.
func (s *Shop) NewEnv(cfg Config) *Env {
	if cfg.Mode == "" {
		cfg.Mode = ObsText
	}
	return &Env{shop: s, cfg: cfg, visited: map[string]bool{}, rng: pyport.NewRandom(cfg.Seed)}
}

// Goal returns the current goal.
func (e *Env) Goal() Goal { return e.goal }

// Reset starts an episode for a goal on the search page.
func (e *Env) Reset(goal Goal) Observation {
	e.goal = goal
	e.goToSearch()
	e.steps = 0
	e.done = false
	e.render()
	return e.obs
}

func (e *Env) goToSearch() {
	e.page = PageSearch
	e.keywords = ""
	e.results = e.results[:0]
	e.pageNum = 1
	e.item = -1
	e.options = e.options[:0]
	clear(e.visited)
}

// Step applies an action and returns the next observation, the reward, whether
// the episode is done, and information. After done, Step is a no-op that
// returns the final observation.
func (e *Env) Step(action string) (Observation, float64, bool, StepInfo) {
	if e.done {
		return e.obs, 0, true, StepInfo{Steps: e.steps}
	}
	e.steps++
	info := StepInfo{Valid: true}
	reward := 0.0
	a := ParseAction(action)
	switch {
	case a.Name == "search" && a.HasArg && a.Arg != "":
		e.keywords = a.Arg
		e.results = append(e.results[:0], e.shop.Search(a.Arg, SearchReturnN, e.rng)...)
		e.page = PageResults
		e.pageNum = 1
		e.item = -1
		e.options = e.options[:0]
	case a.Name == "click" && a.HasArg && a.Arg != ClickSearch && e.isClickable(a.Arg):
		reward = e.click(a.Arg, &info)
	default:
		info.Valid = false
		info.Reason = e.invalidReason(a)
	}
	if !e.done && e.cfg.MaxSteps > 0 && e.steps >= e.cfg.MaxSteps {
		e.done = true
		info.Truncated = true
		reward = 0
	}
	info.Steps = e.steps
	e.render()
	return e.obs, reward, e.done, info
}

// invalidReason says why WebShop ignores a parsed action on the current page.
func (e *Env) invalidReason(a Action) string {
	switch {
	case !a.HasArg:
		return fmt.Sprintf("%q is not an action: want search[QUERY] or click[LABEL]", a.Name)
	case a.Name == "search":
		return "search[] needs a non-empty query"
	case a.Name != "click":
		return fmt.Sprintf("unknown action %q: want search[...] or click[...]", a.Name)
	case a.Arg == ClickSearch:
		return `click[search] is not an action: use search[QUERY] on the search page`
	}
	return fmt.Sprintf("%q is not clickable on the %s page (clickable: %s)", a.Arg, e.page, strings.Join(e.obs.Clickables, ", "))
}

func (e *Env) isClickable(arg string) bool {
	for _, c := range e.obs.Clickables {
		if c == arg {
			return true
		}
	}
	return false
}

func (e *Env) click(arg string, info *StepInfo) float64 {
	switch arg {
	case ClickBackToSearch:
		e.goToSearch()
		return 0
	case ClickNext:
		e.pageNum++
		return 0
	case ClickPrev:
		switch e.page {
		case PageResults:
			e.pageNum--
		case PageItem:
			e.page = PageResults
			e.item = -1
			e.options = e.options[:0]
		default: // a sub-page
			e.page = PageItem
		}
		return 0
	case ClickDescription:
		e.page = PageDescription
		return 0
	case ClickFeatures:
		e.page = PageFeatures
		return 0
	case ClickReviews:
		e.page = PageReviews
		return 0
	case ClickAttributes:
		e.page = PageAttributes
		return 0
	case ClickBuyNow:
		if e.page == PageItem {
			return e.buy(info)
		}
	}
	if e.page == PageResults {
		for _, d := range e.pageResults() {
			p := &e.shop.Catalog.Products[d]
			if strings.ToLower(p.ASIN) == arg {
				e.page = PageItem
				e.item = d
				e.visited[p.ASIN] = true
				return 0
			}
		}
	}
	if e.page == PageItem {
		// An option value: the later group holding the value wins.
		p := &e.shop.Catalog.Products[e.item]
		group := ""
		for _, g := range p.Options {
			for _, v := range g.Values {
				if v == arg {
					group = g.Name
				}
			}
		}
		if group != "" {
			for i := range e.options {
				if e.options[i].group == group {
					e.options[i].value = arg
					return 0
				}
			}
			e.options = append(e.options, selected{group, arg})
		}
	}
	return 0
}

func (e *Env) buy(info *StepInfo) float64 {
	p := &e.shop.Catalog.Products[e.item]
	opts := make([]string, len(e.options))
	for i, o := range e.options {
		opts[i] = o.value
	}
	r := e.shop.Scorer.Reward(p, &e.goal, p.Price, opts)
	info.Purchase = &Purchase{ASIN: p.ASIN, Options: opts, Price: p.Price, Reward: r}
	e.page = PageDone
	e.done = true
	e.lastReward = r.Reward
	return r.Reward
}

// pageResults returns the document ids shown on the current results page.
func (e *Env) pageResults() []int {
	lo := (e.pageNum - 1) * 10
	if lo < 0 || lo >= len(e.results) {
		return nil
	}
	return e.results[lo:min(lo+10, len(e.results))]
}

// render builds the observation of the current state.
func (e *Env) render() {
	var clk []string
	r := renderer{sb: &e.sb, rich: e.cfg.Mode == ObsTextRich}
	r.sb.Reset()
	switch e.page {
	case PageSearch:
		clk = []string{ClickSearch}
		r.text("WebShop")
		r.instruction(e.goal.Instruction, true)
		r.button("Search")
	case PageResults:
		clk = append(clk, ClickBackToSearch)
		r.instruction(e.goal.Instruction, false)
		r.button("Back to Search")
		r.text("Page " + strconv.Itoa(e.pageNum) + " (Total results: " + strconv.Itoa(len(e.results)) + ")")
		if e.pageNum > 1 {
			clk = append(clk, ClickPrev)
			r.button("< Prev")
		}
		clk = append(clk, ClickNext)
		r.button("Next >")
		for _, d := range e.pageResults() {
			p := &e.shop.Catalog.Products[d]
			clk = append(clk, strings.ToLower(p.ASIN))
			r.productLink(p.ASIN, e.visited[p.ASIN])
			r.text(p.Title)
			r.text(p.PriceText)
		}
	case PageItem:
		p := &e.shop.Catalog.Products[e.item]
		clk = append(clk, ClickBackToSearch, ClickPrev, ClickDescription, ClickFeatures, ClickReviews)
		if e.cfg.ShowAttributes {
			clk = append(clk, ClickAttributes)
		}
		clk = append(clk, ClickBuyNow)
		r.instruction(e.goal.Instruction, false)
		r.button("Back to Search")
		r.button("< Prev")
		url := ""
		if r.rich {
			url = e.itemURLState()
		}
		for _, g := range p.Options {
			r.text(g.Name)
			for _, v := range g.Values {
				clk = append(clk, v)
				// WebShop marks an option clicked when '"v"' occurs in the page's
				// URL, which holds the keywords and json.dumps(options): values
				// that JSON escapes (non-ASCII, quotes) never show as clicked.
				r.option(v, r.rich && strings.Contains(url, `"`+v+`"`))
			}
		}
		r.text(p.Title)
		r.text("Price: " + p.PriceText)
		r.text("Rating: " + p.Rating)
		r.button("Description")
		r.button("Features")
		r.button("Reviews")
		if e.cfg.ShowAttributes {
			r.button("Attributes")
		}
		r.button("Buy Now")
	case PageDescription, PageFeatures, PageReviews, PageAttributes:
		p := &e.shop.Catalog.Products[e.item]
		clk = append(clk, ClickBackToSearch, ClickPrev)
		r.instruction(e.goal.Instruction, false)
		r.button("Back to Search")
		r.button("< Prev")
		switch e.page {
		case PageDescription:
			r.text(p.Description)
		case PageFeatures:
			for _, b := range p.BulletPoints {
				r.indented(b)
			}
		case PageAttributes:
			for _, a := range p.Attributes {
				r.indented(a)
			}
			r.text(p.Category)
			r.text(p.Query)
			r.text(p.ProductCategory)
		}
	case PageDone:
		r.text("Thank you for shopping with us!")
		r.text("Your score (min 0.0, max 1.0)")
		r.text(strconv.FormatFloat(e.lastReward, 'f', -1, 64))
	}
	text := r.sb.String()
	if r.rich && len(r.clicked) > 0 {
		var pre strings.Builder
		for i := len(r.clicked) - 1; i >= 0; i-- {
			pre.WriteString("You have clicked " + r.clicked[i] + ".\n")
		}
		text = pre.String() + text
	}
	e.obs = Observation{Page: e.page, Text: text, Instruction: e.goal.Instruction, HasSearchBar: e.page == PageSearch, Clickables: clk}
}

// itemURLState is the part of WebShop's item-page URL that can hold a quoted
// string: the search keywords joined by "+" and the selected options as
// Python's json.dumps of the {group: value} dict, in selection order.
func (e *Env) itemURLState() string {
	pairs := make([][2]string, len(e.options))
	for i, o := range e.options {
		pairs[i] = [2]string{o.group, o.value}
	}
	return strings.ReplaceAll(e.keywords, " ", "+") + "/" + strconv.Itoa(e.pageNum) + "/" + pyport.JSONObject(pairs)
}

// renderer writes visible strings in text mode (stripped, joined by
// " [SEP] ") or text_rich mode (one per line, buttons marked).
type renderer struct {
	sb      *strings.Builder
	rich    bool
	clicked []string
}

func (r *renderer) sep() {
	if !r.rich && r.sb.Len() > 0 {
		r.sb.WriteString(" [SEP] ")
	}
}

// text writes one visible string. Like BeautifulSoup over WebShop's pages,
// an empty string (no text node) and a lone "\n" (dropped by WebShop's
// converter) write nothing.
func (r *renderer) text(s string) {
	if s == "" || s == "\n" {
		return
	}
	if r.rich {
		r.sb.WriteString(s)
		r.sb.WriteByte('\n')
		return
	}
	r.sep()
	r.sb.WriteString(strings.TrimSpace(s))
}

// indented writes a bullet or attribute: one leading space in text_rich (the
// template's " {{bullet}}", so even an empty one is a text node there).
func (r *renderer) indented(s string) {
	if r.rich {
		r.sb.WriteByte(' ')
		r.sb.WriteString(s)
		r.sb.WriteByte('\n')
		return
	}
	r.sep()
	r.sb.WriteString(strings.TrimSpace(s))
}

func (r *renderer) instruction(ins string, searchPage bool) {
	if r.rich {
		if searchPage {
			r.sb.WriteString("Instruction: \n")
		} else {
			r.sb.WriteString("Instruction:\n")
		}
		r.text(ins)
		return
	}
	r.text("Instruction:")
	r.text(ins)
}

func (r *renderer) button(label string) {
	if r.rich {
		r.sb.WriteString("[button] " + label + " [button_]\n")
		return
	}
	r.text(label)
}

func (r *renderer) option(v string, clicked bool) {
	if v == "" || v == "\n" {
		return
	}
	if !r.rich {
		r.text(v)
		return
	}
	if clicked {
		r.clicked = append(r.clicked, v)
		r.sb.WriteString("  [clicked button] " + v + " [clicked button_]\n")
		return
	}
	r.sb.WriteString("  [button] " + v + " [button_]\n")
}

func (r *renderer) productLink(asin string, visited bool) {
	if !r.rich {
		r.text(asin)
		return
	}
	if visited {
		r.sb.WriteString("\n[clicked button] " + asin + " [clicked button_]\n")
		return
	}
	r.sb.WriteString("\n[button] " + asin + " [button_]\n")
}
