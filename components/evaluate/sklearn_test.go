package evaluate_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/mlsteps/mlsteps/components/evaluate"
)

// sklearnCases fits simple scikit-learn models on real datasets (breast
// cancer: 2 classes, wine: 3, diabetes: regression) trained on half the
// rows, scores every row, and returns the scores with scikit-learn's
// metrics of them, unweighted and with random weights in [0.5, 2).
// "rounded" cases round the probabilities to one decimal so that many
// rows tie.
const sklearnCases = `
import json, sys, numpy as np
from sklearn import datasets, metrics
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression, LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler, label_binarize

out = {"classification": [], "regression": []}
rng = np.random.default_rng(0)

def fit(load, rounded):
    x, y = load(return_X_y=True)
    m = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=5000)).fit(x[::2], y[::2])
    p = m.predict_proba(x)
    if rounded:
        p[:, 1] = np.round(p[:, 1], 1); p[:, 0] = 1 - p[:, 1]
    return y, p

def classification(name, y, p, w):
    k = p.shape[1]
    pred = p.argmax(1)
    r = {"name": name, "classes": k, "labels": y.tolist(), "scores": p.ravel().tolist(),
         "weights": None if w is None else w.tolist()}
    m = {}
    m["accuracy"] = metrics.accuracy_score(y, pred, sample_weight=w)
    pr, rc, f1, sup = metrics.precision_recall_fscore_support(y, pred, sample_weight=w, zero_division=0)
    for c in range(k):
        m["precision/%d" % c], m["recall/%d" % c], m["f1/%d" % c] = pr[c], rc[c], f1[c]
        m["auc/%d" % c] = metrics.roc_auc_score(y == c, p[:, c], sample_weight=w)
        m["average_precision/%d" % c] = metrics.average_precision_score(y == c, p[:, c], sample_weight=w)
    for avg in ["macro", "micro", "weighted"]:
        a = metrics.precision_recall_fscore_support(y, pred, average=avg, sample_weight=w, zero_division=0)
        m[avg + "_precision"], m[avg + "_recall"], m[avg + "_f1"] = a[0], a[1], a[2]
    m["log_loss"] = metrics.log_loss(y, p, sample_weight=w, labels=list(range(k)))
    if k == 2:
        m["brier_score"] = metrics.brier_score_loss(y, p[:, 1], sample_weight=w)
        m["auc"] = metrics.roc_auc_score(y, p[:, 1], sample_weight=w)
        m["average_precision"] = metrics.average_precision_score(y, p[:, 1], sample_weight=w)
    else:
        m["brier_score"] = float(np.average(((p - np.eye(k)[y]) ** 2).sum(1), weights=w))
        m["auc"] = metrics.roc_auc_score(y, p, multi_class="ovr", average="macro", sample_weight=w)
        m["average_precision"] = metrics.average_precision_score(label_binarize(y, classes=list(range(k))), p, average="macro", sample_weight=w)
    r["metrics"] = {a: float(b) for a, b in m.items()}
    r["confusion_matrix"] = metrics.confusion_matrix(y, pred, sample_weight=w).astype(float).tolist()
    pos = 1 if k == 2 else 0
    fpr, tpr, th = metrics.roc_curve(y == pos, p[:, pos], sample_weight=w, drop_intermediate=False)
    r["roc"] = [fpr.tolist(), tpr.tolist(), th.tolist()]
    if k == 2 and w is None:
        t, q = calibration_curve(y, p[:, 1], n_bins=10, strategy="uniform")
        r["calibration_true"], r["calibration_pred"] = t.tolist(), q.tolist()
    out["classification"].append(r)

for name, load in [("breast_cancer", datasets.load_breast_cancer), ("wine", datasets.load_wine)]:
    for rounded in [False, True]:
        if rounded and name == "wine":
            continue
        y, p = fit(load, rounded)
        w = rng.uniform(0.5, 2, len(y))
        tag = name + ("_rounded" if rounded else "")
        classification(tag, y, p, None)
        classification(tag + "_weighted", y, p, w)

x, y = datasets.load_diabetes(return_X_y=True)
p = LinearRegression().fit(x[::2], y[::2]).predict(x)
for w in [None, rng.uniform(0.5, 2, len(y))]:
    mse = metrics.mean_squared_error(y, p, sample_weight=w)
    m = {"mse": mse, "rmse": np.sqrt(mse), "mae": metrics.mean_absolute_error(y, p, sample_weight=w),
         "mape": metrics.mean_absolute_percentage_error(y, p, sample_weight=w),
         "r2": metrics.r2_score(y, p, sample_weight=w),
         "mean_label": np.average(y, weights=w), "mean_prediction": np.average(p, weights=w)}
    out["regression"].append({"name": "diabetes" + ("" if w is None else "_weighted"), "targets": y.tolist(),
        "predictions": p.tolist(), "weights": None if w is None else w.tolist(),
        "metrics": {a: float(b) for a, b in m.items()}})
json.dump(out, sys.stdout)
`

