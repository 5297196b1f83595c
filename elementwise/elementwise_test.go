package elementwise

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The references below evaluate each output element on its own from its coordinates, in
// float32, with the same operation, so every result must be bit-identical (NaNs must match
// NaNs); sums are checked against float64 references (TestReduce).

func randomValues(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
		if v[i] == 0 {
			v[i] = 1
		}
	}
	return v
}

func unflatten(i int, dims []int) []int {
	c := make([]int, len(dims))
	for a := len(dims) - 1; a >= 0; a-- {
		c[a] = i % dims[a]
		i /= dims[a]
	}
	return c
}

// flatIndex is the flat index in dims of coords, taking coordinate 0 on axes of
// dimension 1 (broadcast).
func flatIndex(coords, dims []int) int {
	i := 0
	for a, d := range dims {
		c := coords[a]
		if d == 1 {
			c = 0
		}
		i = i*d + c
	}
	return i
}

func same(a, b float32) bool {
	return a == b || (a != a && b != b)
}

func apply(op BinaryOp, a, b float32) float32 {
	switch op {
	case Add:
		return a + b
	case Sub:
		return a - b
	case Mul:
		return a * b
	}
	return a / b
}

var binaryCases = []struct {
	out, lhs, rhs []int
}{
	{[]int{7}, []int{7}, []int{7}},
	{[]int{}, []int{}, []int{}},
	{[]int{5, 3}, []int{}, []int{5, 3}},
	{[]int{5, 3}, []int{5, 3}, []int{}},
	{[]int{5, 3}, []int{5, 3}, []int{1, 1}},
	{[]int{4, 3, 6}, []int{1, 1, 6}, []int{4, 3, 6}},          // Bias add.
	{[]int{4, 3, 6}, []int{4, 3, 6}, []int{4, 3, 1}},          // LayerNorm's mean.
	{[]int{4, 3, 6}, []int{4, 1, 6}, []int{1, 3, 1}},          // Both broadcast, alternating.
	{[]int{2, 3, 4, 5}, []int{2, 1, 1, 5}, []int{2, 3, 4, 5}}, // Attention mask bias.
	{[]int{2, 1, 4, 5}, []int{2, 1, 4, 1}, []int{1, 1, 4, 5}},
	{[]int{300, 257}, []int{300, 1}, []int{1, 257}}, // Large enough to run in parallel.
	{[]int{600, 300}, []int{600, 300}, []int{600, 300}},
	{[]int{3, 0, 2}, []int{3, 0, 2}, []int{1, 0, 1}},
}

func TestBinary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range binaryCases {
		for op := Add; op <= Div; op++ {
			t.Run(fmt.Sprintf("%s/%v_%v_%v", op, c.out, c.lhs, c.rhs), func(t *testing.T) {
				lhs, rhs := randomValues(rng, size(c.lhs)), randomValues(rng, size(c.rhs))
				if len(lhs) > 2 {
					lhs[1] = float32(math.NaN())
					lhs[2] = float32(math.Inf(1))
				}
				for _, workers := range []int{1, 2, 3} {
					out := make([]float32, size(c.out))
					if err := Binary(op, out, lhs, rhs, c.out, c.lhs, c.rhs, workers); err != nil {
						t.Fatal(err)
					}
					for i := range out {
						coords := unflatten(i, c.out)
						li, ri := 0, 0
						if size(c.lhs) > 1 {
							li = flatIndex(coords, c.lhs)
						}
						if size(c.rhs) > 1 {
							ri = flatIndex(coords, c.rhs)
						}
						if want := apply(op, lhs[li], rhs[ri]); !same(out[i], want) {
							t.Fatalf("workers %d: out[%d] (%v) = %v, want %v", workers, i, coords, out[i], want)
						}
					}
				}
			})
		}
	}
}

func TestBinaryInPlace(t *testing.T) {
	// out aliases the full-size operand, as when the executor reuses an input buffer.
	rng := rand.New(rand.NewPCG(3, 4))
	dims, bias := []int{400, 200}, []int{1, 200}
	lhs, rhs := randomValues(rng, size(dims)), randomValues(rng, size(bias))
	want := make([]float32, len(lhs))
	if err := Binary(Sub, want, lhs, rhs, dims, dims, bias, 1); err != nil {
		t.Fatal(err)
	}
	if err := Binary(Sub, lhs, lhs, rhs, dims, dims, bias, 2); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lhs, want) {
		t.Error("in-place result differs")
	}
}

