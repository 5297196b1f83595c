package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"shopagent/env"
	"shopagent/env/pyport"
	"shopagent/env/search"
)

func newEnvBenchCmd() *cobra.Command {
	var sf shopFlags
	var queries int
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure catalog load, index build time, peak memory and search latency",
		Long: `Loads the shop, builds the BM25 index and runs searches with the goals'
instructions (as the rule agent does) and with short human-like queries.
Prints one JSON object: products, load and index seconds, peak RSS (VmHWM),
and search latency p50/p90/p99 in milliseconds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := sf.dataDir()
			if err != nil {
				return err
			}
			lo, err := env.FindDataFiles(dir)
			if err != nil {
				return err
			}
			lo.Seed, lo.Limit = sf.seed, sf.limit
			t0 := time.Now()
			c, err := env.LoadCatalog(lo)
			if err != nil {
				return err
			}
			loadS := time.Since(t0).Seconds()
			rssLoad := peakRSSMB()
			t1 := time.Now()
			ix := search.BuildIndex(len(c.Products), func(i int) string { return env.DocText(&c.Products[i]) })
			indexS := time.Since(t1).Seconds()
			runtime.GC()
			rssIndex := peakRSSMB()
			goals := env.HumanGoals(c, pyport.NewRandom(0))
			if len(goals) == 0 {
				goals = env.SyntheticGoals(c, pyport.NewRandom(0))
			}
			if len(goals) == 0 {
				return fmt.Errorf("no goals to draw queries from")
			}
			measure := func(q func(i int) string) (p50, p90, p99 float64) {
				lat := make([]float64, queries)
				for i := range lat {
					s := q(i)
					t := time.Now()
					ix.Search(s, 50)
					lat[i] = float64(time.Since(t).Microseconds()) / 1000
				}
				slices.Sort(lat)
				pick := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
				return pick(0.5), pick(0.9), pick(0.99)
			}
			ip50, ip90, ip99 := measure(func(i int) string { return goals[(i*7919)%len(goals)].Instruction })
			sp50, sp90, sp99 := measure(func(i int) string {
				w := strings.Fields(goals[(i*7919)%len(goals)].Instruction)
				return strings.Join(w[len(w)/3:min(len(w), len(w)/3+5)], " ")
			})
			out := map[string]any{
				"products": len(c.Products), "gomaxprocs": runtime.GOMAXPROCS(0),
				"load_s": round3(loadS), "index_s": round3(indexS),
				"peak_rss_mb_after_load": rssLoad, "peak_rss_mb_after_index": rssIndex,
				"queries":               queries,
				"instruction_search_ms": map[string]float64{"p50": ip50, "p90": ip90, "p99": ip99},
				"short_search_ms":       map[string]float64{"p50": sp50, "p90": sp90, "p99": sp99},
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			return enc.Encode(out)
		},
	}
	sf.register(cmd)
	cmd.Flags().IntVar(&queries, "queries", 2000, "searches per query kind")
	return cmd
}

func round3(v float64) float64 { return float64(int(v*1000+0.5)) / 1000 }

// peakRSSMB reads the process's peak resident set size (VmHWM) in MB.
func peakRSSMB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.Atoi(f[1])
				return kb / 1024
			}
		}
	}
	return -1
}
