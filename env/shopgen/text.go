package shopgen

import (
	"math/rand/v2"
	"slices"
	"strings"
)

// Rendering a product's title, bullet points and description in the style of
// WebShop's Amazon listings: a brand first, a long keyword-stuffed title of
// comma-separated parts, selling-point bullets, and a description.

var upperWords = set("hd usb led tv hdmi vr ac dvd cd lcd fm sd tf bpa gmo usda pu lte av ups rgb hdr bbq uv " +
	"spf diy pc xl xxl xs 4k 5g 4g ssd hdd ram gps ipad iphone")
var smallWords = set("and for with of the in to a de or")

// titleCase capitalises words Amazon-style ("x-large" -> "X-Large").
func titleCase(s string) string {
	words := strings.Split(s, " ")
	for i, wd := range words {
		if wd == "" {
			continue
		}
		if i > 0 && smallWords[wd] {
			continue
		}
		parts := strings.Split(wd, "-")
		for j, p := range parts {
			switch {
			case upperWords[p]:
				parts[j] = strings.ToUpper(p)
			case p != "":
				rs := []rune(p)
				if rs[0] >= 'a' && rs[0] <= 'z' {
					rs[0] -= 32
				}
				parts[j] = string(rs)
			}
		}
		words[i] = strings.Join(parts, "-")
	}
	return strings.Join(words, " ")
}

func capFirst(s string) string {
	if s == "" {
		return s
	}
	rs := []rune(s)
	if rs[0] >= 'a' && rs[0] <= 'z' {
		rs[0] -= 32
	}
	return string(rs)
}

// audience are "for ..." parts of titles, per category.
var audience = map[string][]string{
	"beauty":      {"for Women", "for Men", "for Women and Men", "for Girls", "for Daily Use", "for Travel", "Gift for Her"},
	"fashion":     {"for Women", "for Men", "for Girls", "for Boys", "for Teens", "for Summer", "for Winter", "for Work"},
	"electronics": {"for Home", "for Office", "for Travel", "for Gaming", "for Car", "for Kids", "for Outdoor"},
	"garden":      {"for Living Room", "for Bedroom", "for Home Office", "for Kitchen", "for Small Spaces", "for Apartment", "for Home Decor"},
	"grocery":     {"for Snacking", "for Kids", "for Office", "for Parties", "for Breakfast", "Gift Box", "Pantry Staple"},
}

var attrBulletTemplates = map[slot][]string{
	slotPre:  {"Our {noun} {is} {a}, just as you expect.", "{A} by design, for everyday confidence.", "Thoughtfully made to be {a}."},
	slotWith: {"Crafted with {a} for better results.", "Features {a} you will notice.", "Comes with {a}."},
	slotFor:  {"Designed for {a}.", "Great for {a}.", "Made with {a} in mind."},
	slotType: {"One of our best-selling {a}.", "Quality {a} you can rely on."},
}

var attrSentences = map[slot][]string{
	slotPre:  {"This {noun} {is} {a}.", "Key features: {a}.", "Designed to be {a}."},
	slotWith: {"Made with {a}.", "It features {a}.", "Crafted with {a} for lasting value."},
	slotFor:  {"Ideal for {a}.", "Perfect for {a}.", "A great choice for {a}."},
	slotType: {"A dependable pick among {a}.", "Shop with confidence for {a}."},
}

var bulletHeads = []string{"QUALITY", "SATISFACTION", "DETAILS", "WHY CHOOSE US", "NOTE", "SERVICE", "PACKAGE"}

func plural(noun string) bool {
	w := strings.ToLower(lastWord(noun))
	return strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") || pluralOnly[w]
}

func fill(t, noun, a string) string {
	if plural(noun) {
		t = strings.ReplaceAll(t, "{is}", "are")
	} else {
		t = strings.ReplaceAll(t, "{is}", "is")
	}
	t = strings.ReplaceAll(t, "{noun}", noun)
	t = strings.ReplaceAll(t, "{A}", capFirst(a))
	return strings.ReplaceAll(t, "{a}", a)
}

// form is how text writes an attribute. Like real listings, text seldom has
// the mined phrase verbatim: it writes "gluten-free", "easy to clean". With
// verbatim, or one time in four, it is the phrase itself (the reward's
// substring check then finds it).
func form(r *rand.Rand, a *attr, verbatim bool) string {
	u := r.IntN(100)
	switch {
	case verbatim || u < 25:
		return a.phrase
	case a.natural != "" && u < 75:
		return a.natural
	}
	return strings.ReplaceAll(a.phrase, " ", "-")
}

