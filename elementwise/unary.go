package elementwise

import (
	"fmt"
	"math"
)

// UnaryOp is a mathematical function of one float32 operand.
type UnaryOp uint8

// The unary operations.
const (
	Exp UnaryOp = iota
	Erf
)

// String returns the operation's name.
func (op UnaryOp) String() string {
	switch op {
	case Exp:
		return "Exp"
	case Erf:
		return "Erf"
	}
	return fmt.Sprintf("UnaryOp(%d)", uint8(op))
}

// Unary computes out[i] = op(in[i]). out may be the same slice as in. workers is the
// number of goroutines to use (<= 0: GOMAXPROCS).
//
// Both stay within one unit in the last place of the math package's float64 functions
// rounded to float32 (the test sweeps 44 million float32 values): Erf is evaluated in
// float64 with an approximation accurate to about 1e-13 and then rounded, so it differs
// from float32(math.Erf(float64(x))) only where the exact value lies within 1e-13 of a
// rounding boundary (none of the 44 million in the test); Exp is computed in float32 and
// differs by one unit for about 0.4% of arguments. The AVX2 Exp and AVX-512 Erf loops are
// bit-identical to their Go loops; BenchmarkUnary gives the speeds (against the math
// package: Exp about 10x with AVX2, 1.5x without; Erf about 15x with AVX-512, 5x without).
func Unary(op UnaryOp, out, in []float32, workers int) error {
	if len(out) != len(in) {
		return fmt.Errorf("elementwise: %s of %d elements into %d", op, len(in), len(out))
	}
	var fn func(dst, src []float32)
	switch op {
	case Exp:
		fn = expRun
	case Erf:
		fn = erfRun
	default:
		return fmt.Errorf("elementwise: unknown %s", op)
	}
	// Transcendental functions cost ~10x a memory-bound operation: parallelize earlier.
	it := &iteration{outer: len(in)}
	parallel(it, 8*len(in), workers, func(start, end int) {
		fn(out[start:end], in[start:end])
	})
	return nil
}

// Constants of exp's range reduction: e^x = 2^n * e^r, n = round(x / ln 2),
// r = x - n ln 2 computed in two parts (Cody and Waite): n * ln2Hi is exact.
const (
	log2e32 = 1.44269504 // 1 / ln 2
	ln2Hi32 = 0.693359375
	ln2Lo32 = -2.12194440e-4
	// roundMagic32 rounds a float32 below 2^22 in magnitude to an integer when added and
	// subtracted.
	roundMagic32 = 12582912 // 1.5 * 2^23
	// Beyond these arguments e^x rounds to +Inf or to 0 in float32.
	expMaxArg = 88.72284
	expMinArg = -103.97208
)

// exp32 returns e^x in float32 arithmetic: the Taylor series of e^r to degree 7 for
// |r| <= ln(2)/2 (truncation error below 6e-9 relative), then scaled by 2^n in two exact
// steps so that denormal results round once. Within one unit in the last place of
// float32(math.Exp(float64(x))) (float64 arithmetic would be as fast only in assembly: in
// Go, the float32-to-float64 conversions chain the loop iterations through a false
// register dependency).
func exp32(x float32) float32 {
	switch {
	case x != x: // NaN.
		return x
	case x > expMaxArg:
		return float32(math.Inf(1))
	case x < expMinArg:
		return 0
	}
	n := (x*log2e32 + roundMagic32) - roundMagic32
	r := x - n*ln2Hi32 - n*ln2Lo32
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040)))))))
	ni := int32(n) // In [-150, 128].
	half := ni >> 1
	return p * math.Float32frombits(uint32(half+127)<<23) * math.Float32frombits(uint32(ni-half+127)<<23)
}

// expRun sets dst[i] = exp32(src[i]), eight at a time with AVX2 where available.
func expRun(dst, src []float32) {
	n := expSIMD(dst, src)
	expRunGo(dst[n:], src[n:])
}

// expRunGo is expRun in Go.
func expRunGo(dst, src []float32) {
	src = src[:len(dst)]
	for i, x := range src {
		dst[i] = exp32(x)
	}
}

