package datasets

import (
	"math"
	"path/filepath"
	"testing"
)

func TestClassifyAction(t *testing.T) {
	cases := map[string]ActionKind{
		"search[red shoes]":     ActionSearch,
		"click[B09QKP7XQL]":     ActionClickASIN,
		"click[b09qkp7xql]":     ActionClickASIN,
		"click[0062315005]":     ActionClickASIN,
		"click[multicolor]":     ActionClickOption,
		"click[3x-large]":       ActionClickOption,
		"click[black | white]":  ActionClickOption,
		"click[Buy Now]":        ActionBuyNow,
		"click[next >]":         ActionNavigation,
		"click[< prev]":         ActionNavigation,
		"click[back to search]": ActionNavigation,
		"click[description]":    ActionNavigation,
		"click[features]":       ActionNavigation,
		"click[reviews]":        ActionNavigation,
		"click[attributes]":     ActionNavigation,
		"buy":                   ActionOther,
		"jump[b09qkp7xql]":      ActionOther,
		"":                      ActionOther,
	}
	for a, want := range cases {
		if got := ClassifyAction(a); got != want {
			t.Errorf("ClassifyAction(%q) = %s, want %s", a, got, want)
		}
	}
}

// ep builds an episode's rows from actions and a final reward.
func ep(id string, src Source, final float64, actions ...string) []Step {
	out := make([]Step, len(actions))
	for i, a := range actions {
		out[i] = Step{EpisodeID: id, Source: src, Step: int32(i), Action: a,
			FinalReward: final, Logprob: math.NaN(), Value: math.NaN(), Done: i == len(actions)-1}
	}
	out[len(out)-1].Reward = final
	return out
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	var a []Step
	a = append(a, ep("e1", SourceExpert, 1, "search[x]", "click[b000000001]", "click[red]", "click[buy now]")...)
	a = append(a, ep("e2", SourceExpert, 0.5, "search[x]", "click[next >]", "click[b000000002]", "click[buy now]")...)
	a = append(a, ep("h1", SourceHuman, math.NaN(), "search[y]", "click[b000000003]", "click[description]", "click[< prev]", "click[buy now]")...)
	b := ep("r1", SourceRollout, 0, "search[z]", "click[back to search]", "oops")
	if err := WriteFile(filepath.Join(dir, "a.parquet"), a); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "b.parquet"), b); err != nil {
		t.Fatal(err)
	}
	s, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Files != 2 || s.Episodes != 4 || s.Steps != 16 || s.Rewarded != 3 {
		t.Fatalf("counts: %+v", s)
	}
	if math.Abs(s.MeanFinalReward-0.5) > 1e-12 || math.Abs(s.SuccessRate-100.0/3) > 1e-9 || s.MeanSteps != 4 {
		t.Fatalf("rewards: mean %v success %v steps %v", s.MeanFinalReward, s.SuccessRate, s.MeanSteps)
	}
	wantSrc := []SourceCount{{"expert", 2, 8}, {"human", 1, 5}, {"rollout", 1, 3}}
	if len(s.Sources) != 3 {
		t.Fatalf("sources %+v", s.Sources)
	}
	for i, w := range wantSrc {
		if s.Sources[i] != w {
			t.Errorf("source %d = %+v, want %+v", i, s.Sources[i], w)
		}
	}
	want := ActionMix{Search: 4, ClickASIN: 3, ClickOption: 1, Navigation: 4, BuyNow: 3, Other: 1}
	if s.Actions != want {
		t.Fatalf("actions %+v, want %+v", s.Actions, want)
	}
	// A single file works too.
	s1, err := Inspect(filepath.Join(dir, "b.parquet"))
	if err != nil || s1.Episodes != 1 || s1.Files != 1 || s1.SuccessRate != 0 {
		t.Fatalf("single file: %+v, %v", s1, err)
	}
}
