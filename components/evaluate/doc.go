// Package evaluate computes model-evaluation metrics in the manner of
// TensorFlow Model Analysis: over streamed batches of labels and
// predictions, overall and per slice, with Poisson-bootstrap confidence
// intervals, and checks them against value thresholds and against a
// baseline model's metrics on the same rows (the blessing gate).
//
// Usage:
//
//	e, err := evaluate.New(evaluate.Options{
//		Classes:      []string{"Adelie", "Chinstrap", "Gentoo"},
//		Slices:       [][]string{{}, {"island"}, {"island", "sex"}},
//		MinSliceSize: 20,
//		Bootstrap:    evaluate.Bootstrap{Samples: 100, Seed: 7},
//	})
//	for batch := range batches { // labels, row-major scores, weights, slice features
//		if err := e.Add(batch); err != nil { ... }
//	}
//	err = e.Merge(other) // another shard's evaluator, rows appended after e's
//	res, err := e.Result(ctx)
//	verdict, err := evaluate.CheckThresholds(res, baselineRes, map[string]evaluate.Threshold{
//		"accuracy": {LowerBound: &min},
//		"auc":      {Change: &evaluate.Change{Direction: evaluate.HigherIsBetter, Absolute: &drop}},
//	})
//	if err := verdict.Err(); err != nil { ... } // wraps ErrNotBlessed, naming each failure
//
// A Result marshals to JSON (metrics.json); its confusion matrix, ROC
// curve points and SliceResult.Scalars are what KFP's
// system.ClassificationMetrics and system.Metrics artifacts hold.
// RecordFeatures turns the slice columns of an Arrow record into
// Batch.Features.
//
// # Metrics
//
// Every metric agrees with scikit-learn to 1e-9 relative (a test compares
// them on breast cancer, wine and diabetes, with and without weights):
//
//   - Classification: example count, accuracy, precision, recall and F1
//     per class and macro, micro and weighted averaged (zero_division 0),
//     the confusion matrix, log loss (probabilities clipped to [ε, 1−ε],
//     then each row renormalised, as scikit-learn 1.2 does),
//     Brier score, ROC AUC and average precision (binary: of the second
//     class; multi-class: one-vs-rest macro), and calibration (expected
//     calibration error over equal-width bins, with the bins). The
//     predicted class is the highest score unless given.
//   - Regression: MSE, RMSE, MAE, MAPE, R², mean label and mean
//     prediction.
//
// AUC and average precision are exact, not bucketed: the evaluator keeps
// every row's label, scores and weight and sorts them, ties counting as one
// threshold. Memory is therefore about 8·(K+2) bytes per row for K classes
// (40 MB for a million rows of 3 classes) plus 4 bytes per row per
// slicing. Keeping the rows is also what makes merging exact: an evaluator
// merged from shards gives byte-identical results to one fed the same rows
// in the same order, intervals included.
//
// Slices smaller than Options.MinSliceSize report their counts only.
// Confidence intervals (Options.Bootstrap) recompute every metric of every
// slice on each Poisson(1) resample; their cost is Samples times that of
// the point estimates.
//
// # Errors
//
// Bad options, batches and thresholds are errors wrapping ErrInvalid that
// name the field, row or metric. Probabilities that do not sum to 1 are
// not errors: Result.Warnings names the rows. A failed threshold is not an
// error of CheckThresholds but a Verdict whose Err wraps ErrNotBlessed.
package evaluate
