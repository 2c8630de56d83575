package importer_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/step"
)

// importTo runs the import step in-process and opens what it wrote.
func importTo(t testing.TB, store *artifacts.Store, root artifacts.URI, params map[string]any) (*artifacts.Artifact, error) {
	t.Helper()
	ctx := context.Background()
	err := step.Execute(ctx, importer.Spec(), step.Invocation{OutRoot: root.String(), Params: params}, step.Env{Store: store})
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, root.Join("examples"), artifacts.TypeDataset)
}

func tempRoot(t testing.TB) artifacts.URI {
	u, err := artifacts.ParseURI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// table is a raw file read independently of the import step: header and
// rows of text for CSV, or JSON values.
type table struct {
	columns []string
	rows    [][]any // string for CSV cells; decoded JSON values (nil when absent)
}

func readCSV(t *testing.T, path string, comma rune) table {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = comma
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("encoding/csv on %s: %v", path, err)
	}
	tb := table{columns: recs[0]}
	for _, rec := range recs[1:] {
		row := make([]any, len(rec))
		for i, v := range rec {
			row[i] = v
		}
		tb.rows = append(tb.rows, row)
	}
	return tb
}

// readJSON returns false when the file is not an array of flat-or-nested
// objects (TopoJSON, graphs: not tables).
func readJSON(t *testing.T, path string) (table, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var objs []map[string]any
	if err := dec.Decode(&objs); err != nil || len(objs) == 0 {
		return table{}, false
	}
	// Decoding into maps loses key order; recover it from the raw text.
	tb := table{columns: orderedKeys(data)}
	for _, o := range objs {
		row := make([]any, len(tb.columns))
		for i, c := range tb.columns {
			row[i] = o[c]
		}
		tb.rows = append(tb.rows, row)
	}
	return tb, true
}

// orderedKeys lists the keys of a JSON array's objects in first-seen order.
func orderedKeys(data []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(data))
	var keys []string
	seen := map[string]bool{}
	depth := 0
	expectKey := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return keys
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				depth++
				expectKey = depth == 2
				continue
			case '}':
				depth--
			case '[':
				depth++
			case ']':
				depth--
			}
			expectKey = depth == 2
			continue
		case string:
			if depth == 2 && expectKey {
				if !seen[v] {
					seen[v] = true
					keys = append(keys, v)
				}
				expectKey = false
				continue
			}
		}
		if depth == 2 {
			expectKey = true
		}
	}
}

var nullTokens = map[string]bool{"": true, "NA": true}

