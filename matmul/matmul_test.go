package matmul

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The kernels are checked against referenceDotGeneral, a float64 implementation written
// from the definition (multi-indices over the axes, no offset tables, no blocking), in
// two ways for every kernel available on this CPU, worker count and case:
//
//   - exact: operands drawn from the integers -3..3, so every product and every partial
//     sum is an integer below 2^24 and exactly representable in float32 whatever the
//     summation order: the kernel's output must equal the reference bit for bit. Any
//     indexing, packing, padding or accumulation mistake shows up here with no tolerance.
//   - rounding: operands drawn from a normal distribution. The kernels sum each output in
//     float32 in contracting order (kc-blocks added to the running value), so the error is
//     within the classical bound for recursive summation,
//     |out - ref| <= (K+2) * 2^-24 * sum_k |lhs_k * rhs_k|   (tolerance stated per element),
//     (K roundings for the sums, one more for a product without fused multiply-add).

// dotCase is one DotGeneral to check.
type dotCase struct {
	name             string
	lhsDims, rhsDims []int
	lhsC, lhsB       []int
	rhsC, rhsB       []int
}

var dotCases = []dotCase{
	{name: "1x1x1", lhsDims: []int{1, 1}, lhsC: []int{1}, rhsDims: []int{1, 1}, rhsC: []int{1}},
	{name: "one_row", lhsDims: []int{1, 37}, lhsC: []int{1}, rhsDims: []int{29, 37}, rhsC: []int{1}},
	{name: "one_column", lhsDims: []int{41, 19}, lhsC: []int{1}, rhsDims: []int{19, 1}, rhsC: []int{0}},
	{name: "k1", lhsDims: []int{13, 1}, lhsC: []int{1}, rhsDims: []int{1, 35}, rhsC: []int{0}},
	{name: "odd_sizes", lhsDims: []int{13, 7}, lhsC: []int{1}, rhsDims: []int{7, 17}, rhsC: []int{0}},
	{name: "exact_tiles", lhsDims: []int{24, 16}, lhsC: []int{1}, rhsDims: []int{64, 16}, rhsC: []int{1}},
	{name: "k_over_block", lhsDims: []int{13, 300}, lhsC: []int{1}, rhsDims: []int{37, 300}, rhsC: []int{1}},
	{name: "k_two_blocks_plus_one", lhsDims: []int{5, 513}, lhsC: []int{1}, rhsDims: []int{513, 33}, rhsC: []int{0}},
	{name: "m_over_block", lhsDims: []int{203, 9}, lhsC: []int{1}, rhsDims: []int{35, 9}, rhsC: []int{1}},
	{name: "n_over_block", lhsDims: []int{3, 5}, lhsC: []int{1}, rhsDims: []int{1100, 5}, rhsC: []int{1}},
	{name: "lhs_transposed", lhsDims: []int{300, 21}, lhsC: []int{0}, rhsDims: []int{300, 19}, rhsC: []int{0}},
	{name: "rhs_row_major", lhsDims: []int{21, 40}, lhsC: []int{1}, rhsDims: []int{40, 45}, rhsC: []int{0}},
	{name: "both_transposed", lhsDims: []int{40, 21}, lhsC: []int{0}, rhsDims: []int{45, 40}, rhsC: []int{1}},
	{name: "dense_3d", lhsDims: []int{3, 11, 16}, lhsC: []int{2}, rhsDims: []int{33, 16}, rhsC: []int{1}},
	{name: "batched", lhsDims: []int{8, 13, 9}, lhsC: []int{2}, lhsB: []int{0}, rhsDims: []int{8, 9, 17}, rhsC: []int{1}, rhsB: []int{0}},
	{name: "batch_3", lhsDims: []int{3, 13, 9}, lhsC: []int{2}, lhsB: []int{0}, rhsDims: []int{3, 17, 9}, rhsC: []int{2}, rhsB: []int{0}},
	{name: "batch_not_first", lhsDims: []int{13, 5, 9}, lhsC: []int{2}, lhsB: []int{1}, rhsDims: []int{9, 5, 17}, rhsC: []int{0}, rhsB: []int{1}},
	{name: "attention_scores", lhsDims: []int{2, 19, 3, 8}, lhsC: []int{3}, lhsB: []int{0, 2}, rhsDims: []int{2, 23, 3, 8}, rhsC: []int{3}, rhsB: []int{0, 2}},
	{name: "attention_context", lhsDims: []int{2, 3, 19, 23}, lhsC: []int{3}, lhsB: []int{0, 1}, rhsDims: []int{2, 23, 3, 8}, rhsC: []int{1}, rhsB: []int{0, 2}},
	{name: "heads_contracted", lhsDims: []int{2, 3, 19, 8}, lhsC: []int{1, 3}, rhsDims: []int{24, 3, 8}, rhsC: []int{1, 2}},
	{name: "two_contracting_permuted", lhsDims: []int{2, 7, 4}, lhsC: []int{2, 0}, rhsDims: []int{4, 9, 2}, rhsC: []int{0, 2}},
	{name: "negative_axes", lhsDims: []int{6, 7, 5}, lhsC: []int{-1}, lhsB: []int{-3}, rhsDims: []int{6, 5, 3}, rhsC: []int{-2}, rhsB: []int{0}},
	{name: "outer_product", lhsDims: []int{7}, rhsDims: []int{33}},
	{name: "batch_only", lhsDims: []int{5, 3}, lhsB: []int{0}, rhsDims: []int{5, 4}, rhsB: []int{0}},
	{name: "vector_dot", lhsDims: []int{300}, lhsC: []int{0}, rhsDims: []int{300}, rhsC: []int{0}},
	{name: "token_at", lhsDims: []int{3, 9, 20}, lhsC: []int{1}, rhsDims: []int{9}, rhsC: []int{0}},
}

