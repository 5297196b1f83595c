package shopgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Building the products of one goal: the target, which satisfies the goal as
// a real WebShop product satisfies its instruction; near-duplicate siblings
// that each miss one thing (an attribute, the wanted option value, or the
// price cap) or, sometimes, nothing; distractors that share the product noun
// but are another kind of product; and fillers, other products of the same
// sub-category.

// optGroup is one option group of a product: its name and values (lowercase).
type optGroup struct {
	name   string
	values []string
}

// role says why a product exists.
type role uint8

const (
	roleTarget role = iota
	roleSibling
	roleDistractor
	roleFiller
)

// product is a product before rendering.
type product struct {
	role  role
	sub   *sub
	query string // WebShop's query field (sometimes another sub-category's)
	brand string
	noun  string   // Title Case product noun
	words []string // request keywords the title carries (targets and siblings)

	attrs    []*attr         // mined attributes
	dummy    bool            // no mined attributes in the file (DUMMY_ATTR); text carries them
	hidden   map[string]bool // attributes only in later bullets or the mined list (not searchable)
	textless map[string]bool // attributes only in the mined list
	mustLack []string        // phrases the text must not contain (the attribute a sibling lacks)

	opts      []optGroup
	price     float64
	priceHi   float64 // > price for a price range
	noPrice   bool
	emptyDesc bool
	image     bool
	seed      uint64 // text decisions
}

// goalBuild holds what is needed to build one goal's products.
type goalBuild struct {
	d   *data
	cfg *Config
	r   *rand.Rand
	req Request
	sub *sub
	cap float64 // the goal's price cap
}

// priceCap is WebShop's rule: the first four of 10, 20, ..., 990 above the
// price; with at least two, the larger of two distinct ones drawn at random.
func priceCap(r *rand.Rand, price float64) (float64, bool) {
	var cands []float64
	for i := 1; i < 100 && len(cands) < 4; i++ {
		if p := 10 * float64(i); p > price {
			cands = append(cands, p)
		}
	}
	if len(cands) < 2 {
		return 1000000, false
	}
	i := r.IntN(len(cands))
	j := r.IntN(len(cands) - 1)
	if j >= i {
		j++
	}
	return max(cands[i], cands[j]), true
}

func roundPrice(r *rand.Rand, v float64) float64 {
	whole := math.Floor(v)
	if whole < 1 {
		whole = 1
	}
	switch x := r.IntN(100); {
	case x < 55:
		return whole + 0.99
	case x < 65:
		return whole + 0.95
	case x < 73:
		return whole + 0.49
	case x < 85:
		return whole
	default:
		return whole + float64(r.IntN(100))/100
	}
}

func (b *goalBuild) newPrice(s *sub) float64 {
	lo, hi := math.Log(s.priceLo), math.Log(s.priceHi)
	return roundPrice(b.r, math.Exp(lo+(hi-lo)*b.r.Float64()))
}

// noPriceRate is the share of products without pricing in a category.
func (b *goalBuild) noPriceRate(s *sub) float64 {
	if s.cat.name == "fashion" {
		return b.cfg.NoPriceFashion
	}
	return b.cfg.NoPriceOther
}

var brandCores = []string{"Vel", "Kor", "Lum", "Mira", "Zen", "Nov", "Aur", "Bel", "Cal", "Dor", "Ev", "Fio",
	"Gla", "Hav", "Iso", "Jun", "Kai", "Lor", "Mav", "Nor", "Oak", "Pra", "Quin", "Rho", "Sol", "Tru", "Ul", "Vio",
	"Wex", "Xan", "Yor", "Zel", "Ari", "Bri", "Cor", "Dav", "Eli", "Fen", "Gal", "Hal", "Ivo", "Jas", "Kes", "Lyn",
	"Mor", "Nyx", "Ori", "Pel", "Ren", "Sav", "Tal", "Ver", "Wil", "Zor", "Qu", "Bo", "Pu", "Ty", "Mu"}
var brandEnds = []string{"a", "ix", "on", "ora", "ella", "ify", "ex", "io", "ara", "ent", "ly", "ano", "eni", "is",
	"ova", "et", "ado", "ine", "usa", "ar", "um", "ko", "zy", "ik"}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (b *goalBuild) brand(c *category) string {
	r := b.r
	name := pick(r, brandCores) + pick(r, brandEnds)
	if r.IntN(100) < 35 {
		name = pick(r, brandCores) + strings.ToLower(name)
	}
	switch x := r.IntN(100); {
	case x < 25: // Amazon-style all-caps brand ("PMUYBHF")
		name = strings.ToUpper(name)
	case x < 60:
		sfx := pick(r, c.brands)
		if sfx[0] >= 'a' && sfx[0] <= 'z' {
			name += sfx
		} else {
			name += " " + sfx
		}
	}
	return name
}

