package tabular_test

import (
	"context"
	"encoding/csv"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/components/tabular"
)

const null = "(null)"

func TestCSVInference(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		format tabular.Format
		opts   tabular.Options
		names  []string
		types  []string
		rows   [][]string
	}{
		{
			name:  "bool",
			in:    "a\ntrue\nFALSE\nTrue\n",
			types: []string{"bool"},
			rows:  [][]string{{"true"}, {"false"}, {"true"}},
		},
		{
			name:  "int",
			in:    "a,b\n1,-2\n30,+4\n",
			types: []string{"int64", "int64"},
			rows:  [][]string{{"1", "-2"}, {"30", "4"}},
		},
		{
			name:  "float",
			in:    "a\n1.5\n-2e3\n.25\n",
			types: []string{"float64"},
			rows:  [][]string{{"1.5"}, {"-2000"}, {"0.25"}},
		},
		{
			name:  "mixed int and float",
			in:    "a\n1\n2.5\n3\n",
			types: []string{"float64"},
			rows:  [][]string{{"1"}, {"2.5"}, {"3"}},
		},
		{
			name:  "int beyond int64 is float",
			in:    "a\n1\n99999999999999999999\n",
			types: []string{"float64"},
			rows:  [][]string{{"1"}, {"1e+20"}},
		},
		{
			name:  "NaN in a float column",
			in:    "a\n1.5\nNaN\n",
			types: []string{"float64"},
			rows:  [][]string{{"1.5"}, {"NaN"}},
		},
		{
			name:  "dates",
			in:    "d\n2012-01-01\n2012-02-29\n",
			types: []string{"timestamp[us]"},
			rows:  [][]string{{"2012-01-01T00:00:00"}, {"2012-02-29T00:00:00"}},
		},
		{
			name: "timestamp variants",
			in: "t\n2020-01-02T03:04:05\n2020-01-02 03:04:05.5\n2020-01-02T03:04:05Z\n" +
				"2020-01-02T05:04:05+02:00\n2020-01-02T01:34:05.123456-01:30\n2020-01-02t03:04:05.123456789z\n",
			types: []string{"timestamp[us]"},
			rows: [][]string{
				{"2020-01-02T03:04:05"}, {"2020-01-02T03:04:05.5"}, {"2020-01-02T03:04:05"},
				{"2020-01-02T03:04:05"}, {"2020-01-02T03:04:05.123456"}, {"2020-01-02T03:04:05.123456"},
			},
		},
		{
			name:  "invalid dates are strings",
			in:    "a,b,c,d\n2020-01-01,2020-01-01,2020-01-01,2020-01-01T00:00:00\n2020-02-30,2020-13-01,2020/01/01,2020-01-01T24:00:00\n",
			types: []string{"utf8", "utf8", "utf8", "utf8"},
			rows:  [][]string{{"2020-01-01", "2020-01-01", "2020-01-01", "2020-01-01T00:00:00"}, {"2020-02-30", "2020-13-01", "2020/01/01", "2020-01-01T24:00:00"}},
		},
		{
			name:  "string",
			in:    "s,n\nAdelie,1\nGentoo,x\n",
			types: []string{"utf8", "utf8"},
			rows:  [][]string{{"Adelie", "1"}, {"Gentoo", "x"}},
		},
		{
			name:  "bool mixed with numbers is string",
			in:    "a\ntrue\n1\n",
			types: []string{"utf8"},
			rows:  [][]string{{"true"}, {"1"}},
		},
		{
			name:  "all null is string",
			in:    "a,b\n,1\nNA,2\n",
			types: []string{"utf8", "int64"},
			rows:  [][]string{{null, "1"}, {null, "2"}},
		},
		{
			name:  "NA and empty are null in every type",
			in:    "b,i,f,t,s\ntrue,1,1.5,2020-01-01,x\nNA,NA,NA,NA,NA\n,,,,\n",
			types: []string{"bool", "int64", "float64", "timestamp[us]", "utf8"},
			rows: [][]string{
				{"true", "1", "1.5", "2020-01-01T00:00:00", "x"},
				{null, null, null, null, null},
				{null, null, null, null, null},
			},
		},
		{
			name:  "NullValues override",
			in:    "a,b\n-,1\nNA,\n",
			opts:  tabular.Options{NullValues: []string{"-"}},
			types: []string{"utf8", "utf8"},
			rows:  [][]string{{null, "1"}, {"NA", ""}},
		},
		{
			name:  "empty NullValues means no nulls",
			in:    "a,b\n,1\nx,2\n",
			opts:  tabular.Options{NullValues: []string{}},
			types: []string{"utf8", "int64"},
			rows:  [][]string{{"", "1"}, {"x", "2"}},
		},
		{
			name:  "header names kept, empty ones numbered",
			in:    "Beak Length (mm),,  x \n1,2,3\n",
			names: []string{"Beak Length (mm)", "column_2", "  x "},
			types: []string{"int64", "int64", "int64"},
			rows:  [][]string{{"1", "2", "3"}},
		},
		{
			name:  "byte order mark dropped",
			in:    "\ufeffa,b\n1,2\n",
			names: []string{"a", "b"},
			types: []string{"int64", "int64"},
			rows:  [][]string{{"1", "2"}},
		},
		{
			name:  "quoted fields span lines",
			in:    "a,b\n\"x\ny\",1\n\"say \"\"hi\"\"\",2\n",
			types: []string{"utf8", "int64"},
			rows:  [][]string{{"x\ny", "1"}, {`say "hi"`, "2"}},
		},
		{
			name:  "header only",
			in:    "a,b\n",
			types: []string{"utf8", "utf8"},
		},
		{
			name:   "tsv",
			in:     "a\tb\n1\tx,y\n",
			format: tabular.FormatTSV,
			types:  []string{"int64", "utf8"},
			rows:   [][]string{{"1", "x,y"}},
		},
		{
			name:  "InferRows negative reads every row",
			in:    "a\n1\n2\n3\nx\n",
			opts:  tabular.Options{InferRows: -1, BatchSize: 2},
			types: []string{"utf8"},
			rows:  [][]string{{"1"}, {"2"}, {"3"}, {"x"}},
		},
		{
			name:  "sample smaller than a batch, streaming continues",
			in:    "a\n1\n2\n3\n4\n5\n6\n7\n",
			opts:  tabular.Options{InferRows: 3, BatchSize: 2},
			types: []string{"int64"},
			rows:  [][]string{{"1"}, {"2"}, {"3"}, {"4"}, {"5"}, {"6"}, {"7"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			format := tt.format
			if format == "" {
				format = tabular.FormatCSV
			}
			got, err := readString(t, tt.in, "in.csv", format, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if tt.names != nil && !equalStrings(got.names, tt.names) {
				t.Errorf("names %q, want %q", got.names, tt.names)
			}
			if !equalStrings(got.types, tt.types) {
				t.Errorf("types %q, want %q", got.types, tt.types)
			}
			if !equalRows(got.rows, tt.rows) {
				t.Errorf("rows %q, want %q", got.rows, tt.rows)
			}
		})
	}
}

func TestCSVBatchSize(t *testing.T) {
	tests := []struct {
		rows, batch, infer int
		want               []int64
	}{
		{5, 2, 0, []int64{2, 2, 1}},
		{5, 5, 0, []int64{5}},
		{5, 0, 0, []int64{5}},
		{7, 3, 2, []int64{3, 3, 1}},
		{4, 1, 10, []int64{1, 1, 1, 1}},
		{0, 2, 0, nil},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.rows)+"/"+strconv.Itoa(tt.batch), func(t *testing.T) {
			in := "n\n"
			for i := range tt.rows {
				in += strconv.Itoa(i) + "\n"
			}
			got, err := readString(t, in, "in.csv", tabular.FormatCSV, tabular.Options{BatchSize: tt.batch, InferRows: tt.infer})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.batches) != len(tt.want) {
				t.Fatalf("batches %v, want %v", got.batches, tt.want)
			}
			for i := range got.batches {
				if got.batches[i] != tt.want[i] {
					t.Fatalf("batches %v, want %v", got.batches, tt.want)
				}
			}
			for i, row := range got.rows {
				if row[0] != strconv.Itoa(i) {
					t.Fatalf("row %d = %q, rows out of order", i, row)
				}
			}
			if got.counted != int64(tt.rows) {
				t.Errorf("Rows() = %d, want %d", got.counted, tt.rows)
			}
		})
	}
}

func TestCSVErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		opts   tabular.Options
		line   int
		column string
		msg    string
		is     error
	}{
		{
			name: "too few fields",
			in:   "a,b\n1,2\n3\n",
			line: 3,
			msg:  "in.csv:3: row has 1 fields, header has 2: wrong number of fields",
			is:   csv.ErrFieldCount,
		},
		{
			name: "too many fields after the sample",
			in:   "a,b\n1,2\n3,4\n5,6,7\n",
			opts: tabular.Options{InferRows: 1},
			line: 4,
			msg:  "in.csv:4: row has 3 fields, header has 2: wrong number of fields",
			is:   csv.ErrFieldCount,
		},
		{
			name:   "late value does not fit the inferred type",
			in:     "a,Body Mass (g)\nx,3750\ny,3800\nz,abc\n",
			opts:   tabular.Options{InferRows: 2},
			line:   4,
			column: "Body Mass (g)",
			msg:    `in.csv:4: column "Body Mass (g)": value "abc" is not int64 (type inferred from the first 2 rows; set a larger InferRows or a schema)`,
		},
		{
			name:   "late value after a multi-line field",
			in:     "a,b\n\"x\ny\",1\n\"p\nq\",2\nz,2.5\n",
			opts:   tabular.Options{InferRows: 1, BatchSize: 1},
			line:   6,
			column: "b",
			msg:    `in.csv:6: column "b": value "2.5" is not int64 (type inferred from the first 1 rows; set a larger InferRows or a schema)`,
		},
		{
			name:   "late value not a timestamp",
			in:     "d\n2020-01-01\nsoon\n",
			opts:   tabular.Options{InferRows: 1},
			line:   3,
			column: "d",
			msg:    `in.csv:3: column "d": value "soon" is not an ISO 8601 timestamp (type inferred from the first 1 rows; set a larger InferRows or a schema)`,
		},
		{
			name:   "late int overflow",
			in:     "a\n1\n99999999999999999999\n",
			opts:   tabular.Options{InferRows: 1},
			line:   3,
			column: "a",
			is:     strconv.ErrRange,
		},
		{
			name:   "NaN in an int column",
			in:     "a\n1\nNaN\n",
			opts:   tabular.Options{InferRows: 1},
			line:   3,
			column: "a",
		},
		{
			name:   "duplicate header",
			in:     "a,b,a\n1,2,3\n",
			line:   1,
			column: "a",
			msg:    `in.csv:1: column "a": duplicate header name in columns 1 and 3`,
		},
		{
			name:   "empty header clashes with a named one",
			in:     "column_2,\n1,2\n",
			line:   1,
			column: "column_2",
		},
		{
			name: "bare quote",
			in:   "a,b\n1,x\"y\n",
			line: 2,
			msg:  `in.csv:2: character 4: bare " in non-quoted-field`,
			is:   csv.ErrBareQuote,
		},
		{
			name: "unterminated quote",
			in:   "a\n\"abc\n",
			line: 2,
			is:   csv.ErrQuote,
		},
		{
			name: "empty input",
			in:   "",
			msg:  "in.csv: empty input: no header row",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readString(t, tt.in, "in.csv", tabular.FormatCSV, tt.opts)
			wantParseError(t, err, tt.line, tt.column, tt.msg)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

func TestCSVSchema(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "b", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "a", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Millisecond}, Nullable: true},
		{Name: "d", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: "u", Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "ls", Type: arrow.BinaryTypes.LargeString, Nullable: true},
	}, nil)
	in := "a,b,t,d,u,f,ok,ls\n" +
		"001,7,2020-01-02T03:04:05.678Z,2020-01-02,255,1.5,TRUE,x\n" +
		"NA,,,,,,,\n"
	got, err := readString(t, in, "in.csv", tabular.FormatCSV, tabular.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"b", "a", "t", "d", "u", "f", "ok", "ls"}
	if !equalStrings(got.names, wantNames) {
		t.Errorf("names %q, want the schema's order %q", got.names, wantNames)
	}
	want := [][]string{
		{"7", "001", "2020-01-02T03:04:05.678", "2020-01-02", "255", "1.5", "true", "x"},
		{null, null, null, null, null, null, null, null},
	}
	if !equalRows(got.rows, want) {
		t.Errorf("rows %q, want %q", got.rows, want)
	}

	errTests := []struct {
		name   string
		in     string
		schema *arrow.Schema
		line   int
		column string
		msg    string
	}{
		{
			name:   "column not in schema",
			in:     "a,b,extra\n1,2,3\n",
			schema: arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.BinaryTypes.String}, {Name: "b", Type: arrow.BinaryTypes.String}}, nil),
			line:   1,
			column: "extra",
			msg:    `in.csv:1: column "extra": column is in the header but not in the schema`,
		},
		{
			name:   "schema column missing",
			in:     "a\n1\n",
			schema: arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.BinaryTypes.String}, {Name: "gone", Type: arrow.BinaryTypes.String}}, nil),
			line:   1,
			column: "gone",
			msg:    `in.csv:1: column "gone": column is in the schema but not in the header`,
		},
		{
			name:   "value does not fit the given type",
			in:     "a\n1\n300\n",
			schema: arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int8, Nullable: true}}, nil),
			line:   3,
			column: "a",
			msg:    `in.csv:3: column "a": value "300" is not int8`,
		},
		{
			name:   "null in a non-nullable column",
			in:     "a\n1\nNA\n",
			schema: arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int64}}, nil),
			line:   3,
			column: "a",
			msg:    `in.csv:3: column "a": null in a non-nullable column`,
		},
		{
			name:   "date32 with a time",
			in:     "a\n2020-01-01T00:00:00\n",
			schema: arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.FixedWidthTypes.Date32, Nullable: true}}, nil),
			line:   2,
			column: "a",
			msg:    `in.csv:2: column "a": value "2020-01-01T00:00:00" is not an ISO 8601 date (YYYY-MM-DD)`,
		},
		{
			name:   "timestamp out of nanosecond range",
			in:     "a\n2300-01-01\n",
			schema: arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.FixedWidthTypes.Timestamp_ns, Nullable: true}}, nil),
			line:   2,
			column: "a",
		},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readString(t, tt.in, "in.csv", tabular.FormatCSV, tabular.Options{Schema: tt.schema})
			wantParseError(t, err, tt.line, tt.column, tt.msg)
		})
	}
}

