package elementwise

import (
	"math"
	"testing"
)

// ulpDistance returns how many float32 values lie between a and b (0 if equal; both NaN
// count as equal, a NaN and a number as far apart).
func ulpDistance(a, b float32) int64 {
	if a != a || b != b {
		if a != a && b != b {
			return 0
		}
		return math.MaxInt64
	}
	ordered := func(f float32) int64 {
		bits := int64(math.Float32bits(f))
		if bits < 0 || bits >= 1<<31 {
			return -(bits & (1<<31 - 1))
		}
		return bits
	}
	d := ordered(a) - ordered(b)
	if d < 0 {
		d = -d
	}
	return d
}

// TestUnaryAgainstMath compares Exp and Erf with float32(math.Exp) and float32(math.Erf)
// on every 97th float32 bit pattern (44 million values over all exponents and both
// signs) and on special values: at most one unit in the last place apart, equal for all
// but a tiny fraction.
func TestUnaryAgainstMath(t *testing.T) {
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), 88.72283, 88.72284, 89, -87.33654, -103.27893, -103.97208, -104, -1e9, 1e9,
		3.9999, 4, 5, -4, math.SmallestNonzeroFloat32, math.MaxFloat32, -math.MaxFloat32}
	for _, op := range []UnaryOp{Exp, Erf} {
		want := func(x float32) float32 {
			if op == Exp {
				return float32(math.Exp(float64(x)))
			}
			return float32(math.Erf(float64(x)))
		}
		var in []float32
		in = append(in, special...)
		for bits := uint64(0); bits < 1<<32; bits += 97 {
			in = append(in, math.Float32frombits(uint32(bits)))
		}
		out := make([]float32, len(in))
		if err := Unary(op, out, in, 0); err != nil {
			t.Fatal(err)
		}
		differ := 0
		for i, x := range in {
			d := ulpDistance(out[i], want(x))
			if d > 1 {
				t.Fatalf("%s(%g) = %g, want %g (%d ulp apart)", op, x, out[i], want(x), d)
			}
			if d == 1 {
				differ++
			}
		}
		t.Logf("%s: %d of %d values differ by one ulp from the math package", op, differ, len(in))
		if limit := map[UnaryOp]int{Exp: len(in) / 100, Erf: len(in) / 100000}[op]; differ > limit {
			t.Errorf("%s: %d of %d values differ by one ulp: more than the %d expected", op, differ, len(in), limit)
		}
	}
}

func TestUnaryInPlace(t *testing.T) {
	in := []float32{0, 1, -2, 3.5}
	want := make([]float32, len(in))
	for i, x := range in {
		want[i] = float32(math.Exp(float64(x)))
	}
	if err := Unary(Exp, in, in, 1); err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if in[i] != want[i] {
			t.Errorf("in place: out[%d] = %v, want %v", i, in[i], want[i])
		}
	}
	if err := Unary(Exp, make([]float32, 2), in, 1); err == nil {
		t.Error("length mismatch accepted")
	}
	if err := Unary(UnaryOp(7), in, in, 1); err == nil {
		t.Error("unknown op accepted")
	}
}

func BenchmarkUnary(b *testing.B) {
	in := make([]float32, 1<<16)
	for i := range in {
		in[i] = float32(i-(1<<15)) / 8192
	}
	out := make([]float32, len(in))
	for _, op := range []UnaryOp{Exp, Erf} {
		b.Run(op.String()+"/elementwise", func(b *testing.B) {
			for b.Loop() {
				_ = Unary(op, out, in, 1)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/value")
		})
		b.Run(op.String()+"/math", func(b *testing.B) {
			for b.Loop() {
				if op == Exp {
					for i, x := range in {
						out[i] = float32(math.Exp(float64(x)))
					}
				} else {
					for i, x := range in {
						out[i] = float32(math.Erf(float64(x)))
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/value")
		})
	}
}

// TestExpSIMDMatchesGo checks the AVX2 Exp loop (where the CPU has it) against the Go loop
// bit for bit, on every 61st float32 bit pattern, special values and every tail length.
func TestExpSIMDMatchesGo(t *testing.T) {
	in := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		88.72283, 88.72284, 88.72285, -103.97207, -103.97208, -103.97209, -87.3, -100, 1e-30, -1e-30}
	for bits := uint64(0); bits < 1<<32; bits += 61 {
		in = append(in, math.Float32frombits(uint32(bits)))
	}
	for _, n := range []int{len(in), 1, 7, 8, 9, 15, 17} {
		got, want := make([]float32, n), make([]float32, n)
		expRun(got, in[:n])
		expRunGo(want, in[:n])
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
				t.Fatalf("n=%d: exp(%g) = %g with SIMD, %g in Go", n, in[i], got[i], want[i])
			}
		}
	}
}
