package transform

import (
	"fmt"

	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/onnxpb"
)

// ONNX returns the fitted transform as an ONNX model: one input per raw
// column (named as the column; [N,1] double for numbers with NaN for
// missing, [N,1] string for strings with "" for missing) and one output,
// OutputName, a [N, len(Order)] float tensor. Arithmetic is done in double
// with standard ai.onnx ops in the same order as Apply, then cast to float
// once; vocabularies use ai.onnx.ml LabelEncoder; hash buckets use ONNX
// Runtime's com.microsoft MurmurHash3 (no standard op hashes strings).
func (g *Graph) ONNX() (*onnxpb.ModelProto, error) {
	b := onnx.NewGraph("mlsteps_transform")
	inputs := map[string]string{}
	for _, in := range g.Inputs {
		elem := onnx.Double
		if in.Kind == Categorical {
			elem = onnx.String
		}
		inputs[in.Name] = b.Input(in.Name, elem, -1, 1)
	}
	var parts []string
	for _, f := range g.Features {
		out, err := f.export(b, inputs)
		if err != nil {
			return nil, err
		}
		parts = append(parts, out)
	}
	cat := parts[0]
	if len(parts) > 1 {
		cat = b.Node("", "Concat", parts, onnx.AttrInt("axis", 1))
	}
	b.NodeTo("", "Cast", []string{cat}, []string{g.Output}, onnx.AttrInt("to", int64(onnx.Float)))
	b.Output(g.Output, onnx.Float, -1, int64(len(g.Order)))
	m := b.Model()
	m.DocString = ptr("mlsteps transform fitted by " + g.Spec)
	return m, nil
}

func ptr[T any](v T) *T { return &v }

// export adds f's steps and returns its [N, width] double output.
func (f *Feature) export(b *onnx.Graph, inputs map[string]string) (string, error) {
	var x string
	if f.Steps[0].Op != "cross" {
		x = inputs[f.Columns[0]]
	}
	for _, s := range f.Steps {
		if !s.Fitted {
			return "", fmt.Errorf("transform: feature %q: %s is not fitted", f.Name, s.Op)
		}
		x = s.export(b, x, inputs)
	}
	return x, nil
}

// export adds one step; every numeric value is [N,1] double.
func (s *Step) export(b *onnx.Graph, x string, inputs map[string]string) string {
	c := b.ConstDouble
	switch s.Op {
	case "impute":
		if s.Text != nil {
			// Equal on strings needs opset 19; a LabelEncoder mapping "" to
			// 1 (anything else to 0) finds the missing ones instead.
			miss := b.Node(onnx.DomainML, "LabelEncoder", []string{x}, onnx.AttrStrings("keys_strings", []string{""}),
				onnx.AttrInts("values_int64s", []int64{1}), onnx.AttrInt("default_int64", 0))
			return b.Op("Where", b.Cast(miss, onnx.Bool), b.ConstStrings([]string{*s.Text}, 1), x)
		}
		return b.Op("Where", b.Op("IsNaN", x), c(*s.Value), x)
	case "zscore":
		return b.Op("Div", b.Op("Sub", x, c(s.Mean)), c(s.Std))
	case "scale_to_0_1":
		return b.Op("Div", b.Op("Sub", x, c(s.Min)), c(s.den()))
	case "scale_by_min_max":
		y := b.Op("Div", b.Op("Sub", x, c(s.Min)), c(s.den()))
		return b.Op("Add", b.Op("Mul", y, c(s.OutMax-s.OutMin)), c(s.OutMin))
	case "log1p":
		return b.Op("Log", b.Op("Add", x, c(1)))
	case "clip":
		if s.Lo != nil {
			x = b.Op("Where", b.Op("Less", x, c(*s.Lo)), c(*s.Lo), x)
		}
		if s.Hi != nil {
			x = b.Op("Where", b.Op("Greater", x, c(*s.Hi)), c(*s.Hi), x)
		}
		return x
	case "bucketize":
		// [N,1] < [K] broadcasts to [N,K]; the count of boundaries not
		// above x is the bucket.
		ge := b.Cast(b.Op("Not", b.Op("Less", x, b.ConstDoubles(s.Boundaries, int64(len(s.Boundaries))))), onnx.Double)
		return b.Node("", "ReduceSum", []string{ge, b.ConstInt64s([]int64{1}, 1)}, onnx.AttrInt("keepdims", 1))
	case "vocabulary":
		return b.Cast(s.exportLookup(b, x, s.Vocabulary, s.NumOOV), onnx.Double)
	case "hash_bucket":
		return b.Cast(exportHash(b, x, int64(s.NumBuckets)), onnx.Double)
	case "cross":
		ia := exportLookupOOV1(b, inputs[s.Columns2[0]], s.Vocabularies[0])
		ib := exportLookupOOV1(b, inputs[s.Columns2[1]], s.Vocabularies[1])
		nb := b.ConstInt64s([]int64{int64(len(s.Vocabularies[1]) + 1)})
		return b.Cast(b.Op("Add", b.Op("Mul", ia, nb), ib), onnx.Double)
	case "one_hot":
		// ids [N,1] == [0..depth) broadcasts to [N,depth]; an id of -1
		// (no OOV bucket) is all zeros.
		r := make([]float64, s.Depth)
		for i := range r {
			r[i] = float64(i)
		}
		return b.Cast(b.Op("Equal", x, b.ConstDoubles(r, int64(s.Depth))), onnx.Double)
	}
	panic("transform: export of unknown op " + s.Op)
}

// exportHash is murmur3(x) % n as int64 [N,1].
func exportHash(b *onnx.Graph, x string, n int64) string {
	h := b.Node(onnx.DomainMS, "MurmurHash3", []string{x}, onnx.AttrInt("positive", 1), onnx.AttrInt("seed", 0))
	return b.Op("Mod", b.Cast(h, onnx.Int64), b.ConstInt64s([]int64{n}))
}

// exportLookup is Step.lookup as int64 [N,1].
func (s *Step) exportLookup(b *onnx.Graph, x string, vocab []string, numOOV int) string {
	ids := make([]int64, len(vocab))
	for i := range ids {
		ids[i] = int64(i)
	}
	def := int64(-1)
	if numOOV == 1 {
		def = int64(len(vocab))
	}
	id := b.Node(onnx.DomainML, "LabelEncoder", []string{x}, onnx.AttrStrings("keys_strings", vocab),
		onnx.AttrInts("values_int64s", ids), onnx.AttrInt("default_int64", def))
	if numOOV <= 1 {
		return id
	}
	oov := b.Op("Add", exportHash(b, x, int64(numOOV)), b.ConstInt64s([]int64{int64(len(vocab))}))
	return b.Op("Where", b.Op("Less", id, b.ConstInt64s([]int64{0})), oov, id)
}

func exportLookupOOV1(b *onnx.Graph, x string, vocab []string) string {
	return (&Step{}).exportLookup(b, x, vocab, 1)
}