// related reports whether two phrases overlap as substrings (the reward's
// substring check would count one for the other).
func related(a, b string) bool { return strings.Contains(a, b) || strings.Contains(b, a) }

func hasRelated(attrs []*attr, phrase string) bool {
	return slices.ContainsFunc(attrs, func(a *attr) bool { return related(a.phrase, phrase) })
}

// poolAttr draws an attribute of the sub-category's pool not related to any
// of have nor to any phrase of avoid.
func (b *goalBuild) poolAttr(s *sub, have []*attr, avoid []string) *attr {
	for try := 0; try < 30; try++ {
		u := b.r.Float64() * s.poolSum
		a := s.pool[len(s.pool)-1].a
		for _, w := range s.pool {
			if u < w.w {
				a = w.a
				break
			}
			u -= w.w
		}
		if a.drop || hasRelated(have, a.phrase) || slices.ContainsFunc(avoid, func(p string) bool { return related(p, a.phrase) }) {
			continue
		}
		return a
	}
	return nil
}

// attrOf returns the attribute record of a goal phrase (a new one for a
// fallback phrase that is not in the vocabulary).
func (b *goalBuild) attrOf(phrase string) *attr {
	if a := b.d.attrs[phrase]; a != nil {
		return a
	}
	if a := b.d.spell[phrase]; a != nil {
		return a
	}
	return &attr{phrase: phrase, slot: slotType, category: b.sub.cat.name}
}

// build makes the goal's products: the target first.
func (b *goalBuild) build(n int) []*product {
	cfg, r := b.cfg, b.r
	target := b.target()
	out := []*product{target}
	// Siblings: a Poisson-like count around cfg.Siblings, within the budget.
	ns := poisson(r, cfg.Siblings)
	nd := poisson(r, cfg.Distractors)
	for i := 0; i < ns && len(out) < n; i++ {
		out = append(out, b.sibling(target))
	}
	for i := 0; i < nd && len(out) < n; i++ {
		out = append(out, b.distractor())
	}
	for len(out) < n {
		out = append(out, b.filler())
	}
	return out
}

