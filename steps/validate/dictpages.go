package validate

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// A dictionary-encoded string column chunk (how Parquet writers store
// repeated strings: categories, cities, ZIP codes) is read here straight
// from its pages, into an Arrow dictionary array of the chunk's own
// dictionary and one int32 index per row. The statistics then count
// indices and look each distinct value up once per row group.
//
// pqarrow's dictionary reading does the same work with much more
// overhead: it re-inserts every dictionary entry of every row group into a
// hash memo table that starts small and rehashes as it grows, and its plain
// reading materialises and copies every value. Both dominated validate's
// profile on ZIP codes; this path decodes indices at a few ns a row.
//
// Only the common layouts are handled: a flat (non-repeated, definition
// level at most 1) BYTE_ARRAY column whose data pages are RLE_DICTIONARY
// (or PLAIN_DICTIONARY) or PLAIN encoded, with RLE definition levels.
// Anything else (DELTA encodings, nested columns) reports errFallback and
// the caller reads that chunk with pqarrow instead.

// errFallback says a chunk uses a layout dictChunk does not decode.
var errFallback = errors.New("column chunk layout not handled by the dictionary fast path")

// dictColumn reports whether a Parquet leaf column can take the fast path
// at all (its pages still decide, chunk by chunk).
func dictColumn(c *schema.Column) bool {
	lt := c.LogicalType()
	return c.PhysicalType() == parquet.Types.ByteArray && lt != nil && lt.String() == "String" &&
		c.MaxRepetitionLevel() == 0 && c.MaxDefinitionLevel() <= 1
}

// chunk is what every fast-path chunk keeps: rows, nulls and the validity
// bitmap, built page by page from definition levels.
type chunk struct {
	rows   int
	nulls  int
	valid  []byte  // validity bitmap, per row; only kept once a null is seen
	levels []int32 // one page's definition levels, scratch
}

func (c *chunk) reset() { c.rows, c.nulls, c.valid = 0, 0, c.valid[:0] }

// pageLevels decodes a page's definition levels (RLE hybrid, bit width 1;
// none for a required column), extends the validity bitmap by n rows and
// returns how many of them hold a value.
func (c *chunk) pageLevels(levels []byte, n, maxDef int) (int, error) {
	if n < 0 {
		return 0, errors.New("data page: negative row count")
	}
	start := c.rows
	c.rows += n
	if maxDef == 0 {
		c.levels = c.levels[:0]
		c.markValid(start)
		return n, nil
	}
	c.levels = grow(c.levels, n)
	if err := hybrid(levels, 1, c.levels); err != nil {
		return 0, fmt.Errorf("definition levels: %w", err)
	}
	present := 0
	for _, l := range c.levels {
		present += int(l)
	}
	if present == n {
		c.levels = c.levels[:0]
		c.markValid(start)
		return n, nil
	}
	if c.nulls == 0 {
		// The chunk's first null: the rows before were all present.
		c.valid = grow(c.valid, int(bitutil.BytesForBits(int64(c.rows))))
		clear(c.valid)
		for i := range start {
			bitutil.SetBit(c.valid, i)
		}
	} else {
		c.valid = grow(c.valid, int(bitutil.BytesForBits(int64(c.rows))))
	}
	for i, l := range c.levels {
		if l == 1 {
			bitutil.SetBit(c.valid, start+i)
		} else {
			bitutil.ClearBit(c.valid, start+i)
		}
	}
	c.nulls += n - present
	return present, nil
}

// markValid marks rows from start on present, if a bitmap is kept.
func (c *chunk) markValid(start int) {
	if c.nulls == 0 {
		return
	}
	c.valid = grow(c.valid, int(bitutil.BytesForBits(int64(c.rows))))
	for i := start; i < c.rows; i++ {
		bitutil.SetBit(c.valid, i)
	}
}

// place puts a page's packed values (present rows only) at their rows,
// from row start on, with zeros at null rows.
func place[T any](dst []T, start int, packed []T, levels []int32) {
	if len(levels) == 0 {
		copy(dst[start:], packed)
		return
	}
	var zero T
	v := 0
	for i, l := range levels {
		if l == 1 {
			dst[start+i] = packed[v]
			v++
		} else {
			dst[start+i] = zero
		}
	}
}

