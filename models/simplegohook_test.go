package models

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	_ "unsafe" // For go:linkname.

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"shopagent/matmul"
)

// The pins of simplegohook.go. What it relies on in GoMLX, and the test that fails if it
// moves:
//
//   - the declarations of simplego.setNodeExecutor and simplego.nodeExecutors, the types
//     registerPriority (an int) and nodeExecutor, priorityUser = 100 being above every
//     priority GoMLX registers with, the stock registrations of the replaced ops, and the
//     fields of Node and dotGeneralNodeData: checked in GoMLX's source as compiled into this
//     binary (TestSimplegoHookPinsGoMLXSource);
//   - simplego's executor table holding the new executors after NewBackend
//     (TestSimplegoHookInstalled);
//   - the axes being read from real DotGeneral nodes (TestSimplegoHookReadsNodes);
//   - the results: DotGenerals of every layout through a compiled GoMLX graph equal a float64
//     reference exactly on integer-valued operands (TestSimplegoHookDotGeneral), and the
//     element-wise ops equal GoMLX's own executors bit for bit, Exp and Erf within one unit
//     in the last place, sums within rounding (TestSimplegoHookElementwise).

// gomlxModule returns the version and source directory of the GoMLX module in this build.
func gomlxModule(t *testing.T) (version, dir string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-json", "github.com/gomlx/gomlx").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/gomlx/gomlx: %v", err)
	}
	var mod struct{ Version, Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatal(err)
	}
	if mod.Dir == "" {
		t.Fatalf("GoMLX's source directory is unknown (go list: %s); run `go mod download`", out)
	}
	return mod.Version, mod.Dir
}

