package oip

import (
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// InputSpec says how FromRecord builds a tensor from a record's columns.
type InputSpec struct {
	// Name is the tensor's name.
	Name string
	// Columns feed the tensor, in order; empty means the column named Name.
	Columns []string
	// Datatype is the tensor's; empty takes it from the first column's
	// Arrow type (DatatypeOf).
	Datatype Datatype
	// Rank is 1 for an [N] tensor (one column only) or 2 for [N,F]; 0
	// means 1 for one column and 2 for several.
	Rank int
}

// DatatypeOf is the datatype an Arrow type maps to: floats to FP16, FP32
// and FP64, integers to the INT and UINT of their width, booleans to
// BOOL, strings and binaries to BYTES.
func DatatypeOf(t arrow.DataType) (Datatype, error) {
	switch t.ID() {
	case arrow.BOOL:
		return Bool, nil
	case arrow.INT8:
		return Int8, nil
	case arrow.INT16:
		return Int16, nil
	case arrow.INT32:
		return Int32, nil
	case arrow.INT64:
		return Int64, nil
	case arrow.UINT8:
		return Uint8, nil
	case arrow.UINT16:
		return Uint16, nil
	case arrow.UINT32:
		return Uint32, nil
	case arrow.UINT64:
		return Uint64, nil
	case arrow.FLOAT16:
		return FP16, nil
	case arrow.FLOAT32:
		return FP32, nil
	case arrow.FLOAT64:
		return FP64, nil
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
		return Bytes, nil
	}
	return "", fmt.Errorf("arrow type %s has no tensor datatype", t)
}

// FromRecord builds the tensor spec describes from rec's columns: one
// column gives [N] (or [N,1] with Rank 2), F columns an [N,F] tensor in
// row-major order. Numbers convert between types when no value changes
// (a fraction into an integer, or a value out of the datatype's range,
// is an error); strings feed only BYTES and booleans only numbers and
// BOOL. A null is an error: callers that want to skip such rows find
// them first.
func FromRecord(rec arrow.RecordBatch, spec InputSpec) (Tensor, error) {
	cols := spec.Columns
	if len(cols) == 0 {
		cols = []string{spec.Name}
	}
	rank := spec.Rank
	if rank == 0 {
		rank = min(len(cols), 2)
	}
	if rank < 1 || rank > 2 || (rank == 1 && len(cols) > 1) {
		return Tensor{}, fmt.Errorf("tensor %q: rank %d cannot hold %d columns", spec.Name, spec.Rank, len(cols))
	}
	n := int(rec.NumRows())
	arrs := make([]arrow.Array, len(cols))
	for j, c := range cols {
		idx := rec.Schema().FieldIndices(c)
		if len(idx) == 0 {
			return Tensor{}, fmt.Errorf("tensor %q: column %q not in the record", spec.Name, c)
		}
		arrs[j] = rec.Column(idx[0])
		if arrs[j].NullN() > 0 {
			for r := range n {
				if arrs[j].IsNull(r) {
					return Tensor{}, fmt.Errorf("tensor %q: column %q row %d is null", spec.Name, c, r)
				}
			}
		}
	}
	dt := spec.Datatype
	if dt == "" {
		var err error
		if dt, err = DatatypeOf(arrs[0].DataType()); err != nil {
			return Tensor{}, fmt.Errorf("tensor %q column %q: %w", spec.Name, cols[0], err)
		}
	}
	if !dt.Valid() {
		return Tensor{}, fmt.Errorf("tensor %q: unknown datatype %q", spec.Name, dt)
	}
	w := len(cols)
	t := Tensor{Name: spec.Name, Datatype: dt, Shape: []int64{int64(n)}}
	if rank == 2 {
		t.Shape = append(t.Shape, int64(w))
	}
	size := n * w
	switch dt.kind() {
	case kindBool:
		t.Bools = make([]bool, size)
	case kindInt:
		t.Ints = make([]int64, size)
	case kindUint:
		t.Uints = make([]uint64, size)
	case kindF32:
		t.Float32s = make([]float32, size)
	case kindF64:
		t.Float64s = make([]float64, size)
	case kindString:
		t.Strings = make([]string, size)
	}
	for j, col := range arrs {
		var err error
		switch dt.kind() {
		case kindBool:
			err = fillBools(t.Bools, col, w, j)
		case kindInt:
			lo, hi := dt.intRange()
			err = fillInts(t.Ints, col, w, j, lo, hi)
		case kindUint:
			err = fillUints(t.Uints, col, w, j)
		case kindF32:
			err = fillFloats(t.Float32s, col, w, j)
		case kindF64:
			err = fillFloats(t.Float64s, col, w, j)
		case kindString:
			err = fillStrings(t.Strings, col, w, j)
		}
		if err != nil {
			return Tensor{}, fmt.Errorf("tensor %q (%s) column %q: %w", spec.Name, dt, cols[j], err)
		}
	}
	return t, nil
}

type number interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~float32 | ~float64
}

