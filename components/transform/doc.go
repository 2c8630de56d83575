// Package transform fits preprocessing on training rows and applies it the
// same way in Go and as an ONNX graph, so training and serving cannot drift
// apart (what TensorFlow Transform and Beam's MLTransform do).
//
// A spec names, per feature, a chain of ops:
//
//	features:
//	  "Beak Length (mm)": [impute: mean, zscore]
//	  "Body Mass (g)":    [impute: median, scale_to_0_1]
//	  Island:             [vocabulary: {top_k: 10, num_oov_buckets: 1}, one_hot]
//	  "Flipper Length (mm)": [bucketize: {num_buckets: 4}]
//	  Sex:                [impute: {constant: "unknown"}, vocabulary: {}]
//	  "Island x Sex":     [cross: {columns: [Island, Sex]}, one_hot]
//	label: Species
//	passthrough: [...]   # optional; default: every column the spec does not read
//
// Use it in four steps: ParseSpec (form), Compile (against the columns and
// the train split's row count, before any data is read), Fit (streaming
// passes over the train rows) and then Apply in Go or ONNX for ONNX Runtime:
//
//	spec, err := transform.ParseSpec("transform.yaml", data)
//	g, err := transform.Compile(spec, columns, trainRows)
//	err = transform.Fit(ctx, g, trainSource) // fills every analyzer value
//	cols, err := g.Apply(batch)              // one float32 column per g.Order name
//	model, err := g.ONNX()                   // the same, as an ONNX graph
//	fused, err := transform.Fuse(model, classifier, transform.FuseOptions{})
//
// # Ops
//
// On numbers (every integer and float width, read as float64; null is NaN):
// impute (mean, median, most_frequent, {constant: N}), zscore (population
// standard deviation; a constant column is only centred), scale_to_0_1,
// scale_by_min_max ({min, max}: the output range, default 0..1), log1p,
// clip ({min, max}, either optional), bucketize ({num_buckets: N} at
// quantiles of the train split, or {boundaries: [...]}; the bucket is the
// count of boundaries <= x, and NaN goes to the last bucket).
//
// On strings (null is ""): impute (most_frequent, {constant: "s"}),
// vocabulary ({top_k, frequency_threshold, num_oov_buckets}: ids by count,
// ties by value; "" and unseen values go to the OOV bucket: id
// len(vocabulary) with one bucket (the default), -1 with none, or
// len(vocabulary)+murmur3(value)%n with n), hash_bucket ({num_buckets}:
// MurmurHash3_x86_32, seed 0), and cross ({columns: [A, B], top_k}, a new
// feature: the vocabulary ids of A and B, each with one OOV id, combined as
// idA*(|B|+1)+idB).
//
// On ids (after bucketize, vocabulary, hash_bucket or cross): one_hot, one
// output column per id named "<feature>_onehot_<i>"; an id of -1 is all
// zeros. Every other feature is one column named after the feature.
//
// # Analyzers
//
// Means, variances, minima and maxima are exact (Moments, merged with Chan
// et al.'s formula); medians and quantile boundaries come from a DDSketch
// with relative accuracy QuantileAccuracy (Quantiles); vocabularies and
// most-frequent values are exact counts (Counts). Every state merges, so
// shards can be fitted apart and combined. A pass fits the first unfitted
// step of every feature on values that went through the steps before it.
//
// Fit is Analyze (one pass over some rows, returning a PassState, plain
// JSON-ready data) then FinishPass (merge states, fit the pass's steps),
// pass after pass. Shards each Analyze their share of the rows; FinishPass
// over their states, in row order, fits exactly what one pass over all
// the rows fits, bit for bit: moments are kept per batch and folded in row
// order (so batches must not span the shards' boundaries), sketch buckets
// and counts add.
//
//	st, err := g.Analyze(ctx, shardSource) // in each shard
//	err = g.FinishPass(statesInShardOrder) // in the merge
//	more := !g.Fitted()                    // an impute before a zscore needs a second pass
//
// # ONNX
//
// The graph has one input per raw column (named as the column: [N,1]
// double, NaN for missing; or [N,1] string, "" for missing) and one output,
// "features", [N, len(Order)] float. It uses ai.onnx opset 17 (Where,
// IsNaN, Sub, Div, Mul, Add, Log, Less, Greater, Not, Cast, ReduceSum,
// Equal, Concat, Mod), ai.onnx.ml 3 (LabelEncoder) and, for hash_bucket
// and num_oov_buckets > 1 only, ONNX Runtime's com.microsoft MurmurHash3:
// no standard op hashes strings. Arithmetic is double in both Apply and the
// graph, in the same order, cast to float once at the end, so the two agree
// within 1e-6 (tested on penguins, cars and movies with ONNX Runtime).
//
// # Errors
//
// ParseSpec and Compile return a *SpecError naming the spec file, line and
// feature (unknown column or op, an op that does not fit the value's type, a
// constant of the wrong type, an analyzer over an empty train split). Fit
// fails when an analyzer sees no non-missing values, naming the line.
package transform
