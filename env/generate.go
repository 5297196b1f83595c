package env

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The built-in shop generator writes WebShop's three data files (ProductsFile,
// AttributesFile, HumanInsFile) for a synthetic catalogue, so the whole system
// runs without WebShop's 1.18M-product download. Its data (categories,
// sub-category queries, breadcrumbs, product nouns, WebShop's mined attribute
// phrases, option pools and the openings of WebShop's human instructions) is
// embedded from gendata/; see gendata/NOTICE.md.
//
// Products come in families: a base product and near-duplicate siblings that
// share its brand, title words and text but differ in one attribute, in one
// option group or in price, so that the first search result is often not the
// product an instruction asks for. Every product of a family is written, in a
// shuffled order, with a unique ASIN.

//go:embed gendata/catalog.txt gendata/options.txt gendata/attributes.tsv gendata/openings.tsv
var genFS embed.FS

// GenConfig holds the generator's knobs. Start from DefaultGenConfig and change
// what you need; Generate uses every field as given.
type GenConfig struct {
	// Products is the number of products, 100 .. 1,181,436 (WebShop's full
	// catalogue size). Default 1,000.
	Products int
	// Seed selects the catalogue; the same config gives byte-identical files.
	// Default 1.
	Seed int64

	// FamilyRate is the probability that a new product family gets
	// near-duplicate siblings (distractors). Default 0.6, which puts about 80%
	// of products in a family of two or more.
	FamilyRate float64
	// MaxFamilySize is the largest family (base plus siblings); a family with
	// siblings has 2..MaxFamilySize products, uniformly. Default 6.
	MaxFamilySize int

	// MaxOptionGroups caps the option groups (color, size, flavor name, ...) of
	// a product, 0..3; products get 0..MaxOptionGroups groups (about 8% none,
	// 32% one, 42% two, 18% three), limited by what the sub-category offers.
	// Default 3.
	MaxOptionGroups int
	// MaxOptionValues caps the values of one option group; a group has
	// 2..MaxOptionValues values, most often 3 to 6. Default 10.
	MaxOptionValues int

	// HumanInsRate is the fraction of products with entries in HumanInsFile
	// (WebShop's human instructions, from which the goal loader makes human
	// goals). Default 0.6.
	HumanInsRate float64
	// MaxHumanIns is the most instructions one such product gets; the count is
	// 1..MaxHumanIns, weighted 50/30/20 for the default 3, so a 1,000-product
	// shop has about 1,000 human instructions. Default 3.
	MaxHumanIns int
	// SyntheticInsRate is the fraction of products with at least two
	// attributes that get WebShop's synthetic "Find me ..." instruction in
	// AttributesFile (source of synthetic goals). Default 0.4 (WebShop's
	// 1,000-product file has 41.5%).
	SyntheticInsRate float64

	// PriceRangeRate is the fraction of products priced as a range
	// ("$5.99 - $7.99"). Default 0.12.
	PriceRangeRate float64
	// NoPriceRate is the fraction of products with empty pricing (WebShop then
	// uses $100.0). Default 0.02.
	NoPriceRate float64
	// ImageRate is the fraction of products with one (fake) image URL; the
	// others have an empty images list. Default 0.9.
	ImageRate float64
}

// DefaultGenConfig returns the defaults used by `shopagent env generate` and
// `make demo`: 1,000 products from seed 1 (see GenConfig for each knob).
func DefaultGenConfig() GenConfig {
	return GenConfig{
		Products:         1000,
		Seed:             1,
		FamilyRate:       0.6,
		MaxFamilySize:    6,
		MaxOptionGroups:  3,
		MaxOptionValues:  10,
		HumanInsRate:     0.6,
		MaxHumanIns:      3,
		SyntheticInsRate: 0.4,
		PriceRangeRate:   0.12,
		NoPriceRate:      0.02,
		ImageRate:        0.9,
	}
}

// GenMaxProducts is the largest catalogue Generate makes (WebShop's size).
const GenMaxProducts = 1181436

// genWindow is the number of products generated (and shuffled) together;
// windows are independent, which makes the output identical for any
// GOMAXPROCS.
const genWindow = 1000

func (c GenConfig) validate() error {
	rate := func(name string, v float64) error {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("generate: %s = %v, want 0..1", name, v)
		}
		return nil
	}
	switch {
	case c.Products < 100 || c.Products > GenMaxProducts:
		return fmt.Errorf("generate: Products = %d, want 100..%d", c.Products, GenMaxProducts)
	case c.MaxFamilySize < 1:
		return fmt.Errorf("generate: MaxFamilySize = %d, want >= 1 (start from DefaultGenConfig)", c.MaxFamilySize)
	case c.MaxOptionGroups < 0 || c.MaxOptionGroups > 3:
		return fmt.Errorf("generate: MaxOptionGroups = %d, want 0..3", c.MaxOptionGroups)
	case c.MaxOptionGroups > 0 && c.MaxOptionValues < 2:
		return fmt.Errorf("generate: MaxOptionValues = %d, want >= 2", c.MaxOptionValues)
	case c.HumanInsRate > 0 && c.MaxHumanIns < 1:
		return fmt.Errorf("generate: MaxHumanIns = %d, want >= 1", c.MaxHumanIns)
	}
	for _, r := range []struct {
		n string
		v float64
	}{{"FamilyRate", c.FamilyRate}, {"HumanInsRate", c.HumanInsRate}, {"SyntheticInsRate", c.SyntheticInsRate},
		{"PriceRangeRate", c.PriceRangeRate}, {"NoPriceRate", c.NoPriceRate}, {"ImageRate", c.ImageRate}} {
		if err := rate(r.n, r.v); err != nil {
			return err
		}
	}
	if c.PriceRangeRate+c.NoPriceRate > 1 {
		return errors.New("generate: PriceRangeRate + NoPriceRate > 1")
	}
	return nil
}

// ---------------------------------------------------------------------------
// Embedded data.

type genSlot uint8

const (
	genSlotPre  genSlot = iota // adjective before the noun: "gluten free"
	genSlotWith                // feature or material: "stainless steel"
	genSlotFor                 // use or purpose: "living room"
	genSlotType                // product-type phrase: "tank tops"
)

type genAttr struct {
	phrase  string
	slot    genSlot
	natural string // how people write it ("easy to clean"), or ""
}

type genOptKind struct {
	key     string
	group   string
	ordered bool
	values  []string
}

type genWeighted struct {
	attr   *genAttr
	weight float64
}

type genSub struct {
	cat      *genCategory
	query    string
	path     string
	pre      string // "Men's"
	nouns    []string
	say      []string
	pool     []genWeighted
	poolSum  float64
	implied  [][]*genAttr          // per noun
	descImp  map[string][]*genAttr // per title word
	opts     []*genOptKind
	priceLo  float64
	priceHi  float64
	desc     []string
	sayByNom [][]string // per noun: shopper words that fit it
}

type genCategory struct {
	name     string
	common   []string
	cdesc    []string
	brands   []string
	intros   []string
	benefits []string
	subs     []*genSub
}

type genOpening struct {
	text    string
	article float64 // probability of an article after it
}

type genData struct {
	cats     []*genCategory
	attrs    map[string]*genAttr
	phrases  []string            // every usable attribute phrase, for implied attributes
	byFirst  map[string][]string // phrases by their first word
	opens    []genOpening
	openCum  []float64
	optKinds map[string]*genOptKind
}

var (
	genDataOnce sync.Once
	genDataVal  *genData
	genDataErr  error
)

func loadGenData() (*genData, error) {
	genDataOnce.Do(func() { genDataVal, genDataErr = parseGenData() })
	return genDataVal, genDataErr
}

