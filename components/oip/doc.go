// Package oip speaks the Open Inference Protocol (KServe V2, also served
// by Triton, MLServer and TorchServe) over REST/JSON: the request,
// response, error and model metadata bodies, and the conversion between
// its tensors and Arrow columns. It does no I/O; a client
// (inference.RemoteHandler) or a server sends the bytes.
//
// A tensor's elements live in the typed slice that matches its datatype,
// flattened in row-major order, so a batch never passes through []any:
//
//	BOOL                           Bools    []bool
//	INT8, INT16, INT32, INT64,
//	UINT8, UINT16, UINT32          Ints     []int64
//	UINT64                         Uints    []uint64
//	FP16, BF16, FP32               Float32s []float32
//	FP64                           Float64s []float64
//	BYTES                          Strings  []string
//
// FP16 and BF16 travel as JSON numbers and are held as float32 (the
// binary tensor data extension is not supported). BF16 is Triton's
// extension of the type list.
//
// Usage, client side:
//
//	x, err := oip.FromRecord(rec, oip.InputSpec{Name: "x", Columns: features, Datatype: oip.FP32})
//	req := oip.InferRequest{ID: "batch-7", Inputs: []oip.Tensor{x}}
//	body, err := req.AppendJSON(nil)
//	// POST body to {base}/v2/models/{name}/infer, then:
//	resp, err := oip.ParseResponse(respBody) // json.Unmarshal works too, slower
//	fields, cols, err := resp.Output("probs").ToColumns(int(rec.NumRows()))
//
// A server does the reverse: ParseRequest, ToColumns its inputs,
// FromRecord its outputs into an InferResponse, AppendJSON.
//
// # Decoding
//
// Tensor data may be flat (row-major) or nested as the shape says; both
// decode to the flat slice. Decoding is strict where the protocol is
// ours to enforce: an unknown datatype, a negative dimension, an element
// count that does not match the shape, a ragged nested array, a null or
// wrongly typed element, or an integer out of its type's range is an
// error naming the tensor. Unknown object fields are ignored, as JSON
// extensions of the protocol expect.
//
// # Errors
//
// Conversions fail with errors naming the tensor and, from Arrow, the
// column: a shape that is not [N] or [N,C], a row count other than the
// batch's, a null value, or an Arrow type that cannot become the datatype
// (strings into a number, a fraction into an integer).
package oip
