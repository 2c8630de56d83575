package transform_test

import (
	"math"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/onnxpb"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/components/transform"
)

// softmaxModel is a small linear classifier, x [N,F] float → probabilities
// [N,K], with deterministic weights.
func softmaxModel(f, k int) (*onnxpb.ModelProto, []float32, []float32) {
	w := make([]float32, f*k)
	for i := range w {
		w[i] = float32(math.Sin(float64(i)+1)) / 2
	}
	bias := make([]float32, k)
	for i := range bias {
		bias[i] = float32(i) / 10
	}
	g := onnx.NewGraph("classifier")
	x := g.Input("x", onnx.Float, -1, int64(f))
	logits := g.Op("Add", g.Op("MatMul", x, g.ConstFloats(w, int64(f), int64(k))), g.ConstFloats(bias, int64(k)))
	g.NodeTo("", "Softmax", []string{logits}, []string{"probabilities"}, onnx.AttrInt("axis", 1))
	g.Output("probabilities", onnx.Float, -1, int64(k))
	return g.Model(), w, bias
}

// TestFuse runs a model fused with the penguins transform on raw features
// in ONNX Runtime and compares it with Go's apply followed by the same
// model's math in Go.
func TestFuse(t *testing.T) {
	orttest.Init(t)
	schema, recs := load(t, "penguins.json", 1000)
	g := fitSpec(t, penguinsSpec, schema, recs)
	pre, err := g.ONNX()
	if err != nil {
		t.Fatal(err)
	}
	const k = 3
	f := len(g.Order)
	model, w, bias := softmaxModel(f, k)
	fused, err := transform.Fuse(pre, model, transform.FuseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := onnx.Marshal(fused)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(g.Inputs))
	for i, in := range g.Inputs {
		names[i] = in.Name
	}
	s, err := ort.NewSession(data, names, []string{"probabilities"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raw, err := g.RawColumns(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	rows := int(recs[0].NumRows())
	res, err := s.Run(int64(rows), ortColumns(raw))
	if err != nil {
		t.Fatal(err)
	}
	feats, err := g.ApplyRaw(raw, rows)
	if err != nil {
		t.Fatal(err)
	}
	for r := range rows {
		logits := make([]float64, k)
		var z float64
		for j := range k {
			logits[j] = float64(bias[j])
			for i := range f {
				logits[j] += float64(feats[i][r]) * float64(w[i*k+j])
			}
			logits[j] = math.Exp(logits[j])
			z += logits[j]
		}
		for j := range k {
			want, got := logits[j]/z, float64(res[0].Data[r*k+j])
			if math.Abs(want-got) > 1e-5 {
				t.Fatalf("row %d class %d: Go %v, fused model in ORT %v", r, j, want, got)
			}
		}
	}
}

func TestFuseRejects(t *testing.T) {
	schema, recs := load(t, "penguins.json", 1000)
	g := fitSpec(t, penguinsSpec, schema, recs)
	pre, err := g.ONNX()
	if err != nil {
		t.Fatal(err)
	}
	wrongWidth, _, _ := softmaxModel(len(g.Order)+1, 2)
	if _, err := transform.Fuse(pre, wrongWidth, transform.FuseOptions{}); err == nil || !strings.Contains(err.Error(), "dimension 1") {
		t.Errorf("wrong width: %v", err)
	}
	ok, _, _ := softmaxModel(len(g.Order), 2)
	if _, err := transform.Fuse(pre, ok, transform.FuseOptions{ModelInput: "nope"}); err == nil {
		t.Error("unknown model input accepted")
	}
}
