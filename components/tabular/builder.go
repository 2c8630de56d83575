package tabular

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// column appends the values of one field to an Arrow builder. CSV cells
// arrive as text; JSON values arrive as decoded by decodeValue (bool,
// json.Number, string or nestedJSON, never nil). A failed append returns a
// *typeError and appends nothing.
type column interface {
	appendText(s string) error
	appendJSON(v any) error
	appendNull()
	// reserve makes room for rows more values, and for strings dataBytes
	// more bytes, so a batch fills without regrowing its buffers.
	reserve(rows, dataBytes int)
	newArray() arrow.Array
	release()
}

// nestedJSON is a JSON object or array kept as its compact text.
type nestedJSON string

// newColumn picks the column for a field's type. The set is what inference
// produces plus the narrower numeric, string and date types a caller is
// likely to put in Options.Schema.
func newColumn(f arrow.Field, mem memory.Allocator) (column, error) {
	switch t := f.Type.(type) {
	case *arrow.BooleanType:
		return &boolColumn{b: array.NewBooleanBuilder(mem)}, nil
	case *arrow.Int8Type:
		b := array.NewInt8Builder(mem)
		return &intColumn{b: b, typ: t, bits: 8, put: func(v int64) { b.Append(int8(v)) }}, nil
	case *arrow.Int16Type:
		b := array.NewInt16Builder(mem)
		return &intColumn{b: b, typ: t, bits: 16, put: func(v int64) { b.Append(int16(v)) }}, nil
	case *arrow.Int32Type:
		b := array.NewInt32Builder(mem)
		return &intColumn{b: b, typ: t, bits: 32, put: func(v int64) { b.Append(int32(v)) }}, nil
	case *arrow.Int64Type:
		b := array.NewInt64Builder(mem)
		return &intColumn{b: b, typ: t, bits: 64, put: b.Append}, nil
	case *arrow.Uint8Type:
		b := array.NewUint8Builder(mem)
		return &uintColumn{b: b, typ: t, bits: 8, put: func(v uint64) { b.Append(uint8(v)) }}, nil
	case *arrow.Uint16Type:
		b := array.NewUint16Builder(mem)
		return &uintColumn{b: b, typ: t, bits: 16, put: func(v uint64) { b.Append(uint16(v)) }}, nil
	case *arrow.Uint32Type:
		b := array.NewUint32Builder(mem)
		return &uintColumn{b: b, typ: t, bits: 32, put: func(v uint64) { b.Append(uint32(v)) }}, nil
	case *arrow.Uint64Type:
		b := array.NewUint64Builder(mem)
		return &uintColumn{b: b, typ: t, bits: 64, put: b.Append}, nil
	case *arrow.Float32Type:
		b := array.NewFloat32Builder(mem)
		return &floatColumn{b: b, typ: t, bits: 32, put: func(v float64) { b.Append(float32(v)) }}, nil
	case *arrow.Float64Type:
		b := array.NewFloat64Builder(mem)
		return &floatColumn{b: b, typ: t, bits: 64, put: b.Append}, nil
	case *arrow.StringType:
		return &stringColumn{b: array.NewStringBuilder(mem)}, nil
	case *arrow.LargeStringType:
		return &stringColumn{b: array.NewLargeStringBuilder(mem)}, nil
	case *arrow.TimestampType:
		return &timestampColumn{b: array.NewTimestampBuilder(mem, t), typ: t}, nil
	case *arrow.Date32Type:
		return &date32Column{b: array.NewDate32Builder(mem)}, nil
	}
	return nil, fmt.Errorf("column %q: type %s is not supported; use bool, int8-64, uint8-64, float32/64, string, large_string, timestamp or date32", f.Name, f.Type)
}

type boolColumn struct{ b *array.BooleanBuilder }

func (c *boolColumn) appendText(s string) error {
	v, ok := parseBool(s)
	if !ok {
		return &typeError{typ: arrow.FixedWidthTypes.Boolean}
	}
	c.b.Append(v)
	return nil
}

func (c *boolColumn) appendJSON(v any) error {
	bv, ok := v.(bool)
	if !ok {
		return &typeError{typ: arrow.FixedWidthTypes.Boolean}
	}
	c.b.Append(bv)
	return nil
}

func (c *boolColumn) appendNull()           { c.b.AppendNull() }
func (c *boolColumn) reserve(rows, _ int)   { c.b.Reserve(rows) }
func (c *boolColumn) newArray() arrow.Array { return c.b.NewArray() }
func (c *boolColumn) release()              { c.b.Release() }

func parseBool(s string) (v, ok bool) {
	switch len(s) {
	case 4:
		return true, strings.EqualFold(s, "true")
	case 5:
		return false, strings.EqualFold(s, "false")
	}
	return false, false
}

