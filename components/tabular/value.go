package tabular

import (
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Number reads row i of a numeric column as float64, NaN when null; ok is
// false when the column is not numeric.
func Number(c arrow.Array, i int) (v float64, ok bool) {
	if c.IsNull(i) {
		return math.NaN(), true
	}
	switch a := c.(type) {
	case *array.Float64:
		return a.Value(i), true
	case *array.Float32:
		return float64(a.Value(i)), true
	case *array.Int64:
		return float64(a.Value(i)), true
	case *array.Int32:
		return float64(a.Value(i)), true
	case *array.Int16:
		return float64(a.Value(i)), true
	case *array.Int8:
		return float64(a.Value(i)), true
	case *array.Uint64:
		return float64(a.Value(i)), true
	case *array.Uint32:
		return float64(a.Value(i)), true
	case *array.Uint16:
		return float64(a.Value(i)), true
	case *array.Uint8:
		return float64(a.Value(i)), true
	}
	return 0, false
}

// IsNumeric reports whether Number reads the type.
func IsNumeric(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.FLOAT64, arrow.FLOAT32, arrow.INT64, arrow.INT32, arrow.INT16, arrow.INT8,
		arrow.UINT64, arrow.UINT32, arrow.UINT16, arrow.UINT8:
		return true
	}
	return false
}

// Text reads row i as the inference engine reads a key or a class label:
// strings as they are, anything else in Arrow's text form.
func Text(c arrow.Array, i int) string {
	switch a := c.(type) {
	case *array.String:
		return a.Value(i)
	case *array.LargeString:
		return a.Value(i)
	}
	return c.ValueStr(i)
}