// scatterBools writes booleans as 1 and 0 into column j of the row-major
// [a.Len(),w] dst.
func scatterBools[D number](dst []D, a *array.Boolean, w, j int) {
	for r := range a.Len() {
		var v D
		if a.Value(r) {
			v = 1
		}
		dst[r*w+j] = v
	}
}

// scatter writes src into column j of the row-major [len(src),w] dst.
func scatter[S, D number](dst []D, src []S, w, j int) {
	if w == 1 {
		for r, v := range src {
			dst[r] = D(v)
		}
		return
	}
	for r, v := range src {
		dst[r*w+j] = D(v)
	}
}

func notConvertible(col arrow.Array) error {
	return fmt.Errorf("arrow type %s cannot be converted", col.DataType())
}

func fillFloats[D float32 | float64](dst []D, col arrow.Array, w, j int) error {
	switch a := col.(type) {
	case *array.Float32:
		scatter(dst, a.Float32Values(), w, j)
	case *array.Float64:
		scatter(dst, a.Float64Values(), w, j)
	case *array.Float16:
		for r, v := range a.Values() {
			dst[r*w+j] = D(v.Float32())
		}
	case *array.Int8:
		scatter(dst, a.Int8Values(), w, j)
	case *array.Int16:
		scatter(dst, a.Int16Values(), w, j)
	case *array.Int32:
		scatter(dst, a.Int32Values(), w, j)
	case *array.Int64:
		scatter(dst, a.Int64Values(), w, j)
	case *array.Uint8:
		scatter(dst, a.Uint8Values(), w, j)
	case *array.Uint16:
		scatter(dst, a.Uint16Values(), w, j)
	case *array.Uint32:
		scatter(dst, a.Uint32Values(), w, j)
	case *array.Uint64:
		scatter(dst, a.Uint64Values(), w, j)
	case *array.Boolean:
		scatterBools(dst, a, w, j)
	default:
		return notConvertible(col)
	}
	return nil
}

// intsFrom copies signed integers, failing on the first out of [lo,hi].
func intsFrom[S ~int8 | ~int16 | ~int32 | ~int64](dst []int64, src []S, w, j int, lo, hi int64) error {
	for r, v := range src {
		x := int64(v)
		if x < lo || x > hi {
			return fmt.Errorf("row %d: %d is out of range", r, x)
		}
		dst[r*w+j] = x
	}
	return nil
}

func intsFromUnsigned[S ~uint8 | ~uint16 | ~uint32 | ~uint64](dst []int64, src []S, w, j int, hi int64) error {
	for r, v := range src {
		if uint64(v) > uint64(hi) {
			return fmt.Errorf("row %d: %d is out of range", r, uint64(v))
		}
		dst[r*w+j] = int64(v)
	}
	return nil
}

func intsFromFloats[S ~float32 | ~float64](dst []int64, src []S, w, j int, lo, hi int64) error {
	for r, v := range src {
		x := float64(v)
		if x != math.Trunc(x) {
			return fmt.Errorf("row %d: %v is not an integer", r, x)
		}
		// float64(hi)+1 is exact for every hi below 2^53 and rounds to
		// 2^63 for INT64, so the upper bound is right for both.
		if x < float64(lo) || x >= float64(hi)+1 {
			return fmt.Errorf("row %d: %v is out of range", r, x)
		}
		dst[r*w+j] = int64(x)
	}
	return nil
}

