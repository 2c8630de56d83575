package stats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/mlsteps/mlsteps/components/stats"
	"github.com/mlsteps/mlsteps/components/tabular"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// pandasColumn is what testdata/pandas_stats.py prints per column.
type pandasColumn struct {
	Kind      string                `json:"kind"`
	Count     int64                 `json:"count"`
	Missing   int64                 `json:"missing"`
	Mean      float64               `json:"mean"`
	Std       float64               `json:"std"`
	Min       float64               `json:"min"`
	Max       float64               `json:"max"`
	Zeros     int64                 `json:"zeros"`
	Quantiles map[string][2]float64 `json:"quantiles"`
	Unique    int64                 `json:"unique"`
	Top       [][2]any              `json:"top"`
	AvgLen    float64               `json:"avg_len"`
}

// pandasReference runs the reference script with Debian's Python.
func pandasReference(t testing.TB, path string) map[string]pandasColumn {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import pandas").Run(); err != nil {
		testenv.Missing(t, "%s with pandas (Debian python3-pandas) is not installed", py)
	}
	out, err := exec.Command(py, filepath.Join("testdata", "pandas_stats.py"), path).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("pandas_stats.py %s: %v\n%s", path, err, stderr)
	}
	var ref map[string]pandasColumn
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

// accumulate reads a raw vega file with the tabular reader (as import
// does) in small batches, spread round-robin over three Accumulators that
// are then merged, so merging is exercised too.
func accumulate(t testing.TB, path string) stats.DatasetFeatureStatistics {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	format, err := tabular.FormatFromName(path)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := tabular.NewReader(context.Background(), f, filepath.Base(path), format, tabular.Options{BatchSize: 100, InferRows: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	shards := []*stats.Accumulator{stats.New(stats.Options{}), stats.New(stats.Options{}), stats.New(stats.Options{})}
	for i := 0; ; i++ {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := shards[i%len(shards)].Add(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	for _, s := range shards[1:] {
		if err := shards[0].Merge(s); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := shards[0].Result(filepath.Base(path))
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func close9(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// within reports whether v is a valid sketch answer for a quantile whose
// exact neighbours are lo and hi: between them, widened by the relative
// accuracy.
func within(v, lo, hi, alpha float64) bool {
	a := math.Min(lo*(1-alpha), lo*(1+alpha))
	b := math.Max(hi*(1-alpha), hi*(1+alpha))
	return v >= a-1e-12 && v <= b+1e-12
}

// TestAgainstPandas compares every statistic with pandas on real data with
// real missing values. Exact ones agree to 1e-9 relative; median and
// deciles lie within the DDSketch bound of the right order statistics.
func TestAgainstPandas(t *testing.T) {
	for _, name := range []string{"penguins.json", "cars.json", "movies.json", "seattle-weather.csv"} {
		t.Run(name, func(t *testing.T) {
			path := testenv.VegaData(t, name)
			ref := pandasReference(t, path)
			ds := accumulate(t, path)
			if len(ds.Features) != len(ref) {
				t.Fatalf("%d features, pandas has %d columns", len(ds.Features), len(ref))
			}
			var rows int64
			for _, c := range ref {
				rows = c.Count + c.Missing
			}
			if int64(ds.NumExamples) != rows {
				t.Errorf("num_examples %d, pandas %d", ds.NumExamples, rows)
			}
			for i := range ds.Features {
				f := &ds.Features[i]
				t.Run(f.Name(), func(t *testing.T) { compareFeature(t, f, ref[f.Name()]) })
			}
		})
	}
}

func compareFeature(t *testing.T, f *stats.FeatureNameStatistics, want pandasColumn) {
	cs := f.Common()
	if int64(cs.NumNonMissing) != want.Count || int64(cs.NumMissing) != want.Missing {
		t.Errorf("non-missing/missing %d/%d, pandas %d/%d", cs.NumNonMissing, cs.NumMissing, want.Count, want.Missing)
	}
	switch want.Kind {
	case "num":
		ns := f.NumStats
		if ns == nil {
			t.Fatalf("type %s, pandas sees numbers", f.Type)
		}
		if want.Count == 0 {
			return
		}
		for _, c := range []struct {
			what      string
			got, want float64
		}{{"mean", float64(ns.Mean), want.Mean}, {"std_dev (ddof=0)", float64(ns.StdDev), want.Std},
			{"min", float64(ns.Min), want.Min}, {"max", float64(ns.Max), want.Max}, {"num_zeros", float64(ns.NumZeros), float64(want.Zeros)}} {
			if !close9(c.got, c.want) {
				t.Errorf("%s %v, pandas %v", c.what, c.got, c.want)
			}
		}
		var quant stats.Histogram
		for _, h := range ns.Histograms {
			if h.Type == stats.HistogramQuantiles {
				quant = h
			}
		}
		if len(quant.Buckets) != 10 {
			t.Fatalf("QUANTILES histogram has %d buckets", len(quant.Buckets))
		}
		for i := 1; i < 10; i++ {
			q := strconv.FormatFloat(float64(i)/10, 'f', -1, 64)
			lh := want.Quantiles[q]
			if got := float64(quant.Buckets[i].LowValue); !within(got, lh[0], lh[1], stats.DefaultRelativeAccuracy) {
				t.Errorf("quantile %s = %v, pandas's order statistics %v", q, got, lh)
			}
		}
		if lh := want.Quantiles["0.5"]; !within(float64(ns.Median), lh[0], lh[1], stats.DefaultRelativeAccuracy) {
			t.Errorf("median %v, pandas's order statistics %v", ns.Median, lh)
		}
		var hsum float64
		for _, h := range ns.Histograms {
			if h.Type == stats.HistogramStandard {
				for _, b := range h.Buckets {
					hsum += float64(b.SampleCount)
				}
			}
		}
		if hsum != float64(want.Count) {
			t.Errorf("STANDARD histogram holds %v values, want %d", hsum, want.Count)
		}
	case "str":
		ss := f.StringStats
		if ss == nil {
			t.Fatalf("type %s, pandas sees strings", f.Type)
		}
		if int64(ss.Unique) != want.Unique {
			t.Errorf("unique %d, pandas %d", ss.Unique, want.Unique)
		}
		if want.Count > 0 && !close9(float64(ss.AvgLength), want.AvgLen) {
			t.Errorf("avg_length %v bytes, pandas %v", ss.AvgLength, want.AvgLen)
		}
		if len(ss.TopValues) != len(want.Top) {
			t.Fatalf("%d top values, pandas %d", len(ss.TopValues), len(want.Top))
		}
		for i, tv := range ss.TopValues {
			wv, wc := fmt.Sprint(want.Top[i][0]), want.Top[i][1].(float64)
			if tv.Value != wv || float64(tv.Frequency) != wc {
				t.Errorf("top value %d: %q×%v, pandas %q×%v", i, tv.Value, tv.Frequency, wv, wc)
			}
		}
	default:
		t.Fatalf("pandas kind %q", want.Kind)
	}
}
