package env

import (
	"math"
	"testing"
)

// The reference cases of WebShop's own tests (WEBSHOP-SPEC.md section 5).
func TestAttributeRewardWebShopCases(t *testing.T) {
	s := NewScorer()
	goal := []string{"tea tree", "essential oils", "natural ingredients"}
	cases := []struct {
		name string
		p    Product
		r    float64
		n    int
	}{
		{"exact", Product{Attributes: []string{"tea tree", "essential oil", "natural ingredients"}}, 1, 3},
		{"partial", Product{Attributes: []string{"essential oil", "natural ingredients"}}, 2.0 / 3, 2},
		{"text", Product{
			BulletPoints: []string{"This shampoo has essential oils and smells like lemons"},
			Description:  "Best shampoo on the market, made with natural ingredients",
		}, 2.0 / 3, 2},
		{"none", Product{
			Attributes:   []string{"tea bag", "earl gray", "lipton"},
			Title:        "English tea for breakfast",
			BulletPoints: []string{"Soothing aroma", "Calming, great feeling"},
			Description:  "Best tea made by Lipton, great to pair with breakfast",
		}, 0, 0},
	}
	for _, c := range cases {
		r, n := s.AttributeReward(&c.p, goal)
		if math.Abs(r-c.r) > 1e-12 || n != c.n {
			t.Errorf("%s: got (%v, %d), want (%v, %d)", c.name, r, n, c.r, c.n)
		}
	}
}

func TestOptionRewardWebShopCases(t *testing.T) {
	s := NewScorer()
	vals := func(v ...string) []GoalOption {
		out := make([]GoalOption, len(v))
		for i := range v {
			out[i] = GoalOption{Value: v[i]}
		}
		return out
	}
	cases := []struct {
		name      string
		purchased []string
		goal      []GoalOption
		r         *float64
		n         int
	}{
		{"exact", []string{"pack of 12", "grey", "XL"}, vals("grey", "XL", "pack of 12"), ptr(1), 3},
		{"partial", []string{"pack of 12", "blue", "XL"}, vals("grey", "XL", "pack of 12"), ptr(2.0 / 3), 2},
		{"colour normalised", []string{"pack of 12", "powder snow", "XL"}, vals("cool powder snow", "XL", "pack of 12"), ptr(1), 3},
		{"no goal options", []string{"goal 1", "goal 2"}, nil, nil, 0},
		{"nothing purchased", nil, vals("goal 1", "goal 2"), ptr(0), 0},
	}
	for _, c := range cases {
		r, n := s.OptionReward(c.purchased, c.goal, false)
		if n != c.n || (r == nil) != (c.r == nil) || (r != nil && math.Abs(*r-*c.r) > 1e-12) {
			t.Errorf("%s: got (%v, %d), want (%v, %d)", c.name, deref(r), n, deref(c.r), c.n)
		}
	}
}

func TestCategoryMatchWebShopCases(t *testing.T) {
	s := NewScorer()
	g := &Goal{ProductCategory: "a › b › c", Name: "Foo Shampoo", Query: "q1"}
	for pc, want := range map[string]bool{
		"b › c › a": true, "a › d › b": true, "a › a › b": true,
		"d › e › f": false, "a › a › d": false,
	} {
		p := &Product{ProductCategory: pc, Title: "Foo Shampoo", Query: "q2"}
		if _, _, got, _ := s.TypeReward(p, g); got != want {
			t.Errorf("category %q vs %q: got %v, want %v", pc, g.ProductCategory, got, want)
		}
	}
}

