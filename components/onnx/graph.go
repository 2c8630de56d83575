package onnx

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/mlsteps/mlsteps/components/onnx/onnxpb"
)

// Opset versions the graphs built here target: what ONNX 1.12's protos
// describe and ONNX Runtime 1.30 runs.
const (
	IRVersion   = 8
	OpsetONNX   = 17
	OpsetML     = 3
	DomainML    = "ai.onnx.ml"
	DomainMS    = "com.microsoft"
	OpsetMS     = 1
	ProducerTag = "mlsteps"
)

// Element types used by the builder, re-exported for readability.
const (
	Float  = onnxpb.TensorProto_FLOAT
	Double = onnxpb.TensorProto_DOUBLE
	Int64  = onnxpb.TensorProto_INT64
	String = onnxpb.TensorProto_STRING
	Bool   = onnxpb.TensorProto_BOOL
)

// Graph builds an ONNX graph node by node. Names it makes up are unique
// within the graph (a prefix plus a counter), so helpers can be composed
// without clashing.
type Graph struct {
	g       *onnxpb.GraphProto
	next    int
	domains map[string]int64
}

// NewGraph starts an empty graph.
func NewGraph(name string) *Graph {
	return &Graph{g: &onnxpb.GraphProto{Name: proto.String(name)}, domains: map[string]int64{"": OpsetONNX}}
}

// Proto returns the graph built so far (not a copy).
func (g *Graph) Proto() *onnxpb.GraphProto { return g.g }

// Name returns a fresh value name starting with prefix.
func (g *Graph) Name(prefix string) string {
	g.next++
	return prefix + "__" + strconv.Itoa(g.next)
}

// ValueInfo describes a tensor of elem type with dims; a negative or zero
// dim is left symbolic ("N", the batch).
func ValueInfo(name string, elem onnxpb.TensorProto_DataType, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		if d <= 0 {
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}})
		} else {
			shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d}})
		}
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(elem)), Shape: shape}}}}
}

// Input declares a graph input.
func (g *Graph) Input(name string, elem onnxpb.TensorProto_DataType, dims ...int64) string {
	g.g.Input = append(g.g.Input, ValueInfo(name, elem, dims...))
	return name
}

// Output declares a graph output.
func (g *Graph) Output(name string, elem onnxpb.TensorProto_DataType, dims ...int64) {
	g.g.Output = append(g.g.Output, ValueInfo(name, elem, dims...))
}

// Node adds a node of op (in domain "" for ai.onnx, or DomainML, DomainMS)
// and returns its single output's name (made up from op).
func (g *Graph) Node(domain, op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	out := g.Name(op)
	g.NodeTo(domain, op, inputs, []string{out}, attrs...)
	return out
}

// NodeTo adds a node with named outputs.
func (g *Graph) NodeTo(domain, op string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) {
	switch domain {
	case DomainML:
		g.domains[domain] = OpsetML
	case DomainMS:
		g.domains[domain] = OpsetMS
	}
	n := &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(g.Name("node_" + op)),
		Input: inputs, Output: outputs, Attribute: attrs}
	if domain != "" {
		n.Domain = proto.String(domain)
	}
	g.g.Node = append(g.g.Node, n)
}

// Op is Node in the ai.onnx domain.
func (g *Graph) Op(op string, inputs ...string) string { return g.Node("", op, inputs) }

// ConstDoubles adds a double initializer with dims (none: a scalar).
func (g *Graph) ConstDoubles(values []float64, dims ...int64) string {
	name := g.Name("c")
	g.g.Initializer = append(g.g.Initializer, &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(int32(Double)), Dims: dims, DoubleData: values})
	return name
}

// ConstDouble adds a scalar double initializer.
func (g *Graph) ConstDouble(v float64) string { return g.ConstDoubles([]float64{v}) }

// ConstFloats adds a float initializer with dims.
func (g *Graph) ConstFloats(values []float32, dims ...int64) string {
	name := g.Name("c")
	g.g.Initializer = append(g.g.Initializer, &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(int32(Float)), Dims: dims, FloatData: values})
	return name
}

// ConstInt64s adds an int64 initializer with dims.
func (g *Graph) ConstInt64s(values []int64, dims ...int64) string {
	name := g.Name("c")
	g.g.Initializer = append(g.g.Initializer, &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(int32(Int64)), Dims: dims, Int64Data: values})
	return name
}

// ConstStrings adds a string initializer with dims.
func (g *Graph) ConstStrings(values []string, dims ...int64) string {
	name := g.Name("c")
	data := make([][]byte, len(values))
	for i, v := range values {
		data[i] = []byte(v)
	}
	g.g.Initializer = append(g.g.Initializer, &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(int32(String)), Dims: dims, StringData: data})
	return name
}

// Cast converts x to elem.
func (g *Graph) Cast(x string, elem onnxpb.TensorProto_DataType) string {
	return g.Node("", "Cast", []string{x}, AttrInt("to", int64(elem)))
}

// Model wraps the graph in a model with the opsets its nodes use.
func (g *Graph) Model() *onnxpb.ModelProto {
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(IRVersion), ProducerName: proto.String(ProducerTag), Graph: g.g}
	for _, d := range []string{"", DomainML, DomainMS} {
		if v, ok := g.domains[d]; ok {
			m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(d), Version: proto.Int64(v)})
		}
	}
	return m
}

// Marshal encodes a model deterministically, so the same graph always has
// the same bytes (and the same artifact digest).
func Marshal(m *onnxpb.ModelProto) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode onnx model: %w", err)
	}
	return b, nil
}

// Unmarshal decodes a model.
func Unmarshal(data []byte) (*onnxpb.ModelProto, error) {
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("decode onnx model: %w", err)
	}
	return m, nil
}

// AttrInt is an INT attribute.
func AttrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// AttrFloat is a FLOAT attribute.
func AttrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// AttrString is a STRING attribute.
func AttrString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

// AttrInts is an INTS attribute.
func AttrInts(name string, v []int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

// AttrFloats is a FLOATS attribute.
func AttrFloats(name string, v []float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOATS.Enum(), Floats: v}
}

// AttrStrings is a STRINGS attribute.
func AttrStrings(name string, v []string) *onnxpb.AttributeProto {
	b := make([][]byte, len(v))
	for i, s := range v {
		b[i] = []byte(s)
	}
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRINGS.Enum(), Strings: b}
}
