package train

import (
	"path/filepath"
	"testing"

	"shopagent/datasets"
)

// A step a fixed rule of the agent took (a safety cap) is never a demonstrated
// action: IL and DPO (which read demonstrations with LoadILData) skip it.
func TestForcedStepsAreNotDemonstrations(t *testing.T) {
	obs := "Instruction:\ni want red shoes\n[button] Back to Search [button_]\n[button] < Prev [button_]\n" +
		"[button] Description [button_]\n[button] Buy Now [button_]\n  [button] red [button_]\n"
	avail := []string{"click[back to search]", "click[< prev]", "click[description]", "click[buy now]", "click[red]"}
	steps := []datasets.Step{
		{EpisodeID: "g1", Source: datasets.SourceGenerated, Step: 0, Page: "item", Observation: obs, AvailableActions: avail,
			Action: "click[red]", ActionIndex: 4, FinalReward: 1},
		{EpisodeID: "g1", Source: datasets.SourceGenerated, Step: 1, Page: "item", Observation: obs, AvailableActions: avail,
			Action: "click[buy now]", ActionIndex: 3, Forced: true, Done: true, Reward: 1, FinalReward: 1},
	}
	p := filepath.Join(t.TempDir(), "generated.parquet")
	if err := datasets.WriteFile(p, steps); err != nil {
		t.Fatal(err)
	}
	d, err := LoadILData(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Examples) != 1 || d.Forced != 1 {
		t.Fatalf("%d examples, %d forced; want the policy's click only", len(d.Examples), d.Forced)
	}
	if got := d.Examples[0].Actions[d.Examples[0].Target]; got != "red" {
		t.Errorf("the demonstrated action is %q, want red", got)
	}
}
