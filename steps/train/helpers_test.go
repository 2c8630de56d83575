package train_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/infer"
	"github.com/mlsteps/mlsteps/steps/step"
	"github.com/mlsteps/mlsteps/steps/train"
	"github.com/mlsteps/mlsteps/steps/transform"
)

// penguinsSpec one-hot encodes Island and Sex and imputes and standardises
// the numbers, as the quality reference asks.
const penguinsSpec = `features:
  "Beak Length (mm)":    [impute: mean, zscore]
  "Beak Depth (mm)":     [impute: mean, zscore]
  "Flipper Length (mm)": [impute: mean, zscore]
  "Body Mass (g)":       [impute: mean, zscore]
  Island: [vocabulary: {}, one_hot]
  Sex:    [impute: {constant: "unknown"}, vocabulary: {}, one_hot]
label: Species
`

// carsSpec standardises cars' numeric columns for miles per gallon.
const carsSpec = `features:
  Cylinders:        [impute: mean, zscore]
  Displacement:     [impute: mean, zscore]
  Horsepower:       [impute: mean, zscore]
  Weight_in_lbs:    [impute: mean, zscore]
  Acceleration:     [impute: mean, zscore]
label: Miles_per_Gallon
`

var penguinFeatures = []string{"Beak Length (mm)", "Beak Depth (mm)", "Flipper Length (mm)", "Body Mass (g)"}

// env is one test's store and root folder.
type env struct {
	t      testing.TB
	ctx    context.Context
	store  *artifacts.Store
	root   artifacts.URI
	stderr *syncBuffer
}

func newEnv(t testing.TB) *env {
	orttest.Init(t)
	store := artifacts.NewStore()
	t.Cleanup(func() { store.Close() })
	return &env{t: t, ctx: context.Background(), store: store, root: artifacts.MustParseURI(t.TempDir()), stderr: &syncBuffer{}}
}

func (e *env) stepEnv() step.Env { return step.Env{Store: e.store, Stderr: e.stderr} }

// examples imports a vega dataset split 80/20 with seed 7.
func (e *env) examples(data string) string {
	e.t.Helper()
	out := e.root.Join("data-" + strings.TrimSuffix(data, filepath.Ext(data)))
	inv := step.Invocation{OutRoot: out.String(), Params: map[string]any{"source": testenv.VegaData(e.t, data), "split": "train=0.8,eval=0.2", "seed": int64(7)}}
	if err := step.Execute(e.ctx, importer.Spec(), inv, e.stepEnv()); err != nil {
		e.t.Fatal(err)
	}
	return out.Join("examples").String()
}

// importFile imports a local file as one train split.
func (e *env) importFile(path string) string {
	e.t.Helper()
	out := e.root.Join("file-" + filepath.Base(path))
	inv := step.Invocation{OutRoot: out.String(), Params: map[string]any{"source": path, "split": "train=1"}}
	if err := step.Execute(e.ctx, importer.Spec(), inv, e.stepEnv()); err != nil {
		e.t.Fatal(err)
	}
	return out.Join("examples").String()
}

// transformed runs the transform step; it returns the transformed examples
// and the TransformGraph.
func (e *env) transformed(examples, spec string) (string, string) {
	e.t.Helper()
	p := filepath.Join(e.t.TempDir(), "transform.yaml")
	if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
		e.t.Fatal(err)
	}
	out := e.root.Join("xf-" + strconv.Itoa(len(spec)))
	inv := step.Invocation{Inputs: map[string]string{"examples": examples}, OutRoot: out.String(), Params: map[string]any{"spec": p}}
	if err := step.Execute(e.ctx, transform.Spec(), inv, e.stepEnv()); err != nil {
		e.t.Fatal(err)
	}
	return out.Join("transformed_examples").String(), out.Join("transform_graph").String()
}

// train runs the step into root/name and returns the model's URI.
func (e *env) train(name string, inputs map[string]string, params map[string]any) (artifacts.URI, error) {
	out := e.root.Join(name)
	err := step.Execute(e.ctx, train.Spec(), step.Invocation{Inputs: inputs, OutRoot: out.String(), Params: params}, e.stepEnv())
	return out.Join("model"), err
}

