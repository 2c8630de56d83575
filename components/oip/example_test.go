package oip_test

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/oip"
)

// Two feature columns become one [N,2] FP32 input of a request.
func ExampleFromRecord() {
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	b.AppendValues([]float64{39.1, 46.5}, nil)
	beak := b.NewArray()
	b.AppendValues([]float64{3750, 3500}, nil)
	mass := b.NewArray()
	schema := arrow.NewSchema([]arrow.Field{{Name: "beak", Type: arrow.PrimitiveTypes.Float64}, {Name: "mass", Type: arrow.PrimitiveTypes.Float64}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{beak, mass}, 2)

	x, err := oip.FromRecord(rec, oip.InputSpec{Name: "x", Columns: []string{"beak", "mass"}, Datatype: oip.FP32})
	if err != nil {
		fmt.Println(err)
		return
	}
	req := oip.InferRequest{ID: "batch-1", Inputs: []oip.Tensor{x}, Outputs: []oip.RequestedOutput{{Name: "probs"}}}
	body, err := req.AppendJSON(nil)
	fmt.Println(string(body), err)
	// Output:
	// {"id":"batch-1","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[39.1,3750,46.5,3500]}],"outputs":[{"name":"probs"}]} <nil>
}

// A response's [N,C] output becomes C columns; nested data decodes too.
func ExampleTensor_ToColumns() {
	body := `{"model_name":"penguins","id":"batch-1","outputs":[
		{"name":"probs","shape":[2,3],"datatype":"FP32","data":[[0.7,0.2,0.1],[0.1,0.1,0.8]]}]}`
	resp, err := oip.ParseResponse([]byte(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	fields, cols, err := resp.Output("probs").ToColumns(2)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, f := range fields {
		fmt.Println(f.Name, f.Type, cols[i])
		cols[i].Release()
	}
	// Output:
	// probs_0 float32 [0.7 0.1]
	// probs_1 float32 [0.2 0.1]
	// probs_2 float32 [0.1 0.8]
}
