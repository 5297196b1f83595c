//go:build !amd64

package elementwise

// expSIMD does nothing on this architecture (see unary_amd64.go).
func expSIMD(dst, src []float32) int { return 0 }

// erfSIMD does nothing on this architecture (see unary_amd64.go).
func erfSIMD(dst, src []float32) int { return 0 }
