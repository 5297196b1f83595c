// Package elementwise provides float32 tensor operations that are bound by memory rather
// than arithmetic: binary operations with broadcasting, broadcasts into new axes and
// reductions over axes, for row-major tensors given as flat slices plus dimensions.
//
// Every operation first merges adjacent axes that behave alike (both operands read
// contiguously, or one of them repeated) so that the innermost loop runs over the longest
// possible contiguous run with a fixed pattern, and splits large outputs across
// goroutines. Results are bit-identical to evaluating each element on its own in float32
// (reductions: see Reduce for the summation order).
package elementwise

import (
	"fmt"
	"runtime"
	"sync"
)

// BinaryOp is an arithmetic operation of two float32 operands.
type BinaryOp uint8

// The binary operations.
const (
	Add BinaryOp = iota
	Sub
	Mul
	Div
)

// String returns the operation's name.
func (op BinaryOp) String() string {
	switch op {
	case Add:
		return "Add"
	case Sub:
		return "Sub"
	case Mul:
		return "Mul"
	case Div:
		return "Div"
	}
	return fmt.Sprintf("BinaryOp(%d)", uint8(op))
}

// minParallel is the output size under which an operation runs on the calling goroutine:
// below it, starting goroutines costs more than it saves.
const minParallel = 1 << 16

// size returns the number of elements of a tensor of the given dimensions.
func size(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// Binary computes out = lhs op rhs element by element, with broadcasting: lhsDims and
// rhsDims either have the rank of outDims with each dimension equal to the output's or 1
// (repeated along that axis), or describe a single element (a scalar of any rank). out may
// be the same slice as an operand whose dimensions equal outDims. workers is the number of
// goroutines to use (<= 0: GOMAXPROCS).
func Binary(op BinaryOp, out, lhs, rhs []float32, outDims, lhsDims, rhsDims []int, workers int) error {
	if op > Div {
		return fmt.Errorf("elementwise: unknown %s", op)
	}
	n := size(outDims)
	if len(out) != n || len(lhs) != size(lhsDims) || len(rhs) != size(rhsDims) {
		return fmt.Errorf("elementwise: %s of %d and %d elements into %d: want %d (%v), %d (%v) and %d (%v)",
			op, len(lhs), len(rhs), len(out), size(lhsDims), lhsDims, size(rhsDims), rhsDims, n, outDims)
	}
	lhsStrides, err := broadcastStrides(outDims, lhsDims)
	if err != nil {
		return fmt.Errorf("elementwise: %s lhs: %w", op, err)
	}
	rhsStrides, err := broadcastStrides(outDims, rhsDims)
	if err != nil {
		return fmt.Errorf("elementwise: %s rhs: %w", op, err)
	}
	if n == 0 {
		return nil
	}
	it := newIteration(outDims, contiguousStrides(outDims), lhsStrides, rhsStrides)
	lhsInner, rhsInner := it.innerStride(1), it.innerStride(2)
	parallel(it, n, workers, func(start, end int) {
		idx, offs := it.seek(start)
		for o := start; o < end; o++ {
			dst := out[offs[0] : offs[0]+it.inner]
			l, r := offs[1], offs[2]
			switch {
			case lhsInner == 0:
				binaryScalarLHS(op, dst, lhs[l], rhs[r:r+it.inner])
			case rhsInner == 0:
				binaryScalarRHS(op, dst, lhs[l:l+it.inner], rhs[r])
			default:
				binaryVectors(op, dst, lhs[l:l+it.inner], rhs[r:r+it.inner])
			}
			it.next(idx, offs)
		}
	})
	return nil
}

// broadcastStrides returns, for each output axis, the stride of the operand along it in
// elements, 0 where the operand is repeated.
func broadcastStrides(outDims, dims []int) ([]int, error) {
	strides := make([]int, len(outDims))
	if size(dims) == 1 {
		return strides, nil // A scalar: repeated along every axis.
	}
	if len(dims) != len(outDims) {
		return nil, fmt.Errorf("dimensions %v do not broadcast to %v (ranks differ)", dims, outDims)
	}
	stride := 1
	for a := len(dims) - 1; a >= 0; a-- {
		switch dims[a] {
		case outDims[a]:
			strides[a] = stride
		case 1:
			strides[a] = 0
		default:
			return nil, fmt.Errorf("dimensions %v do not broadcast to %v (axis %d)", dims, outDims, a)
		}
		stride *= dims[a]
	}
	return strides, nil
}

// contiguousStrides returns the row-major strides of dims, in elements.
func contiguousStrides(dims []int) []int {
	strides := make([]int, len(dims))
	stride := 1
	for a := len(dims) - 1; a >= 0; a-- {
		strides[a] = stride
		stride *= dims[a]
	}
	return strides
}

// iteration walks a tensor of some dimensions together with several operands, each read
// with its own strides (0 where it is repeated), as outer x inner steps: the inner run is
// the last merged axis, the outer index runs over the other merged axes like an odometer.
type iteration struct {
	dims    []int   // Merged axes, the last one inner.
	strides [][]int // Per operand, per merged axis.
	outer   int     // Product of dims but the last.
	inner   int     // dims[last].
}

// newIteration merges the axes of dims for the operands read with strides (one slice of
// per-axis strides each): axes of dimension 1 are dropped, and an axis is merged into the
// previous one when every operand's strides continue across them.
func newIteration(dims []int, strides ...[]int) *iteration {
	it := &iteration{strides: make([][]int, len(strides))}
	for a, d := range dims {
		if d == 1 {
			continue
		}
		if last := len(it.dims) - 1; last >= 0 {
			mergeable := true
			for op, s := range strides {
				// Axis `last` followed by axis a merge when last's stride is a's stride times d.
				if it.strides[op][last] != s[a]*d {
					mergeable = false
					break
				}
			}
			if mergeable {
				it.dims[last] *= d
				for op, s := range strides {
					it.strides[op][last] = s[a]
				}
				continue
			}
		}
		it.dims = append(it.dims, d)
		for op, s := range strides {
			it.strides[op] = append(it.strides[op], s[a])
		}
	}
	if len(it.dims) == 0 { // A single element.
		it.dims = []int{1}
		for op := range it.strides {
			it.strides[op] = []int{1}
		}
	}
	it.inner = it.dims[len(it.dims)-1]
	it.outer = 1
	for _, d := range it.dims[:len(it.dims)-1] {
		it.outer *= d
	}
	return it
}

// innerStride returns operand op's stride along the inner run.
func (it *iteration) innerStride(op int) int {
	return it.strides[op][len(it.dims)-1]
}

// seek returns the odometer of the outer axes and the operands' offsets at outer index o.
func (it *iteration) seek(o int) (idx, offs []int) {
	idx = make([]int, len(it.dims)-1)
	for a := len(idx) - 1; a >= 0; a-- {
		idx[a] = o % it.dims[a]
		o /= it.dims[a]
	}
	offs = make([]int, len(it.strides))
	for op, s := range it.strides {
		for a, i := range idx {
			offs[op] += i * s[a]
		}
	}
	return idx, offs
}

// next advances the odometer idx by one outer step, updating the offsets.
func (it *iteration) next(idx, offs []int) {
	for a := len(idx) - 1; a >= 0; a-- {
		idx[a]++
		if idx[a] < it.dims[a] {
			for op, s := range it.strides {
				offs[op] += s[a]
			}
			return
		}
		for op, s := range it.strides {
			offs[op] -= (idx[a] - 1) * s[a]
		}
		idx[a] = 0
	}
}

// parallel runs fn over the outer steps [0, it.outer) in contiguous chunks, on up to
// workers goroutines (<= 0: GOMAXPROCS) when the work (total elements) is large enough.
// fn must be safe to run concurrently on distinct chunks.
func parallel(it *iteration, total, workers int, fn func(start, end int)) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, it.outer, max(1, total/minParallel))
	if workers <= 1 {
		fn(0, it.outer)
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(w*it.outer/workers, (w+1)*it.outer/workers)
		}()
	}
	fn(0, it.outer/workers)
	wg.Wait()
}

