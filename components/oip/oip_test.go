package oip_test

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/oip"
)

// roundTrip encodes t in a response and decodes it again.
func roundTrip(t *testing.T, in oip.Tensor) oip.Tensor {
	t.Helper()
	resp := oip.InferResponse{ModelName: "m", ID: "1", Outputs: []oip.Tensor{in}}
	data, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var out oip.InferResponse
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	if out.ModelName != "m" || out.ID != "1" || len(out.Outputs) != 1 {
		t.Fatalf("decoded %+v from %s", out, data)
	}
	return out.Outputs[0]
}

func TestTensorRoundTrip(t *testing.T) {
	for _, in := range []oip.Tensor{
		{Name: "b", Datatype: oip.Bool, Shape: []int64{3}, Bools: []bool{true, false, true}},
		{Name: "i8", Datatype: oip.Int8, Shape: []int64{2}, Ints: []int64{-128, 127}},
		{Name: "i16", Datatype: oip.Int16, Shape: []int64{2}, Ints: []int64{-32768, 32767}},
		{Name: "i32", Datatype: oip.Int32, Shape: []int64{2}, Ints: []int64{math.MinInt32, math.MaxInt32}},
		{Name: "i64", Datatype: oip.Int64, Shape: []int64{2, 2}, Ints: []int64{math.MinInt64, math.MaxInt64, 0, -1}},
		{Name: "u8", Datatype: oip.Uint8, Shape: []int64{2}, Ints: []int64{0, 255}},
		{Name: "u16", Datatype: oip.Uint16, Shape: []int64{1}, Ints: []int64{65535}},
		{Name: "u32", Datatype: oip.Uint32, Shape: []int64{1}, Ints: []int64{math.MaxUint32}},
		{Name: "u64", Datatype: oip.Uint64, Shape: []int64{2}, Uints: []uint64{0, math.MaxUint64}},
		{Name: "f16", Datatype: oip.FP16, Shape: []int64{2}, Float32s: []float32{0.5, -65504}},
		{Name: "bf16", Datatype: oip.BF16, Shape: []int64{1}, Float32s: []float32{1.5}},
		{Name: "f32", Datatype: oip.FP32, Shape: []int64{2, 3},
			Float32s: []float32{math.MaxFloat32, math.SmallestNonzeroFloat32, -0.1, 1e-7, 3.4028235e+38, 0}},
		{Name: "f64", Datatype: oip.FP64, Shape: []int64{3}, Float64s: []float64{math.MaxFloat64, math.SmallestNonzeroFloat64, -1.0 / 3}},
		{Name: "s", Datatype: oip.Bytes, Shape: []int64{2, 2},
			Strings: []string{"plain", `quote " and \ backslash`, "tab\tnewline\n\x01", "Gentoo é 🐧"}},
		{Name: "empty", Datatype: oip.FP32, Shape: []int64{0, 4}, Float32s: []float32{}},
		{Name: "scalar", Datatype: oip.Int64, Shape: []int64{}, Ints: []int64{42}, Parameters: oip.Parameters{"content_type": "np"}},
	} {
		t.Run(in.Name, func(t *testing.T) {
			got := roundTrip(t, in)
			if !reflect.DeepEqual(got, in) {
				t.Errorf("got  %+v\nwant %+v", got, in)
			}
		})
	}
}

