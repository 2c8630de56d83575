package tabular

import (
	"encoding/json"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
)

// timestampType is what timestamp columns are inferred as: microseconds
// with no time zone. arrow.FixedWidthTypes.Timestamp_us is not used because
// it carries TimeZone "UTC".
var timestampType = &arrow.TimestampType{Unit: arrow.Microsecond}

// inferCol narrows one column's type as sampled values arrive. It starts
// assuming every type fits and crosses types off; text and JSON values use
// separate flags because JSON values carry their own kind.
type inferCol struct {
	seen bool // a non-null value arrived

	// Text (CSV) candidates still standing.
	notBool, notInt, notFloat, notTime bool

	// JSON kinds seen.
	jBool, jInt, jFloat, jString, jOther bool
	jNotTime                             bool // a JSON string that is not a timestamp
}

// observeText records one non-null CSV cell.
func (c *inferCol) observeText(s string) {
	c.seen = true
	if leadingZero(s) {
		// "00501" is a ZIP code or an id, not the number 501: keep the text.
		c.notInt, c.notFloat = true, true
	}
	if !c.notBool {
		if _, ok := parseBool(s); !ok {
			c.notBool = true
		}
	}
	if !c.notInt {
		if _, err := strconv.ParseInt(s, 10, 64); err != nil {
			c.notInt = true
		}
	}
	// Only a value that failed as int needs the float check: every int64
	// literal is also a valid float.
	if !c.notFloat && c.notInt {
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			c.notFloat = true
		}
	}
	if !c.notTime {
		if _, _, ok := parseTimestamp(s); !ok {
			c.notTime = true
		}
	}
}

// leadingZero reports a number written with a redundant leading zero
// ("007", "-01.5"), the mark of a code rather than a quantity.
func leadingZero(s string) bool {
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	return len(s) > 1 && s[0] == '0' && s[1] >= '0' && s[1] <= '9'
}

// observeJSON records one non-null value from decodeValue.
func (c *inferCol) observeJSON(v any) {
	c.seen = true
	switch v := v.(type) {
	case bool:
		c.jBool = true
	case json.Number:
		if _, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			c.jInt = true
		} else if _, err := strconv.ParseFloat(string(v), 64); err == nil {
			c.jFloat = true
		} else {
			// Out of float64 range: only its text survives.
			c.jOther = true
		}
	case string:
		c.jString = true
		if !c.jNotTime {
			if _, _, ok := parseTimestamp(v); !ok {
				c.jNotTime = true
			}
		}
	default:
		c.jOther = true
	}
}

// textType is the narrowest type that fits every observed CSV cell.
func (c *inferCol) textType() arrow.DataType {
	switch {
	case !c.seen:
		return arrow.BinaryTypes.String
	case !c.notBool:
		return arrow.FixedWidthTypes.Boolean
	case !c.notInt:
		return arrow.PrimitiveTypes.Int64
	case !c.notFloat:
		return arrow.PrimitiveTypes.Float64
	case !c.notTime:
		return timestampType
	}
	return arrow.BinaryTypes.String
}

// jsonType is the narrowest type that fits every observed JSON value.
// Strings are never read as numbers or booleans: JSON already says what
// they are. They can be timestamps, which JSON has no kind for.
func (c *inferCol) jsonType() arrow.DataType {
	numeric := c.jInt || c.jFloat
	switch {
	case !c.seen || c.jOther:
		return arrow.BinaryTypes.String
	case c.jBool && !numeric && !c.jString:
		return arrow.FixedWidthTypes.Boolean
	case c.jInt && !c.jFloat && !c.jBool && !c.jString:
		return arrow.PrimitiveTypes.Int64
	case numeric && !c.jBool && !c.jString:
		return arrow.PrimitiveTypes.Float64
	case c.jString && !c.jNotTime && !numeric && !c.jBool:
		return timestampType
	}
	return arrow.BinaryTypes.String
}

// inferredSchema builds the all-nullable schema for inferred columns.
func inferredSchema(names []string, cols []inferCol, text bool) *arrow.Schema {
	fields := make([]arrow.Field, len(names))
	for i, name := range names {
		var t arrow.DataType
		if text {
			t = cols[i].textType()
		} else {
			t = cols[i].jsonType()
		}
		fields[i] = arrow.Field{Name: name, Type: t, Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}
