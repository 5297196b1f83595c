package matmul

import (
	"fmt"
	"runtime"
	"sync"
)

// Operand is a float32 tensor stored row-major (the last axis varies fastest) and the
// role of its axes in a product: the axes listed in Contracting are summed over, those in
// Batch are matched one-to-one with the other operand's batch axes, every other axis is a
// cross axis. Negative axes count from the end.
type Operand struct {
	Data        []float32
	Dims        []int
	Contracting []int
	Batch       []int
}

// Shape describes a product in its normalized form: out[Batch, M, N] = sum over K of
// lhs[Batch, M, K] * rhs[Batch, N, K].
type Shape struct {
	Batch, M, N, K int
}

// MACs returns the number of multiply-adds of the product.
func (s Shape) MACs() int { return s.Batch * s.M * s.N * s.K }

// Product is a prepared DotGeneral: the operands' layouts resolved into offset tables.
// Prepare it once per operand layout with NewProduct, then run it with Kernel.Run on any
// data of the same shapes. A Product is immutable and safe for concurrent use.
type Product struct {
	shape    Shape
	lhs, rhs layout
	// lhsSize and rhsSize are the number of elements each operand must have.
	lhsSize, rhsSize int
}

// Shape returns the normalized shape of the product.
func (p *Product) Shape() Shape { return p.shape }

// OutputDims returns the dimensions of DotGeneral's output in GoMLX/XLA order:
// lhs batch dimensions, lhs cross dimensions, rhs cross dimensions. The data the kernels
// write is the same, flattened (row-major [Batch, M, N]).
func (p *Product) OutputDims() []int {
	out := make([]int, 0, len(p.lhs.batchDims)+len(p.lhs.crossDims)+len(p.rhs.crossDims))
	out = append(out, p.lhs.batchDims...)
	out = append(out, p.lhs.crossDims...)
	return append(out, p.rhs.crossDims...)
}

// layout locates the elements of one operand: element (b, i, k) of the normalized
// operand [Batch, cross, K] is at batch[b] + cross[i] + contracting[k] in its flat data.
type layout struct {
	batch, cross, contracting []int
	// crossStride and contractingStride are the strides when the tables are affine
	// (table[i] == i*stride) and 0 otherwise; they select the fast packing paths.
	crossStride, contractingStride int
	batchDims, crossDims           []int
}

// NewProduct resolves the layouts of a DotGeneral of operands with dimensions lhsDims and
// rhsDims (Operand.Data is ignored here). It checks that the axes are valid and that
// paired batch and contracting dimensions are equal.
func NewProduct(lhs, rhs Operand) (*Product, error) {
	lhsC, err := normalizeAxes("lhs contracting", lhs.Contracting, len(lhs.Dims))
	if err != nil {
		return nil, err
	}
	lhsB, err := normalizeAxes("lhs batch", lhs.Batch, len(lhs.Dims))
	if err != nil {
		return nil, err
	}
	rhsC, err := normalizeAxes("rhs contracting", rhs.Contracting, len(rhs.Dims))
	if err != nil {
		return nil, err
	}
	rhsB, err := normalizeAxes("rhs batch", rhs.Batch, len(rhs.Dims))
	if err != nil {
		return nil, err
	}
	if len(lhsC) != len(rhsC) || len(lhsB) != len(rhsB) {
		return nil, fmt.Errorf("matmul: lhs has %d contracting and %d batch axes, rhs %d and %d",
			len(lhsC), len(lhsB), len(rhsC), len(rhsB))
	}
	for i := range lhsC {
		if lhs.Dims[lhsC[i]] != rhs.Dims[rhsC[i]] {
			return nil, fmt.Errorf("matmul: contracting dimensions differ: lhs axis %d is %d, rhs axis %d is %d",
				lhsC[i], lhs.Dims[lhsC[i]], rhsC[i], rhs.Dims[rhsC[i]])
		}
	}
	for i := range lhsB {
		if lhs.Dims[lhsB[i]] != rhs.Dims[rhsB[i]] {
			return nil, fmt.Errorf("matmul: batch dimensions differ: lhs axis %d is %d, rhs axis %d is %d",
				lhsB[i], lhs.Dims[lhsB[i]], rhsB[i], rhs.Dims[rhsB[i]])
		}
	}
	p := &Product{}
	var lhsSize, rhsSize int
	if p.lhs, lhsSize, err = newLayout(lhs.Dims, lhsC, lhsB); err != nil {
		return nil, fmt.Errorf("matmul: lhs: %w", err)
	}
	if p.rhs, rhsSize, err = newLayout(rhs.Dims, rhsC, rhsB); err != nil {
		return nil, fmt.Errorf("matmul: rhs: %w", err)
	}
	p.lhsSize, p.rhsSize = lhsSize, rhsSize
	p.shape = Shape{Batch: len(p.lhs.batch), M: len(p.lhs.cross), N: len(p.rhs.cross), K: len(p.lhs.contracting)}
	return p, nil
}

