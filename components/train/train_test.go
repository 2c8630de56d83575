package train_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/components/train"
)

// TestDeterministic fits each trainer twice, with the histogram work spread
// over one and over four goroutines, and expects identical ONNX bytes. The
// synthetic GBDT case has enough rows for the parallel histogram path and
// for binning from a seeded sample.
func TestDeterministic(t *testing.T) {
	ctx := context.Background()
	penguins := vega(t, "penguins.json", penguinFeatures, "Species")
	fits := map[string]func(workers int) (train.Model, error){
		"linear": func(int) (train.Model, error) {
			d := complete(penguins)
			d.Classes = nil
			return train.FitLinear(ctx, d, train.LinearOptions{Lambda: 0.5})
		},
		"logistic": func(int) (train.Model, error) {
			return train.FitLogistic(ctx, complete(penguins), train.LogisticOptions{Lambda: 0.5})
		},
		"gbdt": func(workers int) (train.Model, error) {
			return train.FitGBDT(ctx, penguins, nil, train.GBDTOptions{Trees: 20, Seed: 7, Workers: workers})
		},
		"gbdt/synthetic": func(workers int) (train.Model, error) {
			return train.FitGBDT(ctx, synthetic(210_000, 4, 1), nil, train.GBDTOptions{Trees: 3, MaxDepth: 4, Seed: 7, Workers: workers})
		},
	}
	for name, fit := range fits {
		t.Run(name, func(t *testing.T) {
			var models [][]byte
			for _, workers := range []int{1, 4} {
				m, err := fit(workers)
				if err != nil {
					t.Fatal(err)
				}
				b, err := m.ONNX()
				if err != nil {
					t.Fatal(err)
				}
				models = append(models, b)
			}
			if !bytes.Equal(models[0], models[1]) {
				t.Error("two fits gave different ONNX bytes")
			}
		})
	}
}

// TestGBDTMissingValues hides a fifth of penguins' features at random and
// checks the trees learn a direction for NaN both ways, the export agrees
// with Go on rows full of NaN, and accuracy stays close to the complete
// data's.
func TestGBDTMissingValues(t *testing.T) {
	ctx := context.Background()
	penguins := vega(t, "penguins.json", penguinFeatures, "Species")
	holey := rows(penguins, func(int, []float64) bool { return true })
	state := uint32(1)
	for i := range holey.X {
		state = state*1664525 + 1013904223 // a fixed LCG: the same holes every run
		if state>>24 < 51 {
			holey.X[i] = math.NaN()
		}
	}
	tr, ev := split(holey)
	m, err := train.FitGBDT(ctx, tr, &ev, train.GBDTOptions{Trees: 60, MaxDepth: 4})
	if err != nil {
		t.Fatal(err)
	}
	left, right := 0, 0
	for _, tree := range m.Trees {
		for _, n := range tree.Nodes {
			if n.Feature >= 0 && n.MissingLeft {
				left++
			} else if n.Feature >= 0 {
				right++
			}
		}
	}
	if left == 0 || right == 0 {
		t.Errorf("NaN goes left at %d splits and right at %d: expected both", left, right)
	}
	parity(t, m, holey.X, len(holey.Features))
	p, err := m.Predict(ev.X)
	if err != nil {
		t.Fatal(err)
	}
	acc := accuracy(p.Labels, ev.Y)
	t.Logf("penguins with 20%% of values missing: eval accuracy %.3f; NaN left at %d splits, right at %d", acc, left, right)
	if acc < 0.85 {
		t.Errorf("eval accuracy %.3f with missing values, want at least 0.85", acc)
	}
}

func accuracy(labels []int, y []float64) float64 {
	right := 0
	for i, l := range labels {
		if l == int(y[i]) {
			right++
		}
	}
	return float64(right) / float64(len(y))
}

