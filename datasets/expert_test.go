package datasets

import (
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"shopagent/env"
)

func trainGoals(t *testing.T, shop *env.Shop) []env.Goal {
	t.Helper()
	goals, err := shop.SplitGoals("train")
	if err != nil {
		t.Fatal(err)
	}
	return goals
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
	if st.SuccessRate < 90 || st.MeanReward < 0.95 || st.SuccessRate < rule.SuccessRate+50 {
		t.Fatalf("expert success %.1f%% (mean reward %.3f), rule %.1f%%", st.SuccessRate, st.MeanReward, rule.SuccessRate)
	}
	if st.Truncated != 0 || st.RandomActions != 0 {
		t.Fatalf("stats %+v", st)
	}
	reads := 0
	queries := map[string]bool{}
	for i, ep := range eps {
		g := goals[i]
		if ep[0].GoalID != int64(shop.Splits.Train[0]+i) || ep[0].Instruction != g.Instruction {
			t.Fatalf("episode %d: goal %d %q", i, ep[0].GoalID, ep[0].Instruction)
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
			if strings.HasPrefix(s.Action, "search[") {
				q := strings.TrimSuffix(strings.TrimPrefix(s.Action, "search["), "]")
				if j == 0 && len(strings.Fields(q)) > 8 {
					t.Errorf("first query has more than 8 words: %q", q)
				}
				if strings.Contains(q, "price lower than") || strings.HasPrefix(q, "i ") {
					t.Errorf("query keeps the instruction's opening or price: %q", q)
				}
				queries[q] = true
				if s.ActionIndex != -1 || s.AvailableActions[0] != "search[...]" {
					t.Errorf("search row: %d %v", s.ActionIndex, s.AvailableActions)
				}
			} else if s.ActionIndex < 0 || s.AvailableActions[s.ActionIndex] != s.Action {
				t.Errorf("episode %d step %d: %q not at index %d", i, j, s.Action, s.ActionIndex)
			}
			if s.Action == "click[description]" || s.Action == "click[features]" {
				reads++
			}
		}
		last := ep[len(ep)-1]
		if last.Action != "click[buy now]" || last.Reward != last.FinalReward || last.Page != "item" {
			t.Fatalf("episode %d ends with %+v", i, last)
		}
	}
	if reads == 0 || reads > len(eps)/2 {
		t.Errorf("%d reads in %d episodes with ReadProb 0.2", reads, len(eps))
	}
	if len(queries) < len(goals)*8/10 {
		t.Errorf("only %d distinct queries for %d goals", len(queries), len(goals))
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
	if ep.Truncated || ep.Purchase == nil || x.Searches() != 3 {
		t.Fatalf("fallback: truncated %v purchase %v searches %d", ep.Truncated, ep.Purchase, x.Searches())
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
		q := x.nextQuery()
		if n := len(strings.Fields(q)); n < 3 || n > 8 || !strings.Contains(q, "brown rice") {
			t.Errorf("seed %d: query %q", seed, q)
		}
		seen[q] = true
		x.query, x.searches = q, 1
		q2 := x.nextQuery()
		x.query, x.searches = q2, 2
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