// rendered is a product's text.
type rendered struct {
	title   string
	bullets []string
	desc    string
}

// place says where the text writes an attribute.
type place uint8

const (
	inTitle place = iota
	inFirstBullet
	inDesc
	inLaterBullet
	nowhere
)

func (p *product) render() rendered {
	r := rand.New(rand.NewPCG(p.seed, 0x7465787431))
	cat := p.sub.cat
	lnoun := strings.ToLower(p.noun)

	// Where each attribute goes. Hidden ones never reach the searchable text
	// (title, description, first bullet).
	places := map[*attr]place{}
	for _, a := range p.attrs {
		switch {
		case p.textless[a.phrase] && !p.dummy:
			places[a] = nowhere
		case p.hidden[a.phrase] || (p.role != roleTarget && r.Float64() < 0.25):
			places[a] = inLaterBullet
		default:
			switch u := r.Float64(); {
			case u < 0.5:
				places[a] = inTitle
			case u < 0.7:
				places[a] = inFirstBullet
			default:
				places[a] = inDesc
			}
		}
	}

	// Title: the core, then comma-separated parts up to a drawn length.
	brandFirst := r.IntN(100) < 88
	var core []string
	if brandFirst {
		core = append(core, p.brand)
	}
	if p.sub.pre != "" && p.role == roleFiller && r.IntN(2) == 0 {
		core = append(core, p.sub.pre)
	}
	if len(p.sub.desc) > 0 && r.IntN(100) < 45 {
		core = append(core, pick(r, p.sub.desc))
	}
	for _, w := range p.words {
		if len(core) < 6 {
			core = append(core, titleCase(w))
		}
	}
	var parts []string
	for _, a := range p.attrs {
		if places[a] != inTitle {
			continue
		}
		f := titleCase(form(r, a, p.dummy))
		switch {
		case a.slot == slotFor:
			parts = append(parts, "for "+f)
		case a.slot == slotWith && r.IntN(2) == 0:
			parts = append(parts, "with "+f)
		case r.IntN(3) == 0:
			core = append(core, f)
		default:
			parts = append(parts, f)
		}
	}
	core = append(core, p.noun)
	var stuff []string
	for _, s := range p.sub.say {
		if !strings.EqualFold(s, p.noun) && p.role != roleDistractor {
			stuff = append(stuff, titleCase(s))
		}
	}
	aud := slices.Clone(audience[cat.name])
	r.Shuffle(len(aud), func(i, j int) { aud[i], aud[j] = aud[j], aud[i] })
	stuff = append(stuff, aud[:1+r.IntN(2)]...)
	for _, w := range cat.cdesc {
		stuff = append(stuff, w)
	}
	for _, w := range p.sub.desc {
		stuff = append(stuff, w)
	}
	for _, g := range p.opts {
		if g.name == "color" && len(g.values) > 0 && r.IntN(3) == 0 {
			stuff = append(stuff, titleCase(g.values[0]))
		}
	}
	r.Shuffle(len(stuff), func(i, j int) { stuff[i], stuff[j] = stuff[j], stuff[i] })
	r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	target := 12 + r.IntN(19)
	title := strings.Join(core, " ")
	count := len(strings.Fields(title))
	for _, x := range parts {
		title += ", " + x
		count += len(strings.Fields(x))
	}
	for i := 0; count < target && i < len(stuff); i++ {
		sep := ", "
		if r.IntN(5) == 0 {
			sep = " "
		}
		title += sep + stuff[i]
		count += len(strings.Fields(stuff[i]))
	}
	if !brandFirst {
		title += " by " + p.brand
	}
	title = dedupWords(title)

	// Bullets: attribute bullets and selling points, 3 to 6.
	nb := 3 + r.IntN(4)
	style := r.IntN(3)
	bulletFor := func(a *attr) string {
		f := form(r, a, p.dummy)
		tmpl := attrBulletTemplates[a.slot]
		body := fill(pick(r, tmpl), lnoun, f)
		switch style {
		case 0:
			return strings.ToUpper(f) + ": " + body
		case 1:
			return titleCase(f) + " - " + body
		}
		return body
	}
	var first string
	var later []string
	for _, a := range p.attrs {
		switch places[a] {
		case inFirstBullet:
			if first == "" {
				first = bulletFor(a)
			} else {
				later = append(later, bulletFor(a))
			}
		case inLaterBullet:
			later = append(later, bulletFor(a))
		case inTitle, inDesc:
			if p.dummy || r.IntN(100) < 30 {
				later = append(later, bulletFor(a))
			}
		}
	}
	bi := r.IntN(len(cat.benefits))
	benefit := func(j int) string {
		t := cat.benefits[(bi+j)%len(cat.benefits)]
		if style == 0 {
			t = bulletHeads[(bi+j)%len(bulletHeads)] + ": " + t
		}
		return t
	}
	var bullets []string
	j := 0
	if first != "" {
		bullets = append(bullets, first)
	} else {
		bullets = append(bullets, benefit(j))
		j++
	}
	r.Shuffle(len(later), func(a, b int) { later[a], later[b] = later[b], later[a] })
	bullets = append(bullets, later...)
	for len(bullets) < nb {
		bullets = append(bullets, benefit(j))
		j++
	}
	if len(bullets) > 1 && r.IntN(2) == 0 {
		// keep the first; shuffle the order of the rest
		rest := bullets[1:]
		r.Shuffle(len(rest), func(a, b int) { rest[a], rest[b] = rest[b], rest[a] })
	}

	// Description.
	var desc string
	if !p.emptyDesc {
		var db strings.Builder
		intro := pick(r, cat.intros)
		intro = strings.ReplaceAll(intro, "{brand}", p.brand)
		intro = strings.ReplaceAll(intro, "{noun}", lnoun)
		db.WriteString(capFirst(intro))
		for _, a := range p.attrs {
			if places[a] == inDesc || (places[a] == inTitle && r.IntN(100) < 25) {
				db.WriteString(" " + fill(pick(r, attrSentences[a.slot]), lnoun, form(r, a, p.dummy)))
			}
		}
		for k := 0; k < 1+r.IntN(2); k++ {
			db.WriteString(" " + cat.benefits[(bi+nb+k)%len(cat.benefits)])
		}
		desc = db.String()
	}
	out := rendered{title: title, bullets: bullets, desc: desc}
	out.sanitize(p.mustLack)
	return out
}

