package train

import (
	"path/filepath"
	"testing"

	"shopagent/datasets"
	"shopagent/models"
)

func TestPruneLoops(t *testing.T) {
	row := func(page, obs, action string) datasets.Step {
		return datasets.Step{Page: page, Observation: obs, Action: action}
	}
	rows := []datasets.Step{
		row("search", "S", "search[red shoes]"),
		row("results", "R1", "click[back to search]"),
		row("search", "S", "search[red shoes]"), // search -> back -> same search
		row("results", "R1", "click[b01]"),
		row("item", "I1", "click[< prev]"), // item -> back -> same results page
		row("results", "R1", "click[b02]"),
		row("item", "I2", "click[description]"),
		row("description", "D2", "click[< prev]"), // sub-page read and left
		row("item", "I2", "click[buy now]"),
	}
	got := PruneLoops(rows)
	want := []string{"search[red shoes]", "click[b02]", "click[buy now]"}
	if len(got) != len(want) {
		t.Fatalf("pruned to %d rows: %+v", len(got), got)
	}
	for i, r := range got {
		if r.Action != want[i] || r.Step != int32(i) || r.Done != (i == len(got)-1) {
			t.Fatalf("row %d: %+v", i, r)
		}
	}
	// No loop: unchanged.
	if got := PruneLoops(rows[5:]); len(got) != 2 || got[1].Action != "click[buy now]" {
		t.Fatalf("%+v", got)
	}
}

func TestGenerateKeepsSuccessfulEpisodes(t *testing.T) {
	shop := smallShop(t)
	goals, _ := shop.SplitGoals("train")
	il, _ := tinyIL(t)
	pol, err := models.LoadPolicy(trainTestBackend(t), il)
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	out := filepath.Join(t.TempDir(), "gen.parquet")
	w, err := datasets.Create(out, datasets.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Generate(shop, goals, pol, GenerateConfig{MaxEpisodes: 8, Keep: 2, Seed: 3, PruneLoops: true, Chunk: 4, PolicyName: "il"},
		func(rows []datasets.Step) error { return w.Write(rows...) })
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st.Played == 0 || st.Played > 8 || st.Kept > 2 {
		t.Fatalf("stats %+v", st)
	}
	if st.Kept == 0 {
		t.Skipf("the tiny policy succeeded on none of %d episodes (%+v)", st.Played, st.Summary)
	}
	if st.Kept == 2 && st.Played != 4 && st.Played != 8 {
		t.Fatalf("did not stop after the chunk that reached --keep: %+v", st)
	}
	n := 0
	err = datasets.ReadEpisodes(out, func(ep []datasets.Step) error {
		n++
		for _, s := range ep {
			if s.Source != datasets.SourceGenerated || s.FinalReward != 1 || s.Policy != "il" {
				t.Fatalf("row %+v", s)
			}
		}
		if !ep[len(ep)-1].Done || ep[len(ep)-1].Action != "click[buy now]" {
			t.Fatalf("last row %+v", ep[len(ep)-1])
		}
		return nil
	})
	if err != nil || n != st.Kept {
		t.Fatalf("read %d episodes (%v), kept %d", n, err, st.Kept)
	}
	// Generated data feeds DPO and IL.
	if _, err := LoadILData(out, 1); err != nil {
		t.Fatal(err)
	}
}
