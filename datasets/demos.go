package datasets

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"shopagent/env"
)

// DemoConfig configures GenerateDemos.
type DemoConfig struct {
	// Goals are the goals to demonstrate; episode i plays Goals[i mod
	// len(Goals)], so more episodes than goals revisit goals with other
	// queries and choices.
	Goals []env.Goal
	// GoalOffset is the index of Goals[0] in env.Shop.Goals (the start of its
	// split), so that rows carry absolute goal ids.
	GoalOffset int
	// Episodes is the number of episodes (0 = one per goal).
	Episodes int
	// Expert configures the scripted shopper.
	Expert ExpertConfig
	// Seed makes the demonstrations reproducible: the same seed and config
	// give the same rows, whatever Workers.
	Seed uint64
	// Workers is the number of parallel environments (0 = GOMAXPROCS).
	Workers int
	// Env configures the environments (observation mode, step cap; a zero
	// MaxSteps becomes 100, WebShop's baseline cap).
	Env env.Config
	// IDPrefix prefixes episode ids ("expert-" when empty).
	IDPrefix string
	// Progress, when set, is called after each episode with the count done.
	Progress func(done int)
}

// DemoStats summarises generated demonstrations.
type DemoStats struct {
	Episodes  int `json:"episodes"`
	Steps     int `json:"steps"`
	Successes int `json:"successes"`
	// MeanReward is the mean final reward; SuccessRate the percentage of
	// episodes with reward 1; MeanSteps the mean episode length.
	MeanReward  float64 `json:"mean_reward"`
	SuccessRate float64 `json:"success_rate"`
	MeanSteps   float64 `json:"mean_steps"`
	// BoughtGoal counts episodes that bought the goal product itself (the
	// others bought a fallback); Truncated episodes hit the step cap.
	BoughtGoal int `json:"bought_goal"`
	Truncated  int `json:"truncated"`
	// RandomActions counts noise actions over all episodes.
	RandomActions int `json:"random_actions"`
	// Searches counts the searches the expert issued, over all episodes
	// (reformulations included).
	Searches int `json:"searches"`
	// HumanQueries counts the episodes whose first search typed a real
	// person's query for the instruction (see HumanQueriesFor); the others
	// typed a shortened query. QueryWords sums the words of the first
	// queries, MeanQueryWords is their mean.
	HumanQueries   int     `json:"human_queries"`
	QueryWords     int     `json:"query_words"`
	MeanQueryWords float64 `json:"mean_query_words"`
	// ResultsViews counts the steps taken on results pages (each one a
	// results page looked at, again after coming back to it); ItemsOpened
	// counts clicks on products; Reads counts description and features
	// pages opened. MaxResultsViews and MaxItemsOpened are the largest
	// counts of one episode.
	ResultsViews    int `json:"results_views"`
	ItemsOpened     int `json:"items_opened"`
	Reads           int `json:"reads"`
	MaxResultsViews int `json:"max_results_views"`
	MaxItemsOpened  int `json:"max_items_opened"`
	// Detours the expert took on purpose (ExpertReport): other results
	// opened, next pages looked at while the goal product showed,
	// reformulated searches.
	OpenedOthers   int `json:"opened_others"`
	PagesAhead     int `json:"pages_ahead"`
	Reformulations int `json:"reformulations"`
}

// add counts one episode's pages and the expert's report.
func (st *DemoStats) add(ep env.Episode, rep ExpertReport) {
	st.RandomActions += rep.RandomActions
	st.Searches += rep.Searches
	if rep.HumanQuery {
		st.HumanQueries++
	}
	st.QueryWords += len(strings.Fields(rep.FirstQuery))
	st.OpenedOthers += rep.OpenedOthers
	st.PagesAhead += rep.PagesAhead
	st.Reformulations += rep.Reformulations
	var views, items int
	for _, tr := range ep.Transitions {
		if tr.Obs.Page == env.PageResults {
			views++
		}
		switch a := env.ParseAction(tr.Action); {
		case a.Name == "click" && looksLikeASIN(a.Arg):
			items++
		case a.Name == "click" && (a.Arg == env.ClickDescription || a.Arg == env.ClickFeatures):
			st.Reads++
		}
	}
	st.ResultsViews += views
	st.ItemsOpened += items
	st.MaxResultsViews = max(st.MaxResultsViews, views)
	st.MaxItemsOpened = max(st.MaxItemsOpened, items)
}

