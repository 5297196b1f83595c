package shopgen

import (
	"slices"
	"strings"
	"unicode"
)

// Reading option values and the product type from an instruction's words.

// maxOptions is the most options a goal asks for.
const maxOptions = 4

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.' || r == '/':
		default:
			return false
		}
	}
	return digits > 0
}

// number returns the digits of a numeral or a spelled number.
func number(s string) (string, bool) {
	if isNumber(s) {
		return s, true
	}
	n, ok := numberWords[s]
	return n, ok
}

// gluedUnit splits "12oz", "38mm" or "64gb" into a number and a unit.
func gluedUnit(s string) (string, string, bool) {
	i := strings.IndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	if i <= 0 || i == len(s) {
		return "", "", false
	}
	u, ok := units[s[i:]]
	if !ok || !isNumber(s[:i]) {
		return "", "", false
	}
	if i == 1 && (s[i:] == "g" || s[i:] == "w" || s[i:] == "v") {
		return "", "", false // "4g", "5g": a network generation, not 4 grams
	}
	return s[:i], u, true
}

// dims reads "20x20", "100x45x45cm" or "13x70inch" as a dimension.
func dims(s string) (string, bool) {
	if !strings.Contains(s, "x") {
		return "", false
	}
	parts := strings.Split(s, "x")
	if len(parts) < 2 || len(parts) > 3 {
		return "", false
	}
	last := parts[len(parts)-1]
	unit := ""
	if n, u, ok := gluedUnit(last); ok {
		parts[len(parts)-1], unit = n, u
	}
	for _, p := range parts {
		if !isNumber(p) {
			return "", false
		}
	}
	v := strings.Join(parts, "x")
	if unit != "" {
		v += " " + unit
	}
	return v, true
}

// at returns the word at i, or "" past the end or for punctuation.
func at(ws []word, i int) string {
	if i < 0 || i >= len(ws) || ws[i].punct {
		return ""
	}
	return ws[i].w
}

// free reports whether ws[i] is an unused, non-punctuation word.
func free(ws []word, i int) bool { return i >= 0 && i < len(ws) && !ws[i].used && !ws[i].punct }

// optionAdder collects options and marks their words.
type optionAdder struct {
	ws  []word
	req *Request
}

func (o optionAdder) add(group, value string, from, to int) {
	value = strings.TrimSpace(value)
	if value == "" || len(o.req.Options) >= maxOptions {
		return
	}
	for k := from; k < to && k < len(o.ws); k++ {
		o.ws[k].used = true
	}
	for _, x := range o.req.Options {
		if x.Value == value {
			return
		}
	}
	// A product page has one choice per group: a second value of a group
	// goes to the next free group of its chain, or is dropped ("navy or
	// cream": one colour).
	chain := groupChains[group]
	if chain == nil {
		chain = []string{group}
	}
	for _, g := range chain {
		if !slices.ContainsFunc(o.req.Options, func(x Option) bool { return x.Group == g }) {
			o.req.Options = append(o.req.Options, Option{Group: g, Value: value})
			return
		}
	}
}

// groupChains are the groups a second, third... value of a group goes to.
var groupChains = map[string][]string{
	"size":        {"size", "item package quantity", "style"},
	"flavor name": {"flavor name", "style"},
	"scent":       {"scent", "style"},
	"style":       {"style", "pattern name"},
}

// cue words that introduce an option value, and the group they name.
var cueGroups = map[string]string{
	"color": "color", "colors": "color", "colour": "color", "colored": "color", "coloured": "color",
	"flavor": "flavor name", "flavors": "flavor name", "flavored": "flavor name", "flavour": "flavor name", "flavoured": "flavor name",
	"scent": "scent", "scented": "scent", "scents": "scent", "fragrance": "scent",
	"style": "style", "styled": "style", "pattern": "pattern name", "print": "pattern name", "design": "style",
}

// valueTrim are words dropped from the ends of a cued value.
var valueTrim = set("a an the of in is as be should must one ones option options variant version variety type kind " +
	"that which and with please also it its color colour colored flavor flavored scent scented style styled pattern " +
	"print design i want need like my for to choose pick select get")

