package models

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"shopagent/elementwise"
	"shopagent/matmul"
)

// The executors installed by simplegohook.go. Each returns ok == false, having changed
// nothing, when it does not handle a node (another dtype, a layout it cannot read, an
// output too small to be worth it); the caller then runs the stock executor.

// minElementwise is the output size under which element-wise nodes keep the stock
// executor: for small tensors reading the node costs more than the stock loop.
const minElementwise = 1024

// readShape reads a node's output shape (field shape).
func readShape(node reflect.Value, f nodeFields) (dtypes.DType, []int) {
	shape := node.Field(f.shape)
	dims := shape.FieldByName("Dimensions")
	out := make([]int, dims.Len())
	for i := range out {
		out[i] = int(dims.Index(i).Int())
	}
	return dtypes.DType(shape.FieldByName("DType").Int()), out
}

// readIntSlice reads an []int (the data of BroadcastInDim and reductions, or a field of
// DotGeneral's data).
func readIntSlice(v reflect.Value) ([]int, bool) {
	if v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	if !v.IsValid() || v.Kind() != reflect.Slice || v.Type().Elem().Kind() != reflect.Int {
		return nil, false
	}
	out := make([]int, v.Len())
	for i := range out {
		out[i] = int(v.Index(i).Int())
	}
	return out, true
}

// float32Data returns the flat data and dimensions of a float32 buffer.
func float32Data(backend *simplego.Backend, buf *simplego.Buffer) ([]float32, []int, bool) {
	shape, err := backend.BufferShape(buf)
	if err != nil || shape.DType != dtypes.Float32 {
		return nil, nil, false
	}
	flat, err := backend.BufferData(buf)
	if err != nil {
		return nil, nil, false
	}
	data, ok := flat.([]float32)
	return data, shape.Dimensions, ok
}

// newFloat32Buffer returns a buffer (from simplego's pool, not zeroed) and its data.
func newFloat32Buffer(backend *simplego.Backend, dims []int) (*simplego.Buffer, []float32, error) {
	buf := backend.NewBuffer(shapes.Make(dtypes.Float32, dims...))
	flat, err := backend.BufferData(buf)
	if err != nil {
		return nil, nil, err
	}
	return buf, flat.([]float32), nil
}

// withFallback runs run and, when it does not handle the node, the stock executor.
func withFallback(stock simplegoExecutor, run func(*simplego.Backend, reflect.Value, []*simplego.Buffer, []bool) (*simplego.Buffer, bool, error)) simplegoExecutor {
	return func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, inputsOwned []bool) (*simplego.Buffer, error) {
		if node != nil {
			if out, ok, err := run(backend, reflect.ValueOf(node).Elem(), inputs, inputsOwned); ok {
				return out, err
			}
		}
		return stock(backend, node, inputs, inputsOwned)
	}
}

// dotGeneralExecutor runs float32 DotGenerals on kernel.
func dotGeneralExecutor(kernel *matmul.Kernel, f nodeFields, stock simplegoExecutor) simplegoExecutor {
	return withFallback(stock, func(backend *simplego.Backend, node reflect.Value, inputs []*simplego.Buffer, _ []bool) (*simplego.Buffer, bool, error) {
		axes, err := dotGeneralNodeAxes(node, f)
		if err != nil || axes.dtype != dtypes.Float32 || len(inputs) != 2 {
			return nil, false, nil
		}
		var operands [2]matmul.Operand
		for i, in := range inputs {
			data, dims, ok := float32Data(backend, in)
			if !ok {
				return nil, false, nil
			}
			operands[i] = matmul.Operand{Data: data, Dims: dims}
		}
		operands[0].Contracting, operands[0].Batch = axes.lhsContracting, axes.lhsBatch
		operands[1].Contracting, operands[1].Batch = axes.rhsContracting, axes.rhsBatch
		product, err := matmul.NewProduct(operands[0], operands[1])
		if err != nil {
			return nil, false, nil
		}
		s := product.Shape()
		if !slices.Equal(axes.outDims, []int{s.Batch, s.M, s.N}) {
			return nil, false, nil
		}
		out, flat, err := newFloat32Buffer(backend, axes.outDims)
		if err != nil {
			return nil, true, fmt.Errorf("models: DotGeneral output buffer: %w", err)
		}
		if err := kernel.Run(product, flat, operands[0].Data, operands[1].Data, 0); err != nil {
			return nil, true, fmt.Errorf("models: DotGeneral %v x %v on the %s kernel: %w",
				operands[0].Dims, operands[1].Dims, kernel.Name(), err)
		}
		return out, true, nil
	})
}