func genLines(name string) ([]string, error) {
	b, err := genFS.ReadFile(name)
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

func genList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseGenData() (*genData, error) {
	d := &genData{attrs: map[string]*genAttr{}, optKinds: map[string]*genOptKind{}}

	// attributes.tsv
	lines, err := genLines("gendata/attributes.tsv")
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) < 4 {
			return nil, fmt.Errorf("attributes.tsv: bad line %q", l)
		}
		phrase, slotName := f[1], f[3]
		if slotName == "drop" || d.attrs[phrase] != nil {
			continue
		}
		a := &genAttr{phrase: phrase}
		switch slotName {
		case "pre":
			a.slot = genSlotPre
		case "with":
			a.slot = genSlotWith
		case "for":
			a.slot = genSlotFor
		case "type":
			a.slot = genSlotType
		default:
			return nil, fmt.Errorf("attributes.tsv: bad slot %q", slotName)
		}
		if len(f) > 4 && f[4] != "" && f[4] != phrase {
			a.natural = f[4]
		}
		d.attrs[phrase] = a
		d.phrases = append(d.phrases, phrase)
	}
	slices.Sort(d.phrases)
	d.byFirst = map[string][]string{}
	for _, p := range d.phrases {
		f, _, _ := strings.Cut(p, " ")
		d.byFirst[f] = append(d.byFirst[f], p)
	}

	// options.txt
	lines, err = genLines("gendata/options.txt")
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) != 4 {
			return nil, fmt.Errorf("options.txt: bad line %q", l)
		}
		k := &genOptKind{key: strings.TrimSpace(f[0]), group: strings.TrimSpace(f[1]),
			ordered: strings.TrimSpace(f[2]) == "ordered", values: genList(f[3])}
		if len(k.values) < 2 {
			return nil, fmt.Errorf("options.txt: %s has fewer than 2 values", k.key)
		}
		d.optKinds[k.key] = k
	}

	// openings.tsv
	lines, err = genLines("gendata/openings.tsv")
	if err != nil {
		return nil, err
	}
	total := 0.0
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("openings.tsv: bad line %q", l)
		}
		n, err1 := strconv.Atoi(f[0])
		art, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("openings.tsv: bad line %q", l)
		}
		total += float64(n)
		d.opens = append(d.opens, genOpening{text: f[1], article: float64(art) / 100})
		d.openCum = append(d.openCum, total)
	}
	for i := range d.openCum {
		d.openCum[i] /= total
	}

	// catalog.txt
	lines, err = genLines("gendata/catalog.txt")
	if err != nil {
		return nil, err
	}
	var cat *genCategory
	var sub *genSub
	for _, l := range lines {
		l = strings.TrimSpace(l)
		key, val, _ := strings.Cut(l, " ")
		val = strings.TrimSpace(val)
		if key == "=" {
			cat = &genCategory{name: val}
			d.cats = append(d.cats, cat)
			sub = nil
			continue
		}
		if cat == nil {
			return nil, fmt.Errorf("catalog.txt: %q before a category", l)
		}
		if key == "q" {
			sub = &genSub{cat: cat, query: val}
			cat.subs = append(cat.subs, sub)
			continue
		}
		if sub == nil {
			switch key {
			case "common":
				cat.common = genList(val)
			case "cdesc":
				cat.cdesc = genList(val)
			case "brand":
				cat.brands = genList(val)
			case "intro":
				cat.intros = append(cat.intros, val)
			case "benefit":
				cat.benefits = append(cat.benefits, val)
			default:
				return nil, fmt.Errorf("catalog.txt: unknown category line %q", l)
			}
			continue
		}
		switch key {
		case "path":
			sub.path = val
		case "pre":
			sub.pre = val
		case "noun":
			sub.nouns = genList(val)
		case "say":
			sub.say = genList(val)
		case "attr":
			for _, p := range genList(val) {
				a := d.attrs[p]
				if a == nil {
					return nil, fmt.Errorf("catalog.txt: %q: attribute %q is not in attributes.tsv", sub.query, p)
				}
				sub.pool = append(sub.pool, genWeighted{a, 3})
			}
		case "opt":
			for _, k := range genList(val) {
				ok := d.optKinds[k]
				if ok == nil {
					return nil, fmt.Errorf("catalog.txt: %q: unknown option kind %q", sub.query, k)
				}
				sub.opts = append(sub.opts, ok)
			}
		case "price":
			f := strings.Fields(val)
			if len(f) != 2 {
				return nil, fmt.Errorf("catalog.txt: %q: bad price %q", sub.query, val)
			}
			lo, err1 := strconv.ParseFloat(f[0], 64)
			hi, err2 := strconv.ParseFloat(f[1], 64)
			if err1 != nil || err2 != nil || lo <= 0 || hi < lo {
				return nil, fmt.Errorf("catalog.txt: %q: bad price %q", sub.query, val)
			}
			sub.priceLo, sub.priceHi = lo, hi
		case "desc":
			sub.desc = genList(val)
		default:
			return nil, fmt.Errorf("catalog.txt: unknown line %q", l)
		}
	}
	for _, c := range d.cats {
		if len(c.subs) == 0 || len(c.brands) == 0 || len(c.intros) == 0 || len(c.benefits) < 6 {
			return nil, fmt.Errorf("catalog.txt: category %q is incomplete", c.name)
		}
		for _, s := range c.subs {
			if err := d.finishSub(s); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// impliedAttrs returns the attribute phrases contained in s (lowercased), as
// WebShop's miner would find them in a title.
func (d *genData) impliedAttrs(s string) []*genAttr {
	s = strings.ToLower(s)
	var out []*genAttr
	for _, p := range d.phrases {
		if strings.Contains(s, p) {
			out = append(out, d.attrs[p])
		}
	}
	return out
}

// scanPhrases returns the attribute phrases that start at a word of s
// (lowercase): the words of a title can meet across its parts ("Beauty" +
// "Salon Grade" holds "beauty salon").
func (d *genData) scanPhrases(s string, dst []*genAttr) []*genAttr {
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '-' && s[j] != ',' {
			j++
		}
		for _, p := range d.byFirst[s[i:j]] {
			if strings.HasPrefix(s[i:], p) && !slices.Contains(dst, d.attrs[p]) {
				dst = append(dst, d.attrs[p])
			}
		}
		for j < len(s) && (s[j] == ' ' || s[j] == '-' || s[j] == ',') {
			j++
		}
		i = j
	}
	return dst
}

func (d *genData) finishSub(s *genSub) error {
	if s.path == "" || len(s.nouns) == 0 || len(s.pool) == 0 || s.priceHi == 0 {
		return fmt.Errorf("catalog.txt: sub-category %q is incomplete", s.query)
	}
	if strings.Count(s.path, " › ") < 2 {
		return fmt.Errorf("catalog.txt: %q: breadcrumb %q too short", s.query, s.path)
	}
	inPool := map[string]bool{}
	for _, w := range s.pool {
		inPool[w.attr.phrase] = true
	}
	for _, p := range s.cat.common {
		a := d.attrs[p]
		if a == nil {
			return fmt.Errorf("catalog.txt: %q: common attribute %q is not in attributes.tsv", s.cat.name, p)
		}
		if !inPool[p] {
			s.pool = append(s.pool, genWeighted{a, 1})
			inPool[p] = true
		}
	}
	for _, w := range s.pool {
		s.poolSum += w.weight
	}
	s.implied = make([][]*genAttr, len(s.nouns))
	for i, n := range s.nouns {
		s.implied[i] = d.impliedAttrs(n)
	}
	s.descImp = map[string][]*genAttr{}
	for _, w := range append(slices.Clone(s.desc), s.cat.cdesc...) {
		s.descImp[w] = d.impliedAttrs(w)
	}
	if s.pre != "" {
		s.descImp[s.pre] = d.impliedAttrs(s.pre)
	}
	if len(s.say) == 0 {
		for _, n := range s.nouns {
			s.say = append(s.say, strings.ToLower(n))
		}
	}
	// Shopper words fitting each noun: a part of it ("boots" for "ankle
	// boots"), the bare head word, or the same words spelt differently
	// ("t shirt" for "t-shirt").
	s.sayByNom = make([][]string, len(s.nouns))
	for i, n := range s.nouns {
		ln := strings.ToLower(n)
		nw := strings.Fields(strings.ReplaceAll(ln, "-", " "))
		for _, w := range s.say {
			if w == ln {
				continue
			}
			ww := strings.Fields(strings.ReplaceAll(w, "-", " "))
			if genHead(w) != genHead(ln) {
				continue // another kind of product ("remote control" for "remote control cover")
			}
			fits := len(ww) == 1 || strings.Contains(" "+strings.Join(nw, " ")+" ", " "+strings.Join(ww, " ")+" ")
			if !fits && len(ww) == len(nw) {
				fits = true
				for j := range ww {
					if genHead(ww[j]) != genHead(nw[j]) {
						fits = false
					}
				}
			}
			if fits {
				s.sayByNom[i] = append(s.sayByNom[i], w)
			}
		}
	}
	return nil
}

// genHead is the last word of a noun phrase without a plural "s".
func genHead(s string) string {
	f := strings.Fields(strings.ReplaceAll(s, "-", " "))
	if len(f) == 0 {
		return ""
	}
	h := f[len(f)-1]
	if strings.HasSuffix(h, "es") && (strings.HasSuffix(h, "shes") || strings.HasSuffix(h, "ches") || strings.HasSuffix(h, "xes")) {
		return h[:len(h)-2]
	}
	if strings.HasSuffix(h, "s") && !strings.HasSuffix(h, "ss") {
		return h[:len(h)-1]
	}
	return h
}

// ---------------------------------------------------------------------------
// Randomness helpers.

func genSplitMix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// genHash mixes a seed with a string: per-family text decisions keyed by the
// attribute they concern, so siblings share every decision but the one that
// differs.
func genHash(seed uint64, s string, salt uint64) uint64 {
	h := seed ^ (salt * 0xD6E8FEB86659FD93)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 0x100000001B3
	}
	return genSplitMix(h)
}

