package shopgen

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"shopagent/env/webshopdata"
)

// Other values for an option group: what a product page lists beside the
// value an instruction asks for.

// optionPool holds, per option group, every value the parser reads from
// WebShop's 12,087 human instructions (sorted, distinct): real values to draw
// alternatives from when the catalogue's pools have none alike.
var optionPool = sync.OnceValue(func() map[string][]string {
	d, err := loadData()
	if err != nil {
		panic(err)
	}
	seen := map[string]map[string]bool{}
	for _, ins := range webshopdata.HumanGoals() {
		for _, o := range d.parse(ins).Options {
			if seen[o.Group] == nil {
				seen[o.Group] = map[string]bool{}
			}
			seen[o.Group][o.Value] = true
		}
	}
	out := map[string][]string{}
	for g, vs := range seen {
		for v := range vs {
			out[g] = append(out[g], v)
		}
		sort.Strings(out[g])
	}
	return out
})

var numberRE = regexp.MustCompile(`\d+(\.\d+)?`)

// alternatives returns other values for the option's group, shuffled by r,
// none equal to the wanted value.
func (d *data) alternatives(r *rand.Rand, o Option, s *sub) []string {
	v := o.Value
	var out []string
	addAll := func(xs []string) {
		for _, x := range xs {
			x = strings.ReplaceAll(x, "/", " | ")
			if x != v && !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	// A pool of the catalogue that holds the value, the sub-category's first.
	kinds := slices.Clone(s.opts)
	for _, k := range d.kinds {
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	for _, k := range kinds {
		if k.group != o.Group {
			continue
		}
		i := slices.IndexFunc(k.values, func(x string) bool { return strings.ReplaceAll(x, "/", " | ") == v })
		if i < 0 {
			continue
		}
		if k.ordered {
			lo, hi := max(0, i-4), min(len(k.values), i+5)
			addAll(k.values[lo:hi])
		} else {
			addAll(k.values)
		}
		break
	}
	if i := slices.Index(apparelSizes, v); i >= 0 && len(out) == 0 {
		addAll(apparelSizes[max(0, i-3):min(len(apparelSizes), i+4)])
	}
	if len(out) == 0 && numberRE.MatchString(v) {
		addAll(numberVariants(v))
	}
	if len(out) == 0 && o.Group == "color" {
		for _, k := range kinds {
			if k.group == "color" {
				addAll(k.values)
				break
			}
		}
	}
	if len(out) < 3 {
		pool := optionPool()[o.Group]
		if len(pool) > 0 {
			start := r.IntN(len(pool))
			for i := 0; i < 12 && i < len(pool); i++ {
				addAll([]string{pool[(start+i*7919)%len(pool)]})
			}
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// numberVariants changes the first number of a value ("4 ounce (pack of 2)"
// -> "8 ounce (pack of 2)", "2 ounce (pack of 2)", ...).
func numberVariants(v string) []string {
	loc := numberRE.FindStringIndex(v)
	if loc == nil {
		return nil
	}
	n, err := strconv.ParseFloat(v[loc[0]:loc[1]], 64)
	if err != nil || n <= 0 {
		return nil
	}
	isInt := !strings.Contains(v[loc[0]:loc[1]], ".")
	var out []string
	for _, f := range []float64{0.5, 2, 1.5, 3, 0.25, 4} {
		m := n * f
		var s string
		switch {
		case isInt && m == float64(int(m)):
			s = strconv.Itoa(int(m))
		case isInt:
			continue
		default:
			s = strconv.FormatFloat(m, 'f', -1, 64)
		}
		if s == "0" {
			continue
		}
		out = append(out, v[:loc[0]]+s+v[loc[1]:])
	}
	if isInt && n < 20 {
		for _, dlt := range []int{1, -1, 2} {
			if m := int(n) + dlt; m > 0 {
				out = append(out, v[:loc[0]]+strconv.Itoa(m)+v[loc[1]:])
			}
		}
	}
	return out
}
