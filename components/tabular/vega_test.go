package tabular_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/mlsteps/mlsteps/components/tabular"
)

// readFile reads a file through NewReader with a leak-checked allocator.
func readFile(t *testing.T, path string, opts tabular.Options) table {
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
	if opts.Allocator == nil {
		opts.Allocator = checkedMem(t)
	}
	rd, err := tabular.NewReader(context.Background(), f, path, format, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	tb, err := drain(t, rd)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestVegaSchemas(t *testing.T) {
	tests := []struct {
		file  string
		rows  int // -1: any
		names []string
		types []string
		first []string // the first row, as ValueStr
	}{
		{
			file:  "penguins.json",
			rows:  344,
			names: []string{"Species", "Island", "Beak Length (mm)", "Beak Depth (mm)", "Flipper Length (mm)", "Body Mass (g)", "Sex"},
			types: []string{"utf8", "utf8", "float64", "float64", "int64", "int64", "utf8"},
			first: []string{"Adelie", "Torgersen", "39.1", "18.7", "181", "3750", "MALE"},
		},
		{
			file:  "seattle-weather.csv",
			rows:  1461,
			names: []string{"date", "precipitation", "temp_max", "temp_min", "wind", "weather"},
			types: []string{"timestamp[us]", "float64", "float64", "float64", "float64", "utf8"},
			first: []string{"2012-01-01T00:00:00", "0", "12.8", "5", "4.7", "drizzle"},
		},
		{file: "cars.json", rows: -1},
		{file: "movies.json", rows: -1},
		{file: "birdstrikes.csv", rows: -1},
		{file: "unemployment.tsv", rows: -1},
		{file: "flights-200k.json", rows: 200000},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := vegaFile(t, tt.file)
			got := readFile(t, path, tabular.Options{})
			t.Logf("%s: %d rows, %d batches, columns %q, types %q", tt.file, len(got.rows), len(got.batches), got.names, got.types)
			if tt.rows >= 0 && len(got.rows) != tt.rows {
				t.Errorf("%d rows, want %d", len(got.rows), tt.rows)
			}
			if len(got.rows) == 0 {
				t.Error("no rows")
			}
			if tt.names != nil && !equalStrings(got.names, tt.names) {
				t.Errorf("names %q, want %q", got.names, tt.names)
			}
			if tt.types != nil && !equalStrings(got.types, tt.types) {
				t.Errorf("types %q, want %q", got.types, tt.types)
			}
			if tt.first != nil && !equalStrings(got.rows[0], tt.first) {
				t.Errorf("first row %q, want %q", got.rows[0], tt.first)
			}
		})
	}
}

// TestVegaPenguinsNulls checks the nulls penguins.json has: two penguins
// with no measurements and a few with no recorded sex.
func TestVegaPenguinsNulls(t *testing.T) {
	got := readFile(t, vegaFile(t, "penguins.json"), tabular.Options{BatchSize: 100})
	if want := []int64{100, 100, 100, 44}; !equalInts(got.batches, want) {
		t.Errorf("batches %v, want %v", got.batches, want)
	}
	nullMass, nullSex := 0, 0
	for _, row := range got.rows {
		if row[5] == null {
			nullMass++
		}
		if row[6] == null {
			nullSex++
		}
	}
	if nullMass != 2 || nullSex == 0 {
		t.Errorf("%d null body masses (want 2), %d null sexes (want some)", nullMass, nullSex)
	}
}

// TestVegaLateType reads a real file with a sample too short to see a
// column's wider values, expects the error to say where, then does the
// two-pass read that fixes it.
func TestVegaLateType(t *testing.T) {
	path := vegaFile(t, "cars.json")
	ctx := context.Background()
	open := func() *os.File {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	// The first cars have whole miles per gallon; later ones do not.
	_, err := func() (table, error) {
		rd, err := tabular.NewReader(ctx, open(), "cars.json", tabular.FormatJSON, tabular.Options{InferRows: 5, Allocator: checkedMem(t)})
		if err != nil {
			return table{}, err
		}
		defer rd.Close()
		return drain(t, rd)
	}()
	var pe *tabular.ParseError
	if !errors.As(err, &pe) || pe.Line == 0 || pe.Column == "" || pe.Value == "" {
		t.Fatalf("short sample: error %v, want a ParseError naming line, column and value", err)
	}
	t.Log(err)

	schema, err := tabular.InferSchema(ctx, open(), "cars.json", tabular.FormatJSON, tabular.Options{InferRows: -1})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := tabular.NewReader(ctx, open(), "cars.json", tabular.FormatJSON, tabular.Options{Schema: schema, Allocator: checkedMem(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got, err := drain(t, rd)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.rows) != 406 {
		t.Errorf("%d rows, want 406", len(got.rows))
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
