package env

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// This file holds the JSON shapes of WebShop's data files, exactly as WebShop
// writes them, so that real WebShop data and the built-in generator's output
// load through one code path.

// RawOptionValue is one value of a customization option in items_shuffle*.json.
type RawOptionValue struct {
	Value string  `json:"value"`
	Image *string `json:"image"`
}

// RawOptionGroup is one named group of customization options. Values is nil
// for a group stored as JSON null (WebShop skips such groups).
type RawOptionGroup struct {
	Name   string
	Values []RawOptionValue
}

// RawOptions is the customization_options object of a product, keeping the
// key order of the file (WebShop shows option groups in that order).
type RawOptions []RawOptionGroup

// UnmarshalJSON decodes a JSON object (or null) keeping key order.
func (o *RawOptions) UnmarshalJSON(data []byte) error {
	*o = nil
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("customization_options: want an object, got %v", tok)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, ok := tok.(string)
		if !ok {
			return fmt.Errorf("customization_options: bad key %v", tok)
		}
		var vals []RawOptionValue
		if err := dec.Decode(&vals); err != nil {
			return fmt.Errorf("customization_options[%q]: %w", name, err)
		}
		*o = append(*o, RawOptionGroup{Name: name, Values: vals})
	}
	_, err = dec.Token()
	return err
}

// MarshalJSON encodes the groups as a JSON object in their order.
func (o RawOptions) MarshalJSON() ([]byte, error) {
	if o == nil {
		return []byte("{}"), nil
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, g := range o {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := json.Marshal(g.Name)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		v, err := json.Marshal(g.Values)
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// StringOrList decodes a JSON string or list of strings (WebShop's
// small_description is either); a lone string becomes a one-element list.
type StringOrList []string

// UnmarshalJSON accepts a string, a list of strings, or null.
func (s *StringOrList) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		*s = nil
		return nil
	case len(data) > 0 && data[0] == '"':
		var one string
		if err := json.Unmarshal(data, &one); err != nil {
			return err
		}
		*s = StringOrList{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*s = list
	return nil
}

// RawProduct is one record of WebShop's items_shuffle*.json product files.
// Only the fields WebShop uses are decoded; other keys are ignored.
type RawProduct struct {
	ASIN                 string       `json:"asin"`
	Name                 string       `json:"name"`
	FullDescription      string       `json:"full_description"`
	SmallDescription     StringOrList `json:"small_description"`
	Pricing              string       `json:"pricing"`
	Images               []string     `json:"images"`
	CustomizationOptions RawOptions   `json:"customization_options"`
	Category             string       `json:"category"`
	Query                string       `json:"query"`
	ProductCategory      string       `json:"product_category"`
}

// RawAttributes is one value of WebShop's items_ins_v2*.json map (keyed by ASIN).
type RawAttributes struct {
	Attributes            []string `json:"attributes"`
	Instruction           string   `json:"instruction,omitempty"`
	InstructionAttributes []string `json:"instruction_attributes,omitempty"`
}

// RawHumanInstruction is one element of an ASIN's list in WebShop's
// items_human_ins.json.
type RawHumanInstruction struct {
	ASIN                  string   `json:"asin,omitempty"`
	Instruction           string   `json:"instruction"`
	InstructionAttributes []string `json:"instruction_attributes"`
	InstructionOptions    []string `json:"instruction_options"`
}

// WebShop's file names inside a data directory.
const (
	ProductsFile   = "items_shuffle.json"
	AttributesFile = "items_ins_v2.json"
	HumanInsFile   = "items_human_ins.json"
)
