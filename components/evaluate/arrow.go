package evaluate

import (
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// NullValue is the slice value of a null feature.
const NullValue = "(null)"

// RecordFeatures returns the named columns of rec as text for
// Batch.Features: strings (plain, large, view or dictionary-encoded) as
// they are, integers in decimal, booleans as true/false and nulls as
// NullValue. A missing column, or one of another type (floats are not
// sliced by value), is an error wrapping ErrInvalid naming it.
func RecordFeatures(rec arrow.RecordBatch, names []string) (map[string][]string, error) {
	out := make(map[string][]string, len(names))
	for _, name := range names {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("%w: features: no column %q to slice by", ErrInvalid, name)
		}
		col := rec.Column(idx[0])
		text, err := columnText(col)
		if err != nil {
			return nil, fmt.Errorf("%w: features: column %q: %v", ErrInvalid, name, err)
		}
		vals := make([]string, col.Len())
		for i := range vals {
			if col.IsNull(i) {
				vals[i] = NullValue
			} else {
				vals[i] = text(i)
			}
		}
		out[name] = vals
	}
	return out, nil
}

func columnText(col arrow.Array) (func(int) string, error) {
	switch a := col.(type) {
	case *array.String:
		return a.Value, nil
	case *array.LargeString:
		return a.Value, nil
	case *array.StringView:
		return a.Value, nil
	case *array.Boolean:
		return func(i int) string { return strconv.FormatBool(a.Value(i)) }, nil
	case *array.Int8:
		return func(i int) string { return strconv.FormatInt(int64(a.Value(i)), 10) }, nil
	case *array.Int16:
		return func(i int) string { return strconv.FormatInt(int64(a.Value(i)), 10) }, nil
	case *array.Int32:
		return func(i int) string { return strconv.FormatInt(int64(a.Value(i)), 10) }, nil
	case *array.Int64:
		return func(i int) string { return strconv.FormatInt(a.Value(i), 10) }, nil
	case *array.Uint8:
		return func(i int) string { return strconv.FormatUint(uint64(a.Value(i)), 10) }, nil
	case *array.Uint16:
		return func(i int) string { return strconv.FormatUint(uint64(a.Value(i)), 10) }, nil
	case *array.Uint32:
		return func(i int) string { return strconv.FormatUint(uint64(a.Value(i)), 10) }, nil
	case *array.Uint64:
		return func(i int) string { return strconv.FormatUint(a.Value(i), 10) }, nil
	case *array.Dictionary:
		dict, err := columnText(a.Dictionary())
		if err != nil {
			return nil, fmt.Errorf("dictionary: %w", err)
		}
		return func(i int) string { return dict(a.GetValueIndex(i)) }, nil
	}
	return nil, fmt.Errorf("type %s cannot be sliced by (use strings, integers or booleans)", col.DataType())
}
