package evaluate

import (
	"encoding/json"
	"math"
	"strconv"
)

// Number is a metric value. A metric that is undefined on its rows (AUC
// of a slice holding one class, precision of a class never predicted is
// not one: that is 0 as in scikit-learn) is NaN, written to JSON as null
// because JSON has no NaN; null reads back as NaN.
type Number float64

// MarshalJSON writes NaN and ±Inf as null and other values in the
// shortest form that reads back exactly.
func (n Number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// UnmarshalJSON reads null as NaN.
func (n *Number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Number(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*n = Number(f)
	return nil
}
