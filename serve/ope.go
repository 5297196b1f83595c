package serve

import (
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"sort"
	"strings"
)

// Off-policy evaluation of a new policy from the server's decision and reward logs.
//
// The estimand is the mean episode reward if the target policy had chosen every served
// action. An episode is a session's episode (session_id, episode) with its decisions in
// step order and its reward. The importance weight of an episode is the product over its
// steps of target probability / logged action_propensity (the probability with which the
// server chose the action given the arm). The arm-choice probability cancels: pooling the
// episodes of every arm, each weighted by its own arm's action propensities, is unbiased
// for the target (the target is extended to the arm choice with the logging allocation),
// so arm_propensity is logged but not used.
//
// Estimators, per episode i with weight W_i = prod_t rho_t, cumulative weights
// w_t = prod_{u<=t} rho_u (w_{-1} = 1) and reward R_i:
//
//	IPS   mean_i W_i R_i
//	SNIPS sum_i W_i R_i / sum_i W_i
//	DR    mean_i [ W_i R_i + sum_t (w_{t-1} - w_t) V(s_t) ]   (per-decision doubly robust,
//	      with the target's value head V as the direct-method model of every state's value)
//	DM    mean_i V(s_0)
//
// Clip > 0 caps every cumulative weight at Clip (biased, lower variance). Greedy logs
// (action_propensity 1) only support deterministic targets that agree with the logged
// actions: the weight is then the target's probability of the logged sequence, and IPS
// underestimates any target that puts mass elsewhere; serve with --sample for OPE.

// OPEConfig configures EvaluateOffPolicy.
type OPEConfig struct {
	// Clip caps the cumulative importance weights (0: no clipping).
	Clip float64
	// CI is "bootstrap" (default) or "normal".
	CI string
	// Bootstrap is the number of bootstrap resamples (default 1000).
	Bootstrap int
	// Level is the confidence level (default 0.95).
	Level float64
	// Seed seeds the bootstrap.
	Seed uint64
}

// Estimate is a point estimate with a confidence interval.
type Estimate struct {
	Value  float64 `json:"value"`
	StdErr float64 `json:"stderr"`
	Lo     float64 `json:"lo"`
	Hi     float64 `json:"hi"`
}

// OPEReport is the outcome of EvaluateOffPolicy.
type OPEReport struct {
	// Episodes used; Skipped episodes (no reward, missing steps, a zero propensity).
	Episodes int            `json:"episodes"`
	Skipped  map[string]int `json:"skipped,omitempty"`
	Steps    int            `json:"steps"`
	// Logged is the mean reward of the logged episodes (the logging system's value).
	Logged Estimate `json:"logged"`
	IPS    Estimate `json:"ips"`
	SNIPS  Estimate `json:"snips"`
	DR     Estimate `json:"dr"`
	DM     Estimate `json:"dm"`
	// ESS is the effective sample size (sum W)^2 / sum W^2; MaxWeight the largest W.
	ESS       float64 `json:"ess"`
	MaxWeight float64 `json:"max_weight"`
	MeanW     float64 `json:"mean_weight"`
	Clipped   int     `json:"clipped_episodes"`
	Clip      float64 `json:"clip,omitempty"`
	CI        string  `json:"ci"`
	Level     float64 `json:"level"`
	// Greedy is true when every logged action propensity is 1 (see the package notes).
	Greedy   bool     `json:"greedy_logs"`
	Warnings []string `json:"warnings,omitempty"`
}

// opeEpisode holds what the estimators need of one episode.
type opeEpisode struct {
	reward float64
	w      []float64 // cumulative weights w_0..w_{T-1}
	v      []float64 // target values V(s_0)..V(s_{T-1})
}

func (e opeEpisode) W() float64 { return e.w[len(e.w)-1] }

func (e opeEpisode) dr() float64 {
	out := e.W() * e.reward
	prev := 1.0
	for t := range e.w {
		out += (prev - e.w[t]) * e.v[t]
		prev = e.w[t]
	}
	return out
}

