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
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"shopagent/matmul"
)

// This file installs faster executors for a few operations of GoMLX v0.26.0's pure-Go
// backend ("simplego"): float32 DotGeneral on package matmul's SIMD kernels, and float32
// Add, Sub, Mul, Div, Exp, Erf, Where, Transpose, BroadcastInDim and ReduceSum/Max/Min on
// package elementwise (the executors are in simplegoexec.go). docs/GOMLX.md describes it;
// simplegohook_test.go pins it.
//
// simplego executes each graph node with a function taken from a table indexed by op type
// (nodeExecutors), filled at init time through setNodeExecutor(opType, priority, executor);
// an executor registered with a higher priority replaces a lower one, and v0.26.0 reserves
// priority 100 for "custom user overrides" (priorityUser). The table, setNodeExecutor and
// the DTypeMap registries of the matmul kernel (dotGeneralKernelDTypeMap, ...) are all
// unexported, and the backend's configuration string has no kernel option, so the only way
// in without forking GoMLX is to link to them by name (go:linkname "pull" of symbols of a
// non-standard-library package, which the Go 1.23+ linker allows):
//
//	simplego.setNodeExecutor(opType backends.OpType, priority registerPriority, executor nodeExecutor)
//	simplego.nodeExecutors [backends.OpTypeLast]nodeExecutor   (read once, for the stock executors)
//
// registerPriority is an int and nodeExecutor a func type, so the declarations below have
// the same memory layout. Each new executor handles the float32 cases it knows and calls
// the stock executor, read from the table before replacing it, for everything else, so it
// is never less general than GoMLX's own.
//
// The executors read two unexported fields of simplego's Node with reflect, read-only:
// shape (the output shape) and data (the op's parameters: a *dotGeneralNodeData for
// DotGeneral, the axes []int for BroadcastInDim and the reductions, the permutation []int
// for Transpose).
//
// If a GoMLX upgrade renames a linked symbol, the build fails at link time ("relocation
// target ... not defined"); if it changes their types or the node's fields,
// TestSimplegoHookPinsGoMLXSource fails, naming what moved.

//go:linkname simplegoSetNodeExecutor github.com/gomlx/gomlx/backends/simplego.setNodeExecutor
func simplegoSetNodeExecutor(opType backends.OpType, priority int, executor simplegoExecutor)

//go:linkname simplegoNodeExecutors github.com/gomlx/gomlx/backends/simplego.nodeExecutors
var simplegoNodeExecutors [backends.OpTypeLast]simplegoExecutor

// simplegoExecutor has the layout of simplego's nodeExecutor.
type simplegoExecutor = func(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer, inputsOwned []bool) (*simplego.Buffer, error)

// simplegoPriorityUser is simplego's priorityUser: above every executor GoMLX registers.
const simplegoPriorityUser = 100

// MatmulEnvVar is the environment variable that selects the matrix kernel of the pure-Go
// backend: "avx512", "avx2" or "generic" force one of package matmul's kernels (an error if
// the CPU lacks it), "simplego" keeps GoMLX's own kernel, unset or "auto" picks the
// fastest kernel the CPU supports. It is read once, by the first NewBackend for "go".
const MatmulEnvVar = "SHOPAGENT_MATMUL"

// ElementwiseEnvVar set to "simplego" keeps GoMLX's own executors for the element-wise
// operations, broadcasts, transposes and reductions (for comparisons); read once, like
// MatmulEnvVar.
const ElementwiseEnvVar = "SHOPAGENT_ELEMENTWISE"

// SimplegoStock is the value of MatmulEnvVar or ElementwiseEnvVar that keeps GoMLX's own
// executors.
const SimplegoStock = "simplego"

// installedKernels installs the executors once per process and reports the matrix kernel.
var installedKernels = sync.OnceValues(installKernels)

// MatmulKernel returns the name of the matrix kernel that the pure-Go backend uses in this
// process: one of package matmul's kernels ("avx512", "avx2", "generic") or "simplego"
// (GoMLX's own). It installs the executors if no backend did yet (see MatmulEnvVar and
// ElementwiseEnvVar).
func MatmulKernel() (string, error) {
	return installedKernels()
}

func installKernels() (string, error) {
	choice := strings.ToLower(strings.TrimSpace(os.Getenv(MatmulEnvVar)))
	var kernel *matmul.Kernel
	if choice != SimplegoStock {
		var err error
		if kernel, err = matmul.Lookup(choice); err != nil {
			return "", fmt.Errorf("models: $%s=%q: %w", MatmulEnvVar, choice, err)
		}
	}
	fields, err := simplegoNodeFields(reflect.TypeFor[simplego.Node]())
	if err != nil {
		// GoMLX changed: keep its executors (correct, slower); the pin tests fail.
		fmt.Fprintf(os.Stderr, "models: fast pure-Go kernels not installed, GoMLX's simplego changed: %v\n", err)
		return SimplegoStock, nil
	}
	executors := map[backends.OpType]func(stock simplegoExecutor) simplegoExecutor{}
	if kernel != nil {
		executors[backends.OpTypeDotGeneral] = func(stock simplegoExecutor) simplegoExecutor {
			return dotGeneralExecutor(kernel, fields, stock)
		}
	}
	if !strings.EqualFold(strings.TrimSpace(os.Getenv(ElementwiseEnvVar)), SimplegoStock) {
		for op, newExecutor := range elementwiseExecutors(fields) {
			executors[op] = newExecutor
		}
	}
	for op, newExecutor := range executors {
		stock := simplegoNodeExecutors[op]
		if stock == nil {
			continue
		}
		simplegoSetNodeExecutor(op, simplegoPriorityUser, newExecutor(stock))
	}
	if kernel == nil {
		return SimplegoStock, nil
	}
	return kernel.Name(), nil
}

// nodeFields are the indices of the simplego.Node fields the executors read.
type nodeFields struct {
	shape, data int
}

// simplegoNodeFields finds the fields the executors read in simplego's Node.
func simplegoNodeFields(node reflect.Type) (nodeFields, error) {
	var f nodeFields
	data, ok := node.FieldByName("data")
	if !ok || data.Type.Kind() != reflect.Interface || len(data.Index) != 1 {
		return f, fmt.Errorf("simplego.Node has no interface field %q", "data")
	}
	shape, ok := node.FieldByName("shape")
	if !ok || shape.Type != reflect.TypeFor[shapes.Shape]() || len(shape.Index) != 1 {
		return f, fmt.Errorf("simplego.Node has no shapes.Shape field %q", "shape")
	}
	return nodeFields{shape: shape.Index[0], data: data.Index[0]}, nil
}
