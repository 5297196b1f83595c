// Command genhuman writes ../human_demos.jsonl: four episodes in the format
// of WebShop's il_trajs_finalized_images.jsonl, recorded on the datasets
// package's test shop (the built-in shop of shopgen.SampleGoals(30, 30, 90),
// generator seed 1). Run from the repository root:
//
//	go run ./datasets/testdata/genhuman > datasets/testdata/human_demos.jsonl
//
// It prints the episodes' goals (indices in the shop's goal list) and rewards
// on stderr, for datasets/testdata/README.md.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"shopagent/datasets"
	"shopagent/env"
	"shopagent/env/shopgen"
)

type record struct {
	States           []string   `json:"states"`
	Actions          []string   `json:"actions"`
	AvailableActions [][]string `json:"available_actions"`
	ActionsTranslate []string   `json:"actions_translate,omitempty"`
	ActionIdxs       []int      `json:"action_idxs"`
	Images           []any      `json:"images"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "genhuman:", err)
		os.Exit(1)
	}
}

func run() error {
	dir, err := os.MkdirTemp("", "genhuman")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := shopgen.DefaultConfig()
	cfg.Goals = shopgen.SampleGoals(30, 30, 90)
	if err := shopgen.Generate(cfg, dir, nil); err != nil {
		return err
	}
	shop, err := env.OpenShop(dir, env.ShopOptions{})
	if err != nil {
		return err
	}
	e := shop.NewEnv(env.Config{Mode: env.ObsTextRich, MaxSteps: 100})
	train := shop.Splits.Train
	var out []record
	used := map[int]bool{}
	// find plays the train goals from start with agents until keep accepts an episode.
	find := func(name string, newAgent func(g int, seed uint64) env.Agent, keep func(ep env.Episode) bool) (record, error) {
		for g := train[0]; g < train[1]; g++ {
			if used[g] {
				continue
			}
			for seed := uint64(1); seed <= 20; seed++ {
				ep := env.RunEpisode(e, shop.Goals[g], newAgent(g, seed), true)
				if !keep(ep) {
					continue
				}
				used[g] = true
				fmt.Fprintf(os.Stderr, "%s: goal %d, reward %v, %d steps\n", name, g, ep.Reward, ep.Steps)
				return toRecord(ep), nil
			}
		}
		return record{}, fmt.Errorf("no %s episode found", name)
	}
	has := func(ep env.Episode, action string) bool {
		for _, t := range ep.Transitions {
			if t.Action == action {
				return true
			}
		}
		return false
	}
	expert := func(cfg datasets.ExpertConfig) func(int, uint64) env.Agent {
		return func(g int, seed uint64) env.Agent { return datasets.NewExpert(shop.Goals[g], cfg, seed) }
	}
	read := datasets.DefaultExpertConfig()
	read.ReadProb = 1
	noisy := datasets.DefaultExpertConfig()
	noisy.Noise = 0.3
	r1, err := find("expert reading the features", expert(read), func(ep env.Episode) bool {
		return ep.Reward == 1 && has(ep, "click[features]") && len(ep.Goal.Options) > 0
	})
	if err != nil {
		return err
	}
	r1.ActionsTranslate = r1.Actions
	r2, err := find("noisy expert", expert(noisy), func(ep env.Episode) bool {
		x := 0
		for _, t := range ep.Transitions {
			if t.Obs.Page == env.PageItem && strings.HasPrefix(t.Action, "click[") && t.Action != "click[buy now]" {
				x++
			}
		}
		return ep.Reward == 1 && x > len(ep.Goal.Options)
	})
	if err != nil {
		return err
	}
	r2.States[0] = "Amazon Shopping Game" + strings.TrimPrefix(r2.States[0], "WebShop")
	r3, err := find("rule baseline", func(int, uint64) env.Agent { return env.RuleAgent{} }, func(ep env.Episode) bool {
		return ep.Reward > 0 && ep.Reward < 1
	})
	if err != nil {
		return err
	}
	r4, err := find("expert reading the description", expert(read), func(ep env.Episode) bool {
		return ep.Reward == 1 && has(ep, "click[description]")
	})
	if err != nil {
		return err
	}
	for i := range r4.Images {
		r4.Images[i] = []float64{0.125, -0.5, 0.25}
	}
	out = append(out, r1, r2, r3, r4)
	enc := json.NewEncoder(os.Stdout)
	for _, r := range out {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// toRecord writes an episode as WebShop does: search steps have an empty
// available list and index -1.
func toRecord(ep env.Episode) record {
	var r record
	for _, t := range ep.Transitions {
		r.States = append(r.States, t.Obs.Text)
		r.Actions = append(r.Actions, t.Action)
		r.Images = append(r.Images, 0)
		if strings.HasPrefix(t.Action, "search[") {
			r.AvailableActions = append(r.AvailableActions, []string{})
			r.ActionIdxs = append(r.ActionIdxs, -1)
			continue
		}
		var avail []string
		idx := -1
		for _, c := range t.Obs.Clickables {
			if c == env.ClickSearch {
				continue
			}
			if env.Click(c) == t.Action {
				idx = len(avail)
			}
			avail = append(avail, env.Click(c))
		}
		r.AvailableActions = append(r.AvailableActions, avail)
		r.ActionIdxs = append(r.ActionIdxs, idx)
	}
	return r
}
