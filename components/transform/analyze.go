package transform

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/DataDog/sketches-go/ddsketch"
)

// QuantileAccuracy is the relative accuracy of medians and quantile bucket
// boundaries: the value returned is within 0.1% of a value whose rank is
// the requested one (DDSketch's guarantee).
const QuantileAccuracy = 0.001

// Moments is the mergeable state behind mean, zscore and min/max scaling:
// count, mean and the sum of squared deviations (merged with Chan et al.'s
// formula, so shards give the same result up to rounding), min and max.
// Missing values (NaN) are skipped.
type Moments struct {
	N        int64
	Mean, M2 float64
	Min, Max float64
}

// Add folds in one value.
func (m *Moments) Add(x float64) {
	if math.IsNaN(x) {
		return
	}
	if m.N == 0 {
		m.Min, m.Max = x, x
	}
	m.N++
	d := x - m.Mean
	m.Mean += d / float64(m.N)
	m.M2 += d * (x - m.Mean)
	m.Min, m.Max = min(m.Min, x), max(m.Max, x)
}

// Merge folds in another shard's state.
func (m *Moments) Merge(o Moments) {
	switch {
	case o.N == 0:
		return
	case m.N == 0:
		*m = o
		return
	}
	n := m.N + o.N
	d := o.Mean - m.Mean
	m.Mean += d * float64(o.N) / float64(n)
	m.M2 += o.M2 + d*d*float64(m.N)*float64(o.N)/float64(n)
	m.N = n
	m.Min, m.Max = min(m.Min, o.Min), max(m.Max, o.Max)
}

// Std is the population standard deviation (as TensorFlow Transform's
// scale_to_z_score uses).
func (m *Moments) Std() float64 {
	if m.N == 0 {
		return 0
	}
	return math.Sqrt(m.M2 / float64(m.N))
}

// Quantiles is the mergeable state behind median imputation and quantile
// buckets: a DDSketch with QuantileAccuracy. Missing values are skipped.
type Quantiles struct{ s *ddsketch.DDSketch }

// NewQuantiles returns an empty sketch.
func NewQuantiles() *Quantiles {
	s, err := ddsketch.NewDefaultDDSketch(QuantileAccuracy)
	if err != nil {
		panic(err) // only for an accuracy outside (0, 1)
	}
	return &Quantiles{s: s}
}

// Add folds in one value.
func (q *Quantiles) Add(x float64) {
	if !math.IsNaN(x) && !math.IsInf(x, 0) {
		q.s.Add(x) //nolint:errcheck // only fails on values out of the mapping's range
	}
}

// Merge folds in another shard's sketch (bucket counts add, in any order).
func (q *Quantiles) Merge(o *Quantiles) error { return q.s.MergeWith(o.s) }

// Count is the number of values added.
func (q *Quantiles) Count() float64 { return q.s.GetCount() }

// Quantile returns the value at rank q in [0, 1].
func (q *Quantiles) Quantile(r float64) (float64, error) { return q.s.GetValueAtQuantile(r) }

// Counts is the mergeable state behind vocabularies and most-frequent
// imputation: an exact count per value (memory grows with the distinct
// values). Missing values ("" or NaN) are skipped.
type Counts[T comparable] map[T]int64

// Merge adds another shard's counts.
func (c Counts[T]) Merge(o Counts[T]) {
	for k, n := range o {
		c[k] += n
	}
}

// Ranked returns values by count, highest first, ties broken by the value
// (ascending), keeping those counted at least minCount times and at most
// topK of them (0: all).
func Ranked[T cmp.Ordered](c Counts[T], topK int, minCount int64) []T {
	type kv struct {
		k T
		n int64
	}
	all := make([]kv, 0, len(c))
	for k, n := range c {
		if n >= minCount {
			all = append(all, kv{k, n})
		}
	}
	slices.SortFunc(all, func(a, b kv) int {
		if a.n != b.n {
			return cmp.Compare(b.n, a.n)
		}
		return cmp.Compare(a.k, b.k)
	})
	if topK > 0 && len(all) > topK {
		all = all[:topK]
	}
	out := make([]T, len(all))
	for i, e := range all {
		out[i] = e.k
	}
	return out
}

// analyzer collects one step's state during a pass.
type analyzer struct {
	step *Step
	// batches holds one Moments per batch, in row order: the fit folds
	// them in that order, so shards that keep their batches' Moments
	// merge into exactly what one process fits (batches never span part
	// files, so a shard's batches are the whole's).
	batches []Moments
	quant   *Quantiles
	nums    Counts[float64]
	strs    []Counts[string]
}