func TestBinaryErrors(t *testing.T) {
	for _, tc := range []struct {
		out, lhs, rhs []int
		outLen        int
		want          string
	}{
		{[]int{4, 3}, []int{4, 2}, []int{4, 3}, 12, "axis 1"},
		{[]int{4, 3}, []int{3}, []int{4, 3}, 12, "ranks differ"},
		{[]int{4, 3}, []int{4, 3}, []int{4, 3}, 11, "into 11"},
	} {
		err := Binary(Add, make([]float32, tc.outLen), make([]float32, size(tc.lhs)), make([]float32, size(tc.rhs)),
			tc.out, tc.lhs, tc.rhs, 1)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Binary(%v, %v -> %v) error = %v, want %q", tc.lhs, tc.rhs, tc.out, err, tc.want)
		}
	}
	if err := Binary(BinaryOp(9), nil, nil, nil, nil, nil, nil, 1); err == nil {
		t.Error("unknown op accepted")
	}
}

func TestBroadcastInDim(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct {
		out, in, axes []int
	}{
		{[]int{4, 5}, []int{}, []int{}},
		{[]int{4, 5}, []int{5}, []int{1}},
		{[]int{4, 5}, []int{4}, []int{0}},
		{[]int{3, 4, 5}, []int{3, 5}, []int{0, 2}},
		{[]int{3, 4, 5}, []int{3, 1, 5}, []int{0, 1, 2}},
		{[]int{3, 4, 5}, []int{5, 3}, []int{2, 0}}, // Transposing.
		{[]int{500, 300}, []int{300}, []int{1}},    // Parallel.
		{[]int{500, 300}, []int{500}, []int{0}},
		{[]int{70000}, []int{}, []int{}},
	} {
		in := randomValues(rng, size(c.in))
		for _, workers := range []int{1, 2} {
			out := make([]float32, size(c.out))
			if err := BroadcastInDim(out, in, c.out, c.in, c.axes, workers); err != nil {
				t.Fatal(err)
			}
			for i := range out {
				coords := unflatten(i, c.out)
				src := 0
				for j, a := range c.axes {
					coord := coords[a]
					if c.in[j] == 1 {
						coord = 0
					}
					src = src*c.in[j] + coord
				}
				if out[i] != in[src] {
					t.Fatalf("BroadcastInDim(%v -> %v, axes %v) workers %d: out[%d] = %v, want in[%d] = %v",
						c.in, c.out, c.axes, workers, i, out[i], src, in[src])
				}
			}
		}
	}
	if err := BroadcastInDim(make([]float32, 6), make([]float32, 3), []int{2, 3}, []int{3}, []int{0}, 1); err == nil {
		t.Error("mismatched axis accepted")
	}
}

