package stats

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// numState holds exact counts and moments plus a DDSketch for quantiles.
// Each batch's own count, mean and squared deviations are taken in two
// passes over its values and kept as a group; Result folds the groups
// with Chan et al.'s pairwise update, which matches a two-pass
// computation to ~1e-12 relative. The groups are folded in one canonical
// order (sorted by their values), not in the order batches arrived or
// states merged, so mean and std_dev are bit-identical however the rows
// were split into Accumulators and merged (lanes, shards, processes), as
// long as each batch is the same: a few dozen bytes a batch buy that.
//
// The sketch maps values to buckets with DDSketch's cubically interpolated
// mapping, which keeps the same relative-accuracy guarantee as the
// logarithmic one without a math.Log per value (about 3× cheaper), and
// values go straight into its stores rather than through the sketch's
// interface calls.
type numState struct {
	isFloat bool
	count   int64
	groups  []moments // one per batch; folded by Result
	min     float64
	max     float64
	zeros   int64
	sketch  *ddsketch.DDSketch
	mapping *mapping.CubicallyInterpolatedMapping
	pos     *store.CollapsingLowestDenseStore // the sketch's own stores
	neg     *store.CollapsingLowestDenseStore
	opts    Options
	buf     []float64 // the batch's present values, reused
}

// sketchBins bounds each store of a sketch (as DDSketch's
// LogCollapsingLowestDenseDDSketch(accuracy, 4096) does): past it the
// lowest buckets collapse, which only values spanning over 40 orders of
// magnitude at 0.5% accuracy reach.
const sketchBins = 4096

func newNumState(opts Options, isFloat bool) *numState {
	m, err := mapping.NewCubicallyInterpolatedMapping(opts.RelativeAccuracy)
	if err != nil {
		// Only a relative accuracy outside (0, 1) fails, and withDefaults
		// rules that out.
		panic(err)
	}
	pos, neg := store.NewCollapsingLowestDenseStore(sketchBins), store.NewCollapsingLowestDenseStore(sketchBins)
	return &numState{isFloat: isFloat, sketch: ddsketch.NewDDSketch(m, pos, neg), mapping: m, pos: pos, neg: neg,
		opts: opts, min: math.Inf(1), max: math.Inf(-1)}
}

// add gathers a batch's present values as float64 (NaN counts as missing,
// as pandas does) and folds them in.
func (s *numState) add(arr arrow.Array) error {
	n := arr.Len()
	noNulls := arr.NullN() == 0
	if a, ok := arr.(*array.Float64); ok && noNulls && !slices.ContainsFunc(a.Float64Values(), math.IsNaN) {
		return s.addValues(a.Float64Values()) // nothing to filter: no copy
	}
	vals := slices.Grow(s.buf[:0], n)
	switch a := arr.(type) {
	case *array.Float64:
		raw := a.Float64Values()
		for i := range n {
			if (noNulls || a.IsValid(i)) && !math.IsNaN(raw[i]) {
				vals = append(vals, raw[i])
			}
		}
	case *array.Float32:
		raw := a.Float32Values()
		for i := range n {
			if (noNulls || a.IsValid(i)) && !math.IsNaN(float64(raw[i])) {
				vals = append(vals, float64(raw[i]))
			}
		}
	case *array.Int64:
		raw := a.Int64Values()
		for i := range n {
			if noNulls || a.IsValid(i) {
				vals = append(vals, float64(raw[i]))
			}
		}
	case *array.Int32:
		vals = appendInts(vals, a, a.Int32Values(), noNulls)
	case *array.Int16:
		vals = appendInts(vals, a, a.Int16Values(), noNulls)
	case *array.Int8:
		vals = appendInts(vals, a, a.Int8Values(), noNulls)
	case *array.Uint64:
		vals = appendInts(vals, a, a.Uint64Values(), noNulls)
	case *array.Uint32:
		vals = appendInts(vals, a, a.Uint32Values(), noNulls)
	case *array.Uint16:
		vals = appendInts(vals, a, a.Uint16Values(), noNulls)
	case *array.Uint8:
		vals = appendInts(vals, a, a.Uint8Values(), noNulls)
	case *array.Float16:
		for i := range n {
			if noNulls || a.IsValid(i) {
				if v := float64(a.Value(i).Float32()); !math.IsNaN(v) {
					vals = append(vals, v)
				}
			}
		}
	case *array.Boolean:
		for i := range n {
			if noNulls || a.IsValid(i) {
				v := 0.0
				if a.Value(i) {
					v = 1
				}
				vals = append(vals, v)
			}
		}
	default:
		return fmt.Errorf("unsupported numeric type %s", arr.DataType())
	}
	s.buf = vals
	return s.addValues(vals)
}

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

func appendInts[T integer](vals []float64, a arrow.Array, raw []T, noNulls bool) []float64 {
	for i, v := range raw {
		if noNulls || a.IsValid(i) {
			vals = append(vals, float64(v))
		}
	}
	return vals
}