func newAnalyzer(s *Step) *analyzer {
	a := &analyzer{step: s}
	switch {
	case s.Op == "impute" && s.Strategy == "median", s.Op == "bucketize":
		a.quant = NewQuantiles()
	case s.Op == "impute" && s.Strategy == "most_frequent":
		a.nums = Counts[float64]{}
		a.strs = []Counts[string]{{}}
	case s.Op == "vocabulary":
		a.strs = []Counts[string]{{}}
	case s.Op == "cross":
		a.strs = []Counts[string]{{}, {}}
	}
	return a
}

func (a *analyzer) add(v values, raw map[string]values) {
	switch {
	case a.step.Op == "cross":
		for j, c := range a.step.Columns2 {
			for _, t := range raw[c].str {
				if t != "" {
					a.strs[j][t]++
				}
			}
		}
	case v.str != nil:
		for _, t := range v.str {
			if t != "" {
				a.strs[0][t]++
			}
		}
	case a.quant != nil:
		for _, x := range v.num {
			a.quant.Add(x)
		}
	case a.nums != nil:
		for _, x := range v.num {
			if !math.IsNaN(x) {
				a.nums[x]++
			}
		}
	default:
		var m Moments
		for _, x := range v.num {
			m.Add(x)
		}
		a.batches = append(a.batches, m)
	}
}

// moments folds the per-batch Moments in row order.
func (a *analyzer) moments() Moments {
	var m Moments
	for _, b := range a.batches {
		m.Merge(b)
	}
	return m
}

// finish stores the fitted values in the step.
func (a *analyzer) finish() error {
	s := a.step
	moments := a.moments()
	empty := func() error { return fmt.Errorf("%s: the train split has no non-missing values to fit on", s.Op) }
	switch s.Op {
	case "impute":
		switch s.Strategy {
		case "mean":
			if moments.N == 0 {
				return empty()
			}
			v := moments.Mean
			s.Value = &v
		case "median":
			if a.quant.Count() == 0 {
				return empty()
			}
			v, err := a.quant.Quantile(0.5)
			if err != nil {
				return err
			}
			s.Value = &v
		case "most_frequent":
			if len(a.strs[0]) > 0 {
				t := Ranked(a.strs[0], 1, 0)[0]
				s.Text = &t
			} else if len(a.nums) > 0 {
				v := Ranked(a.nums, 1, 0)[0]
				s.Value = &v
			} else {
				return empty()
			}
		}
	case "zscore":
		if moments.N == 0 {
			return empty()
		}
		s.Mean, s.Std = moments.Mean, moments.Std()
		if s.Std == 0 {
			s.Std = 1 // a constant column: centre it, do not divide by zero
		}
	case "scale_to_0_1", "scale_by_min_max":
		if moments.N == 0 {
			return empty()
		}
		s.Min, s.Max = moments.Min, moments.Max
	case "bucketize":
		if a.quant.Count() == 0 {
			return empty()
		}
		s.Boundaries = []float64{}
		for i := 1; i < s.NumBuckets; i++ {
			b, err := a.quant.Quantile(float64(i) / float64(s.NumBuckets))
			if err != nil {
				return err
			}
			if n := len(s.Boundaries); n == 0 || b > s.Boundaries[n-1] {
				s.Boundaries = append(s.Boundaries, b)
			}
		}
		s.Depth = len(s.Boundaries) + 1
	case "vocabulary":
		s.Vocabulary = Ranked(a.strs[0], s.TopK, max(s.MinFrequency, 1))
		if len(s.Vocabulary) == 0 {
			return errors.New("vocabulary is empty: no value in the train split passes top_k and frequency_threshold")
		}
		s.Depth = len(s.Vocabulary) + s.NumOOV
	case "cross":
		s.Vocabularies = make([][]string, 2)
		for j := range 2 {
			s.Vocabularies[j] = Ranked(a.strs[j], s.TopK, 1)
			if len(s.Vocabularies[j]) == 0 {
				return fmt.Errorf("cross: column %q has no non-missing values in the train split", s.Columns2[j])
			}
		}
		s.Depth = (len(s.Vocabularies[0]) + 1) * (len(s.Vocabularies[1]) + 1)
	}
	s.Fitted = true
	return nil
}
