package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"shopagent/bandit"
	"shopagent/env"
)

// Client calls a policy server over HTTP.
type Client struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8080.
	URL  string
	HTTP *http.Client
}

// NewClient returns a client of the server at url with a 30 s request timeout.
func NewClient(url string) *Client {
	return &Client{URL: strings.TrimRight(url, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// StatusError is a non-2xx reply of the server.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("server replied %d: %s", e.Code, e.Message) }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("serve client: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, body)
	if err != nil {
		return fmt.Errorf("serve client: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("serve client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("serve client: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e ErrorResponse
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("serve client: %s %s: %w", method, path, &StatusError{Code: resp.StatusCode, Message: e.Error})
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("serve client: %s %s: decode reply: %w", method, path, err)
		}
	}
	return nil
}

// Act calls POST /act.
func (c *Client) Act(ctx context.Context, req ActRequest) (ActResponse, error) {
	var out ActResponse
	err := c.do(ctx, http.MethodPost, "/act", req, &out)
	return out, err
}

// Feedback calls POST /feedback.
func (c *Client) Feedback(ctx context.Context, req FeedbackRequest) (FeedbackResponse, error) {
	var out FeedbackResponse
	err := c.do(ctx, http.MethodPost, "/feedback", req, &out)
	return out, err
}

// Arms calls GET /arms.
func (c *Client) Arms(ctx context.Context) (ArmsResponse, error) {
	var out ArmsResponse
	err := c.do(ctx, http.MethodGet, "/arms", nil, &out)
	return out, err
}

// WaitReady polls GET /readyz until the server is ready or ctx ends.
func (c *Client) WaitReady(ctx context.Context) error {
	for {
		err := c.do(ctx, http.MethodGet, "/readyz", nil, nil)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("serve client: server not ready: %w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DriveConfig configures Drive.
type DriveConfig struct {
	// Episodes per run and Runs. Runs against a server share its posteriors (the server
	// is not reset between runs); a run is a batch of episodes with its own goal draws.
	Episodes, Runs int
	// Concurrency is the number of sessions in flight (default 8).
	Concurrency int
	// Seed seeds the goal draws: episode goals are drawn like abtest.Run's, uniformly
	// with PCG(seed, 2 x run + 2).
	Seed uint64
	// ObsMode is the observation mode sent to the server (default text_rich, the mode of
	// trained policies).
	ObsMode env.ObsMode
	// MaxSteps is the environment's step cap (default 100, WebShop's).
	MaxSteps int
	// AgentMaxSteps is the client's own budget of server decisions per episode, after
	// which it finishes as the in-process policy agent does (default 15): it buys on a
	// product page, goes back from a sub-page, clicks the first product of a results
	// page. MaxItemActions caps the decisions on one product before buying (default 8).
	AgentMaxSteps, MaxItemActions int
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

// Drive plays simulator episodes through the server: on the search page the client
// searches the instruction (the server chooses clicks only); on every other page it
// posts the observation and the page's actions to /act and takes the returned action;
// at the end it posts the reward to /feedback with the session id. Each episode is a new
// session, so the server assigns its arm. It stops at the first error.
func (c *Client) Drive(ctx context.Context, shop *env.Shop, goals []env.Goal, cfg DriveConfig) ([]DrivenEpisode, error) {
	if shop == nil || len(goals) == 0 {
		return nil, errors.New("serve client: no shop or no goals")
	}
	if cfg.Episodes <= 0 || cfg.Runs <= 0 {
		return nil, fmt.Errorf("serve client: episodes (%d) and runs (%d) must be positive", cfg.Episodes, cfg.Runs)
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
	if cfg.AgentMaxSteps <= 0 {
		cfg.AgentMaxSteps = 15
	}
	if cfg.MaxItemActions <= 0 {
		cfg.MaxItemActions = 8
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
				ep, err := c.episode(ctx, e, goals[j.goal], sid, cfg)
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

func isNav(c string) bool {
	switch c {
	case env.ClickBackToSearch, env.ClickPrev, env.ClickNext, env.ClickBuyNow, env.ClickDescription,
		env.ClickFeatures, env.ClickReviews, env.ClickAttributes:
		return true
	}
	return false
}

// episode plays one goal through the server as session sid.
func (c *Client) episode(ctx context.Context, e *env.Env, g env.Goal, sid string, cfg DriveConfig) (DrivenEpisode, error) {
	obs := e.Reset(g)
	ep := DrivenEpisode{SessionID: sid}
	decisions, itemActions := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return ep, err
		}
		var action string
		over := decisions >= cfg.AgentMaxSteps
		switch {
		case obs.HasSearchBar:
			action = env.Search(obs.Instruction)
			itemActions = 0
		case obs.Page == env.PageItem && (over || itemActions >= cfg.MaxItemActions):
			action = env.Click(env.ClickBuyNow)
		case obs.Page != env.PageItem && obs.Page != env.PageResults && over:
			action = env.Click(env.ClickPrev)
		case obs.Page == env.PageResults && over:
			action = env.Click(env.ClickBackToSearch)
			for _, cl := range obs.Clickables {
				if !isNav(cl) {
					action = env.Click(cl)
					break
				}
			}
		default:
			actions := obs.Actions()
			if len(actions) == 0 {
				action = env.Click(env.ClickBackToSearch)
				break
			}
			resp, err := c.Act(ctx, ActRequest{SessionID: sid, Observation: obs.Text, AvailableActions: actions, Instruction: obs.Instruction})
			if err != nil {
				return ep, err
			}
			if resp.Index < 0 || resp.Index >= len(actions) || resp.Action != actions[resp.Index] {
				return ep, fmt.Errorf("server returned action %q at index %d, not one of the %d available", resp.Action, resp.Index, len(actions))
			}
			if ep.Arm == "" {
				ep.Arm = resp.Arm
			}
			action = resp.Action
			decisions++
			if obs.Page == env.PageResults {
				itemActions = 0
			} else {
				itemActions++
			}
		}
		next, r, done, info := e.Step(action)
		obs = next
		ep.Steps = info.Steps
		if done {
			ep.Reward, ep.Success, ep.Decisions = r, r >= bandit.SuccessThreshold, decisions
			break
		}
	}
	if decisions == 0 {
		return ep, nil // no decision was served: nothing to reward
	}
	fb, err := c.Feedback(ctx, FeedbackRequest{SessionID: sid, Reward: &ep.Reward})
	if err != nil {
		return ep, err
	}
	ep.Arm = fb.Arm
	return ep, nil
}
