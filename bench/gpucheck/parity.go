package main

import (
	"flag"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"shopagent/env"
	"shopagent/export/onnxrt"
	"shopagent/features"
	"shopagent/serve"
)

// ParityResult is what `gpucheck parity -json` writes: the exported policy on ONNX
// Runtime's CUDA execution provider against its CPU execution provider (one library, one
// process), on real pages of a shop.
type ParityResult struct {
	Policy     string `json:"policy"`
	Device     string `json:"device"`
	ORTVersion string `json:"ort_version"`
	// Observations compared, and their action logits.
	Observations int `json:"observations"`
	Actions      int `json:"actions"`
	// model.onnx, all observations in one padded batch and each alone: the largest
	// |device - CPU| of a real action's logit and of a value, and how often both pick the
	// same action.
	MaxLogitDiff float64 `json:"max_logit_diff"`
	MaxValueDiff float64 `json:"max_value_diff"`
	Agreement    float64 `json:"agreement"`
	// The served path (actions.onnx + scorer.onnx with the action cache, as `serve` runs
	// it): the largest |device - CPU| of an action probability and of a value.
	MaxServedProbDiff  float64 `json:"max_served_prob_diff"`
	MaxServedValueDiff float64 `json:"max_served_value_diff"`
	Tolerance          float64 `json:"tolerance"`
	Pass               bool    `json:"pass"`
	Seconds            float64 `json:"seconds"`
}

