package shopgen

import (
	"embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"shopagent/env/webshopdata"
)

// The generator's curated data, embedded from data/ (see data/NOTICE.md):
// catalog.txt (WebShop's five categories with sub-category queries,
// breadcrumbs, product nouns, attribute pools, option kinds and prices),
// options.txt (option value pools), attributes.tsv (WebShop's 598 mined
// attribute phrases with a slot) and attributes_extra.tsv (phrases WebShop's
// human instructions use that the 1,000-product sample lacks, and spellings).

//go:embed data/catalog.txt data/options.txt data/attributes.tsv data/attributes_extra.tsv
var dataFS embed.FS

// slot says how a product text uses an attribute phrase.
type slot uint8

const (
	slotPre  slot = iota // adjective before the noun: "gluten free"
	slotWith             // feature or material: "stainless steel"
	slotFor              // use or purpose: "living room"
	slotType             // product-type phrase: "tank tops"
)

// attr is an attribute phrase (always WebShop's two-word mined form).
type attr struct {
	phrase   string
	slot     slot
	natural  string // how product text may write it ("easy to clean"), or ""
	category string // the category it was mined in first
	drop     bool   // mined noise ("shirts men"): parsed, never written by choice
}

// optKind is a pool of option values for one option group.
type optKind struct {
	key     string
	group   string
	ordered bool
	values  []string
}

type weighted struct {
	a *attr
	w float64
}

// sub is a sub-category: WebShop's "query" with its breadcrumb and pools.
type sub struct {
	cat     *category
	query   string
	path    string
	pre     string
	nouns   []string // Title Case product nouns
	say     []string // what shoppers call them (lowercase)
	pool    []weighted
	poolSum float64
	opts    []*optKind
	priceLo float64
	priceHi float64
	desc    []string
	heads   []string // singular head words of nouns and say
}

type category struct {
	name     string
	common   []string
	cdesc    []string
	brands   []string
	intros   []string
	benefits []string
	subs     []*sub
}

// data is everything the parser and the builder read; immutable once loaded.
type data struct {
	cats     []*category
	attrs    map[string]*attr    // canonical phrase -> attribute
	spell    map[string]*attr    // every accepted spelling (canonical too) -> attribute
	byFirst  map[string][]string // spellings by first word, longest first
	optKinds map[string]*optKind
	kinds    []*optKind        // optKinds in key order
	byHead   map[string][]*sub // singular head word -> sub-categories
	byPhrase map[string][]*sub // singular noun or say phrase -> sub-categories
	colors   []string          // WebShop's colour names
	colorSet map[string]bool
}

// loadData parses the embedded files once; they are part of the binary, so an
// error is a defect the package's tests catch.
var loadData = sync.OnceValues(parseData)

