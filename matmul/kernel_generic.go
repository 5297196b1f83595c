package matmul

// genericKernel is the portable kernel: a 4x4 register tile in plain Go (no SIMD), used on
// CPUs and architectures without an assembly kernel, and forced with Lookup("generic").
var genericKernel = newKernel(Generic, 4, 4, microGeneric4x4)

// microGeneric4x4 is the micro-kernel of genericKernel (see Kernel.micro).
func microGeneric4x4(kc int, a, b, c []float32, ldc int, accumulate bool) {
	a = a[:kc*4]
	b = b[:kc*4]
	_ = c[3*ldc+3]
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	var c20, c21, c22, c23 float32
	var c30, c31, c32, c33 float32
	for k := 0; k+3 < len(a) && k+3 < len(b); k += 4 {
		a0, a1, a2, a3 := a[k], a[k+1], a[k+2], a[k+3]
		b0, b1, b2, b3 := b[k], b[k+1], b[k+2], b[k+3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	rows := [4][4]float32{
		{c00, c01, c02, c03},
		{c10, c11, c12, c13},
		{c20, c21, c22, c23},
		{c30, c31, c32, c33},
	}
	for r := range rows {
		dst := c[r*ldc : r*ldc+4]
		if accumulate {
			for j, v := range rows[r] {
				dst[j] += v
			}
		} else {
			copy(dst, rows[r][:])
		}
	}
}
