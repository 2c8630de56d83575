// Package train fits tabular models in Go and exports them as standard ONNX
// models: ridge regression (FitLinear), binary and multinomial logistic
// regression (FitLogistic) and histogram-based gradient-boosted trees
// (FitGBDT). Every fit is deterministic: the same data, options and seed
// give the same ONNX bytes.
//
//	d := train.Data{X: x, Features: names, Y: y, Classes: []string{"no", "yes"}}
//	m, err := train.FitGBDT(ctx, d, &eval, train.GBDTOptions{Trees: 200, EarlyStoppingRounds: 20})
//	p, err := m.Predict(rows)  // p.Probabilities, p.Labels
//	model, err := m.ONNX()     // runs in ONNX Runtime with the same results
//
// # Data
//
// Data is a dense row-major float64 matrix with feature names, a target
// per row (a number for regression, a class index with Classes for
// classification) and optional row weights. NaN is a missing value: FitGBDT
// learns, at every split, which side it goes to; FitLinear and FitLogistic
// reject it (impute first: the transform step does).
//
// # Models
//
// Every model has input "x", float [N, len(Features)], and records its
// features (MetaFeatures) and classes (MetaClasses) as JSON lists in the
// model's metadata_props. Regression models output "prediction", float
// [N,1]; classifiers output "probabilities", float [N,K], and "label",
// int64 [N] (the class index). Linear and logistic models are MatMul, Add
// and Sigmoid or Softmax, computed in double; GBDT models are ai.onnx.ml
// TreeEnsembleRegressor (regression, and binary log-odds followed by
// Sigmoid) or TreeEnsembleClassifier (three classes or more). ONNX
// Runtime's results equal Predict's within float32 rounding (1e-5).
//
// The penalties follow scikit-learn, so results can be checked against it:
// FitLinear with Lambda is Ridge(alpha=Lambda), FitLogistic with Lambda is
// LogisticRegression(C=1/Lambda). Both standardise features internally for
// conditioning only; the penalty applies to the weights of the features as
// given, and the weights are reported on that scale.
//
// # GBDT
//
// Features are cut into at most 255 bins at float32 thresholds (between
// distinct values, or at quantiles of up to 200,000 rows sampled with
// Seed); NaN gets a bin of its own. Trees grow level by level to MaxDepth,
// splitting where the gain G²/(H+λ) rises most with both children holding
// at least MinChildWeight of hessian; leaves are worth −G/(H+λ)·rate. The
// loss is squared error, log loss (two classes) or softmax with one tree
// per class per round. Histograms are built per feature on Workers
// goroutines; the result does not depend on their number.
//
// # Errors
//
// Invalid data or options (no rows, mismatched lengths, a class index out of
// range, NaN for FitLinear or FitLogistic, an eval set with other features)
// return errors wrapping ErrInvalid that name the row and feature. A
// cancelled context stops a fit with the context's error. FitLogistic
// reports a fit that hit MaxIter in Report.Converged rather than failing.
package train
