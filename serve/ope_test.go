package serve

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"shopagent/serve/decisionlog"
)

// synthLogs logs n two-step episodes of a behaviour policy through a LogWriter and
// reads them back. Each step offers red, blue and green; the episode's reward is the
// share of its steps that chose red, so the true value of any policy is the mean over
// the steps of its probability of red.
func synthLogs(t *testing.T, n int, behave Policy) ([]DecisionRow, []RewardRow) {
	t.Helper()
	dir := t.TempDir()
	w, err := decisionlog.Open(decisionlog.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	ts := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		sid := fmt.Sprintf("e%d", i)
		reds := 0
		for s := 0; s < 2; s++ {
			obs := synthObs[s]
			d, err := behave.Act(synthInstruction, obs, synthActions)
			if err != nil {
				t.Fatal(err)
			}
			u, k := rng.Float64(), len(d.Probabilities)-1
			for j, p := range d.Probabilities {
				if u < p {
					k = j
					break
				}
				u -= p
			}
			if k == 0 {
				reds++
			}
			p32 := make([]float32, len(d.Probabilities))
			for j, p := range d.Probabilities {
				p32[j] = float32(p)
			}
			w.Decision(DecisionRow{EventID: fmt.Sprintf("%s-%d", sid, s), TS: ts, SessionID: sid, Step: int64(s), Arm: "behave",
				Instruction: synthInstruction, Observation: obs, AvailableActions: synthActions, Action: synthActions[k],
				ActionIndex: int32(k), Probabilities: p32, Propensity: d.Probabilities[k], ActionPropensity: d.Probabilities[k],
				ArmPropensity: 1, Sampled: true, Value: d.Value})
		}
		r := float64(reds) / 2
		w.Reward(RewardRow{EventID: sid + "-1", SessionID: sid, Arm: "behave", TS: ts, Reward: r, Success: r == 1, Steps: 2, Source: "feedback"})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	decs, err := decisionlog.ReadDecisions(dir)
	if err != nil {
		t.Fatal(err)
	}
	rews, err := decisionlog.ReadRewards(dir)
	if err != nil {
		t.Fatal(err)
	}
	return decs, rews
}

var (
	synthInstruction = "buy a red mug"
	synthObs         = []string{"results: a mug in red, blue or green", "item page: red mug"}
	synthActions     = []string{"click[red]", "click[blue]", "click[green]"}
)

func trueValue(t *testing.T, p Policy) float64 {
	v := 0.0
	for _, obs := range synthObs {
		d, err := p.Act(synthInstruction, obs, synthActions)
		if err != nil {
			t.Fatal(err)
		}
		v += d.Probabilities[0] / 2
	}
	return v
}

func TestOPESyntheticKnownValue(t *testing.T) {
	behave, _ := NewLexicalPolicy(LexicalConfig{Name: "behave", Temperature: 1, Bonus: map[string]float64{"blue": 1}})
	target, _ := NewLexicalPolicy(LexicalConfig{Name: "target", Temperature: 0.7, Bonus: map[string]float64{"red": 1}})
	decs, rews := synthLogs(t, 3000, behave)
	truth, logged := trueValue(t, target), trueValue(t, behave)
	if math.Abs(truth-logged) < 0.2 {
		t.Fatalf("test design: target %g and behaviour %g values are too close", truth, logged)
	}
	for _, ci := range []string{"normal", "bootstrap"} {
		rep, err := EvaluateOffPolicy(decs, rews, target, OPEConfig{CI: ci, Bootstrap: 300, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Episodes != 3000 || rep.Steps != 6000 || rep.Greedy {
			t.Fatalf("%s: report %+v", ci, rep)
		}
		if math.Abs(rep.Logged.Value-logged) > 4*rep.Logged.StdErr {
			t.Fatalf("logged value %g, behaviour's true value %g", rep.Logged.Value, logged)
		}
		for name, e := range map[string]Estimate{"IPS": rep.IPS, "SNIPS": rep.SNIPS, "DR": rep.DR} {
			if math.Abs(e.Value-truth) > 4*e.StdErr || e.StdErr <= 0 || e.StdErr > 0.05 {
				t.Errorf("%s %s = %g ± %g, true value %g", ci, name, e.Value, e.StdErr, truth)
			}
			if !(e.Lo < e.Value && e.Value < e.Hi) || e.Hi-e.Lo > 0.2 {
				t.Errorf("%s %s interval [%g, %g] around %g", ci, name, e.Lo, e.Hi, e.Value)
			}
		}
		if rep.ESS <= 0 || rep.ESS > 3000 || math.Abs(rep.MeanW-1) > 0.1 {
			t.Errorf("%s: ESS %g, mean weight %g", ci, rep.ESS, rep.MeanW)
		}
		t.Logf("%s: truth %.4f logged %.4f IPS %.4f [%.4f, %.4f] SNIPS %.4f DR %.4f [%.4f, %.4f] ESS %.0f",
			ci, truth, rep.Logged.Value, rep.IPS.Value, rep.IPS.Lo, rep.IPS.Hi, rep.SNIPS.Value, rep.DR.Value, rep.DR.Lo, rep.DR.Hi, rep.ESS)
	}
	// Evaluating the behaviour policy itself: every weight is 1.
	self, err := EvaluateOffPolicy(decs, rews, behave, OPEConfig{CI: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(self.IPS.Value-self.Logged.Value) > 1e-6 || math.Abs(self.MaxWeight-1) > 1e-6 {
		t.Fatalf("self-evaluation: IPS %g, logged %g, max weight %g", self.IPS.Value, self.Logged.Value, self.MaxWeight)
	}
	// Clipping caps the weights.
	clipped, err := EvaluateOffPolicy(decs, rews, target, OPEConfig{CI: "normal", Clip: 1.5})
	if err != nil {
		t.Fatal(err)
	}
	if clipped.MaxWeight > 1.5+1e-12 || clipped.Clipped == 0 {
		t.Fatalf("clip 1.5: max weight %g, %d clipped", clipped.MaxWeight, clipped.Clipped)
	}
	if md := clipped.Markdown("target"); len(md) == 0 {
		t.Fatal("empty markdown")
	}
}

func TestOPESkipsIncompleteEpisodes(t *testing.T) {
	behave, _ := NewLexicalPolicy(LexicalConfig{Name: "behave"})
	decs, rews := synthLogs(t, 20, behave)
	// Drop one reward, one decision of another episode and corrupt a propensity.
	var keepR []RewardRow
	for _, r := range rews {
		if r.SessionID != "e0" {
			keepR = append(keepR, r)
		}
	}
	var keepD []DecisionRow
	for _, d := range decs {
		if d.SessionID == "e1" && d.Step == 0 {
			continue
		}
		if d.SessionID == "e2" {
			d.ActionPropensity = 0
		}
		keepD = append(keepD, d)
	}
	rep, err := EvaluateOffPolicy(keepD, keepR, behave, OPEConfig{CI: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Episodes != 17 || rep.Skipped["no reward"] != 1 || rep.Skipped["missing decisions"] != 1 || rep.Skipped["bad propensity"] != 1 {
		t.Fatalf("report %+v", rep)
	}
	if _, err := EvaluateOffPolicy(nil, nil, behave, OPEConfig{}); err == nil {
		t.Fatal("no error on empty logs")
	}
	if _, err := EvaluateOffPolicy(decs, rews, behave, OPEConfig{CI: "magic"}); err == nil {
		t.Fatal("no error on an unknown CI method")
	}
	// Greedy logs are flagged.
	for i := range decs {
		decs[i].ActionPropensity = 1
	}
	rep, err = EvaluateOffPolicy(decs, rews, behave, OPEConfig{CI: "normal"})
	if err != nil || !rep.Greedy || len(rep.Warnings) == 0 {
		t.Fatalf("greedy logs: %+v %v", rep, err)
	}
}