// findOptions marks option values. apparel allows bare small/medium/large.
func (d *data) findOptions(ws []word, start int, req *Request, apparel bool) {
	o := optionAdder{ws, req}
	for i := start; i < len(ws); i++ {
		if !free(ws, i) {
			continue
		}
		w := ws[i].w
		if end := o.measure(i); end > i {
			i = end - 1
			continue
		}
		if end := o.apparelSize(i, apparel); end > i {
			i = end - 1
			continue
		}
		if w == "size" || w == "sized" || w == "sizes" {
			if end := o.sizeCue(i, apparel); end > i {
				i = end - 1
			}
			continue
		}
		if g, ok := cueGroups[w]; ok {
			if end := o.cue(i, g); end > i {
				i = end - 1
			}
			continue
		}
		if end := d.bareColor(o, i); end > i {
			i = end - 1
		}
	}
}

// measure reads quantities at i: "4 ounce (pack of 2)", "6.76 fl oz",
// "20x20", "30 by 60 inches", "12 pack", "pack of 6", "7 count".
func (o optionAdder) measure(i int) int {
	ws := o.ws
	w := ws[i].w
	if w == "pack" || w == "set" || w == "box" || w == "case" || w == "bundle" {
		if at(ws, i+1) == "of" {
			if n, ok := number(at(ws, i+2)); ok && free(ws, i+2) {
				kind := "pack"
				if w == "set" {
					kind = "set"
				}
				o.add("size", kind+" of "+n, i, i+3)
				return i + 3
			}
		}
		return i
	}
	if v, ok := dims(w); ok {
		end := i + 1
		if u, ok := units[at(ws, end)]; ok && lengthUnits[u] && !strings.Contains(v, " ") {
			v += " " + u
			end++
		}
		o.add("size", v, i, end)
		return end
	}
	n, unit, glued := gluedUnit(w)
	if !glued {
		var ok bool
		n, ok = number(w)
		if !ok {
			return i
		}
		if ws[i].hyph && i > 0 && ws[i-1].used { // "-1.76 oz" after a word
			ws[i].hyph = false
		}
	}
	end := i + 1
	if !glued {
		next := at(ws, end)
		switch {
		case next == "x" || next == "by" || next == "*":
			if m, ok := number(at(ws, end+1)); ok {
				v := n + "x" + m
				end += 2
				if at(ws, end) == "x" {
					if k, ok := number(at(ws, end+1)); ok {
						v += "x" + k
						end += 2
					}
				}
				if u, ok := units[at(ws, end)]; ok && lengthUnits[u] {
					v += " " + u
					end++
				}
				o.add("size", v, i, end)
				return end
			}
			return i
		case next == "fl" && (at(ws, end+1) == "oz" || at(ws, end+1) == "ounce" || at(ws, end+1) == "ounces"):
			unit = "fl oz"
			end += 2
		case next == "fluid" && (strings.HasPrefix(at(ws, end+1), "ounce") || at(ws, end+1) == "oz"):
			unit = "fl oz"
			end += 2
		case next == "pack" || next == "packs":
			end++
			if at(ws, end) == "of" { // "6 pack of manual toothbrushes": the pack is the option
				ws[end].used = true
			}
			o.add("size", "pack of "+n, i, end)
			return end
		case (next == "wide" || next == "narrow") && isNumber(w):
			o.add("size", n+" "+next, i, end+1)
			return end + 1
		case next == "pairs" || next == "pair":
			o.add("size", n+" pairs", i, end+1)
			return end + 1
		default:
			u, ok := units[next]
			if !ok || (next == "in" && !isNumber(w)) {
				return i
			}
			if next == "in" { // "32 in" is inches only before a boundary or a noun, not "in black"
				if after := at(ws, end+1); after != "" && !stopWords[after] && !breakWords[after] {
					if _, isUnit := units[after]; !isUnit && cueGroups[after] == "" && !strictColors[after] {
						unit = u
						end++
						break
					}
				}
				if after := at(ws, end+1); after == "" {
					unit = u
					end++
					break
				}
				return i
			}
			unit = u
			end++
		}
	}
	value := n + " " + unit
	// "3 foot by 3 foot", "20 inch x 20 inch": a dimension.
	if lengthUnits[unit] && (at(ws, end) == "by" || at(ws, end) == "x") {
		m, ok := number(at(ws, end+1))
		if gm, gu, glued := gluedUnit(at(ws, end+1)); glued && gu == unit {
			m, ok = gm, true
		}
		if ok {
			value = n + "x" + m + " " + unit
			end += 2
			if u, ok := units[at(ws, end)]; ok && u == unit {
				end++
			}
			o.add("size", value, i, end)
			return end
		}
	}
	// "4 ounce (pack of 2)", "4 ounce pack of 2", "7 count (pack of 4)"
	j := end
	if at(ws, j) == "" && j < len(ws) && ws[j].w == "(" {
		j++
	}
	if (at(ws, j) == "pack" || at(ws, j) == "set") && at(ws, j+1) == "of" {
		if m, ok := number(at(ws, j+2)); ok {
			value += " (" + at(ws, j) + " of " + m + ")"
			end = j + 3
			if end < len(ws) && ws[end].w == ")" {
				end++
			}
		}
	}
	o.add("size", value, i, end)
	return end
}