func genPct(seed uint64, s string, salt uint64) int { return int(genHash(seed, s, salt) % 100) }

func genPick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// genWeightedIndex picks an index with the given weights.
func genWeightedIndex(r *rand.Rand, w []float64) int {
	sum := 0.0
	for _, x := range w {
		sum += x
	}
	u := r.Float64() * sum
	for i, x := range w {
		if u < x {
			return i
		}
		u -= x
	}
	return len(w) - 1
}

// ---------------------------------------------------------------------------
// ASINs: a keyed Feistel permutation of the product index onto 36^8 codes.

const genASINSpace = 2821109907456 // 36^8

type genASINer struct{ keys [4]uint64 }

func newGenASINer(seed int64) genASINer {
	var a genASINer
	s := uint64(seed) ^ 0xA5A5A5A5_5A5A5A5A
	for i := range a.keys {
		s = genSplitMix(s + uint64(i))
		a.keys[i] = s
	}
	return a
}

func (a genASINer) permute(x uint64) uint64 {
	const half, mask = 21, 1<<21 - 1
	for {
		l, r := x>>half, x&mask
		for _, k := range a.keys {
			l, r = r, l^(genSplitMix(r^k)&mask)
		}
		x = l<<half | r
		if x < genASINSpace {
			return x
		}
	}
}

func (a genASINer) asin(i int) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	v := a.permute(uint64(i))
	var b [10]byte
	b[0], b[1] = 'B', '0'
	for j := 9; j >= 2; j-- {
		b[j] = digits[v%36]
		v /= 36
	}
	return string(b[:])
}

// ---------------------------------------------------------------------------
// Products.

type genOption struct {
	kind   *genOptKind
	values []string // as written in the file
	lower  []string // the same, lowercase (as in options.txt)
}

type genProduct struct {
	sub     *genSub
	brand   string
	noun    int
	descs   []string
	attrs   []*genAttr // the product's attributes, implied ones included
	implied map[*genAttr]bool
	opts    []genOption
	price   float64
	priceHi float64 // > price for a range
	noPrice bool
	image   bool
	famSeed uint64
	variant int // 0 for the base product
	// What sets the product apart from some family member: attributes the
	// other lacks, and per option kind the values the other lacks.
	distinct     []*genAttr
	distinctVals map[*genOptKind][]string
}

type genWorker struct {
	d   *genData
	cfg *GenConfig
	r   *rand.Rand
}

var genBrandCores = []string{"Vel", "Kor", "Lum", "Mira", "Zen", "Nov", "Aur", "Bel", "Cal", "Dor", "Ev", "Fio",
	"Gla", "Hav", "Iso", "Jun", "Kai", "Lor", "Mav", "Nor", "Oak", "Pra", "Quin", "Rho", "Sol", "Tru", "Ul", "Vio",
	"Wex", "Xan", "Yor", "Zel", "Ari", "Bri", "Cor", "Dav", "Eli", "Fen", "Gal", "Hal", "Ivo", "Jas", "Kes", "Lyn",
	"Mor", "Nyx", "Ori", "Pel", "Ren", "Sav", "Tal", "Ver", "Wil", "Zor"}
var genBrandEnds = []string{"a", "ix", "on", "ora", "ella", "ify", "ex", "io", "ara", "ent", "ly", "ano", "eni", "is",
	"ova", "et", "ado", "ine", "usa", "ar"}

func (w *genWorker) brand(c *genCategory) string {
	b := genPick(w.r, genBrandCores) + genPick(w.r, genBrandEnds)
	if w.r.IntN(100) < 30 {
		b = genPick(w.r, genBrandCores) + strings.ToLower(b)
	}
	if w.r.IntN(100) < 55 {
		sfx := genPick(w.r, c.brands)
		if sfx[0] >= 'a' && sfx[0] <= 'z' {
			b += sfx
		} else {
			b += " " + sfx
		}
	}
	if w.r.IntN(100) < 8 {
		b = strings.ToUpper(b)
	}
	return b
}

// related reports whether two phrases overlap as substrings (such pairs would
// make the reward's substring check match an attribute the product lacks).
func genRelated(a, b string) bool { return strings.Contains(a, b) || strings.Contains(b, a) }

func (p *genProduct) hasRelated(phrase string) bool {
	for _, a := range p.attrs {
		if genRelated(a.phrase, phrase) {
			return true
		}
	}
	return false
}

// drawAttr draws a pool attribute not related to any of p's.
func (w *genWorker) drawAttr(p *genProduct, needNonType bool) *genAttr {
	s := p.sub
	for try := 0; try < 40; try++ {
		u := w.r.Float64() * s.poolSum
		var a *genAttr
		for _, x := range s.pool {
			if u < x.weight {
				a = x.attr
				break
			}
			u -= x.weight
		}
		if a == nil {
			a = s.pool[len(s.pool)-1].attr
		}
		if needNonType && a.slot == genSlotType {
			continue
		}
		if !p.hasRelated(a.phrase) {
			return a
		}
	}
	return nil
}

