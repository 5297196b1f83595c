package agent

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"shopagent/env"
	"shopagent/features"
)

// prefScorer scores an action by the first preferred word its text contains
// (earlier words higher); value 0.5.
type prefScorer struct {
	prefer []string
	fail   bool
	calls  int
}

func (s *prefScorer) Score(exs []features.ChoiceExample) ([]features.ChoiceScores, error) {
	s.calls++
	if s.fail {
		return nil, errors.New("model down")
	}
	out := make([]features.ChoiceScores, len(exs))
	for i, ex := range exs {
		out[i].Logits = make([]float64, len(ex.Actions))
		for j, a := range ex.Actions {
			for k, p := range s.prefer {
				if strings.Contains(a, p) {
					out[i].Logits[j] = float64(len(s.prefer) - k)
					break
				}
			}
		}
		out[i].LogProbs = features.LogSoftmax(out[i].Logits)
		out[i].Value = 0.5
	}
	return out, nil
}

// serverChooser chooses as the policy server does: it scores the offered actions,
// turns them into probabilities and takes the argmax (the first on ties).
type serverChooser struct{ s Scorer }

func (c serverChooser) Choose(ch Choice, greedy bool, force int, rng *rand.Rand) (int, features.ChoiceScores, error) {
	// The server featurizes the observation and the action strings itself.
	ex, _ := features.ChoiceFromObservation(ch.Obs.Text, clickables(ch.Actions))
	sc, err := c.s.Score([]features.ChoiceExample{ex})
	if err != nil {
		return -1, features.ChoiceScores{}, err
	}
	probs := make([]float64, len(sc[0].LogProbs))
	best := 0
	for i, lp := range sc[0].LogProbs {
		probs[i] = math.Exp(lp)
		if probs[i] > probs[best] {
			best = i
		}
	}
	if force >= 0 {
		best = force
	}
	return best, sc[0], nil
}

const ins = "i want red shoes"

func page(p env.PageKind, text string, clk ...string) env.Observation {
	return env.Observation{Page: p, Text: text, Instruction: ins, Clickables: clk, HasSearchBar: p == env.PageSearch}
}

var (
	searchPage = page(env.PageSearch, "WebShop\nInstruction: \n"+ins+"\n[button] Search [button_]\n", "search")
	results    = page(env.PageResults, "Instruction:\n"+ins+"\n[button] Back to Search [button_]\nPage 1 (Total results: 50)\n[button] Next > [button_]\n"+
		"\n[button] B0AAAAAAA1 [button_]\nRed Shoes\n$10.00\n\n[button] B0AAAAAAA2 [button_]\nBlue Shoes\n$12.00\n",
		"back to search", "next >", "b0aaaaaaa1", "b0aaaaaaa2")
	pastLast = page(env.PageResults, "Instruction:\n"+ins+"\n[button] Back to Search [button_]\nPage 9 (Total results: 50)\n[button] < Prev [button_]\n[button] Next > [button_]\n",
		"back to search", "< prev", "next >")
	item = page(env.PageItem, "Instruction:\n"+ins+"\n", "back to search", "< prev", "description", "features", "reviews", "buy now", "red", "blue")
	desc = page(env.PageDescription, "Instruction:\n"+ins+"\n", "back to search", "< prev")
)

func TestSearchesWithTheProposer(t *testing.T) {
	a := New(PolicyChooser{&prefScorer{}}, Config{})
	qs := features.KeywordQuery{}.Queries(ins)
	st := a.Next(searchPage)
	if st.Action != env.Search(qs[0]) || st.Rule != RuleSearch || st.Forced || st.Index != -1 || !math.IsNaN(st.LogProb()) {
		t.Fatalf("first search %+v", st)
	}
	if len(qs) > 1 {
		if st := a.Next(searchPage); st.Action != env.Search(qs[1]) {
			t.Errorf("the second search uses the second candidate: %q", st.Action)
		}
	}
	// With SearchChoice the chooser picks among the candidates and the instruction.
	b := New(PolicyChooser{&prefScorer{prefer: []string{ins}}}, Config{SearchChoice: true})
	if st := b.Next(searchPage); st.Action != env.Search(ins) || st.Rule != RulePolicy || st.Index < 0 {
		t.Errorf("search choice %+v", st)
	}
}

func TestSubPagesAreNotReopenedInAVisit(t *testing.T) {
	a := New(PolicyChooser{&prefScorer{prefer: []string{"description", "< prev"}}}, Config{MaxItemActions: 100, MaxSteps: 100})
	if got := a.Act(item); got != "click[description]" {
		t.Fatalf("first arrival: %q", got)
	}
	a.Act(desc)
	if got := a.Act(item); got == "click[description]" {
		t.Fatalf("the description was reopened in the same visit")
	}
	a.Act(results) // a results page starts a new visit
	if got := a.Act(item); got != "click[description]" {
		t.Fatalf("new visit: %q", got)
	}
}

