package env

import (
	"slices"
	"strings"
	"testing"
)

// Tests of behaviours read off WebShop's own code (web_agent_site/engine,
// envs/web_agent_text_env.py and the Jinja templates), not off our output.

func fidelityProduct(asin, title string) Product {
	return Product{ASIN: asin, Title: title, PriceText: "$10.0", Pricing: []float64{10}, Price: 10,
		Description: "a plain mug", BulletPoints: []string{"mug"}, Attributes: []string{"DUMMY_ATTR"},
		Category: "garden", Query: "mugs", ProductCategory: "Home › Kitchen › Mugs", Rating: "N.A."}
}

// Anserini breaks equal BM25 scores by the document id (the ASIN) ascending,
// not by the order products were indexed in.
func TestSearchTiesByASIN(t *testing.T) {
	products := []Product{
		fidelityProduct("B0ZZZZZZZ2", "Blue Coffee Mug"),
		fidelityProduct("B0ZZZZZZZ9", "Blue Coffee Mug"),
		fidelityProduct("B0AAAAAAA5", "Blue Coffee Mug"),
		fidelityProduct("B0MMMMMMM1", "Red Tea Kettle"),
	}
	products[3].Description, products[3].BulletPoints = "steel", []string{"kettle"}
	shop := NewShop(NewCatalog(products), nil)
	got := shop.Search("blue coffee mug", SearchReturnN, nil)
	var asins []string
	for _, i := range got {
		asins = append(asins, shop.Catalog.Products[i].ASIN)
	}
	if want := []string{"B0AAAAAAA5", "B0ZZZZZZZ2", "B0ZZZZZZZ9"}; !slices.Equal(asins, want) {
		t.Errorf("tied results %v, want ASIN ascending %v", asins, want)
	}
}

// WebShop's get_top_n_product_from_keywords looks at the first space-separated
// keyword for "<r>", "<a>", "<c>" and "<q>"; the filters return every match in
// product order, not just 50.
func TestSearchSpecialPrefixes(t *testing.T) {
	var products []Product
	for i := range 60 {
		p := fidelityProduct("B0"+strings.Repeat(string(rune('A'+i%26)), 7)+string(rune('0'+i/26)), "Mug")
		if i%3 == 0 {
			p.Category, p.Query = "beauty", "lipstick"
			p.Attributes = []string{"long lasting"}
		}
		products = append(products, p)
	}
	shop := NewShop(NewCatalog(products), nil)
	beauty := shop.Search("<c> beauty ignored words", SearchReturnN, nil)
	if len(beauty) != 20 || !slices.IsSorted(beauty) {
		t.Errorf("<c> beauty: %d results (sorted %v), want the 20 beauty products in catalog order", len(beauty), slices.IsSorted(beauty))
	}
	for _, i := range beauty {
		if shop.Catalog.Products[i].Category != "beauty" {
			t.Fatalf("<c> returned a %s product", shop.Catalog.Products[i].Category)
		}
	}
	if q := shop.Search("<q> mugs", SearchReturnN, nil); len(q) != 40 {
		t.Errorf("<q> mugs: %d results, want all 40", len(q))
	}
	if a := shop.Search("<a> long lasting", SearchReturnN, nil); !slices.Equal(a, beauty) {
		t.Errorf("<a> long lasting: %v, want the products with that attribute %v", a, beauty)
	}
	if c := shop.Search("<c>", SearchReturnN, nil); len(c) != 0 {
		t.Errorf("bare <c>: %d results, want none", len(c))
	}
	// " <c> beauty": the first keyword is "" (Python's split(' ')), a plain search.
	if c := shop.Search(" <c> beauty", SearchReturnN, nil); len(c) != 0 {
		t.Errorf("' <c> beauty' found %d products; no product text has 'beauty' or 'c'", len(c))
	}
	e := shop.NewEnv(Config{Seed: 7})
	e.Reset(Goal{Instruction: "x"})
	obs, _, _, _ := e.Step("search[<r>]")
	if !strings.Contains(obs.Text, "(Total results: 50)") {
		t.Errorf("<r>: %q, want 50 random results", obs.Text[:min(len(obs.Text), 120)])
	}
	r1 := shop.Search("<r>", SearchReturnN, nil)
	seen := map[int]bool{}
	for _, i := range r1 {
		seen[i] = true
	}
	if len(r1) != 50 || len(seen) != 50 {
		t.Errorf("<r>: %d results, %d distinct; want 50 distinct", len(r1), len(seen))
	}
}