// validity returns the bitmap buffer, nil when no row is null.
func (c *chunk) validity() *memory.Buffer {
	if c.nulls == 0 {
		return nil
	}
	return memory.NewBufferBytes(c.valid)
}

// walkPages calls dict for the chunk's dictionary page and data for each
// data page, with its definition levels and values split apart.
func walkPages(rg *file.RowGroupReader, col int, maxDef int,
	dict func(b []byte, n int, enc parquet.Encoding) error,
	data func(levels, values []byte, n int, enc parquet.Encoding) error) error {
	pr, err := rg.GetColumnPageReader(col)
	if err != nil {
		return err
	}
	defer pr.Close()
	for pr.Next() {
		pg := pr.Page()
		switch pg.Type() {
		case file.PageTypeDictionaryPage:
			if err := dict(pg.Data(), int(pg.NumValues()), parquet.Encoding(pg.Encoding())); err != nil {
				return err
			}
		case file.PageTypeDataPage:
			p := pg.(*file.DataPageV1)
			b := p.Data()
			var levels []byte
			if maxDef > 0 {
				if p.DefinitionLevelEncoding() != parquet.Encodings.RLE {
					return errFallback
				}
				if len(b) < 4 {
					return errors.New("data page: truncated definition levels")
				}
				n := binary.LittleEndian.Uint32(b)
				if uint64(n) > uint64(len(b)-4) {
					return errors.New("data page: definition levels overrun the page")
				}
				levels, b = b[4:4+n], b[4+n:]
			}
			if err := data(levels, b, int(p.NumValues()), parquet.Encoding(p.Encoding())); err != nil {
				return err
			}
		case file.PageTypeDataPageV2:
			p := pg.(*file.DataPageV2)
			if p.RepetitionLevelByteLen() != 0 {
				return errFallback
			}
			b := p.Data()
			n := int(p.DefinitionLevelByteLen())
			if n < 0 || n > len(b) || (maxDef == 0 && n != 0) {
				return errors.New("data page: bad definition levels length")
			}
			if err := data(b[:n], b[n:], int(p.NumValues()), parquet.Encoding(p.Encoding())); err != nil {
				return err
			}
		default: // index pages carry no values
		}
	}
	return pr.Err()
}

// dictChunk holds one decoded string chunk; its buffers are reused chunk
// after chunk, which is safe because the statistics copy what they keep.
type dictChunk struct {
	chunk
	offsets []int32 // dictionary entry i is data[offsets[i]:offsets[i+1]]
	data    []byte
	idx     []int32 // per row; 0 for a null row
	vals    []int32 // one page's indices of present values, scratch
}

// maxPlainBytes bounds the string bytes one chunk may hold; a chunk of
// huge PLAIN values goes to pqarrow, which streams it in batches.
const maxPlainBytes = 64 << 20

