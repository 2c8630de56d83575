package inference_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/components/tabular"
	"github.com/mlsteps/mlsteps/components/tabular/tabulartest"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// The models in testdata/models were trained by PyTorch and scikit-learn
// (scripts/make-model-fixtures.py); expected.json holds what those
// frameworks predicted for the first rows of each dataset. The tests here
// check that the engine, through ONNX Runtime, answers exactly like a
// direct ORT session and within pythonTolerance of the framework.

// pythonTolerance bounds |engine - python| (relative above 1): ORT computes
// in float32, scikit-learn's Ridge in float64, and ORT's kernels sum in
// another order than PyTorch's.
const pythonTolerance = 1e-5

// fixtureSet is expected.json.
type fixtureSet struct {
	ExpectedRows int            `json:"expected_rows"`
	Models       []fixtureModel `json:"models"`
}

type fixtureModel struct {
	Name    string `json:"name"`
	File    string `json:"file"` // under testdata/models
	Dataset string `json:"dataset"`
	// KeyColumn and Key mark a keyed model: its rows are the dataset's
	// rows with that key.
	KeyColumn string       `json:"key_column"`
	Key       string       `json:"key"`
	Features  []string     `json:"features"`
	Classes   []string     `json:"classes"` // empty for regressions
	Outputs   []string     `json:"outputs"` // the model's outputs, in order
	Rows      []fixtureRow `json:"rows"`
}

// fixtureRow is one dataset row as python saw it: its position in the
// file, its feature values and the framework's outputs.
type fixtureRow struct {
	Row     int64                `json:"row"`
	X       []float64            `json:"x"`
	Outputs map[string][]float64 `json:"outputs"`
}

// scores names a classifier's probability output (its last output).
func (fm fixtureModel) scores() string { return fm.Outputs[len(fm.Outputs)-1] }

// label names a classifier's label output, "" when the label is the
// argmax of the scores.
func (fm fixtureModel) label() string {
	if len(fm.Outputs) > 1 {
		return fm.Outputs[0]
	}
	return ""
}

func fixturePath(t testing.TB, rel string) string {
	return filepath.Join(testenv.RepoRoot(t), "testdata", "models", rel)
}

func readFixture(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(fixturePath(t, rel))
	if err != nil {
		t.Fatalf("%v (made by scripts/make-model-fixtures.py)", err)
	}
	return data
}

func loadFixtureSet(t testing.TB) fixtureSet {
	t.Helper()
	var set fixtureSet
	if err := json.Unmarshal(readFixture(t, "expected.json"), &set); err != nil {
		t.Fatalf("expected.json: %v", err)
	}
	return set
}

// fixtureHandler reads the model's file and metadata and returns a handler
// for it, after checking the metadata agrees with expected.json.
func fixtureHandler(t testing.TB, fm fixtureModel) (*inference.ONNXHandler, []byte) {
	t.Helper()
	model := readFixture(t, fm.File)
	pb, err := onnx.Unmarshal(model)
	if err != nil {
		t.Fatalf("%s: %v", fm.File, err)
	}
	meta := map[string][]string{}
	for _, p := range pb.GetMetadataProps() {
		var v []string
		if err := json.Unmarshal([]byte(p.GetValue()), &v); err != nil {
			t.Fatalf("%s metadata %s: %v", fm.File, p.GetKey(), err)
		}
		meta[p.GetKey()] = v
	}
	if !slices.Equal(meta["mlsteps.features"], fm.Features) || !slices.Equal(meta["mlsteps.classes"], fm.Classes) {
		t.Fatalf("%s metadata %v disagrees with expected.json (features %q, classes %q)", fm.File, meta, fm.Features, fm.Classes)
	}
	h := &inference.ONNXHandler{ID: fm.Name, Model: model,
		Inputs:  []inference.Input{{Name: "x", Columns: meta["mlsteps.features"]}},
		Session: ort.Options{IntraOpThreads: 1, GraphOptimization: ort.OptAll}}
	if classes := meta["mlsteps.classes"]; classes != nil {
		h.Classifier = &inference.Classifier{Classes: classes, Scores: fm.scores(), Label: fm.label()}
	}
	return h, model
}

