package stats

import (
	"container/heap"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/datasketches-go/hll"
)

// strState counts values exactly up to UniqueCap distinct ones. Past the
// cap every distinct value also goes into an HLL sketch (lg_k 12, about
// 1.6% relative standard error), which then gives unique; values first seen
// after the cap are no longer counted one by one.
type strState struct {
	opts     Options
	count    int64
	totalLen int64
	counts   map[string]*int64 // pointers: a hit costs one hash, not two
	sketch   hll.HllSketch     // nil until the cap is passed
	dictBuf  []int64
}

func newStrState(opts Options) *strState {
	return &strState{opts: opts, counts: map[string]*int64{}}
}

// see counts one value; v may alias Arrow memory, so a new key is cloned.
func (s *strState) see(v string, n int64) error {
	s.count += n
	s.totalLen += int64(len(v)) * n
	if c := s.counts[v]; c != nil {
		*c += n
		return nil
	}
	if s.sketch == nil && len(s.counts) < s.opts.UniqueCap {
		s.counts[strings.Clone(v)] = &n
		return nil
	}
	if err := s.overflow(); err != nil {
		return err
	}
	return s.sketch.UpdateString(v)
}

// overflow starts the HLL sketch with every value counted so far.
func (s *strState) overflow() error {
	if s.sketch != nil {
		return nil
	}
	sk, err := hll.NewHllSketch(12, hll.TgtHllTypeHll8)
	if err != nil {
		return err
	}
	for v := range s.counts {
		if err := sk.UpdateString(v); err != nil {
			return err
		}
	}
	s.sketch = sk
	return nil
}

