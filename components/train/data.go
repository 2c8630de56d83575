package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/onnxpb"
)

// ErrInvalid marks every error caused by the data or options given to a
// trainer (as opposed to a failure while fitting), so callers can map it to
// a usage error with errors.Is.
var ErrInvalid = errors.New("invalid training input")

// Metadata keys written into every exported model's metadata_props; the
// Model artifact reads them to know the classes and the feature columns.
const (
	MetaClasses  = "mlsteps.classes"  // JSON list of class names, in score order
	MetaFeatures = "mlsteps.features" // JSON list of the columns of input "x"
)

// ONNX names of the exported models' tensors.
const (
	InputName         = "x"             // float [N, len(Features)]
	OutputPrediction  = "prediction"    // float [N, 1]: regression
	OutputProbability = "probabilities" // float [N, K]: classification
	OutputLabel       = "label"         // int64 [N]: classification, the class index
)

// Data is a training set: a dense row-major design matrix with one column
// per feature, and one target per row.
type Data struct {
	// X holds Rows()×len(Features) values, row-major. NaN means missing:
	// GBDT learns where to send it, Linear and Logistic reject it (impute
	// first; the transform step does).
	X        []float64
	Features []string
	// Y is the target: any finite number for regression, the class index
	// 0..len(Classes)-1 for classification.
	Y []float64
	// Classes names the classes of a classification task; nil means
	// regression.
	Classes []string
	// Weights optionally weighs each row (non-negative, not all zero);
	// nil weighs every row 1.
	Weights []float64
}

// Rows returns the number of rows of d (0 when it has no features).
func (d Data) Rows() int {
	if len(d.Features) == 0 {
		return 0
	}
	return len(d.X) / len(d.Features)
}

func (d Data) weight(i int) float64 {
	if d.Weights == nil {
		return 1
	}
	return d.Weights[i]
}

// check validates the shape of d and its targets; allowNaN says whether X
// may hold NaN (missing values). what names the set in errors ("train",
// "eval").
func (d Data) check(what string, allowNaN bool) error {
	f := len(d.Features)
	if f == 0 {
		return fmt.Errorf("%w: %s data has no features", ErrInvalid, what)
	}
	if len(d.X)%f != 0 {
		return fmt.Errorf("%w: %s data: X has %d values, not a multiple of its %d features", ErrInvalid, what, len(d.X), f)
	}
	n := len(d.X) / f
	if n == 0 {
		return fmt.Errorf("%w: %s data has no rows", ErrInvalid, what)
	}
	if len(d.Y) != n {
		return fmt.Errorf("%w: %s data has %d rows in X but %d targets", ErrInvalid, what, n, len(d.Y))
	}
	if d.Weights != nil && len(d.Weights) != n {
		return fmt.Errorf("%w: %s data has %d rows but %d weights", ErrInvalid, what, n, len(d.Weights))
	}
	for i, v := range d.X {
		if math.IsInf(v, 0) || (!allowNaN && math.IsNaN(v)) {
			return fmt.Errorf("%w: %s data row %d feature %q is %v: impute missing values before training (the transform step does)",
				ErrInvalid, what, i/f, d.Features[i%f], v)
		}
	}
	k := len(d.Classes)
	if d.Classes != nil && k < 2 {
		return fmt.Errorf("%w: %s data: classification needs at least 2 classes, got %d", ErrInvalid, what, k)
	}
	for i, y := range d.Y {
		switch {
		case math.IsNaN(y) || math.IsInf(y, 0):
			return fmt.Errorf("%w: %s data row %d: target is %v", ErrInvalid, what, i, y)
		case k > 0 && (y != math.Trunc(y) || y < 0 || y >= float64(k)):
			return fmt.Errorf("%w: %s data row %d: class index %v is not one of 0..%d (%d classes)", ErrInvalid, what, i, y, k-1, k)
		}
	}
	total := 0.0
	for i, w := range d.Weights {
		if !(w >= 0) || math.IsInf(w, 0) {
			return fmt.Errorf("%w: %s data row %d: weight %v is not a finite non-negative number", ErrInvalid, what, i, w)
		}
		total += w
	}
	if d.Weights != nil && total == 0 {
		return fmt.Errorf("%w: %s data: every weight is 0", ErrInvalid, what)
	}
	return nil
}

