// Package matmul provides float32 matrix products with SIMD kernels: AVX-512 and AVX2+FMA
// on amd64 (Go assembly), and a portable pure-Go kernel everywhere else.
//
// The entry point is Kernel.DotGeneral, which computes the product of two tensors of any
// rank, each axis of which is a batch, "cross" (free) or contracting axis, in the semantics
// of XLA's and GoMLX's DotGeneral:
//
//	out[b, i, j] = sum over k of lhs[b, i, k] * rhs[b, j, k]
//
// where b runs over the batch axes, i over the left-hand side's cross axes, j over the
// right-hand side's cross axes and k over the contracting axes (each group flattened in
// axis order; batch and contracting axes paired in the order given). The output is
// row-major [batch, lhs cross, rhs cross]. Any layout works without transposing the
// operands first: the operands are read through per-axis-group offset tables while being
// packed into the panels the kernels consume (see pack.go).
//
// The algorithm is the one of GotoBLAS/BLIS: the contracting axis is cut into blocks of
// kc, the left-hand side into blocks of mc rows and the right-hand side into blocks of nc
// columns; each block is packed into contiguous micro-panels, and a register-blocked
// micro-kernel (mr x nr outputs held in vector registers) accumulates the product of one
// panel of each. A left-hand side that is row-major in the contracting axis with evenly
// spaced rows is read in place by the SIMD kernels instead of being packed. Products are
// split across goroutines by batch elements or by bands of rows or columns. Accumulation is in float32 with fused multiply-adds in the SIMD kernels,
// each output element summed in contracting order; see the package tests for the error
// bound that is checked against a float64 reference.
//
// Available lists the kernels this CPU can run, best first; Lookup selects one by name.
// The choice of CPU features is made once, when the program starts (golang.org/x/sys/cpu).
package matmul

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
)

// Kernel is one implementation of the float32 product: a micro-kernel plus the blocking
// parameters tuned for it. Kernels are safe for concurrent use.
type Kernel struct {
	name string
	// mr x nr is the register tile of the micro-kernel.
	mr, nr int
	// kc, mc and nc are the cache blocks: kc contracting elements, mc rows of the
	// left-hand side (a multiple of mr) and nc columns of the right-hand side (a multiple
	// of nr) are packed at a time.
	kc, mc, nc int
	// micro computes the mr x nr tile c (row stride ldc elements) from kc steps of the
	// packed panels a (mr values per step) and b (nr values per step): c = a.b, or
	// c += a.b when accumulate is set.
	micro func(kc int, a, b, c []float32, ldc int, accumulate bool)
	// microStrided, when not nil, is micro reading a unpacked: row r of the tile is
	// a[r*lda:], contiguous in the contracting axis.
	microStrided func(kc int, a []float32, lda int, b, c []float32, ldc int, accumulate bool)
	// scratch holds per-worker packing buffers between calls.
	scratch sync.Pool
}

// Name returns the kernel's name: "avx512", "avx2" or "generic".
func (k *Kernel) Name() string { return k.name }

// String returns the kernel's name.
func (k *Kernel) String() string { return k.name }

// Tile returns the micro-kernel's register tile: mr rows of the left-hand side by nr
// columns of the right-hand side.
func (k *Kernel) Tile() (mr, nr int) { return k.mr, k.nr }

// Names of the kernels, for Lookup.
const (
	AVX512  = "avx512"
	AVX2    = "avx2"
	Generic = "generic"
)

// Available returns the kernels this CPU supports, fastest first; the last one is always
// the portable pure-Go kernel.
func Available() []*Kernel {
	return available
}

// Best returns the fastest kernel this CPU supports.
func Best() *Kernel {
	return available[0]
}

// Lookup returns the kernel with the given name ("avx512", "avx2" or "generic"; "" or
// "auto" for Best). It fails for an unknown name and for a kernel that this CPU or
// architecture cannot run.
func Lookup(name string) (*Kernel, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" || name == "auto" {
		return Best(), nil
	}
	names := make([]string, len(available))
	for i, k := range available {
		if k.name == name {
			return k, nil
		}
		names[i] = k.name
	}
	switch name {
	case AVX512, AVX2:
		return nil, fmt.Errorf("matmul: kernel %q is not supported by this CPU (%s/%s); available: %s",
			name, runtime.GOOS, runtime.GOARCH, strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("matmul: unknown kernel %q (valid: auto, %s, %s, %s); available here: %s",
		name, AVX512, AVX2, Generic, strings.Join(names, ", "))
}

// newKernel returns a kernel with blocking parameters derived from its tile: kc = 256
// contracting steps (a b micro-panel of kc x nr stays in L1), mc = 192-ish rows of the
// left-hand side (an mc x kc block stays in L2), nc = 1024-ish columns.
func newKernel(name string, mr, nr int, micro func(kc int, a, b, c []float32, ldc int, accumulate bool)) *Kernel {
	const kc = 256
	return &Kernel{
		name:  name,
		mr:    mr,
		nr:    nr,
		kc:    kc,
		mc:    mr * max(1, 192/mr),
		nc:    nr * max(1, 1024/nr),
		micro: micro,
	}
}