// referenceDotGeneral computes DotGeneral in float64 from its definition: for every
// output multi-index (batch, lhs cross, rhs cross axes) and every contracting
// multi-index, the coordinates of both operands are assembled axis by axis.
func referenceDotGeneral(c dotCase, lhs, rhs []float64) (out, absSum []float64, k int) {
	lc, lb := normalize(c.lhsC, len(c.lhsDims)), normalize(c.lhsB, len(c.lhsDims))
	rc, rb := normalize(c.rhsC, len(c.rhsDims)), normalize(c.rhsB, len(c.rhsDims))
	lhsCross := crossAxes(len(c.lhsDims), lc, lb)
	rhsCross := crossAxes(len(c.rhsDims), rc, rb)
	var outDims, contractDims []int
	for _, a := range lb {
		outDims = append(outDims, c.lhsDims[a])
	}
	for _, a := range lhsCross {
		outDims = append(outDims, c.lhsDims[a])
	}
	for _, a := range rhsCross {
		outDims = append(outDims, c.rhsDims[a])
	}
	for _, a := range lc {
		contractDims = append(contractDims, c.lhsDims[a])
	}
	k = product(contractDims)
	out = make([]float64, product(outDims))
	absSum = make([]float64, len(out))
	lhsIdx := make([]int, len(c.lhsDims))
	rhsIdx := make([]int, len(c.rhsDims))
	for o := range out {
		oc := unflatten(o, outDims)
		pos := 0
		for i, a := range lb {
			lhsIdx[a], rhsIdx[rb[i]] = oc[pos], oc[pos]
			pos++
		}
		for _, a := range lhsCross {
			lhsIdx[a] = oc[pos]
			pos++
		}
		for _, a := range rhsCross {
			rhsIdx[a] = oc[pos]
			pos++
		}
		for kk := range k {
			kc := unflatten(kk, contractDims)
			for i, a := range lc {
				lhsIdx[a], rhsIdx[rc[i]] = kc[i], kc[i]
			}
			p := lhs[flatten(lhsIdx, c.lhsDims)] * rhs[flatten(rhsIdx, c.rhsDims)]
			out[o] += p
			absSum[o] += math.Abs(p)
		}
	}
	return out, absSum, k
}