// EvaluateOffPolicy estimates the target's mean episode reward from logged decisions
// and rewards (see the notes above).
func EvaluateOffPolicy(decisions []DecisionRow, rewards []RewardRow, target Policy, cfg OPEConfig) (OPEReport, error) {
	if target == nil {
		return OPEReport{}, errors.New("serve: ope: no target policy")
	}
	if cfg.CI == "" {
		cfg.CI = "bootstrap"
	}
	if cfg.CI != "bootstrap" && cfg.CI != "normal" {
		return OPEReport{}, fmt.Errorf("serve: ope: unknown CI method %q (want bootstrap or normal)", cfg.CI)
	}
	if cfg.Bootstrap <= 0 {
		cfg.Bootstrap = 1000
	}
	if cfg.Level <= 0 || cfg.Level >= 1 {
		cfg.Level = 0.95
	}
	if cfg.Clip < 0 || math.IsNaN(cfg.Clip) {
		return OPEReport{}, fmt.Errorf("serve: ope: clip %g must be >= 0", cfg.Clip)
	}
	type key struct {
		session string
		episode int64
	}
	byEp := map[key][]DecisionRow{}
	for _, d := range decisions {
		k := key{d.SessionID, d.Episode}
		byEp[k] = append(byEp[k], d)
	}
	rew := map[key]RewardRow{}
	for _, r := range rewards {
		k := key{r.SessionID, r.Episode}
		if _, dup := rew[k]; !dup {
			rew[k] = r
		}
	}
	keys := make([]key, 0, len(byEp))
	for k := range byEp {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].session != keys[j].session {
			return keys[i].session < keys[j].session
		}
		return keys[i].episode < keys[j].episode
	})
	rep := OPEReport{Skipped: map[string]int{}, Clip: cfg.Clip, CI: cfg.CI, Level: cfg.Level, Greedy: true}
	var eps []opeEpisode
	for _, k := range keys {
		steps := byEp[k]
		r, ok := rew[k]
		if !ok {
			rep.Skipped["no reward"]++
			continue
		}
		sort.Slice(steps, func(i, j int) bool { return steps[i].Step < steps[j].Step })
		complete := true
		for i, d := range steps {
			if d.Step != int64(i) {
				complete = false
				break
			}
		}
		if !complete || (r.Steps > 0 && r.Steps != int64(len(steps))) {
			rep.Skipped["missing decisions"]++
			continue
		}
		ep := opeEpisode{reward: r.Reward, w: make([]float64, len(steps)), v: make([]float64, len(steps))}
		w, bad, clipped := 1.0, "", false
		for t, d := range steps {
			if !(d.ActionPropensity > 0) || d.ActionPropensity > 1 {
				bad = "bad propensity"
				break
			}
			if d.ActionIndex < 0 || int(d.ActionIndex) >= len(d.AvailableActions) {
				bad = "bad action index"
				break
			}
			if d.ActionPropensity != 1 {
				rep.Greedy = false
			}
			dec, err := target.Act(d.Instruction, d.Observation, d.AvailableActions)
			if err != nil {
				return OPEReport{}, fmt.Errorf("serve: ope: target policy on event %s: %w", d.EventID, err)
			}
			if err := checkDecision(dec, len(d.AvailableActions)); err != nil {
				return OPEReport{}, fmt.Errorf("serve: ope: target policy on event %s: %w", d.EventID, err)
			}
			w *= dec.Probabilities[d.ActionIndex] / d.ActionPropensity
			if cfg.Clip > 0 && w > cfg.Clip {
				w, clipped = cfg.Clip, true
			}
			ep.w[t], ep.v[t] = w, dec.Value
		}
		if bad != "" {
			rep.Skipped[bad]++
			continue
		}
		if clipped {
			rep.Clipped++
		}
		rep.Steps += len(steps)
		eps = append(eps, ep)
	}
	rep.Episodes = len(eps)
	if len(rep.Skipped) == 0 {
		rep.Skipped = nil
	}
	if len(eps) == 0 {
		return rep, errors.New("serve: ope: no complete rewarded episodes in the logs")
	}
	var sw, sw2 float64
	for _, e := range eps {
		W := e.W()
		sw += W
		sw2 += W * W
		rep.MaxWeight = math.Max(rep.MaxWeight, W)
	}
	rep.MeanW = sw / float64(len(eps))
	if sw2 > 0 {
		rep.ESS = sw * sw / sw2
	}
	if rep.Greedy {
		rep.Warnings = append(rep.Warnings, "every logged action_propensity is 1 (greedy serving): the weights only cover the logged actions; serve with --sample for unbiased estimates")
	}
	if rep.ESS < 0.01*float64(len(eps)) {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("effective sample size %.1f of %d episodes: the estimates are unreliable (try --clip)", rep.ESS, len(eps)))
	}

	estimators := []func([]opeEpisode) float64{
		func(es []opeEpisode) float64 { return meanOf(es, func(e opeEpisode) float64 { return e.reward }) },
		func(es []opeEpisode) float64 {
			return meanOf(es, func(e opeEpisode) float64 { return e.W() * e.reward })
		},
		snips,
		func(es []opeEpisode) float64 { return meanOf(es, opeEpisode.dr) },
		func(es []opeEpisode) float64 { return meanOf(es, func(e opeEpisode) float64 { return e.v[0] }) },
	}
	perEp := []func(opeEpisode) float64{
		func(e opeEpisode) float64 { return e.reward },
		func(e opeEpisode) float64 { return e.W() * e.reward },
		nil,
		opeEpisode.dr,
		func(e opeEpisode) float64 { return e.v[0] },
	}
	out := make([]Estimate, len(estimators))
	z := normalQuantile(0.5 + cfg.Level/2)
	var boots [][]float64
	if cfg.CI == "bootstrap" {
		rng := mrand.New(mrand.NewPCG(cfg.Seed, 0x6f7065))
		boots = make([][]float64, len(estimators))
		sample := make([]opeEpisode, len(eps))
		for b := 0; b < cfg.Bootstrap; b++ {
			for i := range sample {
				sample[i] = eps[rng.IntN(len(eps))]
			}
			for j, f := range estimators {
				boots[j] = append(boots[j], f(sample))
			}
		}
	}
	for j, f := range estimators {
		v := f(eps)
		var se float64
		if perEp[j] != nil {
			se = stdErr(eps, perEp[j])
		} else {
			// SNIPS by the delta method.
			m := rep.MeanW
			se = stdErr(eps, func(e opeEpisode) float64 { return e.W() * (e.reward - v) / m })
		}
		est := Estimate{Value: v, StdErr: se, Lo: v - z*se, Hi: v + z*se}
		if boots != nil {
			bs := boots[j]
			sort.Float64s(bs)
			est.Lo = quantileSorted(bs, (1-cfg.Level)/2)
			est.Hi = quantileSorted(bs, 1-(1-cfg.Level)/2)
			est.StdErr = sdOf(bs)
		}
		out[j] = est
	}
	rep.Logged, rep.IPS, rep.SNIPS, rep.DR, rep.DM = out[0], out[1], out[2], out[3], out[4]
	return rep, nil
}