// dotGeneralAxesData is what the executor reads from a simplego DotGeneral node.
type dotGeneralAxesData struct {
	lhsContracting, lhsBatch, rhsContracting, rhsBatch []int
	dtype                                              dtypes.DType
	outDims                                            []int // [batch, lhs cross, rhs cross]
}

// dotGeneralNodeAxes reads (never writes) the axes and output shape of a simplego
// DotGeneral node, given as the reflect.Value of the Node struct.
func dotGeneralNodeAxes(node reflect.Value, f nodeFields) (dotGeneralAxesData, error) {
	var d dotGeneralAxesData
	if node.Kind() != reflect.Struct || node.NumField() <= max(f.data, f.shape) {
		return d, fmt.Errorf("node is not a simplego.Node")
	}
	data := node.Field(f.data)
	if data.IsNil() {
		return d, fmt.Errorf("node has no data")
	}
	params := data.Elem()
	if params.Kind() == reflect.Pointer {
		params = params.Elem()
	}
	if params.Kind() != reflect.Struct || params.Type().Name() != "dotGeneralNodeData" {
		return d, fmt.Errorf("node data is a %s, want dotGeneralNodeData", params.Type())
	}
	for _, field := range []struct {
		name string
		dst  *[]int
	}{
		{"lhsContractingAxes", &d.lhsContracting},
		{"lhsBatchAxes", &d.lhsBatch},
		{"rhsContractingAxes", &d.rhsContracting},
		{"rhsBatchAxes", &d.rhsBatch},
	} {
		var ok bool
		if *field.dst, ok = readIntSlice(params.FieldByName(field.name)); !ok {
			return d, fmt.Errorf("DotGeneral node data has no []int field %q", field.name)
		}
	}
	d.dtype, d.outDims = readShape(node, f)
	return d, nil
}

// elementwiseExecutors returns the constructors of the element-wise executors by op.
func elementwiseExecutors(f nodeFields) map[backends.OpType]func(stock simplegoExecutor) simplegoExecutor {
	executors := map[backends.OpType]func(simplegoExecutor) simplegoExecutor{}
	for op, binary := range map[backends.OpType]elementwise.BinaryOp{
		backends.OpTypeAdd: elementwise.Add, backends.OpTypeSub: elementwise.Sub,
		backends.OpTypeMul: elementwise.Mul, backends.OpTypeDiv: elementwise.Div,
	} {
		executors[op] = func(stock simplegoExecutor) simplegoExecutor {
			return withFallback(stock, func(backend *simplego.Backend, node reflect.Value, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, bool, error) {
				return runBinary(binary, f, backend, node, inputs, owned)
			})
		}
	}
	for op, reduce := range map[backends.OpType]elementwise.ReduceOp{
		backends.OpTypeReduceSum: elementwise.ReduceSum, backends.OpTypeReduceMax: elementwise.ReduceMax,
		backends.OpTypeReduceMin: elementwise.ReduceMin,
	} {
		executors[op] = func(stock simplegoExecutor) simplegoExecutor {
			return withFallback(stock, func(backend *simplego.Backend, node reflect.Value, inputs []*simplego.Buffer, _ []bool) (*simplego.Buffer, bool, error) {
				return runReduce(reduce, f, backend, node, inputs)
			})
		}
	}
	for op, unary := range map[backends.OpType]elementwise.UnaryOp{
		backends.OpTypeExp: elementwise.Exp, backends.OpTypeErf: elementwise.Erf,
	} {
		executors[op] = func(stock simplegoExecutor) simplegoExecutor {
			return withFallback(stock, func(backend *simplego.Backend, _ reflect.Value, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, bool, error) {
				return runUnary(unary, backend, inputs, owned)
			})
		}
	}
	executors[backends.OpTypeWhere] = func(stock simplegoExecutor) simplegoExecutor {
		return withFallback(stock, func(backend *simplego.Backend, node reflect.Value, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, bool, error) {
			return runWhere(f, backend, node, inputs, owned)
		})
	}
	executors[backends.OpTypeTranspose] = func(stock simplegoExecutor) simplegoExecutor {
		return withFallback(stock, func(backend *simplego.Backend, node reflect.Value, inputs []*simplego.Buffer, _ []bool) (*simplego.Buffer, bool, error) {
			return runTranspose(f, backend, node, inputs)
		})
	}
	executors[backends.OpTypeBroadcastInDim] = func(stock simplegoExecutor) simplegoExecutor {
		return withFallback(stock, func(backend *simplego.Backend, node reflect.Value, inputs []*simplego.Buffer, _ []bool) (*simplego.Buffer, bool, error) {
			return runBroadcastInDim(f, backend, node, inputs)
		})
	}
	return executors
}