func TestReduce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, c := range []struct {
		in, axes []int
	}{
		{[]int{7}, []int{0}},
		{[]int{4, 6}, []int{1}},              // Softmax's sum over the last axis.
		{[]int{4, 6}, []int{0}},              // A bias gradient.
		{[]int{4, 6}, []int{0, 1}},           // Everything.
		{[]int{4, 6}, []int{}},               // Nothing.
		{[]int{3, 4, 5}, []int{1}},           // Middle axis.
		{[]int{3, 4, 5}, []int{0, 2}},        // Alternating.
		{[]int{2, 3, 4, 5}, []int{3, 1}},     // Unordered axes.
		{[]int{300, 400}, []int{1}},          // Parallel, kept outer axis.
		{[]int{300, 400}, []int{0}},          // Reduced outer axis.
		{[]int{8, 1, 100, 100}, []int{2, 3}}, // Size-1 axis kept.
	} {
		var outDims []int
		for a, d := range c.in {
			if !slices.Contains(c.axes, a) {
				outDims = append(outDims, d)
			}
		}
		// outIndex is the output element of input element i.
		outIndex := func(i int) int {
			coords := unflatten(i, c.in)
			o := 0
			for a, d := range c.in {
				if !slices.Contains(c.axes, a) {
					o = o*d + coords[a]
				}
			}
			return o
		}
		// Max and Min are exact: the references go in row-major order, one element at a time.
		in := randomValues(rng, size(c.in))
		in[len(in)/2] = float32(math.Inf(1))
		for _, op := range []ReduceOp{ReduceMax, ReduceMin} {
			want := make([]float32, size(outDims))
			for i := range want {
				want[i] = op.identity()
			}
			for i, v := range in {
				if op == ReduceMax {
					want[outIndex(i)] = max(want[outIndex(i)], v)
				} else {
					want[outIndex(i)] = min(want[outIndex(i)], v)
				}
			}
			for _, workers := range []int{1, 2} {
				out := make([]float32, size(outDims))
				if err := Reduce(op, out, in, c.in, c.axes, workers); err != nil {
					t.Fatal(err)
				}
				for i := range out {
					if !same(out[i], want[i]) {
						t.Fatalf("%s(%v over %v) workers %d: out[%d] = %v, want %v", op, c.in, c.axes, workers, i, out[i], want[i])
					}
				}
			}
		}
		// Sums against a float64 reference: exact on integer values in -3..3 (every partial
		// sum is exact in float32), and on normal values within the recursive-summation bound
		// (count+1) * 2^-24 * sum |v| of float32 sums of count values.
		for _, integers := range []bool{true, false} {
			vals := make([]float32, size(c.in))
			for i := range vals {
				if integers {
					vals[i] = float32(rng.IntN(7) - 3)
				} else {
					vals[i] = float32(rng.NormFloat64())
				}
			}
			want := make([]float64, size(outDims))
			abs := make([]float64, size(outDims))
			for i, v := range vals {
				want[outIndex(i)] += float64(v)
				abs[outIndex(i)] += math.Abs(float64(v))
			}
			count := size(c.in) / max(1, size(outDims))
			for _, workers := range []int{1, 2} {
				out := make([]float32, size(outDims))
				if err := Reduce(ReduceSum, out, vals, c.in, c.axes, workers); err != nil {
					t.Fatal(err)
				}
				for i := range out {
					bound := 0.0
					if !integers {
						bound = float64(count+1) * 0x1p-24 * abs[i]
					}
					if d := math.Abs(float64(out[i]) - want[i]); d > bound {
						t.Fatalf("ReduceSum(%v over %v) workers %d integers %v: out[%d] = %v, want %v (bound %g)",
							c.in, c.axes, workers, integers, i, out[i], want[i], bound)
					}
				}
			}
		}
	}
	if err := Reduce(ReduceSum, make([]float32, 2), make([]float32, 6), []int{2, 3}, []int{1, 1}, 1); err == nil {
		t.Error("repeated axis accepted")
	}
}

func TestFill(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 17, 31, 32, 33, 64, 1000} {
		dst := make([]float32, n)
		fill(dst, 2.5)
		for i, v := range dst {
			if v != 2.5 {
				t.Fatalf("fill(%d): dst[%d] = %v", n, i, v)
			}
		}
	}
}

// TestBinaryLoops checks the SIMD loops (where the CPU has them) against the plain Go
// loops for every operation, operand pattern and length around the SIMD block, at unaligned
// starts, with special values: bit-identical results.
func TestBinaryLoops(t *testing.T) {
	t.Logf("SIMD loops available: %v", hasSIMD)
	rng := rand.New(rand.NewPCG(11, 12))
	a, b := randomValues(rng, 1200), randomValues(rng, 1200)
	a[5], a[40], b[7] = float32(math.NaN()), float32(math.Inf(-1)), 0
	for op := Add; op <= Div; op++ {
		for _, n := range []int{0, 1, 31, 32, 33, 63, 64, 65, 100, 1000, 1100} {
			for _, off := range []int{0, 1, 3} {
				x, y := a[off:off+n], b[off:off+n]
				got, want := make([]float32, n), make([]float32, n)
				binaryVectors(op, got, x, y)
				binaryVectorsGo(op, want, x, y)
				checkSame(t, fmt.Sprintf("%s vv n=%d off=%d", op, n, off), got, want)
				binaryScalarRHS(op, got, x, b[1])
				binaryScalarRHSGo(op, want, x, b[1])
				checkSame(t, fmt.Sprintf("%s vs n=%d off=%d", op, n, off), got, want)
				binaryScalarLHS(op, got, a[1], y)
				binaryScalarLHSGo(op, want, a[1], y)
				checkSame(t, fmt.Sprintf("%s sv n=%d off=%d", op, n, off), got, want)
			}
		}
	}
}

