package tabular_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/tabular"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// checkedMem returns an allocator that fails t if anything is still
// allocated when the test ends.
func checkedMem(t testing.TB) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// table is a read result in a form tests can compare: column names and
// types, rows of ValueStr cells ("(null)" for null) and batch sizes.
type table struct {
	names   []string
	types   []string
	rows    [][]string
	batches []int64
	counted int64 // Reader.Rows at the end
}

// drain reads every batch, checking each is consistent, and releases it.
func drain(t testing.TB, rd tabular.Reader) (table, error) {
	t.Helper()
	var tb table
	for _, f := range rd.Schema().Fields() {
		tb.names = append(tb.names, f.Name)
		tb.types = append(tb.types, f.Type.String())
	}
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.counted = rd.Rows()
			return tb, err
		}
		if !rec.Schema().Equal(rd.Schema()) {
			t.Errorf("batch schema %v, reader schema %v", rec.Schema(), rd.Schema())
		}
		n := int(rec.NumRows())
		for c := 0; c < int(rec.NumCols()); c++ {
			if got := rec.Column(c).Len(); got != n {
				t.Errorf("column %d has %d values in a batch of %d rows", c, got, n)
			}
		}
		for i := 0; i < n; i++ {
			row := make([]string, rec.NumCols())
			for c := range row {
				row[c] = rec.Column(c).ValueStr(i)
			}
			tb.rows = append(tb.rows, row)
		}
		tb.batches = append(tb.batches, rec.NumRows())
		rec.Release()
	}
	tb.counted = rd.Rows()
	if tb.counted != int64(len(tb.rows)) {
		t.Errorf("Rows() = %d, batches held %d rows", tb.counted, len(tb.rows))
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Errorf("Next after the end = %v, want io.EOF", err)
	}
	return tb, nil
}

// readString opens in as format and drains it; the error is the first one
// from opening or reading.
func readString(t testing.TB, in, name string, format tabular.Format, opts tabular.Options) (table, error) {
	t.Helper()
	if opts.Allocator == nil {
		opts.Allocator = checkedMem(t)
	}
	rd, err := tabular.NewReader(context.Background(), strings.NewReader(in), name, format, opts)
	if err != nil {
		return table{}, err
	}
	defer rd.Close()
	return drain(t, rd)
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if strings.Join(a[i], "\x00") != strings.Join(b[i], "\x00") || len(a[i]) != len(b[i]) {
			return false
		}
	}
	return true
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

// wantParseError checks err is a *ParseError with the given line and
// column whose text is msg (when msg is not empty).
func wantParseError(t *testing.T, err error, line int, column, msg string) *tabular.ParseError {
	t.Helper()
	var pe *tabular.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T), want a *ParseError", err, err)
	}
	if pe.Line != line || pe.Column != column {
		t.Errorf("ParseError line %d column %q, want line %d column %q (%v)", pe.Line, pe.Column, line, column, err)
	}
	if msg != "" && err.Error() != msg {
		t.Errorf("error text\n got: %s\nwant: %s", err.Error(), msg)
	}
	return pe
}

// vegaFile is the path of a vega dataset (skips, or fails under CI, when
// it has not been fetched).
func vegaFile(t testing.TB, name string) string { return testenv.VegaData(t, name) }