// apparelSize reads "x-large", "xx-large", "xl", "extra large" and, for
// apparel or after "in a", bare "small", "medium", "large".
func (o optionAdder) apparelSize(i int, apparel bool) int {
	ws := o.ws
	w := ws[i].w
	if v, ok := apparelAlias[w]; ok && (len(w) > 2 || apparel || at(ws, i+1) == "size") {
		o.add("size", v, i, i+1)
		return i + 1
	}
	prefix := ""
	end := i
	switch w {
	case "x", "xx", "xxx", "2x", "3x", "4x", "5x":
		prefix = w + "-"
		if w == "xxx" {
			prefix = "3x-"
		}
		end++
	case "extra":
		prefix = "x-"
		end++
		if at(ws, end) == "extra" {
			prefix = "xx-"
			end++
		}
	}
	base := at(ws, end)
	if base != "small" && base != "large" && base != "medium" {
		return i
	}
	if prefix == "" && !apparel && at(ws, end+1) != "size" && at(ws, i-1) != "size" {
		return i
	}
	if prefix != "" && base == "medium" {
		return i
	}
	o.add("size", prefix+base, i, end+1)
	return end + 1
}

// sizeLead are words between "size" and its value ("size has to be medium").
var sizeLead = set("of is should be in a an us has have to must needs need would around about")

// sizeCue reads "size 7.5 wide", "us size 5", "size: small", "5.5 size",
// "twin sized", "in size square 22 x 22 inches".
func (o optionAdder) sizeCue(i int, apparel bool) int {
	ws := o.ws
	if i > 0 && ws[i-1].used && !ws[i-1].attr && !ws[i-1].punct {
		ws[i].used = true // "x-large size": the value is already read
		return i + 1
	}
	// Forwards: the value after "size".
	j := i + 1
	for sizeLead[at(ws, j)] || (j < len(ws) && ws[j].w == ":") {
		j++
	}
	if j < len(ws) && free(ws, j) {
		if end := o.apparelSize(j, true); end > j {
			ws[i].used = true
			return end
		}
		if end := o.measure(j); end > j {
			ws[i].used = true
			return end
		}
		if n, ok := number(ws[j].w); ok {
			v := n
			end := j + 1
			if at(ws, end) == "-" || (end < len(ws) && ws[end].hyph) {
				if m, ok := number(at(ws, end)); ok {
					v += "-" + m
					end++
				}
			}
			switch at(ws, end) {
			case "wide", "w":
				v += " wide"
				end++
			case "narrow":
				v += " narrow"
				end++
			case "x", "by":
				return o.measure(j)
			}
			if u, ok := units[at(ws, end)]; ok && lengthUnits[u] {
				v += " " + u
				end++
			}
			o.add("size", v, i, end)
			return end
		}
		if v, end := cuedWords(ws, j, 3); v != "" {
			o.add("size", v, i, end)
			return end
		}
	}
	// Backwards: "5.5 size", "twin sized".
	k := i - 1
	if free(ws, k) {
		if n, ok := number(ws[k].w); ok {
			o.add("size", n, k, i+1)
			return i + 1
		}
		if !stopWords[ws[k].w] && !breakWords[ws[k].w] {
			o.add("size", ws[k].w, k, i+1)
			return i + 1
		}
	}
	return i
}

