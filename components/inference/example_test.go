package inference_test

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/inference"
)

// fahrenheit is a model written in Go: any ModelHandler works with the
// engine, not only ONNX ones.
type fahrenheit struct{}

func (fahrenheit) ModelID() string        { return "c-to-f" }
func (fahrenheit) BatchSizes() (int, int) { return 0, 0 }
func (f fahrenheit) Load(context.Context, *inference.Metrics) (inference.Model, error) {
	return f, nil
}
func (fahrenheit) ByteSize() int64 { return 0 }
func (fahrenheit) Close() error    { return nil }
func (fahrenheit) Run(_ context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	c := batch.Column(0).(*array.Float64)
	var bad []inference.BadRow
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	defer b.Release()
	for i := range c.Len() {
		if c.IsNull(i) {
			bad = append(bad, inference.BadRow{Row: i, Reason: "no temperature"})
		}
		b.Append(c.Value(i)*9/5 + 32)
	}
	if bad != nil {
		return nil, &inference.BadRowsError{Rows: bad}
	}
	f := b.NewArray()
	defer f.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "fahrenheit", Type: arrow.PrimitiveTypes.Float64}}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{f}, int64(c.Len())), nil
}

func Example() {
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	b.AppendValues([]float64{0, 100, 0, 37}, []bool{true, true, false, true})
	col := b.NewArray()
	schema := arrow.NewSchema([]arrow.Field{{Name: "celsius", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, 4)
	src := func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }

	eng := inference.New(fahrenheit{}, inference.Options{MaxBatch: 2, Passthrough: []string{"celsius"}})
	defer eng.Close()
	snap, err := eng.Run(context.Background(), src, inference.Sink{
		Result: func(r inference.Result) error {
			for i, row := range r.Rows {
				fmt.Printf("row %d: %s °C = %s °F (%s)\n", row, r.Example.Column(0).ValueStr(i), r.Inference.Column(0).ValueStr(i), r.ModelID)
			}
			return nil
		},
		DeadLetter: func(d inference.DeadLetter) error {
			fmt.Printf("rows %v: dead letter: %s\n", d.Rows, d.Reason)
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
	}
	m := snap["c-to-f"]
	fmt.Printf("%s %d, %d batches\n", inference.NumInferences, m.NumInferences, m.InferenceRequestBatchSize.Count)
	// Output:
	// row 0: 0 °C = 32 °F (c-to-f)
	// row 1: 100 °C = 212 °F (c-to-f)
	// rows [2]: dead letter: no temperature
	// row 3: 37 °C = 98.6 °F (c-to-f)
	// num_inferences 3, 2 batches
}

func ExampleSplit() {
	split, err := inference.NewSplit([]float64{0.9, 0.1}) // champion, challenger
	if err != nil {
		panic(err)
	}
	arms := []string{"champion", "challenger"}
	n := map[string]int{}
	for i := range 10_000 {
		n[arms[split.Arm(fmt.Sprint("user-", i))]]++
	}
	// The same key gets the same arm in every run and process.
	fmt.Println(arms[split.Arm("user-42")], arms[split.Arm("user-42")])
	fmt.Printf("%.0f%% / %.0f%%\n", float64(n["champion"])/100, float64(n["challenger"])/100)
	// Output:
	// champion champion
	// 90% / 10%
}
