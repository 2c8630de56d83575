package inference

import (
	"context"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// float32Array wraps vals (not copied) as an Arrow array without nulls.
func float32Array(vals []float32) arrow.Array {
	buf := memory.NewBufferBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(vals))), len(vals)*4))
	data := array.NewData(arrow.PrimitiveTypes.Float32, len(vals), []*memory.Buffer{nil, buf}, nil, 0, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// int64Array wraps vals (not copied) as an Arrow array without nulls.
func int64Array(vals []int64) arrow.Array {
	buf := memory.NewBufferBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(vals))), len(vals)*8))
	data := array.NewData(arrow.PrimitiveTypes.Int64, len(vals), []*memory.Buffer{nil, buf}, nil, 0, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// labelArray builds a string array of classes[idx[i]] straight from
// offsets and bytes, cheaper than a builder for a column per batch.
func labelArray(idx []int32, classes []string) arrow.Array {
	offsets := make([]int32, len(idx)+1)
	size := 0
	for i, c := range idx {
		size += len(classes[c])
		offsets[i+1] = int32(size)
	}
	data := make([]byte, 0, size)
	for _, c := range idx {
		data = append(data, classes[c]...)
	}
	ob := memory.NewBufferBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(offsets))), len(offsets)*4))
	d := array.NewData(arrow.BinaryTypes.String, len(idx), []*memory.Buffer{nil, ob, memory.NewBufferBytes(data)}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// columns collects the arrays of one record, wrapping Go slices without
// copying them; its columns share one slice of buffer pointers, so a
// column costs its array and data objects and little else.
type columns struct {
	bufs []*memory.Buffer
	arrs []arrow.Array
}

func newColumns(n int) *columns {
	return &columns{bufs: make([]*memory.Buffer, 0, 3*n), arrs: make([]arrow.Array, 0, n)}
}

// add appends a column of n values of typ without nulls, from its
// buffers after the validity bitmap.
func (c *columns) add(typ arrow.DataType, n int, bufs ...[]byte) {
	at := len(c.bufs)
	c.bufs = append(c.bufs, nil)
	for _, b := range bufs {
		c.bufs = append(c.bufs, memory.NewBufferBytes(b))
	}
	d := array.NewData(typ, n, c.bufs[at:len(c.bufs):len(c.bufs)], nil, 0, 0)
	c.arrs = append(c.arrs, array.MakeFromData(d))
	d.Release()
}

func (c *columns) addFloat32(v []float32) { c.add(arrow.PrimitiveTypes.Float32, len(v), bytesOf(v)) }
func (c *columns) addInt64(v []int64)     { c.add(arrow.PrimitiveTypes.Int64, len(v), bytesOf(v)) }

func (c *columns) addStrings(l *labels) {
	c.add(arrow.BinaryTypes.String, len(l.offsets)-1, bytesOf(l.offsets), l.data)
}

// record returns the columns as a record of schema; the caller releases
// both.
func (c *columns) record(schema *arrow.Schema, n int) arrow.RecordBatch {
	return array.NewRecordBatch(schema, c.arrs, int64(n))
}

func (c *columns) release() {
	for _, a := range c.arrs {
		a.Release()
	}
}

// labels builds a string column's offsets and bytes in one allocation,
// sized for n strings of at most longest bytes.
type labels struct {
	offsets []int32
	data    []byte
}

func newLabels(n, longest int) *labels {
	mem := make([]int32, n+1+(n*longest+3)/4)
	return &labels{offsets: mem[: 1 : n+1], data: bytesOf(mem[n+1:])[:0]}
}

func (l *labels) append(s string) {
	l.data = append(l.data, s...)
	l.offsets = append(l.offsets, int32(len(l.data)))
}

// bytesOf views v's memory as bytes.
func bytesOf[T int32 | int64 | float32](v []T) []byte {
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*int(unsafe.Sizeof(zero)))
}

// stringArray builds a string array from vals.
func stringArray(vals []string) arrow.Array {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(vals, nil)
	return b.NewArray()
}

// stringAt reads row i of a string-like or integer column as a key.
func stringAt(col arrow.Array, i int) (string, bool) {
	if col.IsNull(i) {
		return "", false
	}
	switch c := col.(type) {
	case *array.String:
		return c.Value(i), true
	case *array.LargeString:
		return c.Value(i), true
	default:
		return col.ValueStr(i), true
	}
}

