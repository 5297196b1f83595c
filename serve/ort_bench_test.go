package serve

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"shopagent/export"
	"shopagent/export/exporttest"
	"shopagent/features"
	"shopagent/models"
)

// benchPolicies caches one exported policy per preset for the benchmarks.
var benchPolicies sync.Map // preset -> *benchPolicy

type benchPolicy struct {
	once      sync.Once
	root      string
	ckpt, dir string
	samples   []export.Sample
	maxDiff   float64
	err       error
}

func benchExported(b *testing.B, preset string) *benchPolicy {
	b.Helper()
	v, _ := benchPolicies.LoadOrStore(preset, &benchPolicy{})
	bp := v.(*benchPolicy)
	bp.once.Do(func() {
		if bp.root, bp.err = os.MkdirTemp("", "shopagent-ort-bench-"); bp.err != nil {
			return
		}
		bp.ckpt, bp.dir = filepath.Join(bp.root, "ckpt"), filepath.Join(bp.root, "policy")
		// The serving limits: states up to 512 tokens, actions up to 32.
		if bp.samples, bp.err = exporttest.Checkpoint(bp.ckpt, exporttest.Options{Preset: preset, MaxStateLen: 512, MaxActionLen: 32, Seed: 1}); bp.err != nil {
			return
		}
		var res *export.Result
		if res, bp.err = export.Export(bp.ckpt, bp.dir, export.Options{SampleGoals: 1}); bp.err == nil {
			bp.maxDiff = res.Manifest.Parity.MaxAbsDiff
		}
	})
	if bp.err != nil {
		b.Fatal(bp.err)
	}
	return bp
}

// BenchmarkPolicyInference compares ONNX Runtime (ONNXPolicy, 1 and 2 intra-op threads,
// and 1 thread with a warm action cache) with the GoMLX forward (models.Policy on the pure-Go backend, all cores) on the same
// observations of the built-in shop: one results page (B=1) and all sample pages in one
// call (B=8: results, item, option and description pages). Run with
//
//	go test ./serve -run '^$' -bench PolicyInference -benchtime 20x
func BenchmarkPolicyInference(b *testing.B) {
	for _, preset := range []string{"tiny", "small"} {
		b.Run(preset, func(b *testing.B) {
			bp := benchExported(b, preset)
			b.Logf("%s: export parity max |diff| %.3g", preset, bp.maxDiff)
			var examples []features.ChoiceExample
			var inputs []ActInput
			for _, s := range bp.samples {
				ex, _ := features.ChoiceFromObservation(s.Text, s.Clickables)
				examples = append(examples, ex)
				inputs = append(inputs, ActInput{Observation: s.Text, Actions: clickActions(s)})
			}
			batch := min(8, len(inputs))
			backend, err := models.NewBackend("go")
			if err != nil {
				b.Fatal(err)
			}
			ref, err := models.LoadPolicy(backend, bp.ckpt)
			if err != nil {
				b.Fatal(err)
			}
			defer ref.Close()
			for _, size := range []int{1, batch} {
				name := "B1"
				if size > 1 {
					name = "B8"
				}
				b.Run("gomlx/"+name, func(b *testing.B) {
					if _, err := ref.Score(examples[:size]); err != nil { // compile outside the timing
						b.Fatal(err)
					}
					b.ResetTimer()
					for range b.N {
						if _, err := ref.Score(examples[:size]); err != nil {
							b.Fatal(err)
						}
					}
				})
				for _, cfg := range []struct {
					name string
					opts ORTOptions
				}{
					{"onnx-t1", ORTOptions{IntraOpThreads: 1}}, {"onnx-t2", ORTOptions{IntraOpThreads: 2}},
					{"onnx-t1-cache", ORTOptions{IntraOpThreads: 1, ActionCacheMB: 64}}, // warm: every action cached
				} {
					b.Run(cfg.name+"/"+name, func(b *testing.B) {
						p, err := LoadONNXPolicy(bp.dir, cfg.opts)
						if err != nil {
							b.Fatal(err)
						}
						defer p.Close()
						if _, err := p.ActBatch(inputs[:size]); err != nil {
							b.Fatal(err)
						}
						b.ResetTimer()
						for range b.N {
							if _, err := p.ActBatch(inputs[:size]); err != nil {
								b.Fatal(err)
							}
						}
					})
				}
			}
		})
	}
}
