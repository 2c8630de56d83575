// Package transform is the `transform` step: it fits preprocessing on the
// train split of a Dataset and writes it twice, as transform.json (every
// fitted value, for people) and transform.onnx (the same preprocessing as an
// ONNX graph, which inference runs before every model), plus the
// transformed Dataset, like TFX's Transform component.
//
//	mlsteps transform --in examples=file:///tmp/run/examples \
//	    --spec transform.yaml --out-root file:///tmp/run
//
// Outputs:
//   - transform_graph (TransformGraph): transform.json, transform.onnx; its
//     properties name the ONNX inputs (one per raw column, in order, with
//     their tensor types), the output ("features", float [N, F]), the
//     feature order, the opsets, the label and the passthrough columns.
//   - transformed_examples (Dataset): every split, with one float32 column
//     per output feature (in feature order), then the label and the
//     passthrough columns as they were.
//
// The spec's syntax and the ops are described in components/transform.
//
// # Errors
//
// A bad spec (unknown column or op, an op that does not fit the column, a
// constant of the wrong type, an analyzer over an empty train split, a
// --train-split the Dataset lacks) exits 2 before any data is read, with
// the spec's file, line and feature in the message, and writes no output.
package transform
