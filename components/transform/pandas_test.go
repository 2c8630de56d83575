package transform_test

import (
	"encoding/json"
	"math"
	"os/exec"
	"slices"
	"testing"

	"github.com/mlsteps/mlsteps/internal/testenv"
)

// pandasScript computes, with pandas, the values the penguins spec's
// analyzers must fit, on the whole file.
const pandasScript = `
import json, sys
import pandas as pd
df = pd.read_json(sys.argv[1])
beak = df["Beak Length (mm)"]
imputed = beak.fillna(beak.mean())
mass = df["Body Mass (g)"]
flip = df["Flipper Length (mm)"].dropna()
island = df["Island"].value_counts()
island = sorted(island.items(), key=lambda kv: (-kv[1], kv[0]))
print(json.dumps({
  "beak_mean": beak.mean(),
  "zscore_mean": imputed.mean(),
  "zscore_std": imputed.std(ddof=0),
  "mass_median": mass.median(),
  "mass_min": mass.min(), "mass_max": mass.max(),
  "flip_lower": [flip.quantile(q, interpolation="lower") for q in (0.25, 0.5, 0.75)],
  "flip_higher": [flip.quantile(q, interpolation="higher") for q in (0.25, 0.5, 0.75)],
  "island": [k for k, _ in island],
}))
`

// TestFittedValuesMatchPandas checks the analyzers against pandas on the
// same rows: means and standard deviations to 1e-9, min and max exactly,
// medians and quantile boundaries within DDSketch's 0.1% of a value of the
// right rank, and the vocabulary order (count, then value).
func TestFittedValuesMatchPandas(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import pandas").Run(); err != nil {
		testenv.Missing(t, "%s with pandas (apt-get install python3-pandas): %v", py, err)
		return
	}
	path := testenv.VegaData(t, "penguins.json")
	out, err := exec.Command(py, "-c", pandasScript, path).Output()
	if err != nil {
		t.Fatalf("pandas: %v", err)
	}
	var ref struct {
		BeakMean, ZscoreMean, ZscoreStd, MassMedian, MassMin, MassMax float64
		FlipLower, FlipHigher                                         []float64
		Island                                                        []string
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	for k, dst := range map[string]any{"beak_mean": &ref.BeakMean, "zscore_mean": &ref.ZscoreMean, "zscore_std": &ref.ZscoreStd,
		"mass_median": &ref.MassMedian, "mass_min": &ref.MassMin, "mass_max": &ref.MassMax,
		"flip_lower": &ref.FlipLower, "flip_higher": &ref.FlipHigher, "island": &ref.Island} {
		if err := json.Unmarshal(raw[k], dst); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	schema, recs := load(t, "penguins.json", 100)
	g := fitSpec(t, penguinsSpec, schema, recs)
	steps := map[string][]float64{}
	for _, f := range g.Features {
		for _, s := range f.Steps {
			switch {
			case s.Value != nil:
				steps[f.Name+"/"+s.Op] = []float64{*s.Value}
			case s.Op == "zscore":
				steps[f.Name+"/zscore"] = []float64{s.Mean, s.Std}
			case s.Op == "scale_to_0_1":
				steps[f.Name+"/scale"] = []float64{s.Min, s.Max}
			case s.Op == "bucketize":
				steps[f.Name+"/bucketize"] = s.Boundaries
			case s.Op == "vocabulary" && f.Name == "Island":
				if !slices.Equal(s.Vocabulary, ref.Island) {
					t.Errorf("Island vocabulary %v, pandas %v", s.Vocabulary, ref.Island)
				}
			}
		}
	}
	near := func(name string, got, want, tol float64) {
		if math.Abs(got-want) > tol {
			t.Errorf("%s: fitted %v, pandas %v", name, got, want)
		}
	}
	near("beak mean", steps["Beak Length (mm)/impute"][0], ref.BeakMean, 1e-9)
	near("zscore mean", steps["Beak Length (mm)/zscore"][0], ref.ZscoreMean, 1e-9)
	near("zscore std", steps["Beak Length (mm)/zscore"][1], ref.ZscoreStd, 1e-9)
	near("mass median", steps["Body Mass (g)/impute"][0], ref.MassMedian, ref.MassMedian*0.0011)
	near("mass min", steps["Body Mass (g)/scale"][0], ref.MassMin, 0)
	near("mass max", steps["Body Mass (g)/scale"][1], ref.MassMax, 0)
	b := steps["Flipper Length (mm)/bucketize"]
	if len(b) != 3 {
		t.Fatalf("flipper boundaries %v, want 3", b)
	}
	for i, v := range b {
		if v < ref.FlipLower[i]*(1-0.0011) || v > ref.FlipHigher[i]*(1+0.0011) {
			t.Errorf("flipper boundary %d: %v, pandas between %v and %v", i, v, ref.FlipLower[i], ref.FlipHigher[i])
		}
	}
}
