package tabular

import (
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// ParseError is every error about the data itself: a malformed row, a value
// that does not fit its column's type, a JSON element that is not an
// object. Errors from the underlying io.Reader and from bad arguments are
// not ParseErrors.
//
// Its Error text reads like
//
//	penguins.csv:12: column "Body Mass (g)": value "abc" is not int64 (type inferred from the first 10000 rows; set a larger InferRows or a schema)
//	cars.json:3: element 2 is not an object
type ParseError struct {
	File   string // the name given to the reader
	Line   int    // 1-based line where the row or element starts; 0 when unknown
	Column string // column name; "" when the error is not about one column
	Value  string // the offending value as text; "" when not about one value
	Err    error  // what is wrong

	// element is the 1-based index of the element in a JSON array, 0 when
	// the input is not one; it is only printed.
	element int
}

// maxShownValue bounds how much of a value Error prints: a nested JSON
// value can be megabytes long, and the full text stays in Value.
const maxShownValue = 120

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.element > 0 {
		b.WriteString("element ")
		b.WriteString(strconv.Itoa(e.element))
		if e.Column != "" {
			b.WriteString(", ")
		} else {
			b.WriteString(": ")
		}
	}
	if e.Column != "" {
		b.WriteString("column ")
		b.WriteString(strconv.Quote(e.Column))
		b.WriteString(": ")
	}
	shown := e.Value
	if len(shown) > maxShownValue {
		shown = shown[:maxShownValue] + "..."
	}
	te, isType := e.Err.(*typeError)
	switch {
	case isType:
		b.WriteString("value ")
		b.WriteString(strconv.Quote(shown))
		b.WriteByte(' ')
		b.WriteString(te.Error())
	case e.Value != "":
		b.WriteString("value ")
		b.WriteString(strconv.Quote(shown))
		b.WriteString(": ")
		b.WriteString(errText(e.Err))
	default:
		b.WriteString(errText(e.Err))
	}
	return b.String()
}

// Unwrap returns Err, so errors.Is sees through to causes such as
// csv.ErrFieldCount or strconv.ErrRange.
func (e *ParseError) Unwrap() error { return e.Err }

func errText(err error) string {
	if err == nil {
		return "invalid data"
	}
	return err.Error()
}

// typeError says a value does not parse as its column's type. It reads as a
// predicate ("is not int64 ...") so ParseError can put the value before it.
type typeError struct {
	typ arrow.DataType
	// inferRows is how many rows the type was inferred from; 0 when the
	// type came from Options.Schema.
	inferRows int
	err       error // the strconv error, when there is one
}

func (e *typeError) Error() string {
	s := "is not " + typeName(e.typ)
	if e.inferRows > 0 {
		s += " (type inferred from the first " + strconv.Itoa(e.inferRows) + " rows; set a larger InferRows or a schema)"
	}
	return s
}

func (e *typeError) Unwrap() error { return e.err }

func typeName(t arrow.DataType) string {
	switch t.ID() {
	case arrow.TIMESTAMP:
		return "an ISO 8601 timestamp"
	case arrow.DATE32:
		return "an ISO 8601 date (YYYY-MM-DD)"
	}
	return t.String()
}
