package env

import "testing"

func TestParseInstruction(t *testing.T) {
	cases := map[string]string{
		"WebShop\nInstruction: \ni need shoes\n[button] Search [button_]\n":             "i need shoes",
		"Amazon Shopping Game\nInstruction:  \ni need shoes\n[button] Search [button_]": "i need shoes",
		"Instruction:\ni need socks\n[button] Back to Search [button_]\n":               "i need socks",
		"WebShop [SEP] Instruction: [SEP] i need hats [SEP] Search":                     "i need hats",
		"Instruction: i need gloves\n":                                                  "i need gloves",
		"no instruction here":                                                           "",
	}
	for in, want := range cases {
		if got := ParseInstruction(in); got != want {
			t.Errorf("ParseInstruction(%q) = %q, want %q", in, got, want)
		}
	}
}
