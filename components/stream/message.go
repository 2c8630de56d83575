package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// value is one column of one example: null, a number or a text.
type value struct {
	null bool
	num  float64
	text string
}

// example is a decoded input message.
type example struct {
	id     json.RawMessage // nil when the message has none
	values []value         // by column
}

// decoder reads input messages into examples of fixed columns.
type decoder struct {
	columns []string
	text    []bool // by column: read as a string
	schema  *arrow.Schema
}

func newDecoder(columns, text []string) *decoder {
	isText := map[string]bool{}
	for _, c := range text {
		isText[c] = true
	}
	d := &decoder{columns: columns, text: make([]bool, len(columns))}
	fields := make([]arrow.Field, len(columns))
	for i, c := range columns {
		d.text[i] = isText[c]
		fields[i] = arrow.Field{Name: c, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
		if d.text[i] {
			fields[i].Type = arrow.BinaryTypes.String
		}
	}
	d.schema = arrow.NewSchema(fields, nil)
	return d
}

// decode reads one message body; an error is the reason it is malformed.
func (d *decoder) decode(body []byte) (example, error) {
	var ex example
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		if err == nil {
			err = fmt.Errorf("got null")
		}
		return ex, fmt.Errorf("not a JSON object: %w", err)
	}
	if id, ok := top["id"]; ok && !isNull(id) {
		switch id[0] {
		case '{', '[':
			return ex, fmt.Errorf(`"id" must be a string or a number, not %s`, abbrev(id))
		}
		ex.id = id
	}
	fields := top
	if f, ok := top["features"]; ok {
		fields = nil
		if err := json.Unmarshal(f, &fields); err != nil || fields == nil {
			return ex, fmt.Errorf(`"features" is not a JSON object: %s`, abbrev(f))
		}
	}
	ex.values = make([]value, len(d.columns))
	for i, c := range d.columns {
		raw, ok := fields[c]
		if !ok || isNull(raw) {
			ex.values[i].null = true
			continue
		}
		v, err := d.value(i, raw)
		if err != nil {
			return ex, fmt.Errorf("column %q: %w", c, err)
		}
		ex.values[i] = v
	}
	return ex, nil
}

func (d *decoder) value(i int, raw json.RawMessage) (value, error) {
	switch c := raw[0]; {
	case c == '"':
		if !d.text[i] {
			return value{}, fmt.Errorf("want a number, got the string %s", abbrev(raw))
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return value{}, err
		}
		return value{text: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		if d.text[i] {
			return value{text: string(raw)}, nil
		}
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return value{}, fmt.Errorf("%s is not a number", abbrev(raw))
		}
		return value{num: f}, nil
	}
	want := "a number"
	if d.text[i] {
		want = "a string"
	}
	return value{}, fmt.Errorf("want %s, got %s", want, abbrev(raw))
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// abbrev quotes at most 40 bytes of raw JSON for a reason.
func abbrev(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "..."
	}
	return string(raw)
}

// record builds the examples' record; the caller releases it.
func (d *decoder) record(exs []example) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, d.schema)
	defer b.Release()
	for i := range d.columns {
		switch fb := b.Field(i).(type) {
		case *array.Float64Builder:
			fb.Reserve(len(exs))
			for _, ex := range exs {
				if v := ex.values[i]; v.null {
					fb.UnsafeAppendBoolToBitmap(false)
				} else {
					fb.UnsafeAppend(v.num)
				}
			}
		case *array.StringBuilder:
			for _, ex := range exs {
				if v := ex.values[i]; v.null {
					fb.AppendNull()
				} else {
					fb.Append(v.text)
				}
			}
		}
	}
	return b.NewRecordBatch()
}

// result is the message published for an answered example.
type result struct {
	ID        json.RawMessage `json:"id,omitempty"`
	MessageID string          `json:"message_id"`
	ModelID   string          `json:"model_id"`
	Outputs   map[string]any  `json:"outputs"`
}

// deadLetter is the message published for an example with no result.
type deadLetter struct {
	MessageID string `json:"message_id"`
	ModelID   string `json:"model_id,omitempty"`
	Reason    string `json:"reason"`
	Input     string `json:"input"`
}

// outputs returns row i of an inference record as JSON-ready values.
func outputs(rec arrow.RecordBatch, i int) map[string]any {
	out := make(map[string]any, rec.NumCols())
	for j, col := range rec.Columns() {
		if rec.ColumnName(j) == modelIDColumn {
			continue // the result's own model_id
		}
		out[rec.ColumnName(j)] = col.GetOneForMarshal(i)
	}
	return out
}

// modelIDColumn is where a handler that routes rows (keyed models, A/B)
// names each row's model.
const modelIDColumn = "model_id"

// rowModelID is the model that answered row i: the handler's per-row
// model_id when it has one, else the batch's.
func rowModelID(rec arrow.RecordBatch, i int, batch string) string {
	idx := rec.Schema().FieldIndices(modelIDColumn)
	if len(idx) == 0 || rec.Column(idx[0]).IsNull(i) {
		return batch
	}
	if s, ok := rec.Column(idx[0]).GetOneForMarshal(i).(string); ok && s != "" {
		return s
	}
	return batch
}
