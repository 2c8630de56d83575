package infer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/infer"
	"github.com/mlsteps/mlsteps/steps/step"
	xfstep "github.com/mlsteps/mlsteps/steps/transform"
)

var features = []string{"Beak Length (mm)", "Beak Depth (mm)", "Flipper Length (mm)", "Body Mass (g)"}

var classes = []string{"Adelie", "Chinstrap", "Gentoo"}

// env is one test's store and root folder.
type env struct {
	t     *testing.T
	ctx   context.Context
	store *artifacts.Store
	root  artifacts.URI
}

func newEnv(t *testing.T) *env {
	orttest.Init(t)
	store := artifacts.NewStore()
	t.Cleanup(func() { store.Close() })
	return &env{t: t, ctx: context.Background(), store: store, root: artifacts.MustParseURI(t.TempDir())}
}

// examples imports a vega dataset, split 80/20, and returns its URI.
func (e *env) examples(data string) string {
	e.t.Helper()
	out := e.root.Join("data-" + strings.TrimSuffix(data, filepath.Ext(data)))
	inv := step.Invocation{OutRoot: out.String(), Params: map[string]any{"source": testenv.VegaData(e.t, data), "split": "train=0.8,eval=0.2", "seed": int64(7)}}
	if err := step.Execute(e.ctx, importer.Spec(), inv, step.Env{Store: e.store}); err != nil {
		e.t.Fatal(err)
	}
	return out.Join("examples").String()
}

// model imports a fixture model from testdata/models.
func (e *env) model(rel string, params map[string]any) string {
	e.t.Helper()
	out := e.root.Join("model-" + strings.NewReplacer("/", "-", ".onnx", "").Replace(rel))
	if params == nil {
		params = map[string]any{}
	}
	params["source"] = filepath.Join(testenv.RepoRoot(e.t), "testdata", "models", rel)
	if err := step.Execute(e.ctx, importer.ModelSpec(), step.Invocation{OutRoot: out.String(), Params: params}, step.Env{Store: e.store}); err != nil {
		e.t.Fatal(err)
	}
	return out.Join("model").String()
}

// infer runs the step into a fresh folder and returns it.
func (e *env) infer(name string, inputs map[string]string, params map[string]any) (artifacts.URI, error) {
	out := e.root.Join(name)
	if params == nil {
		params = map[string]any{}
	}
	err := step.Execute(e.ctx, infer.Spec(), step.Invocation{Inputs: inputs, OutRoot: out.String(), Params: params}, step.Env{Store: e.store})
	return out, err
}

// row is one output row, every column as text.
type row map[string]string

// rows reads every split of a tabular artifact, in file order.
func (e *env) rows(u artifacts.URI, typ artifacts.Type) map[string][]row {
	e.t.Helper()
	a, err := e.store.Open(e.ctx, u, typ)
	if err != nil {
		e.t.Fatal(err)
	}
	splits, err := a.Splits()
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]row{}
	for _, s := range splits {
		out[s.Name] = []row{}
		for rec, err := range a.Records(e.ctx, s.Name, artifacts.ReadOptions{}) {
			if err != nil {
				e.t.Fatal(err)
			}
			out[s.Name] = append(out[s.Name], recordRows(rec)...)
		}
	}
	return out
}

func recordRows(rec arrow.RecordBatch) []row {
	out := make([]row, rec.NumRows())
	for i := range out {
		out[i] = row{}
		for j, col := range rec.Columns() {
			if col.IsNull(i) {
				out[i][rec.ColumnName(j)] = "<null>"
			} else {
				out[i][rec.ColumnName(j)] = col.ValueStr(i)
			}
		}
	}
	return out
}

// session runs a fixture model directly in ONNX Runtime, one row a call.
type session struct {
	t    *testing.T
	s    *ort.Session
	outs []string
}

func (e *env) session(rel string, outputs ...string) *session {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(e.t), "testdata", "models", rel))
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := ort.NewSession(data, []string{"x"}, outputs)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return &session{t: e.t, s: s, outs: outputs}
}