// runBinary runs a float32 Add, Sub, Mul or Div, writing into an input buffer of the
// output's shape when the node owns it (its last use), as simplego does.
func runBinary(op elementwise.BinaryOp, f nodeFields, backend *simplego.Backend, node reflect.Value, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, bool, error) {
	if len(inputs) != 2 || len(owned) != 2 {
		return nil, false, nil
	}
	lhs, lhsDims, ok := float32Data(backend, inputs[0])
	if !ok {
		return nil, false, nil
	}
	rhs, rhsDims, ok := float32Data(backend, inputs[1])
	if !ok || max(len(lhs), len(rhs)) < minElementwise {
		return nil, false, nil
	}
	dtype, outDims := readShape(node, f)
	if dtype != dtypes.Float32 || !broadcastsTo(lhsDims, outDims) || !broadcastsTo(rhsDims, outDims) {
		return nil, false, nil
	}
	var out *simplego.Buffer
	var flat []float32
	switch {
	case owned[1] && slices.Equal(rhsDims, outDims):
		out, flat = inputs[1], rhs
		inputs[1] = nil // Tells simplego that the output took over the buffer.
	case owned[0] && slices.Equal(lhsDims, outDims):
		out, flat = inputs[0], lhs
		inputs[0] = nil
	default:
		var err error
		if out, flat, err = newFloat32Buffer(backend, outDims); err != nil {
			return nil, true, fmt.Errorf("models: %s output buffer: %w", op, err)
		}
	}
	if err := elementwise.Binary(op, flat, lhs, rhs, outDims, lhsDims, rhsDims, 0); err != nil {
		return nil, true, fmt.Errorf("models: %w", err)
	}
	return out, true, nil
}

// runUnary runs a float32 Exp or Erf, in place when the node owns its input, as simplego
// does.
func runUnary(op elementwise.UnaryOp, backend *simplego.Backend, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, bool, error) {
	if len(inputs) != 1 || len(owned) != 1 {
		return nil, false, nil
	}
	in, dims, ok := float32Data(backend, inputs[0])
	if !ok || len(in) < minElementwise {
		return nil, false, nil
	}
	out, flat := inputs[0], in
	if owned[0] {
		inputs[0] = nil // Tells simplego that the output took over the buffer.
	} else {
		var err error
		if out, flat, err = newFloat32Buffer(backend, dims); err != nil {
			return nil, true, fmt.Errorf("models: %s output buffer: %w", op, err)
		}
	}
	if err := elementwise.Unary(op, flat, in, 0); err != nil {
		return nil, true, fmt.Errorf("models: %w", err)
	}
	return out, true, nil
}

// runWhere runs a Where with a full-size bool condition and float32 values (full-size or
// scalars), writing into an owned value buffer of the output's shape as simplego does.
func runWhere(f nodeFields, backend *simplego.Backend, node reflect.Value, inputs []*simplego.Buffer, owned []bool) (*simplego.Buffer, bool, error) {
	if len(inputs) != 3 || len(owned) != 3 {
		return nil, false, nil
	}
	dtype, outDims := readShape(node, f)
	n := shapes.Make(dtype, outDims...).Size()
	if dtype != dtypes.Float32 || n < minElementwise {
		return nil, false, nil
	}
	condFlat, err := backend.BufferData(inputs[0])
	if err != nil {
		return nil, false, nil
	}
	cond, ok := condFlat.([]bool)
	if !ok || len(cond) != n {
		return nil, false, nil
	}
	var values [2][]float32
	var dims [2][]int
	for i := range values {
		if values[i], dims[i], ok = float32Data(backend, inputs[1+i]); !ok || (len(values[i]) != n && len(values[i]) != 1) {
			return nil, false, nil
		}
	}
	var out *simplego.Buffer
	var flat []float32
	switch {
	case owned[1] && slices.Equal(dims[0], outDims):
		out, flat = inputs[1], values[0]
		inputs[1] = nil // Tells simplego that the output took over the buffer.
	case owned[2] && slices.Equal(dims[1], outDims):
		out, flat = inputs[2], values[1]
		inputs[2] = nil
	default:
		if out, flat, err = newFloat32Buffer(backend, outDims); err != nil {
			return nil, true, fmt.Errorf("models: Where output buffer: %w", err)
		}
	}
	if err := elementwise.Where(flat, cond, values[0], values[1], 0); err != nil {
		return nil, true, fmt.Errorf("models: %w", err)
	}
	return out, true, nil
}

