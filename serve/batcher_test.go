package serve

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"shopagent/features"
)

// never is a window no test reaches: batches close by their size (MaxBatch), so which
// requests share a batch does not depend on timing.
const never = time.Hour

// closeTo reports whether two decisions agree within tol.
func closeTo(a, b Decision, tol float64) bool {
	if len(a.Probabilities) != len(b.Probabilities) || math.Abs(a.Value-b.Value) > tol {
		return false
	}
	for i := range a.Probabilities {
		if math.Abs(a.Probabilities[i]-b.Probabilities[i]) > tol {
			return false
		}
	}
	return true
}

// Concurrent requests with different observations, scored in batches by the exported
// policy, each get the decision of their own observation, as scored alone.
func TestBatcherMatchesUnbatched(t *testing.T) {
	for _, mb := range []int{0, 16} {
		t.Run(fmt.Sprintf("action-cache-%dMiB", mb), func(t *testing.T) {
			_, dir, samples := exportedPolicy(t)
			alone, err := LoadONNXPolicy(dir, ORTOptions{ActionCacheMB: mb})
			if err != nil {
				t.Fatal(err)
			}
			defer alone.Close()
			n := 3 * len(samples)
			inputs := make([]ActInput, n)
			want := make([]Decision, n)
			for i := range n {
				s := samples[i%len(samples)]
				acts := clickActions(s)
				// Every third request offers its actions in reverse: same observation,
				// other answer order, so a mix-up between the copies would show.
				if i/len(samples) == 1 {
					for l, r := 0, len(acts)-1; l < r; l, r = l+1, r-1 {
						acts[l], acts[r] = acts[r], acts[l]
					}
				}
				inputs[i] = ActInput{Observation: s.Text, Actions: acts}
				if want[i], err = alone.Act("", s.Text, acts); err != nil {
					t.Fatal(err)
				}
			}
			for _, maxBatch := range []int{n, 3} {
				p, err := LoadONNXPolicy(dir, ORTOptions{ActionCacheMB: mb})
				if err != nil {
					t.Fatal(err)
				}
				b, err := NewBatcher(p, BatchOptions{Window: never, MaxBatch: maxBatch})
				if err != nil {
					t.Fatal(err)
				}
				got := make([]Decision, n)
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						got[i], errs[i] = b.Act("", inputs[i].Observation, inputs[i].Actions)
					}()
				}
				wg.Wait()
				for i := range n {
					if errs[i] != nil {
						t.Fatalf("max %d: request %d: %v", maxBatch, i, errs[i])
					}
					if !closeTo(got[i], want[i], 1e-5) {
						t.Fatalf("max %d: request %d (%d actions) got %v / %g, alone %v / %g", maxBatch, i,
							len(inputs[i].Actions), got[i].Probabilities, got[i].Value, want[i].Probabilities, want[i].Value)
					}
				}
				st := b.Stats()
				if st.Requests != uint64(n) || st.Batches != uint64(n/maxBatch) || st.Fallbacks != 0 {
					t.Fatalf("max %d: stats %+v, want %d requests in %d batches", maxBatch, st, n, n/maxBatch)
				}
				if c, ok := b.ActionCache(); ok != (mb > 0) || (ok && c.Entries == 0) {
					t.Fatalf("action cache through the batcher: %+v %v", c, ok)
				}
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
				if _, err := b.Act("", inputs[0].Observation, inputs[0].Actions); err != ErrBatcherClosed {
					t.Fatalf("Act after Close: %v", err)
				}
				if _, err := p.Act("", inputs[0].Observation, inputs[0].Actions); err == nil {
					t.Fatal("Close left the wrapped policy open")
				}
			}
		})
	}
}