// TestGBDTEarlyStopping trains far more rounds than cars needs and expects
// boosting to stop, keeping the trees up to the best eval round.
func TestGBDTEarlyStopping(t *testing.T) {
	cars := vega(t, "cars.json", carFeatures, "Miles_per_Gallon")
	tr, ev := split(cars)
	m, err := train.FitGBDT(context.Background(), tr, &ev, train.GBDTOptions{Trees: 2000, LearningRate: 0.3, EarlyStoppingRounds: 10})
	if err != nil {
		t.Fatal(err)
	}
	r := m.Report
	if !r.Stopped || len(r.EvalLoss) >= 2000 || len(r.EvalLoss) != r.Iterations+10 || len(m.Trees) != r.Iterations {
		t.Fatalf("stopped %v after %d rounds, kept %d trees, iterations %d", r.Stopped, len(r.EvalLoss), len(m.Trees), r.Iterations)
	}
	best := r.EvalLoss[r.Iterations-1]
	for i, l := range r.EvalLoss {
		if l < best {
			t.Errorf("round %d had eval loss %.4f below the kept round's %.4f", i, l, best)
		}
	}
	if r.Loss[len(r.Loss)-1] >= r.Loss[0] {
		t.Errorf("training loss did not fall: %v ... %v", r.Loss[0], r.Loss[len(r.Loss)-1])
	}
	t.Logf("cars: stopped after %d rounds, kept %d; eval RMSE %.3f", len(r.EvalLoss), r.Iterations, math.Sqrt(best))
}

// TestCancel expects the trainers to stop on a cancelled context: GBDT
// mid-run (a million rounds would not end otherwise), the others before
// they start.
func TestCancel(t *testing.T) {
	penguins := complete(vega(t, "penguins.json", penguinFeatures, "Species"))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	if _, err := train.FitGBDT(ctx, penguins, nil, train.GBDTOptions{Trees: 1_000_000}); !errors.Is(err, context.Canceled) {
		t.Errorf("gbdt: %v, want context.Canceled", err)
	}
	if _, err := train.FitLogistic(ctx, penguins, train.LogisticOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("logistic: %v, want context.Canceled", err)
	}
	reg := penguins
	reg.Classes = nil
	if _, err := train.FitLinear(ctx, reg, train.LinearOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("linear: %v, want context.Canceled", err)
	}
}

// TestBadInput expects ErrInvalid with a message naming the problem.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	ok := train.Data{X: []float64{1, 2, 3, 4, 5, 6}, Features: []string{"a", "b"}, Y: []float64{0, 1, 1}, Classes: []string{"no", "yes"}}
	reg := ok
	reg.Classes = nil
	with := func(d train.Data, f func(*train.Data)) train.Data {
		d.X, d.Y = append([]float64(nil), d.X...), append([]float64(nil), d.Y...)
		f(&d)
		return d
	}
	all := func(d train.Data) error {
		if _, err := train.FitGBDT(ctx, d, nil, train.GBDTOptions{}); err == nil {
			return errors.New("gbdt accepted it")
		} else if d.Classes == nil {
			if _, err2 := train.FitLinear(ctx, d, train.LinearOptions{}); err2 == nil {
				return errors.New("linear accepted it")
			}
			return err
		} else {
			if _, err2 := train.FitLogistic(ctx, d, train.LogisticOptions{}); err2 == nil {
				return errors.New("logistic accepted it")
			}
			return err
		}
	}
	cases := []struct {
		name string
		err  func() error
		want string
	}{
		{"empty X", func() error { return all(with(ok, func(d *train.Data) { d.X, d.Y = nil, nil })) }, "no rows"},
		{"no features", func() error { return all(with(ok, func(d *train.Data) { d.Features = nil })) }, "no features"},
		{"ragged X", func() error { return all(with(ok, func(d *train.Data) { d.X = d.X[:5] })) }, "not a multiple"},
		{"fewer targets", func() error { return all(with(ok, func(d *train.Data) { d.Y = d.Y[:2] })) }, "3 rows in X but 2 targets"},
		{"weights", func() error { return all(with(ok, func(d *train.Data) { d.Weights = []float64{1} })) }, "3 rows but 1 weights"},
		{"negative weight", func() error { return all(with(ok, func(d *train.Data) { d.Weights = []float64{1, -1, 1} })) }, "row 1: weight -1"},
		{"class out of range", func() error { return all(with(ok, func(d *train.Data) { d.Y[2] = 2 })) }, "row 2: class index 2 is not one of 0..1"},
		{"fractional class", func() error { return all(with(ok, func(d *train.Data) { d.Y[0] = 0.5 })) }, "row 0: class index 0.5"},
		{"one class", func() error {
			return all(with(ok, func(d *train.Data) { d.Classes = []string{"x"}; d.Y = []float64{0, 0, 0} }))
		}, "at least 2 classes"},
		{"NaN target", func() error { return all(with(reg, func(d *train.Data) { d.Y[1] = math.NaN() })) }, "row 1: target is NaN"},
		{"infinite feature", func() error { return all(with(reg, func(d *train.Data) { d.X[3] = math.Inf(1) })) }, `row 1 feature "b" is +Inf`},
		{"NaN for linear", func() error {
			_, err := train.FitLinear(ctx, with(reg, func(d *train.Data) { d.X[2] = math.NaN() }), train.LinearOptions{})
			return err
		}, `row 1 feature "a" is NaN: impute missing values before training`},
		{"NaN for logistic", func() error {
			_, err := train.FitLogistic(ctx, with(ok, func(d *train.Data) { d.X[5] = math.NaN() }), train.LogisticOptions{})
			return err
		}, `row 2 feature "b" is NaN`},
		{"classes for linear", func() error { _, err := train.FitLinear(ctx, ok, train.LinearOptions{}); return err }, "needs a numeric target"},
		{"no classes for logistic", func() error { _, err := train.FitLogistic(ctx, reg, train.LogisticOptions{}); return err }, "needs classes"},
		{"collinear", func() error {
			_, err := train.FitLinear(ctx, with(reg, func(d *train.Data) { d.X = []float64{1, 2, 2, 4, 3, 6} }), train.LinearOptions{})
			return err
		}, "collinear or constant"},
		{"early stopping without eval", func() error {
			_, err := train.FitGBDT(ctx, ok, nil, train.GBDTOptions{EarlyStoppingRounds: 5})
			return err
		}, "early stopping needs eval data"},
		{"eval features", func() error {
			ev := with(ok, func(d *train.Data) { d.Features = []string{"a", "c"} })
			_, err := train.FitGBDT(ctx, ok, &ev, train.GBDTOptions{})
			return err
		}, `eval feature 1 is "c", train feature 1 is "b"`},
		{"max bins", func() error { _, err := train.FitGBDT(ctx, ok, nil, train.GBDTOptions{MaxBins: 256}); return err }, "max bins 256"},
		{"predict shape", func() error {
			m, err := train.FitGBDT(ctx, ok, nil, train.GBDTOptions{Trees: 1})
			if err != nil {
				return err
			}
			_, err = m.Predict([]float64{1, 2, 3})
			return err
		}, "not a multiple of the model's 2 features"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.err()
			if !errors.Is(err, train.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want ErrInvalid saying %q", err, c.want)
			}
		})
	}
}