// sanitize removes title parts, bullets and description sentences that
// contain a phrase the product must not show (lowercased substring, as the
// reward checks).
func (t *rendered) sanitize(phrases []string) {
	if len(phrases) == 0 {
		return
	}
	has := func(s string) bool {
		ls := strings.ToLower(s)
		return slices.ContainsFunc(phrases, func(p string) bool { return strings.Contains(ls, p) })
	}
	if has(t.title) {
		parts := strings.Split(t.title, ", ")
		kept := parts[:0]
		for i, x := range parts {
			if i == 0 || !has(x) {
				kept = append(kept, x)
			}
		}
		t.title = strings.Join(kept, ", ")
		for _, p := range phrases {
			t.title = cutPhrase(t.title, p)
		}
	}
	t.bullets = slices.DeleteFunc(t.bullets, has)
	if has(t.desc) {
		sents := strings.SplitAfter(t.desc, ". ")
		kept := sents[:0]
		for _, s := range sents {
			if !has(s) {
				kept = append(kept, s)
			}
		}
		t.desc = strings.TrimSpace(strings.Join(kept, ""))
	}
}

// cutPhrase removes every whole word of s that overlaps an occurrence of
// phrase (compared lowercased), then tidies spaces and commas.
func cutPhrase(s, phrase string) string {
	for {
		i := strings.Index(strings.ToLower(s), phrase)
		if i < 0 || phrase == "" {
			return s
		}
		st := strings.LastIndexAny(s[:i], " ") + 1
		en := i + len(phrase)
		if k := strings.IndexAny(s[en:], " ,"); k >= 0 {
			en += k
		} else {
			en = len(s)
		}
		s = s[:st] + s[en:]
		s = strings.Join(strings.Fields(s), " ")
		s = strings.ReplaceAll(s, " ,", ",")
		s = strings.ReplaceAll(s, ",,", ",")
		s = strings.Trim(s, ", ")
	}
}

// dedupWords drops a word repeating the one before it ("Ultra Ultra HD").
func dedupWords(s string) string {
	f := strings.Split(s, " ")
	out := f[:1]
	for _, w := range f[1:] {
		if !strings.EqualFold(strings.Trim(w, ","), strings.Trim(out[len(out)-1], ",")) {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}