type sklearnClassification struct {
	Name            string             `json:"name"`
	Classes         int                `json:"classes"`
	Labels          []int              `json:"labels"`
	Scores          []float64          `json:"scores"`
	Weights         []float64          `json:"weights"`
	Metrics         map[string]float64 `json:"metrics"`
	ConfusionMatrix [][]float64        `json:"confusion_matrix"`
	CalibrationTrue []float64          `json:"calibration_true"`
	CalibrationPred []float64          `json:"calibration_pred"`
	ROC             [3][]float64       `json:"roc"` // fpr, tpr, thresholds
}

type sklearnRegression struct {
	Name        string             `json:"name"`
	Targets     []float64          `json:"targets"`
	Predictions []float64          `json:"predictions"`
	Weights     []float64          `json:"weights"`
	Metrics     map[string]float64 `json:"metrics"`
}

// TestSklearn compares every metric with scikit-learn's on the same
// labels, scores and weights, to 1e-9 relative.
func TestSklearn(t *testing.T) {
	var ref struct {
		Classification []sklearnClassification `json:"classification"`
		Regression     []sklearnRegression     `json:"regression"`
	}
	python(t, nil, sklearnCases, &ref)
	const rel = 1e-9
	for _, c := range ref.Classification {
		t.Run(c.Name, func(t *testing.T) {
			classes := make([]string, c.Classes)
			for i := range classes {
				classes[i] = fmt.Sprint(i)
			}
			e, err := evaluate.New(evaluate.Options{Classes: classes, CurvePoints: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Add(evaluate.Batch{Labels: c.Labels, Scores: c.Scores, Weights: c.Weights}); err != nil {
				t.Fatal(err)
			}
			res, err := e.Result(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := res.Overall().Scalars()
			worst := 0.0
			for name, want := range c.Metrics {
				g, ok := got[name]
				if !ok {
					t.Errorf("%s: not computed", name)
					continue
				}
				if !near(g, want, rel) {
					t.Errorf("%s = %.17g, scikit-learn %.17g", name, g, want)
				}
				worst = max(worst, math.Abs(g-want)/max(math.Abs(want), 1e-300))
			}
			cm := res.Overall().Classification.ConfusionMatrix
			for i, row := range c.ConfusionMatrix {
				for j, want := range row {
					if !near(float64(cm[i][j]), want, rel) {
						t.Errorf("confusion_matrix[%d][%d] = %v, scikit-learn %v", i, j, cm[i][j], want)
					}
				}
			}
			roc := res.Overall().Classification.ROC
			if len(roc) != len(c.ROC[0]) {
				t.Fatalf("ROC curve of %d points, scikit-learn %d", len(roc), len(c.ROC[0]))
			}
			for i, p := range roc {
				if !near(p.FPR, c.ROC[0][i], rel) || !near(p.TPR, c.ROC[1][i], rel) || p.Threshold != c.ROC[2][i] {
					t.Errorf("ROC point %d: %+v, scikit-learn fpr %v tpr %v threshold %v", i, p, c.ROC[0][i], c.ROC[1][i], c.ROC[2][i])
				}
			}
			if c.CalibrationTrue != nil {
				var nonEmpty []evaluate.CalibrationBin
				for _, b := range res.Overall().Classification.Calibration.Bins {
					if b.Weight > 0 {
						nonEmpty = append(nonEmpty, b)
					}
				}
				if len(nonEmpty) != len(c.CalibrationTrue) {
					t.Fatalf("%d non-empty calibration bins, scikit-learn %d", len(nonEmpty), len(c.CalibrationTrue))
				}
				for i, b := range nonEmpty {
					if !near(float64(b.FractionPositive), c.CalibrationTrue[i], rel) || !near(float64(b.MeanPredicted), c.CalibrationPred[i], rel) {
						t.Errorf("calibration bin %v: (%v, %v), scikit-learn (%v, %v)", b.Lower, b.FractionPositive, b.MeanPredicted,
							c.CalibrationTrue[i], c.CalibrationPred[i])
					}
				}
			}
			t.Logf("%d rows, %d classes: %d metrics, the confusion matrix and %d ROC points agree; worst relative difference %.2g",
				len(c.Labels), c.Classes, len(c.Metrics), len(roc), worst)
		})
	}
	for _, c := range ref.Regression {
		t.Run(c.Name, func(t *testing.T) {
			e, err := evaluate.New(evaluate.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Add(evaluate.Batch{Targets: c.Targets, Predictions: c.Predictions, Weights: c.Weights}); err != nil {
				t.Fatal(err)
			}
			res, err := e.Result(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := res.Overall().Scalars()
			worst := 0.0
			for name, want := range c.Metrics {
				if g := got[name]; !near(g, want, rel) {
					t.Errorf("%s = %.17g, scikit-learn %.17g", name, g, want)
				} else {
					worst = max(worst, math.Abs(g-want)/math.Abs(want))
				}
			}
			t.Logf("%d rows: %d metrics agree; worst relative difference %.2g", len(c.Targets), len(c.Metrics), worst)
		})
	}
}