func checkSame(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if !same(got[i], want[i]) {
			t.Fatalf("%s: [%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestWhere(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, n := range []int{0, 1, 7, 100, 70000} {
		cond := make([]bool, n)
		for i := range cond {
			cond[i] = rng.IntN(10) != 0
		}
		a, b := randomValues(rng, n), randomValues(rng, n)
		if n > 3 {
			a[2], b[3] = float32(math.NaN()), float32(math.Copysign(0, -1))
		}
		for _, scalars := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
			t1, f1 := a, b
			if scalars[0] {
				t1 = []float32{-7}
			}
			if scalars[1] {
				f1 = []float32{float32(math.Inf(1))}
			}
			for _, workers := range []int{1, 2} {
				out := make([]float32, n)
				if err := Where(out, cond, t1, f1, workers); err != nil {
					t.Fatal(err)
				}
				for i := range out {
					want := pick(f1, i)
					if cond[i] {
						want = pick(t1, i)
					}
					if math.Float32bits(out[i]) != math.Float32bits(want) {
						t.Fatalf("n=%d scalars=%v: out[%d] = %v, want %v", n, scalars, i, out[i], want)
					}
				}
			}
		}
	}
	if err := Where(make([]float32, 3), make([]bool, 2), []float32{1}, []float32{1}, 1); err == nil {
		t.Error("length mismatch accepted")
	}
}

func pick(v []float32, i int) float32 {
	if len(v) == 1 {
		return v[0]
	}
	return v[i]
}

func TestTranspose(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, c := range []struct{ dims, perm []int }{
		{[]int{5}, []int{0}},
		{[]int{3, 4}, []int{1, 0}},
		{[]int{2, 3, 4, 5}, []int{0, 2, 1, 3}}, // Attention heads <-> tokens, rows kept.
		{[]int{2, 3, 4}, []int{2, 0, 1}},
		{[]int{300, 257}, []int{1, 0}}, // Parallel.
		{[]int{32, 4, 32, 16}, []int{0, 2, 1, 3}},
	} {
		in := randomValues(rng, size(c.dims))
		outDims := make([]int, len(c.perm))
		for i, a := range c.perm {
			outDims[i] = c.dims[a]
		}
		for _, workers := range []int{1, 2} {
			out := make([]float32, len(in))
			if err := Transpose(out, in, c.dims, c.perm, workers); err != nil {
				t.Fatal(err)
			}
			for i := range out {
				oc := unflatten(i, outDims)
				ic := make([]int, len(c.dims))
				for j, a := range c.perm {
					ic[a] = oc[j]
				}
				if want := in[flatIndex(ic, c.dims)]; out[i] != want {
					t.Fatalf("Transpose(%v, %v): out%v = %v, want %v", c.dims, c.perm, oc, out[i], want)
				}
			}
		}
	}
	if err := Transpose(make([]float32, 6), make([]float32, 6), []int{2, 3}, []int{0, 0}, 1); err == nil {
		t.Error("invalid permutation accepted")
	}
}

func TestReduceMaxMinSpecialValues(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	for _, c := range []struct {
		in       []float32
		max, min float32
	}{
		{[]float32{0, negZero, 0, negZero, negZero}, 0, negZero},
		{[]float32{negZero, negZero, negZero, negZero, negZero, negZero}, negZero, negZero},
		{[]float32{1, 2, 3, float32(math.NaN()), 5, 6, 7}, float32(math.NaN()), float32(math.NaN())},
		{[]float32{-1, -2, float32(math.Inf(-1)), 4, 3, 2, 1, 0, 9}, 9, float32(math.Inf(-1))},
	} {
		for _, op := range []ReduceOp{ReduceMax, ReduceMin} {
			out := make([]float32, 1)
			if err := Reduce(op, out, c.in, []int{len(c.in)}, []int{0}, 1); err != nil {
				t.Fatal(err)
			}
			want := c.max
			if op == ReduceMin {
				want = c.min
			}
			if math.Float32bits(out[0]) != math.Float32bits(want) && !(out[0] != out[0] && want != want) {
				t.Errorf("%s(%v) = %v, want %v", op, c.in, out[0], want)
			}
		}
	}
}

// BenchmarkBinary times Mul of two vectors (the commonest op of a training step) with the
// SIMD loop and the Go loop, on 64K values (in L2) and 2M values (8 MB, in L3 or memory).
func BenchmarkBinary(b *testing.B) {
	for _, n := range []int{1 << 16, 1 << 21} {
		x, y, z := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range x {
			x[i], y[i] = float32(i%7), float32(i%5)
		}
		for _, loop := range []struct {
			name string
			fn   func(op BinaryOp, dst, a, b []float32)
		}{{"simd", binaryVectors}, {"go_loop", binaryVectorsGo}} {
			b.Run(fmt.Sprintf("Mul/%d/%s", n, loop.name), func(b *testing.B) {
				for b.Loop() {
					loop.fn(Mul, z, x, y)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/value")
			})
		}
	}
}
