package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// How the tests get every gradient in one test binary, whatever the order tests run in:
//
//   - reference: a brute-force float64 loop over all (lhs element, rhs element) pairs in plain
//     Go (independent of GoMLX), itself checked against central finite differences of the
//     compiled forward DotGeneral (exact up to rounding, the function being bilinear);
//   - stock: GoMLX's own VJP, captured in stockDotGeneralVJP/stockDotVJP at package
//     initialisation (before InstallFastDotGradients can run) and called directly on the node,
//     so it does not matter whether the registration was already replaced;
//   - fast: graph.Gradient after InstallFastDotGradients, i.e. through the process-global
//     registration that training uses.

type dotCase struct {
	name            string
	useDot          bool // graph.Dot instead of graph.DotGeneral.
	lhsDims         []int
	lhsC, lhsB      []int
	rhsDims         []int
	rhsC, rhsB      []int
	dtype           dtypes.DType
	finiteDiffCheck bool
}

var dotCases = []dotCase{
	{name: "matmul", lhsDims: []int{3, 4}, lhsC: []int{1}, rhsDims: []int{4, 5}, rhsC: []int{0}},
	{name: "dense_hf_layout", lhsDims: []int{2, 3, 4}, lhsC: []int{2}, rhsDims: []int{5, 4}, rhsC: []int{1}},
	{name: "batched_matmul", lhsDims: []int{2, 3, 4}, lhsC: []int{2}, lhsB: []int{0}, rhsDims: []int{2, 4, 5}, rhsC: []int{1}, rhsB: []int{0}},
	{name: "attention_scores", lhsDims: []int{2, 3, 2, 4}, lhsC: []int{3}, lhsB: []int{0, 2}, rhsDims: []int{2, 5, 2, 4}, rhsC: []int{3}, rhsB: []int{0, 2}},
	{name: "attention_context", lhsDims: []int{2, 2, 3, 5}, lhsC: []int{3}, lhsB: []int{0, 1}, rhsDims: []int{2, 2, 5, 4}, rhsC: []int{2}, rhsB: []int{0, 1}},
	{name: "transposed_contracting", lhsDims: []int{4, 3}, lhsC: []int{0}, rhsDims: []int{5, 4}, rhsC: []int{1}},
	{name: "two_contracting_permuted", lhsDims: []int{2, 3, 4}, lhsC: []int{2, 0}, rhsDims: []int{4, 5, 2}, rhsC: []int{0, 2}},
	{name: "batch_not_first", lhsDims: []int{3, 2, 4}, lhsC: []int{2}, lhsB: []int{1}, rhsDims: []int{4, 2, 5}, rhsC: []int{0}, rhsB: []int{1}},
	{name: "outer_product", lhsDims: []int{3}, rhsDims: []int{4}},
	{name: "batch_only", lhsDims: []int{3, 2}, lhsB: []int{0}, rhsDims: []int{3, 4}, rhsB: []int{0}},
	{name: "dot_matmul", useDot: true, lhsDims: []int{3, 4}, rhsDims: []int{4, 5}},
	{name: "dot_matvec", useDot: true, lhsDims: []int{3, 4}, rhsDims: []int{4}},
	{name: "dot_vecvec", useDot: true, lhsDims: []int{4}, rhsDims: []int{4}},
}

func init() {
	for i := range dotCases {
		dotCases[i].dtype = dtypes.Float64
		dotCases[i].finiteDiffCheck = true
	}
	// A float32 dense layer at a realistic size: checked against stock and the reference.
	dotCases = append(dotCases,
		dotCase{name: "dense_float32", lhsDims: []int{64, 48}, lhsC: []int{1}, rhsDims: []int{32, 48}, rhsC: []int{1}, dtype: dtypes.Float32},
		dotCase{name: "dense_float32_wgrad_layout", lhsDims: []int{2, 16, 24}, lhsC: []int{2}, rhsDims: []int{24, 40}, rhsC: []int{0}, dtype: dtypes.Float32},
	)
}

