// Package ort is a minimal ONNX Runtime session over onnxruntime_go, enough
// to run the graphs mlsteps builds: named inputs of double, float, int64 or
// string columns shaped [rows, width], and float32 outputs.
//
//	if err := ort.Init(ort.LibPath("")); err != nil { ... } // once per process
//	s, err := ort.NewSession(modelBytes, []string{"x"}, []string{"y"})
//	defer s.Close()
//	res, err := s.Run(2, []ort.Column{{Name: "x", Doubles: []float64{1, 2}}})
//
// The library is found at $MLSTEPS_ORT_LIB (set by the Makefile) or
// <repo>/.cache/lib/libonnxruntime.so.1. ORT needs cgo.
//
// # Errors
//
// Init fails when the library is missing or cannot be loaded, or when asked
// for a second, different library. NewSession and Run wrap ORT's messages.
package ort