// TestInferSchemaThenRead is the two-pass use: a full scan finds the type a
// short sample gets wrong, and the second pass reads with it.
func TestInferSchemaThenRead(t *testing.T) {
	in := "a,b\n1,x\n2,y\n3.5,z\n"
	ctx := context.Background()
	short, err := tabular.InferSchema(ctx, strings.NewReader(in), "in.csv", tabular.FormatCSV, tabular.Options{InferRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := short.Field(0).Type; !arrow.TypeEqual(got, arrow.PrimitiveTypes.Int64) {
		t.Errorf("short sample type %v, want int64", got)
	}
	full, err := tabular.InferSchema(ctx, strings.NewReader(in), "in.csv", tabular.FormatCSV, tabular.Options{InferRows: -1})
	if err != nil {
		t.Fatal(err)
	}
	if got := full.Field(0).Type; !arrow.TypeEqual(got, arrow.PrimitiveTypes.Float64) {
		t.Errorf("full scan type %v, want float64", got)
	}
	got, err := readString(t, in, "in.csv", tabular.FormatCSV, tabular.Options{Schema: full, InferRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"1", "x"}, {"2", "y"}, {"3.5", "z"}}; !equalRows(got.rows, want) {
		t.Errorf("rows %q, want %q", got.rows, want)
	}
}

func TestCSVReaderAfterClose(t *testing.T) {
	rd, err := tabular.NewCSVReader(strings.NewReader("a\n1\n"), "in.csv", ',', tabular.Options{Allocator: checkedMem(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := rd.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rd.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := rd.Next(); err == nil {
		t.Fatal("Next after Close succeeded")
	}
}

func TestCSVInvalidDelimiter(t *testing.T) {
	if _, err := tabular.NewCSVReader(strings.NewReader("a\n"), "in.csv", '"', tabular.Options{}); err == nil {
		t.Fatal(`delimiter '"' accepted`)
	}
}