func (c dotCase) axes(t *testing.T) DotAxes {
	if !c.useDot {
		return DotAxes{LhsContracting: c.lhsC, LhsBatch: c.lhsB, RhsContracting: c.rhsC, RhsBatch: c.rhsB}
	}
	axes, err := dotAxes(len(c.lhsDims), len(c.rhsDims))
	if err != nil {
		t.Fatal(err)
	}
	return axes
}

func (c dotCase) forward(lhs, rhs *graph.Node) *graph.Node {
	if c.useDot {
		return graph.Dot(lhs, rhs)
	}
	return graph.DotGeneral(lhs, c.lhsC, c.lhsB, rhs, c.rhsC, c.rhsB)
}

func testBackend(t testing.TB) backends.Backend {
	t.Helper()
	backend, err := simplego.New("ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	return backend
}

func randomTensor(rng *rand.Rand, dtype dtypes.DType, dims []int) (*tensors.Tensor, []float64) {
	n := 1
	for _, d := range dims {
		n *= d
	}
	values := make([]float64, n)
	for i := range values {
		values[i] = rng.Float64()*2 - 1
	}
	if dtype == dtypes.Float32 {
		f32 := make([]float32, n)
		for i, v := range values {
			f32[i] = float32(v)
			values[i] = float64(f32[i])
		}
		return tensors.FromFlatDataAndDimensions(f32, dims...), values
	}
	return tensors.FromFlatDataAndDimensions(slices.Clone(values), dims...), values
}

func flat64(t *testing.T, tensor *tensors.Tensor) []float64 {
	t.Helper()
	switch tensor.DType() {
	case dtypes.Float64:
		return tensors.MustCopyFlatData[float64](tensor)
	case dtypes.Float32:
		f32 := tensors.MustCopyFlatData[float32](tensor)
		out := make([]float64, len(f32))
		for i, v := range f32 {
			out[i] = float64(v)
		}
		return out
	}
	t.Fatalf("unexpected dtype %s", tensor.DType())
	return nil
}

func strides(dims []int) []int {
	s := make([]int, len(dims))
	acc := 1
	for i := len(dims) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= dims[i]
	}
	return s
}

func unflatten(idx int, dims []int) []int {
	out := make([]int, len(dims))
	for i := len(dims) - 1; i >= 0; i-- {
		out[i] = idx % dims[i]
		idx /= dims[i]
	}
	return out
}

// referenceGradients computes dL/dlhs and dL/drhs of L = sum(DotGeneral(lhs, rhs) * v) by
// brute force over every pair of lhs and rhs elements, in float64.
func referenceGradients(lhsDims, rhsDims []int, axes DotAxes, lhs, rhs, v []float64) (gradLhs, gradRhs []float64) {
	lhsCross := crossAxes(len(lhsDims), axes.LhsContracting, axes.LhsBatch)
	rhsCross := crossAxes(len(rhsDims), axes.RhsContracting, axes.RhsBatch)
	var outDims []int
	for _, a := range axes.LhsBatch {
		outDims = append(outDims, lhsDims[a])
	}
	for _, a := range lhsCross {
		outDims = append(outDims, lhsDims[a])
	}
	for _, a := range rhsCross {
		outDims = append(outDims, rhsDims[a])
	}
	outStrides := strides(outDims)
	gradLhs = make([]float64, len(lhs))
	gradRhs = make([]float64, len(rhs))
	for li := range lhs {
		lIdx := unflatten(li, lhsDims)
	pairs:
		for ri := range rhs {
			rIdx := unflatten(ri, rhsDims)
			for i, a := range axes.LhsBatch {
				if lIdx[a] != rIdx[axes.RhsBatch[i]] {
					continue pairs
				}
			}
			for i, a := range axes.LhsContracting {
				if lIdx[a] != rIdx[axes.RhsContracting[i]] {
					continue pairs
				}
			}
			outFlat, k := 0, 0
			for _, a := range axes.LhsBatch {
				outFlat += lIdx[a] * outStrides[k]
				k++
			}
			for _, a := range lhsCross {
				outFlat += lIdx[a] * outStrides[k]
				k++
			}
			for _, a := range rhsCross {
				outFlat += rIdx[a] * outStrides[k]
				k++
			}
			gradLhs[li] += v[outFlat] * rhs[ri]
			gradRhs[ri] += v[outFlat] * lhs[li]
		}
	}
	return gradLhs, gradRhs
}