// runParity compares a policy directory on the device with itself on the CPU.
func runParity(args []string) error {
	fs := flag.NewFlagSet("parity", flag.ContinueOnError)
	dir := fs.String("policy", "", "exported policy directory")
	data := fs.String("data", "", "shop directory (pages of its train goals)")
	lib := fs.String("ort-lib", "", "ONNX Runtime library (default $SHOPAGENT_ORT_LIB)")
	device := fs.String("device", "cuda", "device compared with the CPU: cuda (cpu compares the CPU with itself: a dry run)")
	goals := fs.Int("goals", 20, "train goals whose results and item pages are compared")
	tol := fs.Float64("tolerance", 1e-4, "largest accepted difference")
	jsonOut := fs.String("json", "", "write the result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *data == "" {
		return fmt.Errorf("-policy and -data are required")
	}
	start := time.Now()
	m, err := onnxrt.ReadManifest(*dir)
	if err != nil {
		return err
	}
	tok, err := features.LoadVocab(filepath.Join(*dir, onnxrt.VocabFile))
	if err != nil {
		return err
	}
	pages, err := parityPages(*data, *goals)
	if err != nil {
		return err
	}
	var enc []features.EncodedChoice
	var inputs []serve.ActInput
	for _, p := range pages {
		ex, _ := features.ChoiceFromObservation(p.Text, p.Clickables)
		enc = append(enc, features.EncodeChoice(tok, m.Policy, ex))
		var acts []string
		for _, c := range p.Clickables {
			if c != env.ClickSearch {
				acts = append(acts, env.Click(c))
			}
		}
		inputs = append(inputs, serve.ActInput{Observation: p.Text, Actions: acts})
	}
	r := ParityResult{Policy: *dir, Device: *device, Observations: len(enc), Tolerance: *tol}
	sessions := map[string]*onnxrt.Session{}
	for _, d := range []string{onnxrt.DeviceCPU, *device} {
		if sessions[d] != nil {
			continue
		}
		s, err := onnxrt.NewSession(filepath.Join(*dir, onnxrt.ModelFile), onnxrt.Options{Lib: *lib, Device: d})
		if err != nil {
			return fmt.Errorf("%s session: %w", d, err)
		}
		defer s.Close()
		sessions[d] = s
		r.ORTVersion = s.Version()
	}
	agree, compared := 0, 0
	batches := [][]int{make([]int, len(enc))}
	for i := range enc {
		batches[0][i] = i
		batches = append(batches, []int{i})
	}
	for _, b := range batches {
		part := make([]features.EncodedChoice, len(b))
		for k, i := range b {
			part[k] = enc[i]
		}
		pb, err := onnxrt.ExactBatch(part)
		if err != nil {
			return err
		}
		lc, vc, err := sessions[onnxrt.DeviceCPU].Run(pb)
		if err != nil {
			return fmt.Errorf("cpu: %w", err)
		}
		ld, vd, err := sessions[*device].Run(pb)
		if err != nil {
			return fmt.Errorf("%s: %w", *device, err)
		}
		for k, i := range b {
			bc, bd := 0, 0
			for a := range enc[i].Actions {
				x, y := lc[k*pb.A+a], ld[k*pb.A+a]
				r.MaxLogitDiff = math.Max(r.MaxLogitDiff, math.Abs(float64(x-y)))
				if x > lc[k*pb.A+bc] {
					bc = a
				}
				if y > ld[k*pb.A+bd] {
					bd = a
				}
				if len(b) == 1 {
					r.Actions++
				}
			}
			r.MaxValueDiff = math.Max(r.MaxValueDiff, math.Abs(float64(vc[k]-vd[k])))
			compared++
			if bc == bd {
				agree++
			}
		}
	}
	r.Agreement = float64(agree) / float64(compared)
	// The served path: split graphs with the action cache, through serve.ONNXPolicy.
	served := map[string][]serve.Decision{}
	for _, d := range []string{onnxrt.DeviceCPU, *device} {
		if served[d] != nil {
			continue
		}
		p, err := serve.LoadONNXPolicy(*dir, serve.ORTOptions{Lib: *lib, Device: d, ActionCacheMB: 64})
		if err != nil {
			return fmt.Errorf("%s policy: %w", d, err)
		}
		ds, err := p.ActBatch(inputs)
		p.Close()
		if err != nil {
			return fmt.Errorf("%s policy: %w", d, err)
		}
		served[d] = ds
	}
	for i := range inputs {
		c, d := served[onnxrt.DeviceCPU][i], served[*device][i]
		for a := range c.Probabilities {
			r.MaxServedProbDiff = math.Max(r.MaxServedProbDiff, math.Abs(c.Probabilities[a]-d.Probabilities[a]))
		}
		r.MaxServedValueDiff = math.Max(r.MaxServedValueDiff, math.Abs(c.Value-d.Value))
	}
	r.Pass = r.MaxLogitDiff <= *tol && r.MaxValueDiff <= *tol && r.MaxServedProbDiff <= *tol && r.MaxServedValueDiff <= *tol
	r.Seconds = time.Since(start).Seconds()
	fmt.Printf("parity %s vs cpu (ONNX Runtime %s, %s): %d observations, %d actions: max |logit diff| %.3g, |value diff| %.3g, same action %.0f%%; served path: |prob diff| %.3g, |value diff| %.3g; tolerance %g: %v\n",
		*device, r.ORTVersion, m.Preset, r.Observations, r.Actions, r.MaxLogitDiff, r.MaxValueDiff, 100*r.Agreement,
		r.MaxServedProbDiff, r.MaxServedValueDiff, *tol, map[bool]string{true: "pass", false: "FAIL"}[r.Pass])
	if err := writeJSON(*jsonOut, r); err != nil {
		return err
	}
	if !r.Pass {
		return fmt.Errorf("parity above %g", *tol)
	}
	return nil
}

// parityPages returns the results page (searched with the instruction) and the first
// product's item page of the first n train goals of a shop.
func parityPages(dir string, n int) ([]env.Observation, error) {
	shop, err := env.OpenShop(dir, env.ShopOptions{})
	if err != nil {
		return nil, err
	}
	goals, err := shop.SplitGoals("train")
	if err != nil {
		return nil, err
	}
	skip := map[string]bool{env.ClickBackToSearch: true, env.ClickNext: true, env.ClickPrev: true}
	var out []env.Observation
	for _, g := range goals[:min(n, len(goals))] {
		e := shop.NewEnv(env.Config{Mode: env.ObsTextRich})
		e.Reset(g)
		obs, _, _, info := e.Step("search[" + g.Instruction + "]")
		if !info.Valid {
			continue
		}
		out = append(out, obs)
		for _, c := range obs.Clickables {
			if !skip[c] {
				if item, _, _, info := e.Step(env.Click(c)); info.Valid {
					out = append(out, item)
				}
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no pages from %s", dir)
	}
	return out, nil
}