// TestWeightsEqualDuplicates expects a row of weight 2 to count as that row
// twice: the same model for logistic regression (up to the solver's
// tolerance) and the same predictions for GBDT.
func TestWeightsEqualDuplicates(t *testing.T) {
	ctx := context.Background()
	penguins := complete(vega(t, "penguins.json", penguinFeatures, "Species"))
	f := len(penguins.Features)
	weighted := rows(penguins, func(int, []float64) bool { return true })
	dup := rows(penguins, func(int, []float64) bool { return true })
	weighted.Weights = make([]float64, penguins.Rows())
	for i := range weighted.Weights {
		weighted.Weights[i] = 1
		if i%3 == 0 {
			weighted.Weights[i] = 2
			dup.X, dup.Y = append(dup.X, penguins.X[i*f:(i+1)*f]...), append(dup.Y, penguins.Y[i])
		}
	}
	fits := map[string]func(train.Data) (train.Model, error){
		"logistic": func(d train.Data) (train.Model, error) {
			return train.FitLogistic(ctx, d, train.LogisticOptions{Lambda: 1, Tol: 1e-10})
		},
		"gbdt": func(d train.Data) (train.Model, error) {
			return train.FitGBDT(ctx, d, nil, train.GBDTOptions{Trees: 30, MaxDepth: 3})
		},
	}
	for name, fit := range fits {
		t.Run(name, func(t *testing.T) {
			var probs [][]float64
			for _, d := range []train.Data{weighted, dup} {
				m, err := fit(d)
				if err != nil {
					t.Fatal(err)
				}
				p, err := m.Predict(penguins.X)
				if err != nil {
					t.Fatal(err)
				}
				probs = append(probs, p.Probabilities)
			}
			worst := 0.0
			for i, v := range probs[0] {
				worst = math.Max(worst, math.Abs(v-probs[1][i]))
			}
			if worst > 1e-6 {
				t.Errorf("weight 2 and a duplicated row differ by %.3g in probability", worst)
			}
		})
	}
}