// fixtureTable is a dataset's rows as the tests see them.
type fixtureTable struct {
	x    [][]float64 // per row its features; nil when one is null
	null []string    // per row the first null feature, "" when none
	keys []string    // per row the key column's value, when asked for
}

func (tb fixtureTable) nulls() int {
	n := 0
	for _, x := range tb.x {
		if x == nil {
			n++
		}
	}
	return n
}

// tableOf reads features (and key, when not empty) out of recs.
func tableOf(t testing.TB, recs []arrow.RecordBatch, features []string, key string) fixtureTable {
	t.Helper()
	var tb fixtureTable
	for _, rec := range recs {
		for r := range int(rec.NumRows()) {
			x := make([]float64, len(features))
			null := ""
			for j, f := range features {
				v, ok := numberAt(t, rec, f, r)
				if !ok {
					null = f
					x = nil
					break
				}
				x[j] = v
			}
			tb.x = append(tb.x, x)
			tb.null = append(tb.null, null)
			if key != "" {
				col := rec.Column(fieldIndex(t, rec, key))
				tb.keys = append(tb.keys, col.ValueStr(r))
			}
		}
	}
	return tb
}

func fieldIndex(t testing.TB, rec arrow.RecordBatch, name string) int {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		t.Fatalf("column %q not in %s", name, rec.Schema())
	}
	return idx[0]
}

func numberAt(t testing.TB, rec arrow.RecordBatch, name string, r int) (float64, bool) {
	t.Helper()
	col := rec.Column(fieldIndex(t, rec, name))
	if col.IsNull(r) {
		return 0, false
	}
	switch c := col.(type) {
	case *array.Float64:
		return c.Value(r), true
	case *array.Float32:
		return float64(c.Value(r)), true
	case *array.Int64:
		return float64(c.Value(r)), true
	default:
		t.Fatalf("column %q is %s, not a number", name, col.DataType())
		return 0, false
	}
}

// directRows runs model on each row of x without a null, one ORT call per
// row (so no batching is shared with the engine), and returns per row each
// output's values (nil for null rows).
func directRows(t testing.TB, model []byte, outputs []string, x [][]float64) [][][]float32 {
	t.Helper()
	sess, err := ort.NewSession(model, []string{"x"}, outputs)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out := make([][][]float32, len(x))
	for row, xs := range x {
		if xs == nil {
			continue
		}
		in := make([]float32, len(xs))
		for j, v := range xs {
			in[j] = float32(v)
		}
		res, err := sess.Run(1, []ort.Column{{Name: "x", Width: int64(len(in)), Floats: in}})
		if err != nil {
			t.Fatalf("row %d: %v", row, err)
		}
		vals := make([][]float32, len(res))
		for i, o := range res {
			vals[i] = o.Data
		}
		out[row] = vals
	}
	return out
}

// fixtureOut is one row's inference.
type fixtureOut struct {
	modelID string             // the "model_id" column when keyed, else the result's
	label   string             // the classifier's "label" column
	values  map[string]float32 // float columns by name
}

// fixtureRun gathers a run's output by input-stream row.
type fixtureRun struct {
	mu   sync.Mutex
	out  map[int64]fixtureOut
	dead map[int64]string
	dups int // rows answered more than once
}

func (fr *fixtureRun) sink() inference.Sink {
	fr.out, fr.dead = map[int64]fixtureOut{}, map[int64]string{}
	return inference.Sink{
		Result: func(r inference.Result) error {
			fr.mu.Lock()
			defer fr.mu.Unlock()
			inf := r.Inference
			for i, row := range r.Rows {
				o := fixtureOut{modelID: r.ModelID, values: map[string]float32{}}
				for j, col := range inf.Columns() {
					name := inf.ColumnName(j)
					switch c := col.(type) {
					case *array.Float32:
						o.values[name] = c.Value(i)
					case *array.String:
						if name == "model_id" {
							o.modelID = c.Value(i)
						} else if name == "label" {
							o.label = c.Value(i)
						}
					}
				}
				if _, dup := fr.out[row]; dup {
					fr.dups++
				}
				if _, dup := fr.dead[row]; dup {
					fr.dups++
				}
				fr.out[row] = o
			}
			return nil
		},
		DeadLetter: func(d inference.DeadLetter) error {
			fr.mu.Lock()
			defer fr.mu.Unlock()
			if int(d.Input.NumRows()) != len(d.Rows) {
				return fmt.Errorf("dead letter with %d input rows for %d positions", d.Input.NumRows(), len(d.Rows))
			}
			for _, row := range d.Rows {
				_, dupOut := fr.out[row]
				_, dupDead := fr.dead[row]
				if dupOut || dupDead {
					fr.dups++
				}
				fr.dead[row] = d.Reason
			}
			return nil
		},
	}
}

