//go:build amd64

package matmul

import "golang.org/x/sys/cpu"

//go:generate go run gen_kernels.go

// available lists the kernels this CPU can run, fastest first, decided once at start-up
// from CPUID (golang.org/x/sys/cpu also checks that the OS saves the vector registers).
var available = amd64Kernels()

func amd64Kernels() []*Kernel {
	var kernels []*Kernel
	if cpu.X86.HasAVX512F {
		k := newKernel(AVX512, 12, 32, microAVX512)
		k.microStrided = microStridedAVX512
		kernels = append(kernels, k)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		k := newKernel(AVX2, 6, 16, microAVX2)
		k.microStrided = microStridedAVX2
		kernels = append(kernels, k)
	}
	return append(kernels, genericKernel)
}

// microAVX512 is the 12x32 AVX-512 micro-kernel (see Kernel.micro): 24 zmm accumulators,
// one fused multiply-add per 16 outputs and contracting step.
func microAVX512(kc int, a, b, c []float32, ldc int, accumulate bool) {
	_ = a[kc*12-1]
	_ = b[kc*32-1]
	_ = c[11*ldc+31]
	micro12x32AVX512(kc, &a[0], &b[0], &c[0], ldc, accumulate)
}

// microAVX2 is the 6x16 AVX2+FMA micro-kernel (see Kernel.micro): 12 ymm accumulators.
func microAVX2(kc int, a, b, c []float32, ldc int, accumulate bool) {
	_ = a[kc*6-1]
	_ = b[kc*16-1]
	_ = c[5*ldc+15]
	micro6x16AVX2(kc, &a[0], &b[0], &c[0], ldc, accumulate)
}

// microStridedAVX512 is microAVX512 reading a in place, row r at a[r*lda:].
func microStridedAVX512(kc int, a []float32, lda int, b, c []float32, ldc int, accumulate bool) {
	_ = a[11*lda+kc-1]
	_ = b[kc*32-1]
	_ = c[11*ldc+31]
	micro12x32StridedAVX512(kc, &a[0], lda, &b[0], &c[0], ldc, accumulate)
}

// microStridedAVX2 is microAVX2 reading a in place, row r at a[r*lda:].
func microStridedAVX2(kc int, a []float32, lda int, b, c []float32, ldc int, accumulate bool) {
	_ = a[5*lda+kc-1]
	_ = b[kc*16-1]
	_ = c[5*ldc+15]
	micro6x16StridedAVX2(kc, &a[0], lda, &b[0], &c[0], ldc, accumulate)
}

// micro12x32AVX512 computes c[12 x 32] (row stride ldc) = or += a.b over kc >= 1 steps of
// the packed panels a (12 values per step) and b (32 values per step). Implemented in
// kernel_amd64.s; needs AVX512F.
//
//go:noescape
func micro12x32AVX512(kc int, a, b, c *float32, ldc int, accumulate bool)

// micro6x16AVX2 is the AVX2+FMA equivalent of micro12x32AVX512 for a 6 x 16 tile.
//
//go:noescape
func micro6x16AVX2(kc int, a, b, c *float32, ldc int, accumulate bool)

// micro12x32StridedAVX512 is micro12x32AVX512 with a unpacked: row r starts at a + r*lda
// (lda in elements).
//
//go:noescape
func micro12x32StridedAVX512(kc int, a *float32, lda int, b, c *float32, ldc int, accumulate bool)

// micro6x16StridedAVX2 is micro6x16AVX2 with a unpacked: row r starts at a + r*lda.
//
//go:noescape
func micro6x16StridedAVX2(kc int, a *float32, lda int, b, c *float32, ldc int, accumulate bool)
