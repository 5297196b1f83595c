package env

import (
	"strings"
	"testing"
)

const testIns = "i need a long clip-in hair extension which is natural looking, and price lower than 40.00 dollars"

func testShop(t testing.TB) *Shop {
	t.Helper()
	products := []Product{
		{
			ASIN: "B09QKP7XQL", Title: "Foo Hair Extension 20 inch", PriceText: "$19.99", Pricing: []float64{19.99}, Price: 19.99,
			Description:  "A natural looking clip-in hair extension.",
			BulletPoints: []string{"Natural looking", "Clip-in, 20 inch"},
			Options: []OptionGroup{{Name: "color", Values: []string{"black", "dark brown"}},
				{Name: "size", Values: []string{"20 inch", "22 inch"}}},
			Attributes: []string{"natural looking", "hair extension"},
			Category:   "beauty", Query: "hair extensions", ProductCategory: "Beauty & Personal Care › Hair Care › Hair Extensions",
			Rating: "N.A.",
		},
		{
			ASIN: "B01BARBAR1", Title: "Bar Hair Extension Long Clip In", PriceText: "$25.0", Pricing: []float64{25}, Price: 25,
			Description: "Long hair extension.", BulletPoints: []string{"Long"},
			Attributes: []string{"long"}, Category: "beauty", Query: "hair extensions",
			ProductCategory: "Beauty & Personal Care › Hair Care › Hair Extensions", Rating: "N.A.",
		},
	}
	goal := Goal{ASIN: "B09QKP7XQL", Name: products[0].Title, Query: "hair extensions",
		ProductCategory: products[0].ProductCategory, Instruction: testIns,
		Attributes: []string{"natural looking"}, Options: []GoalOption{{Value: "black"}, {Value: "20 inch"}}, PriceUpper: 40, Weight: 1}
	return NewShop(NewCatalog(products), []Goal{goal})
}

func mustStep(t *testing.T, e *Env, a string) Observation {
	t.Helper()
	obs, _, _, info := e.Step(a)
	if !info.Valid {
		t.Fatalf("action %q was not valid", a)
	}
	return obs
}

func TestTextPages(t *testing.T) {
	shop := testShop(t)
	e := shop.NewEnv(Config{Mode: ObsText})
	obs := e.Reset(shop.Goals[0])
	if want := "WebShop [SEP] Instruction: [SEP] " + testIns + " [SEP] Search"; obs.Text != want {
		t.Errorf("search page:\n got %q\nwant %q", obs.Text, want)
	}
	obs = mustStep(t, e, "search[hair extension natural looking]")
	want := "Instruction: [SEP] " + testIns + " [SEP] Back to Search [SEP] Page 1 (Total results: 2) [SEP] Next > [SEP] B09QKP7XQL [SEP] Foo Hair Extension 20 inch [SEP] $19.99 [SEP] B01BARBAR1 [SEP] Bar Hair Extension Long Clip In [SEP] $25.0"
	if obs.Text != want {
		t.Errorf("results page:\n got %q\nwant %q", obs.Text, want)
	}
	obs = mustStep(t, e, "click[b09qkp7xql]")
	want = "Instruction: [SEP] " + testIns + " [SEP] Back to Search [SEP] < Prev [SEP] color [SEP] black [SEP] dark brown [SEP] size [SEP] 20 inch [SEP] 22 inch [SEP] Foo Hair Extension 20 inch [SEP] Price: $19.99 [SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now"
	if obs.Text != want {
		t.Errorf("item page:\n got %q\nwant %q", obs.Text, want)
	}
	obs = mustStep(t, e, "click[description]")
	if want := "Instruction: [SEP] " + testIns + " [SEP] Back to Search [SEP] < Prev [SEP] A natural looking clip-in hair extension."; obs.Text != want {
		t.Errorf("description page:\n got %q\nwant %q", obs.Text, want)
	}
	mustStep(t, e, "click[< prev]")
	obs = mustStep(t, e, "click[features]")
	if want := "Instruction: [SEP] " + testIns + " [SEP] Back to Search [SEP] < Prev [SEP] Natural looking [SEP] Clip-in, 20 inch"; obs.Text != want {
		t.Errorf("features page:\n got %q\nwant %q", obs.Text, want)
	}
	mustStep(t, e, "click[< prev]")
	obs = mustStep(t, e, "click[reviews]")
	if want := "Instruction: [SEP] " + testIns + " [SEP] Back to Search [SEP] < Prev"; obs.Text != want {
		t.Errorf("reviews page:\n got %q\nwant %q", obs.Text, want)
	}
	mustStep(t, e, "click[< prev]")
	obs = mustStep(t, e, "click[< prev]")
	if obs.Page != PageResults {
		t.Fatalf("< prev from item: page %s", obs.Page)
	}
	obs = mustStep(t, e, "click[next >]")
	if want := "Instruction: [SEP] " + testIns + " [SEP] Back to Search [SEP] Page 2 (Total results: 2) [SEP] < Prev [SEP] Next >"; obs.Text != want {
		t.Errorf("results page 2:\n got %q\nwant %q", obs.Text, want)
	}
}

