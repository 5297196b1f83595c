package features

import "math"

// ChoiceScores are the policy's outputs for one state.
type ChoiceScores struct {
	// Logits and LogProbs are per action, in the example's order.
	Logits, LogProbs []float64
	// Value is the value head's estimate for the state.
	Value float64
}

// Best returns the index of the highest-scoring action (the first on ties).
func (s ChoiceScores) Best() int {
	best := 0
	for i, l := range s.Logits {
		if l > s.Logits[best] {
			best = i
		}
	}
	return best
}

// LogSoftmax returns the log-softmax of xs.
func LogSoftmax(xs []float64) []float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = max(m, x)
	}
	var s float64
	for _, x := range xs {
		s += math.Exp(x - m)
	}
	lse := m + math.Log(s)
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = x - lse
	}
	return out
}