// runFixture runs h over recs with a fresh engine (batches of 32, two
// workers) and returns its output.
func runFixture(t *testing.T, h inference.ModelHandler, recs []arrow.RecordBatch) (*fixtureRun, inference.Snapshot) {
	t.Helper()
	fr := &fixtureRun{}
	snap, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 32, Workers: 2}, seq(recs), fr.sink())
	if err != nil {
		t.Fatal(err)
	}
	return fr, snap
}

// checkAccounting asserts every row ends once: rows without a null feature
// as a result, the others as a dead letter naming the null column.
func checkAccounting(t *testing.T, fr *fixtureRun, tb fixtureTable) {
	t.Helper()
	if fr.dups != 0 {
		t.Errorf("%d rows answered more than once", fr.dups)
	}
	if len(fr.out)+len(fr.dead) != len(tb.x) {
		t.Fatalf("%d results + %d dead letters for %d rows in", len(fr.out), len(fr.dead), len(tb.x))
	}
	if len(fr.dead) != tb.nulls() {
		t.Errorf("%d dead letters, want the %d rows with a null feature", len(fr.dead), tb.nulls())
	}
	for row, col := range tb.null {
		if col == "" {
			continue
		}
		want := fmt.Sprintf("column %q is null", col)
		if reason, ok := fr.dead[int64(row)]; !ok || !strings.Contains(reason, want) {
			t.Errorf("row %d (null %q): dead letter %q, want one saying %s", row, col, reason, want)
		}
	}
}

// checkDirect asserts the engine's output for every predicted row equals
// direct's exactly (float32 equality), label included.
func checkDirect(t *testing.T, fm fixtureModel, row int, got fixtureOut, direct [][]float32) {
	t.Helper()
	if fm.Classes == nil {
		out := direct[0]
		if g := got.values[fm.Outputs[0]]; len(out) != 1 || g != out[0] {
			t.Errorf("row %d %s: engine %v, direct ORT %v", row, fm.Outputs[0], g, out)
		}
		return
	}
	scores := direct[len(direct)-1]
	best := 0
	if fm.label() != "" {
		best = int(direct[0][0])
	} else {
		for j, v := range scores {
			if v > scores[best] {
				best = j
			}
		}
	}
	if got.label != fm.Classes[best] {
		t.Errorf("row %d: engine label %q, direct ORT %q", row, got.label, fm.Classes[best])
	}
	for j, cl := range fm.Classes {
		if g := got.values["score_"+cl]; g != scores[j] {
			t.Errorf("row %d score_%s: engine %v, direct ORT %v", row, cl, g, scores[j])
		}
	}
}

