package env

import (
	"fmt"
	"shopagent/env/pyport"
	"sort"
	"strings"
)

// GoalOption is one option a goal asks for. Human goals have only a Value;
// synthetic goals carry the option Name too (WebShop's dict-shaped options).
type GoalOption struct {
	Name  string `json:"name,omitempty"`
	Value string `json:"value"`
}

// Goal is one shopping task: an instruction and what a correct purchase has.
type Goal struct {
	ASIN            string       `json:"asin"`
	Category        string       `json:"category"`
	Query           string       `json:"query"`
	ProductCategory string       `json:"product_category"`
	Name            string       `json:"name"`
	Instruction     string       `json:"instruction_text"`
	Attributes      []string     `json:"attributes"`
	Options         []GoalOption `json:"goal_options"`
	PriceUpper      float64      `json:"price_upper"`
	Weight          float64      `json:"weight"`
	// Synthetic marks goals built from items_ins_v2 instructions rather than
	// human ones; their options are compared as "name value".
	Synthetic bool `json:"synthetic,omitempty"`
}

// NoPriceCap is WebShop's price_upper when no price clause is added.
const NoPriceCap = 1000000.0

// priceCap applies WebShop's price-cap rule: the candidates are the first four
// of 10, 20, ..., 990 above the price; with at least two, the cap is the larger
// of two distinct candidates drawn by random.sample.
func priceCap(price float64, rng *pyport.Random) (float64, string) {
	var cands []float64
	for i := 1; i < 100 && len(cands) < 4; i++ {
		if p := 10.0 * float64(i); p > price {
			cands = append(cands, p)
		}
	}
	if len(cands) < 2 {
		return NoPriceCap, ""
	}
	idx := rng.Sample(len(cands), 2)
	upper := max(cands[idx[0]], cands[idx[1]])
	return upper, fmt.Sprintf(", and price lower than %.2f dollars", upper)
}

// HumanGoals builds WebShop's human goals: products in catalog order, each
// product's human instructions in order, skipping instructions without
// attributes. Price caps are drawn from rng (WebShop's global random state,
// which follows the price draws of LoadCatalog when the same generator is used).
func HumanGoals(c *Catalog, rng *pyport.Random) []Goal {
	var goals []Goal
	for i := range c.Products {
		p := &c.Products[i]
		for _, h := range p.HumanInstructions {
			if len(h.Attributes) == 0 {
				continue
			}
			upper, priceText := priceCap(p.Price, rng)
			opts := make([]GoalOption, len(h.Options))
			for j, v := range h.Options {
				opts[j] = GoalOption{Value: v}
			}
			goals = append(goals, Goal{
				ASIN: p.ASIN, Category: p.Category, Query: p.Query,
				ProductCategory: p.ProductCategory, Name: p.Title,
				Instruction: strings.Trim(h.Instruction, ".") + priceText,
				Attributes:  h.Attributes, Options: opts, PriceUpper: upper, Weight: 1,
			})
		}
	}
	return goals
}

// SyntheticGoals builds WebShop's synthetic goals: for each product with an
// items_ins_v2 instruction, one goal per combination of its option values
// (option names sorted), weighted by the rarity of its attributes.
func SyntheticGoals(c *Catalog, rng *pyport.Random) []Goal {
	var goals []Goal
	count := map[string]int{}
	for i := range c.Products {
		p := &c.Products[i]
		if p.Instruction == "" || len(p.InstructionAttributes) == 0 {
			continue
		}
		upper, priceText := priceCap(p.Price, rng)
		groups := append([]OptionGroup(nil), p.Options...)
		sort.SliceStable(groups, func(a, b int) bool { return groups[a].Name < groups[b].Name })
		combos := [][]GoalOption{nil}
		for _, g := range groups {
			var next [][]GoalOption
			for _, prefix := range combos {
				for _, v := range g.Values {
					c := append(append([]GoalOption(nil), prefix...), GoalOption{Name: g.Name, Value: v})
					next = append(next, c)
				}
			}
			combos = next
		}
		for _, combo := range combos {
			parts := make([]string, len(combo))
			for j, o := range combo {
				parts[j] = o.Name + ": " + o.Value
			}
			optText := ""
			if len(parts) > 0 {
				optText = " with " + strings.Join(parts, ", and ")
			}
			goals = append(goals, Goal{
				ASIN: p.ASIN, Category: p.Category, Query: p.Query,
				ProductCategory: p.ProductCategory, Name: p.Title,
				Instruction: p.Instruction + optText + priceText,
				Attributes:  p.InstructionAttributes, Options: combo, PriceUpper: upper,
				Synthetic: true,
			})
			for _, a := range p.InstructionAttributes {
				count[a]++
			}
		}
	}
	for i := range goals {
		var w float64
		for _, a := range goals[i].Attributes {
			w += 1 / float64(count[a])
		}
		goals[i].Weight = w / float64(len(goals[i].Attributes))
	}
	return goals
}

// ShuffleGoals orders goals as WebShop does: random.seed(233);
// random.shuffle(goals).
func ShuffleGoals(goals []Goal) {
	pyport.NewRandom(233).Shuffle(len(goals), func(i, j int) { goals[i], goals[j] = goals[j], goals[i] })
}

// Splits are the goal index ranges of the test, dev and train splits.
type Splits struct {
	Test, Dev, Train [2]int
	// Note says how the splits differ from WebShop's 500 / 1,000 / rest, or is
	// empty when they are WebShop's.
	Note string
}

// SplitRanges returns the split boundaries for n goals in WebShop's order:
// WebShop's test = [0, 500), dev = [500, 1500), train = the rest when n > 1,500.
// A smaller goal set gets 10% / 20% / 70% so that every split is non-empty
// (our choice; WebShop has no rule for it), with a Note saying so.
func SplitRanges(n int) Splits {
	if n > 1500 {
		return Splits{Test: [2]int{0, 500}, Dev: [2]int{500, 1500}, Train: [2]int{1500, n}}
	}
	test, dev := n/10, n/5
	return Splits{Test: [2]int{0, test}, Dev: [2]int{test, test + dev}, Train: [2]int{test + dev, n},
		Note: fmt.Sprintf("only %d goals: splits are 10%%/20%%/70%% of them (WebShop's are 500/1,000/rest), so split figures are not comparable with WebShop's", n)}
}

// SameGoalsSplits is WebShop's rule when a product count is set (its
// baseline env with --num): every split is all n goals.
func SameGoalsSplits(n int) Splits {
	all := [2]int{0, n}
	return Splits{Test: all, Dev: all, Train: all,
		Note: fmt.Sprintf("a product limit is set: as in WebShop with a product count, test, dev and train are all the same %d goals, so figures are not comparable with WebShop's 500 test goals", n)}
}

// Split returns the goal indices of a split by name: "test", "dev", "train"
// or "all".
func (s Splits) Split(name string) ([2]int, error) {
	switch name {
	case "test":
		return s.Test, nil
	case "dev":
		return s.Dev, nil
	case "train":
		return s.Train, nil
	case "all":
		return [2]int{min(s.Test[0], s.Dev[0], s.Train[0]), max(s.Test[1], s.Dev[1], s.Train[1])}, nil
	}
	return [2]int{}, fmt.Errorf("unknown split %q (want test, dev, train or all)", name)
}
