package env

import "strings"

// ParseInstruction returns the instruction an observation text shows (text, text_rich
// or WebShop's human-demonstration states): the text after "Instruction:" on its line,
// or the next line (text_rich) or the next " [SEP] " field (text mode) when that is
// empty; "" when there is none.
func ParseInstruction(obsText string) string {
	_, rest, ok := strings.Cut(obsText, "Instruction:")
	if !ok {
		return ""
	}
	rest = strings.TrimLeft(rest, " \t")
	rest = strings.TrimPrefix(rest, "[SEP]")
	rest = strings.TrimPrefix(rest, "\r")
	rest = strings.TrimPrefix(rest, "\n")
	rest = strings.TrimLeft(rest, " \t")
	if i := strings.IndexAny(rest, "\n"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.Index(rest, " [SEP] "); i >= 0 {
		rest = rest[:i]
	}
	return strings.TrimSpace(rest)
}