// A batch that fails as a whole (one observation cannot be featurized) is scored request
// by request: the bad request gets its error, the others their own decisions.
func TestBatcherFallback(t *testing.T) {
	_, dir, samples := exportedPolicy(t)
	p, err := LoadONNXPolicy(dir, ORTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBatcher(p, BatchOptions{Window: never, MaxBatch: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	inputs := []ActInput{
		{Observation: samples[0].Text, Actions: clickActions(samples[0])},
		{Observation: samples[1].Text, Actions: []string{"click[x]", "bogus"}},
		{Observation: samples[2].Text, Actions: clickActions(samples[2])},
	}
	got := make([]Decision, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, in := range inputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = b.Act("", in.Observation, in.Actions)
		}()
	}
	wg.Wait()
	if errs[1] == nil || !strings.Contains(errs[1].Error(), `"bogus"`) {
		t.Fatalf("bad request: %v", errs[1])
	}
	for _, i := range []int{0, 2} {
		want, err := p.Act("", inputs[i].Observation, inputs[i].Actions)
		if err != nil || errs[i] != nil {
			t.Fatalf("request %d: %v / %v", i, errs[i], err)
		}
		if !closeTo(got[i], want, 1e-5) {
			t.Fatalf("request %d: %v, alone %v", i, got[i].Probabilities, want.Probabilities)
		}
	}
	if st := b.Stats(); st.Batches != 1 || st.Fallbacks != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// recordingPolicy is a lexical policy that scores batches input by input and records the
// size of every ActBatch call.
type recordingPolicy struct {
	*LexicalPolicy
	mu    sync.Mutex
	sizes []int
}

func (p *recordingPolicy) ActBatch(inputs []ActInput) ([]Decision, error) {
	p.mu.Lock()
	p.sizes = append(p.sizes, len(inputs))
	p.mu.Unlock()
	out := make([]Decision, len(inputs))
	for i, in := range inputs {
		d, err := p.Act(in.Instruction, in.Observation, in.Actions)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

func (p *recordingPolicy) calls() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.sizes...)
}

// manualTimer stands for the batch window's timer: the test fires it.
type manualTimer struct {
	mu        sync.Mutex
	durations []time.Duration
	fire      chan time.Time
	stops     int
}

func (m *manualTimer) start(d time.Duration) (<-chan time.Time, func() bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.durations = append(m.durations, d)
	return m.fire, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.stops++
		return true
	}
}

func (m *manualTimer) state() ([]time.Duration, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]time.Duration(nil), m.durations...), m.stops
}

// waitQueued waits until the batcher's collector holds n requests.
func waitQueued(t *testing.T, b *Batcher, n int64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); b.queued.Load() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the collector holds %d requests, want %d", b.queued.Load(), n)
		}
	}
}

