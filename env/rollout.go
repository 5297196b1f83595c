package env

import (
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
)

// Agent chooses the next action from an observation. An agent never sees the
// environment's state beyond the observation.
type Agent interface {
	Act(obs Observation) string
}

// AgentFunc adapts a function to Agent.
type AgentFunc func(obs Observation) string

// Act calls f.
func (f AgentFunc) Act(obs Observation) string { return f(obs) }

// Transition is one step of an episode: the observation acted on, the action
// and the reward it earned.
type Transition struct {
	Obs    Observation
	Action string
	Reward float64
	Valid  bool
}

// Episode is the result of one rollout.
type Episode struct {
	GoalIndex int
	Goal      Goal
	Reward    float64
	Steps     int
	Purchase  *Purchase
	Truncated bool
	// Transitions is filled when recording is asked for.
	Transitions []Transition
}

// Success reports whether the episode earned the full reward.
func (ep Episode) Success() bool { return ep.Reward == 1 }

// RunEpisode plays one goal to the end (buy or step cap) with an agent.
// Set cfg.MaxSteps, or an agent that never buys runs forever.
func RunEpisode(e *Env, g Goal, a Agent, record bool) Episode {
	obs := e.Reset(g)
	ep := Episode{Goal: g}
	for {
		action := a.Act(obs)
		next, r, done, info := e.Step(action)
		if record {
			ep.Transitions = append(ep.Transitions, Transition{Obs: obs, Action: action, Reward: r, Valid: info.Valid})
		}
		obs = next
		ep.Steps = info.Steps
		if done {
			ep.Reward = r
			ep.Purchase = info.Purchase
			ep.Truncated = info.Truncated
			return ep
		}
	}
}

// Summary aggregates episodes as WebShop reports them.
type Summary struct {
	Episodes    int     `json:"episodes"`
	Score       float64 `json:"score"`        // 100 x mean reward
	SuccessRate float64 `json:"success_rate"` // percent of episodes with reward 1
	MeanSteps   float64 `json:"mean_steps"`
}

// Summarize computes score, success rate and mean steps.
func Summarize(eps []Episode) Summary {
	s := Summary{Episodes: len(eps)}
	if len(eps) == 0 {
		return s
	}
	var r, succ, steps float64
	for _, ep := range eps {
		r += ep.Reward
		steps += float64(ep.Steps)
		if ep.Success() {
			succ++
		}
	}
	n := float64(len(eps))
	s.Score, s.SuccessRate, s.MeanSteps = 100*r/n, 100*succ/n, steps/n
	return s
}

// Evaluate runs one episode per goal with workers goroutines (0 = GOMAXPROCS),
// each with its own Env and its own agent from newAgent(worker). Episodes come
// back in goal order; progress, when non-nil, is called after each episode.
func (s *Shop) Evaluate(goals []Goal, cfg Config, workers int, newAgent func(worker int) Agent, record bool, progress func(done int)) []Episode {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	eps := make([]Episode, len(goals))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			e := s.NewEnv(cfg)
			a := newAgent(w)
			for i := range next {
				eps[i] = RunEpisode(e, goals[i], a, record)
				eps[i].GoalIndex = i
				if progress != nil {
					mu.Lock()
					done++
					progress(done)
					mu.Unlock()
				}
			}
		}(w)
	}
	for i := range goals {
		next <- i
	}
	close(next)
	wg.Wait()
	return eps
}

// RuleAgent is WebShop's rule baseline: search the instruction, click the
// first result, buy.
type RuleAgent struct{}

// Act implements Agent.
func (RuleAgent) Act(obs Observation) string {
	switch obs.Page {
	case PageSearch:
		return Search(obs.Instruction)
	case PageResults:
		for _, c := range obs.Clickables {
			if c != ClickBackToSearch && c != ClickPrev && c != ClickNext {
				return Click(c)
			}
		}
		return Click(ClickBackToSearch)
	case PageItem:
		return Click(ClickBuyNow)
	default:
		return Click(ClickPrev)
	}
}

// RandomAgent walks the shop at random: on the search page it searches a few
// words of the instruction, elsewhere it clicks a random clickable (and
// searches again with probability SearchProb). It is the benchmark's load.
type RandomAgent struct {
	Rand       *rand.Rand
	SearchProb float64
}

// Act implements Agent.
func (a *RandomAgent) Act(obs Observation) string {
	if obs.HasSearchBar || (a.SearchProb > 0 && a.Rand.Float64() < a.SearchProb) {
		words := strings.Fields(obs.Instruction)
		if len(words) == 0 {
			return Search("shop")
		}
		lo := a.Rand.IntN(len(words))
		hi := min(len(words), lo+1+a.Rand.IntN(6))
		return Search(strings.Join(words[lo:hi], " "))
	}
	if len(obs.Clickables) == 0 {
		return Click(ClickBackToSearch)
	}
	return Click(obs.Clickables[a.Rand.IntN(len(obs.Clickables))])
}

// NewRandomAgent returns a RandomAgent with a seeded PCG source.
func NewRandomAgent(seed uint64, searchProb float64) *RandomAgent {
	return &RandomAgent{Rand: rand.New(rand.NewPCG(seed, 0x5eed)), SearchProb: searchProb}
}
