// Package export turns a policy checkpoint into a policy directory that ONNX Runtime serves:
// model.onnx (opset 17, dynamic axes), vocab.txt and policy.json (see onnxrt.Manifest). The
// graph is built from the checkpoint's variables (BuildGraph); an export fails unless ONNX
// Runtime's outputs match the GoMLX forward (models.Policy) within a tolerance on sample
// observations of the built-in shop. See docs/EXPORT.md.
package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"

	"shopagent/env"
	"shopagent/export/onnxrt"
	"shopagent/features"
	"shopagent/models"
)

// DefaultTolerance is the largest |ONNX Runtime - GoMLX| an export accepts.
const DefaultTolerance = 1e-4

// Options configure Export.
type Options struct {
	// ORT configures the ONNX Runtime session of the parity check (library path, threads,
	// device).
	ORT onnxrt.Options
	// Backend is the GoMLX backend of the reference forward ("" for models.NewBackend's
	// default, the pure-Go backend).
	Backend string
	// Tolerance is the parity tolerance (0 means DefaultTolerance).
	Tolerance float64
	// SampleGoals is the number of built-in shop goals whose observations are compared
	// (0 means 2, about 9 observations).
	SampleGoals int
	// Overwrite replaces an existing output directory.
	Overwrite bool
	// Quantize is "" (float32 graphs) or "int8" (see GraphOptions.Quantize). An int8
	// export is checked against GoMLX with QuantizedTolerance unless Tolerance is set.
	Quantize string
	// NoSplit leaves out actions.onnx and scorer.onnx (the policy split in two for a
	// server's action-encoding cache; see onnxrt.Manifest.Split), which otherwise are
	// written beside model.onnx and checked like it.
	NoSplit bool
}

// Result describes a finished export.
type Result struct {
	// Dir is the policy directory written.
	Dir string
	// Manifest is its policy.json.
	Manifest *onnxrt.Manifest
	// ModelBytes is the size of model.onnx.
	ModelBytes int64
}