func normalize(axes []int, rank int) []int {
	out := make([]int, len(axes))
	for i, a := range axes {
		if a < 0 {
			a += rank
		}
		out[i] = a
	}
	return out
}

func crossAxes(rank int, contracting, batch []int) []int {
	var out []int
	for a := range rank {
		if !slices.Contains(contracting, a) && !slices.Contains(batch, a) {
			out = append(out, a)
		}
	}
	return out
}

func product(dims []int) int {
	p := 1
	for _, d := range dims {
		p *= d
	}
	return p
}

// unflatten returns the row-major coordinates of flat index i in dims.
func unflatten(i int, dims []int) []int {
	coords := make([]int, len(dims))
	for a := len(dims) - 1; a >= 0; a-- {
		coords[a] = i % dims[a]
		i /= dims[a]
	}
	return coords
}

func flatten(coords, dims []int) int {
	i := 0
	for a, c := range coords {
		i = i*dims[a] + c
	}
	return i
}

// operands returns float32 operands for c and their float64 copies: integers in -3..3
// when integers is set, else standard normal values.
func operands(c dotCase, rng *rand.Rand, integers bool) (lhs, rhs []float32, lhs64, rhs64 []float64) {
	draw := func(n int) ([]float32, []float64) {
		f32 := make([]float32, n)
		f64 := make([]float64, n)
		for i := range f32 {
			if integers {
				f32[i] = float32(rng.IntN(7) - 3)
			} else {
				f32[i] = float32(rng.NormFloat64())
			}
			f64[i] = float64(f32[i])
		}
		return f32, f64
	}
	lhs, lhs64 = draw(product(c.lhsDims))
	rhs, rhs64 = draw(product(c.rhsDims))
	return lhs, rhs, lhs64, rhs64
}

func run(t *testing.T, k *Kernel, c dotCase, lhs, rhs []float32, workers int) []float32 {
	t.Helper()
	p, err := NewProduct(Operand{Dims: c.lhsDims, Contracting: c.lhsC, Batch: c.lhsB},
		Operand{Dims: c.rhsDims, Contracting: c.rhsC, Batch: c.rhsB})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Shape()
	out := make([]float32, s.Batch*s.M*s.N)
	for i := range out {
		out[i] = float32(math.NaN()) // The kernel must overwrite every element.
	}
	if err := k.Run(p, out, lhs, rhs, workers); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDotGeneralExactOnIntegers(t *testing.T) {
	for _, k := range Available() {
		for _, c := range dotCases {
			for _, workers := range []int{1, 2, 3} {
				t.Run(fmt.Sprintf("%s/%s/w%d", k.Name(), c.name, workers), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(uint64(len(c.name)), uint64(workers)))
					lhs, rhs, lhs64, rhs64 := operands(c, rng, true)
					want, _, _ := referenceDotGeneral(c, lhs64, rhs64)
					got := runForced(t, k, c, lhs, rhs, workers)
					for i := range want {
						if float64(got[i]) != want[i] {
							t.Fatalf("out[%d] = %v, want exactly %v (first mismatch of %d values)", i, got[i], want[i], len(want))
						}
					}
				})
			}
		}
	}
}

func TestDotGeneralRoundingBound(t *testing.T) {
	const u = 1.0 / (1 << 24) // float32 unit roundoff.
	for _, k := range Available() {
		for _, c := range dotCases {
			t.Run(k.Name()+"/"+c.name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(7, uint64(len(c.name))))
				lhs, rhs, lhs64, rhs64 := operands(c, rng, false)
				want, absSum, kdim := referenceDotGeneral(c, lhs64, rhs64)
				got := runForced(t, k, c, lhs, rhs, 2)
				worst := 0.0
				for i := range want {
					err := math.Abs(float64(got[i]) - want[i])
					bound := float64(kdim+2) * u * absSum[i]
					if err > bound || math.IsNaN(err) {
						t.Fatalf("out[%d] = %v, want %v: error %.3g above the bound %.3g", i, got[i], want[i], err, bound)
					}
					if absSum[i] > 0 {
						worst = max(worst, err/(u*absSum[i]))
					}
				}
				t.Logf("K=%d: largest error %.2f x 2^-24 x sum|products| (bound %d)", kdim, worst, kdim+2)
			})
		}
	}
}

