// Package serve implements the online policy server: an HTTP service that
// routes sessions to policy arms with a Thompson-sampling or fixed-weight
// canary bandit, logs every decision and reward to crash-safe Parquet files,
// and an HTTP client that drives simulator episodes through it.
package serve

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// Decision is one scored observation: a probability per available action and the value.
type Decision struct {
	Probabilities []float64
	Value         float64
}

// PolicyInfo describes a loaded policy.
type PolicyInfo struct{ Name, Dir, Preset, SHA256 string }

// Policy scores the available actions of an observation.
type Policy interface {
	Act(instruction, observation string, actions []string) (Decision, error)
	Info() PolicyInfo
	Close() error
}

// Loader loads the policy of an arm from its directory.
type Loader func(dir string) (Policy, error)

// LexicalConfigFile is the file in a directory that LoadLexicalPolicy reads.
const LexicalConfigFile = "lexical.json"

// LexicalConfig configures a LexicalPolicy.
type LexicalConfig struct {
	// Name names the policy (default: the directory's base name).
	Name string `json:"name"`
	// Temperature divides the logits (default 1; must be positive).
	Temperature float64 `json:"temperature"`
	// Bonus adds a weight to the logit of every action that contains the word.
	Bonus map[string]float64 `json:"bonus,omitempty"`
}

// LexicalPolicy is a deterministic, dependency-free Policy: the logit of an action is
// the share of its words that occur in the instruction or the observation, plus the
// bonuses of the words it contains, divided by the temperature; the probabilities are
// the softmax of the logits and the value is the share of the instruction's words found
// in the observation. It is a baseline arm and the policy of the server's tests.
type LexicalPolicy struct {
	cfg  LexicalConfig
	info PolicyInfo
}

// NewLexicalPolicy returns a lexical policy with the given configuration.
func NewLexicalPolicy(cfg LexicalConfig) (*LexicalPolicy, error) {
	if cfg.Temperature == 0 {
		cfg.Temperature = 1
	}
	if !(cfg.Temperature > 0) || math.IsInf(cfg.Temperature, 0) {
		return nil, fmt.Errorf("serve: lexical policy temperature %g is not a positive number", cfg.Temperature)
	}
	for w, b := range cfg.Bonus {
		if math.IsNaN(b) || math.IsInf(b, 0) {
			return nil, fmt.Errorf("serve: lexical policy bonus of %q is not finite", w)
		}
	}
	b, _ := json.Marshal(cfg)
	sum := sha256.Sum256(b)
	return &LexicalPolicy{cfg: cfg, info: PolicyInfo{Name: cfg.Name, Preset: "lexical", SHA256: hex.EncodeToString(sum[:])}}, nil
}

// LoadLexicalPolicy loads a lexical policy from dir/lexical.json. It is a Loader.
func LoadLexicalPolicy(dir string) (Policy, error) {
	b, err := os.ReadFile(filepath.Join(dir, LexicalConfigFile))
	if err != nil {
		return nil, fmt.Errorf("serve: load lexical policy: %w", err)
	}
	var cfg LexicalConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("serve: load lexical policy %s: %w", dir, err)
	}
	if cfg.Name == "" {
		cfg.Name = filepath.Base(dir)
	}
	p, err := NewLexicalPolicy(cfg)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	p.info.Dir, p.info.SHA256 = dir, hex.EncodeToString(sum[:])
	return p, nil
}

func lexWords(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// Act implements Policy.
func (p *LexicalPolicy) Act(instruction, observation string, actions []string) (Decision, error) {
	if len(actions) == 0 {
		return Decision{}, errors.New("serve: lexical policy: no actions")
	}
	ctxWords := map[string]bool{}
	for _, w := range lexWords(instruction + " " + observation) {
		ctxWords[w] = true
	}
	logits := make([]float64, len(actions))
	for i, a := range actions {
		ws := lexWords(a)
		hit, bonus := 0, 0.0
		for _, w := range ws {
			if ctxWords[w] {
				hit++
			}
			bonus += p.cfg.Bonus[w]
		}
		share := 0.0
		if len(ws) > 0 {
			share = float64(hit) / float64(len(ws))
		}
		logits[i] = (share + bonus) / p.cfg.Temperature
	}
	obsWords := map[string]bool{}
	for _, w := range lexWords(observation) {
		obsWords[w] = true
	}
	iw := lexWords(instruction)
	value := 0.0
	if len(iw) > 0 {
		found := 0
		for _, w := range iw {
			if obsWords[w] {
				found++
			}
		}
		value = float64(found) / float64(len(iw))
	}
	return Decision{Probabilities: softmax(logits), Value: value}, nil
}

// Info implements Policy.
func (p *LexicalPolicy) Info() PolicyInfo { return p.info }

// Close implements Policy (nothing to release).
func (p *LexicalPolicy) Close() error { return nil }

// softmax returns the softmax of logits (stable for large magnitudes).
func softmax(logits []float64) []float64 {
	out := make([]float64, len(logits))
	m := math.Inf(-1)
	for _, l := range logits {
		m = math.Max(m, l)
	}
	sum := 0.0
	for i, l := range logits {
		out[i] = math.Exp(l - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// checkDecision verifies that a policy's decision has one finite, non-negative
// probability per action summing to 1 (within 1e-3) and a finite value.
func checkDecision(d Decision, n int) error {
	if len(d.Probabilities) != n {
		return fmt.Errorf("policy returned %d probabilities for %d actions", len(d.Probabilities), n)
	}
	sum := 0.0
	for _, p := range d.Probabilities {
		if math.IsNaN(p) || p < 0 || p > 1+1e-6 {
			return fmt.Errorf("policy returned probability %g", p)
		}
		sum += p
	}
	if math.Abs(sum-1) > 1e-3 {
		return fmt.Errorf("policy probabilities sum to %g", sum)
	}
	if math.IsNaN(d.Value) || math.IsInf(d.Value, 0) {
		return fmt.Errorf("policy returned value %g", d.Value)
	}
	return nil
}