// scores returns the last output's values for a row's features.
func (s *session) scores(r row) []float32 {
	s.t.Helper()
	x := make([]float32, len(features))
	for j, f := range features {
		v, err := strconv.ParseFloat(r[f], 64)
		if err != nil {
			s.t.Fatalf("row %v: feature %s: %v", r, f, err)
		}
		x[j] = float32(v)
	}
	res, err := s.s.Run(1, []ort.Column{{Name: "x", Width: int64(len(x)), Floats: x}})
	if err != nil {
		s.t.Fatal(err)
	}
	return res[len(res)-1].Data
}

func checkScores(t *testing.T, where string, r row, want []float32) {
	t.Helper()
	for k, cl := range classes {
		got, err := strconv.ParseFloat(r["score_"+cl], 32)
		if err != nil || float32(got) != want[k] {
			t.Fatalf("%s: score_%s = %s, want %v (direct ORT)", where, cl, r["score_"+cl], want[k])
		}
	}
	top := 0
	for k := range want {
		if want[k] > want[top] {
			top = k
		}
	}
	if r["label"] != classes[top] {
		t.Fatalf("%s: label %s, want %s", where, r["label"], classes[top])
	}
}

func hasNull(r row) bool {
	for _, f := range features {
		if r[f] == "<null>" {
			return true
		}
	}
	return false
}

