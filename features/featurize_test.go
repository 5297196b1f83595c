package features

import (
	"shopagent/env"

	"slices"
	"strings"
	"testing"
)

const richResults = "Instruction:\ni want red shoes, and price lower than 40.00 dollars\n" +
	"[button] Back to Search [button_]\nPage 2 (Total results: 50)\n[button] < Prev [button_]\n[button] Next > [button_]\n" +
	"\n[button] B0AAAAAAA1 [button_]\nFoo Red Shoes\n$19.99\n" +
	"\n[clicked button] B0AAAAAAA2 [clicked button_]\nBar Blue Shoes - Wide\n$5.99 to $7.99\n"

const textResults = "Instruction: [SEP] i want red shoes [SEP] Back to Search [SEP] Page 1 (Total results: 50) [SEP] Next > [SEP] " +
	"B0AAAAAAA1 [SEP] Foo Red Shoes [SEP] $19.99 [SEP] B0AAAAAAA2 [SEP] Bar Blue Shoes [SEP] $5.99"

func TestActionTextsResults(t *testing.T) {
	clk := []string{"back to search", "< prev", "next >", "b0aaaaaaa1", "b0aaaaaaa2"}
	got := ActionTexts(richResults, clk)
	want := []string{"back to search", "< prev", "next >", "item - foo red shoes - $19.99", "item - bar blue shoes - wide - $5.99 to $7.99"}
	if !slices.Equal(got, want) {
		t.Fatalf("text_rich: got %q\nwant %q", got, want)
	}
	got = ActionTexts(textResults, []string{"back to search", "next >", "b0aaaaaaa1", "b0aaaaaaa2", "b0missing1"})
	want = []string{"back to search", "next >", "item - foo red shoes - $19.99", "item - bar blue shoes - $5.99", "item - b0missing1"}
	if !slices.Equal(got, want) {
		t.Fatalf("text: got %q\nwant %q", got, want)
	}
	// Item pages: labels as they are.
	item := "Instruction:\nx\n[button] Back to Search [button_]\n[button] < Prev [button_]\nsize\n  [button] 8 ounce [button_]\n[button] Buy Now [button_]\n"
	if got := ActionTexts(item, []string{"back to search", "buy now", "8 ounce"}); !slices.Equal(got, []string{"back to search", "buy now", "8 ounce"}) {
		t.Fatalf("item: %q", got)
	}
}

