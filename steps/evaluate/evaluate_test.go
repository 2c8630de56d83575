package evaluate_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/components/tabular"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/blessing"
	"github.com/mlsteps/mlsteps/steps/evaluate"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/infer"
	"github.com/mlsteps/mlsteps/steps/step"
	"github.com/mlsteps/mlsteps/steps/train"
)

const penguinFeatures = "Beak Length (mm),Beak Depth (mm),Flipper Length (mm),Body Mass (g)"

var classes = []string{"Adelie", "Chinstrap", "Gentoo"}

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

func (e *env) exec(spec *step.Spec, name string, inputs map[string]string, params map[string]any) (artifacts.URI, error) {
	out := e.root.Join(name)
	err := step.Execute(e.ctx, spec, step.Invocation{Inputs: inputs, OutRoot: out.String(), Params: params}, step.Env{Store: e.store})
	return out, err
}

func (e *env) must(spec *step.Spec, name string, inputs map[string]string, params map[string]any) artifacts.URI {
	e.t.Helper()
	out, err := e.exec(spec, name, inputs, params)
	if err != nil {
		e.t.Fatalf("%s: %v", name, err)
	}
	return out
}

func (e *env) examples(data string) string {
	e.t.Helper()
	return e.must(importer.Spec(), "data-"+strings.TrimSuffix(data, filepath.Ext(data)), nil,
		map[string]any{"source": testenv.VegaData(e.t, data), "split": "train=0.8,eval=0.2", "seed": int64(7)}).Join("examples").String()
}

func (e *env) fixture(file string, params map[string]any) string {
	e.t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	params["source"] = filepath.Join(testenv.RepoRoot(e.t), "testdata", "models", file)
	return e.must(importer.ModelSpec(), "model-"+file, nil, params).Join("model").String()
}

func (e *env) trained(examples, trainer, label, features, hparams string) string {
	e.t.Helper()
	params := map[string]any{"trainer": trainer, "label": label, "features": features, "seed": int64(3), "hparams": hparams}
	name := "train-" + trainer[len("builtin:"):] + "-" + label + "-" + step.ContentDigest([]byte(features + hparams))[:8]
	return e.must(train.Spec(), name, map[string]string{"examples": examples}, params).Join("model").String()
}

func (e *env) evaluate(name string, inputs map[string]string, config string, params map[string]any) (artifacts.URI, error) {
	if params == nil {
		params = map[string]any{}
	}
	params["config"] = config
	return e.exec(evaluate.Spec(), name, inputs, params)
}

