package env

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// webshopGoal is a goal as WebShop's Python code holds it.
type webshopGoal struct {
	ASIN            string          `json:"asin"`
	Category        string          `json:"category"`
	Query           string          `json:"query"`
	Name            string          `json:"name"`
	ProductCategory string          `json:"product_category"`
	Instruction     string          `json:"instruction_text"`
	Attributes      []string        `json:"attributes"`
	PriceUpper      *float64        `json:"price_upper"`
	GoalOptions     json.RawMessage `json:"goal_options"`
	Weight          *float64        `json:"weight"`
}

// ParseGoalJSON decodes a goal in WebShop's JSON shape. goal_options may be a
// list of values (human goals) or a {name: value} object (synthetic goals).
func ParseGoalJSON(data []byte) (Goal, error) {
	var w webshopGoal
	if err := json.Unmarshal(data, &w); err != nil {
		return Goal{}, fmt.Errorf("goal: %w", err)
	}
	g := Goal{
		ASIN: w.ASIN, Category: w.Category, Query: w.Query, Name: w.Name,
		ProductCategory: w.ProductCategory, Instruction: w.Instruction,
		Attributes: w.Attributes, PriceUpper: NoPriceCap, Weight: 1,
	}
	if w.PriceUpper != nil {
		g.PriceUpper = *w.PriceUpper
	}
	if w.Weight != nil {
		g.Weight = *w.Weight
	}
	raw := bytes.TrimSpace(w.GoalOptions)
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
	case raw[0] == '[':
		var vals []string
		if err := json.Unmarshal(raw, &vals); err != nil {
			return Goal{}, fmt.Errorf("goal: goal_options: %w", err)
		}
		for _, v := range vals {
			g.Options = append(g.Options, GoalOption{Value: v})
		}
	case raw[0] == '{':
		kv, err := orderedStringMap(raw)
		if err != nil {
			return Goal{}, fmt.Errorf("goal: goal_options: %w", err)
		}
		g.Options = kv
		g.Synthetic = true
	default:
		return Goal{}, fmt.Errorf("goal: goal_options must be a list or an object")
	}
	if len(g.Attributes) == 0 {
		return Goal{}, fmt.Errorf("goal: no attributes (WebShop skips such goals)")
	}
	return g, nil
}

// orderedStringMap decodes a JSON object of strings keeping key order.
func orderedStringMap(raw []byte) ([]GoalOption, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var out []GoalOption
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v string
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("key %v: %w", k, err)
		}
		out = append(out, GoalOption{Name: k.(string), Value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return out, nil
}

// webshopProduct is a product as WebShop's engine holds it after loading.
type webshopProduct struct {
	ASIN            string       `json:"asin"`
	Title           *string      `json:"Title"`
	Description     string       `json:"Description"`
	BulletPoints    StringOrList `json:"BulletPoints"`
	Attributes      []string     `json:"Attributes"`
	Price           string       `json:"Price"`
	Pricing         []float64    `json:"pricing"`
	Category        string       `json:"category"`
	Query           string       `json:"query"`
	ProductCategory string       `json:"product_category"`
	Name            string       `json:"name"`
}

// ParseProductJSON decodes a product either in WebShop's loaded shape (with
// "Title", "BulletPoints", "Description", "Attributes", "pricing") or as an
// items_shuffle record (with "name", "small_description", "pricing" text,
// and optionally "Attributes"). The reward price of a range is its low end
// unless the caller overrides it.
func ParseProductJSON(data []byte) (Product, error) {
	var w webshopProduct
	if err := json.Unmarshal(data, &w); err == nil && w.Title != nil {
		p := Product{
			ASIN: w.ASIN, Title: *w.Title, Description: w.Description,
			BulletPoints: []string(w.BulletPoints), Attributes: w.Attributes,
			Category: w.Category, Query: w.Query, ProductCategory: w.ProductCategory,
			PriceText: w.Price, Pricing: w.Pricing, Rating: "N.A.",
		}
		if len(p.Pricing) > 0 {
			p.Price = p.Pricing[0]
		} else {
			p.Price = 100
		}
		return p, nil
	}
	var raw struct {
		RawProduct
		Attributes []string `json:"Attributes"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Product{}, fmt.Errorf("product: %w", err)
	}
	p, err := cleanProduct(&raw.RawProduct)
	if err != nil {
		return Product{}, fmt.Errorf("product %q: %w", raw.ASIN, err)
	}
	p.Attributes = raw.Attributes
	if p.Attributes == nil {
		p.Attributes = []string{"DUMMY_ATTR"}
	}
	p.Price = 100
	if len(p.Pricing) > 0 {
		p.Price = p.Pricing[0]
	}
	return p, nil
}