// runTranspose runs a float32 Transpose.
func runTranspose(f nodeFields, backend *simplego.Backend, node reflect.Value, inputs []*simplego.Buffer) (*simplego.Buffer, bool, error) {
	if len(inputs) != 1 {
		return nil, false, nil
	}
	in, inDims, ok := float32Data(backend, inputs[0])
	if !ok || len(in) < minElementwise {
		return nil, false, nil
	}
	perm, ok := readIntSlice(node.Field(f.data))
	if !ok {
		return nil, false, nil
	}
	dtype, outDims := readShape(node, f)
	if dtype != dtypes.Float32 || len(perm) != len(inDims) {
		return nil, false, nil
	}
	out, flat, err := newFloat32Buffer(backend, outDims)
	if err != nil {
		return nil, true, fmt.Errorf("models: Transpose output buffer: %w", err)
	}
	if err := elementwise.Transpose(flat, in, inDims, perm, 0); err != nil {
		_ = backend.BufferFinalize(out)
		return nil, false, nil // Not a permutation elementwise knows: the stock executor decides.
	}
	return out, true, nil
}

// runReduce runs a float32 ReduceSum, ReduceMax or ReduceMin.
func runReduce(op elementwise.ReduceOp, f nodeFields, backend *simplego.Backend, node reflect.Value, inputs []*simplego.Buffer) (*simplego.Buffer, bool, error) {
	if len(inputs) != 1 {
		return nil, false, nil
	}
	in, inDims, ok := float32Data(backend, inputs[0])
	if !ok || len(in) < minElementwise {
		return nil, false, nil
	}
	axes, ok := readIntSlice(node.Field(f.data))
	if !ok || len(axes) == 0 {
		return nil, false, nil
	}
	dtype, outDims := readShape(node, f)
	if dtype != dtypes.Float32 {
		return nil, false, nil
	}
	out, flat, err := newFloat32Buffer(backend, outDims)
	if err != nil {
		return nil, true, fmt.Errorf("models: %s output buffer: %w", op, err)
	}
	if err := elementwise.Reduce(op, flat, in, inDims, axes, 0); err != nil {
		_ = backend.BufferFinalize(out)
		return nil, false, nil // Not a reduction elementwise knows: the stock executor decides.
	}
	return out, true, nil
}

// runBroadcastInDim runs a float32 BroadcastInDim.
func runBroadcastInDim(f nodeFields, backend *simplego.Backend, node reflect.Value, inputs []*simplego.Buffer) (*simplego.Buffer, bool, error) {
	if len(inputs) != 1 {
		return nil, false, nil
	}
	in, inDims, ok := float32Data(backend, inputs[0])
	if !ok {
		return nil, false, nil
	}
	dtype, outDims := readShape(node, f)
	if dtype != dtypes.Float32 || shapes.Make(dtype, outDims...).Size() < minElementwise {
		return nil, false, nil
	}
	axes, ok := readIntSlice(node.Field(f.data))
	if !ok {
		return nil, false, nil
	}
	out, flat, err := newFloat32Buffer(backend, outDims)
	if err != nil {
		return nil, true, fmt.Errorf("models: BroadcastInDim output buffer: %w", err)
	}
	if err := elementwise.BroadcastInDim(flat, in, outDims, inDims, axes, 0); err != nil {
		_ = backend.BufferFinalize(out)
		return nil, false, nil // Not a broadcast elementwise knows: the stock executor decides.
	}
	return out, true, nil
}

// broadcastsTo reports whether an operand of dimensions dims broadcasts to out the way
// elementwise.Binary does: a single element, or the same rank with each dimension equal to
// the output's or 1.
func broadcastsTo(dims, out []int) bool {
	if shapes.Make(dtypes.Float32, dims...).Size() == 1 {
		return true
	}
	if len(dims) != len(out) {
		return false
	}
	for a, d := range dims {
		if d != out[a] && d != 1 {
			return false
		}
	}
	return true
}
