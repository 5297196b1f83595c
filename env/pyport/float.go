package pyport

import (
	"math"
	"strconv"
	"strings"
)

// FormatFloat formats a float like Python's repr/str: shortest round-trip digits,
// at least one decimal ("15.0"), scientific notation below 1e-4 or from 1e16.
func FormatFloat(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	a := math.Abs(v)
	if a != 0 && (a < 1e-4 || a >= 1e16) {
		s := strconv.FormatFloat(v, 'e', -1, 64)
		// Go writes 1e+16, Python 1e+16; Go writes 1e-05, Python 1e-05.
		return s
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
