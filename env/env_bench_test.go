package env_test

import (
	"sync"
	"syscall"
	"testing"
	"time"

	"shopagent/env"
	"shopagent/env/shopgen"
)

var benchShopOnce struct {
	sync.Once
	shop *env.Shop
	err  error
}

// benchShop generates and opens the built-in shop's first 100 goals (1,000
// products) once per run.
func benchShop(b *testing.B) *env.Shop {
	b.Helper()
	benchShopOnce.Do(func() {
		dir := b.TempDir()
		cfg := shopgen.DefaultConfig()
		cfg.Goals = "100"
		if err := shopgen.Generate(cfg, dir, nil); err != nil {
			benchShopOnce.err = err
			return
		}
		benchShopOnce.shop, benchShopOnce.err = env.OpenShop(dir, env.ShopOptions{})
		if benchShopOnce.err == nil {
			// The first reward of a process loads the part-of-speech tagger (~0.4 s): pay
			// it here, not in the first timed run.
			shop := benchShopOnce.shop
			env.RunEpisode(shop.NewEnv(env.Config{MaxSteps: 100}), shop.Goals[0], env.RuleAgent{}, false)
		}
	})
	if benchShopOnce.err != nil {
		b.Fatal(benchShopOnce.err)
	}
	return benchShopOnce.shop
}

// cpuSeconds returns the process's user + system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkEnvStepRandomWalk measures env steps per second of a random-walk
// agent on 1,000 products (run with -cpu 1 for the one-core figure). Each
// b.N is one step; episodes end at "buy now" or after 100 steps.
func BenchmarkEnvStepRandomWalk(b *testing.B) {
	for _, mode := range []env.ObsMode{env.ObsText, env.ObsTextRich} {
		b.Run(string(mode), func(b *testing.B) {
			shop := benchShop(b)
			e := shop.NewEnv(env.Config{Mode: mode, MaxSteps: 100})
			a := env.NewRandomAgent(1, 0.05)
			gi := 0
			obs := e.Reset(shop.Goals[gi])
			b.ReportAllocs()
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var done bool
				obs, _, done, _ = e.Step(a.Act(obs))
				if done {
					gi = (gi + 1) % len(shop.Goals)
					obs = e.Reset(shop.Goals[gi])
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
			// Steps per second of the process's CPU time: the one-core rate even when
			// other jobs share the machine (the wall-clock rate then drops).
			if cpu := cpuSeconds() - cpu0; cpu > 0 {
				b.ReportMetric(float64(b.N)/cpu, "steps/cpu-s")
			}
		})
	}
}

// BenchmarkRuleEpisode measures whole rule-agent episodes (search, click, buy
// with the reward) on 1,000 products.
func BenchmarkRuleEpisode(b *testing.B) {
	shop := benchShop(b)
	e := shop.NewEnv(env.Config{MaxSteps: 100})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		env.RunEpisode(e, shop.Goals[i%len(shop.Goals)], env.RuleAgent{}, false)
	}
}
