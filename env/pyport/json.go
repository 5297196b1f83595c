package pyport

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// JSONString returns Python's json.dumps(s) for a str with the default
// ensure_ascii=True: the string in double quotes, with '"' and '\' escaped,
// \n \r \t \b \f written as such, and every other character outside ' '..'~'
// written as \uXXXX (characters above U+FFFF as a UTF-16 surrogate pair).
// Invalid UTF-8 bytes count as U+FFFD, as Go decodes them.
func JSONString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= ' ' && r <= '~':
			b.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			writeU(&b, 0xD800+(r>>10))
			writeU(&b, 0xDC00+(r&0x3FF))
		default:
			if r == utf8.RuneError {
				r = 0xFFFD
			}
			writeU(&b, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func writeU(b *strings.Builder, r rune) {
	h := strconv.FormatInt(int64(r), 16)
	b.WriteString(`\u`)
	b.WriteString(strings.Repeat("0", 4-len(h)))
	b.WriteString(h)
}

// JSONObject returns Python's json.dumps(d) for a dict of str to str with the
// default separators (", " and ": ") and ensure_ascii=True; keys and values
// come in pairs, in insertion order.
func JSONObject(pairs [][2]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, kv := range pairs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(JSONString(kv[0]))
		b.WriteString(": ")
		b.WriteString(JSONString(kv[1]))
	}
	b.WriteByte('}')
	return b.String()
}
