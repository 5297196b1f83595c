package pyport

import "testing"

// The expected strings were printed by CPython 3.11's json.dumps.
func TestJSONString(t *testing.T) {
	for in, want := range map[string]string{
		"black":     `"black"`,
		"café noir": `"caf\u00e9 noir"`,
		`12" x 12"`: `"12\" x 12\""`,
		`a\b`:       `"a\\b"`,
		"tab\there": `"tab\there"`,
		"😀 smile":   `"\ud83d\ude00 smile"`,
		"del\x7f":   `"del\u007f"`,
		"ctl\x01":   `"ctl\u0001"`,
		"":          `""`,
	} {
		if got := JSONString(in); got != want {
			t.Errorf("JSONString(%q) = %s, want %s", in, got, want)
		}
	}
	if got, want := JSONObject([][2]string{{"color", "black"}, {"size", "café"}}), `{"color": "black", "size": "caf\u00e9"}`; got != want {
		t.Errorf("JSONObject = %s, want %s", got, want)
	}
	if got := JSONObject(nil); got != "{}" {
		t.Errorf("JSONObject(nil) = %s, want {}", got)
	}
}
