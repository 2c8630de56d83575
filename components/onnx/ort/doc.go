// Package ort is a minimal ONNX Runtime session over onnxruntime_go, enough
// to run the graphs mlsteps builds: named inputs of double, float, int64 or
// string columns shaped [rows, width], and float32 outputs.
//
//	if err := ort.Init(ort.LibPath("")); err != nil { ... } // once per process
//	s, err := ort.NewSession(modelBytes, []string{"x"}, []string{"y"})
//	defer s.Close()
//	res, err := s.Run(2, []ort.Column{{Name: "x", Doubles: []float64{1, 2}}})
//
// Run makes its tensors per call. A caller that runs batches of one size
// again and again (the inference engine) uses Buffers: tensors made once
// and bound to the session, filled and read in place, with outputs kept in
// their own element type:
//
//	b, err := s.NewBuffers(64, []ort.Layout{{Kind: ort.Float32, Width: 4}}, []ort.Layout{{Kind: ort.Float32, Width: 3}})
//	defer b.Close()
//	copy(b.In[0].Floats, x) // 64×4 values, row-major
//	err = b.Run()           // b.Out[0].Floats holds 64×3 values until the next Run
//
// Options.SessionOptions gives the same settings to code that drives
// onnxruntime_go directly.
//
// The library is found at $MLSTEPS_ORT_LIB (set by the Makefile) or
// <repo>/.cache/lib/libonnxruntime.so.1. ORT needs cgo.
//
// # Errors
//
// Init fails when the library is missing or cannot be loaded, or when asked
// for a second, different library. NewSession, Run, NewBuffers and
// Buffers.Run wrap ORT's messages; ORT fails a run whose Buffers' outputs
// do not have the shapes and types the model produces.
package ort
