package inference_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
)

// direct runs model on every row of recs without nulls in the features,
// one direct ORT call per row (batch 1, so no batching is shared with the
// engine), and returns each output's values per input-stream row (nil
// for rows with a null).
func direct(t testing.TB, model []byte, outputs []string, recs []arrow.RecordBatch) [][][]float32 {
	t.Helper()
	sess, err := ort.NewSession(model, []string{"x"}, outputs)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var out [][][]float32
	for _, rec := range recs {
		for r := range int(rec.NumRows()) {
			x := make([]float32, len(features))
			ok := true
			for j, f := range features {
				col := rec.Column(rec.Schema().FieldIndices(f)[0])
				if col.IsNull(r) {
					ok = false
					break
				}
				switch c := col.(type) {
				case *array.Float64:
					x[j] = float32(c.Value(r))
				case *array.Int64:
					x[j] = float32(c.Value(r))
				default:
					t.Fatalf("column %s is %s", f, col.DataType())
				}
			}
			if !ok {
				out = append(out, nil)
				continue
			}
			res, err := sess.Run(1, []ort.Column{{Name: "x", Width: int64(len(x)), Floats: x}})
			if err != nil {
				t.Fatal(err)
			}
			row := make([][]float32, len(res))
			for i, o := range res {
				row[i] = o.Data
			}
			out = append(out, row)
		}
	}
	return out
}

// collect gathers a run's output by input-stream row.
type collect struct {
	mu       sync.Mutex
	results  map[int64]map[string]string // row -> column -> value
	dead     map[int64]string            // row -> reason
	dups     int
	resultsN int
}

func newCollect() *collect {
	return &collect{results: map[int64]map[string]string{}, dead: map[int64]string{}}
}

func (c *collect) sink() inference.Sink {
	return inference.Sink{
		Result: func(r inference.Result) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.resultsN++
			for i, row := range r.Rows {
				if _, dup := c.results[row]; dup {
					c.dups++
				}
				m := map[string]string{"model_id": r.ModelID}
				for _, rec := range []arrow.RecordBatch{r.Example, r.Inference} {
					for j, col := range rec.Columns() {
						m[rec.ColumnName(j)] = col.ValueStr(i)
					}
				}
				c.results[row] = m
			}
			return nil
		},
		DeadLetter: func(d inference.DeadLetter) error {
			c.mu.Lock()
			defer c.mu.Unlock()
			if int(d.Input.NumRows()) != len(d.Rows) {
				c.dups++
			}
			for _, row := range d.Rows {
				if _, dup := c.dead[row]; dup {
					c.dups++
				}
				c.dead[row] = d.Reason
			}
			return nil
		},
	}
}

func str32(v float32) string {
	a := float32Arr(v)
	defer a.Release()
	return a.ValueStr(0)
}

func float32Arr(v float32) arrow.Array {
	b := array.NewFloat32Builder(memory.DefaultAllocator)
	defer b.Release()
	b.Append(v)
	return b.NewArray()
}

