// Package exporttest makes small policy checkpoints for the tests and benchmarks of the
// exporter, the ONNX server and the CLI: a vocabulary learnt from the built-in shop's
// pages, a freshly initialised policy with every variable perturbed (so that no term of
// the graph is zero, as the position bias and the biases are at initialisation), saved
// with models.SaveCheckpoint. No trained weights are needed to check parity.
package exporttest

import (
	"fmt"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"shopagent/env"
	"shopagent/export"
	"shopagent/features"
	"shopagent/models"
)

// Options size a test checkpoint.
type Options struct {
	// Preset is the encoder preset ("tiny" when empty).
	Preset string
	// MaxStateLen and MaxActionLen are the token limits (128 and 16 when 0).
	MaxStateLen, MaxActionLen int
	// VocabSize is the size of the learnt vocabulary (600 when 0).
	VocabSize int
	// Seed seeds the initialisation and the perturbation.
	Seed uint64
	// Backend is the GoMLX backend used to create the variables ("" for the default).
	Backend string
	// Model is the choice model (features.ModelNames; "" for NewPolicyConfig's default).
	Model string
}

// Checkpoint writes a policy checkpoint directory dir (it must not exist) and returns the
// observations its vocabulary was learnt from.
func Checkpoint(dir string, o Options) ([]export.Sample, error) {
	if o.Preset == "" {
		o.Preset = "tiny"
	}
	if o.MaxStateLen <= 0 {
		o.MaxStateLen = 128
	}
	if o.MaxActionLen <= 0 {
		o.MaxActionLen = 16
	}
	if o.VocabSize <= 0 {
		o.VocabSize = 600
	}
	samples, err := export.SampleObservations(env.ObsTextRich, 2)
	if err != nil {
		return nil, err
	}
	vocab := features.BuildVocab(func(yield func(string) bool) {
		for _, s := range samples {
			if !yield(s.Text) {
				return
			}
			for _, c := range s.Clickables {
				if !yield(c) {
					return
				}
			}
		}
	}, o.VocabSize, 1)
	tok, err := features.NewTokenizer(vocab)
	if err != nil {
		return nil, fmt.Errorf("exporttest: %w", err)
	}
	cfg, err := features.NewPolicyConfig(o.Preset, tok.VocabSize(), o.MaxStateLen, o.MaxActionLen)
	if err != nil {
		return nil, fmt.Errorf("exporttest: %w", err)
	}
	cfg.ObsMode = string(env.ObsTextRich)
	if o.Model != "" {
		cfg.Model = o.Model
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("exporttest: %w", err)
		}
	}

	backend, err := models.NewBackend(o.Backend)
	if err != nil {
		return nil, fmt.Errorf("exporttest: %w", err)
	}
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(o.Seed+1))
	ex, _ := features.ChoiceFromObservation(samples[0].Text, samples[0].Clickables)
	pb, err := features.NewPolicyBatch([]features.EncodedChoice{features.EncodeChoice(tok, cfg, ex)}, features.DefaultBuckets(cfg), 0)
	if err != nil {
		return nil, fmt.Errorf("exporttest: %w", err)
	}
	exec, err := context.NewExec(backend, ctx, func(ctx *context.Context, in []*graph.Node) []*graph.Node {
		l, v := models.PolicyGraph(ctx, cfg, models.PolicyInputsFrom(in), false)
		return []*graph.Node{l, v}
	})
	if err != nil {
		return nil, fmt.Errorf("exporttest: %w", err)
	}
	args := make([]any, 0, models.NumPolicyInputs)
	for _, t := range models.BatchTensors(pb) {
		args = append(args, t)
	}
	if _, err := exec.Exec(args...); err != nil {
		return nil, fmt.Errorf("exporttest: initialise: %w", err)
	}
	exec.Finalize()

	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	for v := range ctx.IterVariables() {
		if !v.HasValue() {
			continue
		}
		t, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("exporttest: %w", err)
		}
		data, err := tensors.CopyFlatData[float32](t)
		if err != nil {
			continue // not a float32 variable (e.g. the random state)
		}
		std := 0.05
		if v.Name() == "bias" && len(data) == features.MaxResultPosition+1 {
			std = 1 // the position bias: differences of about one logit
		}
		for i := range data {
			data[i] += float32(rng.NormFloat64() * std)
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(data, t.Shape().Dimensions...)); err != nil {
			return nil, fmt.Errorf("exporttest: %w", err)
		}
	}
	meta := models.CheckpointMeta{Job: "il", Step: 7, Policy: cfg,
		Info: map[string]any{"source": "exporttest", "seed": o.Seed}}
	if err := models.SaveCheckpoint(dir, meta, ctx, tok, false); err != nil {
		return nil, fmt.Errorf("exporttest: %w", err)
	}
	return samples, nil
}
