package train_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/steps/train"
)

// TestQualityAgainstSklearn is the quality reference through the
// step: penguins species from beak, flipper, body mass, island and sex
// (one-hot and standardised by the transform step, split by `import` with
// seed 7), where builtin:logistic and builtin:gbdt must reach eval accuracy
// within 1 point of scikit-learn's LogisticRegression and
// HistGradientBoostingClassifier fitted on the same transformed train rows;
// and cars' miles per gallon, where builtin:linear and builtin:gbdt must
// reach eval RMSE within 3% of Ridge and HistGradientBoostingRegressor.
// The transformed splits go to python as CSV (python3 has no pyarrow).
func TestQualityAgainstSklearn(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		data, spec, label string
		classify          bool
		minChild          string
		trainers          []string
	}{
		{"penguins.json", penguinsSpec, "Species", true, "5", []string{train.Logistic, train.GBDT}},
		{"cars.json", carsSpec, "Miles_per_Gallon", false, "20", []string{train.Linear, train.GBDT}},
	} {
		t.Run(c.data, func(t *testing.T) {
			xfd, tg := e.transformed(e.examples(c.data), c.spec)
			features := featureOrder(e, tg)
			dir := t.TempDir()
			for _, split := range []string{"train", "eval"} {
				e.writeCSV(filepath.Join(dir, split+".csv"), artifacts.MustParseURI(xfd), split, features, c.label)
			}
			var ref struct {
				Linear float64 `json:"linear"`
				Trees  float64 `json:"trees"`
				Rows   int     `json:"rows"`
			}
			python(t, fmt.Sprintf(`
import json, sys, numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
tr, ev = pd.read_csv(%q), pd.read_csv(%q)
label, classify = %q, %s
tx, ex = tr.drop(columns=[label]).to_numpy(float), ev.drop(columns=[label]).to_numpy(float)
ty, ey = tr[label].to_numpy(), ev[label].to_numpy()
hp = dict(max_iter=100, max_depth=3, learning_rate=0.1, max_leaf_nodes=None, l2_regularization=1.0,
          min_samples_leaf=%s, early_stopping=False, random_state=0)
if classify:
    lin = LogisticRegression(C=1.0, max_iter=10000).fit(tx, ty).score(ex, ey)
    trees = HistGradientBoostingClassifier(**hp).fit(tx, ty).score(ex, ey)
else:
    rmse = lambda m: float(np.sqrt(np.mean((m.fit(tx, ty).predict(ex) - ey) ** 2)))
    lin, trees = rmse(Ridge(alpha=1.0)), rmse(HistGradientBoostingRegressor(**hp))
json.dump({"linear": lin, "trees": trees, "rows": len(ey)}, sys.stdout)
`, filepath.Join(dir, "train.csv"), filepath.Join(dir, "eval.csv"), c.label, map[bool]string{true: "True", false: "False"}[c.classify], c.minChild), &ref)
			for _, trainer := range c.trainers {
				hp := `{}`
				if trainer == train.GBDT {
					hp = `{"trees": 100, "max_depth": 3, "learning_rate": 0.1, "lambda": 1, "min_child_weight": 1}`
					if !c.classify {
						hp = strings.Replace(hp, `"min_child_weight": 1`, `"min_child_weight": 20`, 1)
					}
				}
				name := strings.TrimSuffix(c.data, ".json") + "-" + strings.TrimPrefix(trainer, "builtin:")
				mu, err := e.train(name, map[string]string{"examples": xfd, "transform": tg}, map[string]any{"trainer": trainer, "hparams": hp})
				if err != nil {
					t.Fatal(err)
				}
				m := property[train.Metrics](e, mu, artifacts.TypeModel, train.PropTraining)
				want := ref.Linear
				if trainer == train.GBDT {
					want = ref.Trees
				}
				if m.EvalRows != ref.Rows {
					t.Errorf("%s: %d eval rows, sklearn %d", name, m.EvalRows, ref.Rows)
				}
				if c.classify {
					t.Logf("%s: eval accuracy %.4f, sklearn %.4f (%d eval rows)", name, *m.EvalAccuracy, want, m.EvalRows)
					if *m.EvalAccuracy < want-0.01 {
						t.Errorf("%s: eval accuracy %.4f is more than 1 point below sklearn's %.4f", name, *m.EvalAccuracy, want)
					}
					continue
				}
				t.Logf("%s: eval RMSE %.4f, sklearn %.4f (%d eval rows)", name, *m.EvalRMSE, want, m.EvalRows)
				if *m.EvalRMSE > want*1.03 {
					t.Errorf("%s: eval RMSE %.4f is more than 3%% above sklearn's %.4f", name, *m.EvalRMSE, want)
				}
			}
		})
	}
}