func TestSimplegoHookPinsGoMLXSource(t *testing.T) {
	version, dir := gomlxModule(t)
	if version != "v0.26.0" {
		t.Errorf("GoMLX is %s: models/simplegohook.go links to simplego internals of v0.26.0; "+
			"re-check every item of this test against the new source before changing the version here", version)
	}
	fset := token.NewFileSet()
	pkgDir := filepath.Join(dir, "backends", "simplego")
	files, err := filepath.Glob(filepath.Join(pkgDir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", pkgDir, err)
	}
	funcs := map[string]*ast.FuncDecl{}
	typeSpecs := map[string]*ast.TypeSpec{}
	consts := map[string]string{}
	vars := map[string]string{}
	var calls []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					funcs[d.Name.Name] = d
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						typeSpecs[s.Name.Name] = s
					case *ast.ValueSpec:
						for _, name := range s.Names {
							if s.Type != nil {
								vars[name.Name] = render(fset, s.Type)
							}
						}
						for i, name := range s.Names {
							if i < len(s.Values) {
								consts[name.Name] = render(fset, s.Values[i])
							}
						}
					}
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if id, ok := call.Fun.(*ast.Ident); ok && id.Name == "setNodeExecutor" {
					calls = append(calls, render(fset, call))
				}
			}
			return true
		})
	}
	signature := func(name string) string {
		fn, ok := funcs[name]
		if !ok {
			t.Errorf("simplego.%s is gone", name)
			return ""
		}
		return render(fset, fn.Type)
	}
	varType := func(name string) string {
		typ, ok := vars[name]
		if !ok {
			t.Errorf("simplego var %s is gone", name)
		}
		return typ
	}
	typeOf := func(name string) string {
		spec, ok := typeSpecs[name]
		if !ok {
			t.Errorf("simplego type %s is gone", name)
			return ""
		}
		return render(fset, spec.Type)
	}
	for _, pin := range []struct{ what, got, want string }{
		{"func setNodeExecutor", signature("setNodeExecutor"),
			"func(opType backends.OpType, priority registerPriority, executor nodeExecutor)"},
		{"var nodeExecutors", varType("nodeExecutors"), "[backends.OpTypeLast]nodeExecutor"},
		{"type nodeExecutor", typeOf("nodeExecutor"),
			"func(backend *Backend, node *Node, inputs []*Buffer, inputsOwned []bool) (*Buffer, error)"},
		{"type registerPriority", typeOf("registerPriority"), "int"},
		{"priorityUser", consts["priorityUser"], "100"},
		{"the stock registrations of the replaced ops", strings.Join(filter(calls, replacedOps...), "; "),
			strings.Join([]string{
				"setNodeExecutor(backends.OpTypeDotGeneral, priorityGeneric, execDotGeneral)",
				"setNodeExecutor(backends.OpTypeWhere, priorityGeneric, execWhere)",
				"setNodeExecutor(backends.OpTypeTranspose, priorityGeneric, execTranspose)",
				"setNodeExecutor(backends.OpTypeBroadcastInDim, priorityGeneric, execBroadcastInDim)",
				"setNodeExecutor(backends.OpTypeReduceMax, priorityGeneric, execReduce)",
				"setNodeExecutor(backends.OpTypeReduceMin, priorityGeneric, execReduce)",
				"setNodeExecutor(backends.OpTypeReduceSum, priorityGeneric, execReduce)",
				"setNodeExecutor(backends.OpTypeExp, priorityGeneric, execExp)",
				"setNodeExecutor(backends.OpTypeErf, priorityGeneric, execErf)",
				"setNodeExecutor(backends.OpTypeAdd, priorityGeneric, execAdd)",
				"setNodeExecutor(backends.OpTypeMul, priorityGeneric, execMul)",
				"setNodeExecutor(backends.OpTypeSub, priorityGeneric, execSub)",
				"setNodeExecutor(backends.OpTypeDiv, priorityGeneric, execDiv)",
			}, "; ")},
	} {
		if pin.got != pin.want {
			t.Errorf("GoMLX moved what models/simplegohook.go relies on: %s is\n\t%s\nwant\n\t%s", pin.what, pin.got, pin.want)
		}
	}
	// No executor registered above the user priority that would shadow ours.
	for _, call := range calls {
		if strings.Contains(call, "priorityUser") || !strings.Contains(call, "priority") {
			t.Errorf("simplego registers %s: check that it does not shadow the DotGeneral hook", call)
		}
	}
	for typ, fields := range map[string]map[string]string{
		"dotGeneralNodeData": {"lhsContractingAxes": "[]int", "lhsBatchAxes": "[]int",
			"rhsContractingAxes": "[]int", "rhsBatchAxes": "[]int"},
		"Node": {"shape": "shapes.Shape", "data": "any"},
	} {
		spec, ok := typeSpecs[typ]
		if !ok {
			t.Errorf("simplego type %s is gone", typ)
			continue
		}
		st, ok := spec.Type.(*ast.StructType)
		if !ok {
			t.Errorf("simplego.%s is no longer a struct", typ)
			continue
		}
		have := map[string]string{}
		for _, f := range st.Fields.List {
			for _, n := range f.Names {
				have[n.Name] = render(fset, f.Type)
			}
		}
		for name, want := range fields {
			if have[name] != want {
				t.Errorf("GoMLX moved what models/simplegohook.go relies on: field %s.%s is %q, want %q", typ, name, have[name], want)
			}
		}
	}
}

func render(fset *token.FileSet, node any) string {
	var b strings.Builder
	if err := printer.Fprint(&b, fset, node); err != nil {
		return err.Error()
	}
	return b.String()
}

