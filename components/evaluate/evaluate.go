package evaluate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error about bad options or bad rows.
var ErrInvalid = errors.New("invalid argument")

// Options configure an Evaluator. The zero value evaluates a regressor
// over the whole dataset only.
type Options struct {
	// Classes names the classes of a classifier, in score-column order;
	// labels are indices into it. Empty means a regressor.
	Classes []string
	// Slices lists slicings by feature names: [] is the whole dataset,
	// [island] one slice per island, [island, sex] one per pair seen. The
	// whole dataset is always evaluated, first, whether listed or not.
	Slices [][]string
	// MinSliceSize is the fewest rows (unweighted) a slice needs to be
	// computed; smaller slices report their count only. The whole dataset
	// is always computed.
	MinSliceSize int
	// CalibrationBins is the number of equal-width calibration bins; 0
	// means 10.
	CalibrationBins int
	// CurvePoints bounds the points kept of each ROC curve; 0 means 101.
	CurvePoints int
	// Bootstrap asks for confidence intervals when Samples > 0.
	Bootstrap Bootstrap
}

// Bootstrap configures Poisson-bootstrap confidence intervals: each
// sample reweights every row by a Poisson(1) draw (times its own weight)
// and recomputes every metric; an interval is the 2.5th and 97.5th
// percentile of the samples' values, and the standard error their standard
// deviation. Draws depend only on Seed, the sample number and the row's
// position in the evaluator (merged evaluators append rows in merge
// order), so the same rows in the same order give the same intervals.
type Bootstrap struct {
	Samples int    `json:"samples"`
	Seed    uint64 `json:"seed"`
}

// Batch is a batch of rows: labels and predictions, optional weights and
// the features slices are cut by. A classifier's batch fills Labels and
// Scores, a regressor's Targets and Predictions.
type Batch struct {
	// Labels are class indices into Options.Classes.
	Labels []int
	// Scores are class probabilities, row-major: row i's are
	// Scores[i*K : (i+1)*K] for K classes.
	Scores []float64
	// Predicted are predicted class indices; nil means each row's
	// highest score (the first on ties, as numpy's argmax).
	Predicted []int
	// Targets and Predictions are a regressor's labels and outputs.
	Targets     []float64
	Predictions []float64
	// Weights are example weights, nil meaning 1 for every row.
	Weights []float64
	// Features holds, by name, the values of every feature named in
	// Options.Slices, as text (format integers with strconv.Itoa).
	Features map[string][]string
}

// rows is every row added, in order, column by column.
type rows struct {
	// badSums counts rows whose probabilities do not sum to 1;
	// firstBadSums holds the first few of their positions.
	badSums              int
	firstBadSums         []int
	labels, predicted    []int32
	scores               []float64 // row-major, K per row
	targets, predictions []float64
	weights              []float64
}

func (r *rows) len() int { return len(r.weights) }

// sumTolerance is how far a row's probabilities may sum from 1 before
// Result warns, and maxBadSums how many such rows it names.
const (
	sumTolerance = 1e-6
	maxBadSums   = 10
)

func (r *rows) noteBadSum(i int) {
	r.badSums++
	if len(r.firstBadSums) < maxBadSums {
		r.firstBadSums = append(r.firstBadSums, i)
	}
}

