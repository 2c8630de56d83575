package inference

import (
	"context"
	"fmt"
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

// project keeps the named columns of rec (nil: none).
func project(rec arrow.RecordBatch, names []string) (arrow.RecordBatch, error) {
	fields := make([]arrow.Field, 0, len(names))
	cols := make([]arrow.Array, 0, len(names))
	for _, n := range names {
		idx := rec.Schema().FieldIndices(n)
		if len(idx) == 0 {
			return nil, fmt.Errorf("passthrough column %q not in the examples", n)
		}
		fields = append(fields, rec.Schema().Field(idx[0]))
		cols = append(cols, rec.Column(idx[0]))
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows()), nil
}
