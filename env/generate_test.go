package env

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func genTestConfig(n int, seed int64) GenConfig {
	c := DefaultGenConfig()
	c.Products, c.Seed = n, seed
	return c
}

func genReadFiles(t *testing.T, dir string) [3][]byte {
	t.Helper()
	var out [3][]byte
	for i, f := range []string{ProductsFile, AttributesFile, HumanInsFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

type genParsed struct {
	products []RawProduct
	attrs    map[string]RawAttributes
	human    map[string][]RawHumanInstruction
}

func genParse(t *testing.T, files [3][]byte) genParsed {
	t.Helper()
	var p genParsed
	if err := json.Unmarshal(files[0], &p.products); err != nil {
		t.Fatalf("%s: %v", ProductsFile, err)
	}
	if err := json.Unmarshal(files[1], &p.attrs); err != nil {
		t.Fatalf("%s: %v", AttributesFile, err)
	}
	if err := json.Unmarshal(files[2], &p.human); err != nil {
		t.Fatalf("%s: %v", HumanInsFile, err)
	}
	return p
}

func genGenerate(t *testing.T, cfg GenConfig) (string, [3][]byte) {
	t.Helper()
	dir := t.TempDir()
	if err := Generate(cfg, dir); err != nil {
		t.Fatal(err)
	}
	return dir, genReadFiles(t, dir)
}

func TestGenerateDeterministic(t *testing.T) {
	// More than one window, so the parallel path is exercised.
	cfg := genTestConfig(2500, 7)
	prev := runtime.GOMAXPROCS(1)
	_, a := genGenerate(t, cfg)
	runtime.GOMAXPROCS(4)
	_, b := genGenerate(t, cfg)
	runtime.GOMAXPROCS(prev)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("file %d differs between runs of the same config", i)
		}
	}
	cfg.Seed = 8
	_, c := genGenerate(t, cfg)
	for i := range a {
		if bytes.Equal(a[i], c[i]) {
			t.Fatalf("file %d is the same for seeds 7 and 8", i)
		}
	}
}

var (
	genASINRE    = regexp.MustCompile(`^B0[0-9A-Z]{8}$`)
	genPricingRE = regexp.MustCompile(`^(|\$[0-9]+\.[0-9]{2}|\$[0-9]+\.[0-9]{2} - \$[0-9]+\.[0-9]{2})$`)
)