func fillInts(dst []int64, col arrow.Array, w, j int, lo, hi int64) error {
	switch a := col.(type) {
	case *array.Int64:
		if lo == math.MinInt64 && hi == math.MaxInt64 {
			scatter(dst, a.Int64Values(), w, j)
			return nil
		}
		return intsFrom(dst, a.Int64Values(), w, j, lo, hi)
	case *array.Int32:
		return intsFrom(dst, a.Int32Values(), w, j, lo, hi)
	case *array.Int16:
		return intsFrom(dst, a.Int16Values(), w, j, lo, hi)
	case *array.Int8:
		return intsFrom(dst, a.Int8Values(), w, j, lo, hi)
	case *array.Uint64:
		return intsFromUnsigned(dst, a.Uint64Values(), w, j, hi)
	case *array.Uint32:
		return intsFromUnsigned(dst, a.Uint32Values(), w, j, hi)
	case *array.Uint16:
		return intsFromUnsigned(dst, a.Uint16Values(), w, j, hi)
	case *array.Uint8:
		return intsFromUnsigned(dst, a.Uint8Values(), w, j, hi)
	case *array.Float64:
		return intsFromFloats(dst, a.Float64Values(), w, j, lo, hi)
	case *array.Float32:
		return intsFromFloats(dst, a.Float32Values(), w, j, lo, hi)
	case *array.Boolean:
		scatterBools(dst, a, w, j)
		return nil
	}
	return notConvertible(col)
}

func uintsFromSigned[S ~int8 | ~int16 | ~int32 | ~int64](dst []uint64, src []S, w, j int) error {
	for r, v := range src {
		if v < 0 {
			return fmt.Errorf("row %d: %d is out of range", r, v)
		}
		dst[r*w+j] = uint64(v)
	}
	return nil
}

func uintsFromFloats[S ~float32 | ~float64](dst []uint64, src []S, w, j int) error {
	for r, v := range src {
		x := float64(v)
		if x != math.Trunc(x) || x < 0 || x >= 1<<64 {
			return fmt.Errorf("row %d: %v is not an unsigned 64-bit integer", r, x)
		}
		dst[r*w+j] = uint64(x)
	}
	return nil
}

func fillUints(dst []uint64, col arrow.Array, w, j int) error {
	switch a := col.(type) {
	case *array.Uint64:
		scatter(dst, a.Uint64Values(), w, j)
	case *array.Uint32:
		scatter(dst, a.Uint32Values(), w, j)
	case *array.Uint16:
		scatter(dst, a.Uint16Values(), w, j)
	case *array.Uint8:
		scatter(dst, a.Uint8Values(), w, j)
	case *array.Int64:
		return uintsFromSigned(dst, a.Int64Values(), w, j)
	case *array.Int32:
		return uintsFromSigned(dst, a.Int32Values(), w, j)
	case *array.Int16:
		return uintsFromSigned(dst, a.Int16Values(), w, j)
	case *array.Int8:
		return uintsFromSigned(dst, a.Int8Values(), w, j)
	case *array.Float64:
		return uintsFromFloats(dst, a.Float64Values(), w, j)
	case *array.Float32:
		return uintsFromFloats(dst, a.Float32Values(), w, j)
	case *array.Boolean:
		scatterBools(dst, a, w, j)
	default:
		return notConvertible(col)
	}
	return nil
}

func fillBools(dst []bool, col arrow.Array, w, j int) error {
	a, ok := col.(*array.Boolean)
	if !ok {
		return notConvertible(col)
	}
	for r := range a.Len() {
		dst[r*w+j] = a.Value(r)
	}
	return nil
}

func fillStrings(dst []string, col arrow.Array, w, j int) error {
	var get func(int) string
	switch a := col.(type) {
	case *array.String:
		get = a.Value
	case *array.LargeString:
		get = a.Value
	case *array.Binary:
		get = a.ValueString
	case *array.LargeBinary:
		get = func(i int) string { return string(a.Value(i)) }
	default:
		return notConvertible(col)
	}
	for r := range col.Len() {
		// Copied: the tensor may outlive the record's buffers.
		dst[r*w+j] = string([]byte(get(r)))
	}
	return nil
}

