package train

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"shopagent/datasets"
	"shopagent/env"
	"shopagent/features"
	"shopagent/models"
)

// Policy evaluation: one episode per goal with PolicyAgents over a shared policy, WebShop's
// metrics (score = 100 x mean reward, success rate, mean steps), optional rollouts as
// trajectory rows (source rollout).

// EvalConfig configures EvaluatePolicy.
type EvalConfig struct {
	// Workers is the number of parallel episodes (0: 2 x GOMAXPROCS). Their forward
	// passes are batched together (BatchScorer) unless NoBatching.
	Workers int
	// NoBatching gives every worker direct calls to the policy (batch 1).
	NoBatching bool
	// Agent configures the agents; Agent.Seed + the goal index seeds each episode.
	Agent AgentConfig
	// Query proposes the searches (nil: features.KeywordQuery{}).
	Query features.QueryProposer
	// MaxSteps is the environment's step cap (0: 100, WebShop's).
	MaxSteps int
	// ObsMode overrides the observation mode (default: the policy's, else text_rich).
	ObsMode env.ObsMode
	// Record keeps each episode's transitions and returns trajectory rows.
	Record bool
	// PolicyName labels the rows' policy column.
	PolicyName string
	// GoalOffset is the index of goals[0] in the shop's goals (for the rows' goal ids).
	GoalOffset int
	// GoalIDs, when set (one per goal), are the goals' indices in the shop's goals
	// instead of GoalOffset + i: a shard of a split is not contiguous. Sampling seeds
	// follow the goal's index in its split (id - GoalOffset), so a sharded evaluation
	// plays the same episodes as an unsharded one.
	GoalIDs []int
	// Progress is called after each episode with the count done.
	Progress func(done int)
}

// EvalResult is the outcome of an evaluation.
type EvalResult struct {
	Episodes []env.Episode
	Summary  env.Summary
	// Rows are the trajectory rows when recording (episode order).
	Rows []datasets.Step
	// Forced counts actions chosen by the agents' safety caps; Errors counts episodes
	// where the policy failed to score (the agent then used a fallback).
	Forced, Errors int
	// FirstError is the first scoring error.
	FirstError error
	Elapsed    time.Duration
}

// EvaluatePolicy plays one episode per goal with the policy.
func EvaluatePolicy(shop *env.Shop, goals []env.Goal, policy *models.Policy, cfg EvalConfig) (*EvalResult, error) {
	if policy == nil {
		return nil, fmt.Errorf("train: evaluate: no policy")
	}
	if cfg.GoalIDs != nil && len(cfg.GoalIDs) != len(goals) {
		return nil, fmt.Errorf("train: evaluate: %d goal ids for %d goals", len(cfg.GoalIDs), len(goals))
	}
	mode := cfg.ObsMode
	if mode == "" {
		mode = env.ObsTextRich
		if policy.Config.ObsMode != "" {
			m, err := env.ParseObsMode(policy.Config.ObsMode)
			if err != nil {
				return nil, fmt.Errorf("train: evaluate: policy observation mode: %w", err)
			}
			mode = m
		}
	}
	maxSteps := cfg.MaxSteps
	if maxSteps <= 0 {
		maxSteps = 100
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	workers = min(workers, max(1, len(goals)))
	var scorer Scorer = policy
	if !cfg.NoBatching && workers > 1 {
		scorer = NewBatchScorer(policy, workers, 0)
	}
	name := cfg.PolicyName
	if name == "" {
		name = "policy"
	}
	start := time.Now()
	res := &EvalResult{Episodes: make([]env.Episode, len(goals))}
	rows := make([][]datasets.Step, len(goals))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := shop.NewEnv(env.Config{Mode: mode, MaxSteps: maxSteps})
			for i := range next {
				acfg := cfg.Agent
				gid := cfg.GoalOffset + i
				if cfg.GoalIDs != nil {
					gid = cfg.GoalIDs[i]
				}
				acfg.Seed = cfg.Agent.Seed + uint64(gid-cfg.GoalOffset)
				ag := NewPolicyAgent(scorer, cfg.Query, acfg)
				ep := env.RunEpisode(e, goals[i], ag, cfg.Record)
				ep.GoalIndex = i
				forced := 0
				for _, r := range ag.Steps() {
					if r.Forced {
						forced++
					}
				}
				var st []datasets.Step
				if cfg.Record {
					st = datasets.EpisodeSteps(ep, datasets.EpisodeMeta{
						ID:     fmt.Sprintf("%s-%06d", name, gid),
						Source: datasets.SourceRollout, Policy: name, GoalID: int64(gid),
					})
					recs := ag.Steps()
					for k := range st {
						if k < len(recs) {
							st[k].Logprob, st[k].Value, st[k].Forced = recs[k].LogProb(), recs[k].Value(), recs[k].Forced
						} else {
							st[k].Logprob, st[k].Value = math.NaN(), math.NaN()
						}
					}
					ep.Transitions = nil // the rows hold them
				}
				mu.Lock()
				res.Episodes[i] = ep
				rows[i] = st
				res.Forced += forced
				if err := ag.Err(); err != nil {
					res.Errors++
					if res.FirstError == nil {
						res.FirstError = err
					}
				}
				done++
				if cfg.Progress != nil {
					cfg.Progress(done)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range goals {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, r := range rows {
		res.Rows = append(res.Rows, r...)
	}
	res.Summary = env.Summarize(res.Episodes)
	res.Elapsed = time.Since(start)
	return res, nil
}

// QueryStats compares a QueryProposer's first queries with a shop's goals.
type QueryStats struct {
	// Goals is the number of goals checked; Top10 and Top50 the percentages whose goal
	// product is among the first 10 (the first results page) and 50 results.
	Goals int     `json:"goals"`
	Top10 float64 `json:"top10_pct"`
	Top50 float64 `json:"top50_pct"`
}

// EvaluateQueries searches the shop with the proposer's first query for each goal and
// reports how often the goal's product comes back in the top 10 and top 50.
func EvaluateQueries(shop *env.Shop, goals []env.Goal, q features.QueryProposer) QueryStats {
	st := QueryStats{Goals: len(goals)}
	if len(goals) == 0 {
		return st
	}
	var t10, t50 int
	for _, g := range goals {
		res := shop.Search(q.Queries(g.Instruction)[0], env.SearchReturnN, nil)
		for r, d := range res {
			if shop.Catalog.Products[d].ASIN == g.ASIN {
				if r < 10 {
					t10++
				}
				t50++
				break
			}
		}
	}
	st.Top10 = 100 * float64(t10) / float64(len(goals))
	st.Top50 = 100 * float64(t50) / float64(len(goals))
	return st
}

// QueryF1 compares a QueryProposer's first queries with human queries: for each
// instruction of refs (instruction -> human queries, like WebShop's goal_query_map.json)
// the best token F1 against its queries, averaged. It also returns the same measure for
// the instruction itself used as the query, as a baseline.
func QueryF1(refs map[string][]string, q features.QueryProposer) (f1, instructionF1 float64) {
	if len(refs) == 0 {
		return 0, 0
	}
	for ins, qs := range refs {
		p := q.Queries(ins)[0]
		var best, bestIns float64
		for _, r := range qs {
			best = max(best, features.QueryTokenF1(p, r))
			bestIns = max(bestIns, features.QueryTokenF1(ins, r))
		}
		f1 += best
		instructionF1 += bestIns
	}
	n := float64(len(refs))
	return f1 / n, instructionF1 / n
}
