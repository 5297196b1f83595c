//go:build !amd64

package elementwise

// hasSIMD is false: only amd64 has assembly loops.
const hasSIMD = false

// binarySIMD does nothing on this architecture (see binary_amd64.go).
func binarySIMD(op BinaryOp, dst, a, b []float32, aScalar, bScalar bool) int { return 0 }

// fillSIMD does nothing on this architecture (see binary_amd64.go).
func fillSIMD(dst []float32, v float32) int { return 0 }
