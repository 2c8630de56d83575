package stats

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/apache/datasketches-go/hll"
)

// The state encoding (MarshalBinary) is, after encodingMagic and
// encodingVersion, a sequence of unsigned varints (u), zig-zag varints
// (i), IEEE-754 float64 bit patterns as little-endian uint64s (f) and
// byte strings (a length u, then the bytes):
//
//	options   u TopValues, u RankHistogramBuckets, u UniqueCap,
//	          f RelativeAccuracy, u HistogramBuckets
//	rows      i
//	columns   u count, then per column: bytes name, u kind (0 INT,
//	          1 FLOAT, 2 STRING), and
//	  numbers: i count, i zeros, f min, f max,
//	           u groups, then per group (a batch): i n, f mean, f m2,
//	           bytes DDSketch (sketches-go's Encode, the mapping omitted:
//	           it follows from RelativeAccuracy)
//	  strings: i count, i total length, u distinct values counted
//	           exactly, then per value in first-seen order: bytes value,
//	           i count; bytes HLL sketch (DataSketches' compact image,
//	           empty before the cap is passed)
//
// Every number is exact: an Accumulator read back is the one written,
// and merging read-back states gives what merging the originals does.
const (
	encodingMagic   = "MLSTATS"
	encodingVersion = 1
)

// MarshalBinary encodes the Accumulator's whole state (options, row count,
// every column's exact counts, moments, sketch buckets, distinct values
// with their counts and distinct-count sketch), so that another process
// can UnmarshalBinary it and Merge it with others: how statistics of a
// dataset split across machines are combined. The encoding is versioned
// and documented above; it is deterministic for a given state.
func (a *Accumulator) MarshalBinary() ([]byte, error) {
	e := &encoder{buf: append([]byte(encodingMagic), encodingVersion)}
	o := a.opts
	e.uint(uint64(o.TopValues))
	e.uint(uint64(o.RankHistogramBuckets))
	e.uint(uint64(o.UniqueCap))
	e.float(o.RelativeAccuracy)
	e.uint(uint64(o.HistogramBuckets))
	e.int(a.rows)
	e.uint(uint64(len(a.columns)))
	for _, c := range a.columns {
		e.bytes([]byte(c.name))
		e.uint(uint64(c.kind))
		if c.num != nil {
			s := c.num
			e.int(s.count)
			e.int(s.zeros)
			e.float(s.min)
			e.float(s.max)
			e.uint(uint64(len(s.groups)))
			for _, g := range s.groups {
				e.int(g.n)
				e.float(g.mean)
				e.float(g.m2)
			}
			var sk []byte
			s.sketch.Encode(&sk, true)
			e.bytes(sk)
			continue
		}
		s := c.str
		e.int(s.count)
		e.int(s.totalLen)
		e.uint(uint64(s.table.Len()))
		for id := range s.table.Len() {
			e.bytes(s.table.key(id))
			e.int(s.counts[id])
		}
		var sk []byte
		if s.sketch != nil {
			var err error
			if sk, err = s.sketch.ToCompactSlice(); err != nil {
				return nil, fmt.Errorf("column %q: distinct-count sketch: %w", c.name, err)
			}
		}
		e.bytes(sk)
	}
	return e.buf, nil
}

// UnmarshalBinary replaces the Accumulator's state with one encoded by
// MarshalBinary, options included. A damaged or foreign encoding is an
// error, never a panic.
func (a *Accumulator) UnmarshalBinary(data []byte) (err error) {
	defer func() {
		// The sketch decoders trust their input; a damaged image is
		// reported, not allowed to bring the process down.
		if p := recover(); p != nil {
			err = fmt.Errorf("statistics state: damaged encoding (%v)", p)
		}
	}()
	if len(data) < len(encodingMagic)+1 || string(data[:len(encodingMagic)]) != encodingMagic {
		return errors.New("statistics state: not an encoded Accumulator")
	}
	if v := data[len(encodingMagic)]; v != encodingVersion {
		return fmt.Errorf("statistics state: encoding version %d, this build reads version %d", v, encodingVersion)
	}
	d := &decoder{buf: data[len(encodingMagic)+1:]}
	var o Options
	o.TopValues = d.option()
	o.RankHistogramBuckets = d.option()
	o.UniqueCap = d.option()
	o.RelativeAccuracy = d.float()
	o.HistogramBuckets = d.option()
	if d.err == nil && (o.TopValues <= 0 || o.RankHistogramBuckets <= 0 || o.UniqueCap <= 0 || o.HistogramBuckets <= 0 ||
		!(o.RelativeAccuracy > 0 && o.RelativeAccuracy < 1)) {
		return fmt.Errorf("statistics state: bad options %+v", o)
	}
	b := New(o)
	b.rows = d.int()
	ncols := d.size()
	for i := 0; i < ncols && d.err == nil; i++ {
		name := string(d.bytes())
		k := kind(d.size())
		if d.err != nil {
			break
		}
		if k > kindString {
			return fmt.Errorf("statistics state: column %q has kind %d", name, k)
		}
		if _, dup := b.byName[name]; dup {
			return fmt.Errorf("statistics state: column %q twice", name)
		}
		c, _ := b.column(name, k)
		if c.num != nil {
			if err := d.num(c.num); err != nil {
				return fmt.Errorf("statistics state: column %q: %w", name, err)
			}
			continue
		}
		if err := d.str(c.str); err != nil {
			return fmt.Errorf("statistics state: column %q: %w", name, err)
		}
	}
	if d.err != nil {
		return fmt.Errorf("statistics state: %w", d.err)
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("statistics state: %d bytes after the last column", len(d.buf))
	}
	*a = *b
	return nil
}

