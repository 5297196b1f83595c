//go:build amd64

package elementwise

import "golang.org/x/sys/cpu"

// hasAVX2 reports whether expAVX2 can run (decided once at start-up).
var hasAVX2 = cpu.X86.HasAVX2

// expSIMD computes dst[i] = exp32(src[i]) for the first len(dst) &^ 7 values with AVX2
// (bit-identical to exp32) and returns how many it did.
func expSIMD(dst, src []float32) int {
	n := len(dst) &^ 7
	if !hasAVX2 || n == 0 {
		return 0
	}
	_ = src[n-1]
	expAVX2(&dst[0], &src[0], n)
	return n
}

// expAVX2 is exp32 on eight values at a time; n is a positive multiple of 8. In
// unary_amd64.s.
//
//go:noescape
func expAVX2(dst, src *float32, n int)

// hasAVX512 reports whether erfAVX512 can run (decided once at start-up).
var hasAVX512 = cpu.X86.HasAVX512F

// erfSIMD computes dst[i] = float32(erf(src[i])) for the first len(dst) &^ 7 values with
// AVX-512 (bit-identical to the Go loop) and returns how many it did.
func erfSIMD(dst, src []float32) int {
	n := len(dst) &^ 7
	if !hasAVX512 || n == 0 {
		return 0
	}
	_ = src[n-1]
	erfAVX512(&dst[0], &src[0], n, &erfTableByCoefficient[0][0])
	return n
}

// erfAVX512 is erfRun on eight values at a time; n is a positive multiple of 8, table is
// erfTableByCoefficient. In unary_amd64.s.
//
//go:noescape
func erfAVX512(dst, src *float32, n int, table *float64)