// Features returns the features named in o.Slices, each once, in order
// of first mention: the columns a Batch's Features must hold.
func (o Options) Features() []string {
	var out []string
	for _, s := range o.Slices {
		for _, f := range s {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// slice is one slice's key and the rows in it.
type slice struct {
	spec   int // index into Evaluator.specs
	values []string
	idx    []int32
}

// An Evaluator accumulates rows and computes metrics overall and per
// slice. Its state is the rows themselves (labels, scores, weights and the
// slice each row falls in): exact AUC and bootstrapping need them all, and
// it makes merged evaluators give exactly the results of one evaluator fed
// the same rows in the same order. Memory is about 8·(K+2) bytes per row
// for K classes, plus 4 per row per slicing.
type Evaluator struct {
	o      Options
	specs  [][]string
	d      rows
	slices map[string]*slice
}

// New returns an empty Evaluator, or an error wrapping ErrInvalid for bad
// options.
func New(o Options) (*Evaluator, error) {
	if len(o.Classes) == 1 {
		return nil, fmt.Errorf("%w: classes: a classifier needs at least 2 classes, got %q", ErrInvalid, o.Classes)
	}
	if o.MinSliceSize < 0 || o.CalibrationBins < 0 || o.CurvePoints < 0 || o.Bootstrap.Samples < 0 {
		return nil, fmt.Errorf("%w: min_slice_size, calibration bins, curve points and bootstrap samples must not be negative", ErrInvalid)
	}
	if o.CalibrationBins == 0 {
		o.CalibrationBins = 10
	}
	if o.CurvePoints == 0 {
		o.CurvePoints = 101
	}
	e := &Evaluator{o: o, specs: [][]string{{}}, slices: map[string]*slice{}}
	for i, s := range o.Slices {
		if len(s) == 0 {
			continue
		}
		for j, f := range s {
			if f == "" || slices.Contains(s[:j], f) {
				return nil, fmt.Errorf("%w: slices[%d]: empty or repeated feature %q", ErrInvalid, i, f)
			}
		}
		if !slices.ContainsFunc(e.specs, func(t []string) bool { return slices.Equal(s, t) }) {
			e.specs = append(e.specs, slices.Clone(s))
		}
	}
	return e, nil
}

func (e *Evaluator) classifier() bool { return len(e.o.Classes) > 0 }

// Add appends a batch's rows. A bad batch (columns of unequal lengths, a
// label out of range, a missing slice feature) is rejected whole, with an
// error wrapping ErrInvalid that names the column and row.
func (e *Evaluator) Add(b Batch) error {
	n, err := e.check(b)
	if err != nil {
		return err
	}
	base := e.d.len()
	if base+n > math.MaxInt32 {
		return fmt.Errorf("%w: more than %d rows", ErrInvalid, math.MaxInt32)
	}
	k := len(e.o.Classes)
	if e.classifier() {
		for i, y := range b.Labels {
			e.d.labels = append(e.d.labels, int32(y))
			p := 0
			if b.Predicted != nil {
				p = b.Predicted[i]
			} else {
				s := b.Scores[i*k : i*k+k]
				for c := range s {
					if s[c] > s[p] {
						p = c
					}
				}
			}
			e.d.predicted = append(e.d.predicted, int32(p))
		}
		e.d.scores = append(e.d.scores, b.Scores...)
		for i := range n {
			var sum float64
			for _, v := range b.Scores[i*k : i*k+k] {
				sum += v
			}
			if math.Abs(sum-1) > sumTolerance {
				e.d.noteBadSum(base + i)
			}
		}
	} else {
		e.d.targets = append(e.d.targets, b.Targets...)
		e.d.predictions = append(e.d.predictions, b.Predictions...)
	}
	if b.Weights != nil {
		e.d.weights = append(e.d.weights, b.Weights...)
	} else {
		for range n {
			e.d.weights = append(e.d.weights, 1)
		}
	}
	var key []byte
	for si, spec := range e.specs {
		cols := make([][]string, len(spec))
		for j, f := range spec {
			cols[j] = b.Features[f]
		}
		vals := make([]string, len(spec))
		for i := range n {
			for j := range cols {
				vals[j] = cols[j][i]
			}
			var s *slice
			s, key = e.slice(si, vals, key)
			s.idx = append(s.idx, int32(base+i))
		}
	}
	return nil
}

// slice returns the slice of spec si with values, creating it; buf is
// scratch space for the map key, returned for reuse (looking a key up by
// string(buf) does not allocate).
func (e *Evaluator) slice(si int, vals []string, buf []byte) (*slice, []byte) {
	buf = strconv.AppendInt(buf[:0], int64(si), 10)
	for _, v := range vals {
		buf = append(buf, 0)
		buf = append(buf, v...)
	}
	s, ok := e.slices[string(buf)]
	if !ok {
		s = &slice{spec: si, values: slices.Clone(vals)}
		e.slices[string(buf)] = s
	}
	return s, buf
}

// check validates b and returns its row count.
func (e *Evaluator) check(b Batch) (int, error) {
	var n int
	bad := func(format string, args ...any) (int, error) {
		return 0, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	if e.classifier() {
		k := len(e.o.Classes)
		n = len(b.Labels)
		if b.Targets != nil || b.Predictions != nil {
			return bad("a classifier's batch has targets or predictions; use labels and scores")
		}
		if len(b.Scores) != n*k {
			return bad("scores: %d values for %d rows of %d classes", len(b.Scores), n, k)
		}
		if b.Predicted != nil && len(b.Predicted) != n {
			return bad("predicted: %d values for %d rows", len(b.Predicted), n)
		}
		for i, y := range b.Labels {
			if y < 0 || y >= k {
				return bad("labels: row %d: class %d out of range [0, %d)", i, y, k)
			}
			if b.Predicted != nil && (b.Predicted[i] < 0 || b.Predicted[i] >= k) {
				return bad("predicted: row %d: class %d out of range [0, %d)", i, b.Predicted[i], k)
			}
			for c, s := range b.Scores[i*k : i*k+k] {
				if !(s >= 0 && s <= 1) {
					return bad("scores: row %d: probability of %s is %v, not in [0, 1]", i, e.o.Classes[c], s)
				}
			}
		}
	} else {
		n = len(b.Targets)
		if b.Labels != nil || b.Scores != nil || b.Predicted != nil {
			return bad("a regressor's batch has labels, scores or predicted classes; use targets and predictions")
		}
		if len(b.Predictions) != n {
			return bad("predictions: %d values for %d targets", len(b.Predictions), n)
		}
		for i := range n {
			if math.IsNaN(b.Targets[i]) || math.IsInf(b.Targets[i], 0) || math.IsNaN(b.Predictions[i]) || math.IsInf(b.Predictions[i], 0) {
				return bad("row %d: target %v or prediction %v is not finite", i, b.Targets[i], b.Predictions[i])
			}
		}
	}
	if b.Weights != nil {
		if len(b.Weights) != n {
			return bad("weights: %d values for %d rows", len(b.Weights), n)
		}
		for i, w := range b.Weights {
			if !(w >= 0) || math.IsInf(w, 0) {
				return bad("weights: row %d: weight %v is not a finite non-negative number", i, w)
			}
		}
	}
	for _, spec := range e.specs {
		for _, f := range spec {
			col, ok := b.Features[f]
			if !ok {
				return bad("features: no column %q to slice by", f)
			}
			if len(col) != n {
				return bad("features: column %q has %d values for %d rows", f, len(col), n)
			}
		}
	}
	return n, nil
}

// Merge appends o's rows after e's; o is unchanged. Both must have been
// made with the same classes and slices.
func (e *Evaluator) Merge(o *Evaluator) error {
	if o == e {
		return fmt.Errorf("%w: merge an evaluator into itself", ErrInvalid)
	}
	if !slices.Equal(e.o.Classes, o.o.Classes) || !slices.EqualFunc(e.specs, o.specs, slices.Equal) {
		return fmt.Errorf("%w: merge evaluators with different classes or slices", ErrInvalid)
	}
	base := int32(e.d.len())
	if int(base)+o.d.len() > math.MaxInt32 {
		return fmt.Errorf("%w: more than %d rows", ErrInvalid, math.MaxInt32)
	}
	for _, i := range o.d.firstBadSums {
		e.d.noteBadSum(int(base) + i)
	}
	e.d.badSums += o.d.badSums - len(o.d.firstBadSums)
	e.d.labels = append(e.d.labels, o.d.labels...)
	e.d.predicted = append(e.d.predicted, o.d.predicted...)
	e.d.scores = append(e.d.scores, o.d.scores...)
	e.d.targets = append(e.d.targets, o.d.targets...)
	e.d.predictions = append(e.d.predictions, o.d.predictions...)
	e.d.weights = append(e.d.weights, o.d.weights...)
	var key []byte
	for _, s := range o.sortedSlices() {
		var t *slice
		t, key = e.slice(s.spec, s.values, key)
		for _, i := range s.idx {
			t.idx = append(t.idx, base+i)
		}
	}
	return nil
}

// sortedSlices returns the slices by spec, then values.
func (e *Evaluator) sortedSlices() []*slice {
	out := make([]*slice, 0, len(e.slices))
	for _, s := range e.slices {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *slice) int {
		if a.spec != b.spec {
			return a.spec - b.spec
		}
		return slices.Compare(a.values, b.values)
	})
	return out
}

// Result computes the metrics of every slice, the whole dataset first. It
// fails only when ctx ends (bootstrapping may be long) or when no rows
// were added.
func (e *Evaluator) Result(ctx context.Context) (*Result, error) {
	if e.d.len() == 0 {
		return nil, fmt.Errorf("%w: no rows to evaluate", ErrInvalid)
	}
	task := "regression"
	if e.classifier() {
		task = "classification"
	}
	res := &Result{Task: task}
	if e.d.badSums > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("scores: the class probabilities of %d rows do not sum to 1 (within %g); the first are rows %s",
			e.d.badSums, sumTolerance, strings.Trim(fmt.Sprint(e.d.firstBadSums), "[]")))
	}
	type computed struct {
		s   *slice
		out *SliceResult
	}
	var todo []computed
	sorted := e.sortedSlices()
	for _, s := range sorted {
		r := SliceResult{ExampleCount: int64(len(s.idx))}
		for j, f := range e.specs[s.spec] {
			r.Slice = append(r.Slice, FeatureValue{Feature: f, Value: s.values[j]})
		}
		r.Key = sliceKey(r.Slice)
		w := make([]float64, len(s.idx))
		var sum float64
		for i, x := range s.idx {
			w[i] = e.d.weights[x]
			sum += w[i]
		}
		r.WeightedExampleCount = Number(sum)
		if s.spec != 0 && len(s.idx) < e.o.MinSliceSize {
			r.TooSmall = true
		} else if sum > 0 {
			e.compute(&r, s.idx, w, true)
		}
		res.Slices = append(res.Slices, r)
	}
	for i := range res.Slices {
		if r := &res.Slices[i]; r.Classification != nil || r.Regression != nil {
			todo = append(todo, computed{sorted[i], r})
		}
	}
	if e.o.Bootstrap.Samples == 0 || len(todo) == 0 {
		return res, nil
	}
	samples := make([]map[string][]float64, len(todo))
	for i := range samples {
		samples[i] = map[string][]float64{}
	}
	pw := make([]float64, e.d.len())
	for s := range e.o.Bootstrap.Samples {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("bootstrap sample %d: %w", s, err)
		}
		poissonWeights(pw, e.o.Bootstrap.Seed, uint64(s))
		for i, c := range todo {
			w := make([]float64, len(c.s.idx))
			var sum float64
			for j, x := range c.s.idx {
				w[j] = e.d.weights[x] * pw[x]
				sum += w[j]
			}
			if sum == 0 {
				continue // an empty resample has no metrics
			}
			r := SliceResult{WeightedExampleCount: Number(sum)}
			e.compute(&r, c.s.idx, w, false)
			for name, v := range r.Scalars() {
				// Counts are the data's size, not estimates: no intervals.
				if name != "example_count" && name != "weighted_example_count" && !math.IsNaN(v) {
					samples[i][name] = append(samples[i][name], v)
				}
			}
		}
	}
	for i, c := range todo {
		c.out.Intervals = map[string]Interval{}
		for name, v := range samples[i] {
			c.out.Intervals[name] = interval(v)
		}
	}
	return res, nil
}

func (e *Evaluator) compute(r *SliceResult, idx []int32, w []float64, curves bool) {
	if e.classifier() {
		r.Classification = classification(&e.d, e.o.Classes, idx, w, &e.o, curves)
	} else {
		r.Regression = regression(&e.d, idx, w)
	}
}

func sliceKey(fv []FeatureValue) string {
	if len(fv) == 0 {
		return OverallKey
	}
	parts := make([]string, len(fv))
	for i, f := range fv {
		parts[i] = f.Feature + "=" + f.Value
	}
	return strings.Join(parts, ", ")
}
