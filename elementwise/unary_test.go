package elementwise

import (
	"math"
	"math/rand/v2"
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

// BenchmarkUnary times Exp and Erf on 64K standard normal values (GELU's inputs are
// roughly normal): elementwise.Unary on one goroutine, its Go loop, the math package.
func BenchmarkUnary(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	in := make([]float32, 1<<16)
	for i := range in {
		in[i] = float32(rng.NormFloat64())
	}
	out := make([]float32, len(in))
	for _, op := range []UnaryOp{Exp, Erf} {
		b.Run(op.String()+"/elementwise", func(b *testing.B) {
			for b.Loop() {
				_ = Unary(op, out, in, 1)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(in)), "ns/value")
		})
		b.Run(op.String()+"/go_loop", func(b *testing.B) {
			for b.Loop() {
				if op == Exp {
					expRunGo(out, in)
				} else {
					erfRunGo(out, in)
				}
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

// TestUnarySIMDMatchesGo checks the SIMD Exp (AVX2) and Erf (AVX-512) loops, where the CPU
// has them, against the Go loops bit for bit, on every 61st float32 bit pattern, special
// values and every tail length.
func TestUnarySIMDMatchesGo(t *testing.T) {
	t.Logf("AVX2 Exp: %v, AVX-512 Erf: %v", expSIMD(make([]float32, 8), make([]float32, 8)) > 0,
		erfSIMD(make([]float32, 8), make([]float32, 8)) > 0)
	in := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		88.72283, 88.72284, 88.72285, -103.97207, -103.97208, -103.97209, -87.3, -100, 1e-30, -1e-30,
		3.9375, -3.9375, 3.9374998, 4, 0.25, -0.25, 0.24999999, 1e-45, -1e-45}
	for bits := uint64(0); bits < 1<<32; bits += 61 {
		in = append(in, math.Float32frombits(uint32(bits)))
	}
	for _, f := range []struct {
		name      string
		simd, go_ func(dst, src []float32)
	}{{"exp", expRun, expRunGo}, {"erf", erfRun, erfRunGo}} {
		for _, n := range []int{len(in), 1, 7, 8, 9, 15, 17, 24, 25} {
			got, want := make([]float32, n), make([]float32, n)
			f.simd(got, in[:n])
			f.go_(want, in[:n])
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
					t.Fatalf("n=%d: %s(%g) = %g with SIMD, %g in Go", n, f.name, in[i], got[i], want[i])
				}
			}
		}
	}
}