// binaryVectors computes dst[i] = a[i] op b[i], with SIMD where available.
func binaryVectors(op BinaryOp, dst, a, b []float32) {
	n := binarySIMD(op, dst, a, b, false, false)
	binaryVectorsGo(op, dst[n:], a[n:], b[n:])
}

// binaryScalarRHS computes dst[i] = a[i] op b, with SIMD where available.
func binaryScalarRHS(op BinaryOp, dst, a []float32, b float32) {
	n := binarySIMD(op, dst, a, []float32{b}, false, true)
	binaryScalarRHSGo(op, dst[n:], a[n:], b)
}

// binaryScalarLHS computes dst[i] = a op b[i], with SIMD where available.
func binaryScalarLHS(op BinaryOp, dst []float32, a float32, b []float32) {
	n := binarySIMD(op, dst, []float32{a}, b, true, false)
	binaryScalarLHSGo(op, dst[n:], a, b[n:])
}

// binaryVectorsGo computes dst[i] = a[i] op b[i].
func binaryVectorsGo(op BinaryOp, dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	switch op {
	case Add:
		for i := range dst {
			dst[i] = a[i] + b[i]
		}
	case Sub:
		for i := range dst {
			dst[i] = a[i] - b[i]
		}
	case Mul:
		for i := range dst {
			dst[i] = a[i] * b[i]
		}
	case Div:
		for i := range dst {
			dst[i] = a[i] / b[i]
		}
	}
}

// binaryScalarRHSGo computes dst[i] = a[i] op b.
func binaryScalarRHSGo(op BinaryOp, dst, a []float32, b float32) {
	a = a[:len(dst)]
	switch op {
	case Add:
		for i := range dst {
			dst[i] = a[i] + b
		}
	case Sub:
		for i := range dst {
			dst[i] = a[i] - b
		}
	case Mul:
		for i := range dst {
			dst[i] = a[i] * b
		}
	case Div:
		for i := range dst {
			dst[i] = a[i] / b
		}
	}
}

// binaryScalarLHSGo computes dst[i] = a op b[i].
func binaryScalarLHSGo(op BinaryOp, dst []float32, a float32, b []float32) {
	b = b[:len(dst)]
	switch op {
	case Add:
		for i := range dst {
			dst[i] = a + b[i]
		}
	case Sub:
		for i := range dst {
			dst[i] = a - b[i]
		}
	case Mul:
		for i := range dst {
			dst[i] = a * b[i]
		}
	case Div:
		for i := range dst {
			dst[i] = a / b[i]
		}
	}
}