// checkCell compares an imported value with the independent reading.
func checkCell(col arrow.Array, row int, raw any, fromCSV bool) error {
	if s, ok := raw.(string); raw == nil || fromCSV && ok && nullTokens[s] {
		if !col.IsNull(row) {
			return fmt.Errorf("want null, got %q", col.ValueStr(row))
		}
		return nil
	}
	if col.IsNull(row) {
		return fmt.Errorf("got null, want %v", raw)
	}
	text := fmt.Sprint(raw)
	switch a := col.(type) {
	case *array.Int64:
		want, err := strconv.ParseInt(text, 10, 64)
		if err != nil || want != a.Value(row) {
			return fmt.Errorf("int64 %d, want %q", a.Value(row), text)
		}
	case *array.Float64:
		want, err := strconv.ParseFloat(text, 64)
		if err != nil || !(want == a.Value(row) || math.IsNaN(want) && math.IsNaN(a.Value(row))) {
			return fmt.Errorf("float64 %v, want %q", a.Value(row), text)
		}
	case *array.Boolean:
		want, err := strconv.ParseBool(strings.ToLower(text))
		if err != nil || want != a.Value(row) {
			return fmt.Errorf("bool %v, want %q", a.Value(row), text)
		}
	case *array.Timestamp:
		got := time.UnixMicro(int64(a.Value(row))).UTC()
		ok := false
		for _, layout := range []string{"2006-01-02", "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04"} {
			if want, err := time.Parse(layout, text); err == nil && want.UTC().Equal(got) {
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("timestamp %v, want %q", got, text)
		}
	case *array.String:
		want := text
		switch raw.(type) {
		case map[string]any, []any:
			b, _ := json.Marshal(raw)
			want = string(b)
			// Numbers keep their literal text; re-encode the imported text to compare.
			var v any
			if json.Unmarshal([]byte(a.Value(row)), &v) == nil {
				gb, _ := json.Marshal(v)
				var w any
				json.Unmarshal(b, &w)
				wb, _ := json.Marshal(w)
				if string(gb) == string(wb) {
					return nil
				}
			}
		}
		if a.Value(row) != want {
			return fmt.Errorf("string %q, want %q", a.Value(row), want)
		}
	default:
		return fmt.Errorf("unexpected column type %s", col.DataType())
	}
	return nil
}

// TestVegaRoundTrip imports every tabular CSV, TSV and JSON file of the
// vega datasets and compares every cell with an independent reading (Go's
// encoding/csv and encoding/json).
func TestVegaRoundTrip(t *testing.T) {
	dir := filepath.Dir(testenv.VegaData(t, "penguins.json"))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	store := artifacts.NewStore()
	defer store.Close()
	tested := 0
	for _, e := range entries {
		name := e.Name()
		ext := filepath.Ext(name)
		if ext != ".csv" && ext != ".tsv" && ext != ".json" {
			continue
		}
		path := filepath.Join(dir, name)
		var tb table
		switch ext {
		case ".csv":
			tb = readCSV(t, path, ',')
		case ".tsv":
			tb = readCSV(t, path, '\t')
		case ".json":
			var ok bool
			if tb, ok = readJSON(t, path); !ok {
				continue // not a table
			}
		}
		tested++
		t.Run(name, func(t *testing.T) {
			a, err := importTo(t, store, tempRoot(t), map[string]any{"source": path, "split": "all=1"})
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := artifacts.Property[int64](a.Sidecar, artifacts.PropRowCount); n != int64(len(tb.rows)) {
				t.Fatalf("row_count %d, independent count %d", n, len(tb.rows))
			}
			cols, _ := artifacts.Property[[]artifacts.Column](a.Sidecar, artifacts.PropColumns)
			if len(cols) != len(tb.columns) {
				t.Fatalf("%d columns, want %d (%v)", len(cols), len(tb.columns), tb.columns)
			}
			for i, c := range cols {
				if c.Name != tb.columns[i] {
					t.Errorf("column %d is %q, want %q", i, c.Name, tb.columns[i])
				}
			}
			row := 0
			for rec, err := range a.Records(context.Background(), "all", artifacts.ReadOptions{}) {
				if err != nil {
					t.Fatal(err)
				}
				for r := range int(rec.NumRows()) {
					for c := range tb.columns {
						if err := checkCell(rec.Column(c), r, tb.rows[row][c], ext != ".json"); err != nil {
							t.Fatalf("row %d column %q: %v", row+1, tb.columns[c], err)
						}
					}
					row++
				}
			}
			if row != len(tb.rows) {
				t.Errorf("read %d rows back, want %d", row, len(tb.rows))
			}
		})
	}
	if tested < 40 {
		t.Errorf("only %d vega files were tabular; expected at least 40", tested)
	}
}

// TestKnownTypes spot-checks inferred types and values on datasets whose
// contents are documented.
func TestKnownTypes(t *testing.T) {
	store := artifacts.NewStore()
	defer store.Close()
	tests := []struct {
		file  string
		rows  int64
		types map[string]string
	}{
		{"penguins.json", 344, map[string]string{"Species": "utf8", "Island": "utf8", "Beak Length (mm)": "float64", "Body Mass (g)": "int64", "Sex": "utf8"}},
		{"seattle-weather.csv", 1461, map[string]string{"date": "timestamp[us]", "precipitation": "float64", "weather": "utf8"}},
		{"cars.json", 406, map[string]string{"Name": "utf8", "Miles_per_Gallon": "float64", "Cylinders": "int64", "Year": "timestamp[us]"}},
		{"movies.json", 3201, map[string]string{"Title": "utf8", "IMDB Rating": "float64"}},
		{"zipcodes.csv", 42049, map[string]string{"zip_code": "utf8", "latitude": "float64"}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			a, err := importTo(t, store, tempRoot(t), map[string]any{"source": testenv.VegaData(t, tc.file), "seed": int64(1)})
			if err != nil {
				t.Fatal(err)
			}
			splits, _ := a.Splits()
			if len(splits) != 2 || splits[0].Name != "train" || splits[1].Name != "eval" || splits[0].RowCount+splits[1].RowCount != tc.rows {
				t.Fatalf("splits %+v, want train and eval summing to %d", splits, tc.rows)
			}
			// The default 2:1 split, within a loose statistical margin.
			if frac := float64(splits[0].RowCount) / float64(tc.rows); frac < 0.6 || frac > 0.73 {
				t.Errorf("train fraction %.3f, want about 2/3", frac)
			}
			cols, _ := artifacts.Property[[]artifacts.Column](a.Sidecar, artifacts.PropColumns)
			got := map[string]string{}
			for _, c := range cols {
				got[c.Name] = c.Type
			}
			for name, typ := range tc.types {
				if got[name] != typ {
					t.Errorf("column %q: %s, want %s", name, got[name], typ)
				}
			}
		})
	}
}

func digestOf(t *testing.T, store *artifacts.Store, params map[string]any) string {
	t.Helper()
	a, err := importTo(t, store, tempRoot(t), params)
	if err != nil {
		t.Fatal(err)
	}
	return a.Digest
}