// forwardCue are words after which a cue word's value follows it.
var forwardCue = set("in the a an with choose pick select get and also its of is my that which this your want need " +
	"like prefer preferably should be")

// cuedWords returns up to max free words from j, stopping at punctuation,
// used words and break words, with valueTrim words trimmed from both ends.
func cuedWords(ws []word, j, max int) (string, int) {
	var parts []string
	end := j
	for end < len(ws) && len(parts) < max && free(ws, end) && !breakWords[ws[end].w] {
		sep := " "
		if ws[end].hyph && len(parts) > 0 {
			sep = "-"
		}
		if len(parts) == 0 {
			sep = ""
		}
		parts = append(parts, sep+ws[end].w)
		end++
	}
	for len(parts) > 0 && valueTrim[strings.TrimLeft(parts[0], " -")] {
		parts = parts[1:]
	}
	for len(parts) > 0 && valueTrim[strings.TrimLeft(parts[len(parts)-1], " -")] {
		parts = parts[:len(parts)-1]
		end--
	}
	return strings.TrimLeft(strings.Join(parts, ""), " -"), end
}

// cue reads a value named by a cue word: "in the color redwood", "color:
// black", "vanilla flavor", "cool blue colored one", "flavor raspberry".
func (o optionAdder) cue(i int, group string) int {
	ws := o.ws
	if i > 0 && ws[i-1].used && !ws[i-1].attr && !ws[i-1].punct {
		ws[i].used = true // "black color": the value is already read
		return i + 1
	}
	// Backwards: words right before the cue ("chocolate hazelnut crisp flavor").
	var back []int
	for k := i - 1; k >= 0 && len(back) < 3 && free(ws, k) && !breakWords[ws[k].w] && !skipWords[ws[k].w]; k-- {
		back = append([]int{k}, back...)
	}
	// "vanilla flavor", "ice coffee flavor protein powder": the words before.
	if len(back) > 0 {
		var parts []string
		for _, k := range back {
			sep := " "
			if ws[k].hyph && len(parts) > 0 {
				sep = "-"
			}
			parts = append(parts, sep+ws[k].w)
		}
		v := strings.TrimLeft(strings.Join(parts, ""), " -")
		end := i + 1
		if at(ws, end) == "one" || at(ws, end) == "ones" || at(ws, end) == "variety" || at(ws, end) == "option" {
			end++
		}
		o.add(group, v, back[0], end)
		return end
	}
	// Forwards: "in the color redwood", "color: black", "choose flavor
	// raspberry"; not after a content word or a number ("low carb flavor
	// syrup", "two flavor energy shots" name no flavor).
	if prev := at(ws, i-1); i > 0 && !ws[i-1].punct && !forwardCue[prev] {
		return i
	}
	j := i + 1
	for j < len(ws) && (ws[j].w == ":" || ws[j].w == "of" || ws[j].w == "is" || ws[j].w == "should" || ws[j].w == "be" ||
		ws[j].w == "as" || ws[j].w == "in" || ws[j].w == "the" || ws[j].w == "a" || ws[j].w == "being" || ws[j].w == "option") {
		j++
	}
	if v, end := cuedWords(ws, j, 4); v != "" {
		o.add(group, v, i, end)
		return end
	}
	return i
}

