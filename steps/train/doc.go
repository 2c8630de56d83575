// Package train is the `train` step: it fits a model on a Dataset's train
// split and writes a Model artifact that `mlsteps infer` runs as it is.
//
//	mlsteps train --in examples=file:///run/transformed_examples \
//	    --in transform=file:///run/transform_graph \
//	    --trainer builtin:gbdt --hparams '{"trees": 200, "early_stopping_rounds": 20}' \
//	    --out-root file:///run
//
// # Trainers
//
// --trainer picks a built-in Go trainer (components/train): builtin:linear
// (ridge regression), builtin:logistic (binary or multinomial, L2) or
// builtin:gbdt (histogram gradient-boosted trees). --hparams maps onto their
// options: lambda, max_iter, tol (logistic); lambda (linear); trees,
// max_depth, learning_rate, min_child_weight, lambda, max_bins,
// early_stopping_rounds (gbdt). Lambda defaults to 1 for linear and
// logistic, scikit-learn's alpha=1 and C=1; tol defaults to 1e-6 (the
// gradient per row), which large data sets reach where 1e-8 would be lost
// in rounding.
//
// --trainer-command runs any program instead (the hook), through `sh -c`,
// with this environment:
//
//	MLSTEPS_TRAIN_DATA, MLSTEPS_EVAL_DATA  local folders of the split's Parquet parts
//	MLSTEPS_TRAIN_CSV, MLSTEPS_EVAL_CSV    the same rows as one CSV file (features, then the label)
//	MLSTEPS_TRANSFORM_DIR                  transform.json and transform.onnx (with --in transform)
//	MLSTEPS_MODEL_DIR                      where the command must write model.onnx
//	MLSTEPS_HPARAMS                        --hparams (a JSON object)
//	MLSTEPS_SEED                           --seed
//	MLSTEPS_LABEL                          the label column
//	MLSTEPS_FEATURES                       JSON list of the feature columns, in order
//	MLSTEPS_CLASSES                        JSON list of the classes (sorted label values) or []
//
// The eval variables are empty when there is no eval split. The command's
// stdout and stderr go to the step's stderr. Its model must take either one
// input of len(features) values per row (the features in order), or one
// input per feature named after it; a classifier's [N,K] scores follow
// MLSTEPS_CLASSES unless the model's metadata_props say otherwise
// (mlsteps.classes).
//
// # Features and label
//
// With --in transform, the examples are the transform step's
// transformed_examples: the features are the graph's feature order and the
// label its label (unless --label says otherwise), and the written
// model.onnx is the trained model fused behind transform.onnx, so it takes
// the raw columns (the unfused model is kept as trained.onnx). Without it,
// the features are --features or every numeric column but the label (and
// the --per-key column). A string or boolean label (or any label with
// builtin:logistic) is a classification target whose classes are its
// sorted distinct train values; a numeric one is a regression target. Rows
// whose label is null are left out.
//
// # Per-entity training
//
// --per-key COLUMN fits one built-in model per distinct value of the column
// in the train split, --workers at a time, and writes a keyed Model
// (models/<file>.onnx and models/index.json). Every model shares the
// classes of the whole train split, so one runner configuration serves all
// of them. Keys with fewer than --min-rows-per-key train rows are skipped,
// logged and listed in the property "skipped_keys".
//
// # Properties
//
// Beside the Model properties (signature, features, classes), "training"
// records the trainer, iterations, convergence, the loss per iteration (at
// most 1,000 entries), train and eval accuracy (classification) or RMSE
// (regression) and row counts; a keyed model records them per key under
// "training_per_key".
//
// # Errors
//
// Usage errors and bad input exit 2 and commit nothing: neither or both of
// --trainer and --trainer-command, an unknown trainer or hparam, a missing
// or constant label, a non-numeric feature, NaN in a feature for
// builtin:linear or builtin:logistic, a trainer command that is not found,
// that exits 0 without model.onnx, or whose model ONNX Runtime cannot load
// or whose inputs do not match the features. A command that exits non-zero
// fails the step (exit 1).
package train
