package env

import (
	"math"
	"shopagent/env/pyport"
	"strings"
	"testing"
)

func TestPriceCap(t *testing.T) {
	rng := pyport.NewRandom(1)
	for _, price := range []float64{0.5, 9.99, 10, 19.99, 555, 979.5} {
		upper, text := priceCap(price, rng)
		if upper <= price || upper > price+40+10 || math.Mod(upper, 10) != 0 {
			t.Errorf("price %v: cap %v", price, upper)
		}
		if !strings.HasPrefix(text, ", and price lower than ") || !strings.HasSuffix(text, ".00 dollars") {
			t.Errorf("price text %q", text)
		}
	}
	// Fewer than two candidates above the price: no cap.
	for _, price := range []float64{985, 990, 5000} {
		if upper, text := priceCap(price, rng); upper != NoPriceCap || text != "" {
			t.Errorf("price %v: cap %v %q", price, upper, text)
		}
	}
}

func TestHumanAndSyntheticGoals(t *testing.T) {
	c, err := LoadCatalog(fixtureOptions())
	if err != nil {
		t.Fatal(err)
	}
	hg := HumanGoals(c, pyport.NewRandom(0))
	if len(hg) != 2 {
		t.Fatalf("human goals: %d (the one without attributes is skipped)", len(hg))
	}
	if !strings.HasPrefix(hg[0].Instruction, "i want a tea tree body scrub in 16 ounce, and price lower than ") ||
		hg[0].Options[0].Value != "16 ounce" || hg[0].Weight != 1 || hg[0].Name != "Tea Tree Body Scrub" {
		t.Errorf("human goal 0: %+v", hg[0])
	}
	sg := SyntheticGoals(c, pyport.NewRandom(0))
	if len(sg) != 2 { // one product with an instruction, two sizes
		t.Fatalf("synthetic goals: %d", len(sg))
	}
	if !strings.HasPrefix(sg[1].Instruction, "Find me scrubs & body treatments with tea tree, natural ingredients with size: 16 ounce") ||
		!sg[1].Synthetic || sg[1].Options[0] != (GoalOption{Name: "size", Value: "16 ounce"}) {
		t.Errorf("synthetic goal: %+v", sg[1])
	}
	// Each attribute occurs in 2 goals: weight = mean(1/2, 1/2).
	if sg[0].Weight != 0.5 {
		t.Errorf("weight %v", sg[0].Weight)
	}
}

func TestSplitRanges(t *testing.T) {
	s := SplitRanges(12087)
	if s.Test != [2]int{0, 500} || s.Dev != [2]int{500, 1500} || s.Train != [2]int{1500, 12087} {
		t.Errorf("WebShop splits: %+v", s)
	}
	s = SplitRanges(1000)
	if s.Test != [2]int{0, 100} || s.Dev != [2]int{100, 300} || s.Train != [2]int{300, 1000} {
		t.Errorf("small splits: %+v", s)
	}
	if s.Note == "" {
		t.Error("small splits must say they are not WebShop's")
	}
	if _, err := s.Split("nope"); err == nil {
		t.Error("unknown split: no error")
	}
	// WebShop's baseline env with a product count (--num) uses every goal in
	// every split (baseline_models/env.py).
	s = SameGoalsSplits(40)
	for _, name := range []string{"test", "dev", "train", "all"} {
		if r, err := s.Split(name); err != nil || r != [2]int{0, 40} {
			t.Errorf("%s with a product count: %v %v, want all 40 goals", name, r, err)
		}
	}
}

func TestOpenShopFromFixtures(t *testing.T) {
	o := fixtureOptions()
	shop, err := OpenShopFiles(o, GoalsAuto)
	if err != nil {
		t.Fatal(err)
	}
	if len(shop.Goals) != 2 || shop.Index.NumDocs() != 3 {
		t.Fatalf("goals %d docs %d", len(shop.Goals), shop.Index.NumDocs())
	}
	again, _ := OpenShopFiles(o, GoalsAuto)
	for i := range shop.Goals {
		if shop.Goals[i].Instruction != again.Goals[i].Instruction || shop.Goals[i].PriceUpper != again.Goals[i].PriceUpper {
			t.Errorf("goal %d not deterministic", i)
		}
	}
	if _, err := OpenShopFiles(o, "bogus"); err == nil {
		t.Error("bad goal source: no error")
	}
	o.Limit = 3
	limited, err := OpenShopFiles(o, GoalsAuto)
	if err != nil {
		t.Fatal(err)
	}
	if test, _ := limited.SplitGoals("test"); len(test) != len(limited.Goals) || limited.Splits.Note == "" {
		t.Errorf("with a product limit the test split has %d of %d goals (note %q); WebShop uses all goals", len(test), len(limited.Goals), limited.Splits.Note)
	}
}

func TestDocText(t *testing.T) {
	p := &Product{Title: "Red Shoe", Description: "Nice.", BulletPoints: []string{"Leather", "Ignored"},
		Options: []OptionGroup{{Name: "size", Values: []string{"7", "8"}}, {Name: "color", Values: []string{"red"}}}}
	if got, want := DocText(p), "red shoe nice. leather size: 7, 8, and color: red"; got != want {
		t.Errorf("DocText = %q, want %q", got, want)
	}
}
