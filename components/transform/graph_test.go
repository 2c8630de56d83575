package transform_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/mlsteps/mlsteps/components/transform"
)

// TestParseGraphRoundTrip: transform.json read back applies the same.
func TestParseGraphRoundTrip(t *testing.T) {
	for _, tc := range []struct{ data, spec string }{{"penguins.json", penguinsSpec}, {"cars.json", carsSpec}, {"movies.json", moviesSpec}} {
		schema, recs := load(t, tc.data, 5000)
		g := fitSpec(t, tc.spec, schema, recs)
		js, err := json.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		back, err := transform.ParseGraph(js)
		if err != nil {
			t.Fatalf("%s: %v", tc.data, err)
		}
		a, err := g.Apply(recs[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err := back.Apply(recs[0])
		if err != nil {
			t.Fatal(err)
		}
		for c := range a {
			for r := range a[c] {
				if a[c][r] != b[c][r] && !(math.IsNaN(float64(a[c][r])) && math.IsNaN(float64(b[c][r]))) {
					t.Fatalf("%s: %s row %d: %v before, %v read back", tc.data, g.Order[c], r, a[c][r], b[c][r])
				}
			}
		}
	}
}

func FuzzParseGraph(f *testing.F) {
	schema, recs := load(f, "penguins.json", 1000)
	g := fitSpec(f, penguinsSpec, schema, recs)
	js, err := json.Marshal(g)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js)
	f.Add([]byte(`{"format":1,"features_fitted":[{"name":"x","columns":["x"],"steps":[{"op":"impute","fitted":true}],"outputs":["x"]}],"inputs":[{"name":"x","kind":"numeric"}],"feature_order":["x"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := transform.ParseGraph(data)
		if err != nil {
			return
		}
		// A graph that parses must apply and export without panicking.
		raw := make([]transform.RawColumn, len(g.Inputs))
		for i, in := range g.Inputs {
			raw[i] = transform.RawColumn{Name: in.Name, Kind: in.Kind, Doubles: []float64{math.NaN(), 1}, Strings: []string{"", "a"}}
			if in.Kind == transform.Numeric {
				raw[i].Strings = nil
			} else {
				raw[i].Doubles = nil
			}
		}
		if _, err := g.ApplyRaw(raw, 2); err != nil {
			t.Fatalf("parsed graph does not apply: %v", err)
		}
		if _, err := g.ONNX(); err != nil {
			t.Fatalf("parsed graph does not export: %v", err)
		}
	})
}
