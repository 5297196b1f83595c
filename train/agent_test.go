package train

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"shopagent/env"
	"shopagent/features"
)

// prefScorer scores an action by whether its text contains one of the preferred words
// (earlier words score higher).
type prefScorer struct {
	prefer []string
	calls  atomic.Int64
}

func (s *prefScorer) Score(exs []features.ChoiceExample) ([]features.ChoiceScores, error) {
	s.calls.Add(1)
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

func obsOf(page env.PageKind, text string, clk ...string) env.Observation {
	return env.Observation{Page: page, Text: text, Instruction: "i want red shoes", Clickables: clk, HasSearchBar: page == env.PageSearch}
}

func TestPolicyAgentCapsAndQueries(t *testing.T) {
	sc := &prefScorer{prefer: []string{"description", "< prev"}}
	a := NewPolicyAgent(sc, features.KeywordQuery{}, AgentConfig{MaxItemActions: 3, MaxSteps: 20})
	qs := features.KeywordQuery{}.Queries("i want red shoes")
	if got := a.Act(obsOf(env.PageSearch, "", "search")); got != env.Search(qs[0]) {
		t.Fatalf("first search %q", got)
	}
	item := obsOf(env.PageItem, "Instruction:\ni want red shoes\n", "back to search", "< prev", "description", "features", "reviews", "buy now", "red")
	desc := obsOf(env.PageDescription, "Instruction:\ni want red shoes\n", "back to search", "< prev")
	var acts []string
	for i := 0; i < 4; i++ {
		acts = append(acts, a.Act(item), a.Act(desc))
	}
	// The description is read once per visit (no item -> description loop), then the
	// policy's next choice ("< prev"), and the item cap buys.
	if acts[0] != "click[description]" || acts[1] != "click[< prev]" || acts[2] != "click[< prev]" {
		t.Fatalf("actions %q", acts)
	}
	for i := 2; i < len(acts); i += 2 {
		if acts[i] == "click[description]" {
			t.Fatalf("description reopened in the same visit: %q", acts)
		}
	}
	if !contains(acts, "click[buy now]") {
		t.Fatalf("the item cap never bought: %q", acts)
	}
	// A results page starts a new visit: the description may be read again.
	a.Act(obsOf(env.PageResults, richResultsPage, "back to search", "next >", "b0aaaaaaa1"))
	if got := a.Act(item); got != "click[description]" {
		t.Fatalf("new visit: %q", got)
	}
	recs := a.Steps()
	if len(recs) != 11 || !math.IsNaN(recs[0].LogProb()) || math.IsNaN(recs[1].LogProb()) || recs[1].Value() != 0.5 {
		t.Fatalf("records %+v", recs)
	}
	// A second search page in the same episode uses the next candidate.
	if got := a.Act(obsOf(env.PageSearch, "", "search")); len(qs) > 1 && got != env.Search(qs[1]) {
		t.Fatalf("second search %q, want %q", got, qs[1])
	}

	// Over budget on a results page: the best-scoring product, never navigation.
	b := NewPolicyAgent(&prefScorer{prefer: []string{"next >", "blue"}}, nil, AgentConfig{MaxSteps: 1})
	res := obsOf(env.PageResults, richResultsPage, "back to search", "next >", "b0aaaaaaa1", "b0aaaaaaa2")
	if got := b.Act(res); got != "click[next >]" {
		t.Fatalf("within budget: %q", got)
	}
	if got := b.Act(res); got != "click[b0aaaaaaa2]" {
		t.Fatalf("over budget: %q", got)
	}
	// Over budget on a results page past the last product (no product offered): search
	// again instead of paging on forever.
	empty := obsOf(env.PageResults, "Instruction:\ni want red shoes\n[button] Back to Search [button_]\nPage 9 (Total results: 50)\n[button] < Prev [button_]\n[button] Next > [button_]\n",
		"back to search", "< prev", "next >")
	if got := b.Act(empty); got != "click[back to search]" {
		t.Fatalf("over budget on an empty results page: %q", got)
	}
	// A new instruction starts a new episode.
	b.Act(env.Observation{Page: env.PageSearch, Instruction: "other", Clickables: []string{"search"}, HasSearchBar: true})
	if len(b.Steps()) != 1 {
		t.Fatalf("records not reset: %d", len(b.Steps()))
	}
}

const richResultsPage = "Instruction:\ni want red shoes\n[button] Back to Search [button_]\nPage 1 (Total results: 50)\n[button] Next > [button_]\n" +
	"\n[button] B0AAAAAAA1 [button_]\nRed Shoes\n$10.00\n\n[button] B0AAAAAAA2 [button_]\nBlue Shoes\n$12.00\n"

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestBatchScorer(t *testing.T) {
	inner := &prefScorer{prefer: []string{"a", "b"}}
	bs := NewBatchScorer(inner, 8, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for k := 0; k < 8; k++ {
				acts := []string{"x", "y", "z"}
				acts[(w+k)%3] = "a"
				got, err := bs.Score([]features.ChoiceExample{{State: "s", Actions: acts}})
				if err != nil {
					errs <- err
					return
				}
				if len(got) != 1 || got[0].Best() != (w+k)%3 {
					errs <- fmt.Errorf("worker %d call %d: got %+v", w, k, got)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if c := inner.calls.Load(); c >= 64 {
		t.Fatalf("%d forward calls for 64 requests: nothing was batched", c)
	}
}
