package export

import (
	"fmt"
	"os"

	"shopagent/env"
	"shopagent/env/shopgen"
	"shopagent/features"
)

// Sample is one observation used by the parity check: its text and clickables.
type Sample struct {
	Page       string
	Text       string
	Clickables []string
}

// sampleGoals is the number of goals (ten products each) of the built-in shop
// the samples come from.
const sampleGoals = 10

// SampleObservations plays a few goals of a freshly generated built-in shop (10
// WebShop test goals, 100 products, seed 1) in the given observation mode and returns the observations an agent
// meets: a results page (first and second page), an item page, the item page after an
// option was chosen, and a description page, for each of goals goals. Their states and
// action lists have different lengths.
func SampleObservations(mode env.ObsMode, goals int) ([]Sample, error) {
	dir, err := os.MkdirTemp("", "shopagent-export-shop-")
	if err != nil {
		return nil, fmt.Errorf("export: sample shop: %w", err)
	}
	defer os.RemoveAll(dir)
	cfg := shopgen.DefaultConfig()
	cfg.Goals = shopgen.SampleGoals(sampleGoals, 0, 0)
	if err := shopgen.Generate(cfg, dir, nil); err != nil {
		return nil, fmt.Errorf("export: sample shop: %w", err)
	}
	shop, err := env.OpenShop(dir, env.ShopOptions{Seed: 1})
	if err != nil {
		return nil, fmt.Errorf("export: sample shop: %w", err)
	}
	if len(shop.Goals) == 0 {
		return nil, fmt.Errorf("export: sample shop has no goals")
	}
	var out []Sample
	add := func(o env.Observation) {
		var clickable []string
		for _, c := range o.Clickables {
			if c != env.ClickSearch {
				clickable = append(clickable, c)
			}
		}
		if len(clickable) > 0 {
			out = append(out, Sample{Page: string(o.Page), Text: o.Text, Clickables: o.Clickables})
		}
	}
	for g := 0; g < goals && g < len(shop.Goals); g++ {
		e := shop.NewEnv(env.Config{Mode: mode, MaxSteps: 50})
		obs := e.Reset(shop.Goals[g])
		obs, _, _, _ = e.Step(env.Search(obs.Instruction))
		if obs.Page != env.PageResults {
			continue
		}
		add(obs)
		results := obs
		if contains(obs.Clickables, env.ClickNext) && g == 0 {
			next, _, _, _ := e.Step(env.Click(env.ClickNext))
			add(next)
			results, _, _, _ = e.Step(env.Click(env.ClickPrev))
		}
		product := ""
		for _, c := range results.Clickables {
			if !features.IsNavigationLabel(c) {
				product = c
				break
			}
		}
		if product == "" {
			continue
		}
		item, _, _, _ := e.Step(env.Click(product))
		add(item)
		for _, c := range item.Clickables {
			if !features.IsNavigationLabel(c) { // an option value
				chosen, _, _, _ := e.Step(env.Click(c))
				add(chosen)
				break
			}
		}
		if contains(item.Clickables, env.ClickDescription) {
			desc, _, _, _ := e.Step(env.Click(env.ClickDescription))
			add(desc)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("export: the sample shop gave no observations with actions")
	}
	return out, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
