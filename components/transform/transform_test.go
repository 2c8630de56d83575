package transform_test

import (
	"math"
	"slices"
	"testing"

	"github.com/mlsteps/mlsteps/components/transform"
)

// The spec on penguins, plus the ops it does not use.
const penguinsSpec = `
features:
  "Beak Length (mm)": [impute: mean, zscore]
  "Body Mass (g)":    [impute: median, scale_to_0_1]
  Island:         [vocabulary: {top_k: 10, num_oov_buckets: 1}, one_hot]
  "Flipper Length (mm)": [bucketize: {num_buckets: 4}]   # quantile boundaries
  Sex:            [impute: {constant: "unknown"}, vocabulary: {}]
  "Beak Depth (mm)": [impute: {constant: 17}, log1p, clip: {min: 2.6, max: 3}, scale_by_min_max: {min: -1, max: 1}]
  "Island x Sex": [cross: {columns: [Island, Sex]}, one_hot]
label: Species
`

const carsSpec = `
features:
  Miles_per_Gallon: [impute: median, log1p]
  Horsepower: [impute: mean, clip: {min: 50, max: 200}, scale_by_min_max: {min: -1, max: 1}]
  Cylinders: [bucketize: {boundaries: [4, 6, 8]}, one_hot]
  Origin: [vocabulary: {num_oov_buckets: 3}, one_hot]
  Name: [hash_bucket: {num_buckets: 16}]
  Weight_in_lbs: [zscore]
label: Acceleration
`

const moviesSpec = `
features:
  "IMDB Rating": [impute: most_frequent, zscore]
  "Rotten Tomatoes Rating": [bucketize: {num_buckets: 5}, one_hot]
  "Major Genre": [impute: {constant: "unknown"}, vocabulary: {top_k: 5, frequency_threshold: 10}, one_hot]
  "MPAA Rating": [vocabulary: {num_oov_buckets: 0}, one_hot]
  "Production Budget": [impute: median, log1p, scale_to_0_1]
  "Genre x Type": [cross: {columns: ["Major Genre", "Creative Type"], top_k: 4}, one_hot]
  Distributor: [impute: most_frequent, hash_bucket: {num_buckets: 10}]
  "US DVD Sales": [clip: {max: 1000000}]
label: "Worldwide Gross"
`

// TestGoMatchesONNXRuntime is the contract: fitted on the first 70% of the
// rows (the "train split"), Go's apply and ONNX Runtime's run of the
// exported graph agree on every row of every dataset, and on rows made of
// missing values and categories never seen in training.
func TestGoMatchesONNXRuntime(t *testing.T) {
	for _, tc := range []struct {
		data, spec string
	}{
		{"penguins.json", penguinsSpec},
		{"cars.json", carsSpec},
		{"movies.json", moviesSpec},
	} {
		t.Run(tc.data, func(t *testing.T) {
			schema, recs := load(t, tc.data, 50)
			train := recs[:len(recs)*7/10]
			g := fitSpec(t, tc.spec, schema, train)
			s := session(t, g)
			var rows int
			for _, rec := range recs {
				raw, err := g.RawColumns(rec)
				if err != nil {
					t.Fatal(err)
				}
				rows += compare(t, g, s, raw, int(rec.NumRows()))
			}
			// Rows of missing values, unseen categories and extremes.
			odd := []string{"", "never seen in training", "ünïcödé", "Torgersen"}
			nums := []float64{math.NaN(), -1e9, 1e9, 0}
			raw := make([]transform.RawColumn, len(g.Inputs))
			for i, in := range g.Inputs {
				raw[i] = transform.RawColumn{Name: in.Name, Kind: in.Kind}
				if in.Kind == transform.Numeric {
					raw[i].Doubles = slices.Clone(nums)
				} else {
					raw[i].Strings = slices.Clone(odd)
				}
			}
			rows += compare(t, g, s, raw, len(odd))
			t.Logf("%s: %d rows, %d output columns agree", tc.data, rows, len(g.Order))
		})
	}
}

// TestUnseenGoesToOOV checks the OOV rules on both sides: an unseen or
// missing category gets the OOV id (the last one-hot column) with one OOV
// bucket, and no column at all with none.
func TestUnseenGoesToOOV(t *testing.T) {
	schema, recs := load(t, "penguins.json", 1000)
	g := fitSpec(t, `
features:
  Island: [vocabulary: {}, one_hot]
  Sex: [vocabulary: {num_oov_buckets: 0, frequency_threshold: 2}, one_hot]
`, schema, recs)
	if want := []string{"Island_onehot_0", "Island_onehot_1", "Island_onehot_2", "Island_onehot_3", "Sex_onehot_0", "Sex_onehot_1"}; !slices.Equal(g.Order, want) {
		t.Fatalf("order %v, want %v", g.Order, want)
	}
	raw := []transform.RawColumn{
		{Name: "Island", Kind: transform.Categorical, Strings: []string{"Atlantis", ""}},
		{Name: "Sex", Kind: transform.Categorical, Strings: []string{"unknown", ""}},
	}
	out, err := g.ApplyRaw(raw, 2)
	if err != nil {
		t.Fatal(err)
	}
	for r := range 2 {
		var row []float32
		for _, c := range out {
			row = append(row, c[r])
		}
		if want := []float32{0, 0, 0, 1, 0, 0}; !slices.Equal(row, want) {
			t.Errorf("row %d: %v, want %v", r, row, want)
		}
	}
	compare(t, g, session(t, g), raw, 2)
}
