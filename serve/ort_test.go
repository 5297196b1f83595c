package serve

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"shopagent/env"
	"shopagent/export"
	"shopagent/export/exporttest"
	"shopagent/export/onnxrt"
	"shopagent/features"
	"shopagent/models"
)

// onnxFixture is one exported tiny policy shared by the ONNX tests.
var onnxFixture struct {
	sync.Once
	root, ckpt, dir string
	samples         []export.Sample
	err             error
}

func exportedPolicy(t testing.TB) (ckpt, dir string, samples []export.Sample) {
	t.Helper()
	f := &onnxFixture
	f.Do(func() {
		if f.root, f.err = os.MkdirTemp("", "shopagent-serve-ort-"); f.err != nil {
			return
		}
		f.ckpt, f.dir = filepath.Join(f.root, "ckpt"), filepath.Join(f.root, "policy")
		if f.samples, f.err = exporttest.Checkpoint(f.ckpt, exporttest.Options{Seed: 11}); f.err != nil {
			return
		}
		_, f.err = export.Export(f.ckpt, f.dir, export.Options{SampleGoals: 1})
	})
	if f.err != nil {
		t.Fatal(f.err)
	}
	return f.ckpt, f.dir, f.samples
}

// clickActions returns the WebShop click actions of an observation's clickables.
func clickActions(s export.Sample) []string {
	var out []string
	for _, c := range s.Clickables {
		if c != env.ClickSearch {
			out = append(out, env.Click(c))
		}
	}
	return out
}

func TestONNXPolicyMatchesGoMLX(t *testing.T) {
	for _, mb := range []int{0, 16} {
		t.Run(fmt.Sprintf("action-cache-%dMiB", mb), func(t *testing.T) { testONNXPolicyMatchesGoMLX(t, mb) })
	}
}

func testONNXPolicyMatchesGoMLX(t *testing.T, cacheMB int) {
	ckpt, dir, samples := exportedPolicy(t)
	p, err := LoadONNXPolicy(dir, ORTOptions{ActionCacheMB: cacheMB})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, ok := p.ActionCache(); ok != (cacheMB > 0) {
		t.Fatalf("action cache %v with %d MiB", ok, cacheMB)
	}
	info := p.Info()
	if info.Name != "policy" || info.Dir != dir || info.Preset != "tiny" || info.SHA256 != p.Manifest().SHA256[onnxrt.ModelFile] {
		t.Fatalf("info %+v", info)
	}
	backend, err := models.NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := models.LoadPolicy(backend, ckpt)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	var examples []features.ChoiceExample
	var inputs []ActInput
	for _, s := range samples {
		ex, _ := features.ChoiceFromObservation(s.Text, s.Clickables)
		examples = append(examples, ex)
		inputs = append(inputs, ActInput{Observation: s.Text, Actions: clickActions(s)})
	}
	want, err := ref.Score(examples)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := p.ActBatch(inputs)
	if err != nil {
		t.Fatal(err)
	}
	maxDiff := 0.0
	for i, in := range inputs {
		d, err := p.Act("", in.Observation, in.Actions)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Probabilities) != len(in.Actions) {
			t.Fatalf("sample %d: %d probabilities for %d actions", i, len(d.Probabilities), len(in.Actions))
		}
		sum := 0.0
		for j, pr := range d.Probabilities {
			sum += pr
			maxDiff = max(maxDiff, math.Abs(pr-math.Exp(want[i].LogProbs[j])), math.Abs(pr-batch[i].Probabilities[j]))
		}
		maxDiff = max(maxDiff, math.Abs(d.Value-want[i].Value), math.Abs(d.Value-batch[i].Value))
		if math.Abs(sum-1) > 1e-9 {
			t.Fatalf("sample %d: probabilities sum to %g", i, sum)
		}
	}
	t.Logf("%d observations: max |ONNX - GoMLX| over probabilities and values %.3g", len(inputs), maxDiff)
	if maxDiff > 1e-5 {
		t.Fatalf("ONNX policy differs from GoMLX by %g", maxDiff)
	}
}