func poisson(r *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func (b *goalBuild) newProduct(rl role, s *sub) *product {
	r := b.r
	p := &product{role: rl, sub: s, query: s.query, hidden: map[string]bool{}, textless: map[string]bool{},
		seed: r.Uint64(), image: r.Float64() < b.cfg.ImageRate, emptyDesc: r.Float64() < b.cfg.EmptyDescRate}
	if r.Float64() < b.cfg.NoisyQueryRate {
		c := pick(r, b.d.cats)
		p.query = pick(r, c.subs).query
	}
	return p
}

// target builds the product the goal was written for.
func (b *goalBuild) target() *product {
	cfg, r := b.cfg, b.r
	p := b.newProduct(roleTarget, b.sub)
	p.brand = b.brand(b.sub.cat)
	p.noun = titleCase(b.req.Type)
	p.words = b.req.Keywords
	for _, g := range b.req.Attributes {
		a := b.attrOf(g)
		p.attrs = append(p.attrs, a)
		switch u := r.Float64(); {
		case u < cfg.AttrOnlyMined:
			p.hidden[a.phrase], p.textless[a.phrase] = true, true
		case u < cfg.AttrOnlyMined+cfg.AttrUnsearchable:
			p.hidden[a.phrase] = true
		}
	}
	for k := r.IntN(4); k > 0; k-- {
		if a := b.poolAttr(b.sub, p.attrs, nil); a != nil {
			p.attrs = append(p.attrs, a)
		}
	}
	for _, o := range b.req.Options {
		p.opts = append(p.opts, b.groupWith(o))
	}
	b.extraGroups(p, len(b.req.Options) == 0)
	// Price: the instruction's cap comes from it, with WebShop's rule.
	if r.Float64() < b.cfg.TargetNoPrice {
		p.noPrice, p.price = true, 100
	} else {
		p.price = b.newPrice(b.sub)
	}
	b.cap, _ = priceCap(r, p.price)
	if !p.noPrice && r.Float64() < cfg.PriceRangeRate {
		hi := roundPrice(r, p.price*(1.1+0.5*r.Float64()))
		if hi > p.price && hi < b.cap {
			p.priceHi = hi
		}
	}
	return p
}

// groupWith returns an option group holding the wanted value among others.
func (b *goalBuild) groupWith(o Option) optGroup {
	alts := b.d.alternatives(b.r, o, b.sub)
	n := min(len(alts), 1+b.r.IntN(7))
	alts = alts[:n]
	pos := b.r.IntN(len(alts) + 1)
	vals := slices.Insert(slices.Clone(alts), pos, o.Value)
	if b.d.ordered(o) {
		sortValues(vals)
	}
	return optGroup{name: o.Group, values: vals}
}

// extraGroups adds option groups the goal does not ask about: most products
// have some (a goal without options still buys a product that has them).
func (b *goalBuild) extraGroups(p *product, none bool) {
	r := b.r
	chance := 0.35
	if none {
		chance = 0.55
	}
	for _, k := range p.sub.opts {
		if r.Float64() >= chance || slices.ContainsFunc(p.opts, func(g optGroup) bool { return g.name == k.group }) {
			continue
		}
		p.opts = append(p.opts, b.randomGroup(k))
		chance /= 2
	}
}

// randomGroup draws 2..8 values of an option kind.
func (b *goalBuild) randomGroup(k *optKind) optGroup {
	r := b.r
	n := min(len(k.values), 2+r.IntN(7))
	var vals []string
	if k.ordered {
		st := r.IntN(len(k.values) - n + 1)
		vals = slices.Clone(k.values[st : st+n])
	} else {
		idx := r.Perm(len(k.values))[:n]
		slices.Sort(idx)
		for _, i := range idx {
			vals = append(vals, k.values[i])
		}
	}
	for i, v := range vals {
		vals[i] = strings.ReplaceAll(v, "/", " | ")
	}
	return optGroup{name: k.group, values: vals}
}

// sibling copies the target and usually breaks one requirement.
func (b *goalBuild) sibling(t *product) *product {
	cfg, r := b.cfg, b.r
	p := b.newProduct(roleSibling, t.sub)
	p.noun, p.query = t.noun, t.query
	p.brand = t.brand
	if r.Float64() < 0.4 {
		p.brand = b.brand(t.sub.cat)
	}
	// A sibling keeps a shuffled part of the target's extra words.
	p.words = slices.Clone(t.words)
	r.Shuffle(len(p.words), func(i, j int) { p.words[i], p.words[j] = p.words[j], p.words[i] })
	if len(p.words) > 1 {
		p.words = p.words[:1+r.IntN(len(p.words))]
	}
	p.attrs = slices.Clone(t.attrs)
	for _, a := range t.attrs { // in order: map order would change the draws
		if t.hidden[a.phrase] && r.Float64() < 0.7 {
			p.hidden[a.phrase] = true
		}
	}
	for k, v := range t.textless {
		p.textless[k] = v
	}
	p.opts = make([]optGroup, len(t.opts))
	for i, g := range t.opts {
		p.opts[i] = optGroup{name: g.name, values: slices.Clone(g.values)}
	}
	p.noPrice = t.noPrice && r.Float64() < 0.7
	p.price = t.price
	if !p.noPrice {
		p.price = roundPrice(r, max(1, t.price*(0.85+0.3*r.Float64())))
	}
	if p.price >= b.cap {
		p.price = roundPrice(r, b.cap*0.9)
		if p.price >= b.cap {
			p.price = b.cap - 1
		}
	}
	// The defect: what this sibling misses. An attribute that is part of the
	// product's name ("sectional sofa") cannot be missed.
	var lackable []string
	name := strings.ToLower(p.noun + " " + strings.Join(p.words, " "))
	for _, g := range b.req.Attributes {
		if !strings.Contains(name, g) && !related(g, strings.ToLower(p.noun)) {
			lackable = append(lackable, g)
		}
	}
	var kinds []int
	if len(lackable) > 0 {
		kinds = append(kinds, 0)
	}
	if len(b.req.Options) > 0 {
		kinds = append(kinds, 1, 1)
	}
	if b.cap < 1000000 {
		kinds = append(kinds, 2)
	}
	if r.Float64() < cfg.DuplicateShare || len(kinds) == 0 {
		return p // a true duplicate: satisfies the goal too
	}
	switch pick(r, kinds) {
	case 0:
		g := pick(r, lackable)
		i := slices.IndexFunc(p.attrs, func(a *attr) bool { return a.phrase == g })
		if i >= 0 {
			p.attrs = slices.Delete(p.attrs, i, i+1)
		}
		p.mustLack = append(p.mustLack, g)
		if a := b.nearAttr(p, g); a != nil {
			p.attrs = append(p.attrs, a)
		}
	case 1:
		o := pick(r, b.req.Options)
		for gi, g := range p.opts {
			if g.name != o.Group {
				continue
			}
			vi := slices.Index(g.values, o.Value)
			if vi < 0 {
				continue
			}
			alts := b.d.alternatives(r, o, b.sub)
			repl := ""
			for _, a := range alts {
				if !slices.Contains(g.values, a) {
					repl = a
					break
				}
			}
			if repl == "" || r.IntN(3) == 0 {
				p.opts[gi].values = slices.Delete(slices.Clone(g.values), vi, vi+1)
			} else {
				p.opts[gi].values[vi] = repl
			}
			if len(p.opts[gi].values) == 0 {
				p.opts = slices.Delete(p.opts, gi, gi+1)
			}
			break
		}
	case 2:
		p.noPrice = false
		p.price = roundPrice(r, b.cap*(1.05+0.8*r.Float64()))
		if p.price <= b.cap {
			p.price = b.cap + 1
		}
	}
	return p
}

// nearAttr returns a pool attribute sharing a word with the missing phrase
// ("short sleeve" for "long sleeve"), or nil.
func (b *goalBuild) nearAttr(p *product, missing string) *attr {
	mw := strings.Fields(missing)
	var cands []*attr
	for _, w := range p.sub.pool {
		a := w.a
		if a.drop || related(a.phrase, missing) || hasRelated(p.attrs, a.phrase) {
			continue
		}
		for _, x := range strings.Fields(a.phrase) {
			if slices.Contains(mw, x) {
				cands = append(cands, a)
				break
			}
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return pick(b.r, cands)
}

// accessoryNouns are products of another kind named after what they serve.
var accessoryNouns = map[string][]string{
	"beauty":      {"Storage Bag", "Organizer", "Holder", "Travel Case", "Cleaner", "Applicator", "Display Stand", "Remover"},
	"fashion":     {"Hanger", "Storage Box", "Cleaner Kit", "Laces", "Insoles", "Protector Spray", "Organizer", "Gift Box"},
	"electronics": {"Case", "Cover", "Mount", "Stand", "Adapter", "Holder", "Skin Decal", "Cleaning Kit"},
	"garden":      {"Cover", "Slipcover", "Pad", "Protector", "Hardware Kit", "Replacement Parts", "Organizer", "Hooks"},
	"grocery":     {"Storage Container", "Dispenser", "Canister", "Gift Basket", "Recipe Book", "Serving Tray", "Scoop", "Jar"},
}

// distractor is another kind of product named after the goal's product
// ("Hair Extension Storage Bag"), in another sub-category, that repeats some
// of the instruction's words.
func (b *goalBuild) distractor() *product {
	r := b.r
	cat := b.sub.cat
	// Another sub-category whose breadcrumb shares at most one level with the
	// goal's (WebShop's category_match needs two).
	// Half the time it is from another category altogether ("Extension
	// Cord" for a hair extension).
	var others []*sub
	if r.IntN(2) == 0 {
		for _, s := range cat.subs {
			if commonLevels(s.path, b.sub.path) < 2 {
				others = append(others, s)
			}
		}
	}
	if len(others) == 0 {
		for _, c := range b.d.cats {
			if c != cat {
				others = append(others, c.subs...)
			}
		}
	}
	other := pick(r, others)
	cat = other.cat
	p := b.newProduct(roleDistractor, other)
	p.brand = b.brand(cat)
	// It shares one word of the product type ("Hair" of "hair extension"),
	// so its title has few nouns in common with the target's.
	tw := strings.Fields(b.req.Type)
	p.noun = titleCase(pick(r, tw)) + " " + pick(r, accessoryNouns[cat.name])
	for _, g := range b.req.Attributes {
		if r.Float64() < 0.5 {
			p.attrs = append(p.attrs, b.attrOf(g))
		}
	}
	for _, w := range b.req.Keywords {
		if r.Float64() < 0.5 {
			p.words = append(p.words, w)
		}
	}
	for k := 1 + r.IntN(3); k > 0; k-- {
		if a := b.poolAttr(other, p.attrs, b.req.Attributes); a != nil {
			p.attrs = append(p.attrs, a)
		}
	}
	p.dummy = r.Float64() < b.cfg.NoAttributesRate
	b.extraGroups(p, true)
	p.price = b.newPrice(other)
	p.noPrice = r.Float64() < b.noPriceRate(other)
	if p.noPrice {
		p.price = 100
	}
	return p
}

// filler is another product of the goal's sub-category.
func (b *goalBuild) filler() *product {
	r := b.r
	s := b.sub
	p := b.newProduct(roleFiller, s)
	p.brand = b.brand(s.cat)
	p.noun = pick(r, s.nouns)
	if r.Float64() < b.cfg.FillerType {
		p.noun = titleCase(b.req.Type) // the same kind of product, named as the shopper does
	}
	for _, w := range b.req.Keywords {
		if r.Float64() < b.cfg.FillerKeywords {
			p.words = append(p.words, w)
		}
	}
	for _, g := range b.req.Attributes {
		switch u := r.Float64(); {
		case u < b.cfg.FillerAttributes:
			p.attrs = append(p.attrs, b.attrOf(g))
		case u < b.cfg.FillerAttributes+b.cfg.FillerNearAttributes:
			// An attribute sharing a word with the goal's ("dairy free" for
			// "gluten free"), or the word alone: the search sees part of it.
			if a := b.nearAttr(p, g); a != nil {
				p.attrs = append(p.attrs, a)
			} else if ws := strings.Fields(g); len(ws) > 1 {
				p.words = append(p.words, pick(r, ws))
			}
		}
	}
	for k := 1 + r.IntN(4); k > 0; k-- {
		if a := b.poolAttr(s, p.attrs, b.req.Attributes); a != nil {
			p.attrs = append(p.attrs, a)
		}
	}
	p.dummy = r.Float64() < b.cfg.NoAttributesRate
	b.extraGroups(p, true)
	for _, o := range b.req.Options {
		// Products of the sub-category often offer the same kind of choice.
		if r.Float64() < 0.5 && !slices.ContainsFunc(p.opts, func(g optGroup) bool { return g.name == o.Group }) {
			g := b.groupWith(o)
			if r.Float64() < 0.6 { // most offer other values than the one wanted
				alts := b.d.alternatives(r, o, s)
				if i := slices.Index(g.values, o.Value); i >= 0 && len(alts) > 0 && !slices.Contains(g.values, alts[0]) {
					g.values[i] = alts[0]
				}
			}
			p.opts = append(p.opts, g)
		}
	}
	p.price = b.newPrice(s)
	p.noPrice = r.Float64() < b.noPriceRate(s)
	if p.noPrice {
		p.price = 100
	} else if r.Float64() < b.cfg.PriceRangeRate {
		p.priceHi = roundPrice(r, p.price*(1.1+0.6*r.Float64()))
	}
	return p
}

// ordered reports whether an option's values read in order (sizes, counts).
func (d *data) ordered(o Option) bool {
	return o.Group == "size" || o.Group == "item package quantity"
}

// sortValues orders values by their leading number, then apparel size order,
// keeping others in place.
func sortValues(vals []string) {
	key := func(v string) (float64, bool) {
		if i := slices.Index(apparelSizes, v); i >= 0 {
			return float64(i), true
		}
		f := strings.Fields(strings.ReplaceAll(v, "x", " "))
		if len(f) > 0 {
			if n, err := strconv.ParseFloat(f[0], 64); err == nil {
				return n, true
			}
		}
		if strings.HasPrefix(v, "pack of ") || strings.HasPrefix(v, "set of ") {
			if n, err := strconv.ParseFloat(lastWord(v), 64); err == nil {
				return n, true
			}
		}
		return 0, false
	}
	slices.SortStableFunc(vals, func(a, b string) int {
		ka, oka := key(a)
		kb, okb := key(b)
		switch {
		case oka && okb:
			switch {
			case ka < kb:
				return -1
			case ka > kb:
				return 1
			}
		case oka:
			return -1
		case okb:
			return 1
		}
		return 0
	})
}

// commonLevels counts the breadcrumb levels two paths share (as WebShop's
// category_match counts them).
func commonLevels(a, b string) int {
	in := map[string]bool{}
	for _, x := range strings.Split(a, "›") {
		in[strings.TrimSpace(x)] = true
	}
	n := 0
	for _, x := range strings.Split(b, "›") {
		if x = strings.TrimSpace(x); in[x] {
			n++
			delete(in, x)
		}
	}
	return n
}