// filter returns the elements of list that contain one of the words as a whole word.
func filter(list []string, words ...string) []string {
	var out []string
	for _, s := range list {
		for _, w := range words {
			if slices.Contains(strings.FieldsFunc(s, func(r rune) bool { return r == '(' || r == ',' || r == ' ' || r == ')' }), w) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// replacedOps are the op types whose executors simplegohook.go replaces.
var replacedOps = []string{
	"backends.OpTypeDotGeneral", "backends.OpTypeAdd", "backends.OpTypeSub", "backends.OpTypeMul",
	"backends.OpTypeDiv", "backends.OpTypeBroadcastInDim", "backends.OpTypeReduceSum",
	"backends.OpTypeReduceMax", "backends.OpTypeReduceMin", "backends.OpTypeExp", "backends.OpTypeErf",
	"backends.OpTypeWhere", "backends.OpTypeTranspose",
}

// stockExecutors is simplego's executor table as GoMLX filled it, copied at package
// initialisation, before any NewBackend can install the new executors.
var stockExecutors = simplegoNodeExecutors

// funcName returns the name of a function's code (closures: of their function literal;
// inlined copies get the caller's name as a prefix).
func funcName(fn any) string {
	return runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
}

func TestSimplegoHookInstalled(t *testing.T) {
	if _, err := NewBackend("go"); err != nil {
		t.Fatal(err)
	}
	name, err := MatmulKernel()
	if err != nil {
		t.Fatal(err)
	}
	if got := funcName(stockExecutors[backends.OpTypeDotGeneral]); got != "github.com/gomlx/gomlx/backends/simplego.execDotGeneral" {
		t.Errorf("before installation the DotGeneral executor is %s: the table was read too late or is not simplego's", got)
	}
	elementwiseOn := !strings.EqualFold(strings.TrimSpace(os.Getenv(ElementwiseEnvVar)), SimplegoStock)
	for _, op := range []backends.OpType{backends.OpTypeDotGeneral, backends.OpTypeAdd, backends.OpTypeSub,
		backends.OpTypeMul, backends.OpTypeDiv, backends.OpTypeBroadcastInDim, backends.OpTypeReduceSum,
		backends.OpTypeReduceMax, backends.OpTypeReduceMin, backends.OpTypeExp, backends.OpTypeErf,
		backends.OpTypeWhere, backends.OpTypeTranspose} {
		installed, stock := funcName(simplegoNodeExecutors[op]), funcName(stockExecutors[op])
		if !strings.HasPrefix(stock, "github.com/gomlx/gomlx/backends/simplego.exec") {
			t.Errorf("%s: GoMLX's executor is %s", op, stock)
		}
		want := elementwiseOn
		if op == backends.OpTypeDotGeneral {
			want = name != SimplegoStock
		}
		ours := strings.HasPrefix(installed, "shopagent/models.") && strings.Contains(installed, ".withFallback.")
		if want && !ours {
			t.Errorf("%s: simplego's executor is %s after NewBackend, want the hook's", op, installed)
		}
		if !want && installed != stock {
			t.Errorf("%s: the executor is %s although the hook was not asked for", op, installed)
		}
	}
}

func TestMatmulKernelChoice(t *testing.T) {
	name, err := MatmulKernel()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ToLower(strings.TrimSpace(os.Getenv(MatmulEnvVar)))
	switch want {
	case "", "auto":
		want = matmul.Best().Name()
	}
	if name != want {
		t.Errorf("MatmulKernel() = %q, want %q ($%s=%q)", name, want, MatmulEnvVar, os.Getenv(MatmulEnvVar))
	}
}

func mustNodeFields(t *testing.T) nodeFields {
	t.Helper()
	f, err := simplegoNodeFields(reflect.TypeFor[simplego.Node]())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestSimplegoHookReadsNodes(t *testing.T) {
	f := mustNodeFields(t)
	backend, err := simplego.New("")
	if err != nil {
		t.Fatal(err)
	}
	b := backend.Builder("pin")
	// lhs [K=5, B=2, M=3] (contracting 0, batch 1), rhs [B=2, N=4, K=5] (batch 0, contracting 2).
	lhs, err := b.Parameter("lhs", shapes.Make(dtypes.Float32, 5, 2, 3), nil)
	if err != nil {
		t.Fatal(err)
	}
	rhs, err := b.Parameter("rhs", shapes.Make(dtypes.Float32, 2, 4, 5), nil)
	if err != nil {
		t.Fatal(err)
	}
	op, err := b.DotGeneral(lhs, []int{0}, []int{1}, rhs, []int{2}, []int{0})
	if err != nil {
		t.Fatal(err)
	}
	// simplego's DotGeneral returns a Reshape of the DotGeneral node.
	inputs := reflect.ValueOf(op).Elem().FieldByName("inputs")
	if !inputs.IsValid() || inputs.Len() != 1 {
		t.Fatalf("simplego's DotGeneral no longer returns a Reshape of the DotGeneral node (inputs %v); update this test", inputs)
	}
	got, err := dotGeneralNodeAxes(inputs.Index(0).Elem(), f)
	if err != nil {
		t.Fatalf("reading a DotGeneral node: %v", err)
	}
	want := dotGeneralAxesData{
		lhsContracting: []int{0}, lhsBatch: []int{1}, rhsContracting: []int{2}, rhsBatch: []int{0},
		dtype: dtypes.Float32, outDims: []int{2, 3, 4},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dotGeneralNodeAxes = %+v, want %+v", got, want)
	}
	// A node of another op is rejected (its data is not a dotGeneralNodeData).
	if _, err := dotGeneralNodeAxes(reflect.ValueOf(op).Elem(), f); err == nil {
		t.Errorf("a Reshape node was read as a DotGeneral")
	}
	// The axes of BroadcastInDim and reductions are the node's data.
	bcast, err := b.BroadcastInDim(rhs, shapes.Make(dtypes.Float32, 2, 7, 4, 5), []int{0, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if axes, ok := readIntSlice(reflect.ValueOf(bcast).Elem().Field(f.data)); !ok || !slices.Equal(axes, []int{0, 2, 3}) {
		t.Errorf("BroadcastInDim node data = %v (%v), want [0 2 3]", axes, ok)
	}
	if dtype, dims := readShape(reflect.ValueOf(bcast).Elem(), f); dtype != dtypes.Float32 || !slices.Equal(dims, []int{2, 7, 4, 5}) {
		t.Errorf("BroadcastInDim node shape = %s %v", dtype, dims)
	}
	sum, err := b.ReduceSum(rhs, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if axes, ok := readIntSlice(reflect.ValueOf(sum).Elem().Field(f.data)); !ok || !slices.Equal(axes, []int{2, 0}) {
		t.Errorf("ReduceSum node data = %v (%v), want [2 0]", axes, ok)
	}
}

// TestSimplegoHookElementwise runs the new element-wise executors and GoMLX's own on the
// same simplego nodes and buffers: the outputs must be equal bit for bit, and an owned input
// of the output's shape must be reused as the output, as simplego does.
func TestSimplegoHookElementwise(t *testing.T) {
	f := mustNodeFields(t)
	backend, err := simplego.New("")
	if err != nil {
		t.Fatal(err)
	}
	be := backend.(*simplego.Backend)
	rng := rand.New(rand.NewPCG(5, 6))
	executors := elementwiseExecutors(f)
	type opCase struct {
		name      string
		op        backends.OpType
		inputs    [][]int
		dtype     dtypes.DType
		boolFirst bool // The first input is a bool condition.
		build     func(b backends.Builder, in []backends.Op) (backends.Op, error)
	}
	binary := func(name string, op backends.OpType, lhs, rhs []int, fn func(backends.Builder) func(x, y backends.Op) (backends.Op, error)) opCase {
		return opCase{name: name, op: op, inputs: [][]int{lhs, rhs}, dtype: dtypes.Float32,
			build: func(b backends.Builder, in []backends.Op) (backends.Op, error) { return fn(b)(in[0], in[1]) }}
	}
	add := func(b backends.Builder) func(x, y backends.Op) (backends.Op, error) { return b.Add }
	sub := func(b backends.Builder) func(x, y backends.Op) (backends.Op, error) { return b.Sub }
	mul := func(b backends.Builder) func(x, y backends.Op) (backends.Op, error) { return b.Mul }
	div := func(b backends.Builder) func(x, y backends.Op) (backends.Op, error) { return b.Div }
	cases := []opCase{
		binary("bias_add", backends.OpTypeAdd, []int{4, 32, 16}, []int{1, 1, 16}, add),
		binary("same_shape_add", backends.OpTypeAdd, []int{4, 32, 16}, []int{4, 32, 16}, add),
		binary("center", backends.OpTypeSub, []int{4, 32, 16}, []int{4, 32, 1}, sub),
		binary("scalar_minus", backends.OpTypeSub, []int{}, []int{4, 32, 16}, sub),
		binary("dropout_mask", backends.OpTypeMul, []int{4, 32, 16}, []int{4, 32, 16}, mul),
		binary("scale", backends.OpTypeMul, []int{}, []int{4, 32, 16}, mul),
		binary("normalize", backends.OpTypeDiv, []int{4, 32, 16}, []int{4, 32, 1}, div),
		binary("reciprocal", backends.OpTypeDiv, []int{}, []int{64, 64}, div),
		binary("small_stays_stock", backends.OpTypeAdd, []int{3, 5}, []int{3, 5}, add),
		{name: "bias_broadcast", op: backends.OpTypeBroadcastInDim, inputs: [][]int{{16}}, dtype: dtypes.Float32,
			build: func(b backends.Builder, in []backends.Op) (backends.Op, error) {
				return b.BroadcastInDim(in[0], shapes.Make(dtypes.Float32, 4, 32, 16), []int{2})
			}},
		{name: "scalar_broadcast", op: backends.OpTypeBroadcastInDim, inputs: [][]int{{}}, dtype: dtypes.Float32,
			build: func(b backends.Builder, in []backends.Op) (backends.Op, error) {
				return b.BroadcastInDim(in[0], shapes.Make(dtypes.Float32, 70, 30), []int{})
			}},
		{name: "softmax_sum", op: backends.OpTypeReduceSum, inputs: [][]int{{4, 8, 32, 32}}, dtype: dtypes.Float32,
			build: func(b backends.Builder, in []backends.Op) (backends.Op, error) { return b.ReduceSum(in[0], 3) }},
		{name: "bias_gradient", op: backends.OpTypeReduceSum, inputs: [][]int{{4, 32, 16}}, dtype: dtypes.Float32,
			build: func(b backends.Builder, in []backends.Op) (backends.Op, error) { return b.ReduceSum(in[0], 0, 1) }},
		{name: "softmax_max", op: backends.OpTypeReduceMax, inputs: [][]int{{4, 8, 32, 32}}, dtype: dtypes.Float32,
			build: func(b backends.Builder, in []backends.Op) (backends.Op, error) { return b.ReduceMax(in[0], 3) }},
		{name: "min_middle", op: backends.OpTypeReduceMin, inputs: [][]int{{4, 32, 16}}, dtype: dtypes.Float32,
			build: func(b backends.Builder, in []backends.Op) (backends.Op, error) { return b.ReduceMin(in[0], 1) }},
		{name: "exp", op: backends.OpTypeExp, inputs: [][]int{{4, 32, 16}}, dtype: dtypes.Float32,
			build: func(b backends.Builder, in []backends.Op) (backends.Op, error) { return b.Exp(in[0]) }},
		{name: "erf", op: backends.OpTypeErf, inputs: [][]int{{4, 32, 16}}, dtype: dtypes.Float32,
			build: func(b backends.Builder, in []backends.Op) (backends.Op, error) { return b.Erf(in[0]) }},
		{name: "transpose_heads", op: backends.OpTypeTranspose, inputs: [][]int{{4, 32, 2, 16}}, dtype: dtypes.Float32,
			build: func(b backends.Builder, in []backends.Op) (backends.Op, error) { return b.Transpose(in[0], 0, 2, 1, 3) }},
		{name: "where_dropout", op: backends.OpTypeWhere, inputs: [][]int{{4, 32, 16}, {4, 32, 16}, {}}, dtype: dtypes.Float32, boolFirst: true,
			build: func(b backends.Builder, in []backends.Op) (backends.Op, error) { return b.Where(in[0], in[1], in[2]) }},
		{name: "where_both_full", op: backends.OpTypeWhere, inputs: [][]int{{4, 32, 16}, {4, 32, 16}, {4, 32, 16}}, dtype: dtypes.Float32, boolFirst: true,
			build: func(b backends.Builder, in []backends.Op) (backends.Op, error) { return b.Where(in[0], in[1], in[2]) }},
		{name: "float64_stays_stock", op: backends.OpTypeReduceSum, inputs: [][]int{{4, 32, 16}}, dtype: dtypes.Float64,
			build: func(b backends.Builder, in []backends.Op) (backends.Op, error) { return b.ReduceSum(in[0], 2) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := backend.Builder(c.name)
			params := make([]backends.Op, len(c.inputs))
			dtypeOf := func(i int) dtypes.DType {
				if i == 0 && c.boolFirst {
					return dtypes.Bool
				}
				return c.dtype
			}
			for i, dims := range c.inputs {
				if params[i], err = b.Parameter(fmt.Sprintf("x%d", i), shapes.Make(dtypeOf(i), dims...), nil); err != nil {
					t.Fatal(err)
				}
			}
			op, err := c.build(b, params)
			if err != nil {
				t.Fatal(err)
			}
			node := op.(*simplego.Node)
			newInputs := func() []*simplego.Buffer {
				bufs := make([]*simplego.Buffer, len(c.inputs))
				r := rand.New(rand.NewPCG(uint64(len(c.name)), 9))
				for i, dims := range c.inputs {
					n := shapes.Make(c.dtype, dims...).Size()
					var flat any
					if dtypeOf(i) == dtypes.Bool {
						v := make([]bool, n)
						for j := range v {
							v[j] = r.IntN(10) != 0
						}
						flat = v
					} else if c.dtype == dtypes.Float32 {
						v := make([]float32, n)
						for j := range v {
							v[j] = float32(r.NormFloat64())
						}
						flat = v
					} else {
						v := make([]float64, n)
						for j := range v {
							v[j] = r.NormFloat64()
						}
						flat = v
					}
					buf, err := be.BufferFromFlatData(0, flat, shapes.Make(dtypeOf(i), dims...))
					if err != nil {
						t.Fatal(err)
					}
					bufs[i] = buf.(*simplego.Buffer)
				}
				return bufs
			}
			_ = rng
			for _, ownFirst := range []bool{false, true} {
				stockIn, oursIn := newInputs(), newInputs()
				owned := make([]bool, len(c.inputs))
				reuseIdx := 0 // The input that may become the output.
				if c.boolFirst {
					reuseIdx = 1
				}
				owned[reuseIdx] = ownFirst
				want, err := stockExecutors[c.op](be, node, stockIn, slices.Clone(owned))
				if err != nil {
					t.Fatal(err)
				}
				firstIn := oursIn[reuseIdx]
				got, err := executors[c.op](stockExecutors[c.op])(be, node, oursIn, slices.Clone(owned))
				if err != nil {
					t.Fatal(err)
				}
				wantShape, _ := be.BufferShape(want)
				gotShape, _ := be.BufferShape(got)
				if !wantShape.Equal(gotShape) {
					t.Fatalf("output shape %s, want %s", gotShape, wantShape)
				}
				wantFlat, _ := be.BufferData(want)
				gotFlat, _ := be.BufferData(got)
				if c.dtype == dtypes.Float32 && (c.op == backends.OpTypeExp || c.op == backends.OpTypeErf || c.op == backends.OpTypeReduceSum) {
					// Exp and Erf: within one unit in the last place (elementwise's tests measure
					// how often). Sums: another summation order, so rounding differences of about
					// 1e-6 on these sums of 16 to 128 normal values; a wrong sum is off by ~1.
					w, g := wantFlat.([]float32), gotFlat.([]float32)
					for i := range w {
						tol := math.Abs(float64(w[i])) * 0x1p-23
						if c.op == backends.OpTypeReduceSum {
							tol = 1e-4 * (1 + math.Abs(float64(w[i])))
						}
						if d := math.Abs(float64(w[i]) - float64(g[i])); d > tol {
							t.Fatalf("output[%d] = %v, GoMLX's executor gives %v", i, g[i], w[i])
						}
					}
				} else if !reflect.DeepEqual(wantFlat, gotFlat) {
					t.Fatalf("output differs from GoMLX's executor (owned %v)", owned)
				}
				// Reuse: an owned input of the output's shape becomes the output (and is
				// taken out of the inputs); otherwise the inputs are left alone.
				inShape, _ := be.BufferShape(firstIn)
				reusable := ownFirst && c.op != backends.OpTypeBroadcastInDim && c.op != backends.OpTypeTranspose && !strings.HasPrefix(c.op.String(), "Reduce") &&
					inShape.Equal(gotShape) && c.dtype == dtypes.Float32 && gotShape.Size() >= minElementwise
				if reusable && (got != firstIn || oursIn[reuseIdx] != nil) {
					t.Errorf("the owned input was not reused as the output")
				}
				if !ownFirst && (oursIn[reuseIdx] != firstIn) {
					t.Errorf("an input not owned was taken")
				}
			}
		})
	}
}

// hookCase is a DotGeneral of the shapes and axes given.
type hookCase struct {
	name                   string
	lhsDims, rhsDims       []int
	lhsC, lhsB, rhsC, rhsB []int
	dot                    bool // graph.Dot instead of graph.DotGeneral.
}

var hookCases = []hookCase{
	{name: "matmul", lhsDims: []int{13, 7}, lhsC: []int{1}, rhsDims: []int{7, 17}, rhsC: []int{0}},
	{name: "dense_hf_layout", lhsDims: []int{2, 5, 40}, lhsC: []int{2}, rhsDims: []int{33, 40}, rhsC: []int{1}},
	{name: "weight_gradient", lhsDims: []int{300, 21}, lhsC: []int{0}, rhsDims: []int{300, 19}, rhsC: []int{0}},
	{name: "attention_scores", lhsDims: []int{2, 19, 3, 8}, lhsC: []int{3}, lhsB: []int{0, 2}, rhsDims: []int{2, 23, 3, 8}, rhsC: []int{3}, rhsB: []int{0, 2}},
	{name: "heads_contracted", lhsDims: []int{2, 3, 19, 8}, lhsC: []int{1, 3}, rhsDims: []int{24, 3, 8}, rhsC: []int{1, 2}},
	{name: "one_row", lhsDims: []int{1, 37}, lhsC: []int{1}, rhsDims: []int{29, 37}, rhsC: []int{1}},
	{name: "outer_product", lhsDims: []int{7}, rhsDims: []int{5}},
	{name: "dot_matvec", dot: true, lhsDims: []int{6, 4}, rhsDims: []int{4}},
	{name: "dot_matmul", dot: true, lhsDims: []int{6, 4}, rhsDims: []int{4, 9}},
}

func TestSimplegoHookDotGeneral(t *testing.T) {
	backend, err := NewBackend("go")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range hookCases {
		for _, dtype := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
			t.Run(fmt.Sprintf("%s/%s", c.name, dtype), func(t *testing.T) {
				if c.dot {
					c.lhsC, c.rhsC = []int{1}, []int{0}
				}
				rng := rand.New(rand.NewPCG(1, uint64(len(c.name))))
				lhs64, rhs64 := randomIntegers(rng, c.lhsDims), randomIntegers(rng, c.rhsDims)
				want, wantDims := referenceHookDotGeneral(c, lhs64, rhs64)
				exec, err := graph.NewExec(backend, func(x, y *graph.Node) *graph.Node {
					if c.dot {
						return graph.Dot(x, y)
					}
					return graph.DotGeneral(x, c.lhsC, c.lhsB, y, c.rhsC, c.rhsB)
				})
				if err != nil {
					t.Fatal(err)
				}
				var x, y *tensors.Tensor
				if dtype == dtypes.Float32 {
					x = tensors.FromFlatDataAndDimensions(toFloat32(lhs64), c.lhsDims...)
					y = tensors.FromFlatDataAndDimensions(toFloat32(rhs64), c.rhsDims...)
				} else {
					x = tensors.FromFlatDataAndDimensions(lhs64, c.lhsDims...)
					y = tensors.FromFlatDataAndDimensions(rhs64, c.rhsDims...)
				}
				out, err := exec.Exec(x, y)
				if err != nil {
					t.Fatal(err)
				}
				if got := out[0].Shape().Dimensions; !slices.Equal(got, wantDims) {
					t.Fatalf("output dimensions %v, want %v", got, wantDims)
				}
				var got []float64
				if dtype == dtypes.Float32 {
					for _, v := range tensors.MustCopyFlatData[float32](out[0]) {
						got = append(got, float64(v))
					}
				} else {
					got = tensors.MustCopyFlatData[float64](out[0])
				}
				// Integer operands in -3..3: every sum is exact in float32, so equality is exact.
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("out[%d] = %v, want %v", i, got[i], want[i])
					}
				}
			})
		}
	}
}

func randomIntegers(rng *rand.Rand, dims []int) []float64 {
	n := 1
	for _, d := range dims {
		n *= d
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(rng.IntN(7) - 3)
	}
	return out
}

func toFloat32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// referenceHookDotGeneral is DotGeneral in float64 from its definition, with output
// dimensions [lhs batch..., lhs cross..., rhs cross...].
func referenceHookDotGeneral(c hookCase, lhs, rhs []float64) ([]float64, []int) {
	role := func(rank int, contracting, batch []int) []int {
		r := make([]int, rank) // 0 cross, 1 contracting, 2 batch.
		for _, a := range contracting {
			r[(a+rank)%rank] = 1
		}
		for _, a := range batch {
			r[(a+rank)%rank] = 2
		}
		return r
	}
	lr, rr := role(len(c.lhsDims), c.lhsC, c.lhsB), role(len(c.rhsDims), c.rhsC, c.rhsB)
	var outDims []int
	for _, a := range c.lhsB {
		outDims = append(outDims, c.lhsDims[a])
	}
	for a, r := range lr {
		if r == 0 {
			outDims = append(outDims, c.lhsDims[a])
		}
	}
	for a, r := range rr {
		if r == 0 {
			outDims = append(outDims, c.rhsDims[a])
		}
	}
	var out []float64
	// Iterate over all pairs of lhs and rhs elements; keep those whose batch and
	// contracting coordinates match, and add their product to the output element of their
	// batch and cross coordinates.
	outSize := 1
	for _, d := range outDims {
		outSize *= d
	}
	out = make([]float64, outSize)
	lc := make([]int, len(c.lhsDims))
	rc := make([]int, len(c.rhsDims))
	for li, lv := range lhs {
		coords(li, c.lhsDims, lc)
		for ri, rv := range rhs {
			coords(ri, c.rhsDims, rc)
			match := true
			for i := range c.lhsC {
				match = match && lc[c.lhsC[i]] == rc[c.rhsC[i]]
			}
			for i := range c.lhsB {
				match = match && lc[c.lhsB[i]] == rc[c.rhsB[i]]
			}
			if !match {
				continue
			}
			o := 0
			for _, a := range c.lhsB {
				o = o*c.lhsDims[a] + lc[a]
			}
			for a, r := range lr {
				if r == 0 {
					o = o*c.lhsDims[a] + lc[a]
				}
			}
			for a, r := range rr {
				if r == 0 {
					o = o*c.rhsDims[a] + rc[a]
				}
			}
			out[o] += lv * rv
		}
	}
	if outDims == nil {
		outDims = []int{}
	}
	return out, outDims
}

func coords(i int, dims, out []int) {
	for a := len(dims) - 1; a >= 0; a-- {
		out[a] = i % dims[a]
		i /= dims[a]
	}
}
