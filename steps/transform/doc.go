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
// # Fit apart, apply in shards
//
// transform-fit (FitSpec) is the fit alone: it writes the same
// TransformGraph, byte for byte, and shards by the part files of the train
// split (each shard writes its analyzers' state, the merge folds the
// states exactly and writes the graph; later passes of a spec that needs
// them, an impute before a zscore, run in the merge). transform given that
// graph (--in transform_graph=URI, no --spec) fits nothing and applies it;
// then it shards by the part files of every split, and the merge
// concatenates the parts: the unsharded run's Dataset, digest included,
// since every input part makes its own output part.
//
//	mlsteps transform-fit --in examples=URI --spec transform.yaml --shard 0/2 --out-root URI/s0
//	mlsteps transform-fit --in examples=URI --spec transform.yaml --shard 1/2 --out-root URI/s1
//	mlsteps transform-fit --merge transform_graph=URI/s0/transform_graph \
//	    --merge transform_graph=URI/s1/transform_graph --spec transform.yaml --out-root URI/fit
//	mlsteps transform --in examples=URI --in transform_graph=URI/fit/transform_graph --out-root URI/run
//
// # Errors
//
// A bad spec (unknown column or op, an op that does not fit the column, a
// constant of the wrong type, an analyzer over an empty train split, a
// --train-split the Dataset lacks) exits 2 before any data is read, with
// the spec's file, line and feature in the message, and writes no output.
// transform refuses --shard when it fits (exit 2, pointing at
// transform-fit); the merges refuse an incomplete or mixed set of partials.
package transform
