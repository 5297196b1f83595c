package env

import (
	"regexp"
	"strings"
)

var actionRE = regexp.MustCompile(`^(.+)\[(.+)\]`)

// Action is a parsed agent action: Name is "search" or "click" for valid
// actions; Arg is lowercased. HasArg is false when the text has no
// "name[arg]" shape.
type Action struct {
	Name   string
	Arg    string
	HasArg bool
}

// ParseAction parses an action string like WebShop's parse_action: the
// pattern (.+)\[(.+)\] matched from the start (greedy, so the last "[" that
// is followed by text and a "]" splits name and argument); the argument is
// lowercased. Text that does not match is an action name with no argument.
func ParseAction(s string) Action {
	m := actionRE.FindStringSubmatch(s)
	if m == nil {
		return Action{Name: s}
	}
	return Action{Name: m[1], Arg: strings.ToLower(m[2]), HasArg: true}
}

// Search returns the action text "search[q]".
func Search(q string) string { return "search[" + q + "]" }

// Click returns the action text "click[x]".
func Click(x string) string { return "click[" + x + "]" }