// ToColumns turns an [N] or [N,C] tensor into Arrow columns: [N] and
// [N,1] into one column named after the tensor, [N,C] into C columns
// "<name>_0" to "<name>_<C-1>". rows, when not negative, is the N the
// caller expects. Column types: Boolean for BOOL, Int64 for INT8 to INT64
// and UINT8 to UINT32, Uint64 for UINT64, Float32 for FP16, BF16 and FP32,
// Float64 for FP64, String for BYTES. The arrays may share memory with
// the tensor's slices: do not change those afterwards. The caller
// releases the arrays.
func (t *Tensor) ToColumns(rows int) ([]arrow.Field, []arrow.Array, error) {
	if err := t.Check(); err != nil {
		return nil, nil, err
	}
	if len(t.Shape) < 1 || len(t.Shape) > 2 {
		return nil, nil, fmt.Errorf("tensor %q: shape %v is not [N] or [N,C]", t.Name, t.Shape)
	}
	n := int(t.Shape[0])
	if rows >= 0 && n != rows {
		return nil, nil, fmt.Errorf("tensor %q: %d rows (shape %v) for a batch of %d", t.Name, n, t.Shape, rows)
	}
	c := 1
	if len(t.Shape) == 2 {
		c = int(t.Shape[1])
	}
	if c < 1 {
		return nil, nil, fmt.Errorf("tensor %q: shape %v has no values per row", t.Name, t.Shape)
	}
	fields := make([]arrow.Field, c)
	for j := range c {
		fields[j] = arrow.Field{Name: t.Name}
		if c > 1 {
			fields[j].Name = t.Name + "_" + strconv.Itoa(j)
		}
	}
	var arrs []arrow.Array
	var typ arrow.DataType
	switch t.Datatype.kind() {
	case kindBool:
		typ = arrow.FixedWidthTypes.Boolean
		arrs = builtColumns(t.Bools, n, c, array.NewBooleanBuilder)
	case kindInt:
		typ = arrow.PrimitiveTypes.Int64
		arrs = fixedColumns(typ, t.Ints, n, c)
	case kindUint:
		typ = arrow.PrimitiveTypes.Uint64
		arrs = fixedColumns(typ, t.Uints, n, c)
	case kindF32:
		typ = arrow.PrimitiveTypes.Float32
		arrs = fixedColumns(typ, t.Float32s, n, c)
	case kindF64:
		typ = arrow.PrimitiveTypes.Float64
		arrs = fixedColumns(typ, t.Float64s, n, c)
	case kindString:
		typ = arrow.BinaryTypes.String
		arrs = builtColumns(t.Strings, n, c, array.NewStringBuilder)
	}
	for j := range fields {
		fields[j].Type = typ
	}
	return fields, arrs, nil
}

// Split de-interleaves a row-major [n,c] slice into c columns that share
// one allocation; with c == 1 it returns data itself.
func Split[T any](data []T, n, c int) [][]T {
	if c == 1 {
		return [][]T{data[:n:n]}
	}
	all := make([]T, n*c)
	cols := make([][]T, c)
	for j := range c {
		cols[j] = all[j*n : (j+1)*n : (j+1)*n]
	}
	for r := range n {
		row := data[r*c : r*c+c]
		for j, v := range row {
			cols[j][r] = v
		}
	}
	return cols
}

// fixedColumns wraps each column's values (not copied) as an Arrow array
// without nulls.
func fixedColumns[T int64 | uint64 | float32 | float64](typ arrow.DataType, data []T, n, c int) []arrow.Array {
	out := make([]arrow.Array, c)
	for j, col := range Split(data, n, c) {
		var zero T
		buf := memory.NewBufferBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(col))), len(col)*int(unsafe.Sizeof(zero))))
		d := array.NewData(typ, len(col), []*memory.Buffer{nil, buf}, nil, 0, 0)
		out[j] = array.MakeFromData(d)
		d.Release()
	}
	return out
}

// builtColumns builds each column of a row-major [n,c] slice with a fresh
// builder from newBuilder, for types whose Arrow layout is not a plain
// array of values (booleans are bits, strings offsets and bytes).
func builtColumns[T any, B interface {
	AppendValues([]T, []bool)
	NewArray() arrow.Array
	Release()
}](data []T, n, c int, newBuilder func(memory.Allocator) B) []arrow.Array {
	out := make([]arrow.Array, c)
	for j, col := range Split(data, n, c) {
		b := newBuilder(memory.DefaultAllocator)
		b.AppendValues(col, nil)
		out[j] = b.NewArray()
		b.Release()
	}
	return out
}
