package shopgen

import (
	"slices"
	"strings"
	"unicode"
)

// Option is one option value an instruction asks for.
type Option struct {
	// Group is the option group the value belongs to on a product page:
	// "color", "size", "flavor name", "scent", "style", "pattern name" or
	// "item package quantity".
	Group string `json:"group"`
	// Value is the value as the product's option list holds it (lowercase).
	Value string `json:"value"`
}

// Request is what an instruction asks for, as Parse reads it: the product
// type, attributes (WebShop's two-word mined phrases), option values, and the
// instruction's other content words.
type Request struct {
	Instruction string `json:"instruction"`
	// Type is the product-type phrase ("hair extension"), Head its singular
	// head noun ("extension").
	Type string `json:"type"`
	Head string `json:"head"`
	// Attributes are canonical attribute phrases ("easy use" for "easy to
	// use"), in instruction order; never empty (see Parse).
	Attributes []string `json:"attributes"`
	// Options are the option values asked for, in instruction order.
	Options []Option `json:"options"`
	// Keywords are the remaining content words (modifiers, brands, models),
	// in instruction order.
	Keywords []string `json:"keywords"`
}

// word is one token of an instruction.
type word struct {
	w     string // lowercase, apostrophes removed
	hyph  bool   // joined to the previous token by "-" in the text
	punct bool   // punctuation: a boundary
	used  bool   // taken by the opening, an attribute or an option
	attr  bool   // taken by an attribute
	adj   bool   // taken by an adjectival attribute (slot pre/with/for)
	aslot slot   // the attribute's slot
}

// tokenize splits a lowercased instruction into words and punctuation.
func tokenize(s string) []word {
	var out []word
	rs := []rune(strings.ToLower(s))
	isWordRune := func(r rune) bool {
		return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '#' || r == '+' || r == '*' || r == '%' || r == '/' || r == '|'
	}
	var cur []rune
	hyph := false
	flush := func() {
		if len(cur) > 0 {
			out = append(out, word{w: string(cur), hyph: hyph})
			cur = cur[:0]
		}
		hyph = false
	}
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		prev, next := rune(0), rune(0)
		if i > 0 {
			prev = rs[i-1]
		}
		if i+1 < len(rs) {
			next = rs[i+1]
		}
		switch {
		case r == '\'' || r == '’' || r == '`':
			// "women's" -> "womens", "it's" -> "its"
		case isWordRune(r):
			cur = append(cur, r)
		case r == '.' && unicode.IsDigit(prev) && unicode.IsDigit(next):
			cur = append(cur, r) // 6.76
		case r == '.' && len(cur) > 0 && unicode.IsLetter(next) && i+2 < len(rs) && rs[i+2] == '.':
			cur = append(cur, r) // u.s.
		case r == '-' && len(cur) > 0 && (unicode.IsLetter(next) || unicode.IsDigit(next)):
			flush()
			hyph = true
		case r == '&':
			flush()
			out = append(out, word{w: "&"})
		case unicode.IsSpace(r):
			flush()
		default:
			flush()
			out = append(out, word{w: string(r), punct: true})
		}
	}
	flush()
	return out
}

// openings are the ways WebShop's human instructions start, longest first.
var openings = func() [][]string {
	o := []string{
		"i am looking for", "im looking for", "i need", "i would like", "i want", "i want to find", "i want to buy",
		"i am interested in", "looking for", "i would like to buy", "find me", "i need to buy", "get me",
		"i am interested in buying", "i want to get", "i am searching for", "i would like to get", "buy me",
		"im interested in", "id like to find", "look for", "can you find me", "i am in need of", "show me",
		"id like to buy", "id like", "im searching for", "i am looking to buy", "help me find", "im trying to find",
		"i need to find", "can i get", "im looking to buy", "can you find", "i need to get", "id like to get",
		"im hoping to find", "please find", "search for", "i am looking", "im looking", "i would love",
		"i am trying to find", "i would like to find", "i want to purchase", "i would like to purchase",
		"i am looking to purchase", "i need to purchase", "im in need of", "i am seeking", "i seek", "please get me",
		"i am shopping for", "im shopping for", "locate", "find", "get", "buy", "i wish to buy", "i have to buy",
		"i am hoping to find", "i want you to find", "i want some", "i need some", "please", "hi", "hello",
		"im locking for", "i am looking fo", "i ned", "i wan", "let me get", "let me find", "let me have",
		"where can i find", "where can i get", "i am searching", "im searching", "could you find me", "could you find",
		"can you get me", "can you help me find", "i require", "i really need", "i definitely need", "i also need",
		"my son needs", "my daughter needs", "my wife needs", "my husband needs", "i was looking for", "im after",
		"id like to shop for", "i want to shop for", "i would like to shop for", "shop for",
	}
	out := make([][]string, len(o))
	for i, s := range o {
		out[i] = strings.Fields(s)
	}
	slices.SortStableFunc(out, func(a, b []string) int { return len(b) - len(a) })
	return out
}()

