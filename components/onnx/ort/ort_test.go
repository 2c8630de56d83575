package ort_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
)

// TestOps runs, in ORT, the operator patterns the transform export relies
// on (NaN imputation, broadcast bucketing, string imputation through a
// LabelEncoder, vocabulary lookup, MurmurHash3), so an ORT upgrade that
// changes one fails here first.
func TestOps(t *testing.T) {
	orttest.Init(t)
	g := onnx.NewGraph("probe")
	x := g.Input("x (mm)", onnx.Double, -1, 1)
	s := g.Input("s", onnx.String, -1, 1)
	imp := g.Op("Where", g.Op("IsNaN", x), g.ConstDouble(5), x)
	b := g.Cast(g.Op("Not", g.Op("Less", imp, g.ConstDoubles([]float64{2, 4}, 2))), onnx.Double)
	bucket := g.Node("", "ReduceSum", []string{b, g.ConstInt64s([]int64{1}, 1)}, onnx.AttrInt("keepdims", 1))
	miss := g.Node(onnx.DomainML, "LabelEncoder", []string{s}, onnx.AttrStrings("keys_strings", []string{""}),
		onnx.AttrInts("values_int64s", []int64{1}), onnx.AttrInt("default_int64", 0))
	simp := g.Op("Where", g.Cast(miss, onnx.Bool), g.ConstStrings([]string{"b"}, 1), s)
	id := g.Node(onnx.DomainML, "LabelEncoder", []string{simp}, onnx.AttrStrings("keys_strings", []string{"a", "b"}),
		onnx.AttrInts("values_int64s", []int64{0, 1}), onnx.AttrInt("default_int64", 2))
	h := g.Node(onnx.DomainMS, "MurmurHash3", []string{s}, onnx.AttrInt("positive", 1), onnx.AttrInt("seed", 0))
	out := g.Node("", "Concat", []string{bucket, g.Cast(id, onnx.Double), g.Cast(h, onnx.Double)}, onnx.AttrInt("axis", 1))
	g.NodeTo("", "Cast", []string{out}, []string{"y"}, onnx.AttrInt("to", int64(onnx.Float)))
	g.Output("y", onnx.Float, -1, 3)
	data, err := onnx.Marshal(g.Model())
	if err != nil {
		t.Fatal(err)
	}
	sess, err := ort.NewSession(data, []string{"x (mm)", "s"}, []string{"y"})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	res, err := sess.Run(4, []ort.Column{{Name: "x (mm)", Doubles: []float64{1, math.NaN(), 3, 4}}, {Name: "s", Strings: []string{"a", "", "zz", "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	// murmur3_x86_32("a", 0) = 1009084850, ("", 0) = 0, ("zz", 0) = 3651995396 (float32-rounded here).
	want := []float32{0, 0, 1009084850, 2, 1, 0, 1, 2, 3651995396, 2, 1, 2514386435}
	if !slices.Equal(res[0].Shape, []int64{4, 3}) || !slices.Equal(res[0].Data, want) {
		t.Errorf("got %v %v, want [4 3] %v", res[0].Shape, res[0].Data, want)
	}
}

func TestInitErrors(t *testing.T) {
	orttest.Init(t)
	if err := ort.Init("/nonexistent/libonnxruntime.so.1"); err == nil {
		t.Error("a second, different library was accepted")
	}
	if _, err := ort.NewSession([]byte("not onnx"), []string{"x"}, []string{"y"}); err == nil {
		t.Error("garbage loaded as a model")
	}
}

// TestBuffers runs a model through reused Buffers: each run reads what was
// written into In and writes Out, as Session.Run would answer; layouts
// that do not match the session or the model fail, as do closed buffers.
func TestBuffers(t *testing.T) {
	orttest.Init(t)
	g := onnx.NewGraph("buffers")
	x := g.Input("x", onnx.Float, -1, 2)
	g.NodeTo("", "ReduceSum", []string{x, g.ConstInt64s([]int64{1}, 1)}, []string{"sum"}, onnx.AttrInt("keepdims", 0))
	g.NodeTo("", "Cast", []string{g.Op("Mul", x, g.ConstFloats([]float32{2}, 1))}, []string{"twice"}, onnx.AttrInt("to", int64(onnx.Double)))
	g.Output("sum", onnx.Float, -1)
	g.Output("twice", onnx.Double, -1, 2)
	data, err := onnx.Marshal(g.Model())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(data, []string{"x"}, []string{"sum", "twice"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, out := []ort.Layout{{Kind: ort.Float32, Width: 2}}, []ort.Layout{{Kind: ort.Float32}, {Kind: ort.Float64, Width: 2}}
	b, err := s.NewBuffers(3, in, out)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range [][]float32{{1, 2, 3, 4, 5, 6}, {-1, 1, 0, 0, 10, 0.5}} {
		copy(b.In[0].Floats, x)
		if err := b.Run(); err != nil {
			t.Fatal(err)
		}
		want, err := s.Run(3, []ort.Column{{Name: "x", Width: 2, Floats: x}})
		if err != nil {
			t.Fatal(err)
		}
		twice := make([]float32, len(b.Out[1].Doubles))
		for i, v := range b.Out[1].Doubles {
			twice[i] = float32(v)
		}
		if !slices.Equal(b.Out[0].Floats, want[0].Data) || !slices.Equal(twice, want[1].Data) {
			t.Errorf("x %v: buffers gave %v %v, Run %v %v", x, b.Out[0].Floats, b.Out[1].Doubles, want[0].Data, want[1].Data)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err == nil {
		t.Error("closed buffers ran")
	}
	for name, lay := range map[string][2][]ort.Layout{
		"too few outputs": {in, out[:1]},
		"wrong width":     {in, {{Kind: ort.Float32}, {Kind: ort.Float64, Width: 3}}},
		"wrong kind":      {in, {{Kind: ort.Float32}, {Kind: ort.Float32, Width: 2}}},
	} {
		b, err := s.NewBuffers(3, lay[0], lay[1])
		if err == nil {
			err = b.Run()
			b.Close()
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestCUDAUnavailable: asking for CUDA from the CPU build the tests use
// fails at session creation with a message that says what is missing.
func TestCUDAUnavailable(t *testing.T) {
	orttest.Init(t)
	g := onnx.NewGraph("id")
	x := g.Input("x", onnx.Float, -1, 1)
	g.NodeTo("", "Identity", []string{x}, []string{"y"})
	g.Output("y", onnx.Float, -1, 1)
	model, err := onnx.Marshal(g.Model())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSessionWith(model, []string{"x"}, []string{"y"}, ort.Options{CUDA: true})
	if err == nil {
		s.Close()
		t.Skip("this ONNX Runtime library has CUDA and a device: nothing to refuse")
	}
	if !strings.Contains(err.Error(), "CUDA execution provider") {
		t.Fatalf("error %q does not name the CUDA execution provider", err)
	}
}
