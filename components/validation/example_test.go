package validation_test

import (
	"encoding/json"
	"fmt"

	"github.com/mlsteps/mlsteps/components/stats"
	"github.com/mlsteps/mlsteps/components/validation"
)

// islandStats is a one-feature statistics fixture.
func islandStats(name string, counts map[string]float64, order ...string) *stats.DatasetFeatureStatistics {
	var n float64
	rh := &stats.RankHistogram{}
	for i, v := range order {
		rh.Buckets = append(rh.Buckets, stats.RankBucket{LowRank: stats.Int64(i), HighRank: stats.Int64(i), Label: v, SampleCount: stats.Double(counts[v])})
		n += counts[v]
	}
	return &stats.DatasetFeatureStatistics{Name: name, NumExamples: stats.Int64(n), Features: []stats.FeatureNameStatistics{{
		Path: stats.Path{Step: []string{"Island"}}, Type: stats.TypeString,
		StringStats: &stats.StringStatistics{CommonStats: stats.CommonStatistics{NumNonMissing: stats.Int64(n)},
			Unique: stats.Int64(len(order)), RankHistogram: rh},
	}}}
}

func ExampleInferSchema() {
	train := islandStats("train", map[string]float64{"Biscoe": 168, "Dream": 124, "Torgersen": 52}, "Biscoe", "Dream", "Torgersen")
	schema := validation.InferSchema(train, validation.InferOptions{})
	out, _ := json.Marshal(schema.Feature[0])
	fmt.Println(string(out))
	// Output:
	// {"name":"Island","type":"BYTES","presence":{"min_fraction":1},"string_domain":{"name":"Island","value":["Biscoe","Dream","Torgersen"]},"drift_comparator":{"infinity_norm":{"threshold":0.1}},"skew_comparator":{"infinity_norm":{"threshold":0.1}}}
}

func ExampleAnomalies_Check() {
	train := islandStats("train", map[string]float64{"Biscoe": 168, "Dream": 124, "Torgersen": 52}, "Biscoe", "Dream", "Torgersen")
	schema := validation.InferSchema(train, validation.InferOptions{})
	serving := islandStats("serving", map[string]float64{"Biscoe": 40, "Atlantis": 60}, "Atlantis", "Biscoe")
	an := validation.NewAnomalies()
	an.Check(serving, schema, validation.Compare{Baseline: train})
	for _, r := range an.AnomalyInfo["Island"].Reason {
		fmt.Println(r.Type+":", r.Description)
	}
	fmt.Println(an.Count(validation.SeverityError), "feature(s) with errors")
	// Output:
	// ENUM_TYPE_UNEXPECTED_STRING_VALUES: split serving: column "Island" has values outside its domain: "Atlantis" (60% of its values)
	// COMPARATOR_L_INFTY_HIGH: split serving: the L-infinity distance between the baseline and this data is 0.6 (largest at value "Atlantis"), above the drift threshold 0.1
	// 1 feature(s) with errors
}

func ExampleParseSchema() {
	_, err := validation.ParseSchema([]byte(`{"feature": [{"name": "Island", "type": "BYTES", "presense": {"min_fraction": 1}}]}`), "schema.json")
	fmt.Println(err)
	// Output:
	// schema.json: field "presense": unknown field (a typo? see TFDV's schema.proto for the names)
}
