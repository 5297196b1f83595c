package shopgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"shopagent/env"
	"shopagent/env/webshopdata"
)

var shopFiles4 = []string{env.ProductsFile, env.AttributesFile, env.HumanInsFile, env.GoalsFile}

func generate(t *testing.T, cfg Config) string {
	t.Helper()
	dir := t.TempDir()
	if err := Generate(cfg, dir, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func smallConfig() Config {
	cfg := DefaultConfig()
	cfg.Goals = SampleGoals(20, 20, 40)
	return cfg
}

// The same config gives byte-identical files, whatever the number of workers.
func TestGenerateDeterministic(t *testing.T) {
	cfg := smallConfig()
	cfg.Workers = 1
	a := generate(t, cfg)
	cfg.Workers = 4
	b := generate(t, cfg)
	for _, f := range shopFiles4 {
		x, err1 := os.ReadFile(filepath.Join(a, f))
		y, err2 := os.ReadFile(filepath.Join(b, f))
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between 1 and 4 workers (%v %v)", f, err1, err2)
		}
	}
	cfg.Seed = 2
	c := generate(t, cfg)
	x, _ := os.ReadFile(filepath.Join(a, env.ProductsFile))
	y, _ := os.ReadFile(filepath.Join(c, env.ProductsFile))
	if bytes.Equal(x, y) {
		t.Error("seed 2 gave the same catalogue as seed 1")
	}
}

// A goal's products depend only on the seed and the goal's index: a subset
// shop is part of the full one.
func TestGenerateSubsetsAgree(t *testing.T) {
	small := DefaultConfig()
	small.Goals = "3,7,600"
	big := DefaultConfig()
	big.Goals = "0-9,500-609"
	ga := readGoals(t, generate(t, small))
	gb := readGoals(t, generate(t, big))
	for _, g := range ga.Goals {
		i := slices.IndexFunc(gb.Goals, func(x env.GoalRecord) bool { return x.WebShopIndex == g.WebShopIndex })
		if i < 0 {
			t.Fatalf("goal %d missing from the bigger shop", g.WebShopIndex)
		}
		h := gb.Goals[i]
		if g.ASIN != h.ASIN || g.Name != h.Name || g.Instruction != h.Instruction || g.PriceUpper != h.PriceUpper {
			t.Errorf("goal %d differs:\n%+v\n%+v", g.WebShopIndex, g, h)
		}
	}
}

func readGoals(t *testing.T, dir string) env.GoalsFileData {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, env.GoalsFile))
	if err != nil {
		t.Fatal(err)
	}
	var g env.GoalsFileData
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// The goals are WebShop's human instructions, in WebShop's order and splits,
// with WebShop's price clause; each target earns reward 1 bought with the
// goal's options, as WebShop's reward computes it.
func TestGeneratedGoalsAreWebShops(t *testing.T) {
	dir := generate(t, smallConfig())
	shop, err := env.OpenShop(dir, env.ShopOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gf := readGoals(t, dir)
	if s := shop.Splits; s.Test != [2]int{0, 20} || s.Dev != [2]int{20, 40} || s.Train != [2]int{40, 80} || s.Note == "" {
		t.Errorf("splits %+v, want 20/20/40 with a note", s)
	}
	human := webshopdata.HumanGoals()
	for i, g := range shop.Goals {
		r := gf.Goals[i]
		want := human[r.WebShopIndex]
		if !strings.HasPrefix(g.Instruction, strings.Trim(want, ".")) {
			t.Errorf("goal %d: instruction %q is not WebShop's goal %d %q", i, g.Instruction, r.WebShopIndex, want)
		}
		if g.PriceUpper < env.NoPriceCap && !strings.HasSuffix(g.Instruction, fmt.Sprintf(", and price lower than %.2f dollars", g.PriceUpper)) {
			t.Errorf("goal %d: price clause of %q, cap %v", i, g.Instruction, g.PriceUpper)
		}
		if split := webshopdata.Split(r.WebShopIndex); (split == "test") != (i < 20) || (split == "train") != (i >= 40) {
			t.Errorf("goal %d (WebShop %d, %s) in the wrong split", i, r.WebShopIndex, split)
		}
		pi, ok := shop.Catalog.ByASIN(g.ASIN)
		if !ok {
			t.Fatalf("goal %d: target %s missing", i, g.ASIN)
		}
		p := &shop.Catalog.Products[pi]
		var opts []string
		for _, o := range g.Options {
			opts = append(opts, o.Value)
		}
		if rw := shop.Scorer.Reward(p, &g, p.Price, opts); rw.Reward != 1 {
			t.Errorf("goal %d %q: the target earns %+v, want 1", i, g.Instruction, rw)
		}
		if p.Title != g.Name || p.Query != g.Query || p.ProductCategory != g.ProductCategory {
			t.Errorf("goal %d: name/query/category differ from the target's", i)
		}
	}
}

// Every goal's products are generated consistently: Generate checks that each
// target satisfies its goal and that each sibling lacks what it must lack, so
// it succeeds only if that holds. This covers a spread of 1,200 of WebShop's
// 12,087 instructions (every tenth, from each split), three products each.
func TestGenerateSpreadOfInstructions(t *testing.T) {
	var idx []string
	for i := 0; i < webshopdata.NumHumanGoals; i += 10 {
		idx = append(idx, fmt.Sprint(i))
	}
	cfg := DefaultConfig()
	cfg.Goals = strings.Join(idx, ",")
	cfg.ProductsPerGoal = 3
	dir := generate(t, cfg)
	shop, err := env.OpenShop(dir, env.ShopOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(shop.Goals) != len(idx) || len(shop.Catalog.Products) != 3*len(idx) {
		t.Errorf("%d goals, %d products; want %d and %d", len(shop.Goals), len(shop.Catalog.Products), len(idx), 3*len(idx))
	}
}

func TestGenerateRejectsBadConfigs(t *testing.T) {
	for name, mod := range map[string]func(c *Config){
		"rate > 1":       func(c *Config) { c.DuplicateShare = 1.5 },
		"too few":        func(c *Config) { c.Products = 10 },
		"too many":       func(c *Config) { c.Products = 257 * 80 },
		"bad goals":      func(c *Config) { c.Goals = "x" },
		"negative mean":  func(c *Config) { c.Siblings = -1 },
		"no per-goal":    func(c *Config) { c.ProductsPerGoal = 0 },
		"hidden rates>1": func(c *Config) { c.AttrOnlyMined, c.AttrUnsearchable = 0.6, 0.6 },
	} {
		cfg := smallConfig()
		mod(&cfg)
		if err := Generate(cfg, t.TempDir(), nil); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestTitleCaseAndCutPhrase(t *testing.T) {
	if got := titleCase("x-large usb cable for women"); got != "X-Large USB Cable for Women" {
		t.Errorf("titleCase = %q", got)
	}
	if got := cutPhrase("Brand Pillow Cover Throw Pillows, Boho, Throw Pillow", "throw pillow"); strings.Contains(strings.ToLower(got), "throw pillow") {
		t.Errorf("cutPhrase left the phrase: %q", got)
	}
}

// Size predicts what Generate writes.
func TestSizeMatchesTheShop(t *testing.T) {
	for _, cfg := range []Config{smallConfig(), func() Config { c := smallConfig(); c.Products = 333; return c }()} {
		goals, products, err := cfg.Size()
		if err != nil {
			t.Fatal(err)
		}
		shop, err := env.OpenShop(generate(t, cfg), env.ShopOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if goals != len(shop.Goals) || products != len(shop.Catalog.Products) {
			t.Errorf("Size says %d goals and %d products, the shop has %d and %d", goals, products, len(shop.Goals), len(shop.Catalog.Products))
		}
	}
	bad := smallConfig()
	bad.Goals = "nope"
	if _, _, err := bad.Size(); err == nil {
		t.Error("Size accepted a bad goal list")
	}
}
