package inference_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
)

// TestCascadeEscalates: a first model answers the rows it is sure of and
// a second one the rest (TopScoreBelow); each row's answer and model_id
// are those of the model that should have answered it, checked against
// direct ORT calls.
func TestCascadeEscalates(t *testing.T) {
	orttest.Init(t)
	noLeaks(t)
	recs := penguins(t, 50)
	m1, m2 := mlp(t, 4, 16, 1), mlp(t, 4, 16, 2)
	want1, want2 := direct(t, m1, []string{"probs"}, recs), direct(t, m2, []string{"probs"}, recs)
	// The threshold is the median of the first model's top scores, so
	// both models answer about half the rows.
	var tops []float32
	for _, row := range want1 {
		if row != nil {
			tops = append(tops, slices.Max(row[0]))
		}
	}
	slices.Sort(tops)
	threshold := float64(tops[len(tops)/2])

	h := &inference.CascadeHandler{ID: "cheap-then-big", Stages: []inference.Stage{
		{Handler: mlpHandler("cheap", m1)},
		{Handler: mlpHandler("big", m2), Escalate: inference.TopScoreBelow(threshold)},
	}}
	c := newCollect()
	metrics, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 32}, seq(recs), c.sink())
	if err != nil {
		t.Fatal(err)
	}
	if c.dups != 0 {
		t.Fatalf("%d rows answered twice", c.dups)
	}
	answered := map[string]int{}
	for row, w1 := range want1 {
		got, ok := c.results[int64(row)]
		if w1 == nil {
			if _, dead := c.dead[int64(row)]; !dead || ok {
				t.Fatalf("row %d has a null feature: want a dead letter only", row)
			}
			continue
		}
		if !ok {
			t.Fatalf("row %d: no result", row)
		}
		wantID, want := "cheap", w1[0]
		if float64(slices.Max(w1[0])) < threshold {
			wantID, want = "big", want2[row][0]
		}
		if got["model_id"] != wantID {
			t.Fatalf("row %d answered by %q, want %q (top score %v, threshold %v)", row, got["model_id"], wantID, slices.Max(w1[0]), threshold)
		}
		answered[wantID]++
		for k, cl := range classes {
			if got["score_"+cl] != str32(want[k]) {
				t.Fatalf("row %d score_%s = %s, want %s (model %s)", row, cl, got["score_"+cl], str32(want[k]), wantID)
			}
		}
	}
	if answered["cheap"] == 0 || answered["big"] == 0 {
		t.Fatalf("answers by model: %v; want both", answered)
	}
	if got := metrics["big"].NumInferences; got != int64(answered["big"]) {
		t.Errorf("num_inferences of big = %d, want %d", got, answered["big"])
	}
}

