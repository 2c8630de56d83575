package tabular_test

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/components/tabular"
)

func TestJSONInference(t *testing.T) {
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
			name: "every kind",
			in: `[{"i":1,"f":1.5,"s":"x","b":true,"n":null,"o":{"z":1, "a":[1, 2]},"t":"2020-01-01"},
			      {"i":-2,"f":2,"s":"y","b":false,"o":[],"t":"2020-01-01T10:00:00+01:00"}]`,
			names: []string{"i", "f", "s", "b", "n", "o", "t"},
			types: []string{"int64", "float64", "utf8", "bool", "utf8", "utf8", "timestamp[us]"},
			rows: [][]string{
				{"1", "1.5", "x", "true", null, `{"z":1,"a":[1,2]}`, "2020-01-01T00:00:00"},
				{"-2", "2", "y", "false", null, "[]", "2020-01-01T09:00:00"},
			},
		},
		{
			name:  "keys in first-seen order, missing keys null",
			in:    `[{"b":1},{"a":"x","b":2},{}]`,
			names: []string{"b", "a"},
			types: []string{"int64", "utf8"},
			rows:  [][]string{{"1", null}, {"2", "x"}, {null, null}},
		},
		{
			name:  "mixed kinds are strings with literal text",
			in:    `[{"a":1.50,"b":true,"c":{"k":null}},{"a":"x","b":2,"c":"y"}]`,
			types: []string{"utf8", "utf8", "utf8"},
			rows:  [][]string{{"1.50", "true", `{"k":null}`}, {"x", "2", "y"}},
		},
		{
			name:  "strings stay strings",
			in:    `[{"a":"1","b":"true"}]`,
			types: []string{"utf8", "utf8"},
			rows:  [][]string{{"1", "true"}},
		},
		{
			name:  "escapes decoded",
			in:    `[{"a":"say \"hi\"\n\u00e9"}]`,
			types: []string{"utf8"},
			rows:  [][]string{{"say \"hi\"\né"}},
		},
		{
			name:  "number beyond float64 is a string",
			in:    `[{"a":1e999}]`,
			types: []string{"utf8"},
			rows:  [][]string{{"1e999"}},
		},
		{
			name:  "empty array",
			in:    " [ ] \n",
			types: nil,
		},
		{
			name:  "objects with no keys",
			in:    `[{},{}]`,
			types: nil,
			rows:  [][]string{{}, {}},
		},
		{
			name:  "sample smaller than input",
			in:    `[{"a":1},{"a":2},{"a":null},{"a":4},{"a":5}]`,
			opts:  tabular.Options{InferRows: 2, BatchSize: 2},
			types: []string{"int64"},
			rows:  [][]string{{"1"}, {"2"}, {null}, {"4"}, {"5"}},
		},
		{
			name:   "jsonl with blank lines",
			in:     "{\"a\":1}\n\n   \n{\"a\":2,\"b\":\"x\"}\r\n\n{\"a\":3}",
			format: tabular.FormatJSONL,
			names:  []string{"a", "b"},
			types:  []string{"int64", "utf8"},
			rows:   [][]string{{"1", null}, {"2", "x"}, {"3", null}},
		},
		{
			name:   "empty jsonl",
			in:     "\n\n",
			format: tabular.FormatJSONL,
			types:  nil,
		},
		{
			name:   "jsonl line longer than the read buffer",
			in:     `{"a":"` + strings.Repeat("x", 200_000) + `"}` + "\n" + `{"a":"y"}`,
			format: tabular.FormatJSONL,
			types:  []string{"utf8"},
			rows:   [][]string{{strings.Repeat("x", 200_000)}, {"y"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			format := tt.format
			if format == "" {
				format = tabular.FormatJSON
			}
			got, err := readString(t, tt.in, "in.json", format, tt.opts)
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

func TestJSONErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		format tabular.Format
		opts   tabular.Options
		line   int
		column string
		msg    string
	}{
		{
			name: "element not an object",
			in:   "[\n{\"a\":1},\n5\n]",
			line: 3,
			msg:  "in.json:3: element 2 is not an object",
		},
		{
			name: "element not an object after the sample",
			in:   "[{\"a\":1},\n  {\"a\":2},\n\n  [1]]",
			opts: tabular.Options{InferRows: 1},
			line: 4,
			msg:  "in.json:4: element 3 is not an object",
		},
		{
			name: "top level not an array",
			in:   `{"a":1}`,
			line: 1,
			msg:  "in.json:1: top-level value is not an array; want a JSON array of objects (or use the jsonl format)",
		},
		{
			name: "empty input",
			in:   "  \n",
			msg:  "in.json: empty input; want a JSON array of objects",
		},
		{
			name:   "late new key",
			in:     "[\n{\"a\":1},\n{\"a\":2,\"b\":3}\n]",
			opts:   tabular.Options{InferRows: 1},
			line:   3,
			column: "b",
			msg:    `in.json:3: element 2, column "b": value "3": key first seen after the first 1 rows; set a larger InferRows or a schema`,
		},
		{
			name:   "late value of another kind",
			in:     "[{\"a\":1},\n{\"a\":2},\n{\"a\":\"x\"}]",
			opts:   tabular.Options{InferRows: 2},
			line:   3,
			column: "a",
			msg:    `in.json:3: element 3, column "a": value "x" is not int64 (type inferred from the first 2 rows; set a larger InferRows or a schema)`,
		},
		{
			name:   "late float in an int column",
			in:     "[{\"a\":1},\n{\"a\":2.5}]",
			opts:   tabular.Options{InferRows: 1},
			line:   2,
			column: "a",
		},
		{
			name: "syntax error",
			in:   "[{\"a\":1},\n{\"a\":}]",
			line: 2,
		},
		{
			name: "truncated",
			in:   "[{\"a\":1},\n{\"a\":",
			line: 2,
		},
		{
			name: "data after the array",
			in:   "[{\"a\":1}]\n[]",
			line: 2,
			msg:  "in.json:2: data after the top-level array",
		},
		{
			name:   "jsonl line not an object",
			in:     "{\"a\":1}\n\n[1]\n",
			format: tabular.FormatJSONL,
			line:   3,
			msg:    "in.json:3: line is not a JSON object",
		},
		{
			name:   "jsonl two objects on a line",
			in:     "{\"a\":1} {\"a\":2}\n",
			format: tabular.FormatJSONL,
			line:   1,
			msg:    "in.json:1: data after the object; want one object per line",
		},
		{
			name:   "jsonl late new key",
			in:     "{\"a\":1}\n\n{\"b\":1}\n",
			format: tabular.FormatJSONL,
			opts:   tabular.Options{InferRows: 1},
			line:   3,
			column: "b",
		},
		{
			name:   "jsonl late type",
			in:     "{\"a\":true}\n{\"a\":1}\n",
			format: tabular.FormatJSONL,
			opts:   tabular.Options{InferRows: 1},
			line:   2,
			column: "a",
			msg:    `in.json:2: column "a": value "1" is not bool (type inferred from the first 1 rows; set a larger InferRows or a schema)`,
		},
		{
			name:   "jsonl syntax error",
			in:     "{\"a\":1}\n{\"a\" 1}\n",
			format: tabular.FormatJSONL,
			line:   2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			format := tt.format
			if format == "" {
				format = tabular.FormatJSON
			}
			_, err := readString(t, tt.in, "in.json", format, tt.opts)
			wantParseError(t, err, tt.line, tt.column, tt.msg)
		})
	}
}

func TestJSONSchema(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "never", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "t", Type: arrow.FixedWidthTypes.Timestamp_s, Nullable: true},
	}, nil)
	in := `[{"s":5,"n":3.0,"t":"2020-01-01T00:00:01Z"},{"n":1e3,"s":{"k":[true]}}]`
	got, err := readString(t, in, "in.json", tabular.FormatJSON, tabular.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"3", "5", null, "2020-01-01T00:00:01Z"}, {"1000", `{"k":[true]}`, null, null}}
	if !equalRows(got.rows, want) {
		t.Errorf("rows %q, want %q", got.rows, want)
	}

	_, err = readString(t, `[{"n":1,"x":2}]`, "in.json", tabular.FormatJSON, tabular.Options{Schema: schema})
	wantParseError(t, err, 1, "x", `in.json:1: element 1, column "x": value "2": key is not in the schema`)

	_, err = readString(t, "{\"n\":1.5}\n", "in.jsonl", tabular.FormatJSONL, tabular.Options{Schema: schema})
	wantParseError(t, err, 1, "n", `in.jsonl:1: column "n": value "1.5" is not int64`)
}