// normalizeAxes returns axes with negative values resolved, checking range and duplicates.
func normalizeAxes(what string, axes []int, rank int) ([]int, error) {
	out := make([]int, len(axes))
	for i, a := range axes {
		if a < 0 {
			a += rank
		}
		if a < 0 || a >= rank {
			return nil, fmt.Errorf("matmul: %s axis %d out of range for rank %d", what, axes[i], rank)
		}
		out[i] = a
	}
	return out, nil
}

// newLayout builds the offset tables of an operand and returns its number of elements.
func newLayout(dims, contracting, batch []int) (layout, int, error) {
	rank := len(dims)
	role := make([]byte, rank) // 0 cross, 'c' contracting, 'b' batch.
	for _, a := range contracting {
		if role[a] != 0 {
			return layout{}, 0, fmt.Errorf("axis %d used twice", a)
		}
		role[a] = 'c'
	}
	for _, a := range batch {
		if role[a] != 0 {
			return layout{}, 0, fmt.Errorf("axis %d used twice", a)
		}
		role[a] = 'b'
	}
	strides := make([]int, rank)
	size := 1
	for a := rank - 1; a >= 0; a-- {
		if dims[a] < 0 {
			return layout{}, 0, fmt.Errorf("negative dimension %d", dims[a])
		}
		strides[a] = size
		size *= dims[a]
	}
	var cross []int
	for a := range rank {
		if role[a] == 0 {
			cross = append(cross, a)
		}
	}
	l := layout{
		batch:       offsetTable(dims, strides, batch),
		cross:       offsetTable(dims, strides, cross),
		contracting: offsetTable(dims, strides, contracting),
	}
	l.crossStride = affineStride(l.cross)
	l.contractingStride = affineStride(l.contracting)
	for _, a := range batch {
		l.batchDims = append(l.batchDims, dims[a])
	}
	for _, a := range cross {
		l.crossDims = append(l.crossDims, dims[a])
	}
	return l, size, nil
}

// offsetTable returns the flat offset of every index of the group of axes (the first
// axis varying slowest): table[idx] = sum over the group of coordinate * stride.
func offsetTable(dims, strides, axes []int) []int {
	n := 1
	for _, a := range axes {
		n *= dims[a]
	}
	table := make([]int, n)
	if n == 0 {
		return table
	}
	coords := make([]int, len(axes))
	offset := 0
	for idx := range table {
		table[idx] = offset
		// Advance the multi-index, last axis fastest.
		for g := len(axes) - 1; g >= 0; g-- {
			a := axes[g]
			coords[g]++
			offset += strides[a]
			if coords[g] < dims[a] {
				break
			}
			offset -= coords[g] * strides[a]
			coords[g] = 0
		}
	}
	return table
}

// affineStride returns s if table[i] == i*s for every i (and s > 0), else 0. A table of
// one element has stride 1.
func affineStride(table []int) int {
	if len(table) <= 1 {
		return 1
	}
	s := table[1] - table[0]
	if s <= 0 || table[0] != 0 {
		return 0
	}
	for i, v := range table {
		if v != i*s {
			return 0
		}
	}
	return s
}