// genCheckShop checks the invariants every generated shop must keep.
func genCheckShop(t *testing.T, p genParsed, n int) {
	t.Helper()
	if len(p.products) != n {
		t.Fatalf("%d products, want %d", len(p.products), n)
	}
	byASIN := map[string]*RawProduct{}
	for i := range p.products {
		pr := &p.products[i]
		if !genASINRE.MatchString(pr.ASIN) {
			t.Fatalf("bad ASIN %q", pr.ASIN)
		}
		if byASIN[pr.ASIN] != nil {
			t.Fatalf("duplicate ASIN %q", pr.ASIN)
		}
		byASIN[pr.ASIN] = pr
		if pr.Name == "" || pr.FullDescription == "" || pr.Query == "" {
			t.Fatalf("%s: empty name, description or query", pr.ASIN)
		}
		if pr.Query != strings.ToLower(strings.TrimSpace(pr.Query)) {
			t.Fatalf("%s: query %q not lowercase", pr.ASIN, pr.Query)
		}
		if strings.Count(pr.ProductCategory, " › ") < 2 {
			t.Fatalf("%s: product_category %q", pr.ASIN, pr.ProductCategory)
		}
		if !slices.Contains([]string{"beauty", "fashion", "electronics", "garden", "grocery"}, pr.Category) {
			t.Fatalf("%s: category %q", pr.ASIN, pr.Category)
		}
		if !genPricingRE.MatchString(pr.Pricing) {
			t.Fatalf("%s: pricing %q", pr.ASIN, pr.Pricing)
		}
		if len(pr.Images) > 1 {
			t.Fatalf("%s: %d images", pr.ASIN, len(pr.Images))
		}
		if len(pr.SmallDescription) < 3 || len(pr.SmallDescription) > 6 {
			t.Fatalf("%s: %d bullets", pr.ASIN, len(pr.SmallDescription))
		}
		if len(pr.CustomizationOptions) > 3 {
			t.Fatalf("%s: %d option groups", pr.ASIN, len(pr.CustomizationOptions))
		}
		for _, g := range pr.CustomizationOptions {
			if len(g.Values) < 2 || len(g.Values) > 10 {
				t.Fatalf("%s: option %q has %d values", pr.ASIN, g.Name, len(g.Values))
			}
		}
	}
	// Attributes: one record per product, every product with attributes;
	// synthetic instructions only name the product's attributes.
	if len(p.attrs) != n {
		t.Fatalf("%d attribute records, want %d", len(p.attrs), n)
	}
	for asin, a := range p.attrs {
		if byASIN[asin] == nil {
			t.Fatalf("attributes for unknown ASIN %s", asin)
		}
		if len(a.Attributes) == 0 {
			t.Fatalf("%s: no attributes", asin)
		}
		if a.Instruction != "" {
			if !strings.HasPrefix(a.Instruction, "Find me ") || len(a.InstructionAttributes) < 2 {
				t.Fatalf("%s: synthetic instruction %q %v", asin, a.Instruction, a.InstructionAttributes)
			}
			for _, x := range a.InstructionAttributes {
				if !slices.Contains(a.Attributes, x) || !strings.Contains(a.Instruction, x) {
					t.Fatalf("%s: synthetic attribute %q", asin, x)
				}
			}
		}
	}
	// Human instructions: attributes and options are the product's.
	for asin, list := range p.human {
		pr := byASIN[asin]
		if pr == nil {
			t.Fatalf("instructions for unknown ASIN %s", asin)
		}
		if len(list) == 0 || len(list) > 3 {
			t.Fatalf("%s: %d instructions", asin, len(list))
		}
		var values []string
		for _, g := range pr.CustomizationOptions {
			for _, v := range g.Values {
				values = append(values, strings.ToLower(strings.TrimSpace(strings.ReplaceAll(v.Value, "/", " | "))))
			}
		}
		for _, ins := range list {
			if ins.ASIN != asin {
				t.Fatalf("%s: instruction carries asin %q", asin, ins.ASIN)
			}
			if ins.Instruction == "" || ins.Instruction != strings.ToLower(ins.Instruction) ||
				strings.Contains(ins.Instruction, "price lower than") || strings.HasSuffix(ins.Instruction, ".") {
				t.Fatalf("%s: instruction %q", asin, ins.Instruction)
			}
			if len(ins.InstructionAttributes) == 0 {
				t.Fatalf("%s: instruction %q has no attributes", asin, ins.Instruction)
			}
			for _, x := range ins.InstructionAttributes {
				if !slices.Contains(p.attrs[asin].Attributes, x) {
					t.Fatalf("%s: instruction attribute %q is not the product's %v", asin, x, p.attrs[asin].Attributes)
				}
			}
			if ins.InstructionOptions == nil {
				t.Fatalf("%s: instruction_options is null", asin)
			}
			for _, o := range ins.InstructionOptions {
				if !slices.Contains(values, o) {
					t.Fatalf("%s: instruction option %q is not one of %v", asin, o, values)
				}
			}
		}
	}
}