func TestTextRichPages(t *testing.T) {
	shop := testShop(t)
	e := shop.NewEnv(Config{Mode: ObsTextRich, ShowAttributes: true})
	obs := e.Reset(shop.Goals[0])
	if want := "WebShop\nInstruction: \n" + testIns + "\n[button] Search [button_]\n"; obs.Text != want {
		t.Errorf("search page:\n got %q\nwant %q", obs.Text, want)
	}
	obs = mustStep(t, e, "search[hair extension natural looking]")
	want := "Instruction:\n" + testIns + "\n[button] Back to Search [button_]\nPage 1 (Total results: 2)\n[button] Next > [button_]\n" +
		"\n[button] B09QKP7XQL [button_]\nFoo Hair Extension 20 inch\n$19.99\n" +
		"\n[button] B01BARBAR1 [button_]\nBar Hair Extension Long Clip In\n$25.0\n"
	if obs.Text != want {
		t.Errorf("results page:\n got %q\nwant %q", obs.Text, want)
	}
	mustStep(t, e, "click[b09qkp7xql]")
	mustStep(t, e, "click[black]")
	obs = mustStep(t, e, "click[20 inch]")
	want = "You have clicked 20 inch.\nYou have clicked black.\nInstruction:\n" + testIns +
		"\n[button] Back to Search [button_]\n[button] < Prev [button_]\ncolor\n" +
		"  [clicked button] black [clicked button_]\n  [button] dark brown [button_]\nsize\n" +
		"  [clicked button] 20 inch [clicked button_]\n  [button] 22 inch [button_]\n" +
		"Foo Hair Extension 20 inch\nPrice: $19.99\nRating: N.A.\n[button] Description [button_]\n" +
		"[button] Features [button_]\n[button] Reviews [button_]\n[button] Attributes [button_]\n[button] Buy Now [button_]\n"
	if obs.Text != want {
		t.Errorf("item page:\n got %q\nwant %q", obs.Text, want)
	}
	obs = mustStep(t, e, "click[features]")
	if want := "Instruction:\n" + testIns + "\n[button] Back to Search [button_]\n[button] < Prev [button_]\n Natural looking\n Clip-in, 20 inch\n"; obs.Text != want {
		t.Errorf("features page:\n got %q\nwant %q", obs.Text, want)
	}
	mustStep(t, e, "click[< prev]")
	obs = mustStep(t, e, "click[attributes]")
	if want := "Instruction:\n" + testIns + "\n[button] Back to Search [button_]\n[button] < Prev [button_]\n natural looking\n hair extension\nbeauty\nhair extensions\nBeauty & Personal Care › Hair Care › Hair Extensions\n"; obs.Text != want {
		t.Errorf("attributes page:\n got %q\nwant %q", obs.Text, want)
	}
	mustStep(t, e, "click[< prev]")
	obs = mustStep(t, e, "click[< prev]")
	if !strings.Contains(obs.Text, "\n[clicked button] B09QKP7XQL [clicked button_]\n") ||
		!strings.Contains(obs.Text, "\n[button] B01BARBAR1 [button_]\n") {
		t.Errorf("visited result not marked:\n%s", obs.Text)
	}
}

func TestClickablesAndTransitions(t *testing.T) {
	shop := testShop(t)
	e := shop.NewEnv(Config{})
	obs := e.Reset(shop.Goals[0])
	if got := strings.Join(obs.Clickables, "|"); got != "search" || !obs.HasSearchBar {
		t.Errorf("search page clickables %q", got)
	}
	// click[search] is never a valid click; unknown actions are no-ops.
	for _, a := range []string{"click[search]", "click[buy now]", "search[]", "dance", "search", "click[nope]"} {
		if o, r, done, info := e.Step(a); info.Valid || r != 0 || done || o.Page != PageSearch {
			t.Errorf("%q: valid %v reward %v done %v page %s", a, info.Valid, r, done, o.Page)
		}
	}
	obs = mustStep(t, e, "search[hair extension natural looking]")
	if got := strings.Join(obs.Clickables, "|"); got != "back to search|next >|b09qkp7xql|b01barbar1" {
		t.Errorf("results clickables %q", got)
	}
	obs = mustStep(t, e, "click[b09qkp7xql]")
	if got := strings.Join(obs.Clickables, "|"); got != "back to search|< prev|description|features|reviews|buy now|black|dark brown|20 inch|22 inch" {
		t.Errorf("item clickables %q", got)
	}
	mustStep(t, e, "click[dark brown]")
	mustStep(t, e, "click[black]") // replaces dark brown in the colour group
	mustStep(t, e, "click[20 inch]")
	// A search works from any page and resets options.
	obs = mustStep(t, e, "search[natural looking]")
	if obs.Page != PageResults {
		t.Fatalf("search from item page went to %s", obs.Page)
	}
	mustStep(t, e, "click[b09qkp7xql]")
	mustStep(t, e, "click[black]")
	mustStep(t, e, "click[20 inch]")
	obs, r, done, info := e.Step("click[buy now]")
	if !done || obs.Page != PageDone || info.Purchase == nil || len(obs.Clickables) != 0 {
		t.Fatalf("buy: done %v page %s purchase %v", done, obs.Page, info.Purchase)
	}
	if r != 1 || strings.Join(info.Purchase.Options, "|") != "black|20 inch" {
		t.Errorf("buy: reward %v options %v (%+v)", r, info.Purchase.Options, info.Purchase.Reward)
	}
	if _, r2, done2, _ := e.Step("click[buy now]"); !done2 || r2 != 0 {
		t.Errorf("step after done: reward %v done %v", r2, done2)
	}
}

