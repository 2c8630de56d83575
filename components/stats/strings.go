package stats

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/datasketches-go/hll"
)

// strState counts values exactly up to UniqueCap distinct ones. Past the
// cap every distinct value also goes into an HLL sketch (lg_k 12, about
// 1.6% relative standard error), which then gives unique; values first seen
// after the cap are no longer counted one by one.
//
// Values are numbered by a strTable (one hash per value, or per distinct
// value of a dictionary batch; keys in a pointer-free arena) and counted
// in a flat slice by number: nothing is allocated per hit, nor per new
// value beyond its bytes.
type strState struct {
	opts     Options
	count    int64
	totalLen int64
	table    *strTable
	counts   []int64       // by table id
	sketch   hll.HllSketch // nil until the cap is passed
	dictBuf  []int64       // per dictionary index counts of one batch, reused
}

func newStrState(opts Options) *strState {
	return &strState{opts: opts, table: newStrTable()}
}

// see counts one value.
func (s *strState) see(v string, n int64) error {
	s.count += n
	s.totalLen += int64(len(v)) * n
	h := s.table.hashString(v)
	if id := s.table.findString(v, h); id >= 0 {
		s.counts[id] += n
		return nil
	}
	if !s.full() {
		if _, ok := s.table.insertString(v, h); ok {
			s.counts = append(s.counts, n)
			return nil
		}
	}
	return s.overflowWith(v)
}

// seeNew counts a value known not to be in the table (count and totalLen
// are the caller's to update).
func (s *strState) seeNew(b []byte, h uint64, n int64) error {
	if !s.full() {
		if _, ok := s.table.insert(b, h); ok {
			s.counts = append(s.counts, n)
			return nil
		}
	}
	return s.overflowWith(string(b))
}

// overflowWith puts a value past the cap into the sketch.
func (s *strState) overflowWith(v string) error {
	if err := s.overflow(); err != nil {
		return err
	}
	return s.sketch.UpdateString(v)
}

// full reports whether new values no longer get exact counts.
func (s *strState) full() bool { return s.sketch != nil || s.table.Len() >= s.opts.UniqueCap }

