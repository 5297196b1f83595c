package elementwise

import "fmt"

// Transpose sets out to in (dimensions inDims) with its axes permuted: output axis i is
// input axis perm[i]. out must not overlap in. workers is the number of goroutines to use
// (<= 0: GOMAXPROCS).
func Transpose(out, in []float32, inDims, perm []int, workers int) error {
	n := size(inDims)
	if len(in) != n || len(out) != n || len(perm) != len(inDims) {
		return fmt.Errorf("elementwise: Transpose of %d elements %v (permutation %v) into %d", len(in), inDims, perm, len(out))
	}
	inStrides := contiguousStrides(inDims)
	outDims := make([]int, len(perm))
	strides := make([]int, len(perm))
	seen := make([]bool, len(perm))
	for i, a := range perm {
		if a < 0 || a >= len(inDims) || seen[a] {
			return fmt.Errorf("elementwise: Transpose permutation %v invalid for rank %d", perm, len(inDims))
		}
		seen[a] = true
		outDims[i] = inDims[a]
		strides[i] = inStrides[a]
	}
	if n == 0 {
		return nil
	}
	gather(out, in, outDims, strides, n, workers)
	return nil
}