// Export writes the policy directory outDir for the checkpoint at ckptPath (a checkpoint
// directory, or a run directory for its latest checkpoint). The directory is assembled
// under a temporary name beside outDir and renamed into place only after the parity
// check passed; an existing outDir is an error unless opts.Overwrite.
func Export(ckptPath, outDir string, opts Options) (*Result, error) {
	if outDir == "" {
		return nil, fmt.Errorf("export: no output directory")
	}
	if opts.Tolerance <= 0 {
		opts.Tolerance = DefaultTolerance
		if opts.Quantize != "" {
			opts.Tolerance = QuantizedTolerance
		}
	}
	if opts.SampleGoals <= 0 {
		opts.SampleGoals = 2
	}
	if st, err := os.Stat(outDir); err == nil {
		if !opts.Overwrite {
			return nil, fmt.Errorf("export: %s already exists (remove it, choose another directory, or overwrite)", outDir)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("export: %s exists and is not a directory", outDir)
		}
	}
	ck, err := models.LoadCheckpoint(ckptPath, false)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	backend, err := models.NewBackend(opts.Backend)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	policy, err := models.NewPolicy(backend, ck)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer policy.Close()
	gopts := GraphOptions{Quantize: opts.Quantize}
	graphs := []graphFile{{onnxrt.ModelFile, BuildGraph}}
	if !opts.NoSplit {
		graphs = append(graphs, graphFile{onnxrt.ActionsFile, BuildActionGraph}, graphFile{onnxrt.ScorerFile, BuildScorerGraph})
	}
	raws := make([][]byte, len(graphs))
	for i, g := range graphs {
		model, err := g.build(ck, gopts)
		if err != nil {
			return nil, err
		}
		if raws[i], err = proto.Marshal(model); err != nil {
			return nil, fmt.Errorf("export: serialise %s: %w", g.file, err)
		}
	}

	parent := filepath.Dir(filepath.Clean(outDir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(outDir)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	for i, g := range graphs {
		if err := os.WriteFile(filepath.Join(tmp, g.file), raws[i], 0o644); err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
	}
	vocab := ck.Meta.Vocab
	if vocab == "" {
		vocab = models.CheckpointVocabFile
	}
	if err := copyFile(filepath.Join(ck.Dir, vocab), filepath.Join(tmp, onnxrt.VocabFile)); err != nil {
		return nil, err
	}

	mode := ck.Meta.Policy.ObsMode
	if mode == "" {
		mode = string(env.ObsTextRich)
	}
	obsMode, err := env.ParseObsMode(mode)
	if err != nil {
		return nil, fmt.Errorf("export: checkpoint %s: %w", ck.Dir, err)
	}
	samples, err := SampleObservations(obsMode, opts.SampleGoals)
	if err != nil {
		return nil, err
	}
	sess, err := onnxrt.NewSession(filepath.Join(tmp, onnxrt.ModelFile), opts.ORT)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	parity, err := CheckParity(policy, sess.Run, samples, opts.Tolerance)
	closeErr := sess.Close()
	if err != nil {
		return nil, err
	}
	if closeErr != nil {
		return nil, fmt.Errorf("export: %w", closeErr)
	}
	if !opts.NoSplit {
		split, err := checkSplitParity(policy, tmp, opts.ORT, samples, opts.Tolerance)
		if err != nil {
			return nil, err
		}
		parity.MaxAbsDiff = max(parity.MaxAbsDiff, split.MaxAbsDiff)
		parity.MaxLogitDiff = max(parity.MaxLogitDiff, split.MaxLogitDiff)
		parity.MaxValueDiff = max(parity.MaxValueDiff, split.MaxValueDiff)
		parity.Agreement = min(parity.Agreement, split.Agreement)
	}
	parity.Backend = backend.Name()
	parity.ORTVersion = sess.Version()

	m := &onnxrt.Manifest{
		Format: onnxrt.FormatVersion, Preset: ck.Meta.Policy.Preset, Policy: ck.Meta.Policy,
		MaxStateLen: ck.Meta.Policy.MaxStateLen, MaxActionLen: ck.Meta.Policy.MaxActionLen, ObsMode: mode,
		Model: ck.Meta.Policy.ChoiceModel(),
		Opset: onnxrt.Opset, Inputs: onnxrt.InputNames, Outputs: onnxrt.OutputNames,
		SHA256: map[string]string{},
		Provenance: onnxrt.Provenance{Checkpoint: ck.Dir, Job: ck.Meta.Job, Step: ck.Meta.Step,
			Created: ck.Meta.Created, Info: ck.Meta.Info},
		Parity:   parity,
		Exported: time.Now().UTC().Format(time.RFC3339),
		Split:    !opts.NoSplit, Quantize: opts.Quantize,
	}
	for _, f := range m.Files() {
		if m.SHA256[f], err = onnxrt.FileSHA256(filepath.Join(tmp, f)); err != nil {
			return nil, err
		}
	}
	if err := writeManifest(filepath.Join(tmp, onnxrt.ManifestFile), m); err != nil {
		return nil, err
	}
	if opts.Overwrite {
		if err := os.RemoveAll(outDir); err != nil {
			return nil, fmt.Errorf("export: replace %s: %w", outDir, err)
		}
	}
	if err := os.Rename(tmp, outDir); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	done = true
	return &Result{Dir: outDir, Manifest: m, ModelBytes: int64(len(raws[0]))}, nil
}

// checkSplitParity is CheckParity of actions.onnx followed by scorer.onnx in dir.
func checkSplitParity(policy *models.Policy, dir string, o onnxrt.Options, samples []Sample, tol float64) (onnxrt.Parity, error) {
	acts, err := onnxrt.NewGraphSession(filepath.Join(dir, onnxrt.ActionsFile), onnxrt.GraphActions, o)
	if err != nil {
		return onnxrt.Parity{}, fmt.Errorf("export: %w", err)
	}
	defer acts.Close()
	scorer, err := onnxrt.NewGraphSession(filepath.Join(dir, onnxrt.ScorerFile), onnxrt.GraphScorer, o)
	if err != nil {
		return onnxrt.Parity{}, fmt.Errorf("export: %w", err)
	}
	defer scorer.Close()
	h := policy.Config.Bert.Hidden
	p, err := CheckParity(policy, func(pb *features.PolicyBatch) ([]float32, []float32, error) {
		hidden, err := acts.RunActions(pb.ActionIDs, pb.ActionMask, pb.U, pb.Ta, h)
		if err != nil {
			return nil, nil, err
		}
		return scorer.RunScorer(pb, hidden, h)
	}, samples, tol)
	if err != nil {
		return p, fmt.Errorf("%s + %s: %w", onnxrt.ActionsFile, onnxrt.ScorerFile, err)
	}
	return p, nil
}

// graphFile is one graph of a policy directory and its builder.
type graphFile struct {
	file  string
	build func(*models.Checkpoint, GraphOptions) (*onnx.ModelProto, error)
}

// ErrParity is wrapped by the error of an export whose ONNX graph disagrees with GoMLX.
var ErrParity = errors.New("export: ONNX Runtime and GoMLX disagree")

// QuantizedTolerance is the largest |ONNX Runtime - GoMLX| of logits and values an int8
// export accepts (see docs/EXPORT.md for what int8 changes).
const QuantizedTolerance = 0.25

// CheckParity scores the samples with the GoMLX policy (its own shape buckets) and with
// run, an ONNX Runtime session's scoring (all samples in one exactly padded batch, then
// each alone), and returns the largest differences of the real actions' logits and of
// the values, and how often both pick the same action; it is an error (wrapping
// ErrParity) when a difference exceeds tol or is not finite.
func CheckParity(policy *models.Policy, run func(*features.PolicyBatch) (logits, values []float32, err error), samples []Sample, tol float64) (onnxrt.Parity, error) {
	p := onnxrt.Parity{Tolerance: tol, Samples: len(samples)}
	examples := make([]features.ChoiceExample, len(samples))
	encoded := make([]features.EncodedChoice, len(samples))
	for i, s := range samples {
		examples[i], _ = features.ChoiceFromObservation(s.Text, s.Clickables)
		if len(examples[i].Actions) == 0 {
			return p, fmt.Errorf("export: parity sample %d (%s page) has no actions", i, s.Page)
		}
		encoded[i] = features.EncodeChoice(policy.Tokenizer, policy.Config, examples[i])
		p.Actions += len(examples[i].Actions)
	}
	want, err := policy.Score(examples)
	if err != nil {
		return p, fmt.Errorf("export: GoMLX forward: %w", err)
	}
	var compared, agree int
	compare := func(batch []features.EncodedChoice, first int) error {
		pb, err := onnxrt.ExactBatch(batch)
		if err != nil {
			return err
		}
		logits, values, err := run(pb)
		if err != nil {
			return fmt.Errorf("export: ONNX Runtime forward: %w", err)
		}
		for b := range batch {
			w := want[first+b]
			best, bestOurs := 0, 0
			for j, l := range w.Logits {
				if l > w.Logits[best] {
					best = j
				}
				if logits[b*pb.A+j] > logits[b*pb.A+bestOurs] {
					bestOurs = j
				}
				d := math.Abs(float64(logits[b*pb.A+j]) - l)
				if math.IsNaN(d) || math.IsInf(d, 0) {
					d = math.Inf(1)
				}
				p.MaxLogitDiff = max(p.MaxLogitDiff, d)
			}
			for j := len(w.Logits); j < pb.A; j++ {
				if logits[b*pb.A+j] != maskLogit {
					return fmt.Errorf("%w: padded action slot %d of sample %d has logit %g, want %g", ErrParity, j, first+b, logits[b*pb.A+j], maskLogit)
				}
			}
			compared++
			if best == bestOurs {
				agree++
			}
			d := math.Abs(float64(values[b]) - w.Value)
			if math.IsNaN(d) || math.IsInf(d, 0) {
				d = math.Inf(1)
			}
			p.MaxValueDiff = max(p.MaxValueDiff, d)
		}
		return nil
	}
	if err := compare(encoded, 0); err != nil {
		return p, err
	}
	for i := range encoded {
		if err := compare(encoded[i:i+1], i); err != nil {
			return p, err
		}
	}
	p.MaxAbsDiff = max(p.MaxLogitDiff, p.MaxValueDiff)
	p.Agreement = float64(agree) / float64(compared)
	if !(p.MaxAbsDiff <= tol) {
		return p, fmt.Errorf("%w: max |diff| %.3g (logits %.3g, values %.3g) exceeds %.3g on %d samples",
			ErrParity, p.MaxAbsDiff, p.MaxLogitDiff, p.MaxValueDiff, tol, len(samples))
	}
	return p, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("export: copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

func writeManifest(path string, m *onnxrt.Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("export: policy.json: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// String summarises a result in one line.
func (r *Result) String() string {
	var sb strings.Builder
	m := r.Manifest
	kind := "float32"
	if m.Quantize != "" {
		kind = m.Quantize
	}
	split := ""
	if m.Split {
		split = " + actions.onnx/scorer.onnx"
	}
	fmt.Fprintf(&sb, "%s: %s preset, %s model, %s, %.1f MB model.onnx%s (sha256 %s), parity max |diff| %.2e, same greedy action %.0f%% over %d observations / %d actions (tolerance %.2g, ONNX Runtime %s)",
		r.Dir, m.Preset, m.Policy.ChoiceModel(), kind, float64(r.ModelBytes)/1e6, split, m.SHA256[onnxrt.ModelFile][:12], m.Parity.MaxAbsDiff,
		100*m.Parity.Agreement, m.Parity.Samples, m.Parity.Actions, m.Parity.Tolerance, m.Parity.ORTVersion)
	return sb.String()
}