// The window logic, driven by hand: a batch's window (one timer of exactly Window) starts
// with its first request; nothing is scored before it ends unless the batch is full; when
// it ends everything gathered is scored in one call. So batching adds at most Window
// before a request's forward pass.
func TestBatcherWindow(t *testing.T) {
	lex, err := NewLexicalPolicy(LexicalConfig{Name: "lex", Temperature: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	rp := &recordingPolicy{LexicalPolicy: lex}
	tm := &manualTimer{fire: make(chan time.Time)}
	const window = 7 * time.Millisecond
	b := newBatcher(rp, BatchOptions{Window: window, MaxBatch: 4}, tm.start)
	defer b.Close()

	type result struct {
		i   int
		d   Decision
		err error
	}
	results := make(chan result, 8)
	act := func(i int) {
		d, err := b.Act(fmt.Sprintf("want item %d", i), fmt.Sprintf("page with item %d", i),
			[]string{fmt.Sprintf("click[item %d]", i), "click[other]"})
		results <- result{i, d, err}
	}
	check := func(r result) {
		t.Helper()
		want, _ := lex.Act(fmt.Sprintf("want item %d", r.i), fmt.Sprintf("page with item %d", r.i),
			[]string{fmt.Sprintf("click[item %d]", r.i), "click[other]"})
		if r.err != nil || !closeTo(r.d, want, 0) {
			t.Fatalf("request %d: %v %v, want %v", r.i, r.d, r.err, want)
		}
	}

	// Three requests: gathered, not scored, until the window's timer fires.
	for i := range 3 {
		go act(i)
	}
	waitQueued(t, b, 3)
	if c := rp.calls(); len(c) != 0 {
		t.Fatalf("scored %v before the window ended", c)
	}
	if d, _ := tm.state(); len(d) != 1 || d[0] != window {
		t.Fatalf("timers %v, want one of %s", d, window)
	}
	tm.fire <- time.Now()
	for range 3 {
		check(<-results)
	}
	if c := rp.calls(); len(c) != 1 || c[0] != 3 {
		t.Fatalf("calls %v, want one batch of 3", c)
	}

	// Four requests fill a batch (MaxBatch 4): scored without the timer firing, and the
	// timer is stopped; the next request starts a new window.
	for i := 3; i < 7; i++ {
		go act(i)
	}
	for range 4 {
		check(<-results)
	}
	if c := rp.calls(); len(c) != 2 || c[1] != 4 {
		t.Fatalf("calls %v, want a full batch of 4", c)
	}
	if d, stops := tm.state(); len(d) != 2 || stops != 2 {
		t.Fatalf("timers %v, %d stopped; want 2 started and stopped", d, stops)
	}
	go act(7)
	waitQueued(t, b, 1)
	tm.fire <- time.Now()
	check(<-results)
	if c := rp.calls(); len(c) != 3 || c[2] != 1 {
		t.Fatalf("calls %v, want a batch of 1 last", c)
	}
}

func TestNewBatcherErrors(t *testing.T) {
	lex, _ := NewLexicalPolicy(LexicalConfig{})
	rp := &recordingPolicy{LexicalPolicy: lex}
	for _, o := range []BatchOptions{{}, {Window: -time.Millisecond}, {Window: time.Millisecond, MaxBatch: -1}} {
		if _, err := NewBatcher(rp, o); err == nil {
			t.Errorf("NewBatcher(%+v) succeeded", o)
		}
	}
	if _, err := NewBatcher(nil, BatchOptions{Window: time.Millisecond}); err == nil {
		t.Error("NewBatcher(nil) succeeded")
	}
}

// Through the HTTP server: concurrent /act requests of different sessions and
// observations on a batched ONNX arm each get their own observation's answer, and
// /metrics counts the batches.
func TestServerBatchedAct(t *testing.T) {
	_, dir, samples := exportedPolicy(t)
	alone, err := LoadONNXPolicy(dir, ORTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer alone.Close()
	n := 2 * len(samples)
	loader := func(d string) (Policy, error) {
		p, err := LoadONNXPolicy(d, ORTOptions{ActionCacheMB: 16})
		if err != nil {
			return nil, err
		}
		return NewBatcher(p, BatchOptions{Window: never, MaxBatch: n})
	}
	ts := startServer(t, func(c *Config) {
		c.Arms = []ArmSpec{{"onnx", dir}}
		c.Loader = loader
		c.Mode, c.Weights = ModeCanary, []float64{1}
	})
	type reply struct {
		code int
		resp ActResponse
	}
	replies := make([]reply, n)
	client := &http.Client{Timeout: time.Minute}
	var wg sync.WaitGroup
	for i := range n {
		s := samples[i%len(samples)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(ActRequest{SessionID: fmt.Sprintf("s%d", i), Observation: s.Text, AvailableActions: clickActions(s)})
			// A request that never reached the batcher would hold the batch open: the client
			// gives up, and the test fails, instead of hanging.
			r, err := client.Post(ts.URL+"/act", "application/json", strings.NewReader(string(body)))
			if err != nil {
				return
			}
			defer r.Body.Close()
			replies[i].code = r.StatusCode
			_ = json.NewDecoder(r.Body).Decode(&replies[i].resp)
		}()
	}
	wg.Wait()
	for i, r := range replies {
		s := samples[i%len(samples)]
		want, err := alone.Act("", s.Text, clickActions(s))
		if err != nil {
			t.Fatal(err)
		}
		if r.code != http.StatusOK || !closeTo(Decision{Probabilities: r.resp.Probabilities, Value: r.resp.Value}, want, 1e-5) {
			t.Fatalf("request %d: %d %+v, alone %v", i, r.code, r.resp, want.Probabilities)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 1<<16)
	for {
		k, err := resp.Body.Read(buf)
		sb.Write(buf[:k])
		if err != nil {
			break
		}
	}
	for _, want := range []string{fmt.Sprintf(`shopagent_batch_requests_total{arm="onnx"} %d`, n), `shopagent_batches_total{arm="onnx"} 1`} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestStateLengthGroups(t *testing.T) {
	var enc []features.EncodedChoice
	for _, n := range []int{10, 500, 70, 64, 65, 130} {
		enc = append(enc, features.EncodedChoice{State: make([]int32, n)})
	}
	got := stateLengthGroups(enc)
	want := [][]int{{0, 3}, {1}, {2, 4}, {5}} // classes 64, 512, 128, 256 in order of first use
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("groups %v, want %v", got, want)
	}
	if g := stateLengthGroups(enc[:1]); len(g) != 1 || len(g[0]) != 1 {
		t.Fatalf("one state: %v", g)
	}
}
