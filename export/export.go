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

	"google.golang.org/protobuf/proto"

	"shopagent/env"
	"shopagent/export/onnxrt"
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
	model, err := BuildGraph(ck)
	if err != nil {
		return nil, err
	}
	raw, err := proto.Marshal(model)
	if err != nil {
		return nil, fmt.Errorf("export: serialise model.onnx: %w", err)
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
	modelPath := filepath.Join(tmp, onnxrt.ModelFile)
	if err := os.WriteFile(modelPath, raw, 0o644); err != nil {
		return nil, fmt.Errorf("export: %w", err)
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
	sess, err := onnxrt.NewSession(modelPath, opts.ORT)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	parity, err := CheckParity(policy, sess, samples, opts.Tolerance)
	closeErr := sess.Close()
	if err != nil {
		return nil, err
	}
	if closeErr != nil {
		return nil, fmt.Errorf("export: %w", closeErr)
	}
	parity.Backend = backend.Name()
	parity.ORTVersion = sess.Version()

	m := &onnxrt.Manifest{
		Format: onnxrt.FormatVersion, Preset: ck.Meta.Policy.Preset, Policy: ck.Meta.Policy,
		MaxStateLen: ck.Meta.Policy.MaxStateLen, MaxActionLen: ck.Meta.Policy.MaxActionLen, ObsMode: mode,
		Opset: onnxrt.Opset, Inputs: onnxrt.InputNames, Outputs: onnxrt.OutputNames,
		SHA256: map[string]string{},
		Provenance: onnxrt.Provenance{Checkpoint: ck.Dir, Job: ck.Meta.Job, Step: ck.Meta.Step,
			Created: ck.Meta.Created, Info: ck.Meta.Info},
		Parity:   parity,
		Exported: time.Now().UTC().Format(time.RFC3339),
	}
	for _, f := range []string{onnxrt.ModelFile, onnxrt.VocabFile} {
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
	return &Result{Dir: outDir, Manifest: m, ModelBytes: int64(len(raw))}, nil
}

// ErrParity is wrapped by the error of an export whose ONNX graph disagrees with GoMLX.
var ErrParity = errors.New("export: ONNX Runtime and GoMLX disagree")

// CheckParity scores the samples with the GoMLX policy (its own shape buckets) and with
// ONNX Runtime (all samples in one exactly padded batch, then each alone), and returns the
// largest differences of the real actions' logits and of the values; it is an error
// (wrapping ErrParity) when one exceeds tol or is not finite.
func CheckParity(policy *models.Policy, sess *onnxrt.Session, samples []Sample, tol float64) (onnxrt.Parity, error) {
	p := onnxrt.Parity{Tolerance: tol, Samples: len(samples)}
	examples := make([]models.ChoiceExample, len(samples))
	encoded := make([]models.EncodedChoice, len(samples))
	for i, s := range samples {
		examples[i], _ = models.ChoiceFromObservation(s.Text, s.Clickables)
		if len(examples[i].Actions) == 0 {
			return p, fmt.Errorf("export: parity sample %d (%s page) has no actions", i, s.Page)
		}
		encoded[i] = models.EncodeChoice(policy.Tokenizer, policy.Config, examples[i])
		p.Actions += len(examples[i].Actions)
	}
	want, err := policy.Score(examples)
	if err != nil {
		return p, fmt.Errorf("export: GoMLX forward: %w", err)
	}
	compare := func(batch []models.EncodedChoice, first int) error {
		pb, err := onnxrt.ExactBatch(batch)
		if err != nil {
			return err
		}
		logits, values, err := sess.Run(pb)
		if err != nil {
			return fmt.Errorf("export: ONNX Runtime forward: %w", err)
		}
		for b := range batch {
			w := want[first+b]
			for j, l := range w.Logits {
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
	fmt.Fprintf(&sb, "%s: %s preset, %.1f MB model.onnx (sha256 %s), parity max |diff| %.2e over %d observations / %d actions (tolerance %.0e, ONNX Runtime %s)",
		r.Dir, m.Preset, float64(r.ModelBytes)/1e6, m.SHA256[onnxrt.ModelFile][:12], m.Parity.MaxAbsDiff,
		m.Parity.Samples, m.Parity.Actions, m.Parity.Tolerance, m.Parity.ORTVersion)
	return sb.String()
}