// intColumn serves every signed width; put narrows after strconv has
// checked the range for bits.
type intColumn struct {
	b    array.Builder
	typ  arrow.DataType
	bits int
	put  func(int64)
}

func (c *intColumn) appendText(s string) error {
	v, err := strconv.ParseInt(s, 10, c.bits)
	if err != nil {
		return &typeError{typ: c.typ, err: numErr(err)}
	}
	c.put(v)
	return nil
}

func (c *intColumn) appendJSON(v any) error {
	n, ok := v.(json.Number)
	if !ok {
		return &typeError{typ: c.typ}
	}
	i, err := strconv.ParseInt(string(n), 10, c.bits)
	if err != nil {
		// 3.0 and 1e3 are integers written as floats; take them when exact.
		f, ferr := strconv.ParseFloat(string(n), 64)
		lim := math.Ldexp(1, c.bits-1)
		if ferr != nil || f != math.Trunc(f) || f < -lim || f >= lim {
			return &typeError{typ: c.typ, err: numErr(err)}
		}
		i = int64(f)
	}
	c.put(i)
	return nil
}

func (c *intColumn) appendNull()           { c.b.AppendNull() }
func (c *intColumn) reserve(rows, _ int)   { c.b.Reserve(rows) }
func (c *intColumn) newArray() arrow.Array { return c.b.NewArray() }
func (c *intColumn) release()              { c.b.Release() }

type uintColumn struct {
	b    array.Builder
	typ  arrow.DataType
	bits int
	put  func(uint64)
}

func (c *uintColumn) appendText(s string) error {
	v, err := strconv.ParseUint(s, 10, c.bits)
	if err != nil {
		return &typeError{typ: c.typ, err: numErr(err)}
	}
	c.put(v)
	return nil
}

func (c *uintColumn) appendJSON(v any) error {
	n, ok := v.(json.Number)
	if !ok {
		return &typeError{typ: c.typ}
	}
	return c.appendText(string(n))
}

func (c *uintColumn) appendNull()           { c.b.AppendNull() }
func (c *uintColumn) reserve(rows, _ int)   { c.b.Reserve(rows) }
func (c *uintColumn) newArray() arrow.Array { return c.b.NewArray() }
func (c *uintColumn) release()              { c.b.Release() }

type floatColumn struct {
	b    array.Builder
	typ  arrow.DataType
	bits int
	put  func(float64)
}

func (c *floatColumn) appendText(s string) error {
	v, err := strconv.ParseFloat(s, c.bits)
	if err != nil {
		return &typeError{typ: c.typ, err: numErr(err)}
	}
	c.put(v)
	return nil
}

func (c *floatColumn) appendJSON(v any) error {
	n, ok := v.(json.Number)
	if !ok {
		return &typeError{typ: c.typ}
	}
	return c.appendText(string(n))
}

func (c *floatColumn) appendNull()           { c.b.AppendNull() }
func (c *floatColumn) reserve(rows, _ int)   { c.b.Reserve(rows) }
func (c *floatColumn) newArray() arrow.Array { return c.b.NewArray() }
func (c *floatColumn) release()              { c.b.Release() }

// numErr keeps the sentinel (strconv.ErrSyntax or ErrRange) and drops the
// *NumError wrapper, whose text would repeat the value.
func numErr(err error) error {
	if ne, ok := err.(*strconv.NumError); ok {
		return ne.Err
	}
	return err
}

// stringBuilder is what StringBuilder and LargeStringBuilder share.
type stringBuilder interface {
	array.Builder
	Append(string)
	ReserveData(int)
}

// stringColumn takes anything: JSON numbers keep their literal text,
// booleans become "true"/"false", nested values their compact JSON.
type stringColumn struct{ b stringBuilder }

func (c *stringColumn) appendText(s string) error {
	c.b.Append(s)
	return nil
}

func (c *stringColumn) appendJSON(v any) error {
	c.b.Append(jsonText(v))
	return nil
}

func (c *stringColumn) appendNull() { c.b.AppendNull() }
func (c *stringColumn) reserve(rows, dataBytes int) {
	c.b.Reserve(rows)
	if dataBytes > 0 {
		c.b.ReserveData(dataBytes)
	}
}
func (c *stringColumn) newArray() arrow.Array { return c.b.NewArray() }
func (c *stringColumn) release()              { c.b.Release() }

type timestampColumn struct {
	b   *array.TimestampBuilder
	typ *arrow.TimestampType
}

