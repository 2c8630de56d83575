package evaluate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/components/evaluate"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

var species = []string{"Adelie", "Chinstrap", "Gentoo"}

// penguins returns the vega penguins with measurements, scored by a fixed
// hand-made softmax model over beak length, beak depth and flipper length
// (about 90% accurate, so every metric has something to say).
func penguins(t testing.TB) evaluate.Batch {
	t.Helper()
	data, err := os.ReadFile(testenv.VegaData(t, "penguins.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw []struct {
		Species, Island string
		Sex             *string
		Beak            *float64 `json:"Beak Length (mm)"`
		Depth           *float64 `json:"Beak Depth (mm)"`
		Flipper         *float64 `json:"Flipper Length (mm)"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	b := evaluate.Batch{Features: map[string][]string{"island": nil, "sex": nil}}
	for _, r := range raw {
		if r.Beak == nil || r.Depth == nil || r.Flipper == nil {
			continue
		}
		sex := "NA"
		if r.Sex != nil {
			sex = *r.Sex
		}
		z := []float64{
			-0.45*(*r.Beak-39) + 0.3*(*r.Depth-18),
			0.35*(*r.Beak-46) + 0.4*(*r.Depth-18) - 0.1*(*r.Flipper-200),
			0.1*(*r.Flipper-205) - 0.8*(*r.Depth-15),
		}
		var sum float64
		for i := range z {
			z[i] = math.Exp(z[i])
			sum += z[i]
		}
		for i := range z {
			b.Scores = append(b.Scores, z[i]/sum)
		}
		for i, s := range species {
			if s == r.Species {
				b.Labels = append(b.Labels, i)
			}
		}
		b.Weights = append(b.Weights, 1+float64(len(b.Weights)%3)/2)
		b.Features["island"] = append(b.Features["island"], r.Island)
		b.Features["sex"] = append(b.Features["sex"], sex)
	}
	return b
}

// part returns rows [lo, hi) of b.
func part(b evaluate.Batch, lo, hi int) evaluate.Batch {
	k := len(b.Scores) / len(b.Labels)
	p := evaluate.Batch{Labels: b.Labels[lo:hi], Scores: b.Scores[lo*k : hi*k], Weights: b.Weights[lo:hi], Features: map[string][]string{}}
	for f, col := range b.Features {
		p.Features[f] = col[lo:hi]
	}
	return p
}

// where returns the rows of b for which keep is true.
func where(b evaluate.Batch, keep func(i int) bool) evaluate.Batch {
	k := len(b.Scores) / len(b.Labels)
	out := evaluate.Batch{Features: map[string][]string{}}
	for i := range b.Labels {
		if keep(i) {
			out.Labels = append(out.Labels, b.Labels[i])
			out.Scores = append(out.Scores, b.Scores[i*k:(i+1)*k]...)
			out.Weights = append(out.Weights, b.Weights[i])
			for f, col := range b.Features {
				out.Features[f] = append(out.Features[f], col[i])
			}
		}
	}
	return out
}

func evaluateAll(t *testing.T, o evaluate.Options, batches ...evaluate.Batch) *evaluate.Result {
	t.Helper()
	e, err := evaluate.New(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := e.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	r, err := e.Result(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

var sliced = evaluate.Options{Classes: species, Slices: [][]string{{}, {"island"}, {"island", "sex"}}, MinSliceSize: 20}

// TestMerge splits the rows into k shards, evaluates each and merges them:
// the result, slices and bootstrap intervals included, is byte-identical to
// one evaluator fed every row.
func TestMerge(t *testing.T) {
	b := penguins(t)
	o := sliced
	o.Bootstrap = evaluate.Bootstrap{Samples: 20, Seed: 3}
	want := marshal(t, evaluateAll(t, o, b))
	n := len(b.Labels)
	for _, k := range []int{2, 3, 7} {
		var shards []*evaluate.Evaluator
		for s := range k {
			e, err := evaluate.New(o)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Add(part(b, s*n/k, (s+1)*n/k)); err != nil {
				t.Fatal(err)
			}
			shards = append(shards, e)
		}
		for _, s := range shards[1:] {
			if err := shards[0].Merge(s); err != nil {
				t.Fatal(err)
			}
		}
		r, err := shards[0].Result(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := marshal(t, r); !bytes.Equal(got, want) {
			t.Errorf("%d shards merged differ from one pass", k)
		}
	}
	other, _ := evaluate.New(evaluate.Options{Classes: species})
	e, _ := evaluate.New(o)
	if err := e.Merge(other); !errors.Is(err, evaluate.ErrInvalid) {
		t.Errorf("merging different slicings: %v, want ErrInvalid", err)
	}
}

// TestSlices checks slice keys and counts, min_slice_size, and that a
// slice's metrics are those of its rows evaluated alone.
func TestSlices(t *testing.T) {
	b := penguins(t)
	r := evaluateAll(t, sliced, b)
	if r.Slices[0].Key != evaluate.OverallKey || r.Overall().ExampleCount != int64(len(b.Labels)) {
		t.Fatalf("first slice %q with %d rows, want Overall with %d", r.Slices[0].Key, r.Slices[0].ExampleCount, len(b.Labels))
	}
	count := map[int]int64{}
	var small, computed int
	for _, s := range r.Slices[1:] {
		count[len(s.Slice)] += s.ExampleCount
		if s.ExampleCount < 20 {
			small++
			if !s.TooSmall || s.Classification != nil || len(s.Scalars()) != 2 {
				t.Errorf("%s: %d rows < 20 but computed", s.Key, s.ExampleCount)
			}
			continue
		}
		computed++
		if s.TooSmall || s.Classification == nil {
			t.Fatalf("%s: %d rows but not computed", s.Key, s.ExampleCount)
		}
		alone := evaluateAll(t, evaluate.Options{Classes: species}, where(b, func(i int) bool {
			for _, fv := range s.Slice {
				if b.Features[fv.Feature][i] != fv.Value {
					return false
				}
			}
			return true
		}))
		if got, want := marshal(t, s.Classification), marshal(t, alone.Overall().Classification); !bytes.Equal(got, want) {
			t.Errorf("%s: metrics differ from its rows evaluated alone", s.Key)
		}
	}
	for depth, c := range count {
		if c != int64(len(b.Labels)) {
			t.Errorf("slices of %d features hold %d rows, want %d", depth, c, len(b.Labels))
		}
	}
	if small == 0 || computed == 0 {
		t.Errorf("%d small and %d computed slices; the test needs both", small, computed)
	}
	if s := r.Slice("island=Biscoe, sex=FEMALE"); s == nil || s.Classification == nil {
		t.Errorf("no computed slice island=Biscoe, sex=FEMALE")
	}
	t.Logf("%d slices: %d computed, %d below min_slice_size", len(r.Slices), computed+1, small)
}

// TestBootstrap checks that intervals are deterministic for a seed,
// change with it, hold the point estimate and have a plausible width.
func TestBootstrap(t *testing.T) {
	b := penguins(t)
	b.Weights = nil
	o := evaluate.Options{Classes: species, Bootstrap: evaluate.Bootstrap{Samples: 200, Seed: 7}}
	r1, r2 := evaluateAll(t, o, b), evaluateAll(t, o, b)
	if !bytes.Equal(marshal(t, r1), marshal(t, r2)) {
		t.Fatal("two runs with seed 7 differ")
	}
	o.Bootstrap.Seed = 8
	if r3 := evaluateAll(t, o, b); bytes.Equal(marshal(t, r1.Overall().Intervals), marshal(t, r3.Overall().Intervals)) {
		t.Error("seeds 7 and 8 give the same intervals")
	}
	s := r1.Overall()
	point := s.Scalars()
	for _, name := range []string{"accuracy", "macro_f1", "weighted_precision", "auc", "average_precision", "log_loss", "brier_score", "calibration", "recall/Adelie", "precision/Chinstrap"} {
		iv := s.Intervals[name]
		if iv.Samples != 200 || !(iv.Lower <= evaluate.Number(point[name]) && evaluate.Number(point[name]) <= iv.Upper) || !(iv.StandardError > 0) {
			t.Errorf("%s = %v: interval %+v does not hold it", name, point[name], iv)
		}
	}
	if _, ok := s.Intervals["example_count"]; ok || len(s.Intervals) != len(point)-2 {
		t.Errorf("intervals for %d metrics, want every one of %d but the 2 counts", len(s.Intervals), len(point))
	}
	// The bootstrap standard error of accuracy is close to the binomial one.
	acc, n := point["accuracy"], float64(s.ExampleCount)
	if se, want := float64(s.Intervals["accuracy"].StandardError), math.Sqrt(acc*(1-acc)/n); se < want/1.5 || se > want*1.5 {
		t.Errorf("accuracy standard error %.4f, binomial %.4f", se, want)
	}
	t.Logf("accuracy %.4f [%.4f, %.4f] se %.4f; auc %.4f [%.4f, %.4f]", acc, s.Intervals["accuracy"].Lower,
		s.Intervals["accuracy"].Upper, s.Intervals["accuracy"].StandardError, point["auc"], s.Intervals["auc"].Lower, s.Intervals["auc"].Upper)
}

func ptr(v float64) *float64 { return &v }

// TestThresholds checks value and change thresholds against a baseline
// that is a worse model on the same rows.
func TestThresholds(t *testing.T) {
	b := penguins(t)
	cand := evaluateAll(t, evaluate.Options{Classes: species}, b)
	worse := b
	worse.Scores = make([]float64, len(b.Scores))
	for i, s := range b.Scores {
		worse.Scores[i] = 0.5*s + 0.5/3 // less confident: same argmax, worse log loss
	}
	base := evaluateAll(t, evaluate.Options{Classes: species}, worse)
	c, bl := cand.Overall().Scalars(), base.Overall().Scalars()
	if !(c["log_loss"] < bl["log_loss"]) {
		t.Fatalf("log loss %v not better than the baseline's %v", c["log_loss"], bl["log_loss"])
	}
	for _, tc := range []struct {
		name       string
		thresholds map[string]evaluate.Threshold
		fail       []string // substrings of the failure messages, in metric order
	}{
		{"pass", map[string]evaluate.Threshold{
			"accuracy": {LowerBound: ptr(0.8), UpperBound: ptr(1)},
			"log_loss": {Change: &evaluate.Change{Direction: evaluate.LowerIsBetter, Absolute: ptr(0), Relative: ptr(-0.01)}},
			"auc":      {Change: &evaluate.Change{Direction: evaluate.HigherIsBetter, Absolute: ptr(-0.01)}},
		}, nil},
		{"lower bound", map[string]evaluate.Threshold{"accuracy": {LowerBound: ptr(0.999)}}, []string{"Overall accuracy = 0.", "is below lower bound 0.999"}},
		{"upper bound", map[string]evaluate.Threshold{"log_loss": {UpperBound: ptr(0.01)}}, []string{"is above upper bound 0.01"}},
		{"change", map[string]evaluate.Threshold{"log_loss": {Change: &evaluate.Change{Direction: evaluate.HigherIsBetter, Absolute: ptr(0)}}},
			[]string{"vs baseline", "fails 0 (higher_is_better)"}},
		{"relative", map[string]evaluate.Threshold{"brier_score": {Change: &evaluate.Change{Direction: evaluate.LowerIsBetter, Relative: ptr(-0.99)}}},
			[]string{"relative change", "fails -0.99"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := evaluate.CheckThresholds(cand, base, tc.thresholds)
			if err != nil {
				t.Fatal(err)
			}
			if v.Passed != (tc.fail == nil) || (v.Err() == nil) != v.Passed {
				t.Fatalf("passed %v, err %v; want failures %q", v.Passed, v.Err(), tc.fail)
			}
			if tc.fail == nil {
				return
			}
			if !errors.Is(v.Err(), evaluate.ErrNotBlessed) {
				t.Errorf("err %v does not wrap ErrNotBlessed", v.Err())
			}
			msg := v.Err().Error()
			for _, want := range tc.fail {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
			for _, f := range v.Failures() {
				if f.Change != nil && (f.Baseline == nil || float64(*f.Baseline) != bl[f.Metric]) {
					t.Errorf("%s: baseline value %v, want %v", f.Metric, f.Baseline, bl[f.Metric])
				}
				if float64(f.Value) != c[f.Metric] {
					t.Errorf("%s: value %v, want %v", f.Metric, f.Value, c[f.Metric])
				}
			}
			t.Log(msg)
		})
	}
	for name, tc := range map[string]struct {
		base *evaluate.Result
		th   map[string]evaluate.Threshold
		want string
	}{
		"unknown metric":  {base, map[string]evaluate.Threshold{"auc_roc": {LowerBound: ptr(0.5)}}, "thresholds.auc_roc: metric not computed"},
		"no bound":        {base, map[string]evaluate.Threshold{"auc": {}}, "thresholds.auc: no lower_bound"},
		"no baseline":     {nil, map[string]evaluate.Threshold{"auc": {Change: &evaluate.Change{Direction: evaluate.HigherIsBetter, Absolute: ptr(0)}}}, "no baseline"},
		"bad direction":   {base, map[string]evaluate.Threshold{"auc": {Change: &evaluate.Change{Direction: "up", Absolute: ptr(0)}}}, `direction: "up"`},
		"no change bound": {base, map[string]evaluate.Threshold{"auc": {Change: &evaluate.Change{Direction: evaluate.HigherIsBetter}}}, "no absolute or relative"},
		"other rows":      {evaluateAll(t, evaluate.Options{Classes: species}, part(b, 0, 10)), map[string]evaluate.Threshold{"auc": {LowerBound: ptr(0)}}, "same rows"},
	} {
		_, err := evaluate.CheckThresholds(cand, tc.base, tc.th)
		if !errors.Is(err, evaluate.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrInvalid with %q", name, err, tc.want)
		}
	}
}

// TestBadInput checks that bad options and batches are refused, naming
// the field.
func TestBadInput(t *testing.T) {
	two := []string{"no", "yes"}
	for name, tc := range map[string]struct {
		o    evaluate.Options
		b    evaluate.Batch
		want string
	}{
		"one class":        {evaluate.Options{Classes: []string{"a"}}, evaluate.Batch{}, "at least 2 classes"},
		"repeated feature": {evaluate.Options{Slices: [][]string{{"a", "a"}}}, evaluate.Batch{}, `slices[0]: empty or repeated feature "a"`},
		"scores length":    {evaluate.Options{Classes: two}, evaluate.Batch{Labels: []int{0, 1}, Scores: []float64{1, 0}}, "scores: 2 values for 2 rows of 2 classes"},
		"label range":      {evaluate.Options{Classes: two}, evaluate.Batch{Labels: []int{0, 2}, Scores: []float64{1, 0, 0, 1}}, "labels: row 1: class 2 out of range"},
		"probability":      {evaluate.Options{Classes: two}, evaluate.Batch{Labels: []int{0}, Scores: []float64{math.NaN(), 1}}, "scores: row 0: probability of no is NaN"},
		"weights":          {evaluate.Options{Classes: two}, evaluate.Batch{Labels: []int{0}, Scores: []float64{1, 0}, Weights: []float64{-1}}, "weights: row 0"},
		"missing feature":  {evaluate.Options{Classes: two, Slices: [][]string{{"island"}}}, evaluate.Batch{Labels: []int{0}, Scores: []float64{1, 0}}, `features: no column "island"`},
		"regression shape": {evaluate.Options{}, evaluate.Batch{Targets: []float64{1, 2}, Predictions: []float64{1}}, "predictions: 1 values for 2 targets"},
		"task mismatch":    {evaluate.Options{}, evaluate.Batch{Labels: []int{0}}, "a regressor's batch has labels"},
		"not finite":       {evaluate.Options{}, evaluate.Batch{Targets: []float64{math.Inf(1)}, Predictions: []float64{1}}, "row 0: target +Inf"},
	} {
		e, err := evaluate.New(tc.o)
		if err == nil {
			err = e.Add(tc.b)
		}
		if !errors.Is(err, evaluate.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrInvalid with %q", name, err, tc.want)
		}
	}
	e, _ := evaluate.New(evaluate.Options{})
	if _, err := e.Result(context.Background()); !errors.Is(err, evaluate.ErrInvalid) {
		t.Errorf("result of no rows: %v, want ErrInvalid", err)
	}
}

// TestCancel checks that a cancelled context stops bootstrapping.
func TestCancel(t *testing.T) {
	e, _ := evaluate.New(evaluate.Options{Bootstrap: evaluate.Bootstrap{Samples: 1000}})
	if err := e.Add(evaluate.Batch{Targets: []float64{1, 2, 3}, Predictions: []float64{1, 2, 4}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Result(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestUndefined checks that a slice with one class has NaN AUC, written
// to JSON as null and read back as NaN.
func TestUndefined(t *testing.T) {
	r := evaluateAll(t, evaluate.Options{Classes: []string{"no", "yes"}}, evaluate.Batch{Labels: []int{1, 1}, Scores: []float64{0.2, 0.8, 0.6, 0.4}})
	c := r.Overall().Classification
	if !math.IsNaN(float64(c.AUC)) || c.AveragePrecision != 1 || c.Accuracy != 0.5 {
		t.Errorf("auc %v, average precision %v, accuracy %v; want NaN, 1, 0.5", c.AUC, c.AveragePrecision, c.Accuracy)
	}
	data := marshal(t, r)
	if !bytes.Contains(data, []byte(`"auc":null`)) {
		t.Errorf("NaN AUC not written as null: %s", data)
	}
	var back evaluate.Result
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(float64(back.Overall().Classification.AUC)) || !bytes.Equal(marshal(t, &back), data) {
		t.Error("result does not read back unchanged")
	}
}

// TestCurvePoints checks that the ROC curve is thinned to CurvePoints,
// keeping both ends, and stays monotone.
func TestCurvePoints(t *testing.T) {
	b := penguins(t)
	for _, n := range []int{0, 5, 1 << 20} {
		r := evaluateAll(t, evaluate.Options{Classes: species, CurvePoints: n}, b)
		roc := r.Overall().Classification.ROC
		want := map[int]int{0: 101, 5: 5, 1 << 20: len(roc)}[n]
		if len(roc) != want || len(roc) < 5 {
			t.Errorf("CurvePoints %d: %d points, want %d", n, len(roc), want)
		}
		if first, last := roc[0], roc[len(roc)-1]; first.FPR != 0 || first.TPR != 0 || last.FPR != 1 || last.TPR != 1 {
			t.Errorf("CurvePoints %d: curve from %+v to %+v, want (0,0) to (1,1)", n, first, last)
		}
		for i := 1; i < len(roc); i++ {
			if roc[i].FPR < roc[i-1].FPR || roc[i].TPR < roc[i-1].TPR || roc[i].Threshold >= roc[i-1].Threshold {
				t.Fatalf("CurvePoints %d: point %d %+v after %+v", n, i, roc[i], roc[i-1])
			}
		}
	}
}