func TestFormatFromName(t *testing.T) {
	tests := []struct {
		name    string
		want    tabular.Format
		wantErr string
	}{
		{"penguins.csv", tabular.FormatCSV, ""},
		{"dir.v2/DATA.CSV", tabular.FormatCSV, ""},
		{"unemployment.tsv", tabular.FormatTSV, ""},
		{"cars.json", tabular.FormatJSON, ""},
		{"rows.jsonl", tabular.FormatJSONL, ""},
		{"rows.NDJSON", tabular.FormatJSONL, ""},
		{"flights-3m.parquet", tabular.FormatParquet, ""},
		{"penguins.csv.gz", "", "penguins.csv.gz: compressed"},
		{"notes.txt", "", "notes.txt: unknown extension"},
		{"README", "", "README: no file extension"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tabular.FormatFromName(tt.name)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("FormatFromName(%q) error = %v, want prefix %q", tt.name, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("FormatFromName(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want tabular.Format
		ok   bool
	}{
		{"csv", tabular.FormatCSV, true},
		{"TSV", tabular.FormatTSV, true},
		{"json", tabular.FormatJSON, true},
		{"jsonl", tabular.FormatJSONL, true},
		{"ndjson", tabular.FormatJSONL, true},
		{" Parquet ", tabular.FormatParquet, true},
		{"xlsx", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := tabular.ParseFormat(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestNewReaderArguments(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		r      io.Reader
		format tabular.Format
		opts   tabular.Options
		want   string
	}{
		{"unknown format", strings.NewReader("a\n1\n"), "xlsx", tabular.Options{}, `unknown format "xlsx"`},
		{"parquet needs a seeker", io.MultiReader(strings.NewReader("PAR1")), tabular.FormatParquet, tabular.Options{}, "needs an io.ReaderAt and io.Seeker"},
		{"negative batch size", strings.NewReader("a\n1\n"), tabular.FormatCSV, tabular.Options{BatchSize: -1}, "batch size -1"},
		{"duplicate schema field", strings.NewReader("a\n1\n"), tabular.FormatCSV, tabular.Options{Schema: arrow.NewSchema([]arrow.Field{
			{Name: "a", Type: arrow.BinaryTypes.String}, {Name: "a", Type: arrow.BinaryTypes.String}}, nil)}, `column "a" appears twice`},
		{"unsupported schema type", strings.NewReader("a\n1\n"), tabular.FormatCSV, tabular.Options{Schema: arrow.NewSchema([]arrow.Field{
			{Name: "a", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)}}, nil)}, `column "a": type list`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd, err := tabular.NewReader(ctx, tt.r, "in", tt.format, tt.opts)
			if err == nil {
				rd.Close()
				t.Fatalf("NewReader succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
			var pe *tabular.ParseError
			if errors.As(err, &pe) {
				t.Errorf("argument error %v is a ParseError; only data errors should be", err)
			}
		})
	}
}

func TestContextCancelled(t *testing.T) {
	var in strings.Builder
	in.WriteString("a\n")
	for range 100 {
		in.WriteString("1\n")
	}
	for _, format := range []tabular.Format{tabular.FormatCSV, tabular.FormatJSONL} {
		t.Run(string(format), func(t *testing.T) {
			src := in.String()
			if format == tabular.FormatJSONL {
				src = strings.Repeat(`{"a":1}`+"\n", 100)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rd, err := tabular.NewReader(ctx, strings.NewReader(src), "in", format, tabular.Options{BatchSize: 10, Allocator: checkedMem(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			rec, err := rd.Next()
			if err != nil {
				t.Fatal(err)
			}
			rec.Release()
			cancel()
			if _, err := rd.Next(); !errors.Is(err, context.Canceled) {
				t.Fatalf("Next after cancel = %v, want context.Canceled", err)
			}
			if _, err := tabular.NewReader(ctx, strings.NewReader(src), "in", format, tabular.Options{}); !errors.Is(err, context.Canceled) {
				t.Fatalf("NewReader with a cancelled context = %v, want context.Canceled", err)
			}
		})
	}
}

func TestParseErrorText(t *testing.T) {
	tests := []struct {
		err  *tabular.ParseError
		want string
	}{
		{&tabular.ParseError{File: "a.csv", Line: 3, Err: errors.New("boom")}, "a.csv:3: boom"},
		{&tabular.ParseError{File: "a.csv", Err: errors.New("boom")}, "a.csv: boom"},
		{&tabular.ParseError{File: "a.csv", Line: 2, Column: "x", Value: "v", Err: errors.New("boom")}, `a.csv:2: column "x": value "v": boom`},
		{&tabular.ParseError{File: "a.csv", Line: 2, Column: "x"}, `a.csv:2: column "x": invalid data`},
		{&tabular.ParseError{File: "a.csv", Value: strings.Repeat("x", 200), Err: errors.New("boom")}, `a.csv: value "` + strings.Repeat("x", 120) + `...": boom`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	inner := errors.New("inner")
	if !errors.Is(&tabular.ParseError{Err: inner}, inner) {
		t.Error("ParseError does not unwrap to Err")
	}
}

func TestReadErrorIsNotParseError(t *testing.T) {
	boom := errors.New("disk on fire")
	tests := []struct {
		format tabular.Format
		head   string
	}{
		{tabular.FormatCSV, "a\n1\n"},
		{tabular.FormatJSON, `[{"a":1},`},
		{tabular.FormatJSONL, "{\"a\":1}\n"},
	}
	for _, tt := range tests {
		t.Run(string(tt.format), func(t *testing.T) {
			r := io.MultiReader(strings.NewReader(tt.head), iotest.ErrReader(boom))
			_, err := func() (table, error) {
				rd, err := tabular.NewReader(context.Background(), r, "in", tt.format, tabular.Options{Allocator: checkedMem(t)})
				if err != nil {
					return table{}, err
				}
				defer rd.Close()
				return drain(t, rd)
			}()
			if !errors.Is(err, boom) {
				t.Fatalf("error %v, want it to wrap the read error", err)
			}
			var pe *tabular.ParseError
			if errors.As(err, &pe) {
				t.Errorf("read error %v reported as a ParseError", err)
			}
		})
	}
}

func TestLeadingZeroKeepsText(t *testing.T) {
	r, err := tabular.NewCSVReader(strings.NewReader("zip,n,f\n00501,0,0.5\n10001,10,-0.25\n"), "zips.csv", ',', tabular.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := []arrow.Type{arrow.STRING, arrow.INT64, arrow.FLOAT64}
	for i, f := range r.Schema().Fields() {
		if f.Type.ID() != want[i] {
			t.Errorf("column %s: %s, want %s", f.Name, f.Type, want[i])
		}
	}
}
