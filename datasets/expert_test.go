package datasets

import (
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"shopagent/env"
	"shopagent/env/shopgen"
	"shopagent/env/webshopdata"
)

func trainGoals(t *testing.T, shop *env.Shop) []env.Goal {
	t.Helper()
	goals, err := shop.SplitGoals("train")
	if err != nil {
		t.Fatal(err)
	}
	return goals
}

// searchQuery returns the query of a search action, or "" for another action.
func searchQuery(action string) string {
	a := env.ParseAction(action)
	if a.Name != "search" {
		return ""
	}
	return a.Arg
}

func TestExpertDemos(t *testing.T) {
	shop := testShop(t)
	goals := trainGoals(t, shop)
	cfg := DemoConfig{Goals: goals, GoalOffset: shop.Splits.Train[0], Expert: DefaultExpertConfig(), Seed: 7, Workers: 3}
	var eps [][]Step
	st, err := GenerateDemos(shop, cfg, func(ep []Step) error { eps = append(eps, ep); return nil })
	if err != nil {
		t.Fatal(err)
	}
	rule := env.Summarize(shop.Evaluate(goals, env.Config{MaxSteps: 100}, 0, func(int) env.Agent { return env.RuleAgent{} }, false, nil))
	t.Logf("expert: %+v; rule: success %.1f%%, score %.1f", st, rule.SuccessRate, rule.Score)
	if st.Episodes != len(goals) || len(eps) != len(goals) {
		t.Fatalf("%d episodes for %d goals", st.Episodes, len(goals))
	}
	if st.SuccessRate < 95 || st.MeanReward < 0.95 || st.SuccessRate < rule.SuccessRate+50 {
		t.Fatalf("expert success %.1f%% (mean reward %.3f), rule %.1f%%", st.SuccessRate, st.MeanReward, rule.SuccessRate)
	}
	if st.Truncated != 0 || st.RandomActions != 0 {
		t.Fatalf("stats %+v", st)
	}
	reads, visits, items, views, human, words := 0, 0, 0, 0, 0, 0
	queries := map[string]bool{}
	for i, ep := range eps {
		g := goals[i]
		if ep[0].GoalID != int64(shop.Splits.Train[0]+i) || ep[0].Instruction != g.Instruction {
			t.Fatalf("episode %d: goal %d %q", i, ep[0].GoalID, ep[0].Instruction)
		}
		first := searchQuery(ep[0].Action)
		words += len(strings.Fields(first))
		if hq := HumanQueriesFor(g.Instruction); len(hq) > 0 {
			human++
			if !IsHumanQuery(g.Instruction, first) {
				t.Errorf("episode %d: first query %q is none of the instruction's human queries %q", i, first, hq)
			}
		}
		for j, s := range ep {
			if s.Source != "expert" || s.Policy != ExpertPolicy || s.EpisodeID != ep[0].EpisodeID || int(s.Step) != j {
				t.Fatalf("episode %d step %d labels: %+v", i, j, s)
			}
			if s.FinalReward != ep[len(ep)-1].FinalReward || s.Done != (j == len(ep)-1) {
				t.Fatalf("episode %d step %d: final %v done %v", i, j, s.FinalReward, s.Done)
			}
			if !math.IsNaN(s.Logprob) || !math.IsNaN(s.Value) {
				t.Fatalf("episode %d step %d: logprob/value should be NaN", i, j)
			}
			if q := searchQuery(s.Action); q != "" {
				if strings.Contains(q, "price lower than") {
					t.Errorf("query keeps the instruction's price clause: %q", q)
				}
				queries[q] = true
				if s.ActionIndex != -1 || s.AvailableActions[0] != "search[...]" {
					t.Errorf("search row: %d %v", s.ActionIndex, s.AvailableActions)
				}
			} else if s.ActionIndex < 0 || s.AvailableActions[s.ActionIndex] != s.Action {
				t.Errorf("episode %d step %d: %q not at index %d", i, j, s.Action, s.ActionIndex)
			}
			switch {
			case s.Action == "click[description]" || s.Action == "click[features]":
				reads++
			case ClassifyAction(s.Action) == ActionClickASIN:
				items++
			}
			if s.Page == "results" {
				views++
			}
			// A visit to a product page starts with the click on the product.
			if s.Page == "item" && j > 0 && ClassifyAction(ep[j-1].Action) == ActionClickASIN {
				visits++
			}
		}
		last := ep[len(ep)-1]
		if last.Action != "click[buy now]" || last.Reward != last.FinalReward || last.Page != "item" {
			t.Fatalf("episode %d ends with %+v", i, last)
		}
	}
	if human == 0 || st.HumanQueries != human || st.QueryWords != words || st.ItemsOpened != items ||
		st.ResultsViews != views || st.Reads != reads || visits != items {
		t.Errorf("stats %+v; counted %d human first queries, %d query words, %d products opened (%d visits), %d results views, %d reads",
			st, human, words, items, visits, views, reads)
	}
	// Reading: each visit draws ReadProb (0.3); 95% binomial bounds, widened.
	p, n := DefaultExpertConfig().ReadProb, float64(visits)
	if got, sd := float64(reads)/n, math.Sqrt(p*(1-p)/n); math.Abs(got-p) > 3*sd {
		t.Errorf("%d reads in %d product visits, want a rate near %.2f", reads, visits, p)
	}
	if st.OpenedOthers == 0 || st.PagesAhead == 0 || st.Reformulations == 0 || st.ItemsOpened <= st.Episodes {
		t.Errorf("no detours with the default config: %+v", st)
	}
	if len(queries) < len(goals)*8/10 {
		t.Errorf("only %d distinct queries for %d goals", len(queries), len(goals))
	}
}