func (s *strState) add(arr arrow.Array) error {
	n := arr.Len()
	noNulls := arr.NullN() == 0
	switch a := arr.(type) {
	case *array.String:
		for i := range n {
			if noNulls || a.IsValid(i) {
				if err := s.see(a.Value(i), 1); err != nil {
					return err
				}
			}
		}
	case *array.LargeString:
		for i := range n {
			if noNulls || a.IsValid(i) {
				if err := s.see(a.Value(i), 1); err != nil {
					return err
				}
			}
		}
	case *array.Binary:
		for i := range n {
			if noNulls || a.IsValid(i) {
				if err := s.see(string(a.Value(i)), 1); err != nil {
					return err
				}
			}
		}
	case *array.Dictionary:
		return s.addDictionary(a)
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		for i := range n {
			if noNulls || a.IsValid(i) {
				if err := s.see(formatTime(a.Value(i).ToTime(unit)), 1); err != nil {
					return err
				}
			}
		}
	default:
		for i := range n {
			if noNulls || arr.IsValid(i) {
				if err := s.see(arr.ValueStr(i), 1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// addDictionary counts indices first, then each distinct value once: much
// cheaper than hashing every string when values repeat.
func (s *strState) addDictionary(a *array.Dictionary) error {
	dict := a.Dictionary()
	counts := s.dictBuf[:0]
	counts = slices.Grow(counts, dict.Len())[:dict.Len()]
	clear(counts)
	noNulls := a.NullN() == 0
	for i := range a.Len() {
		if noNulls || a.IsValid(i) {
			counts[a.GetValueIndex(i)]++
		}
	}
	s.dictBuf = counts
	for j, c := range counts {
		if c == 0 {
			continue
		}
		var v string
		switch d := dict.(type) {
		case *array.String:
			v = d.Value(j)
		case *array.LargeString:
			v = d.Value(j)
		case *array.Binary:
			v = string(d.Value(j))
		default:
			v = dict.ValueStr(j)
		}
		if err := s.see(v, c); err != nil {
			return err
		}
	}
	return nil
}

// formatTime writes a timestamp as ISO-8601: a date alone at midnight UTC
// (how dates appear in raw files), else RFC 3339 with the fraction needed.
func formatTime(t time.Time) string {
	t = t.UTC()
	if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0 {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339Nano)
}

func (s *strState) merge(b *strState) error {
	s.count += b.count
	s.totalLen += b.totalLen
	if b.sketch != nil {
		if err := s.overflow(); err != nil {
			return err
		}
	}
	for v, c := range b.counts {
		if old := s.counts[v]; old != nil {
			*old += *c
			continue
		}
		if s.sketch == nil && len(s.counts) < s.opts.UniqueCap {
			n := *c
			s.counts[v] = &n
			continue
		}
		if err := s.overflow(); err != nil {
			return err
		}
		if err := s.sketch.UpdateString(v); err != nil {
			return err
		}
	}
	if b.sketch != nil {
		u, err := hll.NewUnion(12)
		if err != nil {
			return err
		}
		if err := u.UpdateSketch(s.sketch); err != nil {
			return err
		}
		if err := u.UpdateSketch(b.sketch); err != nil {
			return err
		}
		if s.sketch, err = u.GetResult(hll.TgtHllTypeHll8); err != nil {
			return err
		}
	}
	return nil
}

// ranked returns values by count, most frequent first, ties by value so
// the order never depends on map iteration.
func (s *strState) ranked(limit int) []FreqAndValue {
	// Only the top `limit` are needed: a bounded min-heap keeps them in
	// O(n log limit) instead of sorting every distinct value (zip codes,
	// ids: tens of thousands). Order: count descending, then value, so ties
	// break the same way every time.
	better := func(a, b valueCount) bool {
		if a.c != b.c {
			return a.c > b.c
		}
		return a.v < b.v
	}
	h := &worstFirst{better: better}
	for v, c := range s.counts {
		x := valueCount{v, *c}
		switch {
		case h.Len() < limit:
			heap.Push(h, x)
		case limit > 0 && better(x, h.items[0]):
			h.items[0] = x
			heap.Fix(h, 0)
		}
	}
	top := h.items
	slices.SortFunc(top, func(a, b valueCount) int {
		switch {
		case better(a, b):
			return -1
		case better(b, a):
			return 1
		}
		return 0
	})
	out := make([]FreqAndValue, len(top))
	for i, x := range top {
		out[i] = FreqAndValue{Value: x.v, Frequency: Double(x.c)}
	}
	return out
}

type valueCount struct {
	v string
	c int64
}

// worstFirst is a heap whose root is the worst of the kept values.
type worstFirst struct {
	items  []valueCount
	better func(a, b valueCount) bool
}

func (h *worstFirst) Len() int           { return len(h.items) }
func (h *worstFirst) Less(i, j int) bool { return h.better(h.items[j], h.items[i]) }
func (h *worstFirst) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *worstFirst) Push(x any)         { h.items = append(h.items, x.(valueCount)) }
func (h *worstFirst) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

func (s *strState) result(rows int64) (*StringStatistics, error) {
	ss := &StringStatistics{CommonStats: common(s.count, rows), TopValues: []FreqAndValue{}}
	if s.count == 0 {
		return ss, nil
	}
	ss.Unique = Int64(len(s.counts))
	if s.sketch != nil {
		est, err := s.sketch.GetEstimate()
		if err != nil {
			return nil, fmt.Errorf("distinct count: %w", err)
		}
		ss.Unique = Int64(math.Round(est))
	}
	ss.AvgLength = Double(float64(s.totalLen) / float64(s.count))
	ranked := s.ranked(max(s.opts.TopValues, s.opts.RankHistogramBuckets))
	ss.TopValues = ranked[:min(len(ranked), s.opts.TopValues)]
	rh := &RankHistogram{Buckets: make([]RankBucket, len(ranked))}
	for i, fv := range ranked {
		rh.Buckets[i] = RankBucket{LowRank: Int64(i), HighRank: Int64(i), Label: fv.Value, SampleCount: fv.Frequency}
	}
	ss.RankHistogram = rh
	return ss, nil
}