// read decodes column col of row group rg. Dictionary-encoded pages give
// indices into the chunk's dictionary; PLAIN pages (a writer's fallback
// when the dictionary grew too large, or no dictionary at all) append
// their values to it, each with an index of its own, so one dictionary
// array covers the chunk whatever mix it has (an entry may then repeat,
// which counting by value handles). It returns errFallback, having
// consumed nothing the caller needs, when the chunk's layout is not
// handled.
func (d *dictChunk) read(rg *file.RowGroupReader, col int, descr *schema.Column) error {
	maxDef := int(descr.MaxDefinitionLevel())
	d.reset()
	d.offsets, d.data, d.idx = append(d.offsets[:0], 0), d.data[:0], d.idx[:0]
	haveDict := false
	return walkPages(rg, col, maxDef, func(b []byte, n int, enc parquet.Encoding) error {
		if haveDict || len(d.offsets) > 1 || (enc != parquet.Encodings.Plain && enc != parquet.Encodings.PlainDict) {
			return errFallback
		}
		haveDict = true
		return d.appendPlain(b, n)
	}, func(levels, values []byte, n int, enc parquet.Encoding) error {
		dictEncoded := enc == parquet.Encodings.RLEDict || enc == parquet.Encodings.PlainDict
		if (dictEncoded && !haveDict) || (!dictEncoded && enc != parquet.Encodings.Plain) {
			return errFallback
		}
		start := d.rows
		present, err := d.pageLevels(levels, n, maxDef)
		if err != nil {
			return err
		}
		d.vals = grow(d.vals, present)
		switch {
		case present == 0:
		case dictEncoded:
			if len(values) < 1 {
				return errors.New("data page: no index bit width")
			}
			if err := hybrid(values[1:], int(values[0]), d.vals); err != nil {
				return fmt.Errorf("dictionary indices: %w", err)
			}
		default:
			first := len(d.offsets) - 1
			if err := d.appendPlain(values, present); err != nil {
				return err
			}
			for i := range d.vals {
				d.vals[i] = int32(first + i)
			}
		}
		d.idx = grow(d.idx, d.rows)
		place(d.idx, start, d.vals, d.levels)
		return nil
	})
}

// appendPlain appends n PLAIN-encoded byte arrays (each a 4-byte
// little-endian length and the bytes) to the chunk's values.
func (d *dictChunk) appendPlain(b []byte, n int) error {
	if n < 0 || n > len(b)/4 {
		return fmt.Errorf("%d values in %d bytes", n, len(b))
	}
	at := len(d.data)
	if at+len(b)-4*n > maxPlainBytes {
		return errFallback
	}
	first := len(d.offsets)
	d.offsets = grow(d.offsets, first+n)
	d.data = grow(d.data, at+len(b)-4*n)
	for i := range n {
		if len(b) < 4 {
			return errors.New("PLAIN values: truncated")
		}
		l := int(binary.LittleEndian.Uint32(b))
		if l > len(b)-4 {
			return errors.New("PLAIN values: a value overruns the page")
		}
		at += copy(d.data[at:], b[4:4+l])
		d.offsets[first+i] = int32(at)
		b = b[4+l:]
	}
	d.data = d.data[:at]
	return nil
}

// array wraps the chunk as an Arrow dictionary array over its buffers (no
// copies; valid until the next read).
func (d *dictChunk) array() arrow.Array {
	dict := array.NewData(arrow.BinaryTypes.String, len(d.offsets)-1, []*memory.Buffer{
		nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(d.offsets)), memory.NewBufferBytes(d.data)}, nil, 0, 0)
	defer dict.Release()
	data := array.NewData(dictType, d.rows, []*memory.Buffer{d.validity(), memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(d.idx))}, nil, d.nulls, 0)
	defer data.Release()
	data.SetDictionary(dict)
	return array.MakeFromData(data)
}

var dictType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}

// grow returns s resized to n, reusing its storage when it is big enough.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		s = append(s[:cap(s)], make([]T, n-cap(s))...)
	}
	return s[:n]
}

// hybrid decodes len(out) values of the given bit width from Parquet's
// RLE / bit-packed hybrid encoding.
func hybrid(b []byte, width int, out []int32) error {
	if width < 0 || width > 32 {
		return fmt.Errorf("bit width %d", width)
	}
	mask := uint64(1)<<width - 1
	bytesPerRun := (width + 7) / 8
	for i := 0; i < len(out); {
		h, k := binary.Uvarint(b)
		if k <= 0 {
			return errors.New("truncated run header")
		}
		b = b[k:]
		if h&1 == 0 { // a run of one repeated value
			count := h >> 1
			if len(b) < bytesPerRun {
				return errors.New("truncated run value")
			}
			var v uint64
			for j := range bytesPerRun {
				v |= uint64(b[j]) << (8 * j)
			}
			b = b[bytesPerRun:]
			if v > mask {
				return errors.New("run value wider than the bit width")
			}
			n := int(min(count, uint64(len(out)-i)))
			for j := range n {
				out[i+j] = int32(v)
			}
			i += n
			if count == 0 {
				return errors.New("empty run")
			}
			continue
		}
		groups := h >> 1 // groups of 8 bit-packed values
		if groups == 0 || groups > 1<<28 {
			return errors.New("bad bit-packed run")
		}
		nbytes := int(groups) * width
		if nbytes > len(b) {
			return errors.New("truncated bit-packed run")
		}
		n := min(int(groups)*8, len(out)-i)
		unpack(b[:nbytes], width, mask, out[i:i+n])
		i += n
		b = b[nbytes:]
	}
	return nil
}

