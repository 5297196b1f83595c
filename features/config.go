package features

import (
	"fmt"
	"strings"
)

// BertConfig sizes a BERT encoder.
type BertConfig struct {
	// VocabSize is the number of rows of the word embedding table.
	VocabSize int
	// Hidden is the model width (HF hidden_size).
	Hidden int
	// Layers is the number of transformer layers (HF num_hidden_layers).
	Layers int
	// Heads is the number of attention heads; Hidden must be a multiple of it.
	Heads int
	// Intermediate is the width of the feed-forward layer (HF intermediate_size).
	Intermediate int
	// MaxPositions is the number of position embeddings, the longest sequence accepted.
	MaxPositions int
	// TypeVocab is the number of token types (HF type_vocab_size).
	TypeVocab int
	// Dropout is the dropout rate used in training (HF hidden_dropout_prob and
	// attention_probs_dropout_prob); 0 disables dropout.
	Dropout float64
}

// BertVocabSize is the size of bert-base-uncased's vocab.txt. Presets use it; models with
// extra tokens (the WebShop button tokens) set VocabSize to the tokenizer's size.
const BertVocabSize = 30522

// PresetNames lists the names accepted by Preset.
var PresetNames = []string{"tiny", "small", "base"}

// Preset returns the configuration of a named model size:
//
//   - "tiny": 2 layers, hidden 64, 2 heads, intermediate 256 (tests).
//   - "small": 4 layers, hidden 256, 4 heads, intermediate 1024 (CPU default).
//   - "base": 12 layers, hidden 768, 12 heads, intermediate 3072 (bert-base-uncased).
//
// All use vocabulary 30522, 512 positions, 2 token types and dropout 0.1.
func Preset(name string) (BertConfig, error) {
	cfg := BertConfig{VocabSize: BertVocabSize, MaxPositions: 512, TypeVocab: 2, Dropout: 0.1}
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "tiny":
		cfg.Layers, cfg.Hidden, cfg.Heads, cfg.Intermediate = 2, 64, 2, 256
	case "small":
		cfg.Layers, cfg.Hidden, cfg.Heads, cfg.Intermediate = 4, 256, 4, 1024
	case "base":
		cfg.Layers, cfg.Hidden, cfg.Heads, cfg.Intermediate = 12, 768, 12, 3072
	default:
		return BertConfig{}, fmt.Errorf("features: unknown BERT preset %q (valid: %s)", name, strings.Join(PresetNames, ", "))
	}
	return cfg, nil
}

// Validate reports whether the configuration describes a buildable encoder.
func (cfg BertConfig) Validate() error {
	switch {
	case cfg.VocabSize <= 0 || cfg.Hidden <= 0 || cfg.Layers <= 0 || cfg.Heads <= 0 ||
		cfg.Intermediate <= 0 || cfg.MaxPositions <= 0 || cfg.TypeVocab <= 0:
		return fmt.Errorf("features: BERT config %+v: all sizes must be positive", cfg)
	case cfg.Hidden%cfg.Heads != 0:
		return fmt.Errorf("features: BERT config: hidden %d is not a multiple of heads %d", cfg.Hidden, cfg.Heads)
	case cfg.Dropout < 0 || cfg.Dropout >= 1:
		return fmt.Errorf("features: BERT config: dropout %g not in [0, 1)", cfg.Dropout)
	}
	return nil
}

// NumParams returns the number of parameters of the encoder (without pooler): the
// embeddings and their layer norm, and per layer the attention's four dense layers, the
// feed-forward's two and two layer norms.
func (cfg BertConfig) NumParams() int {
	h, i := cfg.Hidden, cfg.Intermediate
	emb := (cfg.VocabSize+cfg.MaxPositions+cfg.TypeVocab)*h + 2*h
	layer := 4*(h*h+h) + 2*h + (h*i + i) + (i*h + h) + 2*h
	return emb + cfg.Layers*layer
}

// PolicyConfig sizes a policy model. It is stored in every checkpoint.
type PolicyConfig struct {
	// Preset is the name of the encoder preset the configuration started from ("tiny",
	// "small", "base"), for provenance.
	Preset string `json:"preset"`
	// Bert sizes the encoder; its VocabSize is the tokenizer's.
	Bert BertConfig `json:"bert"`
	// MaxStateLen is the longest state in tokens ([CLS] and [SEP] included); longer
	// states are truncated from the left.
	MaxStateLen int `json:"max_state_len"`
	// MaxActionLen is the longest action in tokens; longer ones are truncated from the
	// right.
	MaxActionLen int `json:"max_action_len"`
	// ObsMode is the observation mode ("text_rich" or "text") of the states the policy
	// was trained on; agents run the shop in that mode. Empty for a pretrained encoder.
	ObsMode string `json:"obs_mode,omitempty"`
	// Model is the choice model: ModelShopAgent (the default; "" means it, as in
	// checkpoints written before the field existed) or ModelWebShop (see ModelNames).
	Model string `json:"model,omitempty"`
}

