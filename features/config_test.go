package features

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseModel(t *testing.T) {
	for in, want := range map[string]string{
		"": ModelShopAgent, "shopagent": ModelShopAgent, " WebShop ": ModelWebShop, "webshop": ModelWebShop,
	} {
		if got, err := ParseModel(in); err != nil || got != want {
			t.Errorf("ParseModel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"bert", "web shop", "shopagent2"} {
		if _, err := ParseModel(in); err == nil || !strings.Contains(err.Error(), "webshop") {
			t.Errorf("ParseModel(%q): %v", in, err)
		}
	}
}

func TestPolicyConfigModel(t *testing.T) {
	cfg, err := NewPolicyConfig("tiny", 100, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Model != ModelShopAgent || cfg.ChoiceModel() != ModelShopAgent {
		t.Fatalf("default model %q", cfg.Model)
	}
	for _, m := range []string{"", ModelShopAgent, ModelWebShop} {
		c := cfg
		c.Model = m
		if err := c.Validate(); err != nil {
			t.Errorf("model %q: %v", m, err)
		}
	}
	for _, m := range []string{"WebShop", "other"} {
		c := cfg
		c.Model = m
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "choice model") {
			t.Errorf("model %q: %v", m, err)
		}
	}

	// The model is serialized; a config written before the field existed is "shopagent".
	cfg.Model = ModelWebShop
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"model":"webshop"`) {
		t.Fatalf("json %s", raw)
	}
	var back PolicyConfig
	if err := json.Unmarshal(raw, &back); err != nil || back != cfg {
		t.Fatalf("round trip %+v, %v", back, err)
	}
	old := strings.Replace(string(raw), `,"model":"webshop"`, "", 1)
	var legacy PolicyConfig
	if err := json.Unmarshal([]byte(old), &legacy); err != nil {
		t.Fatal(err)
	}
	if legacy.Model != "" || legacy.ChoiceModel() != ModelShopAgent || legacy.Validate() != nil {
		t.Fatalf("legacy config %s: model %q, choice model %q", old, legacy.Model, legacy.ChoiceModel())
	}
}