func dataLines(name string) ([]string, error) {
	b, err := dataFS.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseSlot(s string) (slot, bool, error) {
	switch s {
	case "pre":
		return slotPre, false, nil
	case "with":
		return slotWith, false, nil
	case "for":
		return slotFor, false, nil
	case "type":
		return slotType, false, nil
	case "drop":
		return slotType, true, nil
	}
	return 0, false, fmt.Errorf("bad slot %q", s)
}

func parseData() (*data, error) {
	d := &data{attrs: map[string]*attr{}, spell: map[string]*attr{}, optKinds: map[string]*optKind{},
		byHead: map[string][]*sub{}, byPhrase: map[string][]*sub{}, colorSet: map[string]bool{}}
	d.colors = webshopdata.Colors()
	for _, c := range d.colors {
		d.colorSet[c] = true
	}
	addSpelling := func(s string, a *attr) {
		s = strings.Join(strings.Fields(strings.ReplaceAll(s, "-", " ")), " ")
		if s != "" && d.spell[s] == nil {
			d.spell[s] = a
		}
	}

	lines, err := dataLines("data/attributes.tsv")
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) < 4 {
			return nil, fmt.Errorf("attributes.tsv: bad line %q", l)
		}
		sl, drop, err := parseSlot(f[3])
		if err != nil {
			return nil, fmt.Errorf("attributes.tsv: %q: %w", l, err)
		}
		if a := d.attrs[f[1]]; a != nil {
			continue // the same phrase mined in another category
		}
		a := &attr{phrase: f[1], slot: sl, category: f[0], drop: drop}
		if len(f) > 4 && f[4] != "" && f[4] != f[1] {
			a.natural = f[4]
		}
		d.attrs[a.phrase] = a
		addSpelling(a.phrase, a)
	}
	lines, err = dataLines("data/attributes_extra.tsv")
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) < 3 {
			return nil, fmt.Errorf("attributes_extra.tsv: bad line %q", l)
		}
		a := d.attrs[f[1]]
		if a == nil {
			sl, drop, err := parseSlot(f[2])
			if err != nil {
				return nil, fmt.Errorf("attributes_extra.tsv: %q: %w", l, err)
			}
			a = &attr{phrase: f[1], slot: sl, category: f[0], drop: drop}
			d.attrs[a.phrase] = a
			addSpelling(a.phrase, a)
		}
		if len(f) > 3 {
			for _, v := range splitList(f[3]) {
				addSpelling(v, a)
			}
		}
	}
	d.byFirst = map[string][]string{}
	for s := range d.spell {
		first, _, _ := strings.Cut(s, " ")
		d.byFirst[first] = append(d.byFirst[first], s)
	}
	for _, list := range d.byFirst {
		slices.SortFunc(list, func(a, b string) int {
			if n := len(strings.Fields(b)) - len(strings.Fields(a)); n != 0 {
				return n
			}
			return strings.Compare(a, b)
		})
	}

	lines, err = dataLines("data/options.txt")
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) != 4 {
			return nil, fmt.Errorf("options.txt: bad line %q", l)
		}
		k := &optKind{key: strings.TrimSpace(f[0]), group: strings.TrimSpace(f[1]),
			ordered: strings.TrimSpace(f[2]) == "ordered", values: splitList(f[3])}
		if len(k.values) < 2 {
			return nil, fmt.Errorf("options.txt: %s has fewer than 2 values", k.key)
		}
		d.optKinds[k.key] = k
		d.kinds = append(d.kinds, k)
	}
	slices.SortFunc(d.kinds, func(a, b *optKind) int { return strings.Compare(a.key, b.key) })

	if err := d.parseCatalog(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *data) parseCatalog() error {
	lines, err := dataLines("data/catalog.txt")
	if err != nil {
		return err
	}
	var cat *category
	var s *sub
	for _, l := range lines {
		l = strings.TrimSpace(l)
		key, val, _ := strings.Cut(l, " ")
		val = strings.TrimSpace(val)
		if key == "=" {
			cat = &category{name: val}
			d.cats = append(d.cats, cat)
			s = nil
			continue
		}
		if cat == nil {
			return fmt.Errorf("catalog.txt: %q before a category", l)
		}
		if key == "q" {
			s = &sub{cat: cat, query: val}
			cat.subs = append(cat.subs, s)
			continue
		}
		if s == nil {
			switch key {
			case "common":
				cat.common = splitList(val)
			case "cdesc":
				cat.cdesc = splitList(val)
			case "brand":
				cat.brands = splitList(val)
			case "intro":
				cat.intros = append(cat.intros, val)
			case "benefit":
				cat.benefits = append(cat.benefits, val)
			default:
				return fmt.Errorf("catalog.txt: unknown category line %q", l)
			}
			continue
		}
		switch key {
		case "path":
			s.path = val
		case "pre":
			s.pre = val
		case "noun":
			s.nouns = splitList(val)
		case "say":
			s.say = splitList(val)
		case "attr":
			for _, p := range splitList(val) {
				a := d.attrs[p]
				if a == nil {
					return fmt.Errorf("catalog.txt: %q: attribute %q is not in attributes.tsv", s.query, p)
				}
				s.pool = append(s.pool, weighted{a, 3})
			}
		case "opt":
			for _, k := range splitList(val) {
				ok := d.optKinds[k]
				if ok == nil {
					return fmt.Errorf("catalog.txt: %q: unknown option kind %q", s.query, k)
				}
				s.opts = append(s.opts, ok)
			}
		case "price":
			f := strings.Fields(val)
			if len(f) != 2 {
				return fmt.Errorf("catalog.txt: %q: bad price %q", s.query, val)
			}
			lo, err1 := strconv.ParseFloat(f[0], 64)
			hi, err2 := strconv.ParseFloat(f[1], 64)
			if err1 != nil || err2 != nil || lo <= 0 || hi < lo {
				return fmt.Errorf("catalog.txt: %q: bad price %q", s.query, val)
			}
			s.priceLo, s.priceHi = lo, hi
		case "desc":
			s.desc = splitList(val)
		default:
			return fmt.Errorf("catalog.txt: unknown line %q", l)
		}
	}
	for _, c := range d.cats {
		if len(c.subs) == 0 || len(c.brands) == 0 || len(c.intros) == 0 || len(c.benefits) < 6 {
			return fmt.Errorf("catalog.txt: category %q is incomplete", c.name)
		}
		for _, s := range c.subs {
			if s.path == "" || len(s.nouns) == 0 || len(s.pool) == 0 || s.priceHi == 0 {
				return fmt.Errorf("catalog.txt: sub-category %q is incomplete", s.query)
			}
			in := map[string]bool{}
			for _, w := range s.pool {
				in[w.a.phrase] = true
			}
			for _, p := range c.common {
				a := d.attrs[p]
				if a == nil {
					return fmt.Errorf("catalog.txt: %q: common attribute %q is not in attributes.tsv", c.name, p)
				}
				if !in[p] {
					s.pool = append(s.pool, weighted{a, 1})
				}
			}
			for _, w := range s.pool {
				s.poolSum += w.w
			}
			if len(s.say) == 0 {
				for _, n := range s.nouns {
					s.say = append(s.say, strings.ToLower(n))
				}
			}
			phrases := append(slices.Clone(s.say), s.nouns...)
			for _, p := range phrases {
				words := strings.Fields(strings.ToLower(strings.ReplaceAll(p, "-", " ")))
				if len(words) == 0 {
					continue
				}
				for i := range words {
					words[i] = singular(words[i])
				}
				h := words[len(words)-1]
				if !slices.Contains(s.heads, h) {
					s.heads = append(s.heads, h)
					d.byHead[h] = append(d.byHead[h], s)
				}
				key := strings.Join(words, " ")
				if !slices.Contains(d.byPhrase[key], s) {
					d.byPhrase[key] = append(d.byPhrase[key], s)
				}
			}
		}
	}
	return nil
}