func TestONNXPolicyActionsOrderAndSearch(t *testing.T) {
	_, dir, samples := exportedPolicy(t)
	p, err := LoadONNXPolicy(dir, ORTOptions{Name: "arm-a", IntraOpThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Info().Name != "arm-a" {
		t.Fatalf("name %q", p.Info().Name)
	}
	var s export.Sample // an item page: no product positions, so the order is free
	for _, x := range samples {
		if x.Page == string(env.PageItem) {
			s = x
			break
		}
	}
	acts := clickActions(s)
	if len(acts) < 3 {
		t.Fatalf("item page with %d actions", len(acts))
	}
	d, err := p.Act("", s.Text, acts)
	if err != nil {
		t.Fatal(err)
	}
	// Reversed actions give reversed probabilities (on a results page the order matters:
	// products are ranked in the order given, as on WebShop's page).
	rev := make([]string, len(acts))
	for i, a := range acts {
		rev[len(acts)-1-i] = a
	}
	dr, err := p.Act("", s.Text, rev)
	if err != nil {
		t.Fatal(err)
	}
	for i := range acts {
		if math.Abs(d.Probabilities[i]-dr.Probabilities[len(acts)-1-i]) > 1e-6 {
			t.Fatalf("action %d: %g forward, %g reversed", i, d.Probabilities[i], dr.Probabilities[len(acts)-1-i])
		}
	}
	// Search candidates are scored like clicks; the instruction argument is used.
	search := []string{"search[red running shoes]", "search[shoes]", "click[search]"}
	ds, err := p.Act("i want red running shoes", "WebShop [SEP] Instruction: [SEP] i want red running shoes [SEP] Search", search)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Probabilities) != 3 || math.Abs(ds.Probabilities[0]+ds.Probabilities[1]+ds.Probabilities[2]-1) > 1e-9 {
		t.Fatalf("search decision %+v", ds)
	}
	d1, _ := p.Act("i want red running shoes", "Search", search)
	d2, _ := p.Act("i want a blue hat", "Search", search)
	if d1.Probabilities[0] == d2.Probabilities[0] {
		t.Fatalf("the instruction argument is ignored: %v vs %v", d1, d2)
	}
	for _, bad := range [][]string{nil, {"click[buy now]", "jump"}, {"search"}} {
		if _, err := p.Act("", s.Text, bad); err == nil {
			t.Errorf("actions %q accepted", bad)
		}
	}
	if _, err := p.ActBatch(nil); err == nil {
		t.Error("empty batch accepted")
	}
}

func TestONNXPolicyActionCache(t *testing.T) {
	_, dir, samples := exportedPolicy(t)
	p, err := LoadONNXPolicy(dir, ORTOptions{ActionCacheMB: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	plain, err := LoadONNXPolicy(dir, ORTOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	// The distinct actions (token sequences) the samples offer.
	tok, err := features.LoadVocab(filepath.Join(dir, onnxrt.VocabFile))
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	offered := 0 // distinct actions per request, summed
	for _, s := range samples {
		ex, _ := features.ChoiceFromObservation(s.Text, s.Clickables)
		u := map[string]bool{}
		for _, a := range features.EncodeChoice(tok, p.Manifest().Policy, ex).Actions {
			u[fmt.Sprint(a)], distinct[fmt.Sprint(a)] = true, true
		}
		offered += len(u)
	}
	for pass := range 2 {
		for i, s := range samples {
			acts := clickActions(s)
			got, err := p.Act("", s.Text, acts)
			if err != nil {
				t.Fatal(err)
			}
			want, err := plain.Act("", s.Text, acts)
			if err != nil {
				t.Fatal(err)
			}
			for j := range acts {
				if d := math.Abs(got.Probabilities[j] - want.Probabilities[j]); d > 1e-6 {
					t.Fatalf("pass %d sample %d action %d: cached %g, model.onnx %g", pass, i, j, got.Probabilities[j], want.Probabilities[j])
				}
			}
			if math.Abs(got.Value-want.Value) > 1e-6 {
				t.Fatalf("pass %d sample %d: value %g vs %g", pass, i, got.Value, want.Value)
			}
		}
		st, _ := p.ActionCache()
		t.Logf("after pass %d: %+v (%d distinct actions)", pass, st, len(distinct))
		// Each distinct action is encoded once, the first time it is offered; every
		// later offer, in this pass or the next, is a hit.
		if st.Misses != uint64(len(distinct)) || st.Hits != uint64((pass+1)*offered-len(distinct)) ||
			st.Entries != len(distinct) || st.Bytes == 0 {
			t.Fatalf("pass %d: stats %+v, want %d misses and %d hits", pass, st, len(distinct), (pass+1)*offered-len(distinct))
		}
	}
	// A directory without the split graphs is served by model.onnx, cache or not.
	noSplit := filepath.Join(t.TempDir(), "nosplit")
	if _, err := export.Export(filepath.Join(filepath.Dir(dir), "ckpt"), noSplit, export.Options{SampleGoals: 1, NoSplit: true}); err != nil {
		t.Fatal(err)
	}
	q, err := LoadONNXPolicy(noSplit, ORTOptions{ActionCacheMB: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, ok := q.ActionCache(); ok {
		t.Fatal("a directory without actions.onnx has an action cache")
	}
	d, err := q.Act("", samples[0].Text, clickActions(samples[0]))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := plain.Act("", samples[0].Text, clickActions(samples[0]))
	if math.Abs(d.Probabilities[0]-w.Probabilities[0]) > 1e-6 {
		t.Fatalf("no-split policy %g vs %g", d.Probabilities[0], w.Probabilities[0])
	}
	if _, err := LoadONNXPolicy(dir, ORTOptions{ActionCacheMB: -1}); err == nil {
		t.Fatal("negative cache size accepted")
	}
}

func TestONNXPolicyConcurrent(t *testing.T) {
	for _, mb := range []int{0, 16} {
		t.Run(fmt.Sprintf("action-cache-%dMiB", mb), func(t *testing.T) { testONNXPolicyConcurrent(t, mb) })
	}
}

func testONNXPolicyConcurrent(t *testing.T, cacheMB int) {
	_, dir, samples := exportedPolicy(t)
	p, err := LoadONNXPolicy(dir, ORTOptions{ActionCacheMB: cacheMB})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]Decision, len(samples))
	for i, s := range samples {
		if want[i], err = p.Act("", s.Text, clickActions(s)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 8 {
				i := (w + k) % len(samples)
				d, err := p.Act("", samples[i].Text, clickActions(samples[i]))
				if err != nil {
					errs <- err.Error()
					return
				}
				for j := range d.Probabilities {
					if math.Abs(d.Probabilities[j]-want[i].Probabilities[j]) > 1e-6 {
						errs <- "concurrent result differs"
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Act("", samples[0].Text, clickActions(samples[0])); err == nil {
		t.Fatal("Act after Close succeeded")
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestLoadONNXPolicyErrors(t *testing.T) {
	_, dir, _ := exportedPolicy(t)
	copyDir := func(t *testing.T) string {
		t.Helper()
		dst := filepath.Join(t.TempDir(), "p")
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{onnxrt.ModelFile, onnxrt.VocabFile, onnxrt.ActionsFile, onnxrt.ScorerFile, onnxrt.ManifestFile} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dst
	}
	cases := []struct {
		name   string
		mangle func(d string) error
		want   string
	}{
		{"no manifest", func(d string) error { return os.Remove(filepath.Join(d, onnxrt.ManifestFile)) }, "not a policy directory"},
		{"corrupt manifest", func(d string) error {
			return os.WriteFile(filepath.Join(d, onnxrt.ManifestFile), []byte("{not json"), 0o644)
		}, "corrupt"},
		{"missing model", func(d string) error { return os.Remove(filepath.Join(d, onnxrt.ModelFile)) }, "missing file"},
		{"corrupt model", func(d string) error {
			p := filepath.Join(d, onnxrt.ModelFile)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0xff
			return os.WriteFile(p, b, 0o644)
		}, "sha256"},
		{"missing actions.onnx", func(d string) error { return os.Remove(filepath.Join(d, onnxrt.ActionsFile)) }, "missing file"},
		{"corrupt scorer.onnx", func(d string) error {
			p := filepath.Join(d, onnxrt.ScorerFile)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)/3] ^= 0x01
			return os.WriteFile(p, b, 0o644)
		}, "scorer.onnx: sha256"},
		{"replaced vocab", func(d string) error {
			return os.WriteFile(filepath.Join(d, onnxrt.VocabFile), []byte("[PAD]\n"), 0o644)
		}, "sha256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := copyDir(t)
			if err := tc.mangle(d); err != nil {
				t.Fatal(err)
			}
			_, err := LoadONNXPolicy(d, ORTOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := LoadONNXPolicy(filepath.Join(t.TempDir(), "nothing"), ORTOptions{}); err == nil {
		t.Fatal("missing directory loaded")
	}
	if _, err := LoadONNXPolicy(dir, ORTOptions{Device: "cuda"}); err == nil || !strings.Contains(err.Error(), "libonnxruntime_providers_cuda.so") {
		t.Fatalf("cuda on the CPU library: %v", err)
	}
	// Reloading the same directory many times works (model reload in the server).
	for range 3 {
		p, err := LoadONNXPolicy(dir, ORTOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if onnxFixture.root != "" {
		os.RemoveAll(onnxFixture.root)
	}
	if servingFixture.root != "" {
		os.RemoveAll(servingFixture.root)
	}
	benchPolicies.Range(func(_, v any) bool {
		if bp := v.(*benchPolicy); bp.root != "" {
			os.RemoveAll(bp.root)
		}
		return true
	})
	os.Exit(code)
}

// TestONNXPolicyChunksEqualOneRun: scoring the actions in chunks (ORTOptions.ChunkActions)
// gives the probabilities and value of one run, with and without the action cache.
func TestONNXPolicyChunksEqualOneRun(t *testing.T) {
	_, dir, samples := exportedPolicy(t)
	for _, cacheMB := range []int{0, 16} {
		whole, err := LoadONNXPolicy(dir, ORTOptions{ActionCacheMB: cacheMB, ChunkActions: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		chunked, err := LoadONNXPolicy(dir, ORTOptions{ActionCacheMB: cacheMB, ChunkActions: 3})
		if err != nil {
			t.Fatal(err)
		}
		var inputs []ActInput
		for _, s := range samples {
			if acts := clickActions(s); len(acts) > 3 {
				inputs = append(inputs, ActInput{Observation: s.Text, Actions: acts})
			}
		}
		if len(inputs) == 0 {
			t.Fatal("no sample page with more than 3 actions")
		}
		want, err := whole.ActBatch(inputs)
		if err != nil {
			t.Fatal(err)
		}
		got, err := chunked.ActBatch(inputs)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if math.Abs(got[i].Value-want[i].Value) > 1e-5 {
				t.Fatalf("cache %d MiB, page %d: value %g in chunks, %g in one run", cacheMB, i, got[i].Value, want[i].Value)
			}
			for k := range want[i].Probabilities {
				if math.Abs(got[i].Probabilities[k]-want[i].Probabilities[k]) > 1e-5 {
					t.Fatalf("cache %d MiB, page %d action %d: %g in chunks, %g in one run", cacheMB, i, k, got[i].Probabilities[k], want[i].Probabilities[k])
				}
			}
		}
		whole.Close()
		chunked.Close()
	}
}
