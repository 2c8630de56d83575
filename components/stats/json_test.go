package stats_test

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/mlsteps/mlsteps/components/stats"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// TestIndentedJSONMatchesEncodingJSON checks the hand-written encoder
// byte for byte against json.MarshalIndent: on real statistics, and on
// the awkward cases (special and extreme floats, strings that need
// escaping or are not UTF-8, nil and empty lists, omitted fields).
func TestIndentedJSONMatchesEncodingJSON(t *testing.T) {
	odd := stats.DatasetFeatureStatistics{Name: "odd <&> \"x\"\n", NumExamples: -3, Features: []stats.FeatureNameStatistics{
		{Path: stats.Path{Step: []string{"a", "b\u2028c\u2029", "\x00\x1f\b\f\t\r\\", "bad \xff utf8 é 😀"}}, Type: stats.TypeFloat,
			NumStats: &stats.NumericStatistics{Mean: stats.Double(math.NaN()), StdDev: stats.Double(math.Inf(1)), Min: stats.Double(math.Inf(-1)),
				Median: 1e-7, Max: 1e21, NumZeros: 1 << 62, Histograms: []stats.Histogram{
					{NumNaN: 4, Buckets: []stats.Bucket{{LowValue: -0.0, HighValue: 123456789.125, SampleCount: 1e-300}}, Type: stats.HistogramStandard},
					{Type: stats.HistogramQuantiles},
					{Buckets: []stats.Bucket{}, Type: stats.HistogramQuantiles},
				}}},
		{Path: stats.Path{}, Type: stats.TypeString, StringStats: &stats.StringStatistics{Unique: 2, AvgLength: 2.5,
			TopValues: []stats.FreqAndValue{{Value: "", Frequency: 0.1}}, RankHistogram: &stats.RankHistogram{}}},
		{Path: stats.Path{Step: []string{}}, Type: stats.TypeString, StringStats: &stats.StringStatistics{
			RankHistogram: &stats.RankHistogram{Buckets: []stats.RankBucket{{LowRank: 0, HighRank: 0, Label: "x", SampleCount: 3}}}}},
		{Type: stats.TypeInt},
	}}
	cases := map[string]*stats.DatasetFeatureStatisticsList{
		"nil":   {},
		"empty": {Datasets: []stats.DatasetFeatureStatistics{}},
		"odd":   {Datasets: []stats.DatasetFeatureStatistics{odd, {Name: "no features"}}},
	}
	for _, name := range []string{"penguins.json", "movies.json", "seattle-weather.csv"} {
		ds := accumulate(t, testenv.VegaData(t, name))
		cases[name] = &stats.DatasetFeatureStatisticsList{Datasets: []stats.DatasetFeatureStatistics{ds, ds}}
	}
	for name, l := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := json.MarshalIndent(l, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got := l.IndentedJSON()
			if !bytes.Equal(got, want) {
				i := 0
				for i < min(len(got), len(want)) && got[i] == want[i] {
					i++
				}
				t.Fatalf("differs from encoding/json at byte %d:\n got %q\nwant %q", i, got[max(0, i-80):min(len(got), i+80)], want[max(0, i-80):min(len(want), i+80)])
			}
		})
	}
}
