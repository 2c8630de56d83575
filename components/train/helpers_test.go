package train_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/components/tabular/tabulartest"
	"github.com/mlsteps/mlsteps/components/train"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

var penguinFeatures = []string{"Beak Length (mm)", "Beak Depth (mm)", "Flipper Length (mm)", "Body Mass (g)"}

var carFeatures = []string{"Cylinders", "Displacement", "Horsepower", "Weight_in_lbs", "Acceleration", "Year"}

// vega reads features (NaN for null) and label out of a vega dataset,
// dropping rows whose label is null. A string label becomes a class index
// into the label's sorted distinct values.
func vega(t testing.TB, name string, features []string, label string) train.Data {
	t.Helper()
	_, recs := tabulartest.Load(t, name, 512)
	d := train.Data{Features: features}
	var names []string
	for _, rec := range recs {
		cols := make([]arrow.Array, len(features))
		for j, f := range features {
			cols[j] = column(t, rec, f)
		}
		lab := column(t, rec, label)
		for r := range int(rec.NumRows()) {
			if lab.IsNull(r) {
				continue
			}
			if s, ok := lab.(*array.String); ok {
				names = append(names, s.Value(r))
				d.Y = append(d.Y, 0)
			} else {
				d.Y = append(d.Y, number(t, lab, r))
			}
			for _, c := range cols {
				d.X = append(d.X, number(t, c, r))
			}
		}
	}
	if names != nil {
		d.Classes = slices.Compact(slices.Sorted(slices.Values(names)))
		for i, n := range names {
			d.Y[i] = float64(slices.Index(d.Classes, n))
		}
	}
	return d
}

func column(t testing.TB, rec arrow.RecordBatch, name string) arrow.Array {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	if len(idx) != 1 {
		t.Fatalf("no column %q", name)
	}
	return rec.Column(idx[0])
}

func number(t testing.TB, col arrow.Array, r int) float64 {
	t.Helper()
	if col.IsNull(r) {
		return math.NaN()
	}
	switch c := col.(type) {
	case *array.Float64:
		return c.Value(r)
	case *array.Int64:
		return float64(c.Value(r))
	case *array.Timestamp:
		// cars' Year is a date; the year is the number.
		return float64(c.Value(r).ToTime(c.DataType().(*arrow.TimestampType).Unit).Year())
	default:
		t.Fatalf("column is %s, not a number", col.DataType())
		return 0
	}
}

// rows keeps the rows of d for which keep is true.
func rows(d train.Data, keep func(i int, x []float64) bool) train.Data {
	f := len(d.Features)
	out := train.Data{Features: d.Features, Classes: d.Classes}
	for i := range d.Rows() {
		x := d.X[i*f : (i+1)*f]
		if keep(i, x) {
			out.X, out.Y = append(out.X, x...), append(out.Y, d.Y[i])
		}
	}
	return out
}

// complete drops rows with a missing feature.
func complete(d train.Data) train.Data {
	return rows(d, func(_ int, x []float64) bool { return !slices.ContainsFunc(x, math.IsNaN) })
}

// split puts every fifth row into eval, the rest into train.
func split(d train.Data) (tr, ev train.Data) {
	return rows(d, func(i int, _ []float64) bool { return i%5 != 0 }), rows(d, func(i int, _ []float64) bool { return i%5 == 0 })
}

// runORT runs model on x in ONNX Runtime and returns the named outputs.
func runORT(t testing.TB, model []byte, x []float64, features int, outputs ...string) map[string][]float32 {
	t.Helper()
	orttest.Init(t)
	s, err := ort.NewSession(model, []string{train.InputName}, outputs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	xf := make([]float32, len(x))
	for i, v := range x {
		xf[i] = float32(v)
	}
	res, err := s.Run(int64(len(x)/features), []ort.Column{{Name: train.InputName, Width: int64(features), Floats: xf}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for _, r := range res {
		out[r.Name] = r.Data
	}
	return out
}

// parity checks that ONNX Runtime on m's export agrees with m.Predict on
// every row of x: within 1e-5 relative for regression values (ORT sums in
// float32), 1e-5 absolute for probabilities, exactly for labels.
func parity(t *testing.T, m train.Model, x []float64, features int) {
	t.Helper()
	model, err := m.ONNX()
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Predict(x)
	if err != nil {
		t.Fatal(err)
	}
	if want.Values != nil {
		got := runORT(t, model, x, features, train.OutputPrediction)[train.OutputPrediction]
		if len(got) != len(want.Values) {
			t.Fatalf("ORT gave %d predictions for %d rows", len(got), len(want.Values))
		}
		worst := 0.0
		for i, w := range want.Values {
			worst = math.Max(worst, math.Abs(float64(got[i])-w)/math.Max(1, math.Abs(w)))
		}
		if worst > 1e-5 {
			t.Errorf("ORT prediction differs from Go by %.3g (relative), over 1e-5", worst)
		}
		t.Logf("%d rows: worst relative difference Go vs ORT %.3g", len(got), worst)
		return
	}
	got := runORT(t, model, x, features, train.OutputProbability, train.OutputLabel)
	probs, labels := got[train.OutputProbability], got[train.OutputLabel]
	if len(probs) != len(want.Probabilities) || len(labels) != len(want.Labels) {
		t.Fatalf("ORT gave %d probabilities and %d labels, Go %d and %d", len(probs), len(labels), len(want.Probabilities), len(want.Labels))
	}
	worst := 0.0
	for i, w := range want.Probabilities {
		worst = math.Max(worst, math.Abs(float64(probs[i])-w))
	}
	if worst > 1e-5 {
		t.Errorf("ORT probabilities differ from Go by %.3g, over 1e-5", worst)
	}
	for i, l := range want.Labels {
		if int(labels[i]) != l {
			t.Errorf("row %d: ORT label %v, Go %d", i, labels[i], l)
		}
	}
	t.Logf("%d rows: worst probability difference Go vs ORT %.3g, labels equal", len(labels), worst)
}

// sklearn runs script with Debian's python3, single-threaded, and decodes its JSON stdout
// into out. It skips (fails under CI=true) without python3-sklearn.
func sklearn(t testing.TB, script string, out any) {
	t.Helper()
	// One thread: the comparisons need no speed, and it keeps them stable.
	python(t, []string{"OMP_NUM_THREADS=1"}, script, out)
}

// python is sklearn with extra environment variables.
func python(t testing.TB, env []string, script string, out any) {
	t.Helper()
	testenv.Python(t, script, out, env...)
}

// synthetic makes n rows of f standard-normal-ish features (a tenth of
// feature 0 missing) and a binary target with a non-linear boundary and
// label noise, from a fixed seed.
func synthetic(n, f int, seed uint64) train.Data {
	r := rand.New(rand.NewPCG(seed, 99))
	d := train.Data{X: make([]float64, n*f), Y: make([]float64, n), Classes: []string{"no", "yes"}}
	for j := range f {
		d.Features = append(d.Features, fmt.Sprintf("f%d", j))
	}
	for i := range n {
		x := d.X[i*f : (i+1)*f]
		for j := range x {
			x[j] = r.NormFloat64()
		}
		s := x[0] + x[1]*x[1] - x[2]*x[3] + 0.5*r.NormFloat64()
		if s > 1 {
			d.Y[i] = 1
		}
		if r.IntN(10) == 0 {
			x[0] = math.NaN()
		}
	}
	return d
}
