package shopgen

import (
	"slices"
	"strings"
	"sync"
)

// Finding the sub-category (WebShop's "query" and breadcrumb) of a request.

// categoryWords are words that point at one of WebShop's five categories,
// used when a product type is not in the catalogue.
var categoryWords = map[string][]string{
	"beauty": strings.Fields("hair skin face facial makeup lip lips lipstick nail nails teeth tooth toothbrush toothpaste " +
		"shampoo conditioner cream lotion serum perfume fragrance cologne soap brush brushes eye eyes eyelash lashes " +
		"beard shaving shave razor wig wigs extension extensions mask oil body bath spa salon cosmetic cosmetics " +
		"deodorant mascara foundation powder polish manicure pedicure scalp dye balm moisturizer sunscreen mouthwash"),
	"fashion": strings.Fields("shirt shirts tshirt tee tees dress dresses pants jeans shorts skirt jacket coat hoodie " +
		"sweater sweatshirt top tops blouse leggings socks underwear bra panties lingerie shoe shoes boot boots " +
		"sneakers sandals slippers heels pumps loafers flats pajamas sleepwear jumpsuit romper swimsuit bikini vest " +
		"gloves hat cap scarf belt men mens women womens girls boys tunic cardigan polo sweatpants joggers"),
	"electronics": strings.Fields("cable cables usb hdmi charger charging phone iphone samsung galaxy tablet laptop " +
		"computer keyboard mouse speaker speakers headphones earbuds headset bluetooth wireless camera lens tv " +
		"television remote battery batteries adapter router monitor screen projector microphone audio stereo " +
		"subwoofer amplifier receiver dvd player watch smartwatch tripod drone console gaming power surge"),
	"garden": strings.Fields("table chair chairs sofa couch bed beds mattress desk lamp light lights lighting rug " +
		"rugs pillow pillows curtain curtains shelf shelves cabinet candle candles decor wall kitchen dining living " +
		"room bedroom bathroom furniture stool ottoman bench dresser nightstand bookcase blanket throw bedding " +
		"sheets comforter frame mirror vase plant garden patio outdoor chandelier sconce pendant vanity storage"),
	"grocery": strings.Fields("food snack snacks tea coffee chocolate candy sauce flavor flavored organic sugar cookie " +
		"cookies chips nut nuts bar bars drink drinks juice water milk cheese meat jerky bacon beef chicken pork fish " +
		"tuna salmon spice spices seasoning salt pepper honey syrup cereal oatmeal granola crackers bread pasta rice " +
		"beans soup gum popcorn protein keto vegan gluten dairy fruit dried fresh frozen baking flour mix powder"),
}

// guessCategory votes for a category with the request's attributes, option
// groups and words.
func (d *data) guessCategory(req *Request) *category {
	votes := map[string]float64{}
	for _, a := range req.Attributes {
		if x := d.attrs[a]; x != nil {
			votes[x.category] += 1
		}
	}
	for _, o := range req.Options {
		switch o.Group {
		case "flavor name":
			votes["grocery"] += 2
		case "scent":
			votes["beauty"] += 1
		}
	}
	for _, w := range strings.Fields(req.Type + " " + strings.Join(req.Keywords, " ")) {
		for c, ws := range categoryWords {
			if slices.Contains(ws, w) || slices.Contains(ws, singular(w)) {
				votes[c] += 2
			}
		}
	}
	best := d.cats[0]
	for _, c := range d.cats {
		if votes[c.name] > votes[best.name] {
			best = c
		}
	}
	return best
}

// matchSub finds the catalogue sub-category of a product type: a noun phrase
// of a sub-category equal to the type, else one with the same head noun. Among
// several, the one sharing most of the request's attributes and words wins
// (the first in the catalogue on a tie). req may be nil. nil means none.
func (d *data) matchSub(typeWords []string, req *Request) *sub {
	if len(typeWords) == 0 {
		return nil
	}
	sing := make([]string, len(typeWords))
	for i, w := range typeWords {
		sing[i] = singular(w)
	}
	cands := d.byPhrase[strings.Join(sing, " ")]
	if len(cands) == 0 && len(sing) > 1 {
		cands = d.byPhrase[sing[len(sing)-1]]
	}
	if len(cands) == 0 {
		cands = d.byHead[sing[len(sing)-1]]
	}
	if len(cands) == 0 {
		return nil
	}
	if len(cands) == 1 || req == nil {
		return cands[0]
	}
	best, bestScore := cands[0], -1.0
	for _, s := range cands {
		score := 0.0
		for _, a := range req.Attributes {
			if slices.ContainsFunc(s.pool, func(w weighted) bool { return w.a.phrase == a }) {
				score += 2
			}
		}
		text := strings.ToLower(s.query + " " + s.path + " " + strings.Join(s.nouns, " ") + " " + strings.Join(s.say, " "))
		for _, w := range append(append([]string{}, typeWords...), req.Keywords...) {
			if strings.Contains(text, w) {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = s, score
		}
	}
	return best
}

// subFor returns the sub-category a request's products belong to: the
// catalogue's, or a new one for a product type the catalogue lacks, with the
// type as its query and noun, and the breadcrumb, pools and prices of the
// guessed category's sub-category whose words share most with the type. A new
// sub-category depends only on the type and the category, so every goal asking
// for that type shares it (cache memoises them; it is safe for concurrent use).
func (d *data) subFor(req *Request, cache *subCache) *sub {
	words := strings.Fields(req.Type)
	if s := d.matchSub(words, req); s != nil {
		return s
	}
	cat := d.guessCategory(req)
	key := cat.name + "|" + req.Type
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if s := cache.m[key]; s != nil {
		return s
	}
	base, bestScore := cat.subs[int(hashString(req.Type)%uint64(len(cat.subs)))], 0
	for _, s := range cat.subs {
		text := strings.ToLower(s.query + " " + s.path + " " + strings.Join(s.nouns, " ") + " " + strings.Join(s.desc, " "))
		score := 0
		for _, w := range words {
			if len(w) > 2 && strings.Contains(text, singular(w)) {
				score++
			}
		}
		if score > bestScore {
			base, bestScore = s, score
		}
	}
	path := base.path
	if i := strings.LastIndex(path, " › "); i > 0 {
		path = path[:i]
	}
	noun := titleCase(req.Type)
	s := &sub{cat: cat, query: req.Type, path: path + " › " + noun, nouns: []string{noun}, say: []string{req.Type},
		pool: base.pool, poolSum: base.poolSum, opts: base.opts, priceLo: base.priceLo, priceHi: base.priceHi,
		desc: base.desc, heads: []string{req.Head}}
	if cache.m == nil {
		cache.m = map[string]*sub{}
	}
	cache.m[key] = s
	return s
}

// subCache memoises the sub-categories made for product types.
type subCache struct {
	mu sync.Mutex
	m  map[string]*sub
}
