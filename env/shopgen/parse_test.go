package shopgen

import (
	"slices"
	"strings"
	"testing"

	"shopagent/env/webshopdata"
)

func TestData(t *testing.T) {
	d, err := loadData()
	if err != nil {
		t.Fatal(err)
	}
	// Every phrase WebShop mined in its 1,000-product sample is an attribute.
	for _, m := range webshopdata.MinedAttributes() {
		for _, a := range m.Attributes {
			if d.attrs[a] == nil {
				t.Errorf("mined phrase %q is not in the vocabulary", a)
			}
		}
	}
	if len(d.cats) != 5 {
		t.Errorf("%d categories, want WebShop's 5", len(d.cats))
	}
}

// Instructions are WebShop's (human_goals.json); what each asks for was read
// off its text.
func TestParseReadsInstructions(t *testing.T) {
	for _, c := range []struct {
		ins     string
		typ     string // the product type ends with this
		attrs   []string
		options []string
		groups  []string // the options' groups, when checked
	}{
		{"i need a long clip-in hair extension which is natural looking", "hair extension", []string{"natural looking"}, nil, nil},
		{"im looking for hair treatments that are sulfate and paraben free and are of high quality too. i need it in bottle for with 60 capsules",
			"treatments", []string{"sulfate free", "paraben free", "high quality"}, []string{"60 capsules"}, nil},
		{"i need gluten free vegetarian smoked peppered bacon - 4 ounce (pack of 2)", "bacon", []string{"gluten free"},
			[]string{"4 ounce (pack of 2)"}, []string{"size"}},
		{"im looking for a queen size bedspread set in the color redwood", "bedspread set", []string{"queen size"},
			[]string{"redwood"}, []string{"color"}},
		{"i want to find xx-large black workout sweatpants with a relaxed fit", "sweatpants", []string{"relaxed fit"},
			[]string{"xx-large", "black"}, []string{"size", "color"}},
		{"i am looking to buy a womans us size 5 high heel shoe with a rubber sole and color patent-beige", "shoe",
			[]string{"high heel", "rubber sole"}, []string{"5", "patent-beige"}, []string{"size", "color"}},
		{"i need a long lasting 6.76 fl oz bottle of leau dissey", "", []string{"long lasting"}, []string{"6.76 fl oz"}, nil},
		{"i would like some teeth whitening strips that are a grape flavor", "strips", []string{"teeth whitening"},
			[]string{"grape"}, []string{"flavor name"}},
		{"i am looking for a high speed 3 foot red usb cable", "usb cable", []string{"high speed"}, []string{"3 ft", "red"}, nil},
		{"i want a set of leak proof, bpa free jars", "jars", []string{"leak proof", "bpa free"}, nil, nil},
		{"i would like a 20m digital 4g lte coaxial cable thats male to female", "coaxial cable", nil, []string{"20 meter"}, nil},
		{"i need a highspeed hdmi cable that is purple", "hdmi cable", nil, []string{"purple"}, []string{"color"}},
	} {
		r := Parse(c.ins)
		if c.typ != "" && !strings.HasSuffix(r.Type, c.typ) {
			t.Errorf("%q: type %q, want it to end with %q", c.ins, r.Type, c.typ)
		}
		for _, a := range c.attrs {
			if !slices.Contains(r.Attributes, a) {
				t.Errorf("%q: attributes %v, want %q among them", c.ins, r.Attributes, a)
			}
		}
		var vals []string
		for _, o := range r.Options {
			vals = append(vals, o.Value)
		}
		for i, v := range c.options {
			j := slices.Index(vals, v)
			if j < 0 {
				t.Errorf("%q: options %v, want %q among them", c.ins, r.Options, v)
				continue
			}
			if c.groups != nil && r.Options[j].Group != c.groups[i] {
				t.Errorf("%q: option %q in group %q, want %q", c.ins, v, r.Options[j].Group, c.groups[i])
			}
		}
		if len(c.options) == 0 && len(r.Options) > 0 && c.ins == "i need a long clip-in hair extension which is natural looking" {
			t.Errorf("%q asks for no option; got %v", c.ins, r.Options)
		}
	}
}

// Over all 12,087 instructions: every goal has an attribute and a type (WebShop
// drops goals without attributes), a product page has one choice per option
// group, and the share without options lies in the range real WebShop goals
// have (22-35%, from real sessions and the instructions' text).
func TestParseAllInstructions(t *testing.T) {
	noOpt := 0
	goals := webshopdata.HumanGoals()
	for i, ins := range goals {
		r := Parse(ins)
		if len(r.Attributes) == 0 || r.Type == "" || r.Head == "" {
			t.Fatalf("goal %d %q: attributes %v type %q head %q", i, ins, r.Attributes, r.Type, r.Head)
		}
		groups := map[string]bool{}
		for _, o := range r.Options {
			if o.Value == "" || o.Group == "" || groups[o.Group] {
				t.Fatalf("goal %d %q: options %v (an empty value or two in one group)", i, ins, r.Options)
			}
			groups[o.Group] = true
		}
		if len(r.Options) == 0 {
			noOpt++
		}
	}
	if share := float64(noOpt) / float64(len(goals)); share < 0.20 || share > 0.35 {
		t.Errorf("%.1f%% of goals ask for no option, want 20-35%%", 100*share)
	}
}

func TestSingular(t *testing.T) {
	for in, want := range map[string]string{"toothbrushes": "toothbrush", "candies": "candy", "shelves": "shelf",
		"pants": "pants", "dress": "dress", "boxes": "box", "cables": "cable", "glass": "glass", "mattress": "mattress"} {
		if got := singular(in); got != want {
			t.Errorf("singular(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSelectGoals(t *testing.T) {
	for spec, want := range map[string]int{"all": 12087, "2500": 2500, "0-49,500-549,1500-1699": 300, "3,1,3": 2} {
		got, err := SelectGoals(spec)
		if err != nil || len(got) != want || !slices.IsSorted(got) {
			t.Errorf("SelectGoals(%q): %d goals (sorted %v) err %v, want %d", spec, len(got), slices.IsSorted(got), err, want)
		}
	}
	for _, bad := range []string{"0", "12088", "5-2", "a-b", "12087-12087"} {
		if _, err := SelectGoals(bad); err == nil {
			t.Errorf("SelectGoals(%q): want an error", bad)
		}
	}
	if got := SampleGoals(2, 1, 3); got != "0-1,500-500,1500-1502" {
		t.Errorf("SampleGoals = %q", got)
	}
}
