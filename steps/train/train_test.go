package train_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	ctrain "github.com/mlsteps/mlsteps/components/train"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/train"
)

// goModel fits the component directly on what the step reads: the
// features of the train split (NaN for null), rows with a label.
func goModel(t *testing.T, e *env, examples artifacts.URI, features []string, label, trainer string, classify bool) (ctrain.Model, []string) {
	t.Helper()
	x := e.numbers(examples, artifacts.TypeDataset, "train", features)
	labels := e.column(examples, artifacts.TypeDataset, "train", label)
	f := len(features)
	d := ctrain.Data{Features: features}
	var classes []string
	if classify {
		for _, l := range labels {
			if l != "" && !slices.Contains(classes, l) {
				classes = append(classes, l)
			}
		}
		slices.Sort(classes)
		d.Classes = classes
	}
	for i, l := range labels {
		if l == "" {
			continue
		}
		d.X = append(d.X, x[i*f:(i+1)*f]...)
		y, _ := strconv.ParseFloat(l, 64)
		if classify {
			y = float64(slices.Index(classes, l))
		}
		d.Y = append(d.Y, y)
	}
	ctx := context.Background()
	var (
		m   ctrain.Model
		err error
	)
	switch trainer {
	case train.Linear:
		m, err = ctrain.FitLinear(ctx, d, ctrain.LinearOptions{Lambda: 1})
	case train.Logistic:
		m, err = ctrain.FitLogistic(ctx, d, ctrain.LogisticOptions{Lambda: 1, Tol: 1e-6}) // the step's defaults
	case train.GBDT:
		m, err = ctrain.FitGBDT(ctx, d, nil, ctrain.GBDTOptions{Trees: 40, MaxDepth: 3})
	}
	if err != nil {
		t.Fatal(err)
	}
	return m, classes
}

