package train

import (
	"testing"

	"shopagent/features"
)

func TestSubsetEpisodes(t *testing.T) {
	d := &ILData{Episodes: 5, ObsMode: "text_rich"}
	for e := 0; e < 5; e++ {
		for k := 0; k <= e; k++ { // episode e has e+1 click steps
			d.Examples = append(d.Examples, features.ChoiceExample{State: string(rune('a' + e)), Target: k})
			d.Episode = append(d.Episode, e)
		}
	}
	sub := d.SubsetEpisodes(2, 7)
	seen := map[int]int{}
	for i, ex := range sub.Examples {
		e := sub.Episode[i]
		if ex.State != string(rune('a'+e)) {
			t.Fatalf("example %d of episode %d is %q", i, e, ex.State)
		}
		if i > 0 && e < sub.Episode[i-1] {
			t.Fatal("subset not in file order")
		}
		seen[e]++
	}
	if sub.Episodes != 2 || len(seen) != 2 {
		t.Fatalf("subset has %d episodes: %v", sub.Episodes, seen)
	}
	for e, n := range seen {
		if n != e+1 {
			t.Fatalf("episode %d kept %d of its %d steps", e, n, e+1)
		}
	}
	again := d.SubsetEpisodes(2, 7)
	for i := range again.Episode {
		if again.Episode[i] != sub.Episode[i] {
			t.Fatal("the same seed drew other episodes")
		}
	}
	if d.SubsetEpisodes(0, 1) != d || d.SubsetEpisodes(9, 1) != d {
		t.Fatal("n <= 0 or n >= episodes must keep everything")
	}
}