// skipWords are determiners and quantifiers that start a noun phrase.
var skipWords = set("a an the some any one two three four five six seven eight nine ten twelve new good nice " +
	"few several my our couple pair pairs set sets pack packs box boxes bag bags bottle bottles bundle bundles " +
	"piece pieces kind type variety case cases jar jars can cans container containers packet packets dozen " +
	"single double quality great cute best really very")

// breakWords end the product noun phrase.
var breakWords = set("that which who whom with without for in to from by it its is are was were can could should " +
	"must also please made under less than thats so as at on when but like have has having if or be will would " +
	"size sizes sized color colors colored colour colored flavor flavors flavored flavour style styled scent scented " +
	"pattern this these those they them i im me my you your we our where while because preferably ideally " +
	"and also into about around near only just not no do does need want looking find")

// stopWords are function words that are never keywords.
var stopWords = set("a an the and or of for to in on at by with without from into about is are was were be been " +
	"it its that which who whom this these those there here i im id me my we our you your they them their " +
	"can could should would will must need needs want wants like looking look find get buy please also so as " +
	"very really just only some any one ones thing things item items product products has have having do does " +
	"made make than less under more most if not no both each other well available come comes preferably ideally " +
	"something kind type sure too either when where what while color colour colors size sizes style flavor scent " +
	"pack count price dollars lower am but because buying purchase order trying interested search searching " +
	"shopping hoping seeking wish love give great good nice new best perfect quality use used using choose pick " +
	"select told brand out let go going got make makes sure sort lot bit")

func set(s string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(s) {
		m[w] = true
	}
	return m
}

// numberWords maps spelled numbers to digits.
var numberWords = map[string]string{"one": "1", "single": "1", "two": "2", "double": "2", "three": "3", "four": "4",
	"five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
	"dozen": "12", "fifteen": "15", "sixteen": "16", "eighteen": "18", "twenty": "20", "twentyfour": "24",
	"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
	"hundred": "100", "thirteen": "13", "fourteen": "14", "seventeen": "17", "nineteen": "19"}

// units maps unit spellings to the form option values use.
var units = map[string]string{
	"oz": "ounce", "ounce": "ounce", "ounces": "ounce", "lb": "pound", "lbs": "pound", "pound": "pound", "pounds": "pound",
	"g": "gram", "gr": "gram", "gram": "gram", "grams": "gram", "kg": "kg", "ml": "ml", "l": "liter", "liter": "liter",
	"liters": "liter", "litre": "liter", "gallon": "gallon", "gallons": "gallon", "gal": "gallon",
	"inch": "inch", "inches": "inch", "in": "inch", "\"": "inch", "ft": "ft", "foot": "ft", "feet": "ft",
	"cm": "cm", "mm": "mm", "m": "meter", "meter": "meter", "meters": "meter", "yard": "yard", "yards": "yard",
	"gb": "gb", "tb": "tb", "mah": "mah", "w": "watt", "watt": "watt", "watts": "watt", "v": "volt", "volt": "volt",
	"count": "count", "ct": "count", "counts": "count", "pcs": "pcs", "pc": "pcs", "pieces": "pcs", "piece": "pcs",
	"capsules": "capsules", "tablets": "tablets", "softgels": "softgels", "bags": "bags", "bars": "bars",
	"rolls": "rolls", "sheets": "sheets", "packets": "packets", "servings": "servings", "pods": "pods",
	"sticks": "sticks", "cans": "cans", "bottles": "bottles", "jars": "jars", "wipes": "wipes", "liners": "liners",
	"units": "units", "tea bags": "tea bags", "k-cups": "k-cups", "kcups": "k-cups", "pouches": "pouches",
}

// lengthUnits are units whose values are lengths (size options).
var lengthUnits = set("inch ft cm mm meter yard")

// apparelSizes are the canonical apparel sizes, in order.
var apparelSizes = []string{"xx-small", "x-small", "small", "medium", "large", "x-large", "xx-large", "3x-large", "4x-large", "5x-large"}

var apparelAlias = map[string]string{"xxs": "xx-small", "xs": "x-small", "xsmall": "x-small", "sm": "small",
	"med": "medium", "lg": "large", "xl": "x-large", "xlarge": "x-large", "xxl": "xx-large", "2xl": "xx-large",
	"xxlarge": "xx-large", "xxxl": "3x-large", "3xl": "3x-large", "4xl": "4x-large", "5xl": "5x-large",
	"3x": "3x-large", "4x": "4x-large", "5x": "5x-large", "2x": "xx-large", "1x": "x-large"}