// episodeSeed derives an episode's seed from the run seed (splitmix64).
func episodeSeed(seed uint64, i int) uint64 {
	z := seed + 0x9e3779b97f4a7c15*uint64(i+1)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

type demoResult struct {
	i     int
	steps []Step
	ep    env.Episode
	found bool
	rep   ExpertReport
}

// GenerateDemos plays expert episodes over the goals in parallel (one Env per
// worker over the shared shop) and hands each episode's rows to fn in episode
// order, labelled source expert and policy "expert". An error from fn stops
// the generation and is returned.
func GenerateDemos(shop *env.Shop, cfg DemoConfig, fn func(ep []Step) error) (DemoStats, error) {
	var st DemoStats
	if len(cfg.Goals) == 0 {
		return st, errors.New("datasets: generate demonstrations: no goals")
	}
	n := cfg.Episodes
	if n <= 0 {
		n = len(cfg.Goals)
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	ecfg := cfg.Env
	if ecfg.MaxSteps == 0 {
		ecfg.MaxSteps = 100
	}
	prefix := cfg.IDPrefix
	if prefix == "" {
		prefix = "expert-"
	}

	jobs := make(chan int)
	results := make(chan demoResult, workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := shop.NewEnv(ecfg)
			for i := range jobs {
				gi := i % len(cfg.Goals)
				g := cfg.Goals[gi]
				x := NewExpert(g, cfg.Expert, episodeSeed(cfg.Seed, i))
				ep := env.RunEpisode(e, g, x, true)
				found := ep.Purchase != nil && ep.Purchase.ASIN == g.ASIN
				steps := EpisodeSteps(ep, EpisodeMeta{
					ID:     fmt.Sprintf("%s%d-%07d", prefix, cfg.Seed, i),
					Source: SourceExpert, Policy: ExpertPolicy,
					GoalID: int64(cfg.GoalOffset + gi),
				})
				select {
				case results <- demoResult{i: i, steps: steps, ep: ep, found: found, rep: x.Report()}:
				case <-stop:
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := 0; i < n; i++ {
			select {
			case jobs <- i:
			case <-stop:
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()

	// Emit in episode order.
	pending := map[int]demoResult{}
	next := 0
	var rewardSum float64
	var err error
	for r := range results {
		if err != nil {
			continue // drain
		}
		pending[r.i] = r
		for {
			p, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			st.Episodes++
			st.Steps += len(p.steps)
			rewardSum += p.ep.Reward
			if p.ep.Success() {
				st.Successes++
			}
			if p.found {
				st.BoughtGoal++
			}
			if p.ep.Truncated {
				st.Truncated++
			}
			st.add(p.ep, p.rep)
			if cfg.Progress != nil {
				cfg.Progress(st.Episodes)
			}
			if err = fn(p.steps); err != nil {
				close(stop)
				break
			}
		}
	}
	if st.Episodes > 0 {
		st.MeanReward = rewardSum / float64(st.Episodes)
		st.SuccessRate = 100 * float64(st.Successes) / float64(st.Episodes)
		st.MeanSteps = float64(st.Steps) / float64(st.Episodes)
		st.MeanQueryWords = float64(st.QueryWords) / float64(st.Episodes)
	}
	return st, err
}

// WriteDemos generates demonstrations (GenerateDemos) into a new trajectory
// file at path. On error nothing is left at path.
func WriteDemos(shop *env.Shop, cfg DemoConfig, path string) (DemoStats, error) {
	w, err := Create(path, WriterOptions{})
	if err != nil {
		return DemoStats{}, err
	}
	st, err := GenerateDemos(shop, cfg, func(ep []Step) error { return w.Write(ep...) })
	if err != nil {
		w.Abort()
		return st, err
	}
	return st, w.Close()
}