// scaler is a model that multiplies its [N,4] input "x" by per-feature
// factors into a [N,4] output "scaled".
func scaler(t testing.TB, factors []float32) []byte {
	t.Helper()
	g := onnx.NewGraph("scaler")
	x := g.Input("x", onnx.Float, -1, 4)
	g.NodeTo("", "Mul", []string{x, g.ConstFloats(factors, 4)}, []string{"scaled"})
	g.Output("scaled", onnx.Float, -1, 4)
	data, err := onnx.Marshal(g.Model())
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestCascadeFeedsForward: the second model consumes the first one's
// output columns (the default Pre), and a Post hook renames the label;
// the answers equal a direct ORT call on the first model's output.
func TestCascadeFeedsForward(t *testing.T) {
	orttest.Init(t)
	recs := penguins(t, 64)
	factors := []float32{0.5, 2, 0.25, 0.001}
	scaledCols := []string{"s0", "s1", "s2", "s3"}
	m := mlp(t, 4, 16, 3)
	h := &inference.CascadeHandler{Stages: []inference.Stage{
		{Handler: &inference.ONNXHandler{ID: "scale", Model: scaler(t, factors), Inputs: []inference.Input{{Name: "x", Columns: features}},
			Outputs: []inference.Output{{Name: "scaled", Columns: scaledCols}}}},
		{Handler: &inference.ONNXHandler{ID: "classify", Model: m, Inputs: []inference.Input{{Name: "x", Columns: scaledCols}},
			Classifier: &inference.Classifier{Classes: classes, Scores: "probs"}},
			Post: func(in, out arrow.RecordBatch) (arrow.RecordBatch, error) {
				if in.Schema().FieldIndices("s0") == nil {
					return nil, fmt.Errorf("post sees no s0 in its input")
				}
				fields := slices.Clone(out.Schema().Fields())
				for i := range fields {
					if fields[i].Name == "label" {
						fields[i].Name = "species"
					}
				}
				return array.NewRecordBatch(arrow.NewSchema(fields, nil), out.Columns(), out.NumRows()), nil
			}},
	}}
	c := newCollect()
	if _, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 64}, seq(recs), c.sink()); err != nil {
		t.Fatal(err)
	}
	// The expected answers: scale in Go (float32, as ORT's Mul) and run
	// the classifier directly on that.
	var scaled []arrow.RecordBatch
	for _, rec := range recs {
		scaled = append(scaled, scaleRecord(t, rec, factors))
	}
	want := direct(t, m, []string{"probs"}, scaled)
	var n int
	for row, w := range want {
		got, ok := c.results[int64(row)]
		if w == nil {
			continue
		}
		n++
		if !ok || got["model_id"] != "classify" || got["species"] == "" {
			t.Fatalf("row %d: %v", row, got)
		}
		for k, cl := range classes {
			if got["score_"+cl] != str32(w[0][k]) {
				t.Fatalf("row %d score_%s = %s, want %s", row, cl, got["score_"+cl], str32(w[0][k]))
			}
		}
	}
	if n == 0 || len(c.results) != n {
		t.Fatalf("%d results for %d rows without nulls", len(c.results), n)
	}
}

// scaleRecord returns rec's feature columns multiplied by factors, as
// float64 columns holding the float32 products ORT computes, under the
// same names (nulls kept).
func scaleRecord(t testing.TB, rec arrow.RecordBatch, factors []float32) arrow.RecordBatch {
	t.Helper()
	var (
		fields []arrow.Field
		cols   []arrow.Array
	)
	for j, f := range features {
		col := rec.Column(rec.Schema().FieldIndices(f)[0])
		b := array.NewFloat64Builder(memory.DefaultAllocator)
		for r := range col.Len() {
			if col.IsNull(r) {
				b.AppendNull()
				continue
			}
			v, err := strconv.ParseFloat(col.ValueStr(r), 64)
			if err != nil {
				t.Fatal(err)
			}
			b.Append(float64(float32(v) * factors[j]))
		}
		fields = append(fields, arrow.Field{Name: f, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
		cols = append(cols, b.NewArray())
		b.Release()
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
}

// TestCascadeErrors: a stage that answers with other columns than the
// one it escalates from fails the batch with a message saying so.
func TestCascadeErrors(t *testing.T) {
	orttest.Init(t)
	recs := penguins(t, 64)
	h := &inference.CascadeHandler{Stages: []inference.Stage{
		{Handler: mlpHandler("a", mlp(t, 4, 8, 1))},
		{Handler: &inference.ONNXHandler{ID: "b", Model: mlp(t, 4, 8, 2), Inputs: []inference.Input{{Name: "x", Columns: features}}},
			Escalate: func(prev arrow.RecordBatch) ([]bool, error) { return []bool{true}, nil }},
	}}
	c := newCollect()
	if _, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 64}, seq(recs), c.sink()); err != nil {
		t.Fatal(err)
	}
	if len(c.results) != 0 || len(c.dead) != 344 {
		t.Fatalf("%d results, %d dead letters; want every row dead-lettered", len(c.results), len(c.dead))
	}
	for _, why := range c.dead {
		if why == "" {
			t.Fatal("a dead letter without a reason")
		}
	}
}
