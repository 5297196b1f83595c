package models

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
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

// The pins of matmulhook.go. What it relies on in GoMLX, and the test that fails if it moves:
//
//   - the signatures of simplego.setNodeExecutor and simplego.execDotGeneral, the types
//     registerPriority (an int) and nodeExecutor, priorityUser = 100 being the highest
//     priority GoMLX uses, and the fields of Node and dotGeneralNodeData: checked in GoMLX's
//     source as compiled into this binary (TestMatmulHookPinsGoMLXSource);
//   - the executor table really holding our executor after NewBackend
//     (TestMatmulHookInstalled, reading simplego's table);
//   - the axes being read from real DotGeneral nodes (TestMatmulHookReadsNodes);
//   - the results: DotGenerals of every layout through a compiled GoMLX graph equal a float64
//     reference exactly on integer-valued operands (TestMatmulHookDotGeneral).

// simplegoNodeExecutors is simplego's executor table (read-only here).
//
//go:linkname simplegoNodeExecutors github.com/gomlx/gomlx/backends/simplego.nodeExecutors
var simplegoNodeExecutors [backends.OpTypeLast]simplegoExecutor

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

func TestMatmulHookPinsGoMLXSource(t *testing.T) {
	version, dir := gomlxModule(t)
	if version != "v0.26.0" {
		t.Errorf("GoMLX is %s: models/matmulhook.go links to simplego internals of v0.26.0; "+
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
		{"func execDotGeneral", signature("execDotGeneral"),
			"func(backend *Backend, node *Node, inputs []*Buffer, _ []bool) (*Buffer, error)"},
		{"type nodeExecutor", typeOf("nodeExecutor"),
			"func(backend *Backend, node *Node, inputs []*Buffer, inputsOwned []bool) (*Buffer, error)"},
		{"type registerPriority", typeOf("registerPriority"), "int"},
		{"priorityUser", consts["priorityUser"], "100"},
		{"the stock DotGeneral registration", strings.Join(filter(calls, "OpTypeDotGeneral"), "; "),
			"setNodeExecutor(backends.OpTypeDotGeneral, priorityGeneric, execDotGeneral)"},
	} {
		if pin.got != pin.want {
			t.Errorf("GoMLX moved what models/matmulhook.go relies on: %s is\n\t%s\nwant\n\t%s", pin.what, pin.got, pin.want)
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
				t.Errorf("GoMLX moved what models/matmulhook.go relies on: field %s.%s is %q, want %q", typ, name, have[name], want)
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

func filter(list []string, substr string) []string {
	var out []string
	for _, s := range list {
		if strings.Contains(s, substr) {
			out = append(out, s)
		}
	}
	return out
}

func TestMatmulHookInstalled(t *testing.T) {
	if _, err := NewBackend("go"); err != nil {
		t.Fatal(err)
	}
	name, err := MatmulKernel()
	if err != nil {
		t.Fatal(err)
	}
	// Closures are compared by the name of their code: the function literal of
	// dotGeneralExecutor (inlined copies get the caller's name as a prefix).
	installed := runtime.FuncForPC(reflect.ValueOf(simplegoNodeExecutors[backends.OpTypeDotGeneral]).Pointer()).Name()
	stock := runtime.FuncForPC(reflect.ValueOf(simplegoExecDotGeneral).Pointer()).Name()
	if stock != "github.com/gomlx/gomlx/backends/simplego.execDotGeneral" {
		t.Errorf("simplegoExecDotGeneral links to %s", stock)
	}
	if name == MatmulStock {
		t.Logf("$%s=%s: GoMLX's kernel kept", MatmulEnvVar, MatmulStock)
		if installed != stock {
			t.Errorf("the DotGeneral executor is %s although the hook was not installed", installed)
		}
		return
	}
	if !strings.HasPrefix(installed, "shopagent/models.") || !strings.HasSuffix(installed, "dotGeneralExecutor.func1") {
		t.Errorf("simplego's DotGeneral executor is %s after NewBackend, want the hook's (kernel %q)", installed, name)
	}
	if err := checkSimplegoNode(reflect.TypeFor[simplego.Node]()); err != nil {
		t.Error(err)
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

func TestMatmulHookReadsNodes(t *testing.T) {
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
	got, err := dotGeneralNodeAxes(inputs.Index(0).Elem())
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
	if _, err := dotGeneralNodeAxes(reflect.ValueOf(op).Elem()); err == nil {
		t.Errorf("a Reshape node was read as a DotGeneral")
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

func TestMatmulHookDotGeneral(t *testing.T) {
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