// nearAttr draws, most of the time, a pool attribute sharing a word with old
// ("dairy free" for "gluten free", "short sleeve" for "long sleeve"): such
// siblings read almost the same to a search engine.
func (w *genWorker) nearAttr(p *genProduct, old *genAttr) *genAttr {
	if w.r.IntN(100) >= 75 {
		return nil
	}
	ow := strings.Fields(old.phrase)
	var cands []*genAttr
	for _, x := range p.sub.pool {
		a := x.attr
		if a == old || (old.slot != genSlotType && a.slot == genSlotType) || p.hasRelated(a.phrase) {
			continue
		}
		for _, wd := range strings.Fields(a.phrase) {
			if slices.Contains(ow, wd) {
				cands = append(cands, a)
				break
			}
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return genPick(w.r, cands)
}

var genAttrCountW = []float64{0, 25, 30, 24, 13, 8} // 1..5 attributes
var genGroupCountW = []float64{8, 32, 42, 18}       // 0..3 option groups
var genValueCountW = []float64{0, 0, 10, 16, 17, 15, 12, 10, 8, 6, 6}

func (w *genWorker) newOption(k *genOptKind, caseStyle int, avoid []string) genOption {
	n := 2 + genWeightedIndex(w.r, genValueCountW[2:min(len(genValueCountW), w.cfg.MaxOptionValues+1)])
	n = min(n, len(k.values))
	var vals []string
	for try := 0; try < 8; try++ {
		if k.ordered {
			start := w.r.IntN(len(k.values) - n + 1)
			vals = slices.Clone(k.values[start : start+n])
		} else {
			idx := w.r.Perm(len(k.values))[:n]
			slices.Sort(idx)
			vals = vals[:0]
			for _, i := range idx {
				vals = append(vals, k.values[i])
			}
		}
		if avoid == nil || !slices.Equal(vals, avoid) {
			break
		}
	}
	cased := make([]string, len(vals))
	for i, v := range vals {
		cased[i] = genCaseValue(v, caseStyle)
	}
	return genOption{kind: k, values: cased, lower: vals}
}

func genCaseValue(v string, style int) string {
	switch style {
	case 0:
		return genTitleCase(v)
	case 1:
		return v
	default:
		return strings.ToUpper(v[:1]) + v[1:]
	}
}

func (w *genWorker) newPrice(s *genSub) float64 {
	lo, hi := math.Log(s.priceLo), math.Log(s.priceHi)
	return genRoundPrice(w.r, math.Exp(lo+(hi-lo)*w.r.Float64()))
}

func genRoundPrice(r *rand.Rand, v float64) float64 {
	whole := math.Floor(v)
	if whole < 1 {
		whole = 1
	}
	switch x := r.IntN(100); {
	case x < 60:
		return whole + 0.99
	case x < 70:
		return whole + 0.95
	case x < 78:
		return whole + 0.49
	case x < 88:
		return whole
	default:
		return whole + float64(r.IntN(100))/100
	}
}

// family makes a base product and its near-duplicate siblings.
func (w *genWorker) family() []*genProduct {
	cfg, r := w.cfg, w.r
	cat := w.d.cats[r.IntN(len(w.d.cats))]
	s := cat.subs[r.IntN(len(cat.subs))]
	base := &genProduct{sub: s, brand: w.brand(cat), noun: r.IntN(len(s.nouns)), famSeed: r.Uint64(),
		implied: map[*genAttr]bool{}}
	if len(s.desc) > 0 && r.IntN(100) < 70 {
		base.descs = append(base.descs, genPick(r, s.desc))
	}
	if len(cat.cdesc) > 0 && r.IntN(100) < 40 {
		if d := genPick(r, cat.cdesc); !slices.Contains(base.descs, d) {
			base.descs = append([]string{d}, base.descs...)
		}
	}
	// Implied attributes: phrases the title words contain.
	addImplied := func(as []*genAttr) {
		for _, a := range as {
			if !slices.Contains(base.attrs, a) {
				base.attrs = append(base.attrs, a)
				base.implied[a] = true
			}
		}
	}
	addImplied(s.implied[base.noun])
	for _, d := range base.descs {
		addImplied(s.descImp[d])
	}
	if s.pre != "" {
		addImplied(s.descImp[s.pre])
	}
	k := genWeightedIndex(r, genAttrCountW)
	for i := 0; i < k; i++ {
		if a := w.drawAttr(base, i == 0); a != nil {
			base.attrs = append(base.attrs, a)
		}
	}
	// Options.
	caseStyle := genWeightedIndex(r, []float64{60, 30, 10})
	ng := genWeightedIndex(r, genGroupCountW[:cfg.MaxOptionGroups+1])
	ng = min(ng, len(s.opts))
	if ng > 0 {
		idx := r.Perm(len(s.opts))[:ng]
		slices.Sort(idx)
		for _, i := range idx {
			base.opts = append(base.opts, w.newOption(s.opts[i], caseStyle, nil))
		}
	}
	// Price.
	base.price = w.newPrice(s)
	switch u := r.Float64(); {
	case u < cfg.NoPriceRate:
		base.noPrice = true
	case u < cfg.NoPriceRate+cfg.PriceRangeRate:
		base.priceHi = genRoundPrice(r, base.price*(1.15+0.9*r.Float64()))
		if base.priceHi <= base.price {
			base.priceHi = base.price + 1
		}
	}
	base.image = r.Float64() < cfg.ImageRate

	size := 1
	if cfg.MaxFamilySize > 1 && r.Float64() < cfg.FamilyRate {
		size = 2 + r.IntN(cfg.MaxFamilySize-1)
	}
	fam := []*genProduct{base}
	for v := 1; v < size; v++ {
		fam = append(fam, w.sibling(base, v, caseStyle))
	}
	if len(fam) > 1 {
		genMarkDistinct(fam)
	}
	return fam
}

// genMarkDistinct records, for each family member, the attributes and option
// values some other member lacks; instructions prefer to ask for those.
func genMarkDistinct(fam []*genProduct) {
	for _, p := range fam {
		for _, a := range p.attrs {
			for _, q := range fam {
				if q != p && !q.hasRelated(a.phrase) {
					p.distinct = append(p.distinct, a)
					break
				}
			}
		}
		for _, o := range p.opts {
			var vals []string
			for vi, lv := range o.lower {
				for _, q := range fam {
					if q == p {
						continue
					}
					qi := slices.IndexFunc(q.opts, func(x genOption) bool { return x.kind == o.kind })
					if qi < 0 || !slices.Contains(q.opts[qi].lower, lv) {
						vals = append(vals, o.values[vi])
						break
					}
				}
			}
			if len(vals) > 0 {
				if p.distinctVals == nil {
					p.distinctVals = map[*genOptKind][]string{}
				}
				p.distinctVals[o.kind] = vals
			}
		}
	}
}

func (p *genProduct) clone() *genProduct {
	q := *p
	q.attrs = slices.Clone(p.attrs)
	q.opts = slices.Clone(p.opts)
	q.descs = slices.Clone(p.descs)
	q.implied = maps.Clone(p.implied)
	return &q
}

// sibling copies base and changes one thing: an attribute, an option group or
// the price.
func (w *genWorker) sibling(base *genProduct, v int, caseStyle int) *genProduct {
	r := w.r
	p := base.clone()
	p.variant = v
	p.image = r.Float64() < w.cfg.ImageRate
	kind := genWeightedIndex(r, []float64{40, 35, 25})
	if kind == 0 { // swap one drawn attribute for another
		var drawn []int
		for i, a := range p.attrs {
			if !p.implied[a] {
				drawn = append(drawn, i)
			}
		}
		if len(drawn) > 0 {
			i := genPick(r, drawn)
			old := p.attrs[i]
			p.attrs = slices.Delete(p.attrs, i, i+1)
			a := w.nearAttr(p, old)
			if a == nil {
				a = w.drawAttr(p, old.slot != genSlotType)
			}
			if a != nil && a != old {
				p.attrs = slices.Insert(p.attrs, i, a)
				return p
			}
			p.attrs = slices.Insert(p.attrs, i, old)
		}
		kind = 1
	}
	if kind == 1 && len(p.sub.opts) > 0 && w.cfg.MaxOptionGroups > 0 {
		switch {
		case len(p.opts) > 0 && r.IntN(100) < 70: // other values for one group
			i := r.IntN(len(p.opts))
			o := p.opts[i]
			p.opts[i] = w.newOption(o.kind, caseStyle, o.lower)
			return p
		case len(p.opts) > 0 && r.IntN(100) < 50: // one group fewer
			i := r.IntN(len(p.opts))
			p.opts = slices.Delete(p.opts, i, i+1)
			return p
		case len(p.opts) < min(len(p.sub.opts), w.cfg.MaxOptionGroups): // one group more
			var free []*genOptKind
			for _, k := range p.sub.opts {
				if !slices.ContainsFunc(p.opts, func(o genOption) bool { return o.kind == k }) {
					free = append(free, k)
				}
			}
			k := genPick(r, free)
			p.opts = append(p.opts, w.newOption(k, caseStyle, nil))
			slices.SortStableFunc(p.opts, func(a, b genOption) int {
				return slices.Index(p.sub.opts, a.kind) - slices.Index(p.sub.opts, b.kind)
			})
			return p
		}
	}
	// price
	f := 2.2 + 1.8*r.Float64()
	if r.IntN(100) < 15 {
		f = 0.4 + 0.3*r.Float64()
	}
	p.price = genRoundPrice(r, max(1, base.price*f))
	if p.priceHi > 0 {
		p.priceHi = genRoundPrice(r, p.price*(1.15+0.9*r.Float64()))
		if p.priceHi <= p.price {
			p.priceHi = p.price + 1
		}
	}
	return p
}

// ---------------------------------------------------------------------------
// Text.

var genUpperWords = map[string]bool{"hd": true, "usb": true, "led": true, "tv": true, "hdmi": true, "vr": true,
	"ac": true, "dvd": true, "cd": true, "lcd": true, "fm": true, "sd": true, "tf": true, "bpa": true, "gmo": true,
	"usda": true, "pu": true, "lte": true, "vcr": true, "av": true, "ups": true, "ipl": true, "pd": true, "rgb": true,
	"ttl": true, "hdr": true, "bbq": true}
var genSmallWords = map[string]bool{"and": true, "for": true, "with": true, "of": true, "the": true, "in": true,
	"de": true, "a": true, "to": true}

// genTitleCase capitalises words Amazon-style ("x-large" -> "X-Large").
func genTitleCase(s string) string {
	words := strings.Split(s, " ")
	for i, wd := range words {
		if wd == "" {
			continue
		}
		if i > 0 && genSmallWords[wd] {
			continue
		}
		if genUpperWords[wd] {
			words[i] = strings.ToUpper(wd)
			continue
		}
		parts := strings.Split(wd, "-")
		for j, p := range parts {
			if genUpperWords[p] {
				parts[j] = strings.ToUpper(p)
			} else if p != "" && p[0] >= 'a' && p[0] <= 'z' {
				parts[j] = string(p[0]-32) + p[1:]
			}
		}
		words[i] = strings.Join(parts, "-")
	}
	return strings.Join(words, " ")
}

// form is how the product's text writes attribute a: the mined phrase or its
// natural wording, fixed per family.
func (p *genProduct) form(a *genAttr) string {
	if a.natural != "" && genPct(p.famSeed, a.phrase, 1) < 70 {
		return a.natural
	}
	return a.phrase
}

type genText struct {
	title   string
	bullets []string
	desc    string
}

func genCapFirst(s string) string {
	if s == "" {
		return s
	}
	if s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-32) + s[1:]
	}
	return s
}

