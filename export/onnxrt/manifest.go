// Package onnxrt holds what an exported policy directory is and how ONNX Runtime runs it:
// the policy.json manifest (with the sha256 of the files it names), the process-wide ONNX
// Runtime environment, and a session that scores a features.PolicyBatch. It is shared by the
// exporter (export, which checks parity at export time) and the server (serve), so both
// run the graph the same way.
package onnxrt

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"shopagent/features"
)

// File names inside a policy directory.
const (
	ModelFile    = "model.onnx"
	VocabFile    = "vocab.txt"
	ManifestFile = "policy.json"
	// ActionsFile and ScorerFile are the policy split in two (see Manifest.Split): the
	// action encoder and the rest of the policy over encoded actions, so that a server can
	// cache action encodings across requests.
	ActionsFile = "actions.onnx"
	ScorerFile  = "scorer.onnx"
)

// FormatVersion is the version of the policy directory format written in policy.json.
const FormatVersion = 1

// Opset is the ONNX opset of the exported graphs.
const Opset = 17

// Graph input and output names, in the order the session binds them (models.PolicyInputs
// order for the inputs).
var (
	InputNames  = []string{"state_ids", "state_mask", "state_type_ids", "action_ids", "action_mask", "action_index", "action_valid", "action_pos"}
	OutputNames = []string{"logits", "value"}
	// ActionInputNames and ActionOutputNames are those of actions.onnx: the distinct
	// actions' tokens [U, Ta] in, their encoder states [U, Ta, H] out.
	ActionInputNames  = []string{"action_ids", "action_mask"}
	ActionOutputNames = []string{"action_hidden"}
	// ScorerInputNames are those of scorer.onnx: model.onnx's inputs and the actions'
	// encoder states (its outputs are OutputNames).
	ScorerInputNames = append(append([]string(nil), InputNames...), "action_hidden")
)

// Provenance says where an exported policy came from (copied from checkpoint.json).
type Provenance struct {
	// Checkpoint is the checkpoint directory exported (as given to the exporter).
	Checkpoint string `json:"checkpoint"`
	// Job and Step are the training job and global step of the checkpoint.
	Job  string `json:"job"`
	Step int64  `json:"step"`
	// Created is the checkpoint's creation time.
	Created string `json:"created"`
	// Info is the checkpoint's free-form provenance (command line, data, seeds, ...).
	Info map[string]any `json:"info,omitempty"`
}

// Parity records the export-time comparison of ONNX Runtime with the GoMLX forward.
type Parity struct {
	// MaxAbsDiff is the largest |ONNX Runtime - GoMLX| over the logits of real actions and
	// the values of the samples.
	MaxAbsDiff float64 `json:"max_abs_diff"`
	// MaxLogitDiff and MaxValueDiff split MaxAbsDiff by output.
	MaxLogitDiff float64 `json:"max_logit_diff"`
	MaxValueDiff float64 `json:"max_value_diff"`
	// Tolerance is the largest difference accepted.
	Tolerance float64 `json:"tolerance"`
	// Agreement is the fraction of comparisons (each observation in a batch and alone) in
	// which ONNX Runtime's most likely action is GoMLX's.
	Agreement float64 `json:"agreement"`
	// Samples is the number of observations compared; Actions the number of action logits.
	Samples int `json:"samples"`
	Actions int `json:"actions"`
	// Backend is the GoMLX backend of the reference forward; ORTVersion the ONNX Runtime
	// version that ran the graph.
	Backend    string `json:"backend"`
	ORTVersion string `json:"ort_version"`
}