// runForced runs the case with the parallel split forced even for small products, so that
// the worker paths are exercised by small, fast test cases.
func runForced(t *testing.T, k *Kernel, c dotCase, lhs, rhs []float32, workers int) []float32 {
	t.Helper()
	p, err := NewProduct(Operand{Dims: c.lhsDims, Contracting: c.lhsC, Batch: c.lhsB},
		Operand{Dims: c.rhsDims, Contracting: c.rhsC, Batch: c.rhsB})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Shape()
	out := make([]float32, s.Batch*s.M*s.N)
	for i := range out {
		out[i] = float32(math.NaN())
	}
	tasks := k.split(s, workers)
	if workers > 1 && (s.Batch > 1 || s.M > k.mr || s.N > k.nr) && len(tasks) < 2 {
		t.Fatalf("split(%+v, %d) gave %d task(s)", s, workers, len(tasks))
	}
	covered := make([]int, len(out))
	for _, task := range tasks {
		for b := task.b0; b < task.b1; b++ {
			for m := task.m0; m < task.m1; m++ {
				for n := task.n0; n < task.n1; n++ {
					covered[(b*s.M+m)*s.N+n]++
				}
			}
		}
	}
	for i, n := range covered {
		if n != 1 {
			t.Fatalf("split(%+v, %d): output %d covered %d times", s, workers, i, n)
		}
	}
	done := make(chan struct{})
	for _, task := range tasks {
		go func() {
			k.runTask(p, task, out, lhs, rhs)
			done <- struct{}{}
		}()
	}
	for range tasks {
		<-done
	}
	return out
}

func TestRunUsesWorkersAndMatchesSingle(t *testing.T) {
	// A product big enough to be split by Run itself (not forced): both results must be
	// identical bit for bit, since the split never cuts the contracting axis.
	c := dotCase{lhsDims: []int{2, 150, 70}, lhsC: []int{2}, rhsDims: []int{90, 70}, rhsC: []int{1}}
	rng := rand.New(rand.NewPCG(3, 4))
	lhs, rhs, _, _ := operands(c, rng, false)
	for _, k := range Available() {
		one := run(t, k, c, lhs, rhs, 1)
		two := run(t, k, c, lhs, rhs, 2)
		if !slices.Equal(one, two) {
			t.Errorf("%s: 1 and 2 workers differ", k.Name())
		}
	}
}

func TestMatMul(t *testing.T) {
	// [2,3] . [3,2] by hand.
	a := []float32{1, 2, 3, 4, 5, 6}
	b := []float32{7, 8, 9, 10, 11, 12}
	want := []float32{58, 64, 139, 154}
	for _, k := range Available() {
		c := make([]float32, 4)
		if err := k.MatMul(c, a, b, 2, 2, 3, 0); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c, want) {
			t.Errorf("%s: got %v, want %v", k.Name(), c, want)
		}
	}
}

func TestOutputDims(t *testing.T) {
	c := dotCases[slices.IndexFunc(dotCases, func(c dotCase) bool { return c.name == "attention_context" })]
	p, err := NewProduct(Operand{Dims: c.lhsDims, Contracting: c.lhsC, Batch: c.lhsB},
		Operand{Dims: c.rhsDims, Contracting: c.rhsC, Batch: c.rhsB})
	if err != nil {
		t.Fatal(err)
	}
	// lhs [2,3,19,23] batch {0,1} contract {3}; rhs [2,23,3,8] batch {0,2} contract {1}.
	if got, want := p.OutputDims(), []int{2, 3, 19, 8}; !slices.Equal(got, want) {
		t.Errorf("OutputDims = %v, want %v", got, want)
	}
	if got, want := p.Shape(), (Shape{Batch: 6, M: 19, N: 8, K: 23}); got != want {
		t.Errorf("Shape = %+v, want %+v", got, want)
	}
}