// Choice models (PolicyConfig.Model). Both share the BERT encoder, the BiDAF attention and
// the value head of WebShop's BertModelForWebshop (models/policy.go and docs/TRAINING.md
// describe the graph):
//
//   - ModelWebShop is WebShop's choice model exactly: linear 4H->H over the attention's
//     output, ReLU, mean over the action's tokens, linear H->1; the state is encoded with
//     all token types 0, as WebShop's forward does.
//   - ModelShopAgent adds three priors: an exact-match column (whether an action token
//     occurs in the instruction) as a 4H+1-th input of the first linear layer, a learned
//     weight times the fraction of the action's content tokens found in the instruction,
//     and a learned bias per product position on a results page; and it encodes the
//     instruction's tokens with token type 1.
const (
	ModelShopAgent = "shopagent"
	ModelWebShop   = "webshop"
)

// ModelNames lists the accepted PolicyConfig.Model values (and "", which means
// ModelShopAgent).
var ModelNames = []string{ModelShopAgent, ModelWebShop}

// ParseModel returns the choice model a name selects (case and surrounding spaces
// ignored; "" selects ModelShopAgent); an unknown name is an error.
func ParseModel(name string) (string, error) {
	switch m := strings.ToLower(strings.TrimSpace(name)); m {
	case "":
		return ModelShopAgent, nil
	case ModelShopAgent, ModelWebShop:
		return m, nil
	}
	return "", fmt.Errorf("features: unknown choice model %q (valid: %s)", name, strings.Join(ModelNames, ", "))
}

// ChoiceModel returns the configuration's choice model, ModelShopAgent when Model is "".
func (cfg PolicyConfig) ChoiceModel() string {
	if cfg.Model == "" {
		return ModelShopAgent
	}
	return cfg.Model
}

// DefaultMaxStateLen and DefaultMaxActionLen are the default token limits (WebShop's
// choice model uses 512 for states).
const (
	DefaultMaxStateLen  = 512
	DefaultMaxActionLen = 32
)

// NewPolicyConfig returns the configuration of a policy over a preset encoder with a
// vocabulary of vocabSize tokens, with the ModelShopAgent choice model. maxState and
// maxAction <= 0 take the defaults; both are capped by the encoder's positions.
func NewPolicyConfig(preset string, vocabSize, maxState, maxAction int) (PolicyConfig, error) {
	bert, err := Preset(preset)
	if err != nil {
		return PolicyConfig{}, err
	}
	if vocabSize > 0 {
		bert.VocabSize = vocabSize
	}
	if maxState <= 0 {
		maxState = DefaultMaxStateLen
	}
	if maxAction <= 0 {
		maxAction = DefaultMaxActionLen
	}
	cfg := PolicyConfig{
		Preset: strings.ToLower(strings.TrimSpace(preset)), Bert: bert,
		MaxStateLen: min(maxState, bert.MaxPositions), MaxActionLen: min(maxAction, bert.MaxPositions),
		Model: ModelShopAgent,
	}
	return cfg, cfg.Validate()
}

// Validate reports whether the configuration describes a buildable policy.
func (cfg PolicyConfig) Validate() error {
	if err := cfg.Bert.Validate(); err != nil {
		return err
	}
	switch {
	case cfg.MaxStateLen < 8 || cfg.MaxStateLen > cfg.Bert.MaxPositions:
		return fmt.Errorf("features: policy max state length %d not in [8, %d]", cfg.MaxStateLen, cfg.Bert.MaxPositions)
	case cfg.MaxActionLen < 4 || cfg.MaxActionLen > cfg.Bert.MaxPositions:
		return fmt.Errorf("features: policy max action length %d not in [4, %d]", cfg.MaxActionLen, cfg.Bert.MaxPositions)
	case cfg.Model != "" && cfg.Model != ModelShopAgent && cfg.Model != ModelWebShop:
		return fmt.Errorf("features: unknown choice model %q (valid: %s)", cfg.Model, strings.Join(ModelNames, ", "))
	}
	return nil
}
