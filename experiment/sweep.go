package experiment

import (
	"fmt"
	"strconv"
	"strings"

	"shopagent/train"
)

// Trial is one configuration of the dev-split sweep: a method and the hyperparameters
// it changes (zero: the method's configuration as it is).
type Trial struct {
	// Method is il-cont, pg, ppo or dpo (dpo's choice also serves dpo-gen, the
	// self-generation rounds and dpo-webshop).
	Method string `json:"method"`
	// LR is the (constant) learning rate.
	LR float64 `json:"lr,omitempty"`
	// Beta is DPO's beta.
	Beta float64 `json:"beta,omitempty"`
}

// DefaultSweep returns the sweep's trials: two learning rates per method, DPO's at
// beta 0.1 (the paper's). Fine-tuning for a few minutes on a CPU makes few updates, so
// the learning rate is the hyperparameter that matters most there.
func DefaultSweep() []Trial {
	return []Trial{
		{Method: MethodILCont, LR: 1e-4}, {Method: MethodILCont, LR: 3e-4},
		{Method: MethodPG, LR: 3e-5}, {Method: MethodPG, LR: 1e-4},
		{Method: MethodPPO, LR: 3e-5}, {Method: MethodPPO, LR: 1e-4},
		{Method: MethodDPO, LR: 5e-5, Beta: 0.1}, {Method: MethodDPO, LR: 2e-4, Beta: 0.1},
	}
}

func (t Trial) validate() error {
	switch t.Method {
	case MethodILCont, MethodPG, MethodPPO, MethodDPO:
	default:
		return fmt.Errorf("experiment: sweep: %q is not a method the sweep tunes (il-cont, pg, ppo, dpo)", t.Method)
	}
	if t.LR < 0 || t.Beta < 0 || (t.Beta > 0 && t.Method != MethodDPO) {
		return fmt.Errorf("experiment: sweep: bad trial %+v", t)
	}
	return nil
}

// String names the trial.
func (t Trial) String() string {
	s := t.Method
	if t.LR > 0 {
		s += fmt.Sprintf(" lr %g", t.LR)
	}
	if t.Beta > 0 {
		s += fmt.Sprintf(" beta %g", t.Beta)
	}
	return s
}

// apply sets the trial's learning rate on a run's options.
func (t Trial) apply(o train.RunOptions) train.RunOptions {
	if t.LR > 0 {
		o.LR = t.LR
	}
	return o
}

// SweepResult is one trial's dev-split evaluation.
type SweepResult struct {
	Trial Trial `json:"trial"`
	// Index is the trial's position in Config.Sweep.
	Index      int        `json:"index"`
	Dev        EvalResult `json:"dev"`
	StageWallS float64    `json:"stage_wall_s"`
	// Selected marks the trial chosen for its method.
	Selected bool   `json:"selected"`
	Error    string `json:"error,omitempty"`
}

// selectTrials picks each method's trial with the highest dev score (ties: the higher
// success rate, then the earlier trial). Failed trials are never chosen.
func selectTrials(rs []SweepResult) map[string]Trial {
	best := map[string]SweepResult{}
	for _, r := range rs {
		if r.Error != "" {
			continue
		}
		b, ok := best[r.Trial.Method]
		if !ok || r.Dev.Score > b.Dev.Score || (r.Dev.Score == b.Dev.Score && r.Dev.SuccessRate > b.Dev.SuccessRate) {
			best[r.Trial.Method] = r
		}
	}
	out := map[string]Trial{}
	for m, r := range best {
		out[m] = r.Trial
	}
	return out
}

// ParseSweep parses trials written method:lr[:beta], comma-separated (e.g.
// "pg:1e-4,dpo:5e-5:0.1"); an empty string is no sweep.
func ParseSweep(s string) ([]Trial, error) {
	var out []Trial
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		parts := strings.Split(f, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("experiment: sweep trial %q: want method:lr[:beta]", f)
		}
		t := Trial{Method: parts[0]}
		var err error
		if t.LR, err = strconv.ParseFloat(parts[1], 64); err != nil || !(t.LR > 0) {
			return nil, fmt.Errorf("experiment: sweep trial %q: bad learning rate", f)
		}
		if len(parts) == 3 {
			if t.Beta, err = strconv.ParseFloat(parts[2], 64); err != nil || !(t.Beta > 0) {
				return nil, fmt.Errorf("experiment: sweep trial %q: bad beta", f)
			}
		}
		if err := t.validate(); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// FormatSweep writes trials the way ParseSweep reads them.
func FormatSweep(ts []Trial) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.Method + ":" + strconv.FormatFloat(t.LR, 'g', -1, 64)
		if t.Beta > 0 {
			parts[i] += ":" + strconv.FormatFloat(t.Beta, 'g', -1, 64)
		}
	}
	return strings.Join(parts, ",")
}