func genJoinAnd(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	case 2:
		return xs[0] + " and " + xs[1]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

var genPreSentences = []string{"This {noun} {is} {a}.", "Key features: {a}.", "Designed to be {a}.", "You will love that it is {a}."}
var genWithSentences = []string{"Made with {a}.", "It features {a}.", "It comes with {a}.", "Crafted with {a} for lasting value."}
var genForSentences = []string{"Ideal for {a}.", "Perfect for {a}.", "A great choice for {a}.", "Made especially for {a}."}
var genTypeSentences = []string{"Shop with confidence for {a}.", "A dependable pick among {a}.", "Category: {a}."}

var genPreBullets = []string{"Our {noun} {is} {a}, just as you expect.", "{A} by design.", "Thoughtfully made to be {a}."}
var genWithBullets = []string{"Crafted with {a} for better results.", "Features {a}.", "Comes with {a}."}
var genForBullets = []string{"Designed for {a}.", "Great for {a}.", "Made with {a} in mind."}
var genTypeBullets = []string{"One of our best-selling {a}.", "Quality {a} you can rely on."}

func genFill(t, noun, a string) string {
	if genPlural(noun) {
		t = strings.ReplaceAll(t, "{is}", "are")
	} else {
		t = strings.ReplaceAll(t, "{is}", "is")
	}
	t = strings.ReplaceAll(t, "{noun}", noun)
	t = strings.ReplaceAll(t, "{A}", genCapFirst(a))
	return strings.ReplaceAll(t, "{a}", a)
}

func genSentences(slot genSlot) ([]string, []string) {
	switch slot {
	case genSlotPre:
		return genPreSentences, genPreBullets
	case genSlotWith:
		return genWithSentences, genWithBullets
	case genSlotFor:
		return genForSentences, genForBullets
	}
	return genTypeSentences, genTypeBullets
}

// render writes title, bullet points and description. Every decision is keyed
// by the family seed (and the attribute concerned), so siblings read alike.
func (p *genProduct) render() genText {
	s, fs := p.sub, p.famSeed
	noun := s.nouns[p.noun]
	lnoun := strings.ToLower(noun)

	// Where each drawn attribute goes.
	inTitle := map[*genAttr]bool{}
	nPre, nWith, nFor := 0, 0, 0
	var titlePre, titleWith, titleFor []string
	for _, a := range p.attrs {
		if p.implied[a] || genPct(fs, a.phrase, 2) >= 35 {
			continue
		}
		f := genTitleCase(p.form(a))
		switch a.slot {
		case genSlotPre, genSlotType:
			if nPre < 2 {
				titlePre = append(titlePre, f)
				nPre++
				inTitle[a] = true
			}
		case genSlotWith:
			if nWith < 1 {
				titleWith = append(titleWith, f)
				nWith++
				inTitle[a] = true
			}
		case genSlotFor:
			if nFor < 1 {
				titleFor = append(titleFor, f)
				nFor++
				inTitle[a] = true
			}
		}
	}

	// Title.
	var tb strings.Builder
	style := genHash(fs, "title", 3) % 3
	brandFirst := genPct(fs, "brand", 4) < 90
	if brandFirst {
		tb.WriteString(p.brand)
		tb.WriteByte(' ')
	}
	words := []string{}
	if s.pre != "" {
		words = append(words, s.pre)
	}
	words = append(words, p.descs...)
	if style == 2 {
		// "Brand Noun, Attr, Attr, with X"
		words = append(words, noun)
		tb.WriteString(strings.Join(words, " "))
		for _, x := range titlePre {
			tb.WriteString(", " + x)
		}
		for _, x := range titleWith {
			tb.WriteString(", with " + x)
		}
		for _, x := range titleFor {
			tb.WriteString(", for " + x)
		}
	} else {
		words = append(words, titlePre...)
		words = append(words, noun)
		tb.WriteString(strings.Join(words, " "))
		for _, x := range titleWith {
			tb.WriteString(" with " + x)
		}
		for _, x := range titleFor {
			tb.WriteString(" for " + x)
		}
		if style == 1 && len(s.cat.cdesc) > 0 {
			extra := s.cat.cdesc[genHash(fs, "extra", 5)%uint64(len(s.cat.cdesc))]
			if !slices.Contains(p.descs, extra) && len(s.descImp[extra]) == 0 {
				tb.WriteString(" - " + extra)
			}
		}
	}
	if !brandFirst {
		tb.WriteString(" by " + p.brand)
	}
	title := genDedupWords(tb.String())

	// Bullets: 3..6, attribute bullets and selling points in a family-fixed
	// order, so siblings list them alike.
	nb := 3 + int(genHash(fs, "nb", 6)%4)
	bulletStyle := genHash(fs, "bstyle", 7) % 3
	inBullet := map[*genAttr]bool{}
	type bul struct {
		key     uint64
		text    string
		benefit bool
	}
	var buls []bul
	for _, a := range p.attrs {
		if p.implied[a] || genPct(fs, a.phrase, 8) >= 60 || len(buls) >= nb-1 {
			continue
		}
		f := p.form(a)
		_, bt := genSentences(a.slot)
		body := genFill(bt[genHash(fs, a.phrase, 9)%uint64(len(bt))], lnoun, f)
		var text string
		switch bulletStyle {
		case 0:
			text = strings.ToUpper(f) + ": " + body
		case 1:
			text = genTitleCase(f) + " - " + body
		default:
			text = body
		}
		buls = append(buls, bul{genHash(fs, a.phrase, 10), text, false})
		inBullet[a] = true
	}
	benefits := s.cat.benefits
	bi := int(genHash(fs, "ben", 11) % uint64(len(benefits)))
	for j := 0; len(buls) < nb; j++ {
		text := benefits[(bi+j)%len(benefits)]
		if bulletStyle == 0 {
			heads := []string{"QUALITY", "SATISFACTION", "DETAILS", "WHY CHOOSE US", "NOTE", "SERVICE"}
			text = heads[(bi+j)%len(heads)] + ": " + text
		}
		buls = append(buls, bul{genHash(fs, text, 12), text, true})
	}
	slices.SortStableFunc(buls, func(a, b bul) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	if genPct(fs, "lead", 16) < 60 {
		// Lead with a selling point, as many listings do.
		if i := slices.IndexFunc(buls, func(b bul) bool { return b.benefit }); i > 0 {
			b := buls[i]
			copy(buls[1:i+1], buls[:i])
			buls[0] = b
		}
	}
	bullets := make([]string, len(buls))
	for i, b := range buls {
		bullets[i] = b.text
	}

	// Description: intro, attribute sentences by slot, two selling points.
	var db strings.Builder
	intro := s.cat.intros[genHash(fs, "intro", 13)%uint64(len(s.cat.intros))]
	intro = strings.ReplaceAll(intro, "{brand}", p.brand)
	intro = strings.ReplaceAll(intro, "{noun}", lnoun)
	db.WriteString(genCapFirst(intro))
	var bySlot [4][]string
	for _, a := range p.attrs {
		if p.implied[a] {
			continue
		}
		if genPct(fs, a.phrase, 14) < 30 || (!inTitle[a] && !inBullet[a]) {
			bySlot[a.slot] = append(bySlot[a.slot], p.form(a))
		}
	}
	for slot, xs := range bySlot {
		if len(xs) == 0 {
			continue
		}
		st, _ := genSentences(genSlot(slot))
		t := st[genHash(fs, "ds", uint64(20+slot))%uint64(len(st))]
		db.WriteByte(' ')
		db.WriteString(genFill(t, lnoun, genJoinAnd(xs)))
	}
	for j := 0; j < 2; j++ {
		db.WriteByte(' ')
		db.WriteString(benefits[(bi+nb+j)%len(benefits)])
	}
	if genPct(fs, "pkg", 15) < 35 {
		db.WriteString(" Package includes: 1 x " + lnoun + ".")
	}
	return genText{title: title, bullets: bullets, desc: db.String()}
}

// genDedupWords drops a word that repeats the word before it ("Ultra Ultra
// HD" -> "Ultra HD"), which title parts can produce.
func genDedupWords(s string) string {
	f := strings.Split(s, " ")
	out := f[:1]
	for _, w := range f[1:] {
		if !strings.EqualFold(w, out[len(out)-1]) {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}

func genFormatPrice(v float64) string { return "$" + strconv.FormatFloat(v, 'f', 2, 64) }

func (p *genProduct) pricing() string {
	switch {
	case p.noPrice:
		return ""
	case p.priceHi > 0:
		return genFormatPrice(p.price) + " - " + genFormatPrice(p.priceHi)
	}
	return genFormatPrice(p.price)
}

// ---------------------------------------------------------------------------
// Instructions.

func genNormOption(v string) string {
	return strings.ToLower(strings.TrimSpace(strings.ReplaceAll(v, "/", " | ")))
}

// synthetic writes WebShop's mined-instruction form: "Find me <pre> <query>
// with <with> for <for>".
func (p *genProduct) synthetic() (string, []string) {
	var pre, with, forr []string
	for _, a := range p.attrs {
		switch a.slot {
		case genSlotPre:
			pre = append(pre, a.phrase)
		case genSlotWith:
			with = append(with, a.phrase)
		case genSlotFor:
			forr = append(forr, a.phrase)
		}
	}
	var b strings.Builder
	b.WriteString("Find me ")
	if len(pre) > 0 {
		b.WriteString(strings.Join(pre, ", ") + " ")
	}
	b.WriteString(p.sub.query)
	if len(with) > 0 {
		b.WriteString(" with " + strings.Join(with, ", "))
	}
	if len(forr) > 0 {
		b.WriteString(" for " + strings.Join(forr, ", "))
	}
	attrs := append(append(pre, with...), forr...)
	return b.String(), attrs
}

func genPlural(np string) bool {
	f := strings.Fields(strings.ReplaceAll(np, "-", " "))
	if len(f) == 0 {
		return false
	}
	last := f[len(f)-1]
	return strings.HasSuffix(last, "s") && !strings.HasSuffix(last, "ss") && !strings.HasSuffix(last, "us") &&
		last != "lens"
}

type genClause struct {
	text     string // "with stainless steel"
	sentence string // the same as a second sentence, or ""
}

// instruction writes one human-style instruction for p, naming some of its
// attributes and option values.
func (w *genWorker) instruction(p *genProduct) (RawHumanInstruction, bool) {
	r, d := w.r, w.d
	var cand []*genAttr
	for _, a := range p.attrs {
		if a.slot != genSlotType {
			cand = append(cand, a)
		}
	}
	if len(cand) == 0 {
		cand = slices.Clone(p.attrs)
	}
	if len(cand) == 0 {
		return RawHumanInstruction{}, false
	}
	k := min(1+genWeightedIndex(r, []float64{30, 40, 30}), len(cand))
	r.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
	// Usually ask for what sets the product apart from its near duplicates.
	if len(p.distinct) > 0 && r.IntN(100) < 85 {
		want := genPick(r, p.distinct)
		if i := slices.Index(cand, want); i > 0 {
			cand[0], cand[i] = cand[i], cand[0]
		}
	}
	chosen := cand[:k]
	// Keep the product's order so the instruction reads naturally.
	slices.SortStableFunc(chosen, func(a, b *genAttr) int {
		return slices.Index(p.attrs, a) - slices.Index(p.attrs, b)
	})

	// Noun phrase. An attribute the title noun implies ("knee high" of
	// "knee high boots") is named by using that noun.
	s := p.sub
	noun := strings.ToLower(s.nouns[p.noun])
	nounImplied := false
	for _, a := range chosen {
		if p.implied[a] && slices.Contains(s.implied[p.noun], a) {
			nounImplied = true
		}
	}
	if alts := s.sayByNom[p.noun]; len(alts) > 0 && !nounImplied && r.IntN(100) < 50 {
		noun = genPick(r, alts)
	}
	plural := genPlural(noun)
	var preMods []string
	var clauses []genClause
	var thatIs []string

	// Options first: sizes and colours usually lead ("xx-large black hoodie").
	var optVals []string
	var optMods, optTail []string
	var optSent []genClause
	must := len(p.opts) > 0 && r.IntN(100) < 92
	for i, o := range p.opts {
		if len(optVals) >= 3 || (r.IntN(100) >= 75 && !(must && len(optVals) == 0 && i == len(p.opts)-1)) {
			continue
		}
		raw := genPick(r, o.values)
		if dv := p.distinctVals[o.kind]; len(dv) > 0 && r.IntN(100) < 85 {
			raw = genPick(r, dv)
		}
		norm := genNormOption(raw)
		optVals = append(optVals, norm)
		v := strings.ToLower(raw)
		if strings.Contains(v, "/") && r.IntN(100) < 60 {
			v = strings.ReplaceAll(v, "/", " and ")
		}
		mod, tail, sent := genOptionWords(r, o.kind.group, v)
		switch {
		case mod != "":
			optMods = append(optMods, mod)
		case tail != "":
			optTail = append(optTail, tail)
		default:
			optSent = append(optSent, genClause{sentence: sent})
		}
	}

	for _, a := range chosen {
		if nounImplied && slices.Contains(s.implied[p.noun], a) {
			continue // the noun says it
		}
		f := a.phrase
		if a.natural != "" && r.IntN(100) < 55 {
			f = a.natural
		}
		u := r.IntN(100)
		if p.implied[a] {
			preMods = append(preMods, f)
			continue
		}
		switch a.slot {
		case genSlotPre:
			if u < 50 {
				preMods = append(preMods, f)
			} else {
				thatIs = append(thatIs, f)
			}
		case genSlotWith:
			switch {
			case u < 55:
				clauses = append(clauses, genClause{"with " + f, "it should have " + f})
			case u < 70:
				clauses = append(clauses, genClause{genThat(plural, "has") + " " + f, genIt(plural) + " should come with " + f})
			case u < 88:
				clauses = append(clauses, genClause{"made with " + f, genIt(plural) + " should be made with " + f})
			default:
				preMods = append(preMods, f)
			}
		case genSlotFor:
			room := strings.HasSuffix(f, "room") || strings.HasSuffix(f, "office") || strings.HasSuffix(f, "theater")
			switch {
			case u < 20:
				preMods = append(preMods, f)
			case room && u < 60:
				clauses = append(clauses, genClause{"for my " + f, genIt(plural) + " is for my " + f})
			case u < 90:
				clauses = append(clauses, genClause{"for " + f, genIt(plural) + " should be good for " + f})
			default:
				clauses = append(clauses, genClause{"suitable for " + f, genIt(plural) + " needs to be suitable for " + f})
			}
		default:
			preMods = append(preMods, f)
		}
	}
	if len(thatIs) > 0 {
		verb := "is"
		if plural {
			verb = "are"
		}
		c := genClause{genThat(plural, verb) + " " + genJoinAnd(thatIs), "it should be " + genJoinAnd(thatIs)}
		if plural {
			c.sentence = "they should be " + genJoinAnd(thatIs)
		}
		if r.IntN(100) < 50 {
			clauses = append([]genClause{c}, clauses...)
		} else {
			clauses = append(clauses, c)
		}
	}

	// Noun phrase with modifiers.
	var np []string
	if r.IntN(100) < 7 {
		np = append(np, strings.ToLower(p.brand))
	}
	np = append(np, optMods...)
	np = append(np, preMods...)
	if len(p.descs) > 0 && r.IntN(100) < 15 {
		np = append(np, strings.ToLower(p.descs[len(p.descs)-1]))
	}
	if s.pre != "" && r.IntN(100) < 45 {
		np = append(np, strings.ToLower(s.pre))
	}
	np = append(np, noun)

	// Opening and article.
	u := r.Float64()
	oi, _ := slices.BinarySearch(d.openCum, u)
	oi = min(oi, len(d.opens)-1)
	op := d.opens[oi]
	var b strings.Builder
	b.WriteString(op.text)
	first := np[0]
	if r.Float64() < op.article {
		switch {
		case plural:
			b.WriteString(" some")
		case strings.IndexByte("aeiou8", first[0]) >= 0 || strings.HasPrefix(first, "11") || strings.HasPrefix(first, "18 "):
			b.WriteString(" an")
		default:
			b.WriteString(" a")
		}
	}
	b.WriteString(" " + strings.Join(np, " "))
	for _, t := range optTail {
		clauses = append(clauses, genClause{text: t})
	}
	// Sometimes one clause becomes a second sentence.
	var second []string
	if len(clauses) > 1 && r.IntN(100) < 18 {
		i := r.IntN(len(clauses))
		if clauses[i].sentence != "" {
			second = append(second, clauses[i].sentence)
			clauses = slices.Delete(clauses, i, i+1)
		}
	}
	for _, c := range optSent {
		second = append(second, c.sentence)
	}
	for i, c := range clauses {
		if i > 0 && i == len(clauses)-1 && r.IntN(100) < 35 {
			b.WriteString(" and")
		}
		b.WriteString(" " + c.text)
	}
	for _, sent := range second {
		b.WriteString(". " + sent)
	}
	text := genCleanInstruction(b.String())
	attrs := make([]string, len(chosen))
	for i, a := range chosen {
		attrs[i] = a.phrase
	}
	if optVals == nil {
		optVals = []string{}
	}
	return RawHumanInstruction{Instruction: text, InstructionAttributes: attrs, InstructionOptions: optVals}, true
}

func genThat(plural bool, verb string) string {
	if plural && verb == "has" {
		verb = "have"
	}
	return "that " + verb
}

func genIt(plural bool) string {
	if plural {
		return "they"
	}
	return "it"
}

// genOptionWords words an option value the way WebShop's human instructions
// do: as a modifier before the noun, a trailing phrase, or a second sentence.
func genOptionWords(r *rand.Rand, group, v string) (mod, tail, sentence string) {
	u := r.IntN(100)
	if strings.HasPrefix(v, "with ") || strings.HasPrefix(v, "without ") {
		return "", v, ""
	}
	unit := strings.ContainsAny(v, "0123456789") && (strings.Contains(v, "inch") || strings.Contains(v, "oz") ||
		strings.Contains(v, "ounce") || strings.Contains(v, "count") || strings.Contains(v, "pack") ||
		strings.Contains(v, "ft") || strings.Contains(v, "gb") || strings.Contains(v, "tb") ||
		strings.Contains(v, "pound") || strings.Contains(v, "serving") || strings.Contains(v, "mm") ||
		strings.Contains(v, "tier"))
	switch group {
	case "color":
		switch {
		case u < 35:
			return v, "", ""
		case u < 50:
			return "", "in " + v, ""
		case u < 65:
			return "", "in the color " + v, ""
		case u < 85:
			return "", "in " + v + " color", ""
		case u < 92:
			return "", "", "the color should be " + v
		default:
			return "", "", "i want it in " + v
		}
	case "size":
		switch {
		case unit && u < 40:
			return v, "", ""
		case unit && u < 60:
			return "", "in " + v, ""
		case unit && u < 70:
			return "", "- " + v, ""
		case unit && u < 85:
			return "", "in a " + v + " size", ""
		case unit:
			return "", "", "i need the " + v + " one"
		case u < 30:
			return "", "in size " + v, ""
		case u < 50:
			return "", "in " + v, ""
		case u < 65:
			return "size " + v, "", ""
		case u < 80:
			return "", "size " + v, ""
		case u < 90:
			return "", "", "the size should be " + v
		default:
			return "", "", "i need it in size " + v
		}
	case "flavor name":
		switch {
		case u < 40:
			return "", "in " + v + " flavor", ""
		case u < 65:
			return v + " flavored", "", ""
		case u < 85:
			return v, "", ""
		default:
			return "", "with " + v + " flavor", ""
		}
	case "scent":
		switch {
		case u < 40:
			return "", "in " + v + " scent", ""
		case u < 70:
			return v + " scented", "", ""
		default:
			return v, "", ""
		}
	case "item package quantity":
		switch {
		case u < 50:
			return "", "in a pack of " + v, ""
		default:
			return v + " pack", "", ""
		}
	case "fit type":
		return "", "for " + v, ""
	default: // style, pattern name, material type, capacity
		switch {
		case u < 35:
			return v, "", ""
		case u < 65:
			return "", "in " + v, ""
		case u < 85:
			return "", "in the " + v + " " + group, ""
		default:
			return "", "", "i want the " + v + " " + group
		}
	}
}

// genCleanInstruction lowercases and drops apostrophes like WebShop's human
// instructions ("womens", "im").
func genCleanInstruction(s string) string {
	s = strings.ToLower(s)
	s = strings.ReplaceAll(s, "'", "")
	return strings.Join(strings.Fields(s), " ")
}

// ---------------------------------------------------------------------------
// Output records.

type genImageOptions struct {
	opts  []genOption
	asin  string
	image bool
}

// MarshalJSON writes the groups as an ordered object; null when empty.
func (o genImageOptions) MarshalJSON() ([]byte, error) {
	if len(o.opts) == 0 {
		return []byte("null"), nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, g := range o.opts {
		if i > 0 {
			b.WriteByte(',')
		}
		genWriteJSONString(&b, g.kind.group)
		b.WriteString(":[")
		for j, v := range g.values {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"value":`)
			genWriteJSONString(&b, v)
			b.WriteString(`,"image":`)
			if o.image && g.kind.group == "color" {
				b.WriteString(`"https://images.example.com/shop/` + o.asin + "-" + strconv.Itoa(j+1) + `.jpg"`)
			} else {
				b.WriteString("null")
			}
			b.WriteByte('}')
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func genWriteJSONString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

type genRecord struct {
	ASIN                 string          `json:"asin"`
	Name                 string          `json:"name"`
	FullDescription      string          `json:"full_description"`
	SmallDescription     []string        `json:"small_description"`
	Pricing              string          `json:"pricing"`
	Images               []string        `json:"images"`
	CustomizationOptions genImageOptions `json:"customization_options"`
	Category             string          `json:"category"`
	Query                string          `json:"query"`
	ProductCategory      string          `json:"product_category"`
}

type genWinOut struct {
	products, attrs, human bytes.Buffer
	err                    error
}

var genOutPool = sync.Pool{New: func() any { return new(genWinOut) }}

// genEncoder encodes one record into a buffer without HTML escaping and
// without the trailing newline of json.Encoder.
type genEncoder struct {
	tmp bytes.Buffer
	enc *json.Encoder
}

func newGenEncoder() *genEncoder {
	e := &genEncoder{}
	e.enc = json.NewEncoder(&e.tmp)
	e.enc.SetEscapeHTML(false)
	return e
}

func (e *genEncoder) encode(dst *bytes.Buffer, v any) error {
	e.tmp.Reset()
	if err := e.enc.Encode(v); err != nil {
		return err
	}
	dst.Write(bytes.TrimRight(e.tmp.Bytes(), "\n"))
	return nil
}

// window generates products [start, start+n) into out. Records are written
// with a leading ",\n"; the writer drops it for a file's first record.
func (d *genData) window(cfg *GenConfig, asins genASINer, win, start, n int, out *genWinOut) {
	seed := uint64(cfg.Seed)
	w := &genWorker{d: d, cfg: cfg, r: rand.New(rand.NewPCG(genSplitMix(seed^0x5EED), genSplitMix(uint64(win)+seed*0x9E3779B97F4A7C15)))}
	var prods []*genProduct
	for len(prods) < n {
		fam := w.family()
		prods = append(prods, fam[:min(len(fam), n-len(prods))]...)
	}
	w.r.Shuffle(len(prods), func(i, j int) { prods[i], prods[j] = prods[j], prods[i] })
	enc := newGenEncoder()
	for i, p := range prods {
		asin := asins.asin(start + i)
		t := p.render()
		// Phrases the title's parts form together become attributes too.
		for _, a := range d.scanPhrases(strings.ToLower(t.title), nil) {
			if !slices.Contains(p.attrs, a) {
				p.attrs = append(p.attrs, a)
				p.implied[a] = true
			}
		}
		rec := genRecord{ASIN: asin, Name: t.title, FullDescription: t.desc, SmallDescription: t.bullets,
			Pricing: p.pricing(), Images: []string{}, Category: p.sub.cat.name, Query: p.sub.query,
			ProductCategory: p.sub.path, CustomizationOptions: genImageOptions{p.opts, asin, p.image}}
		if p.image {
			rec.Images = []string{"https://images.example.com/shop/" + asin + ".jpg"}
		}
		out.products.WriteString(",\n")
		if err := enc.encode(&out.products, rec); err != nil {
			out.err = err
			return
		}

		attrs := RawAttributes{Attributes: make([]string, len(p.attrs))}
		for j, a := range p.attrs {
			attrs.Attributes[j] = a.phrase
		}
		if cfg.SyntheticInsRate > 0 && w.r.Float64() < cfg.SyntheticInsRate {
			if ins, ia := p.synthetic(); len(ia) >= 2 {
				attrs.Instruction, attrs.InstructionAttributes = ins, ia
			}
		}
		out.attrs.WriteString(",\n\"" + asin + "\": ")
		if err := enc.encode(&out.attrs, attrs); err != nil {
			out.err = err
			return
		}

		if cfg.HumanInsRate > 0 && w.r.Float64() < cfg.HumanInsRate {
			cnt := 1
			if cfg.MaxHumanIns > 1 {
				ws := []float64{50, 30, 20}
				for len(ws) < cfg.MaxHumanIns {
					ws = append(ws, 10)
				}
				cnt = 1 + genWeightedIndex(w.r, ws[:cfg.MaxHumanIns])
			}
			var list []RawHumanInstruction
			for j := 0; j < cnt*2 && len(list) < cnt; j++ {
				ins, ok := w.instruction(p)
				if !ok {
					break
				}
				if slices.ContainsFunc(list, func(x RawHumanInstruction) bool { return x.Instruction == ins.Instruction }) {
					continue
				}
				ins.ASIN = asin
				list = append(list, ins)
			}
			if len(list) > 0 {
				out.human.WriteString(",\n\"" + asin + "\": ")
				if err := enc.encode(&out.human, list); err != nil {
					out.err = err
					return
				}
			}
		}
	}
}

// Generate writes WebShop's three files (ProductsFile, AttributesFile,
// HumanInsFile) for a generated shop into dir, creating dir if needed. The
// output is deterministic for a config: the same bytes for the same config,
// whatever GOMAXPROCS. Records are generated in parallel windows of 1,000
// products and streamed in order, so memory stays small at any size.
func Generate(cfg GenConfig, dir string) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	d, err := loadGenData()
	if err != nil {
		return fmt.Errorf("generate: embedded data: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	type outFile struct {
		f     *os.File
		w     *bufio.Writer
		first bool
		open  string
		close string
	}
	var files []*outFile
	defer func() {
		for _, f := range files {
			if f.f != nil {
				if cerr := f.f.Close(); err == nil {
					err = cerr
				}
			}
		}
	}()
	for _, x := range []struct{ name, open, close string }{
		{ProductsFile, "[\n", "\n]\n"}, {AttributesFile, "{\n", "\n}\n"}, {HumanInsFile, "{\n", "\n}\n"},
	} {
		f, err := os.Create(filepath.Join(dir, x.name))
		if err != nil {
			return err
		}
		of := &outFile{f: f, w: bufio.NewWriterSize(f, 1<<20), first: true, open: x.open, close: x.close}
		files = append(files, of)
		if _, err := of.w.WriteString(x.open); err != nil {
			return err
		}
	}

	nWin := (cfg.Products + genWindow - 1) / genWindow
	workers := min(max(1, runtime.GOMAXPROCS(0)), nWin)
	results := make([]chan *genWinOut, nWin)
	for i := range results {
		results[i] = make(chan *genWinOut, 1)
	}
	sem := make(chan struct{}, 2*workers+2)
	done := make(chan struct{})
	jobs := make(chan int)
	asins := newGenASINer(cfg.Seed)
	var wg sync.WaitGroup
	go func() {
		defer close(jobs)
		for win := 0; win < nWin; win++ {
			select {
			case sem <- struct{}{}:
			case <-done:
				return
			}
			select {
			case jobs <- win:
			case <-done:
				return
			}
		}
	}()
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for win := range jobs {
				out := genOutPool.Get().(*genWinOut)
				out.products.Reset()
				out.attrs.Reset()
				out.human.Reset()
				out.err = nil
				start := win * genWindow
				d.window(&cfg, asins, win, start, min(genWindow, cfg.Products-start), out)
				results[win] <- out
			}
		}()
	}
	defer func() {
		close(done)
		wg.Wait()
	}()

	for win := 0; win < nWin; win++ {
		out := <-results[win]
		if out.err != nil {
			return fmt.Errorf("generate: %w", out.err)
		}
		for i, buf := range []*bytes.Buffer{&out.products, &out.attrs, &out.human} {
			b := buf.Bytes()
			if len(b) == 0 {
				continue
			}
			of := files[i]
			if of.first {
				b = b[2:] // drop the leading ",\n"
				of.first = false
			}
			if _, err := of.w.Write(b); err != nil {
				return err
			}
		}
		genOutPool.Put(out)
		<-sem
	}
	for _, of := range files {
		if _, err := of.w.WriteString(of.close); err != nil {
			return err
		}
		if err := of.w.Flush(); err != nil {
			return err
		}
	}
	return nil
}
