package transform_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/components/transform"
)

var penguinColumns = []transform.Input{
	{Name: "Species", Kind: transform.Categorical}, {Name: "Island", Kind: transform.Categorical},
	{Name: "Beak Length (mm)", Kind: transform.Numeric}, {Name: "Sex", Kind: transform.Categorical},
	{Name: "Year", Kind: ""},
}

// TestBadSpec: every bad spec is refused before data is read, naming the
// spec line and the feature.
func TestBadSpec(t *testing.T) {
	for _, tc := range []struct {
		name, spec, want string
		trainRows        int64
	}{
		{"unknown column", "features:\n  Beak: [zscore]\n", `transform.yaml:2: feature "Beak": not a column`, 10},
		{"unknown op", "features:\n  Island:\n    - vocabulary\n    - embed\n", `transform.yaml:4: feature "Island": unknown op "embed"`, 10},
		{"zscore on a string", "features:\n  Island: [zscore]\n", `transform.yaml:2: feature "Island": zscore needs a number, but here the value is a string`, 10},
		{"constant of the wrong type", "features:\n  \"Beak Length (mm)\": [impute: {constant: \"x\"}]\n", `transform.yaml:2: feature "Beak Length (mm)": impute constant "x" is not a number`, 10},
		{"number constant for strings", "features:\n  Sex: [impute: {constant: 3}]\n", `feature "Sex": impute constant "3" is not a string`, 10},
		{"vocabulary on an empty split", "features:\n  Island: [vocabulary: {}]\n", `transform.yaml:2: feature "Island": vocabulary would be fitted on an empty train split`, 0},
		{"mean of strings", "features:\n  Sex: [impute: mean]\n", `impute "mean" on a string`, 10},
		{"one_hot of a number", "features:\n  \"Beak Length (mm)\": [one_hot]\n", `one_hot needs a categorical id`, 10},
		{"unsupported type", "features:\n  Year: [zscore]\n", `feature "Year": column type is not supported`, 10},
		{"unknown argument", "features:\n  Island: [vocabulary: {top: 3}]\n", `vocabulary has no argument "top"`, 10},
		{"bad boundaries", "features:\n  \"Beak Length (mm)\": [bucketize: {boundaries: [3, 1]}]\n", `boundaries must be increasing`, 10},
		{"cross of a number", "features:\n  c: [cross: {columns: [Island, \"Beak Length (mm)\"]}]\n", `feature "c": cross column "Beak Length (mm)" is numeric`, 10},
		{"label missing", "features:\n  Island: [vocabulary: {}]\nlabel: Penguin\n", `transform.yaml:3: label "Penguin" is not a column`, 10},
		{"label is a feature", "features:\n  Island: [vocabulary: {}]\nlabel: Island\n", `label "Island" is also a feature input`, 10},
		{"not yaml", "features: [\n", `transform.yaml:`, 10},
		{"no features", "label: Species\n", `no features`, 10},
		{"unknown key", "features:\n  Island: [one_hot]\nlabels: x\n", `transform.yaml:3: unknown key "labels"`, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := transform.ParseSpec("transform.yaml", []byte(tc.spec))
			if err == nil {
				_, err = transform.Compile(s, penguinColumns, tc.trainRows)
			}
			var se *transform.SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *SpecError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func FuzzParseSpec(f *testing.F) {
	f.Add(penguinsSpec)
	f.Add(carsSpec)
	f.Add(moviesSpec)
	f.Add("features:\n  Island: [vocabulary: {top_k: -1}]\n")
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := transform.ParseSpec("fuzz.yaml", []byte(spec))
		if err != nil {
			var se *transform.SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SpecError", err)
			}
			return
		}
		if _, err := transform.Compile(s, penguinColumns, 10); err != nil {
			var se *transform.SpecError
			if !errors.As(err, &se) {
				t.Fatalf("compile error %v is not a *SpecError", err)
			}
		}
	})
}