// maxRelDiff returns max|a-b| / max(1, max|want|).
func maxRelDiff(got, want []float64) float64 {
	scale, diff := 1.0, 0.0
	for i := range want {
		scale = max(scale, math.Abs(want[i]))
		diff = max(diff, math.Abs(got[i]-want[i]))
	}
	return diff / scale
}

func TestFastDotGradientsMatchStockAndReference(t *testing.T) {
	InstallFastDotGradients()
	InstallFastDotGradients() // Idempotent.
	backend := testBackend(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range dotCases {
		t.Run(c.name, func(t *testing.T) {
			axes := c.axes(t)
			lhsT, lhs := randomTensor(rng, c.dtype, c.lhsDims)
			rhsT, rhs := randomTensor(rng, c.dtype, c.rhsDims)
			outShape := graph.MustExecOnce(backend, func(l, r *graph.Node) *graph.Node { return c.forward(l, r) }, lhsT, rhsT).Shape()
			vT, v := randomTensor(rng, c.dtype, outShape.Dimensions)

			exec, err := graph.NewExec(backend, func(l, r, v *graph.Node) []*graph.Node {
				y := c.forward(l, r)
				stockVJP := stockDotGeneralVJP
				if c.useDot {
					stockVJP = stockDotVJP
				}
				stock := stockVJP(y, []*graph.Node{v}, y.Shape())
				fast := graph.Gradient(graph.ReduceAllSum(graph.Mul(y, v)), l, r)
				return []*graph.Node{stock[0], stock[1], fast[0], fast[1]}
			})
			if err != nil {
				t.Fatal(err)
			}
			outs, err := exec.Exec(lhsT, rhsT, vT)
			if err != nil {
				t.Fatal(err)
			}
			refLhs, refRhs := referenceGradients(c.lhsDims, c.rhsDims, axes, lhs, rhs, v)
			tol := 1e-5
			for i, pair := range []struct {
				name string
				got  *tensors.Tensor
				want []float64
			}{
				{"stock dlhs vs reference", outs[0], refLhs},
				{"stock drhs vs reference", outs[1], refRhs},
				{"fast dlhs vs reference", outs[2], refLhs},
				{"fast drhs vs reference", outs[3], refRhs},
				{"fast dlhs vs stock", outs[2], flat64(t, outs[0])},
				{"fast drhs vs stock", outs[3], flat64(t, outs[1])},
			} {
				wantDims := c.lhsDims
				if i%2 == 1 {
					wantDims = c.rhsDims
				}
				if !slices.Equal(pair.got.Shape().Dimensions, wantDims) {
					t.Fatalf("%s: shape %s, want %v", pair.name, pair.got.Shape(), wantDims)
				}
				if d := maxRelDiff(flat64(t, pair.got), pair.want); d > tol {
					t.Errorf("%s: max relative diff %g > %g", pair.name, d, tol)
				}
			}
			if c.finiteDiffCheck {
				checkFiniteDifferences(t, backend, c, lhs, rhs, v, refLhs, refRhs)
			}
		})
	}
}

// checkFiniteDifferences validates the brute-force reference against central finite
// differences of the compiled forward pass, on a few elements of each operand.
func checkFiniteDifferences(t *testing.T, backend backends.Backend, c dotCase, lhs, rhs, v, refLhs, refRhs []float64) {
	t.Helper()
	loss, err := graph.NewExec(backend, func(l, r, v *graph.Node) *graph.Node {
		return graph.ReduceAllSum(graph.Mul(c.forward(l, r), v))
	})
	if err != nil {
		t.Fatal(err)
	}
	vDims := (func() []int {
		g := graph.MustExecOnce(backend, func(l, r *graph.Node) *graph.Node { return c.forward(l, r) },
			tensors.FromFlatDataAndDimensions(lhs, c.lhsDims...), tensors.FromFlatDataAndDimensions(rhs, c.rhsDims...))
		return g.Shape().Dimensions
	})()
	vT := tensors.FromFlatDataAndDimensions(v, vDims...)
	eval := func(l, r []float64) float64 {
		out, err := loss.Exec1(tensors.FromFlatDataAndDimensions(l, c.lhsDims...), tensors.FromFlatDataAndDimensions(r, c.rhsDims...), vT)
		if err != nil {
			t.Fatal(err)
		}
		return out.Value().(float64)
	}
	const h = 1e-3
	for operand, values := range [][]float64{lhs, rhs} {
		ref := [][]float64{refLhs, refRhs}[operand]
		for _, i := range []int{0, len(values) / 2, len(values) - 1} {
			plus, minus := slices.Clone(values), slices.Clone(values)
			plus[i] += h
			minus[i] -= h
			var fPlus, fMinus float64
			if operand == 0 {
				fPlus, fMinus = eval(plus, rhs), eval(minus, rhs)
			} else {
				fPlus, fMinus = eval(lhs, plus), eval(lhs, minus)
			}
			numeric := (fPlus - fMinus) / (2 * h)
			if math.Abs(numeric-ref[i]) > 1e-6*max(1, math.Abs(ref[i])) {
				t.Errorf("operand %d element %d: finite difference %g, reference %g", operand, i, numeric, ref[i])
			}
		}
	}
}

func TestDotGeneralAxesReadsNode(t *testing.T) {
	backend := testBackend(t)
	var got DotAxes
	var gotErr error
	x := tensors.FromShape(shapes.Make(dtypes.Float32, 2, 3, 4))
	w := tensors.FromShape(shapes.Make(dtypes.Float32, 2, 5, 4))
	graph.MustExecOnce(backend, func(x, w *graph.Node) *graph.Node {
		// Negative axes are normalised by graph.DotGeneral before they are stored.
		y := graph.DotGeneral(x, []int{-1}, []int{0}, w, []int{2}, []int{-3})
		got, gotErr = dotGeneralAxes(y)
		return y
	}, x, w)
	if gotErr != nil {
		t.Fatal(gotErr)
	}
	want := DotAxes{LhsContracting: []int{2}, LhsBatch: []int{0}, RhsContracting: []int{2}, RhsBatch: []int{0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("dotGeneralAxes = %+v, want %+v", got, want)
	}
	// A node of another type is rejected, not misread.
	graph.MustExecOnce(backend, func(x *graph.Node) *graph.Node {
		y := graph.Neg(x)
		if _, err := dotGeneralAxes(y); err == nil {
			t.Error("dotGeneralAxes accepted a Neg node")
		}
		return y
	}, x)
}

// TestFastDotGradientsNoOuterProduct pins the point of the fix: the gradient graph of a
// dense layer holds no tensor larger than the biggest operand or output, where the stock
// VJP materialises [batch, in, out].
func TestFastDotGradientsNoOuterProduct(t *testing.T) {
	InstallFastDotGradients()
	backend := testBackend(t)
	x := tensors.FromShape(shapes.Make(dtypes.Float32, 64, 32))
	w := tensors.FromShape(shapes.Make(dtypes.Float32, 32, 48))
	for _, useDot := range []bool{true, false} {
		graph.MustExecOnce(backend, func(x, w *graph.Node) *graph.Node {
			var y *graph.Node
			if useDot {
				y = graph.Dot(x, w)
			} else {
				y = graph.DotGeneral(x, []int{1}, nil, w, []int{0}, nil)
			}
			limit := max(x.Shape().Size(), w.Shape().Size(), y.Shape().Size())
			before := len(y.Graph().Nodes())
			grads := graph.Gradient(graph.ReduceAllSum(y), x, w)
			for _, node := range y.Graph().Nodes()[before:] {
				if node.NumOutputs() == 1 && node.Shape().Size() > limit {
					t.Errorf("Dot=%v: gradient node %s has %d elements > %d", useDot, node, node.Shape().Size(), limit)
				}
			}
			return graph.Add(graph.ReduceAllSum(grads[0]), graph.ReduceAllSum(grads[1]))
		}, x, w)
	}
}