// DotGeneral computes the product of lhs and rhs into out, which must hold exactly
// Batch*M*N elements (row-major [batch, lhs cross, rhs cross]); see the package
// documentation. workers is the number of goroutines to use (<= 0: GOMAXPROCS).
func (k *Kernel) DotGeneral(out []float32, lhs, rhs Operand, workers int) error {
	p, err := NewProduct(lhs, rhs)
	if err != nil {
		return err
	}
	return k.Run(p, out, lhs.Data, rhs.Data, workers)
}

// MatMul computes the plain matrix product c[m, n] = a[m, k] . b[k, n] of row-major
// matrices, with workers goroutines (<= 0: GOMAXPROCS).
func (k *Kernel) MatMul(c, a, b []float32, m, n, kdim, workers int) error {
	return k.DotGeneral(c,
		Operand{Data: a, Dims: []int{m, kdim}, Contracting: []int{1}},
		Operand{Data: b, Dims: []int{kdim, n}, Contracting: []int{0}}, workers)
}

// minParallelMACs is the size under which a product runs on the calling goroutine only:
// starting goroutines costs more than it saves below a few tens of microseconds of work.
const minParallelMACs = 1 << 17

// Run computes the prepared product p of the data lhs and rhs into out (see DotGeneral).
func (k *Kernel) Run(p *Product, out, lhs, rhs []float32, workers int) error {
	s := p.shape
	if len(lhs) != p.lhsSize || len(rhs) != p.rhsSize {
		return fmt.Errorf("matmul: operands have %d and %d elements, their dimensions need %d and %d",
			len(lhs), len(rhs), p.lhsSize, p.rhsSize)
	}
	if len(out) != s.Batch*s.M*s.N {
		return fmt.Errorf("matmul: output has %d elements, want %d (batch %d x %d x %d)",
			len(out), s.Batch*s.M*s.N, s.Batch, s.M, s.N)
	}
	if len(out) == 0 {
		return nil
	}
	if s.K == 0 {
		clear(out)
		return nil
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if s.MACs() < minParallelMACs {
		workers = 1
	}
	tasks := k.split(s, workers)
	if len(tasks) == 1 {
		k.runTask(p, tasks[0], out, lhs, rhs)
		return nil
	}
	var wg sync.WaitGroup
	for _, t := range tasks[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.runTask(p, t, out, lhs, rhs)
		}()
	}
	k.runTask(p, tasks[0], out, lhs, rhs)
	wg.Wait()
	return nil
}

// task is a part of a product: batch elements [b0, b1), and within each of them the
// output rows [m0, m1) and columns [n0, n1).
type task struct {
	b0, b1, m0, m1, n0, n1 int
}

// split cuts the product into at most workers tasks of similar size that write disjoint
// parts of the output: whole batch elements when there are enough of them, otherwise
// bands of rows (or of columns, when there are more columns than rows) aligned to the
// micro-kernel's tile.
func (k *Kernel) split(s Shape, workers int) []task {
	whole := task{0, s.Batch, 0, s.M, 0, s.N}
	if workers <= 1 {
		return []task{whole}
	}
	rowBands, colBands := bands(s.M, k.mr, workers), bands(s.N, k.nr, workers)
	byRows := len(rowBands) >= len(colBands)
	cells := rowBands
	if !byRows {
		cells = colBands
	}
	batchFirst := s.Batch >= workers && (s.Batch%workers == 0 || s.Batch >= 4*workers || len(cells) < workers)
	if !batchFirst && len(cells) == 1 && s.Batch > 1 {
		batchFirst = true
	}
	var tasks []task
	switch {
	case batchFirst:
		w := min(workers, s.Batch)
		for i := range w {
			t := whole
			t.b0, t.b1 = i*s.Batch/w, (i+1)*s.Batch/w
			tasks = append(tasks, t)
		}
	case byRows:
		for _, r := range rowBands {
			t := whole
			t.m0, t.m1 = r[0], r[1]
			tasks = append(tasks, t)
		}
	default:
		for _, r := range colBands {
			t := whole
			t.n0, t.n1 = r[0], r[1]
			tasks = append(tasks, t)
		}
	}
	return tasks
}

