package evaluate_test

import (
	"context"
	"fmt"

	"github.com/mlsteps/mlsteps/components/evaluate"
)

func Example() {
	e, err := evaluate.New(evaluate.Options{Classes: []string{"no", "yes"}, Slices: [][]string{{"island"}}, MinSliceSize: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = e.Add(evaluate.Batch{
		Labels:   []int{0, 1, 1, 0, 1},
		Scores:   []float64{0.9, 0.1, 0.3, 0.7, 0.6, 0.4, 0.2, 0.8, 0.1, 0.9},
		Features: map[string][]string{"island": {"Biscoe", "Biscoe", "Biscoe", "Dream", "Dream"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := e.Result(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range res.Slices {
		m := s.Scalars()
		if s.TooSmall {
			fmt.Printf("%s: %d rows, too small\n", s.Key, s.ExampleCount)
			continue
		}
		fmt.Printf("%s: %d rows, accuracy %.2f, auc %.3f, macro F1 %.3f\n", s.Key, s.ExampleCount, m["accuracy"], m["auc"], m["macro_f1"])
	}
	// Output:
	// Overall: 5 rows, accuracy 0.60, auc 0.667, macro F1 0.583
	// island=Biscoe: 3 rows, accuracy 0.67, auc 1.000, macro F1 0.667
	// island=Dream: 2 rows, too small
}

func ExampleCheckThresholds() {
	eval := func(scores []float64) *evaluate.Result {
		e, _ := evaluate.New(evaluate.Options{Classes: []string{"no", "yes"}})
		_ = e.Add(evaluate.Batch{Labels: []int{0, 0, 1, 1}, Scores: scores})
		res, _ := e.Result(context.Background())
		return res
	}
	baseline := eval([]float64{0.8, 0.2, 0.6, 0.4, 0.3, 0.7, 0.2, 0.8})
	candidate := eval([]float64{0.8, 0.2, 0.4, 0.6, 0.6, 0.4, 0.2, 0.8})
	lower, drop := 0.7, -0.01
	v, err := evaluate.CheckThresholds(candidate, baseline, map[string]evaluate.Threshold{
		"accuracy": {LowerBound: &lower},
		"auc":      {Change: &evaluate.Change{Direction: evaluate.HigherIsBetter, Absolute: &drop}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v.Passed)
	for _, f := range v.Failures() {
		fmt.Println(f.Message)
	}
	// Output:
	// false
	// Overall accuracy = 0.5 is below lower bound 0.7
	// Overall auc = 0.75 vs baseline 1: change -0.25 fails -0.01 (higher_is_better)
}
