// Package bandit holds the multi-armed bandit engine shared by the in-process A/B test
// (`shopagent abtest`) and the policy server: per-arm reward statistics, Beta posteriors
// of the success probability, Thompson sampling with a minimum traffic share, fixed
// canary weights, and the probability that each arm is the best.
//
// An episode (a session) is a success when its reward is at least SuccessThreshold (a
// WebShop score of 1.0: the purchase matched every attribute, option and the price).
// The posterior of an arm's success probability is Beta(prior.Alpha + successes,
// prior.Beta + failures).
package bandit

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"
)

// SuccessThreshold is the reward at or above which an episode counts as a success.
const SuccessThreshold = 1.0 - 1e-9

// Prior is the Beta prior of every arm's success probability.
type Prior struct {
	Alpha, Beta float64
}

// UniformPrior is Beta(1, 1).
var UniformPrior = Prior{Alpha: 1, Beta: 1}

// ArmState is the running record of one arm: episodes rewarded, successes and the sums
// of the scores (rewards in [0, 1]) and of their squares.
type ArmState struct {
	Name       string  `json:"name"`
	Episodes   int64   `json:"episodes"`
	Successes  int64   `json:"successes"`
	ScoreSum   float64 `json:"score_sum"`
	ScoreSqSum float64 `json:"score_sq_sum"`
}

// Observe adds one rewarded episode.
func (a *ArmState) Observe(reward float64) {
	a.Episodes++
	if reward >= SuccessThreshold {
		a.Successes++
	}
	a.ScoreSum += reward
	a.ScoreSqSum += reward * reward
}

// MeanScore is the mean reward (0 with no episodes).
func (a ArmState) MeanScore() float64 {
	if a.Episodes == 0 {
		return 0
	}
	return a.ScoreSum / float64(a.Episodes)
}

// ScoreStdErr is the standard error of the mean reward.
func (a ArmState) ScoreStdErr() float64 {
	if a.Episodes < 2 {
		return 0
	}
	n := float64(a.Episodes)
	m := a.ScoreSum / n
	v := (a.ScoreSqSum - n*m*m) / (n - 1)
	if v < 0 {
		v = 0
	}
	return math.Sqrt(v / n)
}

// SuccessRate is successes / episodes (0 with no episodes).
func (a ArmState) SuccessRate() float64 {
	if a.Episodes == 0 {
		return 0
	}
	return float64(a.Successes) / float64(a.Episodes)
}

// Posterior returns the Beta posterior parameters of the arm's success probability.
func (a ArmState) Posterior(p Prior) (alpha, beta float64) {
	return p.Alpha + float64(a.Successes), p.Beta + float64(a.Episodes-a.Successes)
}

// PosteriorMean is alpha / (alpha + beta) of the posterior.
func (a ArmState) PosteriorMean(p Prior) float64 {
	al, be := a.Posterior(p)
	return al / (al + be)
}

// SampleBeta draws from Beta(alpha, beta) with rng.
func SampleBeta(rng *rand.Rand, alpha, beta float64) float64 {
	return distuv.Beta{Alpha: alpha, Beta: beta, Src: rng}.Rand()
}

// Thompson chooses arms by Thompson sampling on the Beta posteriors of success, with a
// floor on each arm's share of traffic: with probability MinShare x (number of arms) the
// arm is drawn uniformly, otherwise the arm with the largest posterior draw wins, so every
// arm keeps at least MinShare of the traffic.
type Thompson struct {
	Prior    Prior
	MinShare float64
}

// Validate checks the prior and the minimum share.
func (t Thompson) Validate(numArms int) error {
	if t.Prior.Alpha <= 0 || t.Prior.Beta <= 0 {
		return fmt.Errorf("bandit: prior Beta(%g, %g) needs positive parameters", t.Prior.Alpha, t.Prior.Beta)
	}
	if t.MinShare < 0 || (numArms > 0 && t.MinShare*float64(numArms) > 1) {
		return fmt.Errorf("bandit: minimum share %g per arm is impossible with %d arms", t.MinShare, numArms)
	}
	return nil
}

// Choose returns the index of the chosen arm (arms must not be empty).
func (t Thompson) Choose(arms []ArmState, rng *rand.Rand) int {
	if len(arms) == 1 {
		return 0
	}
	if t.MinShare > 0 && rng.Float64() < t.MinShare*float64(len(arms)) {
		return rng.IntN(len(arms))
	}
	best, bestDraw := 0, -1.0
	for i, a := range arms {
		al, be := a.Posterior(t.Prior)
		if d := SampleBeta(rng, al, be); d > bestDraw {
			best, bestDraw = i, d
		}
	}
	return best
}

// Canary chooses arms with fixed weights (normalised to sum 1).
type Canary struct {
	Weights []float64
}

// NewCanary checks and normalises the weights (one per arm, non-negative, not all 0).
func NewCanary(weights []float64) (Canary, error) {
	sum := 0.0
	for _, w := range weights {
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return Canary{}, fmt.Errorf("bandit: canary weight %g is not a finite non-negative number", w)
		}
		sum += w
	}
	if sum == 0 {
		return Canary{}, errors.New("bandit: canary weights sum to 0")
	}
	out := make([]float64, len(weights))
	for i, w := range weights {
		out[i] = w / sum
	}
	return Canary{Weights: out}, nil
}

// Choose returns an arm index drawn with the canary weights.
func (c Canary) Choose(rng *rand.Rand) int {
	u := rng.Float64()
	for i, w := range c.Weights {
		if u < w {
			return i
		}
		u -= w
	}
	return len(c.Weights) - 1
}

// ProbBest estimates, for each arm, the posterior probability that its success
// probability is the largest, from draws joint Monte Carlo samples (ties go to the
// first arm). With no arms it returns nil.
func ProbBest(arms []ArmState, p Prior, draws int, rng *rand.Rand) []float64 {
	if len(arms) == 0 {
		return nil
	}
	if draws <= 0 {
		draws = 10000
	}
	wins := make([]float64, len(arms))
	for d := 0; d < draws; d++ {
		best, bestDraw := 0, -1.0
		for i, a := range arms {
			al, be := a.Posterior(p)
			if x := SampleBeta(rng, al, be); x > bestDraw {
				best, bestDraw = i, x
			}
		}
		wins[best]++
	}
	for i := range wins {
		wins[i] /= float64(draws)
	}
	return wins
}