func (s *numState) addValues(vals []float64) error {
	if len(vals) == 0 {
		return nil
	}
	var sum float64
	mn, mx := s.min, s.max
	var zeros int64
	var nearZero float64 // values the sketch counts as 0
	m := s.mapping
	lo, hi := m.MinIndexableValue(), m.MaxIndexableValue()
	for _, v := range vals {
		sum += v
		if v < mn {
			mn = v
		}
		if v > mx {
			mx = v
		}
		if v == 0 {
			zeros++
		}
		// What DDSketch.Add does, without its interface calls.
		switch {
		case v > lo && v <= hi:
			s.pos.Add(m.Index(v))
		case v < -lo && v >= -hi:
			s.neg.Add(m.Index(-v))
		case v >= -lo && v <= lo:
			nearZero++
		default: // too large for the sketch: let it say so
			if err := s.sketch.Add(v); err != nil {
				return err
			}
		}
	}
	if nearZero > 0 {
		if err := s.sketch.AddWithCount(0, nearZero); err != nil {
			return err
		}
	}
	n := float64(len(vals))
	mean := sum / n
	var m2 float64
	for _, v := range vals {
		d := v - mean
		m2 += d * d
	}
	s.count += int64(len(vals))
	s.groups = append(s.groups, moments{n: int64(len(vals)), mean: mean, m2: m2})
	s.min, s.max = mn, mx
	s.zeros += zeros
	return nil
}

// moments are one batch's count, mean and sum of squared deviations.
type moments struct {
	n    int64
	mean float64
	m2   float64
}

// combine folds group b into a (Chan et al.).
func (a *moments) combine(b moments) {
	if b.n == 0 {
		return
	}
	if a.n == 0 {
		*a = b
		return
	}
	na, nb := float64(a.n), float64(b.n)
	tot := na + nb
	delta := b.mean - a.mean
	a.mean += delta * nb / tot
	a.m2 += b.m2 + delta*delta*na*nb/tot
	a.n += b.n
}

// moments folds every group in a canonical order (by count, then mean
// and m2 as ordered floats), so the result depends only on the multiset
// of batches, not on how states were merged.
func (s *numState) moments() moments {
	slices.SortFunc(s.groups, func(x, y moments) int {
		if c := cmp.Compare(x.n, y.n); c != 0 {
			return c
		}
		if c := cmp.Compare(x.mean, y.mean); c != 0 {
			return c
		}
		return cmp.Compare(x.m2, y.m2)
	})
	var m moments
	for _, g := range s.groups {
		m.combine(g)
	}
	return m
}

func (s *numState) merge(b *numState) {
	s.count += b.count
	s.groups = append(s.groups, b.groups...)
	s.min = math.Min(s.min, b.min)
	s.max = math.Max(s.max, b.max)
	s.zeros += b.zeros
	// Both sketches share the mapping, so this adds bucket counts: exact
	// and independent of order.
	if err := s.sketch.MergeWith(b.sketch); err != nil {
		panic(err) // same mapping by construction
	}
}

func (s *numState) result(rows int64) (*NumericStatistics, error) {
	ns := &NumericStatistics{CommonStats: common(s.count, rows), NumZeros: Int64(s.zeros), Histograms: []Histogram{}}
	if s.count == 0 {
		return ns, nil
	}
	m := s.moments()
	ns.Mean = Double(m.mean)
	ns.StdDev = Double(math.Sqrt(m.m2 / float64(m.n)))
	ns.Min, ns.Max = Double(s.min), Double(s.max)
	qs := make([]float64, s.opts.HistogramBuckets+1)
	for i := range qs {
		qs[i] = float64(i) / float64(s.opts.HistogramBuckets)
	}
	vals, err := s.sketch.GetValuesAtQuantiles(append(qs, 0.5))
	if err != nil {
		return nil, fmt.Errorf("quantiles: %w", err)
	}
	for i := range vals {
		vals[i] = s.clamp(vals[i])
	}
	ns.Median = Double(vals[len(vals)-1])
	vals = vals[:len(qs)]
	vals[0], vals[len(vals)-1] = s.min, s.max
	ns.Histograms = append(ns.Histograms, s.standard(), s.quantiles(vals))
	return ns, nil
}

// clamp keeps sketch answers inside the exact range.
func (s *numState) clamp(v float64) float64 { return math.Max(s.min, math.Min(s.max, v)) }

// quantiles is the equal-count histogram between consecutive quantiles.
func (s *numState) quantiles(bounds []float64) Histogram {
	h := Histogram{Type: HistogramQuantiles}
	per := float64(s.count) / float64(len(bounds)-1)
	for i := 0; i+1 < len(bounds); i++ {
		h.Buckets = append(h.Buckets, Bucket{LowValue: Double(bounds[i]), HighValue: Double(bounds[i+1]), SampleCount: Double(per)})
	}
	return h
}

// standard is the equal-width histogram between min and max. Counts come
// from the sketch's buckets: a bucket's values all land where its
// representative value (within the relative accuracy of each) falls.
func (s *numState) standard() Histogram {
	k := s.opts.HistogramBuckets
	h := Histogram{Type: HistogramStandard, Buckets: make([]Bucket, k)}
	width := (s.max - s.min) / float64(k)
	for i := range h.Buckets {
		h.Buckets[i].LowValue = Double(s.min + float64(i)*width)
		h.Buckets[i].HighValue = Double(s.min + float64(i+1)*width)
	}
	h.Buckets[k-1].HighValue = Double(s.max)
	if width == 0 {
		h.Buckets = h.Buckets[:1]
		h.Buckets[0].SampleCount = Double(s.count)
		return h
	}
	s.sketch.ForEach(func(value, count float64) bool {
		i := int((s.clamp(value) - s.min) / width)
		i = max(0, min(k-1, i))
		h.Buckets[i].SampleCount += Double(count)
		return false
	})
	return h
}