func TestTypeRewardRules(t *testing.T) {
	s := NewScorer()
	g := &Goal{Name: "Organic Green Tea Bags", Query: "tea", ProductCategory: "Grocery › Beverages › Tea"}
	same := &Product{Title: "Organic Green Tea Bags", Query: "tea", ProductCategory: "Grocery › Beverages › Tea"}
	if r, q, c, ts := s.TypeReward(same, g); r != 1 || !q || !c || ts != 1 {
		t.Errorf("same product: r_type %v query %v category %v title %v", r, q, c, ts)
	}
	other := &Product{Title: "Wireless Headphones", Query: "headphones", ProductCategory: "Electronics › Audio › Headphones"}
	if r, _, _, ts := s.TypeReward(other, g); r != 0 || ts != 0 {
		t.Errorf("unrelated product: r_type %v title %v, want 0 and 0", r, ts)
	}
	// One shared noun out of several: title_score in (0.1, 0.2], no query or
	// category match -> 0.5.
	g2 := &Goal{Name: "Tea Kettle Stove Pot Handle Lid", Query: "kettles", ProductCategory: "Home › Kitchen › Kettles"}
	p2 := &Product{Title: "Green Tea", Query: "tea", ProductCategory: "Grocery › Beverages › Tea"}
	r, _, _, ts := s.TypeReward(p2, g2)
	if ts <= 0.1 || ts > 0.2 || r != 0.5 {
		t.Errorf("weak title match: r_type %v title_score %v (nouns %v / %v)", r, ts, s.TitleNouns(p2.Title), s.TitleNouns(g2.Name))
	}
}

func TestRewardTotal(t *testing.T) {
	s := NewScorer()
	g := &Goal{Name: "Organic Green Tea Bags", Query: "tea", ProductCategory: "Grocery › Tea",
		Attributes: []string{"organic", "caffeine free"}, Options: []GoalOption{{Value: "pack of 6"}}, PriceUpper: 30}
	p := &Product{Title: "Organic Green Tea Bags", Query: "tea", ProductCategory: "Grocery › Tea",
		Attributes: []string{"organic"}, Description: "Naturally caffeine free."}
	full := s.Reward(p, g, 20, []string{"pack of 6"})
	if full.Reward != 1 || !full.RPrice || full.NumAttMatches != 2 || full.NumOptMatches != 1 {
		t.Errorf("full match: %+v", full)
	}
	over := s.Reward(p, g, 31, []string{"single bag"})
	if want := 2.0 / 4; math.Abs(over.Reward-want) > 1e-12 || over.RPrice {
		t.Errorf("over price, wrong option: reward %v want %v", over.Reward, want)
	}
	if math.Abs(over.WAtt+over.WOption+over.WPrice-1) > 1e-12 {
		t.Errorf("weights do not sum to 1: %+v", over)
	}
}

func TestSyntheticOptionsAsNameValue(t *testing.T) {
	s := NewScorer()
	// A colour value is compared alone; other values as "name value".
	r, n := s.OptionReward([]string{"black", "large"}, []GoalOption{{Name: "color", Value: "black"}, {Name: "size", Value: "large"}}, true)
	if n != 2 || *r != 1 {
		t.Errorf("got %v %d", *r, n)
	}
}

func ptr(v float64) *float64 { return &v }

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// WebShop computes (matches + price) / (attributes + options + 1) and then
// multiplies by r_type; in float64 the other order can differ in the last bit.
// The expected value is CPython's (1/5)*0.1.
func TestRewardDividesBeforeTypeFactor(t *testing.T) {
	s := NewScorer()
	g := &Goal{Name: "Tea Kettle Stove Pot Handle Lid Spoon Cup Mug Bowl Plate Fork", Query: "kettles",
		ProductCategory: "Home › Kitchen › Kettles", Attributes: []string{"aa", "bb", "cc", "dd"}, PriceUpper: 30}
	p := &Product{Title: "Green Tea", Query: "tea", ProductCategory: "Grocery › Beverages › Tea"}
	if n := len(s.TitleNouns(g.Name)); n < 11 {
		t.Fatalf("test set-up: want >= 11 goal title nouns for title_score < 0.1, the tagger found %d: %v", n, s.TitleNouns(g.Name))
	}
	r := s.Reward(p, g, 10, nil)
	if r.RType != 0.1 {
		t.Fatalf("r_type = %v (title_score %v), want 0.1", r.RType, r.TitleScore)
	}
	if want := 0.020000000000000004; r.Reward != want {
		t.Errorf("reward = %.17g, want WebShop's %.17g", r.Reward, want)
	}
}
