package models

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	_ "unsafe" // For go:linkname, see below.

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"shopagent/matmul"
)

// This file routes the float32 DotGeneral operations of GoMLX v0.26.0's pure-Go backend
// ("simplego") to the SIMD kernels of package matmul. docs/GOMLX.md describes it; the pins
// are in matmulhook_test.go.
//
// simplego executes each graph node with a function taken from a table indexed by op type,
// filled at init time through setNodeExecutor(opType, priority, executor); an executor
// registered with a higher priority replaces a lower one, and v0.26.0 reserves priority 100
// for "custom user overrides" (priorityUser). The table, setNodeExecutor and the DTypeMap
// registries of the matmul kernel (dotGeneralKernelDTypeMap, ...) are all unexported, and
// the backend's configuration string has no kernel option, so the only way in without
// forking GoMLX is to link to setNodeExecutor by name (go:linkname, a "pull" of a symbol of
// a non-standard-library package, which the Go 1.23+ linker allows). Two symbols are used:
//
//	simplego.setNodeExecutor(opType backends.OpType, priority registerPriority, executor nodeExecutor)
//	simplego.execDotGeneral(backend *Backend, node *Node, inputs []*Buffer, _ []bool) (*Buffer, error)
//
// registerPriority is an int and nodeExecutor a func type, so the declarations below have
// the same memory layout. Our executor handles float32 DotGenerals whose axes it can read
// and passes everything else (other dtypes, or a node it cannot read) to the stock
// execDotGeneral, so it is never less correct than GoMLX's own.
//
// The axes of a DotGeneral node live in unexported fields (Node.data, a
// *dotGeneralNodeData with lhsContractingAxes, lhsBatchAxes, rhsContractingAxes,
// rhsBatchAxes; Node.shape, the normalized output [batch, lhs cross, rhs cross]); they are
// read with reflect, read-only, and checked against the operands' shapes.
//
// If a GoMLX upgrade renames either linked function, the build fails at link time
// ("relocation target ... not defined"); if it changes their signatures or the node's
// fields, TestMatmulHookPinsGoMLXSource fails, naming what moved.

//go:linkname simplegoSetNodeExecutor github.com/gomlx/gomlx/backends/simplego.setNodeExecutor
func simplegoSetNodeExecutor(opType backends.OpType, priority int, executor simplegoExecutor)

//go:linkname simplegoExecDotGeneral github.com/gomlx/gomlx/backends/simplego.execDotGeneral
func simplegoExecDotGeneral(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, inputsOwned []bool) (*simplego.Buffer, error)

// simplegoExecutor has the layout of simplego's nodeExecutor.
type simplegoExecutor = func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, inputsOwned []bool) (*simplego.Buffer, error)

// simplegoPriorityUser is simplego's priorityUser: above every executor GoMLX registers.
const simplegoPriorityUser = 100

// MatmulEnvVar is the environment variable that selects the matrix kernel of the pure-Go
// backend: "avx512", "avx2" or "generic" force one of package matmul's kernels (an error if
// the CPU lacks it), "simplego" keeps GoMLX's own kernel, unset or "auto" picks the
// fastest kernel the CPU supports. It is read once, by the first NewBackend for "go".
const MatmulEnvVar = "SHOPAGENT_MATMUL"

// MatmulStock is the MatmulEnvVar value that keeps GoMLX's own DotGeneral.
const MatmulStock = "simplego"

// installedMatmul installs the executor once per process and reports the kernel used.
var installedMatmul = sync.OnceValues(installMatmul)

// MatmulKernel returns the name of the matrix kernel that the pure-Go backend uses in this
// process: one of package matmul's kernels ("avx512", "avx2", "generic") or "simplego"
// (GoMLX's own). It installs the kernel if no backend did yet (see MatmulEnvVar).
func MatmulKernel() (string, error) {
	return installedMatmul()
}

func installMatmul() (string, error) {
	choice := strings.ToLower(strings.TrimSpace(os.Getenv(MatmulEnvVar)))
	if choice == MatmulStock {
		return MatmulStock, nil
	}
	kernel, err := matmul.Lookup(choice)
	if err != nil {
		return "", fmt.Errorf("models: $%s=%q: %w", MatmulEnvVar, choice, err)
	}
	if err := checkSimplegoNode(reflect.TypeFor[simplego.Node]()); err != nil {
		// GoMLX changed: keep its kernel (correct, slower); the pin tests fail.
		fmt.Fprintf(os.Stderr, "models: SIMD matrix kernel not installed, GoMLX's pure-Go backend changed: %v\n", err)
		return MatmulStock, nil
	}
	simplegoSetNodeExecutor(backends.OpTypeDotGeneral, simplegoPriorityUser, dotGeneralExecutor(kernel))
	return kernel.Name(), nil
}

// checkSimplegoNode checks that simplego's Node has the fields the executor reads.
func checkSimplegoNode(node reflect.Type) error {
	if f, ok := node.FieldByName("data"); !ok || f.Type.Kind() != reflect.Interface {
		return fmt.Errorf("simplego.Node has no interface field %q", "data")
	}
	if f, ok := node.FieldByName("shape"); !ok || f.Type != reflect.TypeFor[shapes.Shape]() {
		return fmt.Errorf("simplego.Node has no shapes.Shape field %q", "shape")
	}
	return nil
}