// erf(x) = x g(x) where g(x) = erf(x)/x is even, smooth and positive; g is approximated on
// [0, erfMax) by erfSegments = 16 polynomials of degree 11, one per interval of width
// 1/erfScale, interpolating math.Erf(x)/x at the Chebyshev points of the interval
// (computed once at start-up). Beyond erfClamp, float32(erf(x)) is 1. The evaluation has
// no data-dependent branch (GELU's inputs have random signs and magnitudes), and 16
// segments let the AVX-512 loop pick each lane's coefficients from two registers
// (VPERMT2PD) instead of gathering them from memory.
const (
	erfScale    = 4
	erfMax      = 4
	erfSegments = erfMax * erfScale
	erfDegree   = 11
	// erfClamp is where larger arguments are evaluated: erf rounds to 1 in float32 there.
	erfClamp = erfMax - 1.0/(4*erfScale)
)

// erfTable holds each interval's polynomial in t in [-1, 1] (monomial coefficients,
// constant first); erfTableByCoefficient is the same table transposed, for the AVX-512
// loop (which picks a coefficient for each lane from one row). Both are computed at
// start-up and never changed.
var (
	erfTable              = newErfTable()
	erfTableByCoefficient = transposeErfTable(erfTable)
)

func transposeErfTable(t *[erfSegments][erfDegree + 1]float64) *[erfDegree + 1][erfSegments]float64 {
	var out [erfDegree + 1][erfSegments]float64
	for s := range t {
		for j := range t[s] {
			out[j][s] = t[s][j]
		}
	}
	return &out
}

func newErfTable() *[erfSegments][erfDegree + 1]float64 {
	const n = erfDegree + 1
	var table [erfSegments][n]float64
	// cheb[j] holds the monomial coefficients of the Chebyshev polynomial T_j.
	var cheb [n][n]float64
	cheb[0][0] = 1
	cheb[1][1] = 1
	for j := 2; j < n; j++ {
		for i := range n {
			if i > 0 {
				cheb[j][i] += 2 * cheb[j-1][i-1]
			}
			cheb[j][i] -= cheb[j-2][i]
		}
	}
	for s := range table {
		lo := float64(s) / erfScale
		var values [n]float64
		for k := range n {
			t := math.Cos(math.Pi * (float64(k) + 0.5) / n)
			a := lo + (t+1)/(2*erfScale) // Never 0: Chebyshev points are interior.
			values[k] = math.Erf(a) / a
		}
		for j := range n {
			c := 0.0
			for k := range n {
				c += values[k] * math.Cos(math.Pi*float64(j)*(float64(k)+0.5)/n)
			}
			c *= 2.0 / n
			if j == 0 {
				c /= 2
			}
			for i := range n {
				table[s][i] += c * cheb[j][i]
			}
		}
	}
	return &table
}

// erfRun sets dst[i] = float32(erf(src[i])), eight at a time with AVX-512 where available.
func erfRun(dst, src []float32) {
	n := erfSIMD(dst, src)
	erfRunGo(dst[n:], src[n:])
}

// erfRunGo is erfRun in Go. The loop body is written out (not a call per element): the Go
// compiler does not inline it, and the call costs as much as the polynomial.
func erfRunGo(dst, src []float32) {
	src = src[:len(dst)]
	table := erfTable
	for i, x := range src {
		d := widen(x)
		a := min(math.Abs(d), erfClamp) // NaN stays NaN.
		s := int(a * erfScale)
		t := a*(2*erfScale) - float64(2*s+1)
		c := &table[s&(erfSegments-1)]
		g := ((((((((((c[11]*t+c[10])*t+c[9])*t+c[8])*t+c[7])*t+c[6])*t+c[5])*t+c[4])*t+c[3])*t+c[2])*t+c[1])*t + c[0]
		dst[i] = float32(math.Copysign(a*g, d))
	}
}

// widen returns float64(x). On amd64 the conversion instruction (CVTSS2SD) writes only the
// low half of its destination register, which makes it wait for the last value computed
// in that register: in a loop that is usually the previous iteration's result, and every
// iteration then waits for the one before (a fivefold slowdown measured for erf32).
// Building the float64 from the bits in an integer register (moved with a full-width
// write) has no such dependency. Zero, denormals, infinities and NaN take the slow path.
func widen(x float32) float64 {
	b := math.Float32bits(x)
	e := b >> 23 & 0xff
	if e == 0 || e == 0xff {
		return float64(x)
	}
	return math.Float64frombits(uint64(b>>31)<<63 | uint64(e+(1023-127))<<52 | uint64(b&(1<<23-1))<<29)
}