// Manifest is a policy directory's policy.json.
type Manifest struct {
	// Format is FormatVersion.
	Format int `json:"format"`
	// Preset is the encoder preset ("tiny", "small", "base").
	Preset string `json:"preset"`
	// Policy is the model configuration (encoder sizes, max lengths, observation mode).
	Policy features.PolicyConfig `json:"policy"`
	// MaxStateLen and MaxActionLen repeat the token limits of Policy, and ObsMode its
	// observation mode ("text_rich" when the checkpoint recorded none), for readers that do
	// not know PolicyConfig.
	MaxStateLen  int    `json:"max_state_len"`
	MaxActionLen int    `json:"max_action_len"`
	ObsMode      string `json:"obs_mode"`
	// Model repeats Policy's choice model ("shopagent" or "webshop", see
	// features.ModelNames), "shopagent" when the checkpoint recorded none; empty in a
	// manifest written before the field existed, which is "shopagent" too. Both models
	// take the same graph inputs ("webshop" leaves state_type_ids and action_pos unused).
	Model string `json:"model,omitempty"`
	// Opset, Inputs and Outputs describe the graph.
	Opset   int      `json:"opset"`
	Inputs  []string `json:"inputs"`
	Outputs []string `json:"outputs"`
	// SHA256 maps each file of the directory (model.onnx, vocab.txt) to its hex sha256.
	SHA256 map[string]string `json:"sha256"`
	// Provenance is the checkpoint's training provenance.
	Provenance Provenance `json:"provenance"`
	// Parity is the export-time check against GoMLX (of model.onnx, and of actions.onnx
	// followed by scorer.onnx where the directory has them).
	Parity Parity `json:"parity"`
	// Split is true when the directory also holds actions.onnx and scorer.onnx: the same
	// policy in two graphs, the action encoder (ActionInputNames -> ActionOutputNames) and
	// the rest (ScorerInputNames -> OutputNames), so that a server can reuse the encodings
	// of actions it has seen (product titles, buttons and options repeat across requests).
	Split bool `json:"split,omitempty"`
	// Quantize is "" for float32 graphs, or "int8": dense layers quantized to int8 (ONNX
	// Runtime's DynamicQuantizeMatMul: weights per output column, activations per call);
	// Parity then holds the check against GoMLX with its looser tolerance.
	Quantize string `json:"quantize,omitempty"`
	// Exported is the export time (RFC 3339).
	Exported string `json:"exported"`
}

// ReadManifest reads and checks dir/policy.json (not the files' hashes: see VerifyFiles).
func ReadManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, ManifestFile)
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("onnxrt: %s is not a policy directory: no %s (make one with `shopagent export`)", dir, ManifestFile)
		}
		return nil, fmt.Errorf("onnxrt: read %s: %w", p, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("onnxrt: corrupt %s: %w", p, err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("onnxrt: %s: format %d, want %d", p, m.Format, FormatVersion)
	}
	if err := m.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("onnxrt: %s: %w", p, err)
	}
	if m.Model != "" && m.Model != m.Policy.ChoiceModel() {
		return nil, fmt.Errorf("onnxrt: %s: model %q, but the policy config's is %q", p, m.Model, m.Policy.ChoiceModel())
	}
	for _, f := range m.Files() {
		if len(m.SHA256[f]) != sha256.Size*2 {
			return nil, fmt.Errorf("onnxrt: %s: no sha256 for %s", p, f)
		}
	}
	return &m, nil
}

// VerifyFiles checks that every file the manifest names exists in dir and has its sha256.
func (m *Manifest) VerifyFiles(dir string) error {
	for _, f := range m.Files() {
		got, err := FileSHA256(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		if got != m.SHA256[f] {
			return fmt.Errorf("onnxrt: %s: sha256 %s, policy.json says %s (corrupt or replaced file)", filepath.Join(dir, f), got, m.SHA256[f])
		}
	}
	return nil
}

// Files lists the files of the policy directory the manifest describes (besides
// policy.json itself).
func (m *Manifest) Files() []string {
	if m.Split {
		return []string{ModelFile, VocabFile, ActionsFile, ScorerFile}
	}
	return []string{ModelFile, VocabFile}
}

// FileSHA256 returns the hex sha256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("onnxrt: missing file %s", path)
		}
		return "", fmt.Errorf("onnxrt: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("onnxrt: hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