// pluralOnly are words that end like plurals but have no singular use here
// ("pants" is not "pant", "dress" is not "dres").
var pluralOnly = map[string]bool{
	"pants": true, "shorts": true, "jeans": true, "leggings": true, "sweatpants": true, "glasses": true,
	"sunglasses": true, "scissors": true, "trousers": true, "tights": true, "clothes": true, "goggles": true,
	"pajamas": true, "overalls": true, "binoculars": true, "news": true, "series": true, "species": true,
	"tongs": true, "pliers": true, "briefs": true, "lounge": true, "swimwear": true, "dress": true,
	"glass": true, "grass": true, "class": true, "brass": true, "gas": true, "bus": true, "lens": true,
	"hummus": true, "asparagus": true, "citrus": true, "cactus": true, "octopus": true, "plus": true,
	"gps": true, "canvas": true, "mattress": true, "ss": true, "always": true,
}

// singular returns a word without a plural ending, by simple English rules.
func singular(w string) string {
	if pluralOnly[w] {
		return w
	}
	switch {
	case len(w) <= 3:
		return w
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		return w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "ves") && (strings.HasSuffix(w, "shelves") || strings.HasSuffix(w, "knives") || strings.HasSuffix(w, "leaves") || strings.HasSuffix(w, "wolves")):
		return w[:len(w)-3] + "f"
	case strings.HasSuffix(w, "sses"), strings.HasSuffix(w, "shes"), strings.HasSuffix(w, "ches"), strings.HasSuffix(w, "xes"), strings.HasSuffix(w, "zes"):
		return w[:len(w)-2]
	case strings.HasSuffix(w, "ss"), strings.HasSuffix(w, "us"), strings.HasSuffix(w, "is"):
		return w
	case strings.HasSuffix(w, "s"):
		return w[:len(w)-1]
	}
	return w
}
