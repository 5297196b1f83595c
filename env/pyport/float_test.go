package pyport

import "testing"

func TestFormatFloat(t *testing.T) {
	for v, want := range map[float64]string{15: "15.0", 10.99: "10.99", 0.1: "0.1", 1e16: "1e+16", 0.00001: "1e-05", 123456.5: "123456.5"} {
		if got := FormatFloat(v); got != want {
			t.Errorf("FormatFloat(%v) = %q, want %q", v, got, want)
		}
	}
}