// bareColor reads a colour without a cue: "navy blue", "light-grey", "black".
func (d *data) bareColor(o optionAdder, i int) int {
	ws := o.ws
	j := i
	var parts []string
	for j < len(ws) && free(ws, j) && colorModifiers[ws[j].w] && len(parts) < 2 {
		parts = append(parts, ws[j].w)
		j++
	}
	if (j >= len(ws) || !free(ws, j) || !strictColors[ws[j].w]) && len(parts) > 0 && strictColors[parts[len(parts)-1]] {
		j-- // "navy" alone: a modifier that is a colour itself
		parts = parts[:len(parts)-1]
	}
	if j >= len(ws) || !free(ws, j) || !strictColors[ws[j].w] {
		return i
	}
	parts = append(parts, ws[j].w)
	j++
	// a second colour joined by "-" or "/" ("black-white")
	if j < len(ws) && free(ws, j) && ws[j].hyph && strictColors[ws[j].w] {
		parts = append(parts, ws[j].w)
		j++
	}
	if next := at(ws, j); notColorNext[next] {
		return i
	}
	v := strings.Join(parts, " ")
	if len(parts) > 1 && ws[j-1].hyph {
		v = strings.Join(parts[:len(parts)-1], " ") + "-" + parts[len(parts)-1]
	}
	if strings.ContainsRune(v, '/') {
		v = strings.ReplaceAll(v, "/", " | ")
	}
	o.add("color", v, i, j)
	return j
}

// containerWords are nouns that a quantity "of" joins to the product.
var containerWords = set("pack packs set sets box boxes bag bags bottle bottles bundle bundles case cases jar jars " +
	"can cans container containers packet packets pair pairs piece pieces variety kind type couple dozen tin tins " +
	"roll rolls carton cartons tube tubes bar bars")

// findType returns the product type: the last one or two words of the first
// noun phrase, skipping determiners, options and adjectival attributes. When
// that leaves nothing, attribute words of the phrase count as nouns: first
// those of "for" and "with" phrases ("eye shadow"), then any.
func (d *data) findType(ws []word, start int) []string {
	for pass := 0; pass < 3; pass++ {
		// The first noun phrase ending in a product noun the catalogue knows,
		// else the first noun phrase.
		var first []string
		for from := start; from < len(ws); {
			noun, end := d.nounPhrase(ws, from, pass)
			if len(noun) == 0 {
				break
			}
			if first == nil {
				first = noun
			}
			if len(d.byHead[singular(noun[len(noun)-1])]) > 0 {
				first = noun
				break
			}
			from = end
		}
		if len(first) > 2 {
			first = first[len(first)-2:]
		}
		if len(first) > 0 {
			return first
		}
	}
	return nil
}

// nounPhrase returns the first noun phrase from start and the index after it.
func (d *data) nounPhrase(ws []word, start, pass int) ([]string, int) {
	var noun, tail []string // tail: skipped attribute words right after the nouns
	i := start
	for ; i < len(ws); i++ {
		w := ws[i]
		if w.punct || w.w == "&" {
			if len(noun) > 0 {
				break
			}
			continue
		}
		if w.w == "of" && i > 0 && containerWords[ws[i-1].w] {
			noun = noun[:0]
			continue
		}
		if w.used && !w.attr {
			continue // an option inside the noun phrase
		}
		if w.adj && (pass == 0 || (pass == 1 && w.aslot == slotPre)) {
			if len(noun) > 0 && w.aslot != slotPre {
				tail = append(tail, w.w)
			}
			continue
		}
		if w.hyph && len(noun) > 0 && !w.attr {
			noun[len(noun)-1] += "-" + w.w // "button-down"
			tail = tail[:0]
			continue
		}
		if w.attr {
			noun, tail = append(noun, w.w), tail[:0]
			continue
		}
		if breakWords[w.w] || stopWords[w.w] {
			if len(noun) > 0 {
				break
			}
			continue
		}
		if skipWords[w.w] && len(noun) == 0 {
			continue
		}
		if _, isNum := number(w.w); isNum && len(noun) == 0 {
			continue
		}
		if !unicode.IsLetter([]rune(w.w)[0]) && len(noun) == 0 {
			continue
		}
		noun, tail = append(noun, w.w), tail[:0]
	}
	// "makeup travel storage case": a with/for phrase ending the noun phrase
	// is its head.
	return append(noun, tail...), i + 1
}

// isApparel reports whether a product type is clothing or shoes.
func (d *data) isApparel(typeWords []string) bool {
	if len(typeWords) == 0 {
		return false
	}
	s := d.matchSub(typeWords, nil)
	return s != nil && s.cat.name == "fashion"
}