// dotGeneralExecutor returns a simplego node executor for DotGeneral that runs float32
// products on kernel and everything else on GoMLX's own executor.
func dotGeneralExecutor(kernel *matmul.Kernel) simplegoExecutor {
	return func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, inputsOwned []bool) (*simplego.Buffer, error) {
		out, ok, err := runDotGeneral(kernel, backend, node, inputs)
		if !ok {
			return simplegoExecDotGeneral(backend, node, inputs, inputsOwned)
		}
		return out, err
	}
}

// runDotGeneral runs a DotGeneral node on kernel. ok is false, and nothing is allocated,
// when the node is not a float32 product whose axes can be read.
func runDotGeneral(kernel *matmul.Kernel, backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) (out *simplego.Buffer, ok bool, err error) {
	if len(inputs) != 2 || node == nil {
		return nil, false, nil
	}
	axes, err := dotGeneralNodeAxes(reflect.ValueOf(node).Elem())
	if err != nil || axes.dtype != dtypes.Float32 {
		return nil, false, nil
	}
	var operands [2]matmul.Operand
	for i, in := range inputs {
		shape, err := backend.BufferShape(in)
		if err != nil || shape.DType != dtypes.Float32 {
			return nil, false, nil
		}
		flat, err := backend.BufferData(in)
		if err != nil {
			return nil, false, nil
		}
		data, isF32 := flat.([]float32)
		if !isF32 {
			return nil, false, nil
		}
		operands[i] = matmul.Operand{Data: data, Dims: shape.Dimensions}
	}
	operands[0].Contracting, operands[0].Batch = axes.lhsContracting, axes.lhsBatch
	operands[1].Contracting, operands[1].Batch = axes.rhsContracting, axes.rhsBatch
	product, err := matmul.NewProduct(operands[0], operands[1])
	if err != nil {
		return nil, false, nil
	}
	s := product.Shape()
	if len(axes.outDims) != 3 || axes.outDims[0] != s.Batch || axes.outDims[1] != s.M || axes.outDims[2] != s.N {
		return nil, false, nil
	}
	out = backend.NewBuffer(shapes.Make(dtypes.Float32, axes.outDims...))
	flat, err := backend.BufferData(out)
	if err != nil {
		return nil, true, fmt.Errorf("models: DotGeneral output buffer: %w", err)
	}
	if err := kernel.Run(product, flat.([]float32), operands[0].Data, operands[1].Data, 0); err != nil {
		return nil, true, fmt.Errorf("models: DotGeneral %v x %v on the %s kernel: %w",
			operands[0].Dims, operands[1].Dims, kernel.Name(), err)
	}
	return out, true, nil
}

// dotGeneralAxesData is what the executor reads from a simplego DotGeneral node.
type dotGeneralAxesData struct {
	lhsContracting, lhsBatch, rhsContracting, rhsBatch []int
	dtype                                              dtypes.DType
	outDims                                            []int // [batch, lhs cross, rhs cross]
}

// dotGeneralNodeAxes reads (never writes) the axes and output shape of a simplego
// DotGeneral node, given as the reflect.Value of the Node struct.
func dotGeneralNodeAxes(node reflect.Value) (dotGeneralAxesData, error) {
	var d dotGeneralAxesData
	if node.Kind() != reflect.Struct {
		return d, fmt.Errorf("node is a %s, want a struct", node.Kind())
	}
	data := node.FieldByName("data")
	if !data.IsValid() || data.Kind() != reflect.Interface || data.IsNil() {
		return d, fmt.Errorf("node has no data")
	}
	params := data.Elem()
	if params.Kind() == reflect.Pointer {
		params = params.Elem()
	}
	if params.Kind() != reflect.Struct || params.Type().Name() != "dotGeneralNodeData" {
		return d, fmt.Errorf("node data is a %s, want dotGeneralNodeData", params.Type())
	}
	readInts := func(v reflect.Value, name string) ([]int, error) {
		if !v.IsValid() || v.Kind() != reflect.Slice || v.Type().Elem().Kind() != reflect.Int {
			return nil, fmt.Errorf("no []int field %q", name)
		}
		out := make([]int, v.Len())
		for i := range out {
			out[i] = int(v.Index(i).Int())
		}
		return out, nil
	}
	var err error
	for _, f := range []struct {
		name string
		dst  *[]int
	}{
		{"lhsContractingAxes", &d.lhsContracting},
		{"lhsBatchAxes", &d.lhsBatch},
		{"rhsContractingAxes", &d.rhsContracting},
		{"rhsBatchAxes", &d.rhsBatch},
	} {
		if *f.dst, err = readInts(params.FieldByName(f.name), f.name); err != nil {
			return d, fmt.Errorf("DotGeneral node data: %w", err)
		}
	}
	shape := node.FieldByName("shape")
	if !shape.IsValid() || shape.Type() != reflect.TypeFor[shapes.Shape]() {
		return d, fmt.Errorf("node has no shapes.Shape field %q", "shape")
	}
	d.dtype = dtypes.DType(shape.FieldByName("DType").Int())
	if d.outDims, err = readInts(shape.FieldByName("Dimensions"), "shape.Dimensions"); err != nil {
		return d, fmt.Errorf("DotGeneral node shape: %w", err)
	}
	return d, nil
}
