package env

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func fixtureOptions() LoadOptions {
	return LoadOptions{
		ProductsPath:   "testdata/webshop/items_shuffle_fixture.json",
		AttributesPath: "testdata/webshop/items_ins_v2_fixture.json",
		HumanInsPath:   "testdata/webshop/items_human_ins_fixture.json",
		Seed:           7,
	}
}

func TestLoadCatalogCleaningRules(t *testing.T) {
	c, err := LoadCatalog(fixtureOptions())
	if err != nil {
		t.Fatal(err)
	}
	var asins []string
	for _, p := range c.Products {
		asins = append(asins, p.ASIN)
	}
	if got := strings.Join(asins, ","); got != "B07DJJXGB5,B08X2PKKB2,B0NOPRICE1" {
		t.Fatalf("kept %s", got)
	}
	scrub := c.Products[0]
	if scrub.Title != "Tea Tree Body Scrub" || scrub.Query != "scrubs & body treatments" ||
		scrub.PriceText != "$10.99" || scrub.Price != 10.99 || scrub.MainImage != "https://example.com/a.jpg" {
		t.Errorf("scrub: %+v", scrub)
	}
	if want := []OptionGroup{{Name: "size", Values: []string{"8 ounce", "16 ounce"}}}; !reflect.DeepEqual(scrub.Options, want) {
		t.Errorf("scrub options %+v (null groups must be skipped)", scrub.Options)
	}
	if !reflect.DeepEqual(scrub.Attributes, []string{"tea tree", "essential oils", "natural ingredients"}) ||
		scrub.Instruction == "" || len(scrub.HumanInstructions) != 2 {
		t.Errorf("scrub attributes/instructions: %+v", scrub)
	}
	box := c.Products[1]
	if !reflect.DeepEqual(box.BulletPoints, []string{"One bullet as a string"}) {
		t.Errorf("string small_description: %q", box.BulletPoints)
	}
	if box.PriceText != "$5.99 to $7.99" || box.Price < 5.99 || box.Price > 7.99 {
		t.Errorf("range price: %q %v", box.PriceText, box.Price)
	}
	// "Color" then "color": one group at the first position with the last values.
	if want := []OptionGroup{{Name: "color", Values: []string{"blue"}}}; !reflect.DeepEqual(box.Options, want) {
		t.Errorf("merged option groups %+v", box.Options)
	}
	lamp := c.Products[2]
	if lamp.PriceText != "$100.0" || lamp.Price != 100 || !reflect.DeepEqual(lamp.Attributes, []string{"DUMMY_ATTR"}) {
		t.Errorf("lamp: %+v", lamp)
	}
	// The range draw is seeded.
	c2, _ := LoadCatalog(fixtureOptions())
	if c2.Products[1].Price != box.Price {
		t.Errorf("price draw not deterministic: %v vs %v", c2.Products[1].Price, box.Price)
	}
	o := fixtureOptions()
	o.Limit = 1
	c3, err := LoadCatalog(o)
	if err != nil || len(c3.Products) != 1 {
		t.Errorf("limit: %v %d", err, len(c3.Products))
	}
}

func TestNormalizeOptionValue(t *testing.T) {
	if got := NormalizeOptionValue(" Rose Gold/Pink "); got != "rose gold | pink" {
		t.Errorf("got %q", got)
	}
}

func TestParsePricing(t *testing.T) {
	cases := []struct {
		in   string
		vals []float64
		text string
	}{
		{"", nil, "$100.0"},
		{"$15", []float64{15}, "$15.0"},
		{"$10.99", []float64{10.99}, "$10.99"},
		{"$5.99 - $7.99", []float64{5.99, 7.99}, "$5.99 to $7.99"},
		{"$1,299.00", []float64{1299}, "$1299.0"},
		{"$1 - $2 - $3", []float64{1, 2}, "$1.0 to $2.0"},
	}
	for _, c := range cases {
		vals, text, err := ParsePricing(c.in)
		if err != nil || !reflect.DeepEqual(vals, c.vals) || text != c.text {
			t.Errorf("ParsePricing(%q) = %v %q %v, want %v %q", c.in, vals, text, err, c.vals, c.text)
		}
	}
	for _, bad := range []string{"$", "$1.2.3", "free"} {
		if _, _, err := ParsePricing(bad); err == nil {
			t.Errorf("ParsePricing(%q): want an error", bad)
		}
	}
}

func TestLoadCatalogBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `{"asin": "B000000001", "name": "A", "full_description": "", "small_description": [], "pricing": "$1", "images": [], "customization_options": null, "category": "beauty", "query": "q", "product_category": "x"}`
	cases := []struct {
		name, body, want string
	}{
		{"truncated.json", "[" + good + ", {\"asin\": \"B0000", "record 1"},
		{"notlist.json", `{"asin": "x"}`, "want a JSON list"},
		{"badtype.json", `[` + good + `, {"asin": 5}]`, "record 1"},
		{"badprice.json", `[{"asin": "B000000002", "name": "A", "pricing": "$abc", "small_description": []}]`, `record 0 (asin "B000000002")`},
		{"unterminated.json", "[" + good, "truncated"},
		{"empty.json", "", "not a JSON list"},
	}
	for _, c := range cases {
		p := write(c.name, c.body)
		_, err := LoadCatalog(LoadOptions{ProductsPath: p})
		if err == nil || !strings.Contains(err.Error(), c.name) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to name the file and %q", c.name, err, c.want)
		}
	}
	pp := write("ok.json", "["+good+"]")
	ap := write("attrs.json", `{"B000000001": {"attributes": [1, 2]}}`)
	if _, err := LoadCatalog(LoadOptions{ProductsPath: pp, AttributesPath: ap}); err == nil || !strings.Contains(err.Error(), "attrs.json") {
		t.Errorf("bad attributes file: %v", err)
	}
	hp := write("human.json", `{"B000000001": [{"instruction": "x"`)
	if _, err := LoadCatalog(LoadOptions{ProductsPath: pp, HumanInsPath: hp}); err == nil || !strings.Contains(err.Error(), "human.json") {
		t.Errorf("truncated human file: %v", err)
	}
	if _, err := LoadCatalog(LoadOptions{ProductsPath: filepath.Join(dir, "missing.json")}); err == nil {
		t.Error("missing file: no error")
	}
}

func TestFindDataFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"items_shuffle_1000.json", "items_ins_v2_1000.json"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("[]"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o, err := FindDataFiles(dir)
	if err != nil || filepath.Base(o.ProductsPath) != "items_shuffle_1000.json" ||
		filepath.Base(o.AttributesPath) != "items_ins_v2_1000.json" || o.HumanInsPath != "" {
		t.Errorf("FindDataFiles: %+v %v", o, err)
	}
	if _, err := FindDataFiles(t.TempDir()); err == nil {
		t.Error("empty dir: no error")
	}
}

func FuzzLoadProducts(f *testing.F) {
	b, err := os.ReadFile("testdata/webshop/items_shuffle_fixture.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`[{"asin":"B1","customization_options":{"a":[{"value":"x/y"}]},"small_description":"s","pricing":"$1 - $2"}]`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "items_shuffle.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := LoadCatalog(LoadOptions{ProductsPath: p})
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, pr := range c.Products {
			if seen[pr.ASIN] || pr.ASIN == "nan" || len(pr.ASIN) > 10 || pr.PriceText == "" {
				t.Fatalf("cleaning rules broken: %+v", pr)
			}
			seen[pr.ASIN] = true
		}
	})
}

func FuzzParseGoalJSON(f *testing.F) {
	f.Add([]byte(`{"attributes":["a"],"goal_options":["x"],"price_upper":10}`))
	f.Add([]byte(`{"attributes":["a"],"goal_options":{"color":"black"}}`))
	f.Add([]byte(`{"attributes":[]}`))
	s := NewScorer()
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGoalJSON(data)
		if err != nil {
			return
		}
		p := Product{Title: "x", Attributes: []string{"a"}}
		info := s.Reward(&p, &g, 1, []string{"x"})
		if info.Reward < 0 || info.Reward > 1 {
			t.Fatalf("reward out of range: %+v", info)
		}
	})
}

func FuzzParseProductJSON(f *testing.F) {
	f.Add([]byte(`{"Title":"t","BulletPoints":["b"],"Description":"d","Attributes":["a"],"pricing":[3]}`))
	f.Add([]byte(`{"asin":"B1","name":"n","pricing":"$2 - $3","small_description":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProductJSON(data)
		if err == nil && p.Attributes == nil {
			t.Fatalf("no attributes slice: %+v", p)
		}
	})
}
