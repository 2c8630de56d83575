package oip

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"
)

// Requests, responses and tensors are decoded by hand: encoding/json has
// already checked the syntax of the whole document before it calls an
// UnmarshalJSON method, and going through it again per tensor (and once
// more for data kept as json.RawMessage) took three quarters of the
// decoding time. The decoder still checks every byte it relies on, so
// input that skipped that syntax check gets an error, not a panic.

// ParseResponse decodes a response body as json.Unmarshal does, without
// encoding/json's extra pass to find where the document ends.
func ParseResponse(b []byte) (InferResponse, error) {
	var r InferResponse
	if !json.Valid(b) {
		return r, json.Unmarshal(b, &r) // for encoding/json's syntax error
	}
	err := r.UnmarshalJSON(b)
	return r, err
}

// ParseRequest decodes a request body as json.Unmarshal does, without
// encoding/json's extra pass to find where the document ends.
func ParseRequest(b []byte) (InferRequest, error) {
	var r InferRequest
	if !json.Valid(b) {
		return r, json.Unmarshal(b, &r)
	}
	err := r.UnmarshalJSON(b)
	return r, err
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *InferResponse) UnmarshalJSON(b []byte) error {
	var out InferResponse
	err := decodeFields(b, "inference response", func(d *decoder, key string) (known bool, err error) {
		switch key {
		case "model_name":
			out.ModelName, err = d.str()
		case "model_version":
			out.ModelVersion, err = d.str()
		case "id":
			out.ID, err = d.str()
		case "parameters":
			out.Parameters, err = d.parameters()
		case "outputs":
			out.Outputs, err = d.tensors()
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	*r = out
	return nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *InferRequest) UnmarshalJSON(b []byte) error {
	var out InferRequest
	err := decodeFields(b, "inference request", func(d *decoder, key string) (known bool, err error) {
		switch key {
		case "id":
			out.ID, err = d.str()
		case "parameters":
			out.Parameters, err = d.parameters()
		case "inputs":
			out.Inputs, err = d.tensors()
		case "outputs":
			var raw []byte
			if raw, err = d.raw(); err == nil {
				err = json.Unmarshal(raw, &out.Outputs)
			}
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	*r = out
	return nil
}

// decodeFields decodes the JSON object b strictly: field decodes a key's
// value, reporting false for a key it does not know (skipped, as OIP allows
// extensions); errors name the key and then what.
func decodeFields(b []byte, what string, field func(d *decoder, key string) (bool, error)) error {
	d := &decoder{b: b}
	err := d.object(func(key string) error {
		known, err := field(d, key)
		if !known {
			return d.skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	})
	if err = d.end(err); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// UnmarshalJSON decodes a tensor strictly (see the package doc).
func (t *Tensor) UnmarshalJSON(b []byte) error {
	d := &decoder{b: b}
	out, err := d.tensor()
	if err = d.end(err); err != nil {
		return err
	}
	*t = out
	return nil
}

// decoder reads JSON values from b at i.
type decoder struct {
	b []byte
	i int
}

var errEOF = errors.New("unexpected end of JSON")

func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space (0 at the end).
func (d *decoder) peek() byte {
	d.space()
	if d.i >= len(d.b) {
		return 0
	}
	return d.b[d.i]
}

// end checks that only white space follows a value decoded with err.
func (d *decoder) end(err error) error {
	if err != nil {
		return err
	}
	if c := d.peek(); d.i < len(d.b) {
		return fmt.Errorf("unexpected %q after the value", c)
	}
	return nil
}

// null consumes a null literal if one is next.
func (d *decoder) null() bool {
	if d.peek() == 'n' && d.i+4 <= len(d.b) && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// object reads an object, calling field for each key with the decoder at
// the key's value, which field must consume.
func (d *decoder) object(field func(key string) error) error {
	if d.peek() != '{' {
		return errors.New("not an object")
	}
	d.i++
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		if d.peek() != '"' {
			return errors.New("object key is not a string")
		}
		key, err := d.rawString()
		if err != nil {
			return err
		}
		if d.peek() != ':' {
			return errors.New("missing ':' after an object key")
		}
		d.i++
		if err := field(key); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return errors.New("missing ',' or '}' in an object")
		}
	}
}

// array reads an array, calling elem with the decoder at each element,
// which elem must consume.
func (d *decoder) array(elem func() error) error {
	if d.peek() != '[' {
		return errors.New("not an array")
	}
	d.i++
	if d.peek() == ']' {
		d.i++
		return nil
	}
	for {
		d.space()
		if err := elem(); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return errors.New("missing ',' or ']' in an array")
		}
	}
}

// str reads a string or null ("").
func (d *decoder) str() (string, error) {
	if d.null() {
		return "", nil
	}
	if d.peek() != '"' {
		return "", errors.New("not a string")
	}
	return d.rawString()
}

// rawString reads the string at i; only strings with escapes go through
// encoding/json.
func (d *decoder) rawString() (string, error) {
	start := d.i
	d.i++
	escaped := false
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case '\\':
			escaped = true
			d.i += 2
			continue
		case '"':
			d.i++
			if !escaped {
				return string(d.b[start+1 : d.i-1]), nil
			}
			var s string
			if err := json.Unmarshal(d.b[start:d.i], &s); err != nil {
				return "", err
			}
			return s, nil
		}
		d.i++
	}
	return "", errEOF
}

// token returns the bytes of the number or literal at i.
func (d *decoder) token() []byte {
	start := d.i
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c == '-', c == '+', c == '.', c == 'E':
			d.i++
			continue
		}
		break
	}
	return d.b[start:d.i]
}

// skip consumes one value of any kind.
func (d *decoder) skip() error {
	switch d.peek() {
	case '{':
		return d.object(func(string) error { return d.skip() })
	case '[':
		return d.array(d.skip)
	case '"':
		_, err := d.rawString()
		return err
	case 0:
		return errEOF
	}
	if len(d.token()) == 0 {
		return fmt.Errorf("unexpected %q", d.b[d.i])
	}
	return nil
}

// raw consumes one value and returns its bytes.
func (d *decoder) raw() ([]byte, error) {
	d.space()
	start := d.i
	if err := d.skip(); err != nil {
		return nil, err
	}
	return d.b[start:d.i], nil
}

func (d *decoder) parameters() (Parameters, error) {
	raw, err := d.raw()
	if err != nil {
		return nil, err
	}
	var p Parameters
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, err
	}
	return p, nil
}

func (d *decoder) tensors() ([]Tensor, error) {
	if d.null() {
		return nil, nil
	}
	var ts []Tensor
	err := d.array(func() error {
		t, err := d.tensor()
		if err != nil {
			return err
		}
		ts = append(ts, t)
		return nil
	})
	return ts, err
}

// tensor reads a tensor object. Its data is parsed in place when the
// datatype and shape came first, as they usually do, else kept and
// parsed at the end.
func (d *decoder) tensor() (Tensor, error) {
	var (
		t       Tensor
		data    []byte // data seen before the datatype or shape
		hasData bool
	)
	named := func(err error) error {
		if t.Name != "" {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		return fmt.Errorf("tensor: %w", err)
	}
	err := d.object(func(key string) (err error) {
		switch key {
		case "name":
			t.Name, err = d.str()
		case "shape":
			t.Shape, err = d.shape()
		case "datatype":
			var s string
			if s, err = d.str(); err == nil {
				t.Datatype = Datatype(s)
				if !t.Datatype.Valid() {
					err = fmt.Errorf("unknown datatype %q", s)
				}
			}
		case "parameters":
			t.Parameters, err = d.parameters()
		case "data":
			if d.null() {
				return nil
			}
			hasData = true
			if t.Datatype != "" && t.Shape != nil {
				if err := t.parseData(d); err != nil {
					return named(err)
				}
				return nil
			}
			data, err = d.raw()
		default:
			return d.skip()
		}
		if err != nil {
			return named(fmt.Errorf("%s: %w", key, err))
		}
		return nil
	})
	if err != nil {
		return Tensor{}, err
	}
	switch {
	case t.Name == "":
		return Tensor{}, errors.New("tensor without a name")
	case t.Datatype == "":
		return Tensor{}, named(errors.New("no datatype"))
	case t.Shape == nil:
		return Tensor{}, named(errors.New("no shape"))
	case !hasData:
		return Tensor{}, named(errors.New("no data (binary tensor data is not supported)"))
	}
	if data != nil {
		sub := &decoder{b: data}
		if err := t.parseData(sub); err != nil {
			return Tensor{}, named(err)
		}
	}
	if n := NumElements(t.Shape); int64(t.Len()) != n {
		return Tensor{}, named(fmt.Errorf("%d elements for shape %v (%d)", t.Len(), t.Shape, n))
	}
	return t, nil
}

// shape reads the shape array; null is no shape.
func (d *decoder) shape() ([]int64, error) {
	if d.null() {
		return nil, nil
	}
	shape := []int64{}
	err := d.array(func() error {
		tok := d.token()
		v, err := strconv.ParseInt(unsafeString(tok), 10, 64)
		if err != nil {
			return fmt.Errorf("dimension %q: %w", tok, err)
		}
		if v < 0 {
			return fmt.Errorf("negative dimension %d", v)
		}
		shape = append(shape, v)
		return nil
	})
	return shape, err
}

// parseData reads the data array at d into t's slice for its datatype.
func (t *Tensor) parseData(d *decoder) error {
	n := NumElements(t.Shape)
	p := dataParser{d: d, t: t, shape: t.Shape}
	// A hostile shape must not make a huge allocation: no element takes
	// less than two bytes of JSON.
	p.reserve(int(min(n, int64(len(d.b)-d.i)/2+1)))
	if err := p.array(0); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return nil
}

// dataParser reads a tensor's data array, flat or nested, into the
// tensor's typed slice.
type dataParser struct {
	d     *decoder
	t     *Tensor
	shape []int64
}

func (p *dataParser) reserve(n int) {
	switch p.t.Datatype.kind() {
	case kindBool:
		p.t.Bools = make([]bool, 0, n)
	case kindInt:
		p.t.Ints = make([]int64, 0, n)
	case kindUint:
		p.t.Uints = make([]uint64, 0, n)
	case kindF32:
		p.t.Float32s = make([]float32, 0, n)
	case kindF64:
		p.t.Float64s = make([]float64, 0, n)
	case kindString:
		p.t.Strings = make([]string, 0, n)
	}
}

// maxDepth bounds nesting: no tensor of a sane rank needs more, and it
// keeps hostile input from growing the stack.
const maxDepth = 32

// array reads one array at nesting depth. Flat data is a depth-0 array
// of elements (the caller checks its count against the shape); nested
// data has arrays down to depth rank-1, each as long as its dimension.
func (p *dataParser) array(depth int) error {
	if depth >= maxDepth {
		return errors.New("nested too deep")
	}
	var count int64
	nested, scalars := false, false
	err := p.d.array(func() error {
		count++
		if p.d.peek() == '[' {
			nested = true
			return p.array(depth + 1)
		}
		scalars = true
		return p.element()
	})
	if err != nil {
		return err
	}
	rank := len(p.shape)
	switch {
	case nested && scalars:
		return fmt.Errorf("array at depth %d mixes elements and arrays", depth)
	case depth == 0 && !nested:
		return nil // flat
	case depth >= rank || (nested && depth >= rank-1) || (!nested && count > 0 && depth != rank-1):
		return fmt.Errorf("nesting does not match shape %v", p.shape)
	case count != p.shape[depth]:
		return fmt.Errorf("array at depth %d has %d entries, shape %v wants %d", depth, count, p.shape, p.shape[depth])
	}
	return nil
}

// unsafeString views b as a string for strconv, which does not keep it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// element reads one scalar of the tensor's datatype.
func (p *dataParser) element() error {
	t, d := p.t, p.d
	if d.i >= len(d.b) {
		return errEOF
	}
	if d.b[d.i] == '"' {
		if t.Datatype.kind() != kindString {
			return fmt.Errorf("element %d: a string in %s data", t.Len(), t.Datatype)
		}
		s, err := d.rawString()
		if err != nil {
			return fmt.Errorf("element %d: %w", t.Len(), err)
		}
		t.Strings = append(t.Strings, s)
		return nil
	}
	tok := d.token()
	if len(tok) == 0 {
		return fmt.Errorf("element %d: unexpected %q", t.Len(), d.b[d.i])
	}
	s := unsafeString(tok)
	bad := func(err error) error {
		return fmt.Errorf("element %d: %s is not %s (%w)", t.Len(), s, t.Datatype, err)
	}
	if s == "null" {
		return fmt.Errorf("element %d: null in %s data", t.Len(), t.Datatype)
	}
	switch t.Datatype.kind() {
	case kindBool:
		switch s {
		case "true":
			t.Bools = append(t.Bools, true)
		case "false":
			t.Bools = append(t.Bools, false)
		default:
			return fmt.Errorf("element %d: %s is not BOOL", t.Len(), s)
		}
	case kindInt:
		v, err := parseInt(s)
		if err != nil {
			return bad(err)
		}
		if lo, hi := t.Datatype.intRange(); v < lo || v > hi {
			return fmt.Errorf("element %d: %d is out of %s's range", t.Len(), v, t.Datatype)
		}
		t.Ints = append(t.Ints, v)
	case kindUint:
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil || f != math.Trunc(f) || f < 0 || f >= 1<<64 {
				return bad(err)
			}
			v = uint64(f)
		}
		t.Uints = append(t.Uints, v)
	case kindF32:
		v, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return bad(err)
		}
		t.Float32s = append(t.Float32s, float32(v))
	case kindF64:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return bad(err)
		}
		t.Float64s = append(t.Float64s, v)
	case kindString:
		return fmt.Errorf("element %d: %s is not a string", t.Len(), s)
	}
	return nil
}

// parseInt reads an integer, also written as an integral float (1e3,
// 2.0), as some servers do.
func parseInt(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return v, nil
	}
	f, ferr := strconv.ParseFloat(s, 64)
	if ferr != nil || f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
		return 0, err
	}
	return int64(f), nil
}