func TestItemCapBuys(t *testing.T) {
	sc := &prefScorer{prefer: []string{"red"}}
	a := New(PolicyChooser{sc}, Config{MaxItemActions: 3, MaxSteps: 100, ScoreForced: true})
	var steps []Step
	for i := 0; i < 4; i++ {
		steps = append(steps, a.Next(item))
	}
	for _, st := range steps[:3] {
		if st.Action != "click[red]" || st.Forced {
			t.Fatalf("within the cap the policy chooses: %+v", st)
		}
	}
	last := steps[3]
	if last.Action != "click[buy now]" || !last.Forced || last.Rule != RuleItemCap {
		t.Fatalf("past the cap: %+v", last)
	}
	// ScoreForced: the forced click is scored (its value recorded) at the rule's index.
	if last.Index < 0 || last.Example.Actions[last.Index] != "buy now" || last.Value() != 0.5 {
		t.Fatalf("forced step not scored: index %d actions %q value %v", last.Index, last.Example.Actions, last.Value())
	}
}

func TestBudgetRules(t *testing.T) {
	mk := func() *Agent {
		return New(PolicyChooser{&prefScorer{prefer: []string{"next >", "blue"}}}, Config{MaxSteps: 1})
	}
	a := mk()
	if got := a.Act(results); got != "click[next >]" {
		t.Fatalf("within budget the policy pages on: %q", got)
	}
	// Over budget on results: greedily the best product, never navigation.
	st := a.Next(results)
	if st.Action != "click[b0aaaaaaa2]" || !st.Forced || st.Rule != RuleBudget {
		t.Fatalf("over budget on results: %+v", st)
	}
	// Past the last result: back to search, not paging on forever.
	if got := a.Act(pastLast); got != "click[back to search]" {
		t.Fatalf("over budget past the last page: %q", got)
	}
	// On a product page: buy; on a sub-page: back.
	if got := a.Act(item); got != "click[buy now]" {
		t.Fatalf("over budget on the item page: %q", got)
	}
	if got := a.Act(desc); got != "click[< prev]" {
		t.Fatalf("over budget on a sub-page: %q", got)
	}
}

func TestFallbacks(t *testing.T) {
	sc := &prefScorer{fail: true}
	a := New(PolicyChooser{sc}, Config{})
	a.Next(searchPage)
	st := a.Next(results)
	if st.Action != "click[b0aaaaaaa1]" || !st.Forced || st.Rule != RuleError || a.Err() == nil {
		t.Fatalf("chooser error on results: %+v err %v", st, a.Err())
	}
	if got := a.Act(item); got != "click[buy now]" {
		t.Fatalf("chooser error on an item page: %q", got)
	}
	if got := a.Act(desc); got != "click[< prev]" {
		t.Fatalf("chooser error on a sub-page: %q", got)
	}
	nothing := page(env.PageResults, "Instruction:\n"+ins+"\n")
	if st := a.Next(nothing); st.Action != "click[back to search]" || st.Rule != RuleNoActions {
		t.Fatalf("a page with no actions: %+v", st)
	}
	// A new instruction starts a new episode: the error and the steps are reset.
	other := searchPage
	other.Instruction = "other"
	a.Next(other)
	if a.Err() != nil || len(a.Steps()) != 1 {
		t.Fatalf("new episode: err %v, %d steps", a.Err(), len(a.Steps()))
	}
}

// The evaluation / rollout agent (a policy in process) and the HTTP driver (the
// server's argmax over probabilities) act the same on the same scores and pages.
func TestInProcessAndServerChooseAlike(t *testing.T) {
	for _, prefer := range [][]string{{"description", "< prev", "buy"}, {"blue", "red"}, {"next >"}, {"b0aaaaaaa2"}} {
		local := New(PolicyChooser{&prefScorer{prefer: prefer}}, Config{MaxSteps: 6, MaxItemActions: 3})
		remote := New(serverChooser{&prefScorer{prefer: prefer}}, Config{MaxSteps: 6, MaxItemActions: 3})
		for i, obs := range []env.Observation{searchPage, results, results, item, desc, item, item, results, pastLast, item, item} {
			l, r := local.Next(obs), remote.Next(obs)
			if l.Action != r.Action || l.Forced != r.Forced || l.Rule != r.Rule {
				t.Fatalf("prefer %q, step %d: in process %q (%s), server %q (%s)", prefer, i, l.Action, l.Rule, r.Action, r.Rule)
			}
		}
	}
}

func TestSampleIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	logp := features.LogSoftmax([]float64{0, math.Log(3)})
	n := 0
	for i := 0; i < 4000; i++ {
		if SampleIndex(logp, rng) == 1 {
			n++
		}
	}
	if f := float64(n) / 4000; math.Abs(f-0.75) > 0.03 {
		t.Errorf("sampled index 1 %.3f of the time, want 0.75", f)
	}
}

// clickables turns "click[x]" actions into their labels.
func clickables(actions []string) []string {
	out := make([]string, len(actions))
	for i, a := range actions {
		out[i] = strings.TrimSuffix(strings.TrimPrefix(a, "click["), "]")
	}
	return out
}
