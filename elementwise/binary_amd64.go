//go:build amd64

package elementwise

import "golang.org/x/sys/cpu"

// hasSIMD reports whether the AVX loops of binary_amd64.s can run (decided once at start-up).
var hasSIMD = cpu.X86.HasAVX

// simdBlock is the number of values the assembly loops handle per iteration.
const simdBlock = 32

// binarySIMD computes dst[i] = a[i] op b[i] (aScalar/bScalar: a[0] or b[0] for every i) on
// the first len(dst) &^ (simdBlock-1) values with AVX, and returns how many it did.
func binarySIMD(op BinaryOp, dst, a, b []float32, aScalar, bScalar bool) int {
	n := len(dst) &^ (simdBlock - 1)
	if !hasSIMD || n == 0 {
		return 0
	}
	switch {
	case aScalar:
		_ = b[n-1]
		s := a[0]
		switch op {
		case Add:
			addSV(&dst[0], s, &b[0], n)
		case Sub:
			subSV(&dst[0], s, &b[0], n)
		case Mul:
			mulSV(&dst[0], s, &b[0], n)
		case Div:
			divSV(&dst[0], s, &b[0], n)
		}
	case bScalar:
		_ = a[n-1]
		s := b[0]
		switch op {
		case Add:
			addVS(&dst[0], &a[0], s, n)
		case Sub:
			subVS(&dst[0], &a[0], s, n)
		case Mul:
			mulVS(&dst[0], &a[0], s, n)
		case Div:
			divVS(&dst[0], &a[0], s, n)
		}
	default:
		_, _ = a[n-1], b[n-1]
		switch op {
		case Add:
			addVV(&dst[0], &a[0], &b[0], n)
		case Sub:
			subVV(&dst[0], &a[0], &b[0], n)
		case Mul:
			mulVV(&dst[0], &a[0], &b[0], n)
		case Div:
			divVV(&dst[0], &a[0], &b[0], n)
		}
	}
	return n
}

// The loops of binary_amd64.s: n is a positive multiple of simdBlock; VV reads two
// vectors, VS a vector and a scalar, SV a scalar and a vector.

//go:noescape
func addVV(dst, a, b *float32, n int)

//go:noescape
func subVV(dst, a, b *float32, n int)

//go:noescape
func mulVV(dst, a, b *float32, n int)

//go:noescape
func divVV(dst, a, b *float32, n int)

//go:noescape
func addVS(dst, a *float32, s float32, n int)

//go:noescape
func subVS(dst, a *float32, s float32, n int)

//go:noescape
func mulVS(dst, a *float32, s float32, n int)

//go:noescape
func divVS(dst, a *float32, s float32, n int)

//go:noescape
func addSV(dst *float32, s float32, b *float32, n int)

//go:noescape
func subSV(dst *float32, s float32, b *float32, n int)

//go:noescape
func mulSV(dst *float32, s float32, b *float32, n int)

//go:noescape
func divSV(dst *float32, s float32, b *float32, n int)

// fillSIMD sets the first len(dst) &^ (simdBlock-1) values of dst to v with AVX and returns
// how many it set.
func fillSIMD(dst []float32, v float32) int {
	n := len(dst) &^ (simdBlock - 1)
	if !hasSIMD || n == 0 {
		return 0
	}
	fillAVX(&dst[0], v, n)
	return n
}

// fillAVX is in binary_amd64.s; n is a positive multiple of simdBlock.
//
//go:noescape
func fillAVX(dst *float32, v float32, n int)