// infer runs the infer step and returns the predictions' URI.
func (e *env) infer(name string, inputs map[string]string) artifacts.URI {
	e.t.Helper()
	out := e.root.Join(name)
	if err := step.Execute(e.ctx, infer.Spec(), step.Invocation{Inputs: inputs, OutRoot: out.String(), Params: map[string]any{}}, e.stepEnv()); err != nil {
		e.t.Fatal(err)
	}
	return out.Join("predictions")
}

// deadRows returns the row numbers of a split that infer dead-lettered
// (rows with a null in an input column, keys without a model).
func (e *env) deadRows(pred artifacts.URI, split string) map[int]bool {
	e.t.Helper()
	out := map[int]bool{}
	for _, r := range e.column(pred.Parent().Join("dead_letters"), artifacts.TypeDeadLetters, split, "row") {
		n, err := strconv.Atoi(r)
		if err != nil {
			e.t.Fatal(err)
		}
		out[n] = true
	}
	return out
}

func (e *env) open(u artifacts.URI, typ artifacts.Type) *artifacts.Artifact {
	e.t.Helper()
	a, err := e.store.Open(e.ctx, artifacts.MustParseURI(u.String()), typ)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// committed reports whether an artifact was committed at u.
func (e *env) committed(u artifacts.URI) bool {
	_, err := e.store.Open(e.ctx, u, artifacts.TypeModel)
	return err == nil
}

// column reads one column of a split as text ("" for null), in row order.
func (e *env) column(u artifacts.URI, typ artifacts.Type, split, name string) []string {
	e.t.Helper()
	var out []string
	for rec, err := range e.open(u, typ).Records(e.ctx, split, artifacts.ReadOptions{Columns: []string{name}}) {
		if err != nil {
			e.t.Fatal(err)
		}
		c := rec.Column(0)
		for i := range c.Len() {
			switch {
			case c.IsNull(i):
				out = append(out, "")
			case c.DataType().ID() == arrow.STRING:
				out = append(out, c.(*array.String).Value(i))
			case c.DataType().ID() == arrow.LARGE_STRING:
				out = append(out, c.(*array.LargeString).Value(i))
			default:
				out = append(out, c.ValueStr(i))
			}
		}
	}
	return out
}

// numbers reads numeric columns of a split row-major, NaN for null.
func (e *env) numbers(u artifacts.URI, typ artifacts.Type, split string, names []string) []float64 {
	e.t.Helper()
	cols := make([][]string, len(names))
	for j, n := range names {
		cols[j] = e.column(u, typ, split, n)
	}
	var out []float64
	for i := range cols[0] {
		for j := range names {
			v, err := strconv.ParseFloat(cols[j][i], 64)
			if cols[j][i] == "" || err != nil {
				v = nan()
			}
			out = append(out, v)
		}
	}
	return out
}

func nan() float64 { z := 0.0; return z / z }

// property reads a sidecar property as JSON into v.
func property[T any](e *env, u artifacts.URI, typ artifacts.Type, key string) T {
	e.t.Helper()
	v, err := artifacts.Property[T](e.open(u, typ).Sidecar, key)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// featureOrder reads a TransformGraph's feature order.
func featureOrder(e *env, tg string) []string {
	return property[[]string](e, artifacts.MustParseURI(tg), artifacts.TypeTransformGraph, transform.PropFeatureOrder)
}

// writeCSV writes columns (features, then the label) of a split as CSV for
// python, rows whose label is null left out.
func (e *env) writeCSV(path string, u artifacts.URI, split string, features []string, label string) {
	e.t.Helper()
	cols := make([][]string, 0, len(features)+1)
	for _, f := range features {
		cols = append(cols, e.column(u, artifacts.TypeDataset, split, f))
	}
	cols = append(cols, e.column(u, artifacts.TypeDataset, split, label))
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(append(slices.Clone(features), label))
	for i := range cols[0] {
		if cols[len(cols)-1][i] == "" {
			continue
		}
		rec := make([]string, len(cols))
		for j := range cols {
			rec[j] = cols[j][i]
		}
		w.Write(rec)
	}
	w.Flush()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// python runs a script with /usr/bin/python3 and decodes its JSON stdout;
// it skips (fails under CI) when python3-sklearn is missing.
func python(t testing.TB, script string, out any, env ...string) {
	t.Helper()
	testenv.Python(t, script, out, env...)
}

// syncBuffer is a bytes.Buffer safe for the command's two streams.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// exitCode is step.ExitCode of err.
func exitCode(err error) int { return step.ExitCode(err) }
