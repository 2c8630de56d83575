package transform_test

import (
	"context"
	"iter"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/components/tabular/tabulartest"
	"github.com/mlsteps/mlsteps/components/transform"
)

// load reads a vega dataset in batches of batch rows.
func load(t testing.TB, name string, batch int) (*arrow.Schema, []arrow.RecordBatch) {
	return tabulartest.Load(t, name, batch)
}

// columns is a dataset's columns as Compile takes them.
func columns(s *arrow.Schema) []transform.Input {
	out := make([]transform.Input, s.NumFields())
	for i, f := range s.Fields() {
		k, _ := transform.KindOf(f.Type.String())
		out[i] = transform.Input{Name: f.Name, Kind: k}
	}
	return out
}

func source(recs []arrow.RecordBatch) transform.Source {
	return func() iter.Seq2[arrow.RecordBatch, error] {
		return func(yield func(arrow.RecordBatch, error) bool) {
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
		}
	}
}

// fitSpec parses, compiles and fits a spec on recs.
func fitSpec(t testing.TB, spec string, schema *arrow.Schema, recs []arrow.RecordBatch) *transform.Graph {
	t.Helper()
	s, err := transform.ParseSpec("transform.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, r := range recs {
		rows += r.NumRows()
	}
	g, err := transform.Compile(s, columns(schema), rows)
	if err != nil {
		t.Fatal(err)
	}
	if err := transform.Fit(context.Background(), g, source(recs)); err != nil {
		t.Fatal(err)
	}
	return g
}

// session loads g's ONNX export in ORT.
func session(t testing.TB, g *transform.Graph) *ort.Session {
	t.Helper()
	orttest.Init(t)
	m, err := g.ONNX()
	if err != nil {
		t.Fatal(err)
	}
	data, err := onnx.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(g.Inputs))
	for i, in := range g.Inputs {
		names[i] = in.Name
	}
	s, err := ort.NewSession(data, names, []string{g.Output})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ortColumns(raw []transform.RawColumn) []ort.Column {
	cols := make([]ort.Column, len(raw))
	for i, c := range raw {
		cols[i] = ort.Column{Name: c.Name, Doubles: c.Doubles, Strings: c.Strings}
	}
	return cols
}

// close reports whether Go's a and ORT's b agree: within 1e-6 (relative
// above 1), NaN matching NaN.
func close(a, b float32) bool {
	if math.IsNaN(float64(a)) || math.IsNaN(float64(b)) {
		return math.IsNaN(float64(a)) && math.IsNaN(float64(b))
	}
	return math.Abs(float64(a)-float64(b)) <= 1e-6*math.Max(1, math.Abs(float64(a)))
}

// compare applies g in Go and in ORT to raw and fails on the first cell
// that differs; it returns the number of rows compared.
func compare(t testing.TB, g *transform.Graph, s *ort.Session, raw []transform.RawColumn, rows int) int {
	t.Helper()
	want, err := g.ApplyRaw(raw, rows)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(int64(rows), ortColumns(raw))
	if err != nil {
		t.Fatal(err)
	}
	got := res[0]
	width := len(g.Order)
	if len(got.Shape) != 2 || got.Shape[0] != int64(rows) || got.Shape[1] != int64(width) {
		t.Fatalf("onnx output shape %v, want [%d %d]", got.Shape, rows, width)
	}
	for r := range rows {
		for c := range width {
			if a, b := want[c][r], got.Data[r*width+c]; !close(a, b) {
				t.Fatalf("row %d, %s: Go %v, ONNX Runtime %v", r, g.Order[c], a, b)
			}
		}
	}
	return rows
}
