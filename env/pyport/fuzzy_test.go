package pyport

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzyCase is one entry of testdata/fuzzy/cases.json, produced by
// testdata/fuzzy/gen_cases.py with fuzzywuzzy 0.18 and CPython 3.11 difflib.
type fuzzyCase struct {
	A             string  `json:"a"`
	B             string  `json:"b"`
	TokenSetRatio int     `json:"token_set_ratio"`
	SequenceRatio float64 `json:"sequence_ratio"`
}

func loadFuzzyCases(t testing.TB) []fuzzyCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "fuzzy", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []fuzzyCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 250 {
		t.Fatalf("only %d cases in cases.json", len(cases))
	}
	return cases
}

func TestFuzzyPythonCases(t *testing.T) {
	cases := loadFuzzyCases(t)
	var long, nonASCII, halves int
	for _, c := range cases {
		if got := TokenSetRatio(c.A, c.B); got != c.TokenSetRatio {
			t.Errorf("TokenSetRatio(%q, %q) = %d, python %d", c.A, c.B, got, c.TokenSetRatio)
		}
		got := SequenceRatio(c.A, c.B)
		if math.Abs(got-c.SequenceRatio) > 1e-12 {
			t.Errorf("SequenceRatio(%q, %q) = %v, python %v", c.A, c.B, got, c.SequenceRatio)
		}
		if len([]rune(c.B)) >= 200 {
			long++
		}
		if !fuzzyIsASCII([]byte(c.A + c.B)) {
			nonASCII++
		}
		if x := 100 * c.SequenceRatio; x-math.Floor(x) == 0.5 {
			halves++
		}
	}
	// Make sure the data still exercises the tricky paths.
	if long < 10 || nonASCII < 20 || halves < 6 {
		t.Errorf("cases.json lacks coverage: %d long, %d non-ASCII, %d exact halves", long, nonASCII, halves)
	}
}

// TestTokenSetRatioWebShopReference checks values WebShop's reward relies on
// (attribute matching uses fuzz.token_set_ratio(...) > 85); the expected
// numbers come from fuzzywuzzy 0.18 without python-Levenshtein.
func TestTokenSetRatioWebShopReference(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"essential oil", "essential oils", 96},
		{"essential oils", "essential oil", 96},
		{"tea tree", "tea tree oil", 100},
		{"gluten free", "dairy free", 57},
		{"x-large", "X-Large", 100},
		{"dark brown", "brown", 100},
		{"", "", 0},
		{"abc", "", 0},
		{"!!!", "!!!", 0},
		{"café crème", "cafe creme", 89},
	} {
		if got := TokenSetRatio(c.a, c.b); got != c.want {
			t.Errorf("TokenSetRatio(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	if TokenSetRatio("essential oil", "essential oils") <= 85 {
		t.Error("WebShop's attribute threshold: essential oil vs essential oils must exceed 85")
	}
}

func TestSequenceRatioBasics(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want float64
	}{
		{"", "", 1},
		{"a", "", 0},
		{"", "a", 0},
		{"abcd", "abcd", 1},
		{"abxcd", "abcd", 2.0 * 4 / 9},
		{"abcd", "bcde", 2.0 * 3 / 8},
		// difflib's docstring example, without its isjunk function.
		{"private Thread currentThread;", "private volatile Thread currentThread;", 2.0 * 29 / 67},
	} {
		if got := SequenceRatio(c.a, c.b); got != c.want {
			t.Errorf("SequenceRatio(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestSequenceRatioAutojunk checks the popular-element rule: in a b of 200
// or more elements, an element occurring more than len(b)/100+1 times cannot
// start a match, but difflib still extends the (possibly empty) best match
// over equal neighbours, popular or not. Expected values are from CPython.
func TestSequenceRatioAutojunk(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want float64
	}{
		// Nothing found through b2j; the empty match at (0, 0) is extended.
		{strings.Repeat("a", 10), strings.Repeat("a", 200), 2.0 * 10 / 210},
		{strings.Repeat("a", 10), "x" + strings.Repeat("a", 199), 0},
		{strings.Repeat("a", 10), strings.Repeat("a", 199), 2.0 * 10 / 209},
		// "b" is not popular and starts a match that extends over the a's.
		{"b" + strings.Repeat("a", 5), "b" + strings.Repeat("a", 199), 2.0 * 6 / 206},
	} {
		if got := SequenceRatio(c.a, c.b); got != c.want {
			t.Errorf("SequenceRatio(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// fuzzyProcessed is utils.full_process(s, force_ascii=True).
func fuzzyProcessed(s string) string {
	var sb strings.Builder
	fuzzyFullProcess(&sb, s)
	return fuzzyTrimSpaces(sb.String())
}

func TestFuzzyFullProcess(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"  Hello, World!  ", "hello  world"},
		{"a_b-c", "a_b c"},
		{"café", "caf"},
		{"ΟΔΟΣ ΣΑ", "οδος σα"},
		{"ΑΣ_Β", "ας_β"},
		{"İ", "i\u0307"},
		{"ｆＵ", "ｆｕ"},
		{"x😀y", "x y"},
		{"\xffab", "ab"},
	} {
		if got := fuzzyProcessed(c.in); got != c.want {
			t.Errorf("fuzzyFullProcess(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestTokenSetRatioAllocations(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		TokenSetRatio("easy clean stainless steel", "stainless steel easy to clean")
	})
	if allocs > 8 { // 3 with optimizations; slack for unusual build flags
		t.Errorf("TokenSetRatio allocates %v times per call", allocs)
	}
}

func FuzzTokenSetRatio(f *testing.F) {
	f.Add("essential oil", "essential oils")
	f.Add("", "")
	f.Add("café crème", "ΟΔΟΣ İ")
	f.Add(strings.Repeat("ab ", 80), strings.Repeat("ba ", 90))
	f.Add("\xff\xfe", "x")
	f.Fuzz(func(t *testing.T, a, b string) {
		r := TokenSetRatio(a, b)
		if r < 0 || r > 100 {
			t.Fatalf("TokenSetRatio(%q, %q) = %d out of range", a, b, r)
		}
		if r2 := TokenSetRatio(b, a); r2 < 0 || r2 > 100 {
			t.Fatalf("TokenSetRatio(%q, %q) = %d out of range", b, a, r2)
		}
		if fuzzyProcessed(a) != "" {
			if self := TokenSetRatio(a, a); self != 100 {
				t.Fatalf("TokenSetRatio(%q, itself) = %d", a, self)
			}
		} else if r != 0 {
			t.Fatalf("TokenSetRatio(%q, %q) = %d with empty processed a", a, b, r)
		}
		s := SequenceRatio(a, b)
		if !(s >= 0 && s <= 1) {
			t.Fatalf("SequenceRatio(%q, %q) = %v out of range", a, b, s)
		}
		// Below 200 code points autojunk is off and a string fully matches
		// itself.
		if n := len([]rune(a)); n < 200 && SequenceRatio(a, a) != 1 {
			t.Fatalf("SequenceRatio(%q, itself) != 1", a)
		}
	})
}

func BenchmarkTokenSetRatio(b *testing.B) {
	for b.Loop() {
		TokenSetRatio("easy clean stainless steel", "stainless steel easy to clean")
	}
}

func BenchmarkSequenceRatioLong(b *testing.B) {
	x := strings.Repeat("natural ingredients tea tree ", 12)
	y := strings.Repeat("tea tree natural ingredient ", 12)
	for b.Loop() {
		SequenceRatio(x, y)
	}
}