// TestBuiltinThroughInfer trains every built-in trainer through the step,
// with and without a TransformGraph, runs `infer` on the raw eval split
// with the Model artifact alone, and checks every prediction against the
// Go trainer fitted on the same rows: labels equal, scores and values
// within 1e-5. It also checks the properties the step records and that a
// second run gives the same model digest.
func TestBuiltinThroughInfer(t *testing.T) {
	e := newEnv(t)
	penguins := e.examples("penguins.json")
	cars := e.examples("cars.json")
	pxf, ptg := e.transformed(penguins, penguinsSpec)
	cxf, ctg := e.transformed(cars, carsSpec)
	for _, c := range []struct {
		name, trainer     string
		raw, examples, tg string
		label             string
		features          []string // nil: the graph's
		classify          bool
	}{
		{"penguins-logistic-transform", train.Logistic, penguins, pxf, ptg, "Species", nil, true},
		{"penguins-gbdt-transform", train.GBDT, penguins, pxf, ptg, "Species", nil, true},
		{"penguins-gbdt-raw", train.GBDT, penguins, penguins, "", "Species", penguinFeatures, true},
		{"cars-linear-transform", train.Linear, cars, cxf, ctg, "Miles_per_Gallon", nil, false},
		{"cars-gbdt-raw", train.GBDT, cars, cars, "", "Miles_per_Gallon", []string{"Cylinders", "Displacement", "Horsepower", "Weight_in_lbs", "Acceleration"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			inputs := map[string]string{"examples": c.examples}
			params := map[string]any{"trainer": c.trainer, "seed": int64(3)}
			if c.trainer == train.GBDT {
				params["hparams"] = `{"trees": 40, "max_depth": 3}`
			}
			features := c.features
			if c.tg != "" {
				inputs["transform"] = c.tg
				features = featureOrder(e, c.tg)
			} else {
				params["label"] = c.label
			}
			mu, err := e.train(c.name, inputs, params)
			if err != nil {
				t.Fatal(err)
			}
			again, err := e.train(c.name+"-again", inputs, params)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := e.open(mu, artifacts.TypeModel).Digest, e.open(again, artifacts.TypeModel).Digest; a != b {
				t.Errorf("two runs gave models %s and %s", a, b)
			}
			m := e.open(mu, artifacts.TypeModel)
			_, hasTrained := m.File(train.FileTrained)
			if hasTrained != (c.tg != "") {
				t.Errorf("trained.onnx present %v, want %v (fused)", hasTrained, c.tg != "")
			}
			metrics := property[train.Metrics](e, mu, artifacts.TypeModel, train.PropTraining)
			if metrics.Trainer != c.trainer || metrics.TrainRows == 0 || metrics.EvalRows == 0 || len(metrics.Loss) == 0 || !metrics.Converged {
				t.Errorf("training metrics %+v", metrics)
			}
			if (metrics.EvalAccuracy != nil) != c.classify || (metrics.EvalRMSE != nil) == c.classify {
				t.Errorf("eval accuracy %v, RMSE %v for classify=%v", metrics.EvalAccuracy, metrics.EvalRMSE, c.classify)
			}
			t.Logf("%s: %d iterations, train rows %d, eval accuracy %v, eval RMSE %v", c.name, metrics.Iterations, metrics.TrainRows,
				deref(metrics.EvalAccuracy), deref(metrics.EvalRMSE))

			// The Go trainer on the same rows, predicting the eval split.
			ref, classes := goModel(t, e, artifacts.MustParseURI(c.examples), features, c.label, c.trainer, c.classify)
			evalX := e.numbers(artifacts.MustParseURI(c.examples), artifacts.TypeDataset, "eval", features)
			want, err := ref.Predict(evalX)
			if err != nil {
				t.Fatal(err)
			}
			pred := e.infer(c.name+"-infer", map[string]string{"examples": c.raw, "model": mu.String()})
			// Rows with a null in a raw input column are dead letters,
			// unless the model is fused behind the transform, which imputes.
			dead := e.deadRows(pred, "eval")
			if c.tg != "" && len(dead) > 0 {
				t.Errorf("the fused model dead-lettered rows %v; its transform imputes nulls", dead)
			}
			kept := func(n int) []int {
				var out []int
				for i := range n {
					if !dead[i] {
						out = append(out, i)
					}
				}
				return out
			}
			if c.classify {
				labels := e.column(pred, artifacts.TypePredictions, "eval", "label")
				rows := kept(len(want.Labels))
				if len(labels) != len(rows) || len(rows) < len(want.Labels)*9/10 {
					t.Fatalf("%d predictions, %d reference rows, %d dead letters", len(labels), len(want.Labels), len(dead))
				}
				k := len(classes)
				for ci, cl := range classes {
					scores := e.column(pred, artifacts.TypePredictions, "eval", "score_"+cl)
					for j, s := range scores {
						got, _ := strconv.ParseFloat(s, 64)
						if w := want.Probabilities[rows[j]*k+ci]; math.Abs(got-w) > 1e-5 {
							t.Fatalf("eval row %d score_%s: infer %v, Go %v", rows[j], cl, got, w)
						}
					}
				}
				for j, l := range labels {
					if w := classes[want.Labels[rows[j]]]; l != w {
						t.Fatalf("eval row %d: infer says %s, Go %s", rows[j], l, w)
					}
				}
				return
			}
			values := e.column(pred, artifacts.TypePredictions, "eval", ctrain.OutputPrediction)
			rows := kept(len(want.Values))
			if len(values) != len(rows) || len(rows) < len(want.Values)*9/10 {
				t.Fatalf("%d predictions, %d reference rows, %d dead letters", len(values), len(want.Values), len(dead))
			}
			for j, s := range values {
				got, _ := strconv.ParseFloat(s, 64)
				if w := want.Values[rows[j]]; math.Abs(got-w) > 1e-5*math.Max(1, math.Abs(w)) {
					t.Fatalf("eval row %d: infer %v, Go %v", rows[j], got, w)
				}
			}
		})
	}
}

func deref(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.4f", *v)
}

// TestFusedModelProperties checks what a fused model records: no feature
// map (each raw input is fed by its namesake column), the classes, and the
// TransformGraph's raw inputs as the model's inputs.
func TestFusedModelProperties(t *testing.T) {
	e := newEnv(t)
	xfd, tg := e.transformed(e.examples("penguins.json"), penguinsSpec)
	mu, err := e.train("m", map[string]string{"examples": xfd, "transform": tg}, map[string]any{"trainer": train.Logistic})
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Open(e.ctx, e.open(mu, artifacts.TypeModel))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Meta.Features) != 0 {
		t.Errorf("fused model features %v, want none", m.Meta.Features)
	}
	if got := strings.Join(m.Meta.Classes, ","); got != "Adelie,Chinstrap,Gentoo" {
		t.Errorf("classes %s", got)
	}
	var ins []string
	for _, in := range m.Sig.Inputs {
		ins = append(ins, in.Name)
	}
	slices.Sort(ins)
	if got := strings.Join(ins, ","); got != "Beak Depth (mm),Beak Length (mm),Body Mass (g),Flipper Length (mm),Island,Sex" {
		t.Errorf("fused inputs %s", got)
	}
	if m.Meta.Name != "logistic" {
		t.Errorf("name %q", m.Meta.Name)
	}
}

