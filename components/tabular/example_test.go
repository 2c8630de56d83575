package tabular_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mlsteps/mlsteps/components/tabular"
)

func ExampleNewCSVReader() {
	in := `Species,Beak Length (mm),Body Mass (g),Observed
Adelie,39.1,3750,2007-11-11
Gentoo,NA,5000,2007-11-27
Chinstrap,46.5,3500,2007-11-19
`
	rd, err := tabular.NewCSVReader(strings.NewReader(in), "penguins.csv", ',', tabular.Options{BatchSize: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rd.Close()
	for _, f := range rd.Schema().Fields() {
		fmt.Printf("%s: %s\n", f.Name, f.Type)
	}
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(rec.NumRows(), "rows; beak lengths", rec.Column(1))
		rec.Release()
	}
	fmt.Println(rd.Rows(), "rows in all")
	// Output:
	// Species: utf8
	// Beak Length (mm): float64
	// Body Mass (g): int64
	// Observed: timestamp[us]
	// 2 rows; beak lengths [39.1 (null)]
	// 1 rows; beak lengths [46.5]
	// 3 rows in all
}

func ExampleNewJSONLReader() {
	in := `{"name": "a", "score": 1, "tags": ["x", "y"]}

{"name": "b", "score": 2.5}
`
	rd, err := tabular.NewJSONLReader(strings.NewReader(in), "scores.jsonl", tabular.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rd.Close()
	for _, f := range rd.Schema().Fields() {
		fmt.Printf("%s: %s\n", f.Name, f.Type)
	}
	rec, err := rd.Next()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rec.Release()
	fmt.Println(rec.Column(2))
	// Output:
	// name: utf8
	// score: float64
	// tags: utf8
	// ["[\"x\",\"y\"]" (null)]
}

// A value that does not fit the type inferred from the sample is a
// ParseError naming the file, line, column and value.
func ExampleParseError() {
	in := "id,mass\n1,3750\n2,3800\n3,unknown\n"
	rd, err := tabular.NewReader(context.Background(), strings.NewReader(in), "penguins.csv", tabular.FormatCSV, tabular.Options{InferRows: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rd.Close()
	_, err = rd.Next()
	var pe *tabular.ParseError
	if errors.As(err, &pe) {
		fmt.Println(pe.Line, pe.Column, pe.Value)
		fmt.Println(err)
	}
	// Output:
	// 4 mass unknown
	// penguins.csv:4: column "mass": value "unknown" is not int64 (type inferred from the first 2 rows; set a larger InferRows or a schema)
}

// A full pre-scan: infer from every row, then read with that schema.
func ExampleInferSchema() {
	in := "x\n1\n2\n2.5\n"
	ctx := context.Background()
	schema, err := tabular.InferSchema(ctx, strings.NewReader(in), "x.csv", tabular.FormatCSV, tabular.Options{InferRows: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	rd, err := tabular.NewReader(ctx, strings.NewReader(in), "x.csv", tabular.FormatCSV, tabular.Options{Schema: schema})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rd.Close()
	rec, err := rd.Next()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rec.Release()
	fmt.Println(rec.Schema().Field(0).Type, rec.Column(0))
	// Output:
	// float64 [1 2 2.5]
}
