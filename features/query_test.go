package features

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestKeywordQuery(t *testing.T) {
	q := KeywordQuery{}
	for _, c := range []struct{ ins, want string }{
		{"i would like a 1 pound 20 pack gluten-free brown rice that is non-gmo and with natural ingredients, and price lower than 20.00 dollars",
			"1 pound 20 gluten-free brown rice non-gmo natural ingredients"},
		{"i need to buy a fresh scented hair repair mask for hair treatment and in a 4 ounce size, and price lower than 30.00 dollars",
			"fresh hair repair mask treatment 4 ounce"},
		{"Find me a brushed nickel wall sconce.", "brushed nickel wall sconce"},
		{"im looking for gluten free 1.4 ounce (pack of 12) bars", "gluten free 1.4 ounce 12 bars"},
		{"i am looking for a pink/blue switch gaming keyboard that is non-slip", "pink/blue switch gaming keyboard non-slip"},
	} {
		got := q.Queries(c.ins)
		if got[0] != c.want {
			t.Errorf("%q:\n got %q\nwant %q", c.ins, got[0], c.want)
		}
		if strings.Contains(strings.Join(got, " "), "dollars") {
			t.Errorf("%q: price clause kept in %q", c.ins, got)
		}
	}
	long := "i want a red blue green small large heavy duty easy clean machine wash soft cotton shirt"
	if got := q.Queries(long)[0]; len(strings.Fields(got)) != DefaultQueryWords {
		t.Errorf("cap: %q", got)
	}
	if got := (KeywordQuery{MaxWords: 3}).Queries(long)[0]; got != "red blue green" {
		t.Errorf("MaxWords 3: %q", got)
	}
	// Candidates are distinct and non-empty, even for degenerate input.
	for _, ins := range []string{"", "i need the", "shoes", "i want a nice thing, and price lower than 10.00 dollars"} {
		got := q.Queries(ins)
		if len(got) == 0 || slices.Contains(got, "") {
			t.Errorf("%q: %q", ins, got)
		}
		seen := map[string]bool{}
		for _, g := range got {
			if seen[g] {
				t.Errorf("%q: repeated candidate in %q", ins, got)
			}
			seen[g] = true
		}
	}
}

func TestQueryTokenF1(t *testing.T) {
	for _, c := range []struct {
		q, r string
		want float64
	}{
		{"red shoes", "red shoes", 1},
		{"red shoes size 9", "red shoes", 2 * 0.5 * 1 / 1.5},
		{"", "x", 0},
		{"blue", "red", 0},
		{"Red, Shoes!", "red shoes", 1},
	} {
		if got := QueryTokenF1(c.q, c.r); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("F1(%q, %q) = %g, want %g", c.q, c.r, got, c.want)
		}
	}
}