// TestExpertShortQueryDemos plays the train goals without human queries:
// the expert still finds nearly every goal product from its shortened
// queries.
func TestExpertShortQueryDemos(t *testing.T) {
	shop := testShop(t)
	goals := trainGoals(t, shop)
	cfg := DefaultExpertConfig()
	cfg.HumanQueries = map[string][]string{}
	same := 0
	st, err := GenerateDemos(shop, DemoConfig{Goals: goals, Expert: cfg, Seed: 5}, func(ep []Step) error {
		q := searchQuery(ep[0].Action)
		if IsHumanQuery(ep[0].Instruction, q) {
			same++
		}
		if n := len(strings.Fields(q)); n == 0 || n > shortCopyMax {
			t.Errorf("shortened query of %d words: %q", n, q)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("shortened queries: %+v", st)
	if st.SuccessRate < 95 || st.Truncated != 0 || st.HumanQueries != 0 || same > len(goals)/10 {
		t.Fatalf("expert without human queries: %+v (%d first queries equal a human one)", st, same)
	}
}

// TestExpertHumanQuery checks the choice of the first query: one of the
// instruction's human queries, found whatever the price clause, case and
// spacing, chosen by the seed; none with an empty map; a given map instead of
// WebShop's.
func TestExpertHumanQuery(t *testing.T) {
	shop := testShop(t)
	e := shop.NewEnv(env.Config{MaxSteps: 100})
	firstQuery := func(g env.Goal, cfg ExpertConfig, seed uint64) (string, ExpertReport) {
		x := NewExpert(g, cfg, seed)
		a := x.Act(e.Reset(g))
		return searchQuery(a), x.Report()
	}
	// An instruction with several queries.
	var ins string
	for k, qs := range webshopdata.GoalQueryMap() {
		if len(qs) >= 3 && (ins == "" || k < ins) {
			ins = k
		}
	}
	if ins == "" {
		t.Fatal("no instruction with 3 human queries")
	}
	want := map[string]bool{}
	for _, q := range webshopdata.GoalQueryMap()[ins] {
		want[cleanQuery(q)] = true
	}
	g := trainGoals(t, shop)[0]
	g.Instruction = "  " + strings.ToUpper(ins[:1]) + strings.ReplaceAll(ins[1:], " ", "  ") + ", and price lower than 30.00 dollars"
	seen := map[string]bool{}
	for seed := uint64(0); seed < 30; seed++ {
		q, rep := firstQuery(g, DefaultExpertConfig(), seed)
		if !want[q] || !rep.HumanQuery || rep.FirstQuery != q || rep.Searches != 1 {
			t.Fatalf("seed %d: first query %q (report %+v), want one of %q", seed, q, rep, webshopdata.GoalQueryMap()[ins])
		}
		seen[q] = true
	}
	if len(seen) < 2 {
		t.Errorf("30 seeds chose only %v among %d human queries", seen, len(want))
	}
	// No human queries (an empty map, or HumanQueryProb 0 as in the zero
	// config): a shortened query.
	cfg := DefaultExpertConfig()
	cfg.HumanQueries = map[string][]string{}
	if q, rep := firstQuery(g, cfg, 1); rep.HumanQuery || q == "" || want[q] && len(strings.Fields(q)) < 3 {
		t.Errorf("without human queries: %q %+v", q, rep)
	}
	if q, rep := firstQuery(g, ExpertConfig{}, 1); rep.HumanQuery || q == "" {
		t.Errorf("zero config: %q %+v", q, rep)
	}
	// HumanQueryProb 0.4: a human query in about 40% of the episodes.
	cfg = DefaultExpertConfig()
	cfg.HumanQueryProb = 0.4
	humans := 0
	for seed := uint64(0); seed < 400; seed++ {
		q, rep := firstQuery(g, cfg, seed)
		if rep.HumanQuery != want[q] {
			t.Fatalf("seed %d: %q reported human %v", seed, q, rep.HumanQuery)
		}
		if rep.HumanQuery {
			humans++
		}
	}
	if sd := math.Sqrt(0.4 * 0.6 / 400); math.Abs(float64(humans)/400-0.4) > 3*sd {
		t.Errorf("HumanQueryProb 0.4: %d human first queries in 400 episodes", humans)
	}
	// A map of one's own, keyed as goal_query_map.json is.
	cfg = DefaultExpertConfig()
	cfg.HumanQueries = map[string][]string{strings.ToLower(ins): {"My [Own] Query "}}
	if q, rep := firstQuery(g, cfg, 1); q != "my own query" || !rep.HumanQuery {
		t.Errorf("own map: %q %+v", q, rep)
	}
	if got := HumanQueriesFor(g.Instruction); len(got) != len(webshopdata.GoalQueryMap()[ins]) {
		t.Errorf("HumanQueriesFor(%q) = %q", g.Instruction, got)
	}
	if got := HumanQueriesFor("i want something nobody asked for, and price lower than 10.00 dollars"); got != nil {
		t.Errorf("HumanQueriesFor of an unknown instruction: %q", got)
	}
	for q := range want {
		if !IsHumanQuery(g.Instruction, "  "+strings.ToUpper(q)+" ") {
			t.Errorf("IsHumanQuery(%q) false", q)
		}
	}
	if IsHumanQuery(g.Instruction, "my own query") || IsHumanQuery("i want something nobody asked for", "something") {
		t.Error("IsHumanQuery true for a query nobody typed")
	}
}

// TestShortQueries compares the shortened queries with people's: for every
// instruction of goal_query_map.json, its goal as the built-in shop reads it
// (shopgen.Parse) and a shortened query; the word counts must follow the
// human queries' (mean within 0.75 word, median, 10th and 90th percentiles
// within 1 and 2 words) and the words must come from the instruction or the
// goal, without the opening, the price clause, or more than 16 words.
func TestShortQueries(t *testing.T) {
	m := webshopdata.GoalQueryMap()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var gen, hum []int
	hasType := 0
	cfg := ExpertConfig{HumanQueries: map[string][]string{}}
	for i, k := range keys {
		for _, q := range m[k] {
			hum = append(hum, len(strings.Fields(q)))
		}
		req := shopgen.Parse(k)
		g := env.Goal{Instruction: k + ", and price lower than 40.00 dollars", Attributes: req.Attributes}
		allowed := map[string]bool{}
		for _, w := range alnumRE.FindAllString(strings.ReplaceAll(strings.ToLower(k), "'", ""), -1) {
			allowed[w] = true
		}
		for _, a := range req.Attributes {
			for _, w := range alnumRE.FindAllString(a, -1) {
				allowed[w] = true
			}
		}
		for _, o := range req.Options {
			g.Options = append(g.Options, env.GoalOption{Value: o.Value})
			for _, w := range alnumRE.FindAllString(o.Value, -1) {
				allowed[w] = true
			}
		}
		x := NewExpert(g, cfg, uint64(i))
		q := x.firstQuery()
		if x.Report().HumanQuery {
			t.Fatalf("%q: human query with an empty map", k)
		}
		qw := strings.Fields(q)
		gen = append(gen, len(qw))
		if len(qw) == 0 || len(qw) > shortCopyMax || strings.Contains(q, "price") || strings.Contains(q, "dollars") {
			t.Errorf("%q: query %q", k, q)
		}
		for _, o := range []string{"i ", "im ", "i'm ", "looking for ", "find me "} {
			if strings.HasPrefix(q, o) {
				t.Errorf("%q: query %q keeps the opening", k, q)
			}
		}
		for _, w := range alnumRE.FindAllString(strings.ReplaceAll(q, "'", ""), -1) {
			if !allowed[w] {
				t.Errorf("%q: query %q has %q, in neither the instruction nor the goal", k, q, w)
			}
		}
		if typ := strings.Fields(req.Type); len(typ) > 0 && strings.Contains(" "+q+" ", " "+typ[len(typ)-1]+" ") {
			hasType++
		}
	}
	stats := func(v []int) (mean float64, p10, median, p90 int) {
		sort.Ints(v)
		s := 0
		for _, x := range v {
			s += x
		}
		return float64(s) / float64(len(v)), v[len(v)/10], v[len(v)/2], v[len(v)*9/10]
	}
	gm, g10, g50, g90 := stats(gen)
	hm, h10, h50, h90 := stats(hum)
	t.Logf("words per query: shortened (%d) mean %.2f, p10 %d, median %d, p90 %d; human (%d) mean %.2f, p10 %d, median %d, p90 %d; product type kept in %.1f%%",
		len(gen), gm, g10, g50, g90, len(hum), hm, h10, h50, h90, 100*float64(hasType)/float64(len(gen)))
	hist := func(v []int) string {
		var b strings.Builder
		for _, r := range [][2]int{{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {11, 14}, {15, 100}} {
			n := 0
			for _, x := range v {
				if x >= r[0] && x <= r[1] {
					n++
				}
			}
			fmt.Fprintf(&b, " %d-%d: %.1f%%", r[0], r[1], 100*float64(n)/float64(len(v)))
		}
		return b.String()
	}
	t.Logf("shortened:%s", hist(gen))
	t.Logf("human:    %s", hist(hum))
	if math.Abs(gm-hm) > 0.75 || abs(g50-h50) > 1 || abs(g10-h10) > 2 || abs(g90-h90) > 2 {
		t.Errorf("shortened queries' lengths differ from people's")
	}
	if hasType < len(gen)*85/100 {
		t.Errorf("the product type's head noun is in only %d of %d shortened queries", hasType, len(gen))
	}
}

// alnumRE matches runs of letters and digits.
var alnumRE = regexp.MustCompile(`[\p{L}\p{N}]+`)

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestExpertDetours plays the train goals with one kind of detour at a time,
// drawn with probability 0.5: the detours happen at that rate per chance,
// show in the actions as described, and every episode still buys the goal
// product.
func TestExpertDetours(t *testing.T) {
	shop := testShop(t)
	goals := trainGoals(t, shop)
	e := shop.NewEnv(env.Config{MaxSteps: 100})
	const p = 0.5
	for k, kind := range []string{"open other", "page ahead", "reformulate", "read"} {
		cfg := ExpertConfig{MaxDetours: 4}
		switch kind {
		case "open other":
			cfg.OpenOtherProb = p
		case "page ahead":
			cfg.PageAheadProb = p
		case "reformulate":
			cfg.ReformulateProb = p
		case "read":
			cfg.ReadProb = p
		}
		var chances, taken, seen, success int
		for i := 0; i < 3*len(goals); i++ {
			g := goals[i%len(goals)]
			x := NewExpert(g, cfg, uint64(1000*(k+1)+i))
			ep := env.RunEpisode(e, g, x, true)
			rep := x.Report()
			if ep.Purchase != nil && ep.Purchase.ASIN == g.ASIN && ep.Success() {
				success++
			}
			target, bought := strings.ToLower(g.ASIN), ""
			if ep.Purchase != nil {
				bought = strings.ToLower(ep.Purchase.ASIN)
			}
			var searches []string
			for j, tr := range ep.Transitions {
				next := ""
				if j+1 < len(ep.Transitions) {
					next = ep.Transitions[j+1].Action
				}
				if q := searchQuery(tr.Action); q != "" {
					searches = append(searches, q)
				}
				switch kind {
				case "open other":
					// A product that is neither the goal's nor bought (as a
					// fallback), then back.
					if a := env.ParseAction(tr.Action); ClassifyAction(tr.Action) == ActionClickASIN && a.Arg != target && a.Arg != bought {
						seen++
						if next != "click[< prev]" {
							t.Errorf("%s: opened %s, then %q", kind, a.Arg, next)
						}
					}
				case "page ahead":
					// The next page while the goal product shows, then back.
					if tr.Action == "click[next >]" && slices.Contains(tr.Obs.Clickables, target) {
						seen++
						if next != "click[< prev]" {
							t.Errorf("%s: then %q", kind, next)
						}
					}
				case "read":
					if tr.Action == "click[description]" || tr.Action == "click[features]" {
						seen++
					}
					if tr.Obs.Page == env.PageItem && j > 0 && ClassifyAction(ep.Transitions[j-1].Action) == ActionClickASIN {
						chances++
					}
				}
			}
			switch kind {
			case "open other":
				chances, taken = chances+rep.OpenOtherChances, taken+rep.OpenedOthers
			case "page ahead":
				chances, taken = chances+rep.PageAheadChances, taken+rep.PagesAhead
			case "reformulate":
				chances, taken = chances+rep.ReformulateChances, taken+rep.Reformulations
				if rep.ReformulateChances != 1 {
					t.Errorf("%s: %d chances in an episode", kind, rep.ReformulateChances)
				}
				// Searched, looked at the first results page, searched again
				// with another query.
				if rep.Reformulations == 1 {
					seen++
					if len(ep.Transitions) < 3 || ep.Transitions[1].Action != "click[back to search]" ||
						len(searches) < 2 || searches[1] != searchQuery(ep.Transitions[2].Action) || searches[1] == searches[0] {
						t.Errorf("%s: searches %q", kind, searches)
					}
				}
			case "read":
				taken = seen
			}
			if len(searches) != rep.Searches || rep.RandomActions != 0 {
				t.Errorf("%s: %d searches in the actions, report %+v", kind, len(searches), rep)
			}
			if last := ep.Transitions[len(ep.Transitions)-1]; last.Action != "click[buy now]" || ep.Truncated {
				t.Fatalf("%s: episode %d ends with %q", kind, i, last.Action)
			}
		}
		rate := float64(taken) / float64(chances)
		sd := math.Sqrt(p * (1 - p) / float64(chances))
		t.Logf("%s: %d of %d chances taken (%.3f), %d successes in %d episodes", kind, taken, chances, rate, success, 3*len(goals))
		if chances < 100 || math.Abs(rate-p) > 3*sd {
			t.Errorf("%s: %d detours in %d chances, want a rate near %.2f", kind, taken, chances, p)
		}
		if seen != taken {
			t.Errorf("%s: %d detours in the actions, %d reported", kind, seen, taken)
		}
		if success < 3*len(goals)*95/100 {
			t.Errorf("%s: bought the goal product with success in %d of %d episodes", kind, success, 3*len(goals))
		}
	}
}

// TestExpertMaxDetours makes every detour certain: MaxDetours bounds them
// and the expert still buys.
func TestExpertMaxDetours(t *testing.T) {
	shop := testShop(t)
	goals := trainGoals(t, shop)
	e := shop.NewEnv(env.Config{MaxSteps: 100})
	cfg := ExpertConfig{ReadProb: 1, OpenOtherProb: 1, PageAheadProb: 1, ReformulateProb: 1, MaxDetours: 3}
	success := 0
	for i, g := range goals {
		x := NewExpert(g, cfg, uint64(i))
		ep := env.RunEpisode(e, g, x, true)
		rep := x.Report()
		if n := rep.OpenedOthers + rep.PagesAhead + rep.Reformulations; n != 3 {
			t.Errorf("goal %d: %d detours with MaxDetours 3: %+v", i, n, rep)
		}
		if rep.Reformulations != 1 || ep.Truncated || ep.Purchase == nil {
			t.Fatalf("goal %d: %+v, truncated %v", i, rep, ep.Truncated)
		}
		if ep.Success() {
			success++
		}
	}
	if success < len(goals)*95/100 {
		t.Errorf("success in %d of %d episodes", success, len(goals))
	}
}

func TestExpertDeterminism(t *testing.T) {
	shop := testShop(t)
	goals := trainGoals(t, shop)[:60]
	run := func(seed uint64, workers int) [][]string {
		var out [][]string
		cfg := DemoConfig{Goals: goals, Episodes: 90, Expert: DefaultExpertConfig(), Seed: seed, Workers: workers}
		cfg.Expert.Noise = 0.1
		_, err := GenerateDemos(shop, cfg, func(ep []Step) error {
			var acts []string
			for _, s := range ep {
				acts = append(acts, s.EpisodeID+" "+s.Action)
			}
			out = append(out, acts)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := run(3, 1), run(3, 4)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different workers: different demonstrations")
	}
	c := run(4, 2)
	diff := 0
	for i := range a {
		if !reflect.DeepEqual(a[i][1:], c[i][1:]) {
			diff++
		}
	}
	if diff < len(a)/4 {
		t.Fatalf("another seed changed only %d of %d episodes", diff, len(a))
	}
	// Episodes beyond the goal count revisit goals with other choices.
	if len(a) != 90 || reflect.DeepEqual(a[0][1:], a[60][1:]) && reflect.DeepEqual(a[1][1:], a[61][1:]) && reflect.DeepEqual(a[2][1:], a[62][1:]) {
		t.Fatal("revisited goals replay the same episodes")
	}
}

func TestExpertNoise(t *testing.T) {
	shop := testShop(t)
	goals := trainGoals(t, shop)
	cfg := DemoConfig{Goals: goals, Expert: DefaultExpertConfig(), Seed: 1}
	cfg.Expert.Noise = 0.2
	var buys int
	st, err := GenerateDemos(shop, cfg, func(ep []Step) error {
		if ep[len(ep)-1].Action == "click[buy now]" {
			buys++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("noise 0.2: %+v", st)
	if st.RandomActions < st.Steps/10 {
		t.Fatalf("%d random actions in %d steps", st.RandomActions, st.Steps)
	}
	if buys < len(goals)*9/10 || st.SuccessRate < 80 || st.Truncated > len(goals)/20 {
		t.Fatalf("noisy expert: %d buys of %d, %+v", buys, len(goals), st)
	}
}

// TestExpertSearchesAgain gives the expert goals whose instruction describes
// another product, so that its first query misses: it must page through the
// results, search again and still mostly find the goal product.
func TestExpertSearchesAgain(t *testing.T) {
	shop := testShop(t)
	goals := trainGoals(t, shop)
	var swapped []env.Goal
	for i := 0; i+1 < len(goals) && len(swapped) < 80; i += 2 {
		if goals[i].ASIN == goals[i+1].ASIN {
			continue
		}
		g := goals[i]
		g.Instruction = goals[i+1].Instruction
		swapped = append(swapped, g)
	}
	var mix ActionMix
	st, err := GenerateDemos(shop, DemoConfig{Goals: swapped, Expert: DefaultExpertConfig(), Seed: 2}, func(ep []Step) error {
		for _, s := range ep {
			mix.Add(ClassifyAction(s.Action))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("misleading instructions: %+v; mix %+v", st, mix)
	if st.Searches <= st.Episodes || mix.Navigation == 0 {
		t.Fatalf("expert never searched again or paged: %+v", st)
	}
	if st.BoughtGoal < st.Episodes*8/10 {
		t.Fatalf("found the goal product in %d of %d episodes", st.BoughtGoal, st.Episodes)
	}
	if st.Truncated != 0 || mix.BuyNow != st.Episodes {
		t.Fatalf("episodes did not all end with a purchase: %+v", st)
	}
}

func TestExpertFallback(t *testing.T) {
	// A goal product that is not in the shop: the expert searches three
	// times, then buys the best-looking result.
	shop := testShop(t)
	g := trainGoals(t, shop)[0]
	g.ASIN = "B0NOTHERE0"
	e := shop.NewEnv(env.Config{MaxSteps: 100})
	x := NewExpert(g, DefaultExpertConfig(), 1)
	ep := env.RunEpisode(e, g, x, true)
	if rep := x.Report(); ep.Truncated || ep.Purchase == nil || x.Searches()-rep.Reformulations != 3 {
		t.Fatalf("fallback: truncated %v purchase %v searches %d (%+v)", ep.Truncated, ep.Purchase, x.Searches(), rep)
	}
	pages := 0
	for _, tr := range ep.Transitions {
		if tr.Action == "click[next >]" {
			pages++
		}
	}
	if pages < 3 {
		t.Fatalf("scanned only %d extra pages", pages)
	}
}

func TestExpertQueries(t *testing.T) {
	g := env.Goal{
		ASIN:        "B000000001",
		Name:        "Acme Gluten-Free Brown Rice, Organic",
		Instruction: "i would like a 1 pound 20 pack gluten-free brown rice that is non-gmo and with natural ingredients, and price lower than 20.00 dollars",
		Attributes:  []string{"natural ingredients", "non gmo", "gluten free"},
		Options:     []env.GoalOption{{Value: "1 pound"}, {Value: "20"}},
		PriceUpper:  20,
	}
	product, phrases := instructionParts(g)
	if strings.Join(product, " ") != "brown rice" {
		t.Errorf("product words %q", product)
	}
	if len(phrases) != 5 {
		t.Errorf("phrases %q", phrases)
	}
	seen := map[string]bool{}
	for seed := uint64(0); seed < 20; seed++ {
		x := NewExpert(g, DefaultExpertConfig(), seed)
		q := x.firstQuery()
		if n := len(strings.Fields(q)); n < 2 || n > shortCopyMax || !strings.Contains(q, "brown rice") || x.Report().HumanQuery {
			t.Errorf("seed %d: query %q", seed, q)
		}
		seen[q] = true
		x.query, x.budget = q, 2
		q2 := x.nextQuery()
		x.query, x.budget = q2, 3
		q3 := x.nextQuery()
		if q2 == q || q3 == q2 || !strings.HasPrefix(q3, "acme gluten-free brown rice") {
			t.Errorf("seed %d: queries %q, %q, %q", seed, q, q2, q3)
		}
	}
	if len(seen) < 5 {
		t.Errorf("only %d distinct first queries over 20 seeds", len(seen))
	}
	syn := env.Goal{
		Instruction: "Find me machine washable women's sweaters with quality materials with color: black, and size: large, and price lower than 50.00 dollars",
		Attributes:  []string{"machine washable", "quality materials"},
		Options:     []env.GoalOption{{Name: "color", Value: "black"}, {Name: "size", Value: "large"}},
		Synthetic:   true,
	}
	if p, _ := instructionParts(syn); strings.Join(p, " ") != "women's sweaters" {
		t.Errorf("synthetic product words %q", p)
	}
}

func TestWriteDemosFile(t *testing.T) {
	shop := testShop(t)
	goals := trainGoals(t, shop)[:20]
	path := filepath.Join(t.TempDir(), "demos.parquet")
	st, err := WriteDemos(shop, DemoConfig{Goals: goals, GoalOffset: shop.Splits.Train[0], Seed: 1,
		Expert: DefaultExpertConfig(), Env: env.Config{Mode: env.ObsTextRich}}, path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Episodes != 20 || s.Steps != st.Steps || s.Actions.BuyNow != 20 || len(s.Sources) != 1 || s.Sources[0].Source != "expert" {
		t.Fatalf("inspect %+v vs %+v", s, st)
	}
	if math.Abs(s.MeanFinalReward-st.MeanReward) > 1e-12 || math.Abs(s.SuccessRate-st.SuccessRate) > 1e-9 {
		t.Fatalf("inspect rewards %v %v vs %v %v", s.MeanFinalReward, s.SuccessRate, st.MeanReward, st.SuccessRate)
	}
	steps, _ := ReadSteps(path)
	if !strings.Contains(steps[1].Observation, "[button]") {
		t.Fatalf("text_rich observation expected: %q", steps[1].Observation)
	}
}