func (e *env) metrics(out artifacts.URI) evaluate.Metrics {
	e.t.Helper()
	a, err := e.store.Open(e.ctx, out.Join("evaluation"), artifacts.TypeEvaluation)
	if err != nil {
		e.t.Fatal(err)
	}
	data, err := a.ReadFile(e.ctx, evaluate.FileMetrics)
	if err != nil {
		e.t.Fatal(err)
	}
	var m evaluate.Metrics
	if err := json.Unmarshal(data, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) blessing(out artifacts.URI) blessing.Blessing {
	e.t.Helper()
	a, err := e.store.Open(e.ctx, out.Join("blessing"), artifacts.TypeBlessing)
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := blessing.Read(e.ctx, a)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// scored reads an infer step's predictions of the eval split: the label,
// the slice column and each class's score, row by row.
type scored struct {
	Labels []string    `json:"labels"`
	Island []string    `json:"island"`
	Scores [][]float64 `json:"scores"`
}

func (e *env) predictions(model, examples string) scored {
	e.t.Helper()
	out := e.must(infer.Spec(), "infer-"+filepath.Base(filepath.Dir(model)), map[string]string{"model": model, "examples": examples},
		map[string]any{"splits": "eval", "passthrough": "Species,Island"})
	a, err := e.store.Open(e.ctx, out.Join("predictions"), artifacts.TypePredictions)
	if err != nil {
		e.t.Fatal(err)
	}
	var s scored
	for rec, err := range a.Records(e.ctx, "eval", artifacts.ReadOptions{}) {
		if err != nil {
			e.t.Fatal(err)
		}
		col := func(name string) *array.Float32 {
			return rec.Column(rec.Schema().FieldIndices(name)[0]).(*array.Float32)
		}
		species, island := rec.Column(rec.Schema().FieldIndices("Species")[0]), rec.Column(rec.Schema().FieldIndices("Island")[0])
		for i := range int(rec.NumRows()) {
			s.Labels = append(s.Labels, tabular.Text(species, i))
			s.Island = append(s.Island, tabular.Text(island, i))
			row := make([]float64, len(classes))
			for k, c := range classes {
				row[k] = float64(col("score_" + c).Value(i))
			}
			s.Scores = append(s.Scores, row)
		}
	}
	return s
}

// sklearnMetrics computes scikit-learn's metrics of predictions overall
// and on one island.
const sklearnMetrics = `
import json, os, numpy as np
from sklearn import metrics as m
d = json.load(open(os.environ["SCORED"]))
classes = ["Adelie", "Chinstrap", "Gentoo"]
def of(mask):
    y = np.array([classes.index(l) for l in np.array(d["labels"])[mask]])
    p = np.array(d["scores"])[mask]
    pred = p.argmax(axis=1)
    out = {"accuracy": m.accuracy_score(y, pred), "macro_f1": m.f1_score(y, pred, average="macro", labels=[0,1,2], zero_division=0),
           "weighted_f1": m.f1_score(y, pred, average="weighted", labels=[0,1,2], zero_division=0),
           "log_loss": m.log_loss(y, p, labels=[0,1,2])}
    if len(set(y)) == 3:  # one-vs-rest AUC needs every class present
        out["auc"] = m.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=[0,1,2])
    return out
all_rows = np.ones(len(d["labels"]), dtype=bool)
print(json.dumps({"Overall": of(all_rows), "Island=Biscoe": of(np.array(d["Island"] if "Island" in d else d["island"]) == "Biscoe")}))
`

// TestAgainstSklearnThroughInfer evaluates a Go-trained GBDT against the
// PyTorch MLP as baseline on the penguins eval split, and checks every
// headline metric, overall and on a slice, against scikit-learn computing
// them from the infer step's predictions of the same models: the two
// paths (evaluate's own inference, infer + scikit-learn) must agree.
func TestAgainstSklearnThroughInfer(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	gbdt := e.trained(examples, "builtin:gbdt", "Species", penguinFeatures, `{"trees": 30, "max_depth": 3}`)
	mlp := e.fixture("penguins-mlp.onnx", map[string]any{"name": "penguins-mlp"})
	config := `
label: Species
split: eval
slices: [[], [Island], [Island, Sex]]
min_slice_size: 10
metrics: [accuracy, macro_f1, weighted_f1, auc, log_loss, calibration, confusion_matrix]
thresholds:
  accuracy: {lower_bound: 0.85}
  auc: {change: {direction: higher_is_better, absolute: -0.05}}
max_dead_letter_fraction: 0.05
confidence_intervals: {method: poisson_bootstrap, samples: 50, seed: 7}
`
	out, err := e.evaluate("eval", map[string]string{"model": gbdt, "baseline": mlp, "examples": examples}, config, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := e.metrics(out)
	if m.Baseline == nil || m.Task != "classification" || m.Rows.Evaluated == 0 || m.Model.DeadLetters != 0 || m.Baseline.DeadLetters != 0 {
		t.Fatalf("metrics header: %+v rows %+v", m.Model, m.Rows)
	}
	for name, model := range map[string]string{"candidate": gbdt, "baseline": mlp} {
		s := e.predictions(model, examples)
		if len(s.Labels) != m.Rows.Evaluated {
			t.Fatalf("%s: infer predicted %d rows, evaluate evaluated %d", name, len(s.Labels), m.Rows.Evaluated)
		}
		path := filepath.Join(t.TempDir(), "scored.json")
		data, _ := json.Marshal(s)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var want map[string]map[string]float64
		testenv.Python(t, sklearnMetrics, &want, "SCORED="+path)
		for _, sl := range m.Slices {
			ref, ok := want[sl.Key]
			if !ok {
				continue
			}
			got := sl.Metrics
			if name == "baseline" {
				got = sl.Baseline
			}
			for metric, w := range ref {
				g := float64(got[metric])
				if math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
					t.Errorf("%s %s %s = %.12g, scikit-learn %.12g", name, sl.Key, metric, g, w)
				}
			}
			if name == "baseline" {
				if d := float64(sl.Diff["accuracy"]); math.Abs(d-(float64(sl.Metrics["accuracy"])-ref["accuracy"])) > 1e-12 {
					t.Errorf("%s diff accuracy %v", sl.Key, d)
				}
			}
		}
	}
	var small, intervals int
	for _, sl := range m.Slices {
		if sl.TooSmall {
			small++
			if len(sl.Metrics) > 2 {
				t.Errorf("slice %s is too small but reports %v", sl.Key, sl.Metrics)
			}
		}
		if _, ok := sl.ConfidenceIntervals["accuracy"]; ok {
			intervals++
		}
		if _, ok := sl.Metrics["mse"]; ok {
			t.Errorf("slice %s reports regression metrics", sl.Key)
		}
		if _, ok := sl.Metrics["brier_score"]; ok {
			t.Errorf("slice %s reports brier_score, not in the config's metrics", sl.Key)
		}
	}
	if small == 0 || intervals == 0 {
		t.Errorf("%d too-small slices, %d with intervals; want some of each", small, intervals)
	}
	b := e.blessing(out)
	if !b.Blessed || b.Baseline != mlp || len(b.Checks) != 4 {
		t.Errorf("blessing %+v", b)
	}
	for _, c := range b.Checks {
		if c.Metric == "auc" && c.Kind == "change_absolute" && (c.Baseline == nil || c.Change == nil) {
			t.Errorf("change check without baseline values: %+v", c)
		}
	}
	// KFP's metadata shapes.
	a, _ := e.store.Open(e.ctx, out.Join("evaluation"), artifacts.TypeEvaluation)
	var kfpScalars map[string]float64
	var kfpClass struct {
		ConfusionMatrix struct {
			AnnotationSpecs []struct{ DisplayName string } `json:"annotationSpecs"`
			Rows            []struct{ Row []float64 }      `json:"rows"`
		} `json:"confusionMatrix"`
		ConfidenceMetrics []struct {
			ConfidenceThreshold, Recall, FalsePositiveRate float64
		} `json:"confidenceMetrics"`
	}
	for file, v := range map[string]any{evaluate.FileKFPMetrics: &kfpScalars, evaluate.FileKFPClassific: &kfpClass} {
		data, err := a.ReadFile(e.ctx, file)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	if kfpScalars["accuracy"] != float64(m.Slices[0].Metrics["accuracy"]) {
		t.Errorf("kfp accuracy %v", kfpScalars["accuracy"])
	}
	if len(kfpClass.ConfusionMatrix.AnnotationSpecs) != 3 || len(kfpClass.ConfusionMatrix.Rows) != 3 || len(kfpClass.ConfidenceMetrics) < 3 {
		t.Errorf("kfp classification metrics %+v", kfpClass)
	}
	var total float64
	for _, r := range kfpClass.ConfusionMatrix.Rows {
		for _, v := range r.Row {
			total += v
		}
	}
	if int(total) != m.Rows.Evaluated {
		t.Errorf("confusion matrix holds %v rows, want %d", total, m.Rows.Evaluated)
	}
	if acc, _ := artifacts.Property[float64](a.Sidecar, "accuracy"); acc != kfpScalars["accuracy"] {
		t.Errorf("accuracy property %v", acc)
	}
}

// TestNotBlessed: a failed threshold exits 3 after both artifacts are
// written, naming the metric with both values; the report renders the
// failure highlighted, with its curves, in headless Chromium.
func TestNotBlessed(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	weak := e.trained(examples, "builtin:gbdt", "Species", penguinFeatures, `{"trees": 1, "max_depth": 1}`)
	mlp := e.fixture("penguins-mlp.onnx", map[string]any{"name": "penguins-mlp"})
	config := `{label: Species, slices: [[Island]], thresholds: {accuracy: {lower_bound: 0.99}, macro_f1: {change: {direction: higher_is_better, relative: -0.01}}}}`
	out, err := e.evaluate("eval", map[string]string{"model": weak, "baseline": mlp, "examples": examples}, config, nil)
	var gate *step.GateError
	if !errors.As(err, &gate) || step.ExitCode(err) != 3 {
		t.Fatalf("err %v (exit %d), want the blessing gate's exit 3", err, step.ExitCode(err))
	}
	b := e.blessing(out)
	if b.Blessed || !strings.Contains(b.Reason, "accuracy") || !strings.Contains(b.Reason, "macro_f1") || !strings.Contains(b.Reason, "vs baseline") {
		t.Errorf("blessing %+v", b)
	}
	if !regexp.MustCompile(`accuracy = 0\.\d+ is below lower bound 0\.99`).MatchString(b.Reason) {
		t.Errorf("reason does not name the value and the bound: %s", b.Reason)
	}
	a, err := e.store.Open(e.ctx, out.Join("evaluation"), artifacts.TypeEvaluation)
	if err != nil {
		t.Fatal(err)
	}
	html, err := a.ReadFile(e.ctx, evaluate.FileReport)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"https://", "<link", "src=\"http", "@import"} {
		if strings.Contains(string(html), bad) {
			t.Errorf("report refers outside itself: %q", bad)
		}
	}
	dom := testenv.RenderDOM(t, html, `document.addEventListener("DOMContentLoaded",()=>{const b=document.body;`+
		`b.setAttribute("data-curves",document.querySelectorAll("svg.plot polyline.candidate").length);`+
		`b.setAttribute("data-baselines",document.querySelectorAll("svg.plot polyline.baseline").length);`+
		`const r=document.querySelector("tr.check.failed");b.setAttribute("data-failed-bg",r?getComputedStyle(r).backgroundColor:"none");`+
		`b.setAttribute("data-slices",document.querySelectorAll("table.metrics tr.slice").length)})`)
	for _, want := range []string{`data-curves="3"`, `data-baselines="2"`, `data-failed-bg="rgb(253, 232, 232)"`, `data-slices="4"`,
		"not blessed", `data-slice="Island=Biscoe"`, `data-metric="accuracy"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered report lacks %s", want)
		}
	}
}

// TestRegression evaluates the cars MPG regressor and checks its metrics
// against scikit-learn on the infer step's predictions.
func TestRegression(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("cars.json")
	linear := e.trained(examples, "builtin:gbdt", "Miles_per_Gallon", "Cylinders,Displacement,Weight_in_lbs,Acceleration", `{"trees": 40}`)
	out, err := e.evaluate("eval", map[string]string{"model": linear, "examples": examples},
		"{label: Miles_per_Gallon, split: train, slices: [[Origin]], thresholds: {r2: {lower_bound: 0.5}, rmse: {upper_bound: 10}}, max_dead_letter_fraction: 0.1}", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := e.metrics(out)
	if m.Task != "regression" || m.Rows.NullLabels == 0 {
		t.Errorf("task %s, rows %+v (cars has rows without MPG)", m.Task, m.Rows)
	}
	pred := e.must(infer.Spec(), "infer", map[string]string{"model": linear, "examples": examples}, map[string]any{"splits": "train", "passthrough": "Miles_per_Gallon"})
	a, _ := e.store.Open(e.ctx, pred.Join("predictions"), artifacts.TypePredictions)
	var y, p []float64
	for rec, err := range a.Records(e.ctx, "train", artifacts.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		label := rec.Column(rec.Schema().FieldIndices("Miles_per_Gallon")[0])
		out := rec.Column(int(rec.NumCols()) - 2) // the prediction, before model_id
		for i := range int(rec.NumRows()) {
			yv, _ := tabular.Number(label, i)
			pv, _ := tabular.Number(out, i)
			if !math.IsNaN(yv) {
				y, p = append(y, yv), append(p, pv)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "y.json")
	data, _ := json.Marshal(map[string][]float64{"y": y, "p": p})
	os.WriteFile(path, data, 0o644)
	var want map[string]float64
	testenv.Python(t, `
import json, os
from sklearn import metrics as m
d = json.load(open(os.environ["Y"]))
y, p = d["y"], d["p"]
print(json.dumps({"mse": m.mean_squared_error(y, p), "mae": m.mean_absolute_error(y, p), "r2": m.r2_score(y, p),
                  "mape": m.mean_absolute_percentage_error(y, p)}))`, &want, "Y="+path)
	for k, w := range want {
		if g := float64(m.Slices[0].Metrics[k]); math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
			t.Errorf("%s = %.12g, scikit-learn %.12g", k, g, w)
		}
	}
	if !e.blessing(out).Blessed {
		t.Errorf("not blessed: %s", e.blessing(out).Reason)
	}
}

// TestBaselinePointer takes the baseline from a registry pointer; a
// pointer with nothing behind it yet means no baseline, and the change
// thresholds are skipped (and say so) rather than failing.
func TestBaselinePointer(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	mlp := e.fixture("penguins-mlp.onnx", map[string]any{"name": "penguins-mlp"})
	gbdt := e.trained(examples, "builtin:gbdt", "Species", penguinFeatures, `{"trees": 20, "max_depth": 3}`)
	config := "{label: Species, thresholds: {accuracy: {change: {direction: higher_is_better, absolute: -0.05}}}}"
	pointer := e.root.Join("registry", "penguins", "current")
	params := func() map[string]any { return map[string]any{"baseline-pointer": pointer.String()} }
	out, err := e.evaluate("first", map[string]string{"model": mlp, "examples": examples}, config, params())
	if err != nil {
		t.Fatal(err)
	}
	b := e.blessing(out)
	if !b.Blessed || b.Baseline != "" || !strings.Contains(b.Checks[0].Message, "skipped, no baseline") {
		t.Errorf("first model: %+v", b)
	}
	bucket, err := e.store.Bucket(e.ctx, pointer)
	if err != nil {
		t.Fatal(err)
	}
	if err := bucket.WriteAll(e.ctx, pointer.Path, []byte(`{"uri": "`+mlp+`", "version": 1}`), nil); err != nil {
		t.Fatal(err)
	}
	out, err = e.evaluate("second", map[string]string{"model": gbdt, "examples": examples}, config, params())
	if err != nil {
		t.Fatal(err)
	}
	if b := e.blessing(out); !b.Blessed || b.Baseline != mlp || b.Checks[0].Kind != "change_absolute" {
		t.Errorf("against the pushed model: %+v", b)
	}
	// The pushed model evaluated again (a pipeline re-run after its own
	// push) has no baseline but itself, so none: the cache key is the
	// first run's, and the verdict too.
	var cached []bool
	for range 2 {
		var hit bool
		env := step.Env{Store: e.store, OnResult: func(r step.Result) { hit = r.Cached }}
		inv := step.Invocation{Inputs: map[string]string{"model": mlp, "examples": examples}, CacheRoot: e.root.Join("cache").String(),
			Params: map[string]any{"config": config, "baseline-pointer": pointer.String()}}
		if err := step.Execute(e.ctx, evaluate.Spec(), inv, env); err != nil {
			t.Fatal(err)
		}
		cached = append(cached, hit)
	}
	if cached[0] || !cached[1] {
		t.Errorf("cache hits %v, want [false true]", cached)
	}
}

// TestBadInput: each mistake is refused before anything is written, with
// an error naming the field.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	penguins := e.examples("penguins.json")
	mlp := e.fixture("penguins-mlp.onnx", map[string]any{"name": "penguins-mlp"})
	cars := e.fixture("cars-mpg-linear.onnx", nil)
	narrow := e.trained(penguins, "builtin:gbdt", "Species", "Body Mass (g),Flipper Length (mm)", `{"trees": 3}`)
	in := map[string]string{"model": mlp, "examples": penguins}
	for _, c := range []struct {
		name, config string
		inputs       map[string]string
		want         string
	}{
		{"no label", "{split: eval}", in, "label: the label column is required"},
		{"unknown key", "{label: Species, tresholds: {}}", in, "field tresholds not found"},
		{"missing label", "{label: species}", in, `config label: no column "species"`},
		{"float label", "{label: Beak Depth (mm)}", in, `column "Beak Depth (mm)" is float64; a classifier's label`},
		{"missing slice", "{label: Species, slices: [[Island], [Colour]]}", in, `config slices[1]: no column "Colour"`},
		{"float slice", "{label: Species, slices: [[Beak Depth (mm)]]}", in, `slice by strings, integers or booleans`},
		{"threshold not computed", "{label: Species, metrics: [accuracy], thresholds: {auc: {lower_bound: 0.9}}}", in, "thresholds.auc: the threshold names a metric not computed"},
		{"unknown metric", "{label: Species, thresholds: {rmse: {lower_bound: 0.9}}}", in, `thresholds.rmse: "rmse" is not a metric of a classifier`},
		{"no bound", "{label: Species, thresholds: {accuracy: {}}}", in, "thresholds.accuracy: no lower_bound, upper_bound or change"},
		{"missing split", "{label: Species, split: test}", in, "split"},
		{"baseline of another task", "{label: Species}", map[string]string{"model": mlp, "baseline": cars, "examples": penguins}, "baseline model"},
		{"baseline with another signature", "{label: Species}", map[string]string{"model": mlp, "baseline": narrow, "examples": penguins}, "baseline model"},
		{"change without baseline input is fine, slice threshold on a missing slice is not", "{label: Species, slice_thresholds: {Island=Atlantis: {accuracy: {lower_bound: 0.5}}}}", in, "slice_thresholds.Island=Atlantis: no such slice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := e.evaluate(strings.ReplaceAll(c.name, " ", "-"), c.inputs, c.config, nil)
			if err == nil || step.ExitCode(err) != step.ExitUsage {
				t.Fatalf("err %v (exit %d), want bad input", err, step.ExitCode(err))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
			if _, err := e.store.Open(e.ctx, out.Join("blessing"), artifacts.TypeBlessing); err == nil {
				t.Error("a blessing was written for bad input")
			}
		})
	}
}

// TestRecordedPredictions evaluates an A/B run's predictions without a
// model, sliced by arm: each arm's accuracy and log loss equal those
// counted directly from the predictions' rows of that arm.
func TestRecordedPredictions(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	gbdt := e.trained(examples, "builtin:gbdt", "Species", penguinFeatures, `{"trees": 5, "max_depth": 2}`)
	mlp := e.fixture("penguins-mlp.onnx", map[string]any{"name": "penguins-mlp"})
	pred := e.must(infer.Spec(), "ab", map[string]string{"examples": examples},
		map[string]any{"ab": "champion=" + mlp + ":0.5,challenger=" + gbdt + ":0.5", "ab-key": "Body Mass (g)", "passthrough": "Species,Island"})
	out, err := e.evaluate("eval", map[string]string{"predictions": pred.Join("predictions").String()},
		"{label: Species, split: eval, slices: [[arm], [arm, Island]], thresholds: {accuracy: {lower_bound: 0.5}}}", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := e.metrics(out)
	a, _ := e.store.Open(e.ctx, pred.Join("predictions"), artifacts.TypePredictions)
	type tally struct {
		n, right int
		loss     float64
	}
	arms := map[string]*tally{}
	for rec, err := range a.Records(e.ctx, "eval", artifacts.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		col := func(name string) int { return rec.Schema().FieldIndices(name)[0] }
		for i := range int(rec.NumRows()) {
			arm := tabular.Text(rec.Column(col("arm")), i)
			if arms[arm] == nil {
				arms[arm] = &tally{}
			}
			label := tabular.Text(rec.Column(col("Species")), i)
			best, bestScore, sum := "", -1.0, 0.0
			for _, c := range classes {
				v, _ := tabular.Number(rec.Column(col("score_"+c)), i)
				sum += min(max(v, 0x1p-52), 1-0x1p-52)
				if v > bestScore {
					best, bestScore = c, v
				}
			}
			ly, _ := tabular.Number(rec.Column(col("score_"+label)), i)
			tl := arms[arm]
			tl.n++
			tl.loss -= math.Log(min(max(ly, 0x1p-52), 1-0x1p-52) / sum)
			if best == label {
				tl.right++
			}
		}
	}
	if len(arms) != 2 {
		t.Fatalf("arms %v", arms)
	}
	for arm, tl := range arms {
		var got *evaluate.SliceMetrics
		for i := range m.Slices {
			if m.Slices[i].Key == "arm="+arm {
				got = &m.Slices[i]
			}
		}
		if got == nil {
			t.Fatalf("no slice arm=%s in %v", arm, m.Slices)
		}
		if got.ExampleCount != int64(tl.n) || math.Abs(float64(got.Metrics["accuracy"])-float64(tl.right)/float64(tl.n)) > 1e-12 ||
			math.Abs(float64(got.Metrics["log_loss"])-tl.loss/float64(tl.n)) > 1e-9 {
			t.Errorf("arm %s: %d rows, accuracy %v, log loss %v; counted %d rows, %d right, log loss %v", arm, got.ExampleCount,
				got.Metrics["accuracy"], got.Metrics["log_loss"], tl.n, tl.right, tl.loss/float64(tl.n))
		}
	}
	b := e.blessing(out)
	if !b.Blessed || b.Model != "" || b.Predictions == "" || !strings.Contains(b.ModelID, "+") {
		t.Errorf("blessing of recorded predictions %+v", b)
	}
	if _, err := e.evaluate("both", map[string]string{"predictions": pred.Join("predictions").String(), "model": mlp}, "{label: Species}", nil); step.ExitCode(err) != step.ExitUsage {
		t.Errorf("predictions and a model: %v", err)
	}
	if _, err := e.evaluate("nolabel", map[string]string{"predictions": pred.Join("predictions").String()}, "{label: Sex}", nil); err == nil ||
		!strings.Contains(err.Error(), "pass the label through") {
		t.Errorf("a label not passed through: %v", err)
	}
}