func TestStateTextResults(t *testing.T) {
	clk := []string{"back to search", "< prev", "next >", "b0aaaaaaa1", "b0aaaaaaa2"}
	got := StateText(richResults, clk)
	want := "[button] Back to Search [button_]\nPage 2 (Total results: 50)\n[button] < Prev [button_]\n[button] Next > [button_]\n"
	if got != want {
		t.Fatalf("text_rich state:\n%q\nwant\n%q", got, want)
	}
	got = StateText(textResults, []string{"back to search", "next >", "b0aaaaaaa1", "b0aaaaaaa2"})
	if want := "Back to Search [SEP] Page 1 (Total results: 50) [SEP] Next >"; got != want {
		t.Fatalf("text state:\n%q\nwant\n%q", got, want)
	}
	item := "You have clicked red.\nInstruction:\nx y\n[button] Buy Now [button_]\n"
	if got := StateText(item, []string{"buy now"}); got != "You have clicked red.\n[button] Buy Now [button_]\n" {
		t.Fatalf("item state: %q", got)
	}
	search := "WebShop\nInstruction: \ni want x\n[button] Search [button_]\n"
	if got := StateText(search, []string{"search"}); got != "WebShop\n[button] Search [button_]\n" {
		t.Fatalf("search state: %q", got)
	}
	for text, want := range map[string]string{
		richResults: "i want red shoes, and price lower than 40.00 dollars", textResults: "i want red shoes",
		item: "x y", search: "i want x", "no instruction": "",
	} {
		if got := env.ParseInstruction(text); got != want {
			t.Errorf("ParseInstruction(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestEncodeChoiceSegments(t *testing.T) {
	tok := featurizeTestTokenizer(t)
	cfg := featurizeTestConfig(t, tok.VocabSize()) // 32 state tokens
	ex := ChoiceExample{Instruction: "i want red shoes", State: strings.Repeat("blue ", 40) + "green", Actions: []string{"red", strings.Repeat("buy ", 20)}}
	enc := EncodeChoice(tok, cfg, ex)
	if len(enc.State) != 32 || len(enc.StateTypes) != 32 {
		t.Fatalf("state length %d/%d, want 32", len(enc.State), len(enc.StateTypes))
	}
	ins := tok.Encode(ex.Instruction)
	if enc.State[0] != tok.CLSID() || enc.State[len(ins)+1] != tok.SEPID() || enc.State[31] != tok.SEPID() {
		t.Fatalf("layout %v", enc.State)
	}
	green, _ := tok.ID("green")
	if enc.State[30] != green { // the page keeps its tail
		t.Fatalf("page tail %v", enc.State)
	}
	for i, ty := range enc.StateTypes {
		if want := int32(0); i >= 1 && i <= len(ins) {
			if ty != 1 {
				t.Fatalf("type of instruction token %d = %d", i, ty)
			}
		} else if ty != want {
			t.Fatalf("type of token %d = %d", i, ty)
		}
	}
	if len(enc.Actions[1]) != cfg.MaxActionLen {
		t.Fatalf("action not truncated: %d", len(enc.Actions[1]))
	}
	// Content flags: [CLS] red [SEP] -> false true false; they become mask value 2.
	if c := enc.ActionContent[0]; len(c) != 3 || c[0] || !c[1] || c[2] {
		t.Fatalf("content flags %v", c)
	}
	pb, err := NewPolicyBatch([]EncodedChoice{enc}, DefaultBuckets(cfg), 0)
	if err != nil {
		t.Fatal(err)
	}
	if m := pb.ActionMask[:4]; m[0] != 1 || m[1] != 2 || m[2] != 1 || m[3] != 0 {
		t.Fatalf("action mask %v", m)
	}
	punct := EncodeChoice(tok, cfg, ChoiceExample{Actions: []string{"- $ ."}})
	for _, c := range punct.ActionContent[0] {
		if c {
			t.Fatalf("punctuation counted as content: %v", punct.ActionContent[0])
		}
	}
	long := ChoiceExample{Instruction: strings.Repeat("red ", 100), State: "blue", Actions: []string{"x"}}
	if e := EncodeChoice(tok, cfg, long); len(e.State) > 32 || e.StateTypes[16] != 1 || e.StateTypes[17] != 0 {
		t.Fatalf("long instruction: %v %v", e.State, e.StateTypes)
	}
}

func TestChoiceFromObservationSkipsSearch(t *testing.T) {
	ex, idx := ChoiceFromObservation("WebShop\nInstruction: \nx\n[button] Search [button_]\n", []string{"search"})
	if len(ex.Actions) != 0 || len(idx) != 0 || ex.Target != -1 {
		t.Fatalf("search page: %+v %v", ex, idx)
	}
	ex, idx = ChoiceFromObservation(richResults, []string{"back to search", "< prev", "next >", "b0aaaaaaa1", "b0aaaaaaa2"})
	if len(ex.Actions) != 5 || !slices.Equal(idx, []int{0, 1, 2, 3, 4}) || !strings.HasPrefix(ex.Actions[3], ItemActionPrefix) {
		t.Fatalf("results: %+v %v", ex, idx)
	}
	if !slices.Equal(ex.Positions, []int{0, 0, 0, 1, 2}) || ex.Instruction != "i want red shoes, and price lower than 40.00 dollars" {
		t.Fatalf("positions %v, instruction %q", ex.Positions, ex.Instruction)
	}
	// Selected option values read as the page renders them.
	item := "Instruction:\nx\nsize\n  [clicked button] 8 ounce [clicked button_]\n  [button] 12 ounce [button_]\n[button] Buy Now [button_]\n"
	ex, _ = ChoiceFromObservation(item, []string{"buy now", "8 ounce", "12 ounce"})
	if !slices.Equal(ex.Actions, []string{"buy now", "[clicked button] 8 ounce [clicked button_]", "12 ounce"}) || !slices.Equal(ex.Positions, []int{0, 0, 0}) {
		t.Fatalf("item: %q %v", ex.Actions, ex.Positions)
	}
}

func TestBucket(t *testing.T) {
	sizes := []int{4, 8, 16}
	for n, want := range map[int]int{0: 4, 1: 4, 4: 4, 5: 8, 16: 16, 17: 16} {
		if got := Bucket(n, sizes); got != want {
			t.Errorf("Bucket(%d) = %d, want %d", n, got, want)
		}
	}
	cfg := PolicyConfig{MaxStateLen: 100, MaxActionLen: 30}
	b := DefaultBuckets(cfg)
	if b.State[len(b.State)-1] != 100 || b.Action[len(b.Action)-1] != 30 || b.State[0] != 32 || !slices.IsSorted(b.Unique) {
		t.Fatalf("buckets %+v", b)
	}
}

func TestNewPolicyBatch(t *testing.T) {
	b := BucketSizes{Batch: []int{1, 2, 4}, State: []int{8, 16}, Action: []int{4, 8}, Actions: []int{2, 4}, Unique: []int{4, 8}}
	exs := []EncodedChoice{
		{State: []int32{2, 10, 11, 3}, Actions: [][]int32{{2, 20, 3}, {2, 21, 22, 23, 3}, {2, 24, 3}}, Target: 1},
		{State: []int32{2, 12, 3}, Actions: [][]int32{{2, 20, 3}, {2, 25, 3}}, Target: -1},
	}
	pb, err := NewPolicyBatch(exs, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if pb.B != 2 || pb.Ts != 8 || pb.A != 4 || pb.U != 4 || pb.Ta != 8 || pb.Real != 2 {
		t.Fatalf("shape B=%d Ts=%d A=%d U=%d Ta=%d", pb.B, pb.Ts, pb.A, pb.U, pb.Ta)
	}
	// "[2 20 3]" is shared: 4 distinct actions, and both states point to the same row.
	if pb.ActionIndex[0] != pb.ActionIndex[pb.A] {
		t.Fatalf("shared action not deduplicated: %v", pb.ActionIndex)
	}
	if !slices.Equal(pb.ActionValid, []float32{1, 1, 1, 0, 1, 1, 0, 0}) {
		t.Fatalf("valid %v", pb.ActionValid)
	}
	if !slices.Equal(pb.Targets, []int32{1, 0}) || !slices.Equal(pb.TargetValid, []float32{1, 0}) {
		t.Fatalf("targets %v %v", pb.Targets, pb.TargetValid)
	}
	if !slices.Equal(pb.StateMask[:8], []int32{1, 1, 1, 1, 0, 0, 0, 0}) {
		t.Fatalf("state mask %v", pb.StateMask[:8])
	}
	// Fixed batch size pads states.
	pb, err = NewPolicyBatch(exs, b, 3)
	if err != nil || pb.B != 3 || pb.TargetValid[2] != 0 {
		t.Fatalf("padded batch: %v %+v", err, pb)
	}
	// Errors, not panics.
	if _, err := NewPolicyBatch(nil, b, 0); err == nil {
		t.Error("empty batch accepted")
	}
	tooMany := []EncodedChoice{{State: []int32{2, 3}, Actions: [][]int32{{2}, {3}, {4}, {5}, {6}}}}
	if _, err := NewPolicyBatch(tooMany, b, 0); err == nil {
		t.Error("5 actions accepted with a largest bucket of 4")
	}
	noActions := []EncodedChoice{{State: []int32{2, 3}}}
	if _, err := NewPolicyBatch(noActions, b, 0); err == nil {
		t.Error("state without actions accepted")
	}
}

// featurizeTestTokenizer is a small vocabulary for the tests.
func featurizeTestTokenizer(t *testing.T) *Tokenizer {
	t.Helper()
	words := strings.Fields("red blue green shoes shirt size small large buy now back to search item - instruction : i want price $ 1 2 3 4 5 6 7 8 9 0 . next > < prev description features")
	tok, err := NewTokenizer(append(SpecialTokens()[:5], words...))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// featurizeTestConfig is the tiny preset with 32-token states and 8-token actions.
func featurizeTestConfig(t *testing.T, vocab int) PolicyConfig {
	t.Helper()
	cfg, err := NewPolicyConfig("tiny", vocab, 32, 8)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Bert.Dropout = 0
	cfg.Bert.MaxPositions = 32
	cfg.ObsMode = "text_rich"
	return cfg
}