// checkPython asserts the engine's output for expected.json's rows is
// within pythonTolerance of the framework's, and that the Go reader saw
// the same feature values as python.
func checkPython(t *testing.T, fm fixtureModel, fr *fixtureRun, tb fixtureTable, want int) {
	t.Helper()
	if len(fm.Rows) != want {
		t.Fatalf("expected.json has %d rows for %s, want %d", len(fm.Rows), fm.Name, want)
	}
	var worst float64
	for _, pr := range fm.Rows {
		if pr.Row < 0 || int(pr.Row) >= len(tb.x) || !slices.Equal(tb.x[pr.Row], pr.X) {
			t.Fatalf("expected.json row %d has features %v; the dataset has %v", pr.Row, pr.X, tb.x[pr.Row])
		}
		got, ok := fr.out[pr.Row]
		if !ok {
			t.Errorf("row %d: no result (dead letter %q)", pr.Row, fr.dead[pr.Row])
			continue
		}
		if fm.Classes != nil {
			probs := pr.Outputs[fm.scores()]
			label := argmax(probs)
			if fm.label() != "" {
				label = int(pr.Outputs[fm.label()][0])
			}
			if got.label != fm.Classes[label] {
				t.Errorf("row %d: engine label %q, python %q", pr.Row, got.label, fm.Classes[label])
			}
			for j, cl := range fm.Classes {
				worst = max(worst, math.Abs(float64(got.values["score_"+cl])-probs[j]))
			}
			continue
		}
		w := pr.Outputs[fm.Outputs[0]][0]
		g := float64(got.values[fm.Outputs[0]])
		if d := math.Abs(g-w) / max(1, math.Abs(w)); d > pythonTolerance {
			t.Errorf("row %d %s: engine %v, python %v", pr.Row, fm.Outputs[0], g, w)
		}
		worst = max(worst, math.Abs(g-w)/max(1, math.Abs(w)))
	}
	if worst > pythonTolerance {
		t.Errorf("%s: engine and python differ by up to %g, want <= %g", fm.Name, worst, pythonTolerance)
	}
	t.Logf("%s: %d rows, engine vs python: max difference %.3g", fm.Name, len(fm.Rows), worst)
}

func argmax(v []float64) int {
	best := 0
	for j, x := range v {
		if x > v[best] {
			best = j
		}
	}
	return best
}

// TestFixtureModels runs each trained model over its whole dataset through
// the engine: every predicted row equals a direct ORT call, rows with a
// null feature are dead letters naming the column, none lost or doubled,
// and the first rows match what PyTorch or scikit-learn predicted.
func TestFixtureModels(t *testing.T) {
	orttest.Init(t)
	set := loadFixtureSet(t)
	ran := 0
	for _, fm := range set.Models {
		if fm.KeyColumn != "" {
			continue // TestFixtureKeyedByIsland
		}
		ran++
		t.Run(fm.Name, func(t *testing.T) {
			noLeaks(t)
			h, model := fixtureHandler(t, fm)
			_, recs := tabulartest.Load(t, fm.Dataset, 50)
			tb := tableOf(t, recs, fm.Features, "")
			fr, snap := runFixture(t, h, recs)
			checkAccounting(t, fr, tb)
			direct := directRows(t, model, fm.Outputs, tb.x)
			for row, d := range direct {
				if d != nil {
					checkDirect(t, fm, row, fr.out[int64(row)], d)
				}
			}
			checkPython(t, fm, fr, tb, set.ExpectedRows)
			if m := snap[fm.Name]; m.NumInferences != int64(len(fr.out)) || m.FailedBatchesCounter != 0 {
				t.Errorf("metrics: %d inferences, %d failed batches; want %d, 0", m.NumInferences, m.FailedBatchesCounter, len(fr.out))
			}
			t.Logf("%s over %s: %d rows in, %d results, %d dead letters", fm.Name, fm.Dataset, len(tb.x), len(fr.out), len(fr.dead))
		})
	}
	if ran != 4 {
		t.Errorf("expected.json lists %d unkeyed models, want 4", ran)
	}
}

