package train

import (
	"fmt"
	"math/rand/v2"

	"shopagent/datasets"
	"shopagent/env"
)

// Generated demonstrations: roll out a policy on goals with sampling and keep the episodes
// that earned the full reward (1.0), as trajectory rows of source "generated" (for DPO or
// another round of imitation). With PruneLoops the kept episodes lose their loops (a search
// that came back to the search page, a product left with "< prev" for the same results
// page, a sub-page read and left): WebShop's paper suggests this clean-up of its IL data.

// GenerateConfig configures Generate.
type GenerateConfig struct {
	// Keep stops after this many kept episodes (0: no limit).
	Keep int
	// MaxEpisodes stops after this many episodes played (0: one pass over the goals).
	MaxEpisodes int
	// Seed orders the goals (a seeded shuffle, cycled) and seeds the sampling.
	Seed uint64
	// PruneLoops removes loops from the kept episodes.
	PruneLoops bool
	// Rollout configures the agent (sampling unless Greedy; Record is set).
	Rollout RolloutConfig
	// Chunk is the number of episodes played at the same time (0: 16).
	Chunk int
	// PolicyName labels the rows; GoalOffset is the index of goals[0] in the shop's goals.
	PolicyName string
	GoalOffset int
	// Progress, when set, is called after each chunk with the episodes played and kept.
	Progress func(played, kept int) `json:"-"`
	// Stop, when set, is asked before each chunk whether to stop (a deadline, a signal).
	Stop func() bool `json:"-"`
}

// GenerateStats sums up a generation run.
type GenerateStats struct {
	Played, Kept int
	// Steps is the number of rows written; Pruned the steps removed as loops.
	Steps, Pruned int
	// Summary is WebShop's summary of all episodes played.
	Summary env.Summary
}

// Generate rolls out the policy behind scorer on goals and passes each kept episode's rows
// to fn.
func Generate(shop *env.Shop, goals []env.Goal, scorer Scorer, cfg GenerateConfig, fn func(rows []datasets.Step) error) (GenerateStats, error) {
	var st GenerateStats
	if len(goals) == 0 {
		return st, fmt.Errorf("%w: no goals", ErrNoData)
	}
	maxEp := cfg.MaxEpisodes
	if maxEp <= 0 {
		maxEp = len(goals)
	}
	chunk := cfg.Chunk
	if chunk <= 0 {
		chunk = 16
	}
	name := cfg.PolicyName
	if name == "" {
		name = "policy"
	}
	rc := cfg.Rollout
	rc.Record = true
	order := rand.New(rand.NewPCG(cfg.Seed, 0x67656e)).Perm(len(goals))
	var all []env.Episode
	for st.Played < maxEp && (cfg.Keep <= 0 || st.Kept < cfg.Keep) && (cfg.Stop == nil || !cfg.Stop()) {
		n := min(chunk, maxEp-st.Played)
		idx := make([]int, n)
		for i := range idx {
			idx[i] = order[(st.Played+i)%len(order)]
		}
		b, err := CollectRollouts(shop, goals, idx, scorer, nil, rc, cfg.Seed^uint64(st.Played)<<24)
		if err != nil {
			return st, err
		}
		for i, ep := range b.Episodes {
			all = append(all, ep.Episode)
			if !ep.Episode.Success() || (cfg.Keep > 0 && st.Kept >= cfg.Keep) {
				continue
			}
			rows := datasets.EpisodeSteps(ep.Episode, datasets.EpisodeMeta{
				ID:     fmt.Sprintf("generated-%s-%07d", name, st.Played+i),
				Source: datasets.SourceGenerated, Policy: name, GoalID: int64(cfg.GoalOffset + ep.GoalIndex),
			})
			for k := range rows {
				if k < len(ep.Steps) {
					rows[k].Logprob, rows[k].Value, rows[k].Forced = ep.Steps[k].LogProb, ep.Steps[k].Value, ep.Steps[k].Forced
				}
			}
			if cfg.PruneLoops {
				before := len(rows)
				rows = PruneLoops(rows)
				st.Pruned += before - len(rows)
			}
			st.Kept++
			st.Steps += len(rows)
			if err := fn(rows); err != nil {
				return st, err
			}
		}
		st.Played += n
		if cfg.Progress != nil {
			cfg.Progress(st.Played, st.Kept)
		}
	}
	st.Summary = env.Summarize(all)
	return st, nil
}

// PruneLoops removes the loops of an episode's rows: whenever a step's page (kind and
// observation text) is one an earlier kept step acted on, the steps from that earlier step
// up to this one are dropped (they led back to the same page): search -> results -> back
// to search -> search page, results -> item -> "< prev" -> the same results page, item ->
// description -> "< prev" -> the same item page. Steps are renumbered; the log-probability
// and value of a step whose predecessors changed are kept (they describe the state, which
// is the same). The last row (the purchase) is always kept.
func PruneLoops(rows []datasets.Step) []datasets.Step {
	var out []datasets.Step
	seen := map[string]int{}
	for _, r := range rows {
		key := r.Page + "\x00" + r.Observation
		if k, ok := seen[key]; ok {
			for _, d := range out[k:] {
				delete(seen, d.Page+"\x00"+d.Observation)
			}
			out = out[:k]
		}
		seen[key] = len(out)
		out = append(out, r)
	}
	for i := range out {
		out[i].Step = int32(i)
		out[i].Done = i == len(out)-1
	}
	return out
}