func (c *timestampColumn) appendText(s string) error {
	sec, nsec, ok := parseTimestamp(s)
	if !ok {
		return &typeError{typ: c.typ}
	}
	v, ok := toUnit(sec, nsec, c.typ.Unit)
	if !ok {
		return &typeError{typ: c.typ, err: strconv.ErrRange}
	}
	c.b.Append(v)
	return nil
}

func (c *timestampColumn) appendJSON(v any) error {
	s, ok := v.(string)
	if !ok {
		return &typeError{typ: c.typ}
	}
	return c.appendText(s)
}

func (c *timestampColumn) appendNull()           { c.b.AppendNull() }
func (c *timestampColumn) reserve(rows, _ int)   { c.b.Reserve(rows) }
func (c *timestampColumn) newArray() arrow.Array { return c.b.NewArray() }
func (c *timestampColumn) release()              { c.b.Release() }

// toUnit scales seconds and nanoseconds to a timestamp unit, reporting
// overflow (only nanoseconds can overflow for four-digit years).
func toUnit(sec, nsec int64, u arrow.TimeUnit) (arrow.Timestamp, bool) {
	var mul, div int64
	switch u {
	case arrow.Second:
		return arrow.Timestamp(sec), true
	case arrow.Millisecond:
		mul, div = 1_000, 1_000_000
	case arrow.Microsecond:
		mul, div = 1_000_000, 1_000
	default:
		mul, div = 1_000_000_000, 1
	}
	if sec > math.MaxInt64/mul-1 || sec < math.MinInt64/mul+1 {
		return 0, false
	}
	return arrow.Timestamp(sec*mul + nsec/div), true
}

type date32Column struct{ b *array.Date32Builder }

func (c *date32Column) appendText(s string) error {
	d, ok := parseDate(s)
	if !ok {
		return &typeError{typ: arrow.FixedWidthTypes.Date32}
	}
	c.b.Append(arrow.Date32(d))
	return nil
}

func (c *date32Column) appendJSON(v any) error {
	s, ok := v.(string)
	if !ok {
		return &typeError{typ: arrow.FixedWidthTypes.Date32}
	}
	return c.appendText(s)
}

func (c *date32Column) appendNull()           { c.b.AppendNull() }
func (c *date32Column) reserve(rows, _ int)   { c.b.Reserve(rows) }
func (c *date32Column) newArray() arrow.Array { return c.b.NewArray() }
func (c *date32Column) release()              { c.b.Release() }

// jsonText is a decoded JSON value as it is stored in a string column and
// shown in errors.
func jsonText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return string(v)
	case nestedJSON:
		return string(v)
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return ""
}

// decodeValue turns one raw JSON value into what columns take: nil, bool,
// json.Number, string or nestedJSON. Nested values keep their key order,
// which decoding into map[string]any and marshalling back would lose.
func decodeValue(raw []byte) (any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("empty JSON value")
	}
	switch raw[0] {
	case 'n':
		return nil, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '"':
		if bytes.IndexByte(raw, '\\') < 0 {
			return string(raw[1 : len(raw)-1]), nil
		}
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case '{', '[':
		var b bytes.Buffer
		b.Grow(len(raw))
		if err := json.Compact(&b, raw); err != nil {
			return nil, err
		}
		return nestedJSON(b.String()), nil
	}
	return json.Number(raw), nil
}

// batch owns one builder per schema field and cuts record batches.
type batch struct {
	schema *arrow.Schema
	cols   []column
	n      int   // rows in the builders now
	rows   int64 // rows handed out in batches
}

func newBatch(schema *arrow.Schema, mem memory.Allocator) (*batch, error) {
	b := &batch{schema: schema, cols: make([]column, 0, schema.NumFields())}
	for _, f := range schema.Fields() {
		c, err := newColumn(f, mem)
		if err != nil {
			b.release()
			return nil, err
		}
		b.cols = append(b.cols, c)
	}
	return b, nil
}

// reserve prepares the builders for a batch of rows rows; avgLen, when
// not nil, is the expected bytes per value of each column.
func (b *batch) reserve(rows int, avgLen []int) {
	for i, c := range b.cols {
		data := 0
		if i < len(avgLen) {
			data = rows * avgLen[i]
		}
		c.reserve(rows, data)
	}
}

// flush turns the builders' rows into a record batch owned by the caller.
func (b *batch) flush() arrow.RecordBatch {
	arrs := make([]arrow.Array, len(b.cols))
	for i, c := range b.cols {
		arrs[i] = c.newArray()
	}
	rec := array.NewRecordBatch(b.schema, arrs, int64(b.n))
	for _, a := range arrs {
		a.Release()
	}
	b.rows += int64(b.n)
	b.n = 0
	return rec
}

func (b *batch) release() {
	for _, c := range b.cols {
		c.release()
	}
	b.cols = nil
}
