package transform_test

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/transform"
)

// fittedExample fits a two-feature transform on three rows.
func fittedExample() *transform.Graph {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "Body Mass (g)", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "Island", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{3750, 3800, 0}, []bool{true, true, false})
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"Torgersen", "Biscoe", ""}, []bool{true, true, false})
	rec := b.NewRecordBatch()
	spec, err := transform.ParseSpec("transform.yaml", []byte(`
features:
  "Body Mass (g)": [impute: median, scale_to_0_1]
  Island: [vocabulary: {}, one_hot]
`))
	if err != nil {
		panic(err)
	}
	g, err := transform.Compile(spec, []transform.Input{{Name: "Body Mass (g)", Kind: transform.Numeric}, {Name: "Island", Kind: transform.Categorical}}, 3)
	if err != nil {
		panic(err)
	}
	if err := transform.Fit(context.Background(), g, source([]arrow.RecordBatch{rec})); err != nil {
		panic(err)
	}
	return g
}

func ExampleGraph_ONNX() {
	g := fittedExample()
	m, err := g.ONNX()
	if err != nil {
		panic(err)
	}
	for _, in := range m.GetGraph().GetInput() {
		fmt.Println("input", in.GetName(), in.GetType().GetTensorType().GetElemType())
	}
	out := m.GetGraph().GetOutput()[0]
	fmt.Println("output", out.GetName(), len(g.Order), g.Order)
	// Output:
	// input Body Mass (g) 11
	// input Island 8
	// output features 4 [Body Mass (g) Island_onehot_0 Island_onehot_1 Island_onehot_2]
}

func ExampleFuse() {
	g := fittedExample()
	pre, err := g.ONNX()
	if err != nil {
		panic(err)
	}
	model, _, _ := softmaxModel(len(g.Order), 3)
	fused, err := transform.Fuse(pre, model, transform.FuseOptions{})
	if err != nil {
		panic(err)
	}
	for _, in := range fused.GetGraph().GetInput() {
		fmt.Println("input", in.GetName())
	}
	for _, out := range fused.GetGraph().GetOutput() {
		fmt.Println("output", out.GetName())
	}
	// Output:
	// input Body Mass (g)
	// input Island
	// output probabilities
}