// checkLike checks that eval has the same features and classes as train.
func (d Data) checkLike(train Data) error {
	if len(d.Features) != len(train.Features) {
		return fmt.Errorf("%w: eval data has %d features, train data %d", ErrInvalid, len(d.Features), len(train.Features))
	}
	for i, f := range d.Features {
		if f != train.Features[i] {
			return fmt.Errorf("%w: eval feature %d is %q, train feature %d is %q", ErrInvalid, i, f, i, train.Features[i])
		}
	}
	if len(d.Classes) != len(train.Classes) {
		return fmt.Errorf("%w: eval data has %d classes, train data %d", ErrInvalid, len(d.Classes), len(train.Classes))
	}
	return nil
}

// checkX validates a matrix given to Predict.
func checkX(x []float64, features int) (int, error) {
	if len(x)%features != 0 {
		return 0, fmt.Errorf("%w: predict: X has %d values, not a multiple of the model's %d features", ErrInvalid, len(x), features)
	}
	return len(x) / features, nil
}

// Prediction is what a model predicts for a matrix of rows.
type Prediction struct {
	// Values holds one prediction per row (regression).
	Values []float64
	// Probabilities holds rows×K class probabilities, row-major
	// (classification).
	Probabilities []float64
	// Labels holds the most probable class index per row (the first one
	// on ties, as ONNX's ArgMax), for classification.
	Labels []int
}

func classify(probs []float64, k int) Prediction {
	labels := make([]int, len(probs)/k)
	for r := range labels {
		row := probs[r*k : (r+1)*k]
		for c, p := range row {
			if p > row[labels[r]] {
				labels[r] = c
			}
		}
	}
	return Prediction{Probabilities: probs, Labels: labels}
}

// finish adds the metadata every exported model carries and encodes it.
func finish(g *onnx.Graph, features, classes []string, doc string) ([]byte, error) {
	m := g.Model()
	m.DocString = &doc
	feats, err := json.Marshal(features)
	if err != nil {
		return nil, fmt.Errorf("encode features: %w", err)
	}
	m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: ptr(MetaFeatures), Value: ptr(string(feats))})
	if classes != nil {
		cls, err := json.Marshal(classes)
		if err != nil {
			return nil, fmt.Errorf("encode classes: %w", err)
		}
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: ptr(MetaClasses), Value: ptr(string(cls))})
	}
	return onnx.Marshal(m)
}

func ptr[T any](v T) *T { return &v }

// standardize returns the weighted mean and standard deviation of every
// column of d; a constant column gets a deviation of 1, so it stays 0 once
// centred instead of dividing by zero.
func standardize(d Data) (mean, std []float64) {
	f, n := len(d.Features), d.Rows()
	mean, std = make([]float64, f), make([]float64, f)
	total := 0.0
	for i := range n {
		w := d.weight(i)
		total += w
		for j, v := range d.X[i*f : (i+1)*f] {
			mean[j] += w * v
		}
	}
	for j := range mean {
		mean[j] /= total
	}
	for i := range n {
		w := d.weight(i)
		for j, v := range d.X[i*f : (i+1)*f] {
			std[j] += w * (v - mean[j]) * (v - mean[j])
		}
	}
	for j := range std {
		std[j] = math.Sqrt(std[j] / total)
		if std[j] == 0 {
			std[j] = 1
		}
	}
	return mean, std
}

// Report says how a fit went.
type Report struct {
	// Iterations counts solver iterations (Logistic), boosting rounds kept
	// (GBDT) or 1 (Linear's closed form).
	Iterations int
	// Converged says the solver met its tolerance (Logistic); Linear always
	// converges and GBDT has no tolerance, so both report true.
	Converged bool
	// Loss is the training objective after each iteration: mean squared
	// error (plus the penalty) for regression, mean log loss (plus the
	// penalty) for classification.
	Loss []float64
	// EvalLoss is the same loss on the eval data after each boosting round
	// (GBDT with an eval set), including rounds after the best one.
	EvalLoss []float64
	// Stopped says early stopping ended boosting before the asked number of
	// rounds.
	Stopped bool
}

// Model is a fitted model: *Linear, *Logistic or *GBDT.
type Model interface {
	// Predict scores rows×features values, row-major.
	Predict(x []float64) (Prediction, error)
	// ONNX exports the model with input "x" (float [N,F]).
	ONNX() ([]byte, error)
}

var (
	_ Model = (*Linear)(nil)
	_ Model = (*Logistic)(nil)
	_ Model = (*GBDT)(nil)
)
