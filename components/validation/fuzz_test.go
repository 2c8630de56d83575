package validation_test

import (
	"encoding/json"
	"testing"

	"github.com/mlsteps/mlsteps/components/validation"
)

// FuzzParseSchema: any input parses or fails with an error, never a
// panic; what parses re-encodes and parses again, and can be checked.
func FuzzParseSchema(f *testing.F) {
	for _, s := range []string{
		`{"feature": [{"name": "a", "type": "INT", "int_domain": {"min": "0", "max": 5}}]}`,
		`{"feature": [{"name": "b", "type": "BYTES", "domain": "d"}], "string_domain": [{"name": "d", "value": ["x"]}]}`,
		`{"feature": [{"name": "c", "type": "FLOAT", "presence": {"min_fraction": 0.5, "min_count": "1"}, "drift_comparator": {"jensen_shannon_divergence": {"threshold": 0.1}}}]}`,
		`{"feature": [{"name": "c", "type": "FLOAT", "presense": {}}]}`, `[]`, ``, `{"feature": null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := validation.ParseSchema(data, "schema.json")
		if err != nil {
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := validation.ParseSchema(out, "again.json"); err != nil {
			t.Fatalf("re-encoded schema does not parse: %v\n%s", err, out)
		}
		an := validation.NewAnomalies()
		ds := islandStats("x", map[string]float64{"a": 1}, "a")
		an.Check(ds, s, validation.Compare{Baseline: ds, Serving: ds})
	})
}

// FuzzParseStatistics: baseline and serving statistics come from users'
// files too.
func FuzzParseStatistics(f *testing.F) {
	for _, s := range []string{
		`{"datasets": [{"name": "train", "num_examples": "3", "features": [{"path": {"step": ["a"]}, "type": "FLOAT", "num_stats": {"mean": "NaN", "histograms": [{"buckets": [{"low_value": 0, "high_value": 1, "sample_count": 3}], "type": "STANDARD"}]}}]}]}`,
		`{"datasets": [{"name": "t", "num_examples": 2, "features": [{"path": {"step": ["s"]}, "type": "STRING", "string_stats": {"unique": "1", "top_values": [{"value": "x", "frequency": 2}]}}]}]}`,
		`{"datasets": []}`, `{"datasets": [{"num_exampels": "1"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := validation.ParseStatistics(data, "statistics.json")
		if err != nil {
			return
		}
		for i := range l.Datasets {
			ds := &l.Datasets[i]
			schema := validation.InferSchema(ds, validation.InferOptions{})
			an := validation.NewAnomalies()
			an.Check(ds, schema, validation.Compare{Baseline: ds, Serving: ds})
			if _, err := json.Marshal(an); err != nil {
				t.Fatal(err)
			}
		}
	})
}
