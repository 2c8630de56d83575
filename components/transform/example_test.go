package transform_test

import (
	"context"
	"fmt"
	"iter"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/transform"
)

func Example() {
	// A small table: a number with a missing value and a category.
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "mass", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "island", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.Float64Builder).AppendValues([]float64{2, 4, 0}, []bool{true, true, false})
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"Biscoe", "Dream", "Biscoe"}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()

	spec, err := transform.ParseSpec("transform.yaml", []byte(`
features:
  mass: [impute: mean, zscore]
  island: [vocabulary: {}, one_hot]
`))
	if err != nil {
		panic(err)
	}
	g, err := transform.Compile(spec, []transform.Input{{Name: "mass", Kind: transform.Numeric}, {Name: "island", Kind: transform.Categorical}}, rec.NumRows())
	if err != nil {
		panic(err)
	}
	// Fit reads its source once per pass; here the source is one batch.
	src := func() iter.Seq2[arrow.RecordBatch, error] {
		return func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }
	}
	if err := transform.Fit(context.Background(), g, src); err != nil {
		panic(err)
	}
	out, err := g.Apply(rec)
	if err != nil {
		panic(err)
	}
	fmt.Println(g.Order)
	for r := range rec.NumRows() {
		var cells []string
		for _, c := range out {
			cells = append(cells, fmt.Sprintf("%5.2f", math.Round(float64(c[r])*100)/100))
		}
		fmt.Println(strings.Join(cells, " "))
	}
	// Output:
	// [mass island_onehot_0 island_onehot_1 island_onehot_2]
	// -1.22  1.00  0.00  0.00
	//  1.22  0.00  1.00  0.00
	//  0.00  1.00  0.00  0.00
}

// Two shards analyze their rows apart; the merge finishes the pass from
// their states, in shard order, and fits what one process fits.
func ExampleGraph_Analyze() {
	schema := arrow.NewSchema([]arrow.Field{{Name: "mass", Type: arrow.PrimitiveTypes.Float64}}, nil)
	batch := func(xs ...float64) arrow.RecordBatch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		b.Field(0).(*array.Float64Builder).AppendValues(xs, nil)
		return b.NewRecordBatch()
	}
	shards := []arrow.RecordBatch{batch(1, 2, 3), batch(4, 10)}
	spec, err := transform.ParseSpec("transform.yaml", []byte("features:\n  mass: [zscore]\n"))
	if err != nil {
		panic(err)
	}
	compile := func() *transform.Graph {
		g, err := transform.Compile(spec, []transform.Input{{Name: "mass", Kind: transform.Numeric}}, 5)
		if err != nil {
			panic(err)
		}
		return g
	}
	var states []*transform.PassState
	for _, rec := range shards { // in each shard
		st, err := compile().Analyze(context.Background(), func() iter.Seq2[arrow.RecordBatch, error] {
			return func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }
		})
		if err != nil {
			panic(err)
		}
		states = append(states, st)
	}
	g := compile() // in the merge
	if err := g.FinishPass(states); err != nil {
		panic(err)
	}
	s := g.Features[0].Steps[0]
	fmt.Printf("fitted %v: mean %.1f, std %.1f\n", g.Fitted(), s.Mean, s.Std)
	// Output:
	// fitted true: mean 4.0, std 3.2
}
