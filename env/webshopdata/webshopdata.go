// Package webshopdata embeds the real WebShop files the project ships (MIT
// licence, see LICENSE.md and README.md in this folder): the 12,087 human
// instructions in WebShop's goal order, the human search queries, the mined
// attributes of 1,000 products and WebShop's colour list. It imports nothing
// of the project.
package webshopdata

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

//go:embed human_goals.json
var humanGoalsJSON []byte

//go:embed goal_query_map.json
var goalQueryMapJSON []byte

//go:embed items_ins_v2_1000.json
var minedJSON []byte

//go:embed colors.txt
var colorsTxt string

// NumHumanGoals is the number of WebShop's human instructions.
const NumHumanGoals = 12087

// Mined is one entry of WebShop's items_ins_v2 attribute file.
type Mined struct {
	Attributes            []string `json:"attributes"`
	Instruction           string   `json:"instruction,omitempty"`
	InstructionAttributes []string `json:"instruction_attributes,omitempty"`
}

var (
	humanGoals = sync.OnceValue(func() []string { return mustDecode[[]string]("human_goals.json", humanGoalsJSON) })
	queryMap   = sync.OnceValue(func() map[string][]string {
		return mustDecode[map[string][]string]("goal_query_map.json", goalQueryMapJSON)
	})
	mined = sync.OnceValue(func() map[string]Mined { return mustDecode[map[string]Mined]("items_ins_v2_1000.json", minedJSON) })
)

// mustDecode decodes an embedded file; the files are part of the binary and
// checked by the package's tests, so a failure is a build defect.
func mustDecode[T any](name string, data []byte) T {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		panic(fmt.Sprintf("webshopdata: embedded %s: %v", name, err))
	}
	return v
}

// HumanGoals returns WebShop's 12,087 human instructions in WebShop's goal
// order: index i is WebShop's goal i (test = 0..499, dev = 500..1499, train =
// the rest). The texts are lowercased and have no price clause. The slice is
// shared: do not modify it.
func HumanGoals() []string { return humanGoals() }

// GoalQueryMap returns the human search queries by instruction (1,506
// instructions, 2,197 queries). The map is shared: do not modify it.
func GoalQueryMap() map[string][]string { return queryMap() }

// MinedAttributes returns the mined attributes of WebShop's 1,000-product
// sample, by ASIN. The map is shared: do not modify it.
func MinedAttributes() map[string]Mined { return mined() }

// Colors returns WebShop's colour names in the order its reward normalises
// colours (normalize_color takes the first one contained in a value).
func Colors() []string {
	var out []string
	for _, line := range strings.Split(colorsTxt, "\n") {
		if c := strings.TrimSpace(line); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// Split returns the name of the WebShop split of goal index i: "test" for
// 0..499, "dev" for 500..1499 and "train" for the rest.
func Split(i int) string {
	switch {
	case i < 500:
		return "test"
	case i < 1500:
		return "dev"
	}
	return "train"
}
