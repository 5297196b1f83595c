package train

import (
	"fmt"
	"math"
	"strings"
)

// Learning-rate decay shapes after the warm-up.
const (
	DecayLinear   = "linear"
	DecayCosine   = "cosine"
	DecayConstant = "constant"
)

// Schedule is a learning-rate schedule: a linear warm-up from 0 to Peak over Warmup steps,
// then a linear or cosine decay to MinRatio x Peak at step Total (or a constant Peak).
type Schedule struct {
	// Peak is the learning rate at the end of the warm-up.
	Peak float64
	// Warmup is the number of warm-up steps (0 starts at Peak).
	Warmup int64
	// Total is the step at which the decay reaches its floor (normally the run's steps).
	Total int64
	// Decay is DecayLinear (default), DecayCosine or DecayConstant.
	Decay string
	// MinRatio is the floor of the decay as a fraction of Peak (0 decays to 0).
	MinRatio float64
}

// Validate reports whether the schedule is usable.
func (s Schedule) Validate() error {
	switch {
	case !(s.Peak > 0) || math.IsInf(s.Peak, 0):
		return fmt.Errorf("train: learning rate %g must be positive", s.Peak)
	case s.Warmup < 0:
		return fmt.Errorf("train: warm-up %d must not be negative", s.Warmup)
	case s.MinRatio < 0 || s.MinRatio > 1:
		return fmt.Errorf("train: minimum learning-rate ratio %g not in [0, 1]", s.MinRatio)
	}
	switch strings.ToLower(s.Decay) {
	case "", DecayLinear, DecayCosine, DecayConstant:
	default:
		return fmt.Errorf("train: unknown decay %q (want %s, %s or %s)", s.Decay, DecayLinear, DecayCosine, DecayConstant)
	}
	return nil
}

// At returns the learning rate of the update with 0-based index step.
func (s Schedule) At(step int64) float64 {
	if s.Warmup > 0 && step < s.Warmup {
		return s.Peak * float64(step+1) / float64(s.Warmup)
	}
	decay := strings.ToLower(s.Decay)
	if decay == DecayConstant || s.Total <= s.Warmup {
		return s.Peak
	}
	frac := float64(step-s.Warmup) / float64(s.Total-s.Warmup)
	frac = min(max(frac, 0), 1)
	floor := s.Peak * s.MinRatio
	if decay == DecayCosine {
		return floor + (s.Peak-floor)*0.5*(1+math.Cos(math.Pi*frac))
	}
	return s.Peak - (s.Peak-floor)*frac
}
