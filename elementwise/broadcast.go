package elementwise

import "fmt"

// BroadcastInDim copies in (dimensions inDims) into out (dimensions outDims), repeating it
// along the output axes it does not have: input axis i becomes output axis axes[i], whose
// dimension must equal inDims[i] or inDims[i] must be 1 (then it is repeated too). This is
// XLA's BroadcastInDim. workers is the number of goroutines to use (<= 0: GOMAXPROCS).
func BroadcastInDim(out, in []float32, outDims, inDims, axes []int, workers int) error {
	n := size(outDims)
	if len(out) != n || len(in) != size(inDims) || len(axes) != len(inDims) {
		return fmt.Errorf("elementwise: BroadcastInDim of %d elements %v (axes %v) into %d %v: sizes do not match",
			len(in), inDims, axes, len(out), outDims)
	}
	inStrides := contiguousStrides(inDims)
	strides := make([]int, len(outDims))
	seen := make([]bool, len(outDims))
	for i, a := range axes {
		if a < 0 || a >= len(outDims) || seen[a] {
			return fmt.Errorf("elementwise: BroadcastInDim axes %v invalid for output rank %d", axes, len(outDims))
		}
		seen[a] = true
		switch inDims[i] {
		case outDims[a]:
			strides[a] = inStrides[i]
		case 1:
			strides[a] = 0
		default:
			return fmt.Errorf("elementwise: BroadcastInDim input axis %d (%d) does not fit output axis %d (%d)",
				i, inDims[i], a, outDims[a])
		}
	}
	if n == 0 {
		return nil
	}
	gather(out, in, outDims, strides, n, workers)
	return nil
}

// gather sets out (dimensions outDims, contiguous) to the elements of in read with the
// given strides per output axis (0 repeats an element: a broadcast axis). It is the copy
// behind BroadcastInDim and Transpose: runs of the innermost merged axis are filled (stride
// 0), copied (stride 1) or read one by one.
func gather(out, in []float32, outDims, strides []int, n, workers int) {
	it := newIteration(outDims, contiguousStrides(outDims), strides)
	inner := it.innerStride(1)
	parallel(it, n, workers, func(start, end int) {
		idx, offs := it.seek(start)
		for o := start; o < end; o++ {
			dst := out[offs[0] : offs[0]+it.inner]
			src := offs[1]
			switch inner {
			case 0:
				fill(dst, in[src])
			case 1:
				copy(dst, in[src:src+it.inner])
			default:
				for i := range dst {
					dst[i] = in[src+i*inner]
				}
			}
			it.next(idx, offs)
		}
	})
}

// fill sets every element of dst to v: with AVX stores where available, else (and for the
// remainder) by doubling the copied prefix (memmove is faster than a loop of stores).
func fill(dst []float32, v float32) {
	dst = dst[fillSIMD(dst, v):]
	if len(dst) == 0 {
		return
	}
	dst[0] = v
	for filled := 1; filled < len(dst); filled *= 2 {
		copy(dst[filled:], dst[:filled])
	}
}