func TestGenerateShop(t *testing.T) {
	_, files := genGenerate(t, genTestConfig(1000, 1))
	p := genParse(t, files)
	genCheckShop(t, p, 1000)

	// Every category, each with many sub-category queries.
	queries := map[string]map[string]bool{}
	for _, pr := range p.products {
		if queries[pr.Category] == nil {
			queries[pr.Category] = map[string]bool{}
		}
		queries[pr.Category][pr.Query] = true
	}
	for _, c := range []string{"beauty", "fashion", "electronics", "garden", "grocery"} {
		if len(queries[c]) < 15 {
			t.Errorf("category %s: %d queries, want >= 15", c, len(queries[c]))
		}
	}

	// Goals: a 1,000-product shop has about 1,000 human instructions, and a
	// good share of synthetic ones.
	nIns, withOpts := 0, 0
	for _, list := range p.human {
		nIns += len(list)
		for _, ins := range list {
			if len(ins.InstructionOptions) > 0 {
				withOpts++
			}
		}
	}
	if nIns < 800 || nIns > 1500 {
		t.Errorf("%d human instructions, want about 1,000", nIns)
	}
	if withOpts*2 < nIns {
		t.Errorf("only %d of %d instructions name an option", withOpts, nIns)
	}
	nSyn := 0
	for _, a := range p.attrs {
		if a.Instruction != "" {
			nSyn++
		}
	}
	if nSyn < 150 {
		t.Errorf("%d synthetic instructions, want >= 150", nSyn)
	}

	// Prices: mostly single values, some ranges, few empty.
	ranges, empty := 0, 0
	for _, pr := range p.products {
		switch {
		case pr.Pricing == "":
			empty++
		case strings.Contains(pr.Pricing, " - "):
			ranges++
		}
	}
	if ranges < 50 || ranges > 250 || empty > 60 {
		t.Errorf("%d price ranges and %d empty prices in 1,000", ranges, empty)
	}

	// Near duplicates: a good share of products has a sibling in the same
	// sub-category with almost the same title.
	byQuery := map[string][]int{}
	for i, pr := range p.products {
		byQuery[pr.Query] = append(byQuery[pr.Query], i)
	}
	withSib := 0
	for i, pr := range p.products {
		wa := strings.Fields(strings.ToLower(pr.Name))
		for _, j := range byQuery[pr.Query] {
			if j != i && genJaccard(wa, strings.Fields(strings.ToLower(p.products[j].Name))) >= 0.6 {
				withSib++
				break
			}
		}
	}
	if withSib < 500 {
		t.Errorf("%d of 1,000 products have a near-duplicate sibling, want >= 500", withSib)
	}
	t.Logf("queries per category %v; %d human and %d synthetic instructions (%d with options); %d price ranges, %d empty; %d products with a near-duplicate",
		map[string]int{"beauty": len(queries["beauty"]), "fashion": len(queries["fashion"]), "electronics": len(queries["electronics"]),
			"garden": len(queries["garden"]), "grocery": len(queries["grocery"])}, nIns, nSyn, withOpts, ranges, empty, withSib)
}

func genJaccard(a, b []string) float64 {
	sa, sb := map[string]bool{}, map[string]bool{}
	for _, x := range a {
		sa[x] = true
	}
	for _, x := range b {
		sb[x] = true
	}
	inter := 0
	for x := range sa {
		if sb[x] {
			inter++
		}
	}
	return float64(inter) / float64(len(sa)+len(sb)-inter)
}

// The text of a product must not contain an attribute phrase the product
// does not have: WebShop's reward matches goal attributes as substrings of
// title, bullets and description, so a stray phrase would make a distractor
// count as correct.
func TestGenerateNoStrayAttributes(t *testing.T) {
	d, err := loadGenData()
	if err != nil {
		t.Fatal(err)
	}
	_, files := genGenerate(t, genTestConfig(1000, 3))
	p := genParse(t, files)
	for _, pr := range p.products {
		text := strings.ToLower(pr.Name + "\n" + strings.Join(pr.SmallDescription, "\n") + "\n" + pr.FullDescription)
		have := p.attrs[pr.ASIN].Attributes
		for _, ph := range d.phrases {
			if strings.Contains(text, ph) && !slices.ContainsFunc(have, func(a string) bool { return strings.Contains(a, ph) }) &&
				!genNaturalContains(d, have, ph) {
				t.Errorf("%s (%s): text contains %q, attributes %v:\n%s", pr.ASIN, pr.Query, ph, have, text)
			}
		}
	}
}