// TestONNXMatchesDirect runs an MLP and a tree ensemble over penguins (with
// its null features) through the engine and checks every row: predicted
// rows equal a direct ORT call, rows with a null are dead-lettered with
// the column named, none lost, none twice.
func TestONNXMatchesDirect(t *testing.T) {
	orttest.Init(t)
	recs := penguins(t, 50)
	for _, tc := range []struct {
		name    string
		model   []byte
		label   string
		outputs []string
	}{
		{"mlp", mlp(t, 4, 16, 1), "", []string{"probs"}},
		{"trees", trees(t, 5, 2), "label", []string{"label", "probs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			want := direct(t, tc.model, tc.outputs, recs)
			h := &inference.ONNXHandler{ID: tc.name + "-v1", Model: tc.model,
				Inputs:     []inference.Input{{Name: "x", Columns: features}},
				Classifier: &inference.Classifier{Classes: classes, Scores: "probs", Label: tc.label},
				Session:    ort.Options{IntraOpThreads: 1, GraphOptimization: ort.OptAll}}
			c := newCollect()
			snap, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 32, Workers: 2, Passthrough: []string{"Species"}}, seq(recs), c.sink())
			if err != nil {
				t.Fatal(err)
			}
			if c.dups != 0 {
				t.Errorf("%d rows answered twice", c.dups)
			}
			if len(c.results)+len(c.dead) != len(want) {
				t.Fatalf("%d predicted + %d dead of %d rows", len(c.results), len(c.dead), len(want))
			}
			scoreIdx := len(tc.outputs) - 1
			for row, w := range want {
				got, dead := c.results[int64(row)], c.dead[int64(row)]
				if w == nil {
					if !strings.Contains(dead, "is null") {
						t.Errorf("row %d has a null feature: got %v, dead %q", row, got, dead)
					}
					continue
				}
				if got == nil {
					t.Fatalf("row %d not predicted (dead: %q)", row, dead)
				}
				scores := w[scoreIdx]
				best := 0
				if tc.label != "" {
					best = int(w[0][0])
				} else {
					for j, v := range scores {
						if v > scores[best] {
							best = j
						}
					}
				}
				if got["label"] != classes[best] || got["model_id"] != tc.name+"-v1" || got["Species"] == "" {
					t.Errorf("row %d: got %v, want label %s", row, got, classes[best])
				}
				for j, cl := range classes {
					if g := got["score_"+cl]; g != str32(scores[j]) {
						t.Errorf("row %d score %s: got %s, want %s", row, cl, g, str32(scores[j]))
					}
				}
			}
			m := snap[tc.name+"-v1"]
			if m.NumInferences != int64(len(c.results)) || m.ModelByteSize != int64(len(tc.model)) ||
				m.LoadModelLatencyMilliSecs.Count != 1 || m.FailedBatchesCounter != 0 ||
				m.InferenceRequestBatchSize.Max > 32 || m.InferenceBatchLatencyMicroSecs.Count != m.InferenceRequestBatchSize.Count {
				t.Errorf("metrics %+v", m)
			}
			t.Logf("%s: %d predicted, %d dead letters, metrics %v", tc.name, len(c.results), len(c.dead), m.Values())
		})
	}
}

