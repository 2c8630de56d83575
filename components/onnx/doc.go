// Package onnx builds ONNX models from Go: a small graph builder over the
// generated protos of package onnxpb (IR 8, ai.onnx opset 17, ai.onnx.ml 3),
// with unique value names, typed constants and attribute helpers.
//
//	g := onnx.NewGraph("double_it")
//	x := g.Input("x", onnx.Double, -1, 1) // -1: the batch dimension
//	y := g.Op("Mul", x, g.ConstDouble(2))
//	g.NodeTo("", "Cast", []string{y}, []string{"y"}, onnx.AttrInt("to", int64(onnx.Float)))
//	g.Output("y", onnx.Float, -1, 1)
//	data, err := onnx.Marshal(g.Model())
//
// Package ort runs such models in ONNX Runtime.
//
// # Errors
//
// Marshal and Unmarshal wrap protobuf's errors. The builder does not check
// graphs; ONNX Runtime does when it loads them.
package onnx
