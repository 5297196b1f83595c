package matmul

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
)

// cpuSeconds is the user+system CPU time of the process so far: on a shared machine, a
// steadier measure than wall time for one goroutine's work (GFLOP/cpu-s).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// benchShapes are the products of one training step of the tiny128 (hidden 128,
// intermediate 512, 4 heads of 32) and small (hidden 256, intermediate 1024, 4 heads of 64)
// encoders at batch 32 x 128 tokens (4096 rows), in the layouts models/bert.go and the
// gradient fix in train/gradfix.go give them.
var benchShapes = []dotCase{
	{name: "tiny128/dense_fwd_x[4096,128].w[512,128]", lhsDims: []int{4096, 128}, lhsC: []int{1}, rhsDims: []int{512, 128}, rhsC: []int{1}},
	{name: "tiny128/dense_dx_v[4096,512].w[512,128]", lhsDims: []int{4096, 512}, lhsC: []int{1}, rhsDims: []int{512, 128}, rhsC: []int{0}},
	{name: "tiny128/dense_dw_v[4096,512].x[4096,128]", lhsDims: []int{4096, 512}, lhsC: []int{0}, rhsDims: []int{4096, 128}, rhsC: []int{0}},
	{name: "tiny128/attn_scores_q.k[128x(128x128x32)]", lhsDims: []int{32, 128, 4, 32}, lhsC: []int{3}, lhsB: []int{0, 2}, rhsDims: []int{32, 128, 4, 32}, rhsC: []int{3}, rhsB: []int{0, 2}},
	{name: "tiny128/attn_context_p.v[128x(128x32x128)]", lhsDims: []int{32, 4, 128, 128}, lhsC: []int{3}, lhsB: []int{0, 1}, rhsDims: []int{32, 128, 4, 32}, rhsC: []int{1}, rhsB: []int{0, 2}},
	{name: "small/dense_fwd_x[4096,256].w[1024,256]", lhsDims: []int{4096, 256}, lhsC: []int{1}, rhsDims: []int{1024, 256}, rhsC: []int{1}},
	{name: "small/dense_dx_v[4096,1024].w[1024,256]", lhsDims: []int{4096, 1024}, lhsC: []int{1}, rhsDims: []int{1024, 256}, rhsC: []int{0}},
	{name: "small/dense_dw_v[4096,1024].x[4096,256]", lhsDims: []int{4096, 1024}, lhsC: []int{0}, rhsDims: []int{4096, 256}, rhsC: []int{0}},
	{name: "small/attn_scores_q.k[128x(128x128x64)]", lhsDims: []int{32, 128, 4, 64}, lhsC: []int{3}, lhsB: []int{0, 2}, rhsDims: []int{32, 128, 4, 64}, rhsC: []int{3}, rhsB: []int{0, 2}},
	{name: "small/attn_context_p.v[128x(128x64x128)]", lhsDims: []int{32, 4, 128, 128}, lhsC: []int{3}, lhsB: []int{0, 1}, rhsDims: []int{32, 128, 4, 64}, rhsC: []int{1}, rhsB: []int{0, 2}},
}

// BenchmarkDotGeneral times every available kernel on the training-step products, on one
// goroutine (w1: per-core throughput) and on GOMAXPROCS goroutines (wmax):
//
//	go test ./matmul/ -run '^$' -bench DotGeneral -benchtime 20x
func BenchmarkDotGeneral(b *testing.B) {
	for _, c := range benchShapes {
		p, err := NewProduct(Operand{Dims: c.lhsDims, Contracting: c.lhsC, Batch: c.lhsB},
			Operand{Dims: c.rhsDims, Contracting: c.rhsC, Batch: c.rhsB})
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		lhs, rhs, _, _ := operands(c, rng, false)
		s := p.Shape()
		out := make([]float32, s.Batch*s.M*s.N)
		for _, k := range Available() {
			for _, workers := range []int{1, 0} {
				name := fmt.Sprintf("%s/%s/w%d", c.name, k.Name(), workers)
				if workers == 0 {
					name = fmt.Sprintf("%s/%s/wmax", c.name, k.Name())
				}
				b.Run(name, func(b *testing.B) {
					cpu0 := cpuSeconds()
					for b.Loop() {
						if err := k.Run(p, out, lhs, rhs, workers); err != nil {
							b.Fatal(err)
						}
					}
					flop := 2 * float64(s.MACs()) * float64(b.N)
					b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					b.ReportMetric(flop/(cpuSeconds()-cpu0)/1e9, "GFLOP/cpu-s")
				})
			}
		}
	}
}
