package oip

import (
	"encoding/json"
	"fmt"
)

// Datatype is a tensor element type, as the protocol names it.
type Datatype string

// The protocol's datatypes (BF16 is Triton's addition).
const (
	Bool   Datatype = "BOOL"
	Uint8  Datatype = "UINT8"
	Uint16 Datatype = "UINT16"
	Uint32 Datatype = "UINT32"
	Uint64 Datatype = "UINT64"
	Int8   Datatype = "INT8"
	Int16  Datatype = "INT16"
	Int32  Datatype = "INT32"
	Int64  Datatype = "INT64"
	FP16   Datatype = "FP16"
	BF16   Datatype = "BF16"
	FP32   Datatype = "FP32"
	FP64   Datatype = "FP64"
	Bytes  Datatype = "BYTES"
)

// kind is where a datatype's elements are held in a Tensor.
type kind int

const (
	kindNone kind = iota
	kindBool
	kindInt
	kindUint
	kindF32
	kindF64
	kindString
)

func (d Datatype) kind() kind {
	switch d {
	case Bool:
		return kindBool
	case Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32:
		return kindInt
	case Uint64:
		return kindUint
	case FP16, BF16, FP32:
		return kindF32
	case FP64:
		return kindF64
	case Bytes:
		return kindString
	}
	return kindNone
}

// Valid reports whether d is one of the protocol's datatypes.
func (d Datatype) Valid() bool { return d.kind() != kindNone }

// intRange is the value range of an integer datatype held in Ints.
func (d Datatype) intRange() (lo, hi int64) {
	switch d {
	case Int8:
		return -1 << 7, 1<<7 - 1
	case Int16:
		return -1 << 15, 1<<15 - 1
	case Int32:
		return -1 << 31, 1<<31 - 1
	case Uint8:
		return 0, 1<<8 - 1
	case Uint16:
		return 0, 1<<16 - 1
	case Uint32:
		return 0, 1<<32 - 1
	}
	return -1 << 63, 1<<63 - 1
}

// UnmarshalJSON accepts only the protocol's datatypes.
func (d *Datatype) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("datatype: %w", err)
	}
	if !Datatype(s).Valid() {
		return fmt.Errorf("unknown datatype %q", s)
	}
	*d = Datatype(s)
	return nil
}

// Parameters are the protocol's free-form parameters: string, number or
// boolean values by name.
type Parameters map[string]any

// Tensor is a request input or a response output. Exactly one of the
// element slices is used, the one Datatype selects (see the package
// doc); it holds every element, flattened in row-major order.
type Tensor struct {
	Name       string
	Shape      []int64
	Datatype   Datatype
	Parameters Parameters

	Bools    []bool
	Ints     []int64
	Uints    []uint64
	Float32s []float32
	Float64s []float64
	Strings  []string
}

// Len is the number of elements held in the slice Datatype selects.
func (t *Tensor) Len() int {
	switch t.Datatype.kind() {
	case kindBool:
		return len(t.Bools)
	case kindInt:
		return len(t.Ints)
	case kindUint:
		return len(t.Uints)
	case kindF32:
		return len(t.Float32s)
	case kindF64:
		return len(t.Float64s)
	case kindString:
		return len(t.Strings)
	}
	return 0
}

// NumElements is the element count the shape implies (the product of
// its dimensions; 1 for a scalar), or -1 if a dimension is negative.
func NumElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		n *= d
	}
	return n
}

// Check returns an error unless t is well formed: a name, a known datatype, a
// shape without negative dimensions, and as many elements as the shape
// says.
func (t *Tensor) Check() error {
	if t.Name == "" {
		return fmt.Errorf("tensor without a name")
	}
	if !t.Datatype.Valid() {
		return fmt.Errorf("tensor %q: unknown datatype %q", t.Name, t.Datatype)
	}
	n := NumElements(t.Shape)
	if n < 0 {
		return fmt.Errorf("tensor %q: negative dimension in shape %v", t.Name, t.Shape)
	}
	if int64(t.Len()) != n {
		return fmt.Errorf("tensor %q: %d elements for shape %v (%d)", t.Name, t.Len(), t.Shape, n)
	}
	return nil
}

// RequestedOutput asks for one output tensor by name.
type RequestedOutput struct {
	Name       string     `json:"name"`
	Parameters Parameters `json:"parameters,omitempty"`
}

// InferRequest is the body POSTed to /v2/models/{name}[/versions/{v}]/infer.
type InferRequest struct {
	ID         string     `json:"id,omitempty"`
	Parameters Parameters `json:"parameters,omitempty"`
	Inputs     []Tensor   `json:"inputs"`
	// Outputs names the outputs wanted; empty means all of them.
	Outputs []RequestedOutput `json:"outputs,omitempty"`
}

// InferResponse is a successful inference's body.
type InferResponse struct {
	ModelName    string     `json:"model_name"`
	ModelVersion string     `json:"model_version,omitempty"`
	ID           string     `json:"id,omitempty"`
	Parameters   Parameters `json:"parameters,omitempty"`
	Outputs      []Tensor   `json:"outputs"`
}

// Output returns the output tensor called name, or nil.
func (r *InferResponse) Output(name string) *Tensor {
	for i := range r.Outputs {
		if r.Outputs[i].Name == name {
			return &r.Outputs[i]
		}
	}
	return nil
}

// ErrorResponse is the body of a failed request, any endpoint.
type ErrorResponse struct {
	Error string `json:"error"`
}

// TensorMetadata describes a model input or output; -1 in Shape is a
// dimension of any size (the batch, typically).
type TensorMetadata struct {
	Name     string   `json:"name"`
	Datatype Datatype `json:"datatype"`
	Shape    []int64  `json:"shape"`
}

// ModelMetadata is the body of GET /v2/models/{name}[/versions/{v}].
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// Input returns the metadata of the input called name, or nil.
func (m *ModelMetadata) Input(name string) *TensorMetadata { return findMeta(m.Inputs, name) }

// Output returns the metadata of the output called name, or nil.
func (m *ModelMetadata) Output(name string) *TensorMetadata { return findMeta(m.Outputs, name) }

func findMeta(ts []TensorMetadata, name string) *TensorMetadata {
	for i := range ts {
		if ts[i].Name == name {
			return &ts[i]
		}
	}
	return nil
}