// strictColors are colour words taken as a colour option without a cue word.
var strictColors = set("aqua azure beige black blue blush bordeaux bronze brown burgundy camel camo champagne " +
	"charcoal cognac copper coral fuchsia gold gray green grey indigo ivory khaki lavender lilac magenta maroon " +
	"mauve multicolor multicolored multicolour navy nude olive orange pink plum purple red rust silver tan taupe " +
	"teal turquoise violet white yellow leopard")

// colorModifiers may precede a colour word inside a colour value.
var colorModifiers = set("light dark hot baby sky royal deep bright pale neon matte metallic pastel jet army " +
	"forest wine rose navy off dusty mint olive steel antique rustic warm cool soft")

// notColorNext are nouns that make a colour word part of a product ("black pepper").
var notColorNext = set("pepper peppers tea teas wine wines bean beans rice sugar juice chocolate velvet cheese water " +
	"oil salt onion onions peppercorn peppercorns lentils quinoa vinegar olives grapes apple apples cabbage garlic " +
	"truffle mushroom label friday widow lives sox noise light lights maca cohosh seed seeds sesame walnut walnuts " +
	"tiger dragon sea berry berries forest currant currants grapefruit ginger clay smoke flag bull house mountain " +
	"diamond head")

// maxPairAttrs: a goal with fewer attributes than this takes an adjacent
// content-word pair as one more (see parse).
const maxPairAttrs = 2

// Parse reads an instruction into a Request. Attributes are matched against
// WebShop's mined phrases (and this package's extra ones) after normalising
// spellings ("easy to use" -> "easy use", "sulfate and paraben free" ->
// "sulfate free", "paraben free"); options come from cue words ("in the color
// redwood", "vanilla flavor", "size 7.5 wide"), colours, apparel sizes,
// quantities and measures; the product type is the head of the first noun
// phrase. When no attribute is found, the last two words of the product type
// serve as the attribute (WebShop's mined phrases include such product-type
// phrases, "hair extensions" or "hdmi cable"), so that every goal has one, as
// WebShop requires.
func Parse(instruction string) Request {
	d, err := loadData()
	if err != nil {
		panic(err) // embedded data; TestData keeps it parseable
	}
	return d.parse(instruction)
}

func (d *data) parse(instruction string) Request {
	req := Request{Instruction: instruction}
	ws := tokenize(instruction)
	start := stripOpening(ws)
	d.findAttributes(ws, start, &req)
	d.findOptions(ws, start, &req, false)
	typeWords := d.findType(ws, start)
	if d.isApparel(typeWords) {
		d.findOptions(ws, start, &req, true)
		typeWords = d.findType(ws, start)
	}
	req.Type = strings.Join(typeWords, " ")
	if len(typeWords) > 0 {
		req.Head = singular(typeWords[len(typeWords)-1])
	}
	inType := map[int]bool{}
	if n := len(typeWords); n > 0 {
		// the type's words: the last run of them (findType's)
		for i := len(ws) - 1; i >= 0; i-- {
			if ws[i].w == typeWords[n-1] && !ws[i].punct {
				for j := 0; j < n && i-j >= 0; j++ {
					inType[i-j] = true
				}
				break
			}
		}
	}
	// Fewer than two attributes: two adjacent content words outside the
	// product type ("tiger lily", "leather slingback") are one too, as
	// WebShop's mined phrases are such bigrams of the product's text.
	if len(req.Attributes) < maxPairAttrs {
		if i := adjacentPair(ws, start, inType); i >= 0 {
			req.Attributes = append(req.Attributes, ws[i].w+" "+ws[i+1].w)
			ws[i].used, ws[i+1].used = true, true
		}
	}
	// The product type is judged by the reward's type match, not as an
	// attribute: drop attributes that name it ("pillow covers" for a pillow
	// cover) when others remain.
	if len(typeWords) > 0 {
		var kept []string
		for _, a := range req.Attributes {
			if !typeLike(a, typeWords) {
				kept = append(kept, a)
			}
		}
		if len(kept) > 0 {
			req.Attributes = kept
		}
	}
	for i := start; i < len(ws); i++ {
		w := ws[i]
		if w.punct || w.used || inType[i] || stopWords[w.w] || breakWords[w.w] || len(w.w) < 2 {
			continue
		}
		if _, ok := numberWords[w.w]; ok || isNumber(w.w) {
			continue
		}
		if !slices.Contains(req.Keywords, w.w) {
			req.Keywords = append(req.Keywords, w.w)
		}
	}
	if len(req.Attributes) == 0 {
		// Else the product type itself (WebShop's mined phrases include
		// product-type phrases such as "hair extensions").
		fallback := typeWords
		if len(fallback) > 2 {
			fallback = fallback[len(fallback)-2:]
		}
		if len(fallback) == 0 && len(req.Keywords) > 0 {
			fallback = req.Keywords[:1]
		}
		if len(fallback) == 0 {
			fallback = []string{"high quality"}
		}
		req.Attributes = []string{strings.Join(fallback, " ")}
	}
	if req.Type == "" {
		req.Type = req.Attributes[0]
		req.Head = singular(lastWord(req.Type))
	}
	return req
}