// TestONNXOutputs checks the default output mapping: every declared
// output as columns named after it, int64 labels kept as integers.
func TestONNXOutputs(t *testing.T) {
	orttest.Init(t)
	recs := penguins(t, 400)
	h := &inference.ONNXHandler{Model: trees(t, 3, 5), Inputs: []inference.Input{{Name: "x", Columns: features}}}
	var names []string
	_, err := runOnce(context.Background(), h, inference.Options{}, seq(recs), inference.Sink{
		Result: func(r inference.Result) error {
			names = names[:0]
			for _, f := range r.Inference.Schema().Fields() {
				names = append(names, f.Name+":"+f.Type.String())
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"label:int64", "probs_0:float32", "probs_1:float32", "probs_2:float32"}
	if !slices.Equal(names, want) {
		t.Errorf("columns %v, want %v", names, want)
	}
}

func TestONNXLoadErrors(t *testing.T) {
	orttest.Init(t)
	model := mlp(t, 4, 8, 3)
	for _, tc := range []struct {
		name string
		h    inference.ONNXHandler
		want string
	}{
		{"no bytes", inference.ONNXHandler{}, "no model bytes"},
		{"garbage", inference.ONNXHandler{Model: []byte("nope")}, "decode onnx"},
		{"wide input unnamed", inference.ONNXHandler{Model: model}, "name its columns"},
		{"unknown input", inference.ONNXHandler{Model: model, Inputs: []inference.Input{{Name: "y"}}}, `no input "y"`},
		{"unknown output", inference.ONNXHandler{Model: model, Inputs: []inference.Input{{Name: "x", Columns: features}},
			Outputs: []inference.Output{{Name: "nope"}}}, `no output "nope"`},
		{"classes mismatch", inference.ONNXHandler{Model: model, Inputs: []inference.Input{{Name: "x", Columns: features}},
			Classifier: &inference.Classifier{Classes: []string{"a", "b"}, Scores: "probs"}}, "3 scores per row for 2 classes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.h.Load(context.Background(), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestONNXTensorPaths runs models down each way the handler feeds ORT:
// double tensors in reused buffers, and string inputs in tensors made per
// batch, with one and two workers, batches spanning records and a short
// last batch; every row's answer is checked, and a null is a dead letter.
func TestONNXTensorPaths(t *testing.T) {
	orttest.Init(t)
	twice := onnx.NewGraph("twice")
	twice.NodeTo("", "Mul", []string{twice.Input("x", onnx.Double, -1, 1), twice.ConstDouble(2)}, []string{"y"})
	twice.Output("y", onnx.Double, -1, 1)
	code := onnx.NewGraph("code")
	code.NodeTo(onnx.DomainML, "LabelEncoder", []string{code.Input("s", onnx.String, -1, 1)}, []string{"y"},
		onnx.AttrStrings("keys_strings", []string{"a", "b"}), onnx.AttrInts("values_int64s", []int64{10, 20}), onnx.AttrInt("default_int64", -1))
	code.Output("y", onnx.Int64, -1, 1)
	const n = 95
	xb, sb := array.NewFloat64Builder(memory.DefaultAllocator), array.NewStringBuilder(memory.DefaultAllocator)
	for i := range n {
		xb.Append(float64(i) / 4)
		if i == 40 {
			sb.AppendNull()
		} else {
			sb.Append([]string{"a", "b", "zz"}[i%3])
		}
	}
	xs, ss := xb.NewArray(), sb.NewArray()
	defer xs.Release()
	defer ss.Release()
	rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, nil), []arrow.Array{xs, ss}, n)
	defer rec.Release()
	var recs []arrow.RecordBatch // records of 7 rows
	for at := int64(0); at < n; at += 7 {
		recs = append(recs, rec.NewSlice(at, min(at+7, n)))
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for _, tc := range []struct {
		name  string
		graph *onnx.Graph
		want  func(row int) string // "" for a dead letter
	}{
		{"double", twice, func(r int) string { return str32(float32(r) / 2) }},
		{"string", code, func(r int) string {
			if r == 40 {
				return ""
			}
			return []string{"10", "20", "-1"}[r%3]
		}},
	} {
		model, err := onnx.Marshal(tc.graph.Model())
		if err != nil {
			t.Fatal(err)
		}
		for _, workers := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/workers=%d", tc.name, workers), func(t *testing.T) {
				noLeaks(t)
				c := newCollect()
				h := &inference.ONNXHandler{Model: model}
				if _, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 10, Workers: workers}, seq(recs), c.sink()); err != nil {
					t.Fatal(err)
				}
				if c.dups != 0 || len(c.results)+len(c.dead) != n {
					t.Fatalf("%d predicted + %d dead of %d, %d twice", len(c.results), len(c.dead), n, c.dups)
				}
				for r := range n {
					got, want := c.results[int64(r)]["y"], tc.want(r)
					if want == "" && !strings.Contains(c.dead[int64(r)], "is null") || want != "" && got != want {
						t.Errorf("row %d: got %q (dead %q), want %q", r, got, c.dead[int64(r)], want)
					}
				}
			})
		}
	}
}

// TestONNXMisdeclaredOutput runs a model that declares its output [N] but
// computes [N,1], as some exporters write them: the handler's reused
// tensors, shaped as declared, do not fit, and it falls back to tensors
// shaped by ORT, answering every batch.
func TestONNXMisdeclaredOutput(t *testing.T) {
	orttest.Init(t)
	g := onnx.NewGraph("misdeclared")
	g.NodeTo("", "Mul", []string{g.Input("x", onnx.Double, -1, 1), g.ConstDouble(3)}, []string{"y"})
	g.Output("y", onnx.Double, -1)
	model, err := onnx.Marshal(g.Model())
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]arrow.RecordBatch, 5)
	for i := range recs {
		b := array.NewFloat64Builder(memory.DefaultAllocator)
		b.AppendValues([]float64{float64(2 * i), float64(2*i + 1)}, nil)
		x := b.NewArray()
		recs[i] = array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}}, nil), []arrow.Array{x}, 2)
		x.Release()
		b.Release()
	}
	c := newCollect()
	if _, err := runOnce(context.Background(), &inference.ONNXHandler{Model: model}, inference.Options{MaxBatch: 2}, seq(recs), c.sink()); err != nil {
		t.Fatal(err)
	}
	for row := range int64(10) {
		if got := c.results[row]["y"]; got != str32(float32(3*row)) {
			t.Errorf("row %d: got %q (dead %q)", row, got, c.dead[row])
		}
	}
}