// bands cuts [0, n) into at most parts ranges of about equal size, with every boundary a
// multiple of align.
func bands(n, align, parts int) [][2]int {
	tiles := (n + align - 1) / align
	parts = max(1, min(parts, tiles))
	out := make([][2]int, 0, parts)
	for i := range parts {
		lo, hi := i*tiles/parts*align, (i+1)*tiles/parts*align
		out = append(out, [2]int{lo, min(hi, n)})
	}
	return out
}

// scratch is one worker's packing buffers.
type scratch struct {
	a, b, tile []float32
}

func (k *Kernel) getScratch() *scratch {
	if s, ok := k.scratch.Get().(*scratch); ok {
		return s
	}
	return &scratch{
		a:    make([]float32, k.mc*k.kc),
		b:    make([]float32, k.kc*k.nc),
		tile: make([]float32, k.mr*k.nr),
	}
}

// runTask computes one task with the blocked algorithm (see the package documentation).
//
// When the left-hand side is row-major in the contracting axis with evenly spaced rows
// (x[N, in] in a dense layer, attention probabilities) and the kernel has a strided
// micro-kernel, its full mr-row panels are read in place instead of being packed: packing
// them costs as much as the product when the right-hand side is narrow (attention's
// context product, 32 or 64 columns).
func (k *Kernel) runTask(p *Product, t task, out, lhs, rhs []float32) {
	sc := k.getScratch()
	defer k.scratch.Put(sc)
	s := p.shape
	mr, nr := k.mr, k.nr
	stridedA := k.microStrided != nil && p.lhs.contractingStride == 1 && p.lhs.crossStride > 0
	lda := p.lhs.crossStride
	for b := t.b0; b < t.b1; b++ {
		lhsBase, rhsBase := p.lhs.batch[b], p.rhs.batch[b]
		outBatch := out[b*s.M*s.N : (b+1)*s.M*s.N]
		for jc := t.n0; jc < t.n1; jc += k.nc {
			nc := min(k.nc, t.n1-jc)
			for pc := 0; pc < s.K; pc += k.kc {
				kc := min(k.kc, s.K-pc)
				accumulate := pc > 0
				packPanels(sc.b, rhs, &p.rhs, rhsBase, jc, nc, pc, kc, nr)
				for ic := t.m0; ic < t.m1; ic += k.mc {
					mc := min(k.mc, t.m1-ic)
					fullRows := mc - mc%mr
					if !stridedA {
						packPanels(sc.a, lhs, &p.lhs, lhsBase, ic, mc, pc, kc, mr)
					} else if fullRows < mc {
						// Only the last, partial panel is packed, at the start of sc.a.
						packPanels(sc.a, lhs, &p.lhs, lhsBase, ic+fullRows, mc-fullRows, pc, kc, mr)
					}
					for jr := 0; jr < nc; jr += nr {
						bPanel := sc.b[jr*kc : (jr+nr)*kc]
						cols := min(nr, nc-jr)
						for ir := 0; ir < mc; ir += mr {
							rows := min(mr, mc-ir)
							cOff := (ic+ir)*s.N + jc + jr
							full := rows == mr && cols == nr
							// The tile goes to the output directly when whole, else aside.
							dst, ldc, acc := outBatch[cOff:], s.N, accumulate
							if !full {
								dst, ldc, acc = sc.tile, nr, false
							}
							switch {
							case stridedA && rows == mr:
								aOff := lhsBase + p.lhs.cross[ic+ir] + pc
								k.microStrided(kc, lhs[aOff:], lda, bPanel, dst, ldc, acc)
							case stridedA:
								k.micro(kc, sc.a[:mr*kc], bPanel, dst, ldc, acc)
							default:
								k.micro(kc, sc.a[ir*kc:(ir+mr)*kc], bPanel, dst, ldc, acc)
							}
							if full {
								continue
							}
							for r := range rows {
								d := outBatch[cOff+r*s.N : cOff+r*s.N+cols]
								src := sc.tile[r*nr : r*nr+cols]
								if accumulate {
									for c, v := range src {
										d[c] += v
									}
								} else {
									copy(d, src)
								}
							}
						}
					}
				}
			}
		}
	}
}
