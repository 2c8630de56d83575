package serve_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/oip"
	"github.com/mlsteps/mlsteps/components/serve"
)

// negate is a model of one input "x" [N] whose output "y" is -x.
type negate struct{}

func (negate) ModelID() string                                                     { return "negate" }
func (negate) BatchSizes() (int, int)                                              { return 0, 0 }
func (negate) ByteSize() int64                                                     { return 0 }
func (negate) Close() error                                                        { return nil }
func (n negate) Load(context.Context, *inference.Metrics) (inference.Model, error) { return n, nil }

func (negate) Run(_ context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	x := batch.Column(0).(*array.Float32)
	b := array.NewFloat32Builder(memory.DefaultAllocator)
	defer b.Release()
	for i := range x.Len() {
		b.Append(-x.Value(i))
	}
	y := b.NewArray()
	defer y.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "y", Type: arrow.PrimitiveTypes.Float32}}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{y}, int64(x.Len())), nil
}

func Example() {
	srv, err := serve.New(context.Background(), []serve.Model{{Name: "negate", Handler: negate{},
		Inputs:  []oip.TensorMetadata{{Name: "x", Datatype: oip.FP32, Shape: []int64{-1}}},
		Outputs: []oip.TensorMetadata{{Name: "y", Datatype: oip.FP32, Shape: []int64{-1}}}}}, serve.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	ts := httptest.NewServer(srv)
	defer ts.Close()

	for _, body := range []string{
		`{"id":"a","inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1.5,-2]}]}`,
		`{"inputs":[{"name":"x","datatype":"INT64","shape":[1],"data":[1]}]}`,
	} {
		resp, err := http.Post(ts.URL+"/v2/models/negate/infer", "application/json", strings.NewReader(body))
		if err != nil {
			fmt.Println(err)
			return
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(out))
	}
	// Output:
	// 200 {"model_name":"negate","model_version":"1","id":"a","outputs":[{"name":"y","shape":[2],"datatype":"FP32","data":[-1.5,2]}]}
	// 400 {"error":"input \"x\": datatype INT64, the model takes FP32"}
}