// num reads a numeric column's state into a fresh s.
func (d *decoder) num(s *numState) error {
	s.count = d.int()
	s.zeros = d.int()
	s.min = d.float()
	s.max = d.float()
	n := d.size()
	var total int64
	for i := 0; i < n && d.err == nil; i++ {
		g := moments{n: d.int(), mean: d.float(), m2: d.float()}
		total += g.n
		s.groups = append(s.groups, g)
	}
	sk := d.bytes()
	if d.err != nil {
		return d.err
	}
	if total != s.count || s.count < 0 || s.zeros < 0 || s.zeros > s.count {
		return fmt.Errorf("%d values, %d zeros, but batches of %d values", s.count, s.zeros, total)
	}
	if err := s.sketch.DecodeAndMergeWith(sk); err != nil {
		return fmt.Errorf("quantile sketch: %w", err)
	}
	if got := s.sketch.GetCount(); got != float64(s.count) {
		return fmt.Errorf("quantile sketch holds %v values, the column %d", got, s.count)
	}
	return nil
}

// str reads a string column's state into a fresh s.
func (d *decoder) str(s *strState) error {
	s.count = d.int()
	s.totalLen = d.int()
	n := d.size()
	var sum int64
	for i := 0; i < n && d.err == nil; i++ {
		v := d.bytes()
		c := d.int()
		if d.err != nil {
			break
		}
		if c <= 0 {
			return fmt.Errorf("value %q counted %d times", v, c)
		}
		h := s.table.hashBytes(v)
		if s.table.findBytes(v, h) >= 0 {
			return fmt.Errorf("value %q twice", v)
		}
		if _, ok := s.table.insert(v, h); !ok {
			return errors.New("distinct values too long for one table")
		}
		s.counts = append(s.counts, c)
		sum += c
	}
	sk := d.bytes()
	if d.err != nil {
		return d.err
	}
	if len(sk) > 0 {
		h, err := hll.NewHllSketchFromSlice(sk, true)
		if err != nil {
			return fmt.Errorf("distinct-count sketch: %w", err)
		}
		s.sketch = h
	}
	if sum > s.count || (s.sketch == nil && sum != s.count) || s.totalLen < 0 {
		return fmt.Errorf("%d values, but %d counted one by one", s.count, sum)
	}
	return nil
}

// encoder appends the encoding's primitives.
type encoder struct{ buf []byte }

func (e *encoder) uint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) int(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) float(v float64) {
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(v))
}
func (e *encoder) bytes(b []byte) { e.uint(uint64(len(b))); e.buf = append(e.buf, b...) }

// decoder reads them back; the first error sticks and later reads return
// zero values.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or damaged %s", what)
	}
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// option reads an option's value.
func (d *decoder) option() int {
	v := d.uint()
	if v > math.MaxInt32 {
		d.fail("option")
		return 0
	}
	return int(v)
}

// size reads a count or length: each item takes at least a byte, so it
// cannot exceed what is left.
func (d *decoder) size() int {
	v := d.uint()
	if v > uint64(len(d.buf)) {
		d.fail("length")
		return 0
	}
	return int(v)
}

func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) float() float64 {
	if d.err != nil {
		return 0
	}
	if len(d.buf) < 8 {
		d.fail("float")
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.buf))
	d.buf = d.buf[8:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.size()
	if d.err != nil {
		return nil
	}
	if n > len(d.buf) {
		d.fail("bytes")
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}
