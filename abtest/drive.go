package abtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sync"

	"shopagent/agent"
	"shopagent/bandit"
	"shopagent/env"
	"shopagent/features"
	"shopagent/serve"
)

// The HTTP driver: the A/B test through a running policy server. Each simulator episode
// is a new session whose arm the server assigns; the decision core (package agent, the
// same as evaluation's and the rollouts') plays it, asking the server's POST /act to
// choose on every page it lets the policy choose on, and posts the reward to
// /feedback at the end.

// DriveConfig configures Drive.
type DriveConfig struct {
	// Episodes per run and Runs. Runs against a server share its posteriors (the server
	// is not reset between runs); a run is a batch of episodes with its own goal draws.
	Episodes, Runs int
	// Concurrency is the number of sessions in flight (default 8).
	Concurrency int
	// Seed seeds the goal draws: episode goals are drawn like Run's, uniformly with
	// PCG(seed, 2 x run + 2).
	Seed uint64
	// ObsMode is the observation mode sent to the server (default text_rich, the mode of
	// trained policies).
	ObsMode env.ObsMode
	// MaxSteps is the environment's step cap (default 100, WebShop's).
	MaxSteps int
	// Agent configures the decision core: its budgets (AgentMaxSteps, MaxItemActions)
	// and query proposer. The server samples or takes the argmax by its own setting;
	// the core's budget rule asks it for the argmax.
	Agent agent.Config
	// SessionPrefix prefixes the session ids (default "abtest-" and random hex, so a
	// second test never reuses the sticky sessions of a first).
	SessionPrefix string
	// Progress, when non-nil, is called after each episode.
	Progress func(done, total int)
}

// DrivenEpisode is one episode played through the server.
type DrivenEpisode struct {
	Run, Index, Goal int
	SessionID, Arm   string
	Reward           float64
	Success          bool
	// Steps are environment steps; Decisions the /act calls among them.
	Steps, Decisions int
}

// serverChooser lets the policy server choose: POST /act with the offered actions.
type serverChooser struct {
	ctx       context.Context
	client    *serve.Client
	session   string
	arm       string
	decisions int
}

// Choose implements agent.Chooser.
func (c *serverChooser) Choose(ch agent.Choice, greedy bool, force int, rng *mrand.Rand) (int, features.ChoiceScores, error) {
	resp, err := c.client.Act(c.ctx, serve.ActRequest{SessionID: c.session, Observation: ch.Obs.Text,
		AvailableActions: ch.Actions, Instruction: ch.Obs.Instruction, Greedy: greedy})
	if err != nil {
		return -1, features.ChoiceScores{}, err
	}
	if resp.Index < 0 || resp.Index >= len(ch.Actions) || resp.Action != ch.Actions[resp.Index] || len(resp.Probabilities) != len(ch.Actions) {
		return -1, features.ChoiceScores{}, fmt.Errorf("server returned action %q at index %d, not one of the %d offered", resp.Action, resp.Index, len(ch.Actions))
	}
	if c.arm == "" {
		c.arm = resp.Arm
	}
	c.decisions++
	s := features.ChoiceScores{Logits: make([]float64, len(resp.Probabilities)), LogProbs: make([]float64, len(resp.Probabilities)), Value: resp.Value}
	for i, p := range resp.Probabilities {
		s.LogProbs[i] = math.Log(p)
		s.Logits[i] = s.LogProbs[i]
	}
	if force >= 0 {
		return force, s, nil
	}
	return resp.Index, s, nil
}

// Drive plays simulator episodes through the server (see the file comment). It stops
// at the first error.
func Drive(ctx context.Context, client *serve.Client, shop *env.Shop, goals []env.Goal, cfg DriveConfig) ([]DrivenEpisode, error) {
	if client == nil || shop == nil || len(goals) == 0 {
		return nil, errors.New("abtest: drive: no server, shop or goals")
	}
	if cfg.Episodes <= 0 || cfg.Runs <= 0 {
		return nil, fmt.Errorf("abtest: drive: episodes (%d) and runs (%d) must be positive", cfg.Episodes, cfg.Runs)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.ObsMode == "" {
		cfg.ObsMode = env.ObsTextRich
	}
	if cfg.MaxSteps <= 0 {
		cfg.MaxSteps = 100
	}
	if cfg.SessionPrefix == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		cfg.SessionPrefix = "abtest-" + hex.EncodeToString(b[:])
	}
	type job struct{ run, index, goal int }
	var jobs []job
	for r := 0; r < cfg.Runs; r++ {
		rng := mrand.New(mrand.NewPCG(cfg.Seed, uint64(2*r+2)))
		for i := 0; i < cfg.Episodes; i++ {
			jobs = append(jobs, job{r, i, rng.IntN(len(goals))})
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]DrivenEpisode, len(jobs))
	ok := make([]bool, len(jobs))
	next := make(chan int)
	var mu sync.Mutex
	var firstErr error
	done := 0
	var wg sync.WaitGroup
	for w := 0; w < min(cfg.Concurrency, len(jobs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := shop.NewEnv(env.Config{Mode: cfg.ObsMode, MaxSteps: cfg.MaxSteps})
			for i := range next {
				j := jobs[i]
				sid := fmt.Sprintf("%s-r%d-e%d", cfg.SessionPrefix, j.run, j.index)
				ep, err := driveEpisode(ctx, client, e, goals[j.goal], sid, cfg.Agent)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = fmt.Errorf("run %d episode %d: %w", j.run, j.index, err)
						cancel()
					}
				} else {
					ep.Run, ep.Index, ep.Goal = j.run, j.index, j.goal
					out[i], ok[i] = ep, true
					done++
					if cfg.Progress != nil {
						cfg.Progress(done, len(jobs))
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range jobs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	var eps []DrivenEpisode
	for i := range out {
		if ok[i] {
			eps = append(eps, out[i])
		}
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return eps, firstErr
}

// driveEpisode plays one goal through the server as session sid.
func driveEpisode(ctx context.Context, client *serve.Client, e *env.Env, g env.Goal, sid string, acfg agent.Config) (DrivenEpisode, error) {
	ch := &serverChooser{ctx: ctx, client: client, session: sid}
	acfg.Sample = true // the server picks by its own setting (greedy is asked for only by the budget rule)
	acfg.ScoreForced = false
	core := agent.New(ch, acfg)
	obs := e.Reset(g)
	ep := DrivenEpisode{SessionID: sid}
	for {
		if err := ctx.Err(); err != nil {
			return ep, err
		}
		st := core.Next(obs)
		if err := core.Err(); err != nil {
			return ep, err
		}
		next, r, done, info := e.Step(st.Action)
		obs = next
		ep.Steps = info.Steps
		if done {
			ep.Reward, ep.Success = r, r >= bandit.SuccessThreshold
			break
		}
	}
	ep.Decisions, ep.Arm = ch.decisions, ch.arm
	if ch.decisions == 0 {
		return ep, nil // no decision was served: nothing to reward
	}
	fb, err := client.Feedback(ctx, serve.FeedbackRequest{SessionID: sid, Reward: &ep.Reward})
	if err != nil {
		return ep, err
	}
	ep.Arm = fb.Arm
	return ep, nil
}