func TestErrors(t *testing.T) {
	k := Best()
	for _, tc := range []struct {
		name     string
		lhs, rhs Operand
		out      int
		want     string
	}{
		{"contracting_mismatch", Operand{Data: make([]float32, 6), Dims: []int{2, 3}, Contracting: []int{1}},
			Operand{Data: make([]float32, 8), Dims: []int{4, 2}, Contracting: []int{0}}, 4, "contracting dimensions differ"},
		{"batch_mismatch", Operand{Data: make([]float32, 6), Dims: []int{2, 3}, Batch: []int{0}},
			Operand{Data: make([]float32, 6), Dims: []int{3, 2}, Batch: []int{0}}, 6, "batch dimensions differ"},
		{"axis_out_of_range", Operand{Data: make([]float32, 6), Dims: []int{2, 3}, Contracting: []int{2}},
			Operand{Data: make([]float32, 3), Dims: []int{3}, Contracting: []int{0}}, 2, "out of range"},
		{"axis_twice", Operand{Data: make([]float32, 6), Dims: []int{2, 3}, Contracting: []int{1}, Batch: []int{1}},
			Operand{Data: make([]float32, 9), Dims: []int{3, 3}, Contracting: []int{0}, Batch: []int{1}}, 2, "used twice"},
		{"axis_count_mismatch", Operand{Data: make([]float32, 6), Dims: []int{2, 3}, Contracting: []int{1}},
			Operand{Data: make([]float32, 3), Dims: []int{3}}, 2, "contracting"},
		{"short_data", Operand{Data: make([]float32, 5), Dims: []int{2, 3}, Contracting: []int{1}},
			Operand{Data: make([]float32, 3), Dims: []int{3}, Contracting: []int{0}}, 2, "elements"},
		{"short_output", Operand{Data: make([]float32, 6), Dims: []int{2, 3}, Contracting: []int{1}},
			Operand{Data: make([]float32, 3), Dims: []int{3}, Contracting: []int{0}}, 1, "output has 1 elements"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := k.DotGeneral(make([]float32, tc.out), tc.lhs, tc.rhs, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	best, err := Lookup("")
	if err != nil || best != Best() {
		t.Errorf(`Lookup("") = %v, %v; want Best()`, best, err)
	}
	g, err := Lookup("Generic")
	if err != nil || g.Name() != Generic {
		t.Errorf(`Lookup("Generic") = %v, %v`, g, err)
	}
	if avail := Available(); avail[len(avail)-1].Name() != Generic {
		t.Errorf("the last available kernel is %s, want generic", avail[len(avail)-1])
	}
	if _, err := Lookup("sse9"); err == nil || !strings.Contains(err.Error(), "unknown kernel") {
		t.Errorf(`Lookup("sse9") error = %v`, err)
	}
	for _, name := range []string{AVX512, AVX2} {
		k, err := Lookup(name)
		supported := slices.ContainsFunc(Available(), func(k *Kernel) bool { return k.Name() == name })
		if supported != (err == nil) || (err == nil && k.Name() != name) {
			t.Errorf("Lookup(%q) = %v, %v; available %v", name, k, err, Available())
		}
	}
}

func TestOffsetTable(t *testing.T) {
	// dims [2,3,4], strides [12,4,1]; group (axis 2, axis 0): index = c2*2 + c0.
	got := offsetTable([]int{2, 3, 4}, []int{12, 4, 1}, []int{2, 0})
	want := []int{0, 12, 1, 13, 2, 14, 3, 15}
	if !slices.Equal(got, want) {
		t.Errorf("offsetTable = %v, want %v", got, want)
	}
	if s := affineStride([]int{0, 3, 6, 9}); s != 3 {
		t.Errorf("affineStride = %d, want 3", s)
	}
	if s := affineStride(want); s != 0 {
		t.Errorf("affineStride of a non-affine table = %d, want 0", s)
	}
}