func TestDecodeForms(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       oip.Tensor
	}{
		{"flat", `{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}`,
			oip.Tensor{Name: "x", Shape: []int64{2, 3}, Datatype: oip.FP32, Float32s: []float32{1, 2, 3, 4, 5, 6}}},
		{"nested", `{"name":"x","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5,6]]}`,
			oip.Tensor{Name: "x", Shape: []int64{2, 3}, Datatype: oip.FP32, Float32s: []float32{1, 2, 3, 4, 5, 6}}},
		{"nested 3d with spaces", "{\"data\" : [ [ [1, 2] ,[3,4]],\n [[5,6],[7,8] ] ], \"datatype\":\"INT32\", \"shape\":[2,2,2], \"name\":\"y\"}",
			oip.Tensor{Name: "y", Shape: []int64{2, 2, 2}, Datatype: oip.Int32, Ints: []int64{1, 2, 3, 4, 5, 6, 7, 8}}},
		{"integral floats as ints", `{"name":"l","shape":[3],"datatype":"INT64","data":[1.0,2e0,-3.00]}`,
			oip.Tensor{Name: "l", Shape: []int64{3}, Datatype: oip.Int64, Ints: []int64{1, 2, -3}}},
		{"unknown fields ignored", `{"name":"s","shape":[1],"datatype":"BYTES","data":["a\u00e9\"b"],"extension":{"k":1}}`,
			oip.Tensor{Name: "s", Shape: []int64{1}, Datatype: oip.Bytes, Strings: []string{`aé"b`}}},
		{"empty nested rows", `{"name":"e","shape":[2,0],"datatype":"FP64","data":[[],[]]}`,
			oip.Tensor{Name: "e", Shape: []int64{2, 0}, Datatype: oip.FP64, Float64s: []float64{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got oip.Tensor
			if err := json.Unmarshal([]byte(tc.json), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"unknown datatype", `{"name":"x","shape":[1],"datatype":"FLOAT32","data":[1]}`, `unknown datatype "FLOAT32"`},
		{"no name", `{"shape":[1],"datatype":"FP32","data":[1]}`, "without a name"},
		{"no datatype", `{"name":"x","shape":[1],"data":[1]}`, `"x": no datatype`},
		{"no shape", `{"name":"x","datatype":"FP32","data":[1]}`, `"x": no shape`},
		{"no data", `{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}`, "binary tensor data is not supported"},
		{"too few", `{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3]}`, `"x": 3 elements for shape [2 2] (4)`},
		{"too many", `{"name":"x","shape":[2],"datatype":"INT64","data":[1,2,3]}`, "3 elements for shape [2]"},
		{"negative dim", `{"name":"x","shape":[-1,2],"datatype":"FP32","data":[1,2]}`, "negative dimension"},
		{"ragged", `{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3]]}`, "depth 1 has 1 entries"},
		{"mixed", `{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],3,4]}`, "mixes elements and arrays"},
		{"too deep", `{"name":"x","shape":[2],"datatype":"FP32","data":[[1],[2]]}`, "nesting does not match shape"},
		{"too shallow", `{"name":"x","shape":[1,2,2],"datatype":"FP32","data":[[1,2],[3,4]]}`, "nesting does not match shape"},
		{"null element", `{"name":"x","shape":[2],"datatype":"FP64","data":[1,null]}`, "element 1: null in FP64 data"},
		{"string in numbers", `{"name":"x","shape":[1],"datatype":"FP32","data":["1.5"]}`, "a string in FP32 data"},
		{"number in strings", `{"name":"x","shape":[1],"datatype":"BYTES","data":[1]}`, "1 is not a string"},
		{"number as bool", `{"name":"x","shape":[1],"datatype":"BOOL","data":[1]}`, "1 is not BOOL"},
		{"fraction in ints", `{"name":"x","shape":[1],"datatype":"INT32","data":[1.5]}`, "1.5 is not INT32"},
		{"int8 range", `{"name":"x","shape":[2],"datatype":"INT8","data":[1,128]}`, "element 1: 128 is out of INT8's range"},
		{"uint8 negative", `{"name":"x","shape":[1],"datatype":"UINT8","data":[-1]}`, "out of UINT8's range"},
		{"uint64 negative", `{"name":"x","shape":[1],"datatype":"UINT64","data":[-1]}`, "-1 is not UINT64"},
		{"fp32 overflow", `{"name":"x","shape":[1],"datatype":"FP32","data":[1e39]}`, "1e39 is not FP32"},
		{"object element", `{"name":"x","shape":[1],"datatype":"FP32","data":[{"a":1}]}`, `unexpected '{'`},
		{"data not array", `{"name":"x","shape":[1],"datatype":"FP32","data":1}`, "not an array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got oip.Tensor
			err := json.Unmarshal([]byte(tc.json), &got)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    oip.Tensor
		want string
	}{
		{"nan", oip.Tensor{Name: "x", Datatype: oip.FP32, Shape: []int64{1}, Float32s: []float32{float32(math.NaN())}}, "cannot be sent as JSON"},
		{"inf", oip.Tensor{Name: "x", Datatype: oip.FP64, Shape: []int64{1}, Float64s: []float64{math.Inf(1)}}, "cannot be sent as JSON"},
		{"count", oip.Tensor{Name: "x", Datatype: oip.FP64, Shape: []int64{2}, Float64s: []float64{1}}, "1 elements for shape [2]"},
		{"wrong slice", oip.Tensor{Name: "x", Datatype: oip.FP64, Shape: []int64{1}, Float32s: []float32{1}}, "0 elements"},
		{"datatype", oip.Tensor{Name: "x", Datatype: "F", Shape: []int64{1}}, `unknown datatype "F"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := oip.InferRequest{Inputs: []oip.Tensor{tc.t}}
			_, err := req.AppendJSON(nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestRequestJSON pins the request's wire form, as a server reads it.
func TestRequestJSON(t *testing.T) {
	req := oip.InferRequest{ID: "42", Parameters: oip.Parameters{"priority": 1},
		Inputs:  []oip.Tensor{{Name: "x", Datatype: oip.FP32, Shape: []int64{2, 2}, Float32s: []float32{1.5, 2, 0.1, -3}}},
		Outputs: []oip.RequestedOutput{{Name: "probs"}, {Name: "label", Parameters: oip.Parameters{"binary_data": false}}}}
	data, err := req.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"42","parameters":{"priority":1},"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1.5,2,0.1,-3]}],` +
		`"outputs":[{"name":"probs"},{"name":"label","parameters":{"binary_data":false}}]}`
	if string(data) != want {
		t.Errorf("got  %s\nwant %s", data, want)
	}
	var back oip.InferRequest
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	back.Parameters["priority"] = 1 // JSON numbers decode as float64
	if !reflect.DeepEqual(back, req) {
		t.Errorf("decoded %+v, want %+v", back, req)
	}
}

func TestMetadata(t *testing.T) {
	data := `{"name":"penguins","versions":["1","2"],"platform":"onnxruntime_onnx",
		"inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],
		"outputs":[{"name":"probs","datatype":"FP32","shape":[-1,3]},{"name":"label","datatype":"INT64","shape":[-1]}]}`
	var m oip.ModelMetadata
	if err := json.Unmarshal([]byte(data), &m); err != nil {
		t.Fatal(err)
	}
	if m.Input("x") == nil || m.Input("x").Shape[1] != 4 || m.Output("label").Datatype != oip.Int64 || m.Output("nope") != nil {
		t.Errorf("decoded %+v", m)
	}
	bad := strings.Replace(data, `"INT64"`, `"LONG"`, 1)
	if err := json.Unmarshal([]byte(bad), &m); err == nil || !strings.Contains(err.Error(), `unknown datatype "LONG"`) {
		t.Errorf("unknown datatype: got %v", err)
	}
}

func record(t *testing.T, cols map[string]arrow.Array, order ...string) arrow.RecordBatch {
	t.Helper()
	fields := make([]arrow.Field, len(order))
	arrs := make([]arrow.Array, len(order))
	for i, name := range order {
		fields[i] = arrow.Field{Name: name, Type: cols[name].DataType(), Nullable: true}
		arrs[i] = cols[name]
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, int64(arrs[0].Len()))
	t.Cleanup(rec.Release)
	return rec
}

func f64s(vals []float64, valid []bool) arrow.Array {
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(vals, valid)
	return b.NewArray()
}

func i64s(vals ...int64) arrow.Array {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(vals, nil)
	return b.NewArray()
}

func strs(vals ...string) arrow.Array {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(vals, nil)
	return b.NewArray()
}

func TestFromRecord(t *testing.T) {
	rec := record(t, map[string]arrow.Array{
		"a":    f64s([]float64{1.5, 2, 3}, nil),
		"b":    i64s(10, 20, 30),
		"c":    f64s([]float64{1, 0, 3}, []bool{true, false, true}),
		"s":    strs("x", "y", "z"),
		"frac": f64s([]float64{1, 2.5, 3}, nil),
		"big":  i64s(1, 200, 3),
	}, "a", "b", "c", "s", "frac", "big")
	sliced := rec.NewSlice(1, 3)
	defer sliced.Release()
	for _, tc := range []struct {
		name string
		rec  arrow.RecordBatch
		spec oip.InputSpec
		want oip.Tensor
		err  string
	}{
		{name: "matrix FP32", rec: rec, spec: oip.InputSpec{Name: "x", Columns: []string{"a", "b"}, Datatype: oip.FP32},
			want: oip.Tensor{Name: "x", Datatype: oip.FP32, Shape: []int64{3, 2}, Float32s: []float32{1.5, 10, 2, 20, 3, 30}}},
		{name: "one column [N]", rec: rec, spec: oip.InputSpec{Name: "b"},
			want: oip.Tensor{Name: "b", Datatype: oip.Int64, Shape: []int64{3}, Ints: []int64{10, 20, 30}}},
		{name: "one column [N,1]", rec: rec, spec: oip.InputSpec{Name: "x", Columns: []string{"a"}, Rank: 2},
			want: oip.Tensor{Name: "x", Datatype: oip.FP64, Shape: []int64{3, 1}, Float64s: []float64{1.5, 2, 3}}},
		{name: "ints to INT32", rec: rec, spec: oip.InputSpec{Name: "b", Datatype: oip.Int32},
			want: oip.Tensor{Name: "b", Datatype: oip.Int32, Shape: []int64{3}, Ints: []int64{10, 20, 30}}},
		{name: "integral floats to INT64", rec: rec, spec: oip.InputSpec{Name: "x", Columns: []string{"b", "a"}, Datatype: oip.Int64},
			err: `tensor "x" (INT64) column "a": row 0: 1.5 is not an integer`},
		{name: "bytes", rec: rec, spec: oip.InputSpec{Name: "s"},
			want: oip.Tensor{Name: "s", Datatype: oip.Bytes, Shape: []int64{3}, Strings: []string{"x", "y", "z"}}},
		{name: "sliced", rec: sliced, spec: oip.InputSpec{Name: "x", Columns: []string{"b", "s"}, Datatype: oip.Bytes},
			err: `column "b": arrow type int64 cannot be converted`},
		{name: "sliced numbers", rec: sliced, spec: oip.InputSpec{Name: "x", Columns: []string{"b", "a"}, Datatype: oip.FP64},
			want: oip.Tensor{Name: "x", Datatype: oip.FP64, Shape: []int64{2, 2}, Float64s: []float64{20, 2, 30, 3}}},
		{name: "null", rec: rec, spec: oip.InputSpec{Name: "x", Columns: []string{"a", "c"}}, err: `column "c" row 1 is null`},
		{name: "fraction", rec: rec, spec: oip.InputSpec{Name: "frac", Datatype: oip.Int64}, err: "2.5 is not an integer"},
		{name: "range", rec: rec, spec: oip.InputSpec{Name: "big", Datatype: oip.Int8}, err: "row 1: 200 is out of range"},
		{name: "strings to numbers", rec: rec, spec: oip.InputSpec{Name: "s", Datatype: oip.FP32}, err: "arrow type utf8 cannot be converted"},
		{name: "missing", rec: rec, spec: oip.InputSpec{Name: "x", Columns: []string{"a", "nope"}}, err: `column "nope" not in the record`},
		{name: "rank 1 wide", rec: rec, spec: oip.InputSpec{Name: "x", Columns: []string{"a", "b"}, Rank: 1}, err: "rank 1 cannot hold 2 columns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := oip.FromRecord(tc.rec, tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestToColumns(t *testing.T) {
	for _, tc := range []struct {
		name  string
		t     oip.Tensor
		rows  int
		names []string
		vals  [][]string
		err   string
	}{
		{name: "[N]", t: oip.Tensor{Name: "label", Datatype: oip.Int64, Shape: []int64{3}, Ints: []int64{2, 0, 1}}, rows: 3,
			names: []string{"label:int64"}, vals: [][]string{{"2", "0", "1"}}},
		{name: "[N,1]", t: oip.Tensor{Name: "p", Datatype: oip.FP64, Shape: []int64{2, 1}, Float64s: []float64{0.25, 0.5}}, rows: 2,
			names: []string{"p:float64"}, vals: [][]string{{"0.25", "0.5"}}},
		{name: "[N,C]", t: oip.Tensor{Name: "probs", Datatype: oip.FP32, Shape: []int64{2, 3}, Float32s: []float32{0.1, 0.2, 0.7, 0.6, 0.3, 0.1}}, rows: -1,
			names: []string{"probs_0:float32", "probs_1:float32", "probs_2:float32"}, vals: [][]string{{"0.1", "0.6"}, {"0.2", "0.3"}, {"0.7", "0.1"}}},
		{name: "bytes", t: oip.Tensor{Name: "s", Datatype: oip.Bytes, Shape: []int64{2}, Strings: []string{"Adelie", "Gentoo"}}, rows: 2,
			names: []string{"s:utf8"}, vals: [][]string{{"Adelie", "Gentoo"}}},
		{name: "bool", t: oip.Tensor{Name: "ok", Datatype: oip.Bool, Shape: []int64{2, 2}, Bools: []bool{true, false, false, true}}, rows: 2,
			names: []string{"ok_0:bool", "ok_1:bool"}, vals: [][]string{{"true", "false"}, {"false", "true"}}},
		{name: "uint64", t: oip.Tensor{Name: "u", Datatype: oip.Uint64, Shape: []int64{1}, Uints: []uint64{math.MaxUint64}}, rows: 1,
			names: []string{"u:uint64"}, vals: [][]string{{"18446744073709551615"}}},
		{name: "rows", t: oip.Tensor{Name: "p", Datatype: oip.FP32, Shape: []int64{2}, Float32s: []float32{1, 2}}, rows: 3,
			err: `tensor "p": 2 rows (shape [2]) for a batch of 3`},
		{name: "rank 3", t: oip.Tensor{Name: "p", Datatype: oip.FP32, Shape: []int64{1, 1, 2}, Float32s: []float32{1, 2}}, rows: 1,
			err: "is not [N] or [N,C]"},
		{name: "scalar", t: oip.Tensor{Name: "p", Datatype: oip.FP32, Shape: []int64{}, Float32s: []float32{1}}, rows: 1,
			err: "is not [N] or [N,C]"},
		{name: "elements", t: oip.Tensor{Name: "p", Datatype: oip.FP32, Shape: []int64{2, 2}, Float32s: []float32{1}}, rows: 2,
			err: "1 elements for shape [2 2]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields, arrs, err := tc.t.ToColumns(tc.rows)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			var vals [][]string
			for i, f := range fields {
				names = append(names, f.Name+":"+f.Type.String())
				var col []string
				for r := range arrs[i].Len() {
					col = append(col, arrs[i].ValueStr(r))
				}
				vals = append(vals, col)
				if !arrow.TypeEqual(arrs[i].DataType(), f.Type) {
					t.Errorf("column %s is %s, field says %s", f.Name, arrs[i].DataType(), f.Type)
				}
				arrs[i].Release()
			}
			if !slices.Equal(names, tc.names) || !reflect.DeepEqual(vals, tc.vals) {
				t.Errorf("got %v %v, want %v %v", names, vals, tc.names, tc.vals)
			}
		})
	}
}

// FuzzTensor decodes arbitrary tensors: no panic, and whatever decodes is
// well formed and survives a round trip.
func FuzzTensor(f *testing.F) {
	for _, s := range []string{
		`{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}`,
		`{"name":"x","shape":[3],"datatype":"BYTES","data":["a","\u00e9","\\"]}`,
		`{"name":"x","shape":[1],"datatype":"UINT64","data":[18446744073709551615]}`,
		`{"name":"x","shape":[2,0],"datatype":"BOOL","data":[[],[]]}`,
		`{"name":"x","shape":[1],"datatype":"INT8","data":[-128]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var in oip.Tensor
		if json.Unmarshal([]byte(s), &in) != nil {
			return
		}
		if err := in.Check(); err != nil {
			t.Fatalf("decoded a malformed tensor from %s: %v", s, err)
		}
		data, err := in.AppendJSON(nil)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", in, err)
		}
		var back oip.Tensor
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if back.Len() != in.Len() || !slices.Equal(back.Shape, in.Shape) {
			t.Fatalf("round trip changed %+v into %+v", in, back)
		}
	})
}

// FuzzUnchecked feeds raw bytes to the hand-written decoders, which
// encoding/json normally shields with its syntax check: they must fail,
// not panic.
func FuzzUnchecked(f *testing.F) {
	for _, s := range []string{
		`{"model_name":"m","outputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1,2]}]}`,
		`{"inputs":[{"name":"x","shape":[1,1],"datatype":"BYTES","data":[["\u00e9"]]}],"outputs":[{"name":"y"}]}`,
		`{"name":"x","shape":[1],"datatype":"BOOL","data":[true],"z":{"a":[1,"b",null]}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var resp oip.InferResponse
		_ = resp.UnmarshalJSON([]byte(s))
		var req oip.InferRequest
		_ = req.UnmarshalJSON([]byte(s))
		var tensor oip.Tensor
		_ = tensor.UnmarshalJSON([]byte(s))
	})
}

func TestParse(t *testing.T) {
	resp := benchResponse(5)
	resp.Parameters = oip.Parameters{"k": "v"}
	data, err := resp.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := oip.ParseResponse(data)
	if err != nil || !reflect.DeepEqual(got, resp) {
		t.Errorf("ParseResponse: %+v, %v; want %+v", got, err, resp)
	}
	req := oip.InferRequest{ID: "7", Inputs: resp.Outputs, Outputs: []oip.RequestedOutput{{Name: "probs"}}}
	if data, err = req.AppendJSON(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := oip.ParseRequest(data); err != nil || !reflect.DeepEqual(got, req) {
		t.Errorf("ParseRequest: %+v, %v; want %+v", got, err, req)
	}
	for _, bad := range []string{`{"model_name":"m","outputs":[}`, `{"model_name":"m"} x`, `{"model_name":tru}`, ``} {
		if _, err := oip.ParseResponse([]byte(bad)); err == nil {
			t.Errorf("ParseResponse(%q) succeeded", bad)
		}
		if _, err := oip.ParseRequest([]byte(bad)); err == nil {
			t.Errorf("ParseRequest(%q) succeeded", bad)
		}
	}
}

// benchResponse is a classifier's answer for rows rows: [rows,3] scores
// and [rows] labels.
func benchResponse(rows int) oip.InferResponse {
	probs := make([]float32, rows*3)
	labels := make([]int64, rows)
	for i := range probs {
		probs[i] = float32(i%97) / 97
	}
	for i := range labels {
		labels[i] = int64(i % 3)
	}
	return oip.InferResponse{ModelName: "penguins", ID: "1", Outputs: []oip.Tensor{
		{Name: "probs", Datatype: oip.FP32, Shape: []int64{int64(rows), 3}, Float32s: probs},
		{Name: "label", Datatype: oip.Int64, Shape: []int64{int64(rows)}, Ints: labels}}}
}

func BenchmarkResponseJSON(b *testing.B) {
	for _, rows := range []int{64, 4096} {
		resp := benchResponse(rows)
		data, err := resp.AppendJSON(nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("encode/rows="+strconv.Itoa(rows), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			buf := make([]byte, 0, len(data))
			for b.Loop() {
				if buf, err = resp.AppendJSON(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("unmarshal/rows="+strconv.Itoa(rows), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var out oip.InferResponse
				if err := json.Unmarshal(data, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("parse/rows="+strconv.Itoa(rows), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := oip.ParseResponse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