// TestPerKey trains one GBDT per island with a threshold that skips the
// smallest island, runs `infer` with the keyed Model, and checks each
// row's prediction against a Go model fitted on that island's rows alone.
func TestPerKey(t *testing.T) {
	e := newEnv(t)
	penguins := e.examples("penguins.json")
	islands := e.column(artifacts.MustParseURI(penguins), artifacts.TypeDataset, "train", "Island")
	counts := map[string]int{}
	for _, is := range islands {
		counts[is]++
	}
	smallest := ""
	for k, n := range counts {
		if smallest == "" || n < counts[smallest] {
			smallest = k
		}
	}
	minRows := counts[smallest] + 1
	mu, err := e.train("keyed", map[string]string{"examples": penguins}, map[string]any{
		"trainer": train.GBDT, "hparams": `{"trees": 20, "max_depth": 3}`, "label": "Species", "features": strings.Join(penguinFeatures, ","),
		"per-key": "Island", "min-rows-per-key": int64(minRows), "workers": int64(2)})
	if err != nil {
		t.Fatal(err)
	}
	a := e.open(mu, artifacts.TypeModel)
	skipped := property[[]train.SkippedKey](e, mu, artifacts.TypeModel, train.PropSkippedKeys)
	if len(skipped) != 1 || skipped[0].Key != smallest || skipped[0].Rows != counts[smallest] {
		t.Errorf("skipped %+v, want %s with %d rows", skipped, smallest, counts[smallest])
	}
	perKey := property[map[string]train.KeyMetrics](e, mu, artifacts.TypeModel, train.PropTrainingPerKey)
	m, err := model.Open(e.ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if m.Keyed == nil || len(m.Keyed.Models) != len(counts)-1 || m.Keyed.KeyColumn != "Island" {
		t.Fatalf("keyed index %+v", m.Keyed)
	}
	for k, f := range m.Keyed.Models {
		if perKey[k].File != f || perKey[k].TrainRows != counts[k] {
			t.Errorf("key %s: metrics %+v, file %s, %d rows", k, perKey[k], f, counts[k])
		}
		t.Logf("island %s: %s, %d train rows, eval accuracy %s", k, f, perKey[k].TrainRows, deref(perKey[k].EvalAccuracy))
	}

	// Predict the eval rows of the kept islands with per-island Go models.
	pu := artifacts.MustParseURI(penguins)
	x := e.numbers(pu, artifacts.TypeDataset, "train", penguinFeatures)
	labels := e.column(pu, artifacts.TypeDataset, "train", "Species")
	classes := []string{"Adelie", "Chinstrap", "Gentoo"}
	f := len(penguinFeatures)
	refs := map[string]ctrain.Model{}
	for k := range m.Keyed.Models {
		d := ctrain.Data{Features: penguinFeatures, Classes: classes}
		for i, is := range islands {
			if is == k && labels[i] != "" {
				d.X = append(d.X, x[i*f:(i+1)*f]...)
				d.Y = append(d.Y, float64(slices.Index(classes, labels[i])))
			}
		}
		if refs[k], err = ctrain.FitGBDT(e.ctx, d, nil, ctrain.GBDTOptions{Trees: 20, MaxDepth: 3}); err != nil {
			t.Fatal(err)
		}
	}
	// infer dead-letters the skipped island's rows and the rows with NaN.
	pred := e.infer("keyed-infer", map[string]string{"examples": penguins, "model": mu.String()})
	evalIslands := e.column(pred, artifacts.TypePredictions, "eval", "Island")
	got := e.column(pred, artifacts.TypePredictions, "eval", "label")
	evalX := e.numbers(pred, artifacts.TypePredictions, "eval", penguinFeatures)
	checked := 0
	for i, is := range evalIslands {
		p, err := refs[is].Predict(evalX[i*f : (i+1)*f])
		if err != nil {
			t.Fatal(err)
		}
		if w := classes[p.Labels[0]]; got[i] != w {
			t.Fatalf("eval row %d (%s): infer %s, Go %s", i, is, got[i], w)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no eval row predicted")
	}
}

// TestFileNames checks that every key maps to a distinct safe file name.
func TestFileNames(t *testing.T) {
	keys := []string{"Biscoe", "a/b", "a_b", "a b", "", "..", "é", strings.Repeat("x", 100), "A-1"}
	seen := map[string]string{}
	for _, k := range keys {
		f := train.FileName(k)
		if err := artifacts.CheckFileName(f); err != nil || strings.ContainsAny(f, "/ ") || !strings.HasSuffix(f, ".onnx") {
			t.Errorf("key %q: file %q is not safe (%v)", k, f, err)
		}
		if prev, ok := seen[f]; ok {
			t.Errorf("keys %q and %q share %s", prev, k, f)
		}
		seen[f] = k
	}
	if f := train.FileName("Biscoe"); f != "Biscoe.onnx" {
		t.Errorf("Biscoe -> %s", f)
	}
}