// take returns the rows idx of rec, in that order.
func take(ctx context.Context, rec arrow.RecordBatch, idx []int) (arrow.RecordBatch, error) {
	if contiguous(idx) {
		return rec.NewSlice(int64(idx[0]), int64(idx[0]+len(idx))), nil
	}
	ix := make([]int64, len(idx))
	for i, v := range idx {
		ix[i] = int64(v)
	}
	ia := int64Array(ix)
	defer ia.Release()
	cols := make([]arrow.Array, rec.NumCols())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, c := range rec.Columns() {
		out, err := compute.TakeArray(ctx, c, ia)
		if err != nil {
			return nil, fmt.Errorf("select rows of column %q: %w", rec.ColumnName(i), err)
		}
		cols[i] = out
	}
	return array.NewRecordBatch(rec.Schema(), cols, int64(len(idx))), nil
}

func contiguous(idx []int) bool {
	if len(idx) == 0 {
		return false
	}
	for i := 1; i < len(idx); i++ {
		if idx[i] != idx[i-1]+1 {
			return false
		}
	}
	return true
}

// concat appends records of one schema into one.
func concat(recs []arrow.RecordBatch) (arrow.RecordBatch, error) {
	if len(recs) == 1 {
		recs[0].Retain()
		return recs[0], nil
	}
	schema := recs[0].Schema()
	cols := make([]arrow.Array, schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	var rows int64
	for _, r := range recs {
		if !r.Schema().Equal(schema) {
			return nil, fmt.Errorf("records with different schemas: %s and %s", schema, r.Schema())
		}
		rows += r.NumRows()
	}
	for i := range cols {
		parts := make([]arrow.Array, len(recs))
		for j, r := range recs {
			parts[j] = r.Column(i)
		}
		c, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			return nil, fmt.Errorf("concatenate column %q: %w", schema.Field(i).Name, err)
		}
		cols[i] = c
	}
	return array.NewRecordBatch(schema, cols, rows), nil
}

// lookup finds named columns in records, remembering the answer for the
// last schema seen: batch after batch share their schema, and arrow's
// FieldIndices copies its answer on every call. It is safe for
// concurrent use.
type lookup struct {
	names []string
	last  atomic.Pointer[found]
}

// found is where a lookup's names are in one schema.
type found struct {
	schema *arrow.Schema
	idx    []int         // per name, -1 when missing
	sub    *arrow.Schema // the names' fields, when none is missing
}

func newLookup(names []string) *lookup { return &lookup{names: names} }

func (l *lookup) in(s *arrow.Schema) *found {
	if f := l.last.Load(); f != nil && (f.schema == s || f.schema.Equal(s)) {
		return f
	}
	f := &found{schema: s, idx: make([]int, len(l.names))}
	fields := make([]arrow.Field, 0, len(l.names))
	for i, n := range l.names {
		f.idx[i] = -1
		if idx := s.FieldIndices(n); len(idx) > 0 {
			f.idx[i] = idx[0]
			fields = append(fields, s.Field(idx[0]))
		}
	}
	if len(fields) == len(l.names) {
		f.sub = arrow.NewSchema(fields, nil)
	}
	l.last.Store(f)
	return f
}

// project keeps the lookup's columns of rec.
func (l *lookup) project(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	f := l.in(rec.Schema())
	if f.sub == nil {
		for i, idx := range f.idx {
			if idx < 0 {
				return nil, fmt.Errorf("passthrough column %q not in the examples", l.names[i])
			}
		}
	}
	cols := make([]arrow.Array, len(f.idx))
	for i, idx := range f.idx {
		cols[i] = rec.Column(idx)
	}
	return array.NewRecordBatch(f.sub, cols, rec.NumRows()), nil
}

// withStrings returns rec with a string column added.
func withStrings(rec arrow.RecordBatch, name string, vals []string) arrow.RecordBatch {
	col := stringArray(vals)
	defer col.Release()
	fields := append(append([]arrow.Field(nil), rec.Schema().Fields()...), arrow.Field{Name: name, Type: arrow.BinaryTypes.String})
	cols := append(append([]arrow.Array(nil), rec.Columns()...), col)
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
}
