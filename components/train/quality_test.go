package train_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/components/train"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// TestQualityOnVega is the quality reference on the numeric
// columns (the categorical ones need the transform step): penguins species
// with logistic regression and GBDT, within 1 accuracy point of
// scikit-learn's LogisticRegression and HistGradientBoostingClassifier (1
// point is under one of the 69 eval rows, so: no more eval rows wrong);
// cars' miles per gallon with ridge and GBDT, eval RMSE within 3% of Ridge
// and HistGradientBoostingRegressor. Every fifth complete row is eval;
// features are standardised on the train rows, as a transform would.
func TestQualityOnVega(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		file, label string
		features    []string
	}{
		{"penguins.json", "Species", penguinFeatures},
		{"cars.json", "Miles_per_Gallon", carFeatures[:5]},
	} {
		t.Run(c.file, func(t *testing.T) {
			var ref struct {
				reference
				Linear float64 `json:"linear"`
				Trees  float64 `json:"trees"`
			}
			classify := c.label == "Species"
			sklearn(t, pyLoad+fmt.Sprintf(`
import pandas as pd
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
f, label, classify = %q.split("|"), %q, %s
df = pd.read_json(%q).dropna(subset=f + [label]).reset_index(drop=True)
x = df[f].to_numpy(float)
if classify:
    classes = sorted(df[label].unique())
    y = df[label].map({c: i for i, c in enumerate(classes)}).to_numpy(float)
else:
    classes, y = None, df[label].to_numpy(float)
ev = np.arange(len(y)) %% 5 == 0
mu, sd = x[~ev].mean(0), x[~ev].std(0)
x = (x - mu) / sd
tx, ty, ex, ey = x[~ev], y[~ev], x[ev], y[ev]
hp = dict(max_iter=100, max_depth=3, learning_rate=0.1, max_leaf_nodes=None, l2_regularization=1.0, early_stopping=False, random_state=0)
if classify:
    lin = LogisticRegression(C=1.0, max_iter=10000).fit(tx, ty).score(ex, ey)
    trees = HistGradientBoostingClassifier(min_samples_leaf=5, **hp).fit(tx, ty).score(ex, ey)
else:
    rmse = lambda m: float(np.sqrt(np.mean((m.fit(tx, ty).predict(ex) - ey) ** 2)))
    lin, trees = rmse(Ridge(alpha=1.0)), rmse(HistGradientBoostingRegressor(min_samples_leaf=20, **hp))
emit(features=f, classes=classes, x=tx, y=ty, eval_x=ex, eval_y=ey, linear=lin, trees=trees)
`, strings.Join(c.features, "|"), c.label, map[bool]string{true: "True", false: "False"}[classify], testenv.VegaData(t, c.file)), &ref)
			tr, ev := ref.data()
			o := train.GBDTOptions{Trees: 100, MaxDepth: 3, LearningRate: 0.1, MinChildWeight: 1, Lambda: 1}
			if classify {
				lin, err := train.FitLogistic(ctx, tr, train.LogisticOptions{Lambda: 1})
				if err != nil {
					t.Fatal(err)
				}
				trees, err := train.FitGBDT(ctx, tr, nil, o)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range []struct {
					name  string
					model train.Model
					want  float64
				}{{"logistic", lin, ref.Linear}, {"gbdt", trees, ref.Trees}} {
					p, err := m.model.Predict(ev.X)
					if err != nil {
						t.Fatal(err)
					}
					acc := accuracy(p.Labels, ev.Y)
					t.Logf("penguins %s: eval accuracy %.4f, sklearn %.4f (%d eval rows)", m.name, acc, m.want, len(ev.Y))
					if acc < m.want-0.01 {
						t.Errorf("%s accuracy %.4f is more than 1 point below sklearn's %.4f", m.name, acc, m.want)
					}
				}
				return
			}
			tr.Classes, ev.Classes = nil, nil
			lin, err := train.FitLinear(ctx, tr, train.LinearOptions{Lambda: 1})
			if err != nil {
				t.Fatal(err)
			}
			o.MinChildWeight = 20
			trees, err := train.FitGBDT(ctx, tr, nil, o)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []struct {
				name  string
				model train.Model
				want  float64
			}{{"ridge", lin, ref.Linear}, {"gbdt", trees, ref.Trees}} {
				p, err := m.model.Predict(ev.X)
				if err != nil {
					t.Fatal(err)
				}
				s := 0.0
				for i, v := range p.Values {
					s += (v - ev.Y[i]) * (v - ev.Y[i])
				}
				rmse := math.Sqrt(s / float64(len(ev.Y)))
				t.Logf("cars %s: eval RMSE %.4f, sklearn %.4f (%d eval rows)", m.name, rmse, m.want, len(ev.Y))
				if rmse > m.want*1.03 {
					t.Errorf("%s RMSE %.4f is more than 3%% above sklearn's %.4f", m.name, rmse, m.want)
				}
			}
		})
	}
}
