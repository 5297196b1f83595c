package elementwise

import (
	"fmt"
	"math"
)

// ReduceOp is a reduction of float32 values.
type ReduceOp uint8

// The reductions.
const (
	ReduceSum ReduceOp = iota
	ReduceMax
	ReduceMin
)

// String returns the reduction's name.
func (op ReduceOp) String() string {
	switch op {
	case ReduceSum:
		return "ReduceSum"
	case ReduceMax:
		return "ReduceMax"
	case ReduceMin:
		return "ReduceMin"
	}
	return fmt.Sprintf("ReduceOp(%d)", uint8(op))
}

// identity returns the reduction's neutral element.
func (op ReduceOp) identity() float32 {
	switch op {
	case ReduceMax:
		return float32(math.Inf(-1))
	case ReduceMin:
		return float32(math.Inf(1))
	}
	return 0
}

// Reduce reduces in (dimensions inDims) over the given axes into out, whose dimensions are
// inDims without those axes. Max and Min follow Go's max and min (a NaN wins, -0 is below
// +0) and are exact whatever the order. Sums are accumulated in the input's row-major
// order, except along a contiguous run of reduced values (the last axes), which is summed
// in four interleaved partial sums: within the error bound of a single running sum, but
// not always bit-identical to it. workers is
// the number of goroutines to use (<= 0: GOMAXPROCS).
func Reduce(op ReduceOp, out, in []float32, inDims, axes []int, workers int) error {
	if op > ReduceMin {
		return fmt.Errorf("elementwise: unknown %s", op)
	}
	reduced := make([]bool, len(inDims))
	for _, a := range axes {
		if a < 0 || a >= len(inDims) || reduced[a] {
			return fmt.Errorf("elementwise: %s axes %v invalid for rank %d", op, axes, len(inDims))
		}
		reduced[a] = true
	}
	var outDims []int
	for a, d := range inDims {
		if !reduced[a] {
			outDims = append(outDims, d)
		}
	}
	if len(in) != size(inDims) || len(out) != size(outDims) {
		return fmt.Errorf("elementwise: %s of %d elements %v over axes %v into %d: want %d",
			op, len(in), inDims, axes, len(out), size(outDims))
	}
	fill(out, op.identity())
	if len(in) == 0 {
		return nil
	}
	// Output strides along the input's axes: 0 on the reduced ones.
	outStrides := make([]int, len(inDims))
	stride := 1
	for a := len(inDims) - 1; a >= 0; a-- {
		if !reduced[a] {
			outStrides[a] = stride
			stride *= inDims[a]
		}
	}
	it := newIteration(inDims, contiguousStrides(inDims), outStrides)
	outInner := it.innerStride(1)
	run := func(start, end int) {
		idx, offs := it.seek(start)
		for o := start; o < end; o++ {
			src := in[offs[0] : offs[0]+it.inner]
			if outInner == 0 {
				out[offs[1]] = reduceRun(op, out[offs[1]], src)
			} else {
				accumulate(op, out[offs[1]:offs[1]+it.inner], src)
			}
			it.next(idx, offs)
		}
	}
	// Chunks of outer steps may run in parallel only when they write distinct outputs: when
	// the outermost merged axis is kept (chunks are cut along it).
	if len(it.dims) > 1 && it.strides[1][0] != 0 {
		parallelAlong(it, len(in), workers, run)
	} else {
		run(0, it.outer)
	}
	return nil
}

// parallelAlong is parallel with chunk boundaries on whole steps of the outermost axis.
func parallelAlong(it *iteration, total, workers int, fn func(start, end int)) {
	perStep := it.outer / it.dims[0]
	steps := &iteration{outer: it.dims[0]}
	parallel(steps, total, workers, func(start, end int) {
		fn(start*perStep, end*perStep)
	})
}

// reduceRun reduces acc and the values of src, in order.
func reduceRun(op ReduceOp, acc float32, src []float32) float32 {
	switch op {
	case ReduceSum:
		// Four interleaved partial sums (value i into sum i mod 4), added at the end: the
		// additions no longer wait for each other. The rounding differs from a single
		// running sum, within the same error bound.
		s0, s1, s2, s3 := acc, float32(0), float32(0), float32(0)
		i := 0
		for ; i+4 <= len(src); i += 4 {
			s0, s1, s2, s3 = s0+src[i], s1+src[i+1], s2+src[i+2], s3+src[i+3]
		}
		for ; i < len(src); i++ {
			s0 += src[i]
		}
		acc = (s0 + s1) + (s2 + s3)
	case ReduceMax:
		// Four independent chains: max is exact, so the order does not change the result
		// (NaN wins, -0 < +0, as in Go's max).
		a0, a1, a2, a3 := acc, acc, acc, acc
		i := 0
		for ; i+4 <= len(src); i += 4 {
			a0, a1, a2, a3 = max(a0, src[i]), max(a1, src[i+1]), max(a2, src[i+2]), max(a3, src[i+3])
		}
		for ; i < len(src); i++ {
			a0 = max(a0, src[i])
		}
		acc = max(max(a0, a1), max(a2, a3))
	case ReduceMin:
		a0, a1, a2, a3 := acc, acc, acc, acc
		i := 0
		for ; i+4 <= len(src); i += 4 {
			a0, a1, a2, a3 = min(a0, src[i]), min(a1, src[i+1]), min(a2, src[i+2]), min(a3, src[i+3])
		}
		for ; i < len(src); i++ {
			a0 = min(a0, src[i])
		}
		acc = min(min(a0, a1), min(a2, a3))
	}
	return acc
}

// accumulate sets dst[i] = dst[i] op src[i].
func accumulate(op ReduceOp, dst, src []float32) {
	src = src[:len(dst)]
	switch op {
	case ReduceSum:
		binaryVectors(Add, dst, dst, src)
	case ReduceMax:
		for i := range dst {
			dst[i] = max(dst[i], src[i])
		}
	case ReduceMin:
		for i := range dst {
			dst[i] = min(dst[i], src[i])
		}
	}
}
