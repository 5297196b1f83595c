//go:build !amd64

package matmul

// available lists the kernels this architecture can run, fastest first.
var available = []*Kernel{genericKernel}