// BeautifulSoup yields no text node for an empty title, description,
// category or query, so WebShop's observations have no empty field for them.
func TestEmptyStringsRenderNothing(t *testing.T) {
	p := fidelityProduct("B0EMPTY001", "")
	p.Description, p.Category, p.Query = "", "", ""
	p.Attributes = []string{"sturdy"}
	shop := NewShop(NewCatalog([]Product{p, fidelityProduct("B0FULL0001", "Mug Plain")}), nil)
	g := Goal{Instruction: "i want a plain mug"}
	for _, mode := range []ObsMode{ObsText, ObsTextRich} {
		e := shop.NewEnv(Config{Mode: mode, ShowAttributes: true})
		e.Reset(g)
		res := mustStep(t, e, "search[mug plain]")
		item := mustStep(t, e, "click[b0empty001]")
		desc := mustStep(t, e, "click[description]")
		mustStep(t, e, "click[< prev]")
		attrs := mustStep(t, e, "click[attributes]")
		if mode == ObsText {
			if !strings.Contains(res.Text, " [SEP] B0EMPTY001 [SEP] $10.0") || strings.Contains(res.Text, "[SEP]  [SEP]") {
				t.Errorf("text results with an empty title: %q", res.Text)
			}
			if !strings.Contains(item.Text, "< Prev [SEP] Price: $10.0") {
				t.Errorf("text item page has an empty title field: %q", item.Text)
			}
			if want := "Instruction: [SEP] i want a plain mug [SEP] Back to Search [SEP] < Prev"; desc.Text != want {
				t.Errorf("text description:\n got %q\nwant %q", desc.Text, want)
			}
			if want := "Instruction: [SEP] i want a plain mug [SEP] Back to Search [SEP] < Prev [SEP] sturdy [SEP] Home › Kitchen › Mugs"; attrs.Text != want {
				t.Errorf("text attributes:\n got %q\nwant %q", attrs.Text, want)
			}
			continue
		}
		if want := "Instruction:\ni want a plain mug\n[button] Back to Search [button_]\n[button] < Prev [button_]\n"; desc.Text != want {
			t.Errorf("text_rich description:\n got %q\nwant %q", desc.Text, want)
		}
		if strings.Contains(res.Text, "[button_]\n$10.0") == false || strings.Contains(res.Text, "\n\n$10.0") {
			t.Errorf("text_rich results with an empty title:\n%q", res.Text)
		}
	}
}

// text_rich marks an option clicked only when '"value"' occurs in the page's
// URL, which holds json.dumps(options) (ASCII-escaped) and the keywords.
func TestTextRichClickedFollowsWebShopURL(t *testing.T) {
	p := fidelityProduct("B0OPTS0001", "Mug Set")
	p.Options = []OptionGroup{{Name: "color", Values: []string{"black", "café", `12" tall`}}}
	shop := NewShop(NewCatalog([]Product{p}), nil)
	e := shop.NewEnv(Config{Mode: ObsTextRich})
	e.Reset(Goal{Instruction: "mug"})
	mustStep(t, e, "search[mug set]")
	mustStep(t, e, "click[b0opts0001]")
	obs := mustStep(t, e, "click[black]")
	if !strings.HasPrefix(obs.Text, "You have clicked black.\n") || !strings.Contains(obs.Text, "  [clicked button] black [clicked button_]\n") {
		t.Errorf("ASCII option not shown clicked:\n%s", obs.Text)
	}
	for _, v := range []string{"café", `12" tall`} {
		obs = mustStep(t, e, "click["+v+"]")
		if strings.Contains(obs.Text, "You have clicked") || strings.Contains(obs.Text, "[clicked button]") {
			t.Errorf("option %q is JSON-escaped in WebShop's URL and never shows clicked:\n%s", v, obs.Text)
		}
	}
	// A quoted keyword puts '"black"' in the URL: black shows clicked unclicked.
	e.Reset(Goal{Instruction: "mug"})
	mustStep(t, e, `search["black" mug set]`)
	obs = mustStep(t, e, "click[b0opts0001]")
	if !strings.HasPrefix(obs.Text, "You have clicked black.\n") {
		t.Errorf("WebShop shows black clicked when the keywords hold \"black\":\n%s", obs.Text)
	}
}

func TestInvalidActionReasons(t *testing.T) {
	shop := testShop(t)
	e := shop.NewEnv(Config{})
	e.Reset(shop.Goals[0])
	for a, want := range map[string]string{
		"dance":            "not an action",
		"search[]":         "not an action", // "search[]" does not match (.+)\[(.+)\]
		"buy[now]":         "unknown action",
		"click[search]":    "use search[QUERY]",
		"click[buy now]":   "not clickable on the search page",
		"search[  ]":       "",
		"click[back to x]": "not clickable",
	} {
		e.Reset(shop.Goals[0])
		_, _, _, info := e.Step(a)
		if want == "" {
			if !info.Valid {
				t.Errorf("%q: WebShop searches for any non-empty text; got invalid: %s", a, info.Reason)
			}
			continue
		}
		if info.Valid || !strings.Contains(info.Reason, want) {
			t.Errorf("%q: valid %v reason %q, want it to say %q", a, info.Valid, info.Reason, want)
		}
	}
}