// adjacentPair returns the index of the first two adjacent unused content
// words outside the product type, or -1.
func adjacentPair(ws []word, start int, inType map[int]bool) int {
	ok := func(i int) bool {
		w := ws[i]
		if w.punct || w.used || inType[i] || stopWords[w.w] || breakWords[w.w] || skipWords[w.w] || len(w.w) < 3 {
			return false
		}
		_, num := number(w.w)
		return !num && unicode.IsLetter([]rune(w.w)[0])
	}
	for i := start; i+1 < len(ws); i++ {
		if ok(i) && ok(i+1) {
			return i
		}
	}
	return -1
}

// typeLike reports whether an attribute phrase names the product type: its
// last word is the type's head noun (singular forms compared).
func typeLike(a string, typeWords []string) bool {
	return singular(lastWord(a)) == singular(typeWords[len(typeWords)-1])
}

func lastWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// stripOpening marks the instruction's opening ("i am looking for") as used
// and returns the index of the first word after it.
func stripOpening(ws []word) int {
	start := 0
	for changed := true; changed; {
		changed = false
		for _, o := range openings {
			if start+len(o) > len(ws) {
				continue
			}
			ok := true
			for j, w := range o {
				if ws[start+j].w != w {
					ok = false
					break
				}
			}
			if ok {
				for j := range o {
					ws[start+j].used = true
				}
				start += len(o)
				changed = true
				break
			}
		}
	}
	return start
}

// findAttributes marks attribute phrases.
func (d *data) findAttributes(ws []word, start int, req *Request) {
	add := func(a *attr, from, to int) {
		for k := from; k < to; k++ {
			ws[k].used, ws[k].attr = true, true
			ws[k].adj, ws[k].aslot = a.slot != slotType, a.slot
		}
		if !slices.Contains(req.Attributes, a.phrase) {
			req.Attributes = append(req.Attributes, a.phrase)
		}
	}
	for i := start; i < len(ws); i++ {
		if ws[i].punct || ws[i].used {
			continue
		}
		// "X and Y free", "X, Y & Z free": each "X free" that is a phrase.
		if found, end := d.coordinatedFree(ws, i); len(found) > 0 {
			for k := i; k <= end; k++ {
				ws[k].used, ws[k].attr, ws[k].adj, ws[k].aslot = true, true, true, slotPre
			}
			for _, a := range found {
				if !slices.Contains(req.Attributes, a.phrase) {
					req.Attributes = append(req.Attributes, a.phrase)
				}
			}
			i = end
			continue
		}
		// "easy to use" -> "easy use"
		if ws[i].w == "easy" && i+2 < len(ws) && ws[i+1].w == "to" && !ws[i+2].punct {
			if a := d.spell["easy "+ws[i+2].w]; a != nil {
				add(a, i, i+3)
				i += 2
				continue
			}
		}
		for _, s := range d.byFirst[ws[i].w] {
			n := strings.Count(s, " ") + 1
			if i+n > len(ws) {
				continue
			}
			ok := true
			for j, w := range strings.Split(s, " ") {
				if ws[i+j].punct || ws[i+j].w != w {
					ok = false
					break
				}
			}
			if ok {
				add(d.spell[s], i, i+n)
				i += n - 1
				break
			}
		}
	}
}

// coordinatedFree handles "sulfate and paraben free": if ws[i:] is a list of
// two to four words joined by ",", "and", "&" or "or" and ending in "free", and
// each "W free" is an attribute, it returns those attributes and the index of
// "free".
func (d *data) coordinatedFree(ws []word, i int) ([]*attr, int) {
	var found []*attr
	j := i
	for ; j < len(ws) && !ws[j].used; j++ {
		switch {
		case ws[j].w == "free":
			if len(found) < 2 {
				return nil, 0
			}
			return found, j
		case ws[j].w == "," || ws[j].w == "and" || ws[j].w == "&" || ws[j].w == "or":
		case ws[j].punct || len(found) == 4:
			return nil, 0
		default:
			a := d.spell[ws[j].w+" free"]
			if a == nil {
				return nil, 0
			}
			found = append(found, a)
		}
	}
	return nil, 0
}