// TestInferPenguins runs the PyTorch-trained MLP over penguins with two
// workers and small batches: every row is in the predictions (in input
// order, passthrough columns intact, scores equal to a direct ORT call)
// or in the dead letters (the rows with a null, the column named, the row
// kept as JSON); metrics are recorded; a run with one worker writes the
// same bytes.
func TestInferPenguins(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	m := e.model("penguins-mlp.onnx", nil)
	out, err := e.infer("pred", map[string]string{"examples": examples, "model": m}, map[string]any{"workers": int64(2), "batch-max": int64(16)})
	if err != nil {
		t.Fatal(err)
	}
	in := e.rows(artifacts.MustParseURI(examples), artifacts.TypeDataset)
	preds := e.rows(out.Join("predictions"), artifacts.TypePredictions)
	dead := e.rows(out.Join("dead_letters"), artifacts.TypeDeadLetters)
	direct := e.session("penguins-mlp.onnx", "probs")
	var predicted, failed int
	for split, rows := range in {
		p, d := preds[split], dead[split]
		for i, r := range rows {
			if hasNull(r) {
				if len(d) == 0 {
					t.Fatalf("%s row %d has a null but no dead letter", split, i)
				}
				dl := d[0]
				d = d[1:]
				if dl["row"] != strconv.Itoa(i) || dl["split"] != split || dl["step"] != "infer" || !strings.Contains(dl["reason"], "null") {
					t.Fatalf("dead letter %v for %s row %d", dl, split, i)
				}
				var input map[string]any
				if err := json.Unmarshal([]byte(dl["input"]), &input); err != nil || input["Island"] != r["Island"] {
					t.Fatalf("dead letter input %s does not hold row %v", dl["input"], r)
				}
				failed++
				continue
			}
			if len(p) == 0 {
				t.Fatalf("%s row %d: no prediction", split, i)
			}
			got := p[0]
			p = p[1:]
			for col, v := range r {
				if got[col] != v {
					t.Fatalf("%s row %d: passthrough %s = %q, want %q (out of order?)", split, i, col, got[col], v)
				}
			}
			if !strings.HasPrefix(got["model_id"], "penguins-mlp@") {
				t.Fatalf("model_id %q", got["model_id"])
			}
			checkScores(t, fmt.Sprintf("%s row %d", split, i), got, direct.scores(r))
			predicted++
		}
		if len(p) != 0 || len(d) != 0 {
			t.Fatalf("%s: %d predictions and %d dead letters left over", split, len(p), len(d))
		}
	}
	if failed != 2 || predicted != 342 {
		t.Fatalf("%d predicted, %d dead letters; want 342 and 2", predicted, failed)
	}
	a, err := e.store.Open(e.ctx, out.Join("predictions"), artifacts.TypePredictions)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := artifacts.Property[map[string]map[string]float64](a.Sidecar, infer.PropMetrics)
	if err != nil {
		t.Fatal(err)
	}
	for id, m := range metrics {
		if m["num_inferences"] != 342 || m["failed_batches_counter"] != 0 || m["model_byte_size"] <= 0 {
			t.Fatalf("metrics of %s: %v", id, m)
		}
	}
	if len(a.Inputs) != 2 {
		t.Fatalf("lineage inputs %v", a.Inputs)
	}

	again, err := e.infer("pred-1-worker", map[string]string{"examples": examples, "model": m}, map[string]any{"workers": int64(1), "batch-max": int64(16)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.store.Open(e.ctx, again.Join("predictions"), artifacts.TypePredictions)
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest {
		t.Fatalf("predictions differ between 2 workers and 1: %s vs %s", a.Digest, b.Digest)
	}
}

// TestInferKeyed runs the per-island models with at most two loaded:
// each row is answered by its island's model.
func TestInferKeyed(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	m := e.model("penguins-by-island", nil)
	out, err := e.infer("pred", map[string]string{"examples": examples, "model": m}, map[string]any{"max-models": int64(2), "batch-max": int64(8)})
	if err != nil {
		t.Fatal(err)
	}
	direct := map[string]*session{}
	for _, island := range []string{"Biscoe", "Dream", "Torgersen"} {
		direct[island] = e.session("penguins-by-island/"+island+".onnx", "probs")
	}
	var n int
	for split, rows := range e.rows(out.Join("predictions"), artifacts.TypePredictions) {
		for i, r := range rows {
			if !strings.HasSuffix(r["model_id"], "/"+r["Island"]) {
				t.Fatalf("%s row %d of %s answered by %s", split, i, r["Island"], r["model_id"])
			}
			checkScores(t, fmt.Sprintf("%s row %d", split, i), r, direct[r["Island"]].scores(r))
			n++
		}
	}
	if n != 342 {
		t.Fatalf("%d predictions", n)
	}
	// With a cap on loaded models the rows are regrouped by key, so each
	// island's model loads once per split rather than once per batch...
	a, err := e.store.Open(e.ctx, out.Join("predictions"), artifacts.TypePredictions)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := artifacts.Property[map[string]map[string]float64](a.Sidecar, infer.PropMetrics)
	if err != nil {
		t.Fatal(err)
	}
	for id, m := range metrics {
		if strings.Contains(id, "/") && m["load_model_latency_milli_secs_count"] > 2 {
			t.Errorf("%s loaded %v times over 2 splits: the rows were not grouped by key", id, m["load_model_latency_milli_secs_count"])
		}
	}
	// ...and the dead letters still name the rows as they were in the input.
	in := e.rows(artifacts.MustParseURI(examples), artifacts.TypeDataset)
	var dead int
	for split, rows := range e.rows(out.Join("dead_letters"), artifacts.TypeDeadLetters) {
		for _, d := range rows {
			i, _ := strconv.Atoi(d["row"])
			if !hasNull(in[split][i]) {
				t.Fatalf("dead letter names %s row %d, which has no null: %v", split, i, in[split][i])
			}
			dead++
		}
	}
	if dead != 2 {
		t.Fatalf("%d dead letters, want 2", dead)
	}
}

// TestInferAB splits penguins between the MLP and the trees by a hash of
// Island: every row is in the arm the split assigns, and answered by it.
func TestInferAB(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	mlp, trees := e.model("penguins-mlp.onnx", nil), e.model("penguins-trees.onnx", nil)
	out, err := e.infer("pred", map[string]string{"examples": examples},
		map[string]any{"ab": "champion=" + mlp + ":0.5,challenger=" + trees + ":0.5", "ab-key": "Sex"})
	if err != nil {
		t.Fatal(err)
	}
	split, err := inference.NewSplit([]float64{0.5, 0.5})
	if err != nil {
		t.Fatal(err)
	}
	direct := map[string]*session{"champion": e.session("penguins-mlp.onnx", "probs"), "challenger": e.session("penguins-trees.onnx", "label", "probabilities")}
	arms := map[string]int{}
	for s, rows := range e.rows(out.Join("predictions"), artifacts.TypePredictions) {
		for i, r := range rows {
			key := r["Sex"]
			want := []string{"champion", "challenger"}[split.Arm(key)]
			if key == "<null>" {
				continue // a null key is a dead letter's business
			}
			if r["arm"] != want {
				t.Fatalf("%s row %d (Sex %s): arm %s, want %s", s, i, key, r["arm"], want)
			}
			checkScores(t, fmt.Sprintf("%s row %d", s, i), r, direct[want].scores(r))
			arms[want]++
		}
	}
	if arms["champion"] == 0 || arms["challenger"] == 0 {
		t.Fatalf("rows per arm %v", arms)
	}
	a, err := e.store.Open(e.ctx, out.Join("predictions"), artifacts.TypePredictions)
	if err != nil {
		t.Fatal(err)
	}
	var lineage []string
	for _, in := range a.Inputs {
		lineage = append(lineage, in.Name)
	}
	if strings.Join(lineage, ",") != "examples,ab.challenger,ab.champion" {
		t.Fatalf("lineage inputs %v", lineage)
	}
}

// TestInferCascade sends the rows the MLP is unsure of to the trees.
func TestInferCascade(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	mlp, trees := e.model("penguins-mlp.onnx", nil), e.model("penguins-trees.onnx", nil)
	const below = 0.99
	out, err := e.infer("pred", map[string]string{"examples": examples, "model": mlp}, map[string]any{"cascade": trees, "cascade-below": below})
	if err != nil {
		t.Fatal(err)
	}
	first, second := e.session("penguins-mlp.onnx", "probs"), e.session("penguins-trees.onnx", "label", "probabilities")
	by := map[string]int{}
	for s, rows := range e.rows(out.Join("predictions"), artifacts.TypePredictions) {
		for i, r := range rows {
			p := first.scores(r)
			want, model := p, "penguins-mlp@"
			if float64(max(p[0], p[1], p[2])) < below {
				want, model = second.scores(r), "penguins-trees@"
			}
			if !strings.HasPrefix(r["model_id"], model) {
				t.Fatalf("%s row %d answered by %s, want %s…", s, i, r["model_id"], model)
			}
			checkScores(t, fmt.Sprintf("%s row %d", s, i), r, want)
			by[model]++
		}
	}
	if by["penguins-mlp@"] == 0 || by["penguins-trees@"] == 0 {
		t.Fatalf("rows per model %v", by)
	}
}

// TestInferWatch follows a registry-style pointer to the model.
func TestInferWatch(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	m := e.model("penguins-mlp.onnx", nil)
	ptr := filepath.Join(t.TempDir(), "current")
	if err := os.WriteFile(ptr, []byte(`{"uri": "`+m+`", "version": 3}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := e.infer("pred", map[string]string{"examples": examples}, map[string]any{"watch": ptr})
	if err != nil {
		t.Fatal(err)
	}
	direct := e.session("penguins-mlp.onnx", "probs")
	for s, rows := range e.rows(out.Join("predictions"), artifacts.TypePredictions) {
		for i, r := range rows {
			if !strings.HasPrefix(r["model_id"], "penguins-mlp@") {
				t.Fatalf("model_id %q", r["model_id"])
			}
			checkScores(t, fmt.Sprintf("%s row %d", s, i), r, direct.scores(r))
		}
	}
	if err := os.WriteFile(ptr, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = e.infer("pred-bad", map[string]string{"examples": examples}, map[string]any{"watch": ptr})
	if step.ExitCode(err) != step.ExitUsage || !strings.Contains(err.Error(), "pointer") {
		t.Fatalf("a broken pointer: %v", err)
	}
}

// TestInferGate: more dead letters than allowed exits 3 with both outputs
// written.
func TestInferGate(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	m := e.model("penguins-mlp.onnx", nil)
	out, err := e.infer("pred", map[string]string{"examples": examples, "model": m}, map[string]any{"max-dead-letter-fraction": 0.001})
	var gate *step.GateError
	if !errors.As(err, &gate) {
		t.Fatalf("want a gate error, got %v", err)
	}
	for _, o := range []string{"predictions", "dead_letters"} {
		if _, err := e.store.Open(e.ctx, out.Join(o), ""); err != nil {
			t.Fatalf("%s not written after the gate: %v", o, err)
		}
	}
}

// TestInferBadInput: clear errors, exit 2, nothing written.
func TestInferBadInput(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	cars := e.examples("cars.json")
	m := e.model("penguins-mlp.onnx", nil)
	keyed := e.model("penguins-by-island", nil)
	cases := []struct {
		name   string
		inputs map[string]string
		params map[string]any
		want   string
	}{
		{"missing columns", map[string]string{"examples": cars, "model": m}, nil, `columns the examples do not have: Beak Length (mm)`},
		{"no model", map[string]string{"examples": examples}, nil, "give the model one way"},
		{"model and ab", map[string]string{"examples": examples, "model": m}, map[string]any{"ab": "a=" + m + ":1,b=" + m + ":1", "ab-key": "Sex"}, "one way"},
		{"ab without key", map[string]string{"examples": examples}, map[string]any{"ab": "a=" + m + ":1,b=" + m + ":1"}, "--ab-key"},
		{"ab bad weight", map[string]string{"examples": examples}, map[string]any{"ab": "a=" + m + ":x,b=" + m + ":1", "ab-key": "Sex"}, `weight "x"`},
		{"ab one arm", map[string]string{"examples": examples}, map[string]any{"ab": "a=" + m + ":1", "ab-key": "Sex"}, "two arms"},
		{"ab missing model", map[string]string{"examples": examples}, map[string]any{"ab": "a=" + m + ":1,b=" + m + "-nope:1", "ab-key": "Sex"}, "--ab"},
		{"model is a dataset", map[string]string{"examples": examples, "model": examples}, nil, "expected a Model"},
		{"unknown passthrough", map[string]string{"examples": examples, "model": m}, map[string]any{"passthrough": "Island,Nope"}, `no column "Nope"`},
		{"unknown split", map[string]string{"examples": examples, "model": m}, map[string]any{"splits": "test"}, "test"},
		{"key column on a plain model", map[string]string{"examples": examples, "model": m}, map[string]any{"key-column": "Island"}, "not a keyed Model"},
		{"keyed model, missing key column", map[string]string{"examples": examples, "model": keyed}, map[string]any{"key-column": "Colony"}, "Colony"},
		{"batch sizes", map[string]string{"examples": examples, "model": m}, map[string]any{"batch-min": int64(10), "batch-max": int64(5)}, "--batch-min"},
		{"cascade-below alone", map[string]string{"examples": examples, "model": m}, map[string]any{"cascade-below": 0.5}, "--cascade"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := e.infer("bad"+strconv.Itoa(i), c.inputs, c.params)
			if step.ExitCode(err) != step.ExitUsage || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v (exit %d), want exit 2 mentioning %q", err, step.ExitCode(err), c.want)
			}
			if _, err := e.store.Open(e.ctx, out.Join("predictions"), ""); !errors.Is(err, artifacts.ErrNotFound) {
				t.Fatalf("predictions written after a bad input: %v", err)
			}
		})
	}
}

// TestImportModelBadInput: a file that is not ONNX, a classifier whose
// classes do not fit its scores, features for an input the model lacks.
func TestImportModelBadInput(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.onnx")
	if err := os.WriteFile(junk, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	mlp := filepath.Join(testenv.RepoRoot(t), "testdata", "models", "penguins-mlp.onnx")
	cases := []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{"source": junk}, "junk.onnx"},
		{map[string]any{"source": mlp, "classes": "a,b"}, "2 classes"},
		{map[string]any{"source": mlp, "features": "y=a,b"}, `input "y"`},
		{map[string]any{"source": mlp, "features": "x=a,b"}, "takes 4 values per row, 2 columns given"},
		{map[string]any{"source": filepath.Join(dir, "none.onnx")}, "none.onnx"},
	}
	for i, c := range cases {
		out := e.root.Join("bad-model" + strconv.Itoa(i))
		err := step.Execute(e.ctx, importer.ModelSpec(), step.Invocation{OutRoot: out.String(), Params: c.params}, step.Env{Store: e.store})
		if step.ExitCode(err) != step.ExitUsage || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%v: got %v, want exit 2 mentioning %q", c.params, err, c.want)
		}
	}
}

// softmaxModel writes a linear softmax classifier over an [N,f] input "x"
// to a file: the shape of a model trained on transformed features.
func softmaxModel(t *testing.T, f int) string {
	t.Helper()
	w := make([]float32, f*3)
	for i := range w {
		w[i] = float32(math.Sin(float64(i + 1))) // fixed, varied weights
	}
	g := onnx.NewGraph("softmax")
	x := g.Input("x", onnx.Float, -1, int64(f))
	z := g.Op("MatMul", x, g.ConstFloats(w, int64(f), 3))
	g.NodeTo("", "Softmax", []string{z}, []string{"probs"}, onnx.AttrInt("axis", 1))
	g.Output("probs", onnx.Float, -1, 3)
	data, err := onnx.Marshal(g.Model())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "softmax.onnx")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInferTransform: a model trained on transformed features, run on raw
// rows with --in transform (the TransformGraph fused in front of it),
// answers as it does on the transform step's own transformed rows.
func TestInferTransform(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	spec := filepath.Join(t.TempDir(), "transform.yaml")
	if err := os.WriteFile(spec, []byte(`features:
  "Beak Length (mm)": [impute: mean, zscore]
  "Body Mass (g)":    [impute: median, scale_to_0_1]
  Island:         [vocabulary: {}, one_hot]
label: Species
passthrough: [Sex]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	xroot := e.root.Join("xf")
	inv := step.Invocation{Inputs: map[string]string{"examples": examples}, OutRoot: xroot.String(), Params: map[string]any{"spec": spec}}
	if err := step.Execute(e.ctx, xfstep.Spec(), inv, step.Env{Store: e.store}); err != nil {
		t.Fatal(err)
	}
	tg, err := e.store.Open(e.ctx, xroot.Join("transform_graph"), artifacts.TypeTransformGraph)
	if err != nil {
		t.Fatal(err)
	}
	order, err := artifacts.Property[[]string](tg.Sidecar, xfstep.PropFeatureOrder)
	if err != nil {
		t.Fatal(err)
	}
	mroot := e.root.Join("softmax")
	params := map[string]any{"source": softmaxModel(t, len(order)), "classes": strings.Join(classes, ","), "features": "x=" + strings.Join(order, ",")}
	if err := step.Execute(e.ctx, importer.ModelSpec(), step.Invocation{OutRoot: mroot.String(), Params: params}, step.Env{Store: e.store}); err != nil {
		t.Fatal(err)
	}
	m := mroot.Join("model").String()
	raw, err := e.infer("raw", map[string]string{"examples": examples, "model": m, "transform": xroot.Join("transform_graph").String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	done, err := e.infer("transformed", map[string]string{"examples": xroot.Join("transformed_examples").String(), "model": m}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := e.rows(raw.Join("predictions"), artifacts.TypePredictions), e.rows(done.Join("predictions"), artifacts.TypePredictions)
	var n int
	for split, rows := range a {
		if len(rows) != len(b[split]) {
			t.Fatalf("%s: %d rows from raw examples, %d from transformed", split, len(rows), len(b[split]))
		}
		for i, r := range rows {
			for _, cl := range classes {
				x, _ := strconv.ParseFloat(r["score_"+cl], 64)
				y, _ := strconv.ParseFloat(b[split][i]["score_"+cl], 64)
				if math.Abs(x-y) > 1e-6 {
					t.Fatalf("%s row %d score_%s: %v fused, %v on transformed rows", split, i, cl, x, y)
				}
			}
			if r["Sex"] != b[split][i]["Sex"] {
				t.Fatalf("%s row %d: rows out of step", split, i)
			}
			n++
		}
	}
	if n != 344 {
		t.Fatalf("%d rows compared", n)
	}
}
