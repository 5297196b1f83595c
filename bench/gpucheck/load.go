package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"shopagent/env"
)

// body is one /act request (session_id is filled in per request).
type body struct {
	SessionID        string   `json:"session_id"`
	Instruction      string   `json:"instruction"`
	Observation      string   `json:"observation"`
	AvailableActions []string `json:"available_actions"`
}

// Level is the result of one concurrency level.
type Level struct {
	Label       string  `json:"label"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	RPS         float64 `json:"requests_per_s"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`
	FirstError  string  `json:"first_error,omitempty"`
}

// runLoad is `gpucheck load`: a load driver for POST /act (wrk is not installed on the GPU
// machines). It builds real request bodies from a shop (the first results page of train
// goals searched with their instruction, 10 product actions, text_rich, as
// bench/act_load.sh does), then runs each concurrency level for a fixed time (closed loop:
// each of C workers sends its next request when the last one answered; a new session
// every 20 requests of a worker) and prints p50/p90/p99 latency and requests/s; -json
// appends one JSON object per level.
func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	url := fs.String("url", "", "server base URL (http://host:port)")
	data := fs.String("data", "", "shop directory (shopagent env generate --out DIR)")
	nBodies := fs.Int("bodies", 100, "distinct request bodies (results pages of train goals)")
	conc := fs.String("conc", "1,8,64", "concurrency levels, comma-separated")
	dur := fs.Duration("duration", 10*time.Second, "time per level")
	warm := fs.Duration("warmup", 2*time.Second, "unmeasured time before the first level (at the first level's concurrency)")
	label := fs.String("label", "", "configuration label in the output")
	jsonOut := fs.String("json", "", "append one JSON object per level to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return run(*url, *data, *nBodies, *conc, *dur, *warm, *label, *jsonOut)
}

func run(url, data string, nBodies int, concList string, dur, warm time.Duration, label, jsonOut string) error {
	if url == "" || data == "" {
		return fmt.Errorf("-url and -data are required")
	}
	var levels []int
	for _, s := range strings.Split(concList, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			return fmt.Errorf("-conc: %q is not a positive number", s)
		}
		levels = append(levels, c)
	}
	bodies, err := resultsPages(data, nBodies)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0}}
	if warm > 0 {
		measure(client, url, bodies, levels[0], warm, "warmup")
	}
	var out io.Writer
	if jsonOut != "" {
		f, err := os.OpenFile(jsonOut, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	fmt.Println("| label | concurrency | requests | errors | requests/s | p50 ms | p90 ms | p99 ms |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	failed := false
	for _, c := range levels {
		l := measure(client, url, bodies, c, dur, label)
		fmt.Printf("| %s | %d | %d | %d | %.1f | %.2f | %.2f | %.2f |\n", l.Label, l.Concurrency, l.Requests, l.Errors, l.RPS, l.P50ms, l.P90ms, l.P99ms)
		if l.FirstError != "" {
			fmt.Fprintf(os.Stderr, "actload: %s at concurrency %d: first error: %s\n", label, c, l.FirstError)
			failed = true
		}
		if out != nil {
			b, _ := json.Marshal(l)
			if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
				return err
			}
		}
	}
	if failed {
		return fmt.Errorf("some requests failed")
	}
	return nil
}

// resultsPages returns up to n request bodies: the first results page of each train goal
// searched with its instruction, with its first 10 products (pages with fewer skipped).
func resultsPages(dir string, n int) ([]body, error) {
	shop, err := env.OpenShop(dir, env.ShopOptions{})
	if err != nil {
		return nil, err
	}
	goals, err := shop.SplitGoals("train")
	if err != nil {
		return nil, err
	}
	skip := map[string]bool{env.ClickBackToSearch: true, env.ClickNext: true, env.ClickPrev: true}
	var out []body
	for _, g := range goals {
		if len(out) == n {
			break
		}
		e := shop.NewEnv(env.Config{Mode: env.ObsTextRich})
		e.Reset(g)
		obs, _, _, info := e.Step("search[" + g.Instruction + "]")
		if !info.Valid {
			continue
		}
		var acts []string
		for _, c := range obs.Clickables {
			if !skip[c] && len(acts) < 10 {
				acts = append(acts, env.Click(c))
			}
		}
		if len(acts) == 10 {
			out = append(out, body{Instruction: g.Instruction, Observation: obs.Text, AvailableActions: acts})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no results page with 10 products among %d train goals of %s", len(goals), dir)
	}
	return out, nil
}

// measure runs c closed-loop workers for d and returns the level's figures.
func measure(client *http.Client, url string, bodies []body, c int, d time.Duration, label string) Level {
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	first := ""
	stop := time.Now().Add(d)
	start := time.Now()
	run := time.Now().UnixNano()
	var wg sync.WaitGroup
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad, firstErr := 0, ""
			for i := 0; time.Now().Before(stop); i++ {
				b := bodies[(w*7919+i)%len(bodies)]
				b.SessionID = fmt.Sprintf("actload-%d-%d-%d", run, w, i/20)
				raw, _ := json.Marshal(b)
				t0 := time.Now()
				resp, err := client.Post(url+"/act", "application/json", bytes.NewReader(raw))
				if err == nil {
					msg, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
					}
				}
				if err != nil {
					bad++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			if first == "" {
				first = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	slices.Sort(lat)
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	return Level{Label: label, Concurrency: c, Seconds: secs, Requests: len(lat), Errors: errs, RPS: float64(len(lat)) / secs,
		P50ms: q(0.50), P90ms: q(0.90), P99ms: q(0.99), FirstError: first}
}
