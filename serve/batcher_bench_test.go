package serve

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkBatcher measures dynamic batching on the CPU: C goroutines (concurrent /act
// requests, without HTTP) score the sample pages of the built-in shop ("results": the
// results pages only; "mixed": results, item, option and description pages) through an ONNX policy with the server's default action
// cache (64 MiB), unbatched and through a Batcher. It reports requests/s and the median and
// 99th percentile latency of one request. Run with
//
//	go test ./serve -run '^$' -bench Batcher -benchtime 400x
//
// SHOPAGENT_BENCH_PRESETS (default "tiny,small") and SHOPAGENT_BENCH_CONC (default "8")
// choose the presets and concurrency levels.
func BenchmarkBatcher(b *testing.B) {
	presets := strings.Split(envOr("SHOPAGENT_BENCH_PRESETS", "tiny,small"), ",")
	var concs []int
	for _, c := range strings.Split(envOr("SHOPAGENT_BENCH_CONC", "8"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			b.Fatalf("SHOPAGENT_BENCH_CONC: %q", c)
		}
		concs = append(concs, n)
	}
	for _, preset := range presets {
		b.Run(preset, func(b *testing.B) {
			bp := benchExported(b, preset)
			pages := map[string][]ActInput{}
			for _, s := range bp.samples {
				in := ActInput{Observation: s.Text, Actions: clickActions(s)}
				pages["mixed"] = append(pages["mixed"], in)
				if s.Page == "results" {
					pages["results"] = append(pages["results"], in)
				}
			}
			for _, kind := range []string{"results", "mixed"} {
				inputs := pages[kind]
				for _, conc := range concs {
					for _, cfg := range []struct {
						name    string
						threads int
						window  time.Duration
						max     int
					}{
						{"unbatched-t1", 1, 0, 0}, {"unbatched-t2", 2, 0, 0},
						{"batch1ms-max8-t1", 1, time.Millisecond, 8}, {"batch1ms-max8-t2", 2, time.Millisecond, 8},
						{"batch5ms-max8-t2", 2, 5 * time.Millisecond, 8},
					} {
						b.Run(fmt.Sprintf("%s/c%d/%s", kind, conc, cfg.name), func(b *testing.B) {
							p, err := LoadONNXPolicy(bp.dir, ORTOptions{IntraOpThreads: cfg.threads, ActionCacheMB: 64})
							if err != nil {
								b.Fatal(err)
							}
							var pol Policy = p
							if cfg.window > 0 {
								bt, err := NewBatcher(p, BatchOptions{Window: cfg.window, MaxBatch: cfg.max})
								if err != nil {
									b.Fatal(err)
								}
								pol = bt
							}
							defer pol.Close()
							for _, in := range inputs { // warm the action cache and ONNX Runtime
								if _, err := pol.Act("", in.Observation, in.Actions); err != nil {
									b.Fatal(err)
								}
							}
							lat := make([]time.Duration, b.N)
							var wg sync.WaitGroup
							errs := make(chan error, conc)
							b.ResetTimer()
							start := time.Now()
							for w := range conc {
								wg.Add(1)
								go func() {
									defer wg.Done()
									for i := w; i < b.N; i += conc {
										in := inputs[i%len(inputs)]
										t0 := time.Now()
										if _, err := pol.Act("", in.Observation, in.Actions); err != nil {
											errs <- err
											return
										}
										lat[i] = time.Since(t0)
									}
								}()
							}
							wg.Wait()
							wall := time.Since(start)
							b.StopTimer()
							close(errs)
							for err := range errs {
								b.Fatal(err)
							}
							slices.Sort(lat)
							b.ReportMetric(float64(b.N)/wall.Seconds(), "req/s")
							b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
							b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
							if bt, ok := pol.(*Batcher); ok {
								st := bt.Stats()
								b.ReportMetric(float64(st.Requests)/float64(max(st.Batches, 1)), "mean-batch")
							}
						})
					}
				}
			}
		})
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
