package datasets

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"shopagent/env"
)

const humanFixture = "testdata/human_demos.jsonl"

func TestImportHumanFixture(t *testing.T) {
	steps, st, err := ImportHuman(humanFixture, HumanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Episodes != 4 || st.Steps != len(steps) || st.Matched != 0 {
		t.Fatalf("stats %+v (rows %d)", st, len(steps))
	}
	byEp := map[string][]Step{}
	var order []string
	for _, s := range steps {
		if _, ok := byEp[s.EpisodeID]; !ok {
			order = append(order, s.EpisodeID)
		}
		byEp[s.EpisodeID] = append(byEp[s.EpisodeID], s)
	}
	if len(order) != 4 || order[0] != "human-000001" || order[3] != "human-000004" {
		t.Fatalf("episode ids %v", order)
	}
	wantPages := map[string]string{
		"human-000001": "search results item description item results item features item item",
		"human-000004": "search results item description item results item features item",
		"human-000003": "search results item",
	}
	for id, want := range wantPages {
		var got []string
		for _, s := range byEp[id] {
			got = append(got, s.Page)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s pages %q, want %q", id, strings.Join(got, " "), want)
		}
	}
	for _, id := range order {
		ep := byEp[id]
		ins := ep[0].Instruction
		if ins == "" || strings.Contains(ins, "\n") || !strings.Contains(ins, "price lower than") {
			t.Errorf("%s: instruction %q", id, ins)
		}
		for i, s := range ep {
			if s.Source != "human" || s.Policy != HumanPolicy || s.GoalID != -1 || int(s.Step) != i || s.Instruction != ins {
				t.Errorf("%s step %d: labels %+v", id, i, s)
			}
			if !math.IsNaN(s.FinalReward) || !math.IsNaN(s.Logprob) || !math.IsNaN(s.Value) {
				t.Errorf("%s step %d: unknown values should be NaN", id, i)
			}
			if s.Done != (i == len(ep)-1) {
				t.Errorf("%s step %d: done %v", id, i, s.Done)
			}
			if i < len(ep)-1 && s.Reward != 0 {
				t.Errorf("%s step %d: reward %v", id, i, s.Reward)
			}
			if strings.HasPrefix(s.Action, "search[") {
				if s.ActionIndex != -1 || len(s.AvailableActions) != 0 || s.Page != "search" {
					t.Errorf("%s step %d: search row %+v", id, i, s)
				}
			} else if s.AvailableActions[s.ActionIndex] != s.Action {
				t.Errorf("%s step %d: action %q at index %d of %v", id, i, s.Action, s.ActionIndex, s.AvailableActions)
			}
		}
		if !strings.HasSuffix(ep[len(ep)-1].Action, "[buy now]") {
			t.Errorf("%s does not end with buy now", id)
		}
	}
	// The "Amazon Shopping Game" title of the old site parses too.
	if !strings.HasPrefix(byEp["human-000002"][0].Observation, "Amazon Shopping Game") {
		t.Error("fixture lost its old-site episode")
	}
}

func TestImportHumanReplay(t *testing.T) {
	shop := testShop(t)
	var eps [][]Step
	st, err := ImportHumanEpisodes(humanFixture, HumanOptions{Shop: shop, IDPrefix: "h"}, func(ep []Step) error {
		eps = append(eps, ep)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Matched != 4 || st.Replayed != 4 || st.Scored != 0 || st.Successes != 3 {
		t.Fatalf("stats %+v", st)
	}
	// Recorded by testdata/genhuman (see testdata/README.md).
	wantReward := []float64{1, 1, 1.0 / 15, 1}
	wantGoal := []int64{60, 61, 63, 62}
	for i, ep := range eps {
		last := ep[len(ep)-1]
		if math.Abs(last.FinalReward-wantReward[i]) > 1e-12 || last.Reward != last.FinalReward || ep[0].FinalReward != last.FinalReward {
			t.Errorf("episode %d: final reward %v, want %v", i, last.FinalReward, wantReward[i])
		}
		if ep[0].GoalID != wantGoal[i] {
			t.Errorf("episode %d: goal %d, want %d", i, ep[0].GoalID, wantGoal[i])
		}
		if !strings.HasPrefix(ep[0].EpisodeID, "h0000") {
			t.Errorf("episode id %q", ep[0].EpisodeID)
		}
	}
}

func TestImportHumanDivergentReplay(t *testing.T) {
	// The rule episode searched the whole instruction; with another query
	// the shop ranks differently and the click is rejected, so the purchase
	// is scored directly.
	data, err := os.ReadFile(humanFixture)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	line := regexp.MustCompile(`search\[[^\]]*\]`).ReplaceAll(lines[2], []byte("search[zzz]"))
	p := filepath.Join(t.TempDir(), "d.jsonl")
	os.WriteFile(p, append(line, '\n'), 0o644)
	steps, st, err := ImportHuman(p, HumanOptions{Shop: testShop(t)})
	if err != nil {
		t.Fatal(err)
	}
	if st.Scored != 1 || st.Replayed != 0 || math.Abs(steps[len(steps)-1].FinalReward-1.0/15) > 1e-12 {
		t.Fatalf("stats %+v, final %v", st, steps[len(steps)-1].FinalReward)
	}
}

func TestImportHumanErrors(t *testing.T) {
	good, err := os.ReadFile(humanFixture)
	if err != nil {
		t.Fatal(err)
	}
	first := string(bytes.SplitN(good, []byte("\n"), 2)[0])
	cases := map[string]string{
		"line 2: invalid JSON":                first + "\n{not json\n",
		`line 1: missing field "states"`:      `{"actions":["search[x]"],"available_actions":[[]],"action_idxs":[-1]}` + "\n",
		`line 1: missing field "action_idxs"`: `{"states":["WebShop\nInstruction: \nx\n"],"actions":["search[x]"],"available_actions":[[]],"action_idxs":null}`,
		"line 3: list lengths differ":         "\n" + first + "\n" + `{"states":["WebShop\nInstruction: \nx\n","b"],"actions":["search[x]"],"available_actions":[[]],"action_idxs":[-1]}`,
		"line 1: step 1: action index 5":      `{"states":["Instruction:\nx","b"],"actions":["search[x]","click[a]"],"available_actions":[[],["click[a]"]],"action_idxs":[-1,5]}`,
		"line 1: no instruction":              `{"states":["hello"],"actions":["search[x]"],"available_actions":[[]],"action_idxs":[-1]}`,
		"line 1: episode has no actions":      `{"states":[],"actions":[],"available_actions":[],"action_idxs":[]}`,
	}
	dir := t.TempDir()
	for want, content := range cases {
		p := filepath.Join(dir, "bad.jsonl")
		os.WriteFile(p, []byte(content), 0o644)
		_, _, err := ImportHuman(p, HumanOptions{})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Errorf("want error with %q naming the file, got %v", want, err)
		}
	}
	if _, _, err := ImportHuman(filepath.Join(dir, "missing.jsonl"), HumanOptions{}); err == nil {
		t.Error("missing file: no error")
	}
	// The callback's error comes back as is.
	stop := errors.New("stop")
	if _, err := ImportHumanEpisodes(humanFixture, HumanOptions{}, func([]Step) error { return stop }); err != stop {
		t.Errorf("callback error: %v", err)
	}
}

func TestInferPage(t *testing.T) {
	pages := []struct {
		state, prev string
		want        env.PageKind
	}{
		{"WebShop\nInstruction: \nx\n[button] Search [button_]\n", "", env.PageSearch},
		{"Instruction: [SEP] x [SEP] Back to Search [SEP] Page 1 (Total results: 50) [SEP] Next >", "search[x]", env.PageResults},
		{"Instruction:\nx\n[button] Back to Search [button_]\n[button] < Prev [button_]\nfoo\n[button] Buy Now [button_]\n", "click[b0]", env.PageItem},
		{"Instruction:\nx\n[button] Back to Search [button_]\n[button] < Prev [button_]\n some bullet\n", "click[features]", env.PageFeatures},
		{"Instruction:\nx\n[button] Back to Search [button_]\n[button] < Prev [button_]\n", "click[reviews]", env.PageReviews},
		{"Instruction:\nx\n[button] < Prev [button_]\n", "click[b0]", PageUnknown},
		{"Thank you for shopping with us!\n", "click[buy now]", env.PageDone},
	}
	for _, c := range pages {
		if got := InferPage(c.state, c.prev); got != c.want {
			t.Errorf("InferPage(%q, %q) = %s, want %s", c.state, c.prev, got, c.want)
		}
	}
	ins, cap := SplitPriceClause("i need shoes, and price lower than 40.00 dollars")
	if ins != "i need shoes" || cap != 40 {
		t.Errorf("SplitPriceClause: %q %v", ins, cap)
	}
	if _, cap := SplitPriceClause("i need shoes"); cap != env.NoPriceCap {
		t.Errorf("no clause: cap %v", cap)
	}
}

var lineNoRE = regexp.MustCompile(`^line 7: `)

func FuzzImportHumanLine(f *testing.F) {
	data, err := os.ReadFile(humanFixture)
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		f.Add(l)
	}
	f.Add([]byte(`{"states":["Instruction:\nx"],"actions":["search[x]"],"available_actions":[[]],"action_idxs":[-1]}`))
	f.Add([]byte(`{"states":["Instruction:\nx","y"],"actions":["search[x]"],"available_actions":[[]],"action_idxs":[-1]}`))
	f.Add([]byte(`{"states":null,"actions":[],"available_actions":[[]],"action_idxs":[7]}`))
	f.Add([]byte(`{"states":[1],"actions":{},"available_actions":"x","action_idxs":[-2]}`))
	f.Add([]byte(`{"states":["Instruction:"],"actions":["click[a]"],"available_actions":[null],"action_idxs":[0]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, err := ParseHumanLine(line, 7)
		if err != nil {
			if !lineNoRE.MatchString(err.Error()) {
				t.Fatalf("error does not start with the line number: %v", err)
			}
			return
		}
		steps := HumanSteps(rec, "x")
		if len(steps) != len(rec.Actions) || len(steps) == 0 || !steps[len(steps)-1].Done {
			t.Fatalf("%d steps for %d actions", len(steps), len(rec.Actions))
		}
		for i, s := range steps {
			if int(s.ActionIndex) >= len(s.AvailableActions) || s.ActionIndex < -1 {
				t.Fatalf("step %d: index %d of %d", i, s.ActionIndex, len(s.AvailableActions))
			}
		}
	})
}