func meanOf(es []opeEpisode, f func(opeEpisode) float64) float64 {
	s := 0.0
	for _, e := range es {
		s += f(e)
	}
	return s / float64(len(es))
}

func snips(es []opeEpisode) float64 {
	var num, den float64
	for _, e := range es {
		num += e.W() * e.reward
		den += e.W()
	}
	if den == 0 {
		return 0
	}
	return num / den
}

func stdErr(es []opeEpisode, f func(opeEpisode) float64) float64 {
	if len(es) < 2 {
		return 0
	}
	m := meanOf(es, f)
	ss := 0.0
	for _, e := range es {
		d := f(e) - m
		ss += d * d
	}
	return math.Sqrt(ss / float64(len(es)-1) / float64(len(es)))
}

func sdOf(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	m := 0.0
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	ss := 0.0
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss / float64(len(xs)-1))
}

func quantileSorted(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(xs)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(xs)-1)
	f := pos - float64(lo)
	return xs[lo]*(1-f) + xs[hi]*f
}

// normalQuantile is the standard normal quantile function (Acklam's approximation,
// relative error below 1.2e-9).
func normalQuantile(p float64) float64 {
	a := []float64{-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00}
	b := []float64{-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01}
	c := []float64{-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00}
	d := []float64{7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00}
	switch {
	case p <= 0:
		return math.Inf(-1)
	case p >= 1:
		return math.Inf(1)
	case p < 0.02425:
		q := math.Sqrt(-2 * math.Log(p))
		return (((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q + c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q + 1)
	case p > 1-0.02425:
		q := math.Sqrt(-2 * math.Log(1-p))
		return -(((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q + c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q + 1)
	default:
		q := p - 0.5
		r := q * q
		return (((((a[0]*r+a[1])*r+a[2])*r+a[3])*r+a[4])*r + a[5]) * q / (((((b[0]*r+b[1])*r+b[2])*r+b[3])*r+b[4])*r + 1)
	}
}

// Markdown renders the report as a table.
func (r OPEReport) Markdown(policy string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Off-policy evaluation of %s on %d logged episodes (%d decisions)\n\n", policy, r.Episodes, r.Steps)
	fmt.Fprintf(&b, "| estimator | value | %g%% CI (%s) | stderr |\n|---|---:|---:|---:|\n", 100*r.Level, r.CI)
	row := func(name string, e Estimate) {
		fmt.Fprintf(&b, "| %s | %.4f | [%.4f, %.4f] | %.4f |\n", name, e.Value, e.Lo, e.Hi, e.StdErr)
	}
	row("logged (behaviour)", r.Logged)
	row("IPS", r.IPS)
	row("SNIPS", r.SNIPS)
	row("DR", r.DR)
	row("DM (value head)", r.DM)
	fmt.Fprintf(&b, "\neffective sample size %.1f, mean weight %.3f, max weight %.3g", r.ESS, r.MeanW, r.MaxWeight)
	if r.Clip > 0 {
		fmt.Fprintf(&b, ", %d episodes clipped at %g", r.Clipped, r.Clip)
	}
	b.WriteString("\n")
	for k, n := range r.Skipped {
		fmt.Fprintf(&b, "skipped %d episodes: %s\n", n, k)
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}