// reserve sizes the table for about n distinct values of total size
// bytes, so a feature with many (ZIP codes, ids) does not rehash its way
// up.
func (s *strState) reserve(n, bytes int) {
	n = min(n, s.opts.UniqueCap)
	if s.table.Len() > 0 || n <= 64 {
		return
	}
	s.table.reserve(n, bytes)
	s.counts = slices.Grow(s.counts, n)
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
	for id := range s.table.Len() {
		if err := sk.UpdateString(s.table.keyString(id)); err != nil {
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

// addDictionary counts indices first, then looks each distinct value up
// once: a batch costs one increment per row plus one hash per dictionary
// entry, however often values repeat.
func (s *strState) addDictionary(a *array.Dictionary) error {
	dict := a.Dictionary()
	counts := slices.Grow(s.dictBuf[:0], dict.Len())[:dict.Len()]
	clear(counts)
	s.dictBuf = counts
	if err := countIndices(a, counts); err != nil {
		return err
	}
	switch d := dict.(type) {
	case *array.String:
		return seeDictionary(s, counts, d.ValueOffsets(), d.ValueBytes())
	case *array.Binary:
		return seeDictionary(s, counts, d.ValueOffsets(), d.ValueBytes())
	case *array.LargeString:
		return seeDictionary(s, counts, d.ValueOffsets(), d.ValueBytes())
	case *array.LargeBinary:
		return seeDictionary(s, counts, d.ValueOffsets(), d.ValueBytes())
	}
	for j, c := range counts {
		if c > 0 {
			if err := s.see(dict.ValueStr(j), c); err != nil {
				return err
			}
		}
	}
	return nil
}

// countIndices adds one to counts[i] for every present row whose
// dictionary index is i.
func countIndices(a *array.Dictionary, counts []int64) error {
	noNulls := a.NullN() == 0
	switch idx := a.Indices().(type) {
	case *array.Int8:
		return countIndex(a, idx.Int8Values(), counts, noNulls)
	case *array.Int16:
		return countIndex(a, idx.Int16Values(), counts, noNulls)
	case *array.Int32:
		return countIndex(a, idx.Int32Values(), counts, noNulls)
	case *array.Int64:
		return countIndex(a, idx.Int64Values(), counts, noNulls)
	case *array.Uint8:
		return countIndex(a, idx.Uint8Values(), counts, noNulls)
	case *array.Uint16:
		return countIndex(a, idx.Uint16Values(), counts, noNulls)
	case *array.Uint32:
		return countIndex(a, idx.Uint32Values(), counts, noNulls)
	case *array.Uint64:
		return countIndex(a, idx.Uint64Values(), counts, noNulls)
	}
	for i := range a.Len() {
		if noNulls || a.IsValid(i) {
			j := a.GetValueIndex(i)
			if j < 0 || j >= len(counts) {
				return fmt.Errorf("row %d: dictionary index %d out of range [0, %d)", i, j, len(counts))
			}
			counts[j]++
		}
	}
	return nil
}

func countIndex[T integer](a arrow.Array, raw []T, counts []int64, noNulls bool) error {
	for i, j := range raw {
		if noNulls || a.IsValid(i) {
			if uint64(j) >= uint64(len(counts)) { // also catches negative indices
				return fmt.Errorf("row %d: dictionary index %d out of range [0, %d)", i, j, len(counts))
			}
			counts[j]++
		}
	}
	return nil
}

// seeDictionary folds in a batch's dictionary entries with their counts.
// data holds the entries' bytes from offsets[0] on. Each entry used costs
// one hash and one probe; a new one, a copy of its bytes into the table.
func seeDictionary[O int32 | int64](s *strState, counts []int64, offsets []O, data []byte) error {
	s.reserve(len(counts), len(data))
	t := s.table
	base := offsets[0]
	for j, c := range counts {
		if c == 0 {
			continue
		}
		v := data[offsets[j]-base : offsets[j+1]-base]
		s.count += c
		s.totalLen += int64(len(v)) * c
		h := t.hashBytes(v)
		if id := t.findBytes(v, h); id >= 0 {
			s.counts[id] += c
			continue
		}
		if err := s.seeNew(v, h, c); err != nil {
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
	if s.count == 0 && s.table.Len() == 0 && s.sketch == nil {
		// Nothing to fold into: take b's state as it is (what inserting
		// its values in order would build).
		s.count, s.totalLen, s.table, s.counts, s.sketch = b.count, b.totalLen, b.table, b.counts, b.sketch
		return nil
	}
	s.count += b.count
	s.totalLen += b.totalLen
	// b's exactly counted values first, while there is room: a state that
	// passed the cap must not push out the values the other counted.
	for id := range b.table.Len() {
		v := b.table.key(id)
		h := s.table.hashBytes(v)
		if i := s.table.findBytes(v, h); i >= 0 {
			s.counts[i] += b.counts[id]
			continue
		}
		if err := s.seeNew(v, h, b.counts[id]); err != nil {
			return err
		}
	}
	if b.sketch != nil {
		if err := s.overflow(); err != nil {
			return err
		}
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

// ranked returns values by count, most frequent first, ties by value
// (bytewise, as Go compares strings), so the order never depends on
// insertion order.
func (s *strState) ranked(limit int) []FreqAndValue {
	// Only the top `limit` are needed: a bounded heap keeps them in
	// O(n log limit) instead of sorting every distinct value (ZIP codes,
	// ids: tens of thousands), and only those become strings. Each
	// candidate carries its count and its first 8 bytes as a big-endian
	// integer, so most comparisons (ties on count are the rule for ids)
	// never touch the table's bytes.
	t := s.table
	if limit <= 0 || t.Len() == 0 {
		return []FreqAndValue{}
	}
	better := func(a, b *rankItem) bool {
		if a.c != b.c {
			return a.c > b.c
		}
		if a.p != b.p {
			return a.p < b.p
		}
		return string(t.key(int(a.id))) < string(t.key(int(b.id)))
	}
	h := make([]rankItem, 0, min(limit, t.Len()))
	for id := range t.Len() {
		x := rankItem{c: s.counts[id], id: int32(id)}
		if len(h) == limit && x.c < h[0].c {
			continue // worse than the worst kept, whatever its bytes
		}
		x.p = prefix(t.key(id))
		if len(h) < limit {
			h = append(h, x)
			siftUp(h, len(h)-1, better)
		} else if better(&x, &h[0]) {
			h[0] = x
			siftDown(h, 0, better)
		}
	}
	slices.SortFunc(h, func(a, b rankItem) int {
		switch {
		case better(&a, &b):
			return -1
		case better(&b, &a):
			return 1
		}
		return 0
	})
	out := make([]FreqAndValue, len(h))
	for i, x := range h {
		out[i] = FreqAndValue{Value: t.keyString(int(x.id)), Frequency: Double(x.c)}
	}
	return out
}

// rankItem is a ranking candidate: count, leading bytes, table id.
type rankItem struct {
	c  int64
	p  uint64
	id int32
}

// prefix is b's first 8 bytes as a big-endian integer, zero-padded: it
// orders as the bytes do, except that equal prefixes need the full bytes.
func prefix(b []byte) uint64 {
	var p uint64
	for i := range 8 {
		p <<= 8
		if i < len(b) {
			p |= uint64(b[i])
		}
	}
	return p
}

// siftUp and siftDown keep h a heap whose root is the worst item kept.
func siftUp(h []rankItem, i int, better func(a, b *rankItem) bool) {
	for i > 0 {
		parent := (i - 1) / 2
		if !better(&h[parent], &h[i]) {
			return
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
}

func siftDown(h []rankItem, i int, better func(a, b *rankItem) bool) {
	for {
		worst := i
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < len(h) && better(&h[worst], &h[c]) {
				worst = c
			}
		}
		if worst == i {
			return
		}
		h[i], h[worst] = h[worst], h[i]
		i = worst
	}
}

func (s *strState) result(rows int64) (*StringStatistics, error) {
	ss := &StringStatistics{CommonStats: common(s.count, rows), TopValues: []FreqAndValue{}}
	if s.count == 0 {
		return ss, nil
	}
	ss.Unique = Int64(s.table.Len())
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
