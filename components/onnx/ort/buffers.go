package ort

import (
	"errors"
	"fmt"

	ortgo "github.com/yalue/onnxruntime_go"
)

// Kind is an element type Buffers can hold.
type Kind int

// Element types of Buffers' tensors.
const (
	Float32 Kind = iota + 1
	Float64
	Int64
)

// Layout describes one tensor of a Buffers.
type Layout struct {
	Kind  Kind
	Width int64 // values per row: the tensor is [rows, Width]; 0 means [rows]
}

// Buffers are a session's input and output tensors for batches of a fixed
// number of rows, made once and reused by every Run: the caller writes the
// inputs into In's slices and reads the outputs from Out's, so a run makes
// no tensors and copies nothing across cgo. The slices are the tensors'
// memory: fill In before Run, and copy what it needs of Out before the next
// Run. A Buffers serves one Run at a time.
type Buffers struct {
	Rows int64
	// In and Out follow the session's input and output order; each has
	// Name, Width and the one slice of its Kind set, Rows×Width values
	// row-major (Width 0 holds one value per row).
	In, Out []Column
	s       *Session
	in, out []ortgo.Value
	// bind binds in and out to the session once, so a run passes no
	// names or values across cgo and allocates nothing.
	bind *ortgo.IoBinding
}

// NewBuffers makes Buffers for rows rows of s's inputs and outputs, laid
// out as in and out (one Layout per input and per output, in order). ORT
// fails a Run whose outputs do not have the shapes the model produces.
func (s *Session) NewBuffers(rows int64, in, out []Layout) (*Buffers, error) {
	if len(in) != len(s.inputs) || len(out) != len(s.outputs) {
		return nil, fmt.Errorf("onnxruntime buffers: %d inputs and %d outputs laid out, the session has %d and %d",
			len(in), len(out), len(s.inputs), len(s.outputs))
	}
	if rows <= 0 {
		return nil, fmt.Errorf("onnxruntime buffers: %d rows", rows)
	}
	b := &Buffers{Rows: rows, s: s}
	for i, l := range in {
		v, c, err := newTensor(rows, l)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("onnxruntime input %q: %w", s.inputs[i], err)
		}
		c.Name = s.inputs[i]
		b.in, b.In = append(b.in, v), append(b.In, c)
	}
	for i, l := range out {
		v, c, err := newTensor(rows, l)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("onnxruntime output %q: %w", s.outputs[i], err)
		}
		c.Name = s.outputs[i]
		b.out, b.Out = append(b.out, v), append(b.Out, c)
	}
	var err error
	if b.bind, err = s.s.CreateIoBinding(); err != nil {
		b.Close()
		return nil, fmt.Errorf("onnxruntime io binding: %w", err)
	}
	for i, v := range b.in {
		if err := b.bind.BindInput(s.inputs[i], v); err != nil {
			b.Close()
			return nil, fmt.Errorf("onnxruntime bind input %q: %w", s.inputs[i], err)
		}
	}
	for i, v := range b.out {
		if err := b.bind.BindOutput(s.outputs[i], v); err != nil {
			b.Close()
			return nil, fmt.Errorf("onnxruntime bind output %q: %w", s.outputs[i], err)
		}
	}
	return b, nil
}

func newTensor(rows int64, l Layout) (ortgo.Value, Column, error) {
	shape := ortgo.NewShape(rows)
	if l.Width > 0 {
		shape = ortgo.NewShape(rows, l.Width)
	}
	c := Column{Width: l.Width}
	switch l.Kind {
	case Float32:
		t, err := ortgo.NewEmptyTensor[float32](shape)
		if err != nil {
			return nil, c, err
		}
		c.Floats = t.GetData()
		return t, c, nil
	case Float64:
		t, err := ortgo.NewEmptyTensor[float64](shape)
		if err != nil {
			return nil, c, err
		}
		c.Doubles = t.GetData()
		return t, c, nil
	case Int64:
		t, err := ortgo.NewEmptyTensor[int64](shape)
		if err != nil {
			return nil, c, err
		}
		c.Int64s = t.GetData()
		return t, c, nil
	}
	return nil, c, fmt.Errorf("unknown element kind %d", l.Kind)
}

// Run runs the session on b's inputs, writing b's outputs.
func (b *Buffers) Run() error {
	if b.bind == nil {
		return errors.New("onnxruntime run: buffers closed")
	}
	if err := b.s.s.RunWithBinding(b.bind); err != nil {
		return fmt.Errorf("onnxruntime run: %w", err)
	}
	return nil
}

// Close frees the tensors; In and Out must not be used afterwards.
func (b *Buffers) Close() error {
	if b.bind != nil {
		b.bind.Destroy()
	}
	for _, v := range append(b.in, b.out...) {
		v.Destroy()
	}
	b.bind, b.in, b.out, b.In, b.Out = nil, nil, nil, nil, nil
	return nil
}