// genNaturalContains reports whether ph appears inside the natural wording of
// one of the product's attributes ("iphone 13 pro max" holds "pro max").
func genNaturalContains(d *genData, have []string, ph string) bool {
	for _, a := range have {
		if x := d.attrs[a]; x != nil && strings.Contains(x.natural, ph) {
			return true
		}
	}
	return false
}

func TestGenerateSmallShop(t *testing.T) {
	_, files := genGenerate(t, genTestConfig(100, 5))
	p := genParse(t, files)
	genCheckShop(t, p, 100)
	if len(p.human) == 0 {
		t.Fatal("no human instructions in a 100-product shop")
	}
}

func TestGenerateLoads(t *testing.T) {
	dir, _ := genGenerate(t, genTestConfig(1000, 2))
	shop, err := OpenShop(dir, ShopOptions{Seed: 1, Goals: GoalsHuman})
	if err != nil {
		t.Fatal(err)
	}
	if len(shop.Catalog.Products) != 1000 || len(shop.Goals) < 800 {
		t.Fatalf("%d products and %d goals", len(shop.Catalog.Products), len(shop.Goals))
	}
}

func TestGenerateConfigErrors(t *testing.T) {
	bad := []func(*GenConfig){
		func(c *GenConfig) { c.Products = 99 },
		func(c *GenConfig) { c.Products = GenMaxProducts + 1 },
		func(c *GenConfig) { c.FamilyRate = 1.5 },
		func(c *GenConfig) { c.MaxFamilySize = 0 },
		func(c *GenConfig) { c.MaxOptionGroups = 4 },
		func(c *GenConfig) { c.MaxOptionValues = 1 },
		func(c *GenConfig) { c.HumanInsRate = -0.1 },
		func(c *GenConfig) { c.NoPriceRate, c.PriceRangeRate = 0.6, 0.6 },
	}
	for i, f := range bad {
		c := DefaultGenConfig()
		f(&c)
		if err := Generate(c, t.TempDir()); err == nil {
			t.Errorf("case %d: no error for %+v", i, c)
		}
	}
	// Knobs at their extremes still give a valid shop.
	c := genTestConfig(300, 9)
	c.FamilyRate, c.MaxFamilySize, c.MaxOptionGroups, c.HumanInsRate, c.SyntheticInsRate = 0, 1, 0, 1, 0
	_, files := genGenerate(t, c)
	p := genParse(t, files)
	genCheckShop(t, p, 300)
	for _, pr := range p.products {
		if len(pr.CustomizationOptions) != 0 {
			t.Fatalf("%s has options with MaxOptionGroups 0", pr.ASIN)
		}
	}
	if len(p.human) != 300 {
		t.Fatalf("%d products with instructions, want all 300", len(p.human))
	}
}

func TestGenASINPermutation(t *testing.T) {
	a := newGenASINer(1)
	seen := map[string]bool{}
	for i := 0; i < 200000; i++ {
		s := a.asin(i)
		if seen[s] || !genASINRE.MatchString(s) {
			t.Fatalf("ASIN %d: %q (seen %v)", i, s, seen[s])
		}
		seen[s] = true
	}
}

// TestGenerateFullSize measures the full WebShop-size catalogue; it runs only
// with SHOPAGENT_GEN_FULL=1 (it writes a few GB and takes about a minute).
func TestGenerateFullSize(t *testing.T) {
	if os.Getenv("SHOPAGENT_GEN_FULL") == "" {
		t.Skip("set SHOPAGENT_GEN_FULL=1 to generate 1,181,436 products")
	}
	dir := t.TempDir()
	if d := os.Getenv("SHOPAGENT_GEN_DIR"); d != "" {
		dir = d
	}
	start := time.Now()
	if err := Generate(genTestConfig(GenMaxProducts, 1), dir); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	var total int64
	for _, f := range []string{ProductsFile, AttributesFile, HumanInsFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
		t.Logf("%s: %.1f MB", f, float64(st.Size())/1e6)
	}
	t.Logf("%d products in %v with GOMAXPROCS=%d, %.1f MB in all", GenMaxProducts, el, runtime.GOMAXPROCS(0), float64(total)/1e6)
}
