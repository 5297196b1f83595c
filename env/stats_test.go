package env

import (
	"math"
	"testing"
)

func TestStatsCountsByHand(t *testing.T) {
	mk := func(asin, title string, attrs []string, pricing []float64, desc string) Product {
		p := fidelityProduct(asin, title)
		p.Attributes, p.Pricing, p.Description = attrs, pricing, desc
		return p
	}
	products := []Product{
		mk("B000000001", "Red Coffee Mug Large", []string{"dishwasher safe"}, []float64{10}, "a mug"),
		mk("B000000002", "Red Coffee Mug Large", []string{}, nil, ""),
		mk("B000000003", "Blue Tea Kettle", []string{"DUMMY_ATTR"}, []float64{20}, "a kettle"),
		mk("B000000004", "Green Tea Kettle With Whistle", []string{"stainless steel", "easy clean"}, []float64{30}, "x"),
	}
	goals := []Goal{
		// WebShop's human instruction 0, with a price clause
		{ASIN: "B000000001", Name: products[0].Title, Query: "mugs", ProductCategory: products[0].ProductCategory,
			Instruction: "i need a long clip-in hair extension which is natural looking, and price lower than 40.00 dollars",
			Attributes:  []string{"dishwasher safe"}, PriceUpper: 40},
		{ASIN: "B000000004", Name: products[3].Title, Query: "mugs", ProductCategory: products[3].ProductCategory,
			Instruction: "a kettle with a whistle", Attributes: []string{"easy clean"},
			Options: []GoalOption{{Value: "green"}}, PriceUpper: 40},
	}
	shop := NewShop(NewCatalog(products), goals)
	shop.Splits = Splits{Test: [2]int{0, 2}, Dev: [2]int{2, 2}, Train: [2]int{2, 2}}
	st, err := Stats(shop, "test", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]float64{
		"human instructions %": {st.HumanInstructionsPct, 50},
		"title words mean":     {st.TitleWordsMean, (4 + 4 + 3 + 5) / 4.0},
		"shared titles %":      {st.SharedTitlePct, 50},
		"no mined attr %":      {st.NoMinedAttrPct, 50},
		"mined attrs mean":     {st.MinedAttrsMean, 3 / 4.0},
		"no price %":           {st.NoPricePct, 25},
		"empty desc %":         {st.EmptyDescPct, 25},
		"no options %":         {st.NoOptionsPct, 50},
		"attrs per goal":       {st.AttrsPerGoal, 1},
		"options per goal":     {st.OptionsPerGoal, 0.5},
	}
	for name, v := range want {
		if math.Abs(v[0]-v[1]) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, v[0], v[1])
		}
	}
	if st.TitleWordsMin != 3 || st.TitleWordsMax != 5 {
		t.Errorf("title words %d..%d, want 3..5", st.TitleWordsMin, st.TitleWordsMax)
	}
	if _, err := Stats(shop, "dev", 1); err == nil {
		t.Error("an empty split: want an error")
	}
	if ref := WebShopReference(); ref["rule_score"].Value != "45.6" || ref["no_mined_attr_pct"].Value != "18.5" {
		t.Errorf("reference figures: %+v", ref)
	}
}