func TestBackToSearchResets(t *testing.T) {
	shop := testShop(t)
	e := shop.NewEnv(Config{Mode: ObsTextRich})
	e.Reset(shop.Goals[0])
	mustStep(t, e, "search[hair extension]")
	mustStep(t, e, "click[b09qkp7xql]")
	mustStep(t, e, "click[black]")
	obs := mustStep(t, e, "click[back to search]")
	if obs.Page != PageSearch {
		t.Fatalf("page %s", obs.Page)
	}
	obs = mustStep(t, e, "search[hair extension]")
	if strings.Contains(obs.Text, "[clicked button]") {
		t.Errorf("visited set not reset:\n%s", obs.Text)
	}
	obs = mustStep(t, e, "click[b09qkp7xql]")
	if strings.Contains(obs.Text, "You have clicked") {
		t.Errorf("options not reset:\n%s", obs.Text)
	}
	_, r, _, info := e.Step("click[buy now]")
	if info.Purchase == nil || len(info.Purchase.Options) != 0 || r >= 1 {
		t.Errorf("bought without options: reward %v purchase %+v", r, info.Purchase)
	}
}

func TestStepCap(t *testing.T) {
	shop := testShop(t)
	e := shop.NewEnv(Config{MaxSteps: 3})
	e.Reset(shop.Goals[0])
	e.Step("search[hair]")
	e.Step("click[next >]")
	_, r, done, info := e.Step("click[next >]")
	if !done || !info.Truncated || r != 0 || info.Steps != 3 {
		t.Errorf("cap: done %v truncated %v reward %v steps %d", done, info.Truncated, r, info.Steps)
	}
}

func TestRuleAgentEpisode(t *testing.T) {
	shop := testShop(t)
	eps := shop.Evaluate(shop.Goals, Config{MaxSteps: 100}, 2, func(int) Agent { return RuleAgent{} }, true, nil)
	if len(eps) != 1 || eps[0].Steps != 3 || eps[0].Purchase == nil || len(eps[0].Transitions) != 3 {
		t.Fatalf("rule episode: %+v", eps)
	}
	if eps[0].Transitions[0].Action != Search(testIns) {
		t.Errorf("first action %q", eps[0].Transitions[0].Action)
	}
	s := Summarize(eps)
	if s.Episodes != 1 || s.MeanSteps != 3 || s.Score != 100*eps[0].Reward {
		t.Errorf("summary %+v", s)
	}
}

func TestParseAction(t *testing.T) {
	cases := map[string]Action{
		"search[Red Shoes]": {Name: "search", Arg: "red shoes", HasArg: true},
		"click[< Prev]":     {Name: "click", Arg: "< prev", HasArg: true},
		"click[a[b]]":       {Name: "click[a", Arg: "b]", HasArg: true},
		"search[]":          {Name: "search[]"},
		"buy":               {Name: "buy"},
		"click[x] trailing": {Name: "click", Arg: "x", HasArg: true},
		"click[size [xl]]":  {Name: "click[size ", Arg: "xl]", HasArg: true},
	}
	for in, want := range cases {
		if got := ParseAction(in); got != want {
			t.Errorf("ParseAction(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func FuzzParseAction(f *testing.F) {
	for _, s := range []string{"search[a b]", "click[x]", "", "[]", "a[b]c]", "click[[x]]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := ParseAction(s)
		if a.HasArg {
			if a.Name == "" || a.Arg == "" || !strings.HasPrefix(s, a.Name+"[") {
				t.Fatalf("bad parse of %q: %+v", s, a)
			}
		} else if a.Name != s {
			t.Fatalf("no-arg parse of %q changed the name: %+v", s, a)
		}
	})
}

func FuzzEnvStep(f *testing.F) {
	shop := testShop(f)
	for _, s := range []string{"search[hair]", "click[b09qkp7xql]", "click[black]", "click[buy now]", "click[next >]", "click[< prev]"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a1, a2 string) {
		e := shop.NewEnv(Config{Mode: ObsTextRich, MaxSteps: 6})
		e.Reset(shop.Goals[0])
		done := false
		for _, a := range []string{a1, "search[hair]", a2, "click[b09qkp7xql]", a1, a2} {
			if done {
				break
			}
			var r float64
			var obs Observation
			obs, r, done, _ = e.Step(a)
			if r < 0 || r > 1 || obs.Text == "" {
				t.Fatalf("bad step result for %q: reward %v page %s", a, r, obs.Page)
			}
		}
		if !done {
			t.Fatal("episode not ended by the step cap")
		}
	})
}
