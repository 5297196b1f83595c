package train

import (
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// This file replaces GoMLX v0.26.0's gradients (VJPs) of Dot and DotGeneral.
//
// The stock VJPs (graph/ops_helpers.go dotGeneralVJP and graph/rev_autodiff.go dotVJP)
// materialise the broadcast outer product of the incoming gradient with the other operand
// and then reduce it: for a [4096,128]x[128,512] dense layer that is a ~1 GB temporary per
// step, and on the pure-Go backend training spends most of its time in broadcast and reduce
// iterators instead of the matrix-multiplication kernel.
//
// The replacement expresses each operand's gradient as one DotGeneral of the incoming
// gradient v with the other operand, followed by (at most) one transpose:
//
//	out[b, i, j] = sum_c lhs[b, i, c] * rhs[b, j, c]           (axes grouped by role)
//	dL/dlhs[b, i, c] = sum_j v[b, i, j] * rhs[b, j, c]         (contract v's rhs-cross axes with rhs's cross axes)
//	dL/drhs[b, j, c] = sum_i v[b, i, j] * lhs[b, i, c]         (contract v's lhs-cross axes with lhs's cross axes)
//
// which is exactly what the chain rule gives, with no temporary larger than the operands.

var installFastDotGradientsOnce sync.Once

// The stock GoMLX gradients, captured at package initialisation (before
// InstallFastDotGradients can run). They are never modified: they serve as the fallback when
// the axes of a node cannot be read, and as the reference in the tests.
var (
	stockDotGeneralVJP = graph.VJPRegistration[graph.NodeTypeDotGeneral]
	stockDotVJP        = graph.VJPRegistration[graph.NodeTypeDot]
)

// InstallFastDotGradients replaces the gradients of the Dot and DotGeneral graph operations
// in GoMLX's process-global graph.VJPRegistration table with versions built from DotGeneral
// plus transposes (see the file comment), which are mathematically identical to the stock
// ones but avoid their broadcast outer product (7-9x faster training steps on the pure-Go
// backend).
//
// The registration is process-global in GoMLX: after the call every graph built by any
// package in the process uses the new gradients. It is idempotent (guarded by a sync.Once)
// and safe to call from several goroutines; call it once at program start, before building
// training graphs (graphs already compiled keep whatever gradient they were built with).
// It is deliberately not called from an init function, so that importing this package has
// no side effect on GoMLX.
//
// The contracting and batch axes of a DotGeneral node are unexported fields of GoMLX's node
// inputs and there is no exported accessor in v0.26.0, so they are read by reflection (see
// dotGeneralAxes). If that ever fails (for instance after a GoMLX upgrade renames the fields)
// the gradient falls back to the stock VJP, which is correct but slow; the equality tests in
// gradfix_test.go pin the behaviour.
func InstallFastDotGradients() {
	installFastDotGradientsOnce.Do(func() {
		graph.VJPRegistration[graph.NodeTypeDotGeneral] = func(node *graph.Node, vjpOutputs []*graph.Node, outputShape shapes.Shape) []*graph.Node {
			axes, err := dotGeneralAxes(node)
			if err != nil {
				return stockDotGeneralVJP(node, vjpOutputs, outputShape)
			}
			return FastDotGeneralGradients(node.Inputs()[0], node.Inputs()[1], axes, vjpOutputs[0])
		}
		graph.VJPRegistration[graph.NodeTypeDot] = func(node *graph.Node, vjpOutputs []*graph.Node, outputShape shapes.Shape) []*graph.Node {
			lhs, rhs := node.Inputs()[0], node.Inputs()[1]
			axes, err := dotAxes(lhs.Rank(), rhs.Rank())
			if err != nil {
				return stockDotVJP(node, vjpOutputs, outputShape)
			}
			return FastDotGeneralGradients(lhs, rhs, axes, vjpOutputs[0])
		}
	})
}

// DotAxes describes a DotGeneral operation: which axes of the left-hand side (Lhs*) and
// right-hand side (Rhs*) operands are contracted and which are batch axes. Every other axis
// is a "cross" axis. The output of DotGeneral is laid out as
// [batch axes..., lhs cross axes..., rhs cross axes...], each group in operand axis order.
type DotAxes struct {
	LhsContracting, LhsBatch []int
	RhsContracting, RhsBatch []int
}

// dotAxes returns the DotGeneral axes equivalent to graph.Dot for the given operand ranks
// (vector.vector, matrix.vector and matrix.matrix, as documented by graph.Dot).
func dotAxes(lhsRank, rhsRank int) (DotAxes, error) {
	switch {
	case lhsRank == 1 && rhsRank == 1:
		return DotAxes{LhsContracting: []int{0}, RhsContracting: []int{0}}, nil
	case lhsRank == 2 && (rhsRank == 1 || rhsRank == 2):
		return DotAxes{LhsContracting: []int{1}, RhsContracting: []int{0}}, nil
	default:
		return DotAxes{}, fmt.Errorf("train: Dot with operand ranks %d and %d is not supported", lhsRank, rhsRank)
	}
}

// dotGeneralAxes reads the contracting and batch axes of a DotGeneral node.
//
// GoMLX v0.26.0 keeps them in unexported fields of the node's inputs struct
// (graph.nodeInputsDotGeneral: lhsContractingAxes, lhsBatchAxes, rhsContractingAxes,
// rhsBatchAxes) and offers no exported accessor, and they cannot be inferred from the
// shapes alone. Reflection can read (never write) unexported integer slices without unsafe,
// so this is read-only introspection; any mismatch with the expected layout returns an error
// (and the caller falls back to the stock gradient). The result is validated against the
// operand ranks and the node's output shape.
func dotGeneralAxes(node *graph.Node) (DotAxes, error) {
	var axes DotAxes
	if node == nil || node.Type() != graph.NodeTypeDotGeneral {
		return axes, fmt.Errorf("train: node is not a DotGeneral")
	}
	nodeValue := reflect.ValueOf(node).Elem()
	inputsField := nodeValue.FieldByName("inputs")
	if !inputsField.IsValid() || inputsField.Kind() != reflect.Interface || inputsField.IsNil() {
		return axes, fmt.Errorf("train: graph.Node has no field %q (GoMLX version changed?)", "inputs")
	}
	params := inputsField.Elem()
	if params.Kind() == reflect.Pointer {
		params = params.Elem()
	}
	if params.Kind() != reflect.Struct {
		return axes, fmt.Errorf("train: DotGeneral inputs are a %s, want a struct", params.Kind())
	}
	readInts := func(name string) ([]int, error) {
		field := params.FieldByName(name)
		if !field.IsValid() || field.Kind() != reflect.Slice || field.Type().Elem().Kind() != reflect.Int {
			return nil, fmt.Errorf("train: DotGeneral inputs have no []int field %q (GoMLX version changed?)", name)
		}
		out := make([]int, field.Len())
		for i := range out {
			out[i] = int(field.Index(i).Int())
		}
		return out, nil
	}
	var err error
	if axes.LhsContracting, err = readInts("lhsContractingAxes"); err != nil {
		return axes, err
	}
	if axes.LhsBatch, err = readInts("lhsBatchAxes"); err != nil {
		return axes, err
	}
	if axes.RhsContracting, err = readInts("rhsContractingAxes"); err != nil {
		return axes, err
	}
	if axes.RhsBatch, err = readInts("rhsBatchAxes"); err != nil {
		return axes, err
	}
	lhs, rhs := node.Inputs()[0], node.Inputs()[1]
	if err := axes.validate(lhs.Shape(), rhs.Shape(), node.Shape()); err != nil {
		return axes, err
	}
	return axes, nil
}

// validate checks the axes against the operand shapes and, when output is valid, that
// DotGeneral with these axes produces that output shape.
func (a DotAxes) validate(lhs, rhs, output shapes.Shape) error {
	if len(a.LhsContracting) != len(a.RhsContracting) || len(a.LhsBatch) != len(a.RhsBatch) {
		return fmt.Errorf("train: DotGeneral axes %+v: lhs/rhs counts differ", a)
	}
	check := func(name string, shape shapes.Shape, groups ...[]int) error {
		seen := make([]bool, shape.Rank())
		for _, group := range groups {
			for _, axis := range group {
				if axis < 0 || axis >= shape.Rank() || seen[axis] {
					return fmt.Errorf("train: DotGeneral %s axes %v invalid for shape %s", name, groups, shape)
				}
				seen[axis] = true
			}
		}
		return nil
	}
	if err := check("lhs", lhs, a.LhsContracting, a.LhsBatch); err != nil {
		return err
	}
	if err := check("rhs", rhs, a.RhsContracting, a.RhsBatch); err != nil {
		return err
	}
	want := make([]int, 0, lhs.Rank()+rhs.Rank())
	for i, axis := range a.LhsBatch {
		if lhs.Dimensions[axis] != rhs.Dimensions[a.RhsBatch[i]] {
			return fmt.Errorf("train: DotGeneral batch dimensions differ: %s vs %s", lhs, rhs)
		}
		want = append(want, lhs.Dimensions[axis])
	}
	for i, axis := range a.LhsContracting {
		if lhs.Dimensions[axis] != rhs.Dimensions[a.RhsContracting[i]] {
			return fmt.Errorf("train: DotGeneral contracting dimensions differ: %s vs %s", lhs, rhs)
		}
	}
	for _, axis := range crossAxes(lhs.Rank(), a.LhsContracting, a.LhsBatch) {
		want = append(want, lhs.Dimensions[axis])
	}
	for _, axis := range crossAxes(rhs.Rank(), a.RhsContracting, a.RhsBatch) {
		want = append(want, rhs.Dimensions[axis])
	}
	if output.Ok() && !slices.Equal(output.Dimensions, want) {
		return fmt.Errorf("train: DotGeneral axes %+v give dimensions %v, node has %s", a, want, output)
	}
	return nil
}

// crossAxes returns, in increasing order, the axes of a rank-r operand that are neither
// contracting nor batch axes.
func crossAxes(rank int, contracting, batch []int) []int {
	used := make([]bool, rank)
	for _, axis := range contracting {
		used[axis] = true
	}
	for _, axis := range batch {
		used[axis] = true
	}
	out := make([]int, 0, rank)
	for axis := range rank {
		if !used[axis] {
			out = append(out, axis)
		}
	}
	return out
}

// axisRange returns [start, start+1, ..., start+n-1].
func axisRange(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}

// FastDotGeneralGradients returns the gradients with respect to lhs and rhs of
// out = graph.DotGeneral(lhs, axes.LhsContracting, axes.LhsBatch, rhs, axes.RhsContracting,
// axes.RhsBatch), given v, the gradient with respect to out. Each gradient is one
// DotGeneral of v with the other operand plus at most one transpose; no broadcast is built.
// It is what InstallFastDotGradients registers, exported for tests and for custom gradients.
func FastDotGeneralGradients(lhs, rhs *graph.Node, axes DotAxes, v *graph.Node) []*graph.Node {
	lhsCross := crossAxes(lhs.Rank(), axes.LhsContracting, axes.LhsBatch)
	rhsCross := crossAxes(rhs.Rank(), axes.RhsContracting, axes.RhsBatch)
	numBatch := len(axes.LhsBatch)
	// v is laid out as [batch..., lhs cross..., rhs cross...].
	vBatch := axisRange(0, numBatch)
	vLhsCross := axisRange(numBatch, len(lhsCross))
	vRhsCross := axisRange(numBatch+len(lhsCross), len(rhsCross))

	// dL/dlhs: contract v's rhs-cross axes with rhs's cross axes. The result is laid out as
	// [batch..., lhs cross..., rhs contracting axes in increasing rhs order].
	gradLhs := graph.DotGeneral(v, vRhsCross, vBatch, rhs, rhsCross, axes.RhsBatch)
	gradLhs = toOperandLayout(gradLhs, lhs.Rank(), axes.LhsBatch, lhsCross, axes.LhsContracting, axes.RhsContracting)

	// dL/drhs: contract v's lhs-cross axes with lhs's cross axes. The result is laid out as
	// [batch..., rhs cross..., lhs contracting axes in increasing lhs order].
	gradRhs := graph.DotGeneral(v, vLhsCross, vBatch, lhs, lhsCross, axes.LhsBatch)
	gradRhs = toOperandLayout(gradRhs, rhs.Rank(), axes.RhsBatch, rhsCross, axes.RhsContracting, axes.LhsContracting)
	return []*graph.Node{gradLhs, gradRhs}
}

// toOperandLayout transposes a gradient computed as [batch..., this cross..., other
// contracting (sorted)...] back to the operand's own axis order. thisContracting[i] is
// paired with otherContracting[i].
func toOperandLayout(grad *graph.Node, rank int, thisBatch, thisCross, thisContracting, otherContracting []int) *graph.Node {
	sortedOther := slices.Clone(otherContracting)
	slices.Sort(sortedOther)
	permutation := make([]int, rank)
	for i, axis := range thisBatch {
		permutation[axis] = i
	}
	for i, axis := range thisCross {
		permutation[axis] = len(thisBatch) + i
	}
	for i, axis := range thisContracting {
		permutation[axis] = len(thisBatch) + len(thisCross) + slices.Index(sortedOther, otherContracting[i])
	}
	identity := true
	for i, p := range permutation {
		if i != p {
			identity = false
			break
		}
	}
	if identity {
		return grad
	}
	return graph.TransposeAllAxes(grad, permutation...)
}