func TestDeterministicDigest(t *testing.T) {
	store := artifacts.NewStore()
	defer store.Close()
	src := testenv.VegaData(t, "movies.json")
	p := map[string]any{"source": src, "split": "train=0.8,eval=0.2", "seed": int64(7)}
	first, second := digestOf(t, store, p), digestOf(t, store, p)
	if first != second {
		t.Errorf("same input, parameters and seed gave digests %s and %s", first, second)
	}
	p["seed"] = int64(8)
	if other := digestOf(t, store, p); other == first {
		t.Error("another seed gave the same split")
	}
}

func TestSplitKeyKeepsGroupsTogether(t *testing.T) {
	store := artifacts.NewStore()
	defer store.Close()
	a, err := importTo(t, store, tempRoot(t), map[string]any{"source": testenv.VegaData(t, "cars.json"), "split-key": "Origin", "split": "a=1,b=1"})
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]string{}
	for _, split := range []string{"a", "b"} {
		for rec, err := range a.Records(context.Background(), split, artifacts.ReadOptions{Columns: []string{"Origin"}}) {
			if err != nil {
				t.Fatal(err)
			}
			col := rec.Column(0).(*array.String)
			for i := range col.Len() {
				if prev, ok := where[col.Value(i)]; ok && prev != split {
					t.Fatalf("origin %s in splits %s and %s", col.Value(i), prev, split)
				}
				where[col.Value(i)] = split
			}
		}
	}
	if len(where) != 3 {
		t.Errorf("origins %v, want 3", where)
	}
}

// TestS3SourceAndOutput imports from and to a real S3-compatible server.
func TestS3SourceAndOutput(t *testing.T) {
	s3 := testenv.StartS3(t)
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()
	raw, err := os.ReadFile(testenv.VegaData(t, "seattle-weather.csv"))
	if err != nil {
		t.Fatal(err)
	}
	src := artifacts.MustParseURI(s3.URL("raw/seattle-weather.csv"))
	b, err := store.Bucket(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WriteAll(ctx, src.Path, raw, nil); err != nil {
		t.Fatal(err)
	}
	a, err := importTo(t, store, artifacts.MustParseURI(s3.URL("runs/1")), map[string]any{"source": s3.URL("raw/*.csv")})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := artifacts.Property[int64](a.Sidecar, artifacts.PropRowCount); n != 1461 {
		t.Errorf("row_count %d, want 1461", n)
	}
	if err := a.Verify(ctx); err != nil {
		t.Error(err)
	}
	if strings.Contains(a.URI, "secret") {
		t.Errorf("URI %s", a.URI)
	}
}

// TestSplitByValue cuts seattle-weather by year with --split-by: every row
// lands in the split its date claims, and the years no split names are
// left out and counted.
func TestSplitByValue(t *testing.T) {
	store := artifacts.NewStore()
	defer store.Close()
	ctx := context.Background()
	a, err := importTo(t, store, tempRoot(t), map[string]any{"source": testenv.VegaData(t, "seattle-weather.csv"),
		"split-by": "date", "split": "train=2012|2013-0,serving=2015"})
	if err != nil {
		t.Fatal(err)
	}
	// 2012 is a leap year; "2013-0" claims January to September 2013.
	want := map[string]int{"train": 366 + 273, "serving": 365}
	for split, n := range want {
		rows := 0
		for rec, err := range a.Records(ctx, split, artifacts.ReadOptions{Columns: []string{"date"}}) {
			if err != nil {
				t.Fatal(err)
			}
			col := rec.Column(0)
			for i := range col.Len() {
				day := col.ValueStr(i)
				ok := strings.HasPrefix(day, "2015")
				if split == "train" {
					ok = strings.HasPrefix(day, "2012") || day >= "2013-01" && day < "2013-10"
				}
				if !ok {
					t.Fatalf("split %s holds %s", split, day)
				}
			}
			rows += int(rec.NumRows())
		}
		if rows != n {
			t.Errorf("split %s: %d rows, want %d", split, rows, n)
		}
	}
	unmatched, err := artifacts.Property[int64](a.Sidecar, "unmatched_rows")
	if err != nil || unmatched != 1461-366-273-365 {
		t.Errorf("unmatched_rows %d (%v), want %d", unmatched, err, 1461-366-273-365)
	}

	bad := []struct {
		params map[string]any
		msg    string
	}{
		{map[string]any{"split-by": "date", "split-key": "date", "split": "a=2012"}, "not both"},
		{map[string]any{"split-by": "day", "split": "a=2012"}, `--split-by "day": no such column (columns: "date"`},
		{map[string]any{"split-by": "date", "split": "a=2012|"}, "split a has an empty value"},
		{map[string]any{"split-by": "date", "split": "a=2012,a=2013"}, "split a named twice"},
		{map[string]any{"split-by": "date", "split": "2012"}, "want NAME=PREFIX"},
	}
	for _, b := range bad {
		b.params["source"] = testenv.VegaData(t, "seattle-weather.csv")
		_, err := importTo(t, store, tempRoot(t), b.params)
		if err == nil || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("%v: error %v, want one containing %q", b.params, err, b.msg)
		}
	}
}
