package oip

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// The encoders below append JSON by hand: encoding/json would reflect over
// every element of a tensor's data, the bulk of a request.

// AppendJSON appends the request's JSON encoding to b.
func (r *InferRequest) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	b = appendStringField(b, "id", r.ID)
	b, err := appendParameters(b, r.Parameters)
	if err != nil {
		return nil, err
	}
	if b, err = appendTensors(b, "inputs", r.Inputs); err != nil {
		return nil, err
	}
	b = append(b, ']')
	if len(r.Outputs) > 0 {
		b = append(b, `,"outputs":[`...)
		for i, o := range r.Outputs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, o.Name)
			if len(o.Parameters) > 0 {
				b = append(b, ',')
				if b, err = appendParameters(b, o.Parameters); err != nil {
					return nil, err
				}
				b = b[:len(b)-1] // appendParameters ends with a comma
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// MarshalJSON implements json.Marshaler.
func (r InferRequest) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil) }

// AppendJSON appends the response's JSON encoding to b.
func (r *InferResponse) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"model_name":`...)
	b = appendString(b, r.ModelName)
	b = append(b, ',')
	b = appendStringField(b, "model_version", r.ModelVersion)
	b = appendStringField(b, "id", r.ID)
	b, err := appendParameters(b, r.Parameters)
	if err != nil {
		return nil, err
	}
	if b, err = appendTensors(b, "outputs", r.Outputs); err != nil {
		return nil, err
	}
	return append(b, "]}"...), nil
}

// MarshalJSON implements json.Marshaler.
func (r InferResponse) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil) }

// AppendJSON appends the tensor's JSON encoding, data flat, to b. It fails
// if the tensor is malformed (see Check) or holds a NaN or infinity, which
// JSON cannot carry.
func (t *Tensor) AppendJSON(b []byte) ([]byte, error) {
	if err := t.Check(); err != nil {
		return nil, err
	}
	b = append(b, `{"name":`...)
	b = appendString(b, t.Name)
	b = append(b, `,"shape":[`...)
	for i, d := range t.Shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, d, 10)
	}
	b = append(b, `],"datatype":"`...)
	b = append(b, t.Datatype...)
	b = append(b, `",`...)
	b, err := appendParameters(b, t.Parameters)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	b = append(b, `"data":[`...)
	switch t.Datatype.kind() {
	case kindBool:
		for i, v := range t.Bools {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendBool(b, v)
		}
	case kindInt:
		for i, v := range t.Ints {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, v, 10)
		}
	case kindUint:
		for i, v := range t.Uints {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, v, 10)
		}
	case kindF32:
		for i, v := range t.Float32s {
			if i > 0 {
				b = append(b, ',')
			}
			f := float64(v)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("tensor %q element %d: %v cannot be sent as JSON", t.Name, i, v)
			}
			b = strconv.AppendFloat(b, f, 'g', -1, 32)
		}
	case kindF64:
		for i, v := range t.Float64s {
			if i > 0 {
				b = append(b, ',')
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("tensor %q element %d: %v cannot be sent as JSON", t.Name, i, v)
			}
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		}
	case kindString:
		for i, v := range t.Strings {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, v)
		}
	}
	return append(b, "]}"...), nil
}

// MarshalJSON implements json.Marshaler.
func (t Tensor) MarshalJSON() ([]byte, error) { return t.AppendJSON(nil) }

// appendParameters appends `"parameters":{...},` when p is not empty.
func appendParameters(b []byte, p Parameters) ([]byte, error) {
	if len(p) == 0 {
		return b, nil
	}
	enc, err := json.Marshal(map[string]any(p))
	if err != nil {
		return nil, fmt.Errorf("parameters: %w", err)
	}
	b = append(b, `"parameters":`...)
	b = append(b, enc...)
	return append(b, ','), nil
}

// appendString appends s as a JSON string. Plain printable ASCII, the
// usual case for names and labels, is copied as is.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			enc, _ := json.Marshal(s) // a string always encodes
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendStringField appends "key":"v", when v is not empty.
func appendStringField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, `":`...)
	b = appendString(b, v)
	return append(b, ',')
}

// appendTensors appends "key":[tensor,... leaving the array open: the
// caller closes it with what follows.
func appendTensors(b []byte, key string, ts []Tensor) ([]byte, error) {
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, `":[`...)
	for i := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = ts[i].AppendJSON(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}