// TestFixtureFlightsParquet feeds the flights model from the benchmark's
// Parquet file, whose distance column is int64 as `mlsteps import` keeps
// it, and checks the engine against direct ORT calls.
func TestFixtureFlightsParquet(t *testing.T) {
	orttest.Init(t)
	noLeaks(t)
	var fm fixtureModel
	for _, m := range loadFixtureSet(t).Models {
		if m.Name == "flights-delay" {
			fm = m
		}
	}
	if fm.Name == "" {
		t.Fatal("expected.json has no flights-delay model")
	}
	h, model := fixtureHandler(t, fm)
	f, err := os.Open(testenv.VegaData(t, "flights-3m.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := tabular.NewReader(context.Background(), f, "flights-3m.parquet", tabular.FormatParquet, tabular.Options{BatchSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs []arrow.RecordBatch
	for len(recs) < 5 {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		defer rec.Release()
		recs = append(recs, rec)
	}
	for _, f := range fm.Features {
		if typ := recs[0].Column(fieldIndex(t, recs[0], f)).DataType(); typ.ID() != arrow.INT64 {
			t.Fatalf("flights-3m.parquet column %q is %s, want int64", f, typ)
		}
	}
	tb := tableOf(t, recs, fm.Features, "")
	fr, _ := runFixture(t, h, recs)
	checkAccounting(t, fr, tb)
	for row, d := range directRows(t, model, fm.Outputs, tb.x) {
		if d != nil {
			checkDirect(t, fm, row, fr.out[int64(row)], d)
		}
	}
	t.Logf("flights-delay over flights-3m.parquet: %d rows, %d results", len(tb.x), len(fr.out))
}

// fixtureIndex is penguins-by-island/index.json.
type fixtureIndex struct {
	KeyColumn string            `json:"key_column"`
	Models    map[string]string `json:"models"` // key -> file in the index's folder
}

// TestFixtureKeyedByIsland serves penguins with one model per island
// through a KeyedHandler holding at most two models: every row is answered
// by its island's model, exactly as a direct ORT call on that model, and
// within pythonTolerance of PyTorch for the rows expected.json lists.
func TestFixtureKeyedByIsland(t *testing.T) {
	orttest.Init(t)
	noLeaks(t)
	var idx fixtureIndex
	if err := json.Unmarshal(readFixture(t, "penguins-by-island/index.json"), &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	byName := map[string]fixtureModel{}
	for _, fm := range loadFixtureSet(t).Models {
		byName[fm.Name] = fm
	}
	keys := make([]string, 0, len(idx.Models))
	for k := range idx.Models {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	kh := &inference.KeyedHandler{ID: "penguins-by-island", KeyColumn: idx.KeyColumn, MaxModels: 2}
	models := map[string]fixtureModel{}
	direct := map[string][]byte{}
	for _, k := range keys {
		fm, ok := byName["penguins-by-island/"+k]
		if !ok || fm.File != "penguins-by-island/"+idx.Models[k] || fm.KeyColumn != idx.KeyColumn || fm.Key != k {
			t.Fatalf("expected.json does not describe key %s of index.json (%+v)", k, fm)
		}
		h, model := fixtureHandler(t, fm)
		kh.Models = append(kh.Models, inference.KeyModel{Keys: []string{k}, Handler: h})
		models[k], direct[k] = fm, model
	}
	if len(keys) != 3 {
		t.Fatalf("index.json has keys %v, want the three islands", keys)
	}
	_, recs := tabulartest.Load(t, "penguins.json", 16)
	tb := tableOf(t, recs, models[keys[0]].Features, idx.KeyColumn)
	fr, _ := runFixture(t, kh, recs)
	checkAccounting(t, fr, tb)
	for _, k := range keys {
		fm := models[k]
		x := make([][]float64, len(tb.x))
		for row, key := range tb.keys {
			if key == k {
				x[row] = tb.x[row]
			}
		}
		for row, d := range directRows(t, direct[k], fm.Outputs, x) {
			if d == nil {
				continue
			}
			got := fr.out[int64(row)]
			if got.modelID != fm.Name {
				t.Errorf("row %d (%s): answered by %q, want %q", row, k, got.modelID, fm.Name)
			}
			checkDirect(t, fm, row, got, d)
		}
		for _, pr := range fm.Rows {
			if tb.keys[pr.Row] != k {
				t.Fatalf("expected.json row %d of %s has key %q", pr.Row, fm.Name, tb.keys[pr.Row])
			}
		}
		checkPython(t, fm, fr, tb, loadFixtureSet(t).ExpectedRows)
	}
	if kh.PeakLoaded() > 2 {
		t.Errorf("peak of %d models loaded, want at most 2", kh.PeakLoaded())
	}
	// The islands interleave in penguins.json, so a cap of two forces
	// evictions and reloads.
	if kh.Loads() <= len(keys) {
		t.Errorf("%d model loads for %d models under a cap of 2: nothing was evicted", kh.Loads(), len(keys))
	}
	t.Logf("keyed: %d rows in, %d results, %d dead letters, %d loads, peak %d loaded", len(tb.x), len(fr.out), len(fr.dead), kh.Loads(), kh.PeakLoaded())
}