// numColumn reports whether a leaf column whose Arrow type is t can take
// the plain numeric fast path: DOUBLE as float64, INT64 as int64, flat.
func numColumn(c *schema.Column, t arrow.DataType) bool {
	if c.MaxRepetitionLevel() != 0 || c.MaxDefinitionLevel() > 1 {
		return false
	}
	switch t.ID() {
	case arrow.FLOAT64:
		return c.PhysicalType() == parquet.Types.Double
	case arrow.INT64:
		return c.PhysicalType() == parquet.Types.Int64
	}
	return false
}

// numChunk holds one decoded PLAIN float64 or int64 chunk (how
// mlsteps writes numbers: dictionaries are off for them), as 8-byte words
// per row; reused chunk after chunk.
type numChunk struct {
	chunk
	words  []uint64 // per row; 0 for a null row
	packed []uint64 // one page's present values, scratch
}

// read decodes column col of row group rg, or returns errFallback for
// any page that is not PLAIN (a dictionary-encoded number column, say).
func (c *numChunk) read(rg *file.RowGroupReader, col int, descr *schema.Column) error {
	maxDef := int(descr.MaxDefinitionLevel())
	c.reset()
	c.words = c.words[:0]
	return walkPages(rg, col, maxDef, func([]byte, int, parquet.Encoding) error {
		return errFallback
	}, func(levels, values []byte, n int, enc parquet.Encoding) error {
		if enc != parquet.Encodings.Plain {
			return errFallback
		}
		start := c.rows
		present, err := c.pageLevels(levels, n, maxDef)
		if err != nil {
			return err
		}
		if len(values) < 8*present {
			return fmt.Errorf("data page: %d values in %d bytes", present, len(values))
		}
		c.words = grow(c.words, c.rows)
		if present == n { // no nulls: straight into place
			for i := range n {
				c.words[start+i] = binary.LittleEndian.Uint64(values[8*i:])
			}
			return nil
		}
		c.packed = grow(c.packed, present)
		for i := range c.packed {
			c.packed[i] = binary.LittleEndian.Uint64(values[8*i:])
		}
		place(c.words, start, c.packed, c.levels)
		return nil
	})
}

// array wraps the chunk as an Arrow array of type t (float64 or int64)
// over its buffers (no copies; valid until the next read).
func (c *numChunk) array(t arrow.DataType) arrow.Array {
	data := array.NewData(t, c.rows, []*memory.Buffer{c.validity(), memory.NewBufferBytes(arrow.Uint64Traits.CastToBytes(c.words))}, nil, c.nulls, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// unpack reads len(out) values of the given width (at most 32), packed
// LSB first, from b (which holds at least len(out)*width bits). A value
// spans at most 5 bytes from its first (7 bits of shift plus 32); where 8
// can be read, one unaligned 64-bit load yields it, and the last few are
// gathered byte by byte.
func unpack(b []byte, width int, mask uint64, out []int32) {
	j, o := 0, 0
	for ; j < len(out) && o>>3+8 <= len(b); j, o = j+1, o+width {
		out[j] = int32(binary.LittleEndian.Uint64(b[o>>3:]) >> (o & 7) & mask)
	}
	for ; j < len(out); j, o = j+1, o+width {
		var v uint64
		for k := 0; k < 5 && o>>3+k < len(b); k++ {
			v |= uint64(b[o>>3+k]) << (8 * k)
		}
		out[j] = int32(v >> (o & 7) & mask)
	}
}
