package transform

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/onnxpb"
)

// FuseOptions tunes Fuse; the zero value is the default.
type FuseOptions struct {
	// ModelInput is the model input fed by the transform's output (default:
	// the model's first input that is not an initializer).
	ModelInput string
	// KeepFeatures also exposes the transform's output tensor as an output
	// of the fused model.
	KeepFeatures bool
}

// FusePrefix is put before the model's internal value and node names so
// they cannot clash with the transform's.
const FusePrefix = "model/"

// Fuse composes a transform graph (from Graph.ONNX) and a model taking its
// output into one model that takes raw features: the transform's inputs,
// plus any other model inputs, and the model's outputs under their own
// names. Neither argument is changed. Models with subgraphs (If, Loop) are
// not supported.
func Fuse(pre, model *onnxpb.ModelProto, opts FuseOptions) (*onnxpb.ModelProto, error) {
	pre, model = proto.Clone(pre).(*onnxpb.ModelProto), proto.Clone(model).(*onnxpb.ModelProto)
	pg, mg := pre.GetGraph(), model.GetGraph()
	if pg == nil || mg == nil || len(pg.Output) != 1 {
		return nil, fmt.Errorf("fuse: the transform needs a graph with one output, the model a graph")
	}
	feat := pg.Output[0]
	inits := map[string]bool{}
	for _, t := range mg.Initializer {
		inits[t.GetName()] = true
	}
	var port *onnxpb.ValueInfoProto
	for _, in := range mg.Input {
		if !inits[in.GetName()] && (opts.ModelInput == "" || in.GetName() == opts.ModelInput) {
			port = in
			break
		}
	}
	if port == nil {
		return nil, fmt.Errorf("fuse: the model has no input %q", opts.ModelInput)
	}
	if err := sameTensor(feat, port); err != nil {
		return nil, fmt.Errorf("fuse: transform output %q does not fit model input %q: %w", feat.GetName(), port.GetName(), err)
	}
	// Names that stay as they are: the model's other inputs and its outputs.
	keep := map[string]bool{"": true}
	taken := map[string]bool{}
	for _, v := range pg.Input {
		taken[v.GetName()] = true
	}
	taken[feat.GetName()] = true
	for _, v := range slices.Concat(mg.Input, mg.Output) {
		if v == port || inits[v.GetName()] {
			continue
		}
		if taken[v.GetName()] {
			return nil, fmt.Errorf("fuse: model value %q clashes with a transform name", v.GetName())
		}
		keep[v.GetName()] = true
	}
	rename := func(n string) string {
		switch {
		case n == port.GetName():
			return feat.GetName()
		case keep[n]:
			return n
		}
		return FusePrefix + n
	}
	for _, n := range mg.Node {
		for _, a := range n.Attribute {
			if a.G != nil || len(a.Graphs) > 0 {
				return nil, fmt.Errorf("fuse: model node %q (%s) has a subgraph; not supported", n.GetName(), n.GetOpType())
			}
		}
		for i := range n.Input {
			n.Input[i] = rename(n.Input[i])
		}
		for i := range n.Output {
			n.Output[i] = rename(n.Output[i])
		}
		n.Name = proto.String(FusePrefix + n.GetName())
	}
	for _, t := range mg.Initializer {
		t.Name = proto.String(rename(t.GetName()))
	}
	for _, v := range mg.ValueInfo {
		v.Name = proto.String(rename(v.GetName()))
	}
	g := &onnxpb.GraphProto{Name: proto.String(pg.GetName() + "+" + mg.GetName()),
		Node: slices.Concat(pg.Node, mg.Node), Initializer: slices.Concat(pg.Initializer, mg.Initializer),
		ValueInfo: slices.Concat(pg.ValueInfo, mg.ValueInfo), Input: slices.Clone(pg.Input)}
	for _, in := range mg.Input {
		if in != port && !inits[in.GetName()] {
			g.Input = append(g.Input, in)
		}
	}
	if opts.KeepFeatures {
		g.Output = append(g.Output, feat)
	}
	g.Output = append(g.Output, mg.Output...)
	out := &onnxpb.ModelProto{IrVersion: proto.Int64(max(pre.GetIrVersion(), model.GetIrVersion())),
		ProducerName: proto.String(onnx.ProducerTag), Graph: g, MetadataProps: model.MetadataProps}
	opsets := map[string]int64{}
	var domains []string
	for _, o := range slices.Concat(pre.OpsetImport, model.OpsetImport) {
		if _, ok := opsets[o.GetDomain()]; !ok {
			domains = append(domains, o.GetDomain())
		}
		opsets[o.GetDomain()] = max(opsets[o.GetDomain()], o.GetVersion())
	}
	for _, d := range domains {
		out.OpsetImport = append(out.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(d), Version: proto.Int64(opsets[d])})
	}
	return out, nil
}

// sameTensor checks element type and static dims agree.
func sameTensor(a, b *onnxpb.ValueInfoProto) error {
	ta, tb := a.GetType().GetTensorType(), b.GetType().GetTensorType()
	if ta == nil || tb == nil {
		return fmt.Errorf("not tensors")
	}
	if ta.GetElemType() != tb.GetElemType() {
		return fmt.Errorf("element type %s vs %s", onnxpb.TensorProto_DataType(ta.GetElemType()), onnxpb.TensorProto_DataType(tb.GetElemType()))
	}
	da, db := ta.GetShape().GetDim(), tb.GetShape().GetDim()
	if len(da) != len(db) && len(da) > 0 && len(db) > 0 {
		return fmt.Errorf("rank %d vs %d", len(da), len(db))
	}
	for i := range min(len(da), len(db)) {
		if va, vb := da[i].GetDimValue(), db[i].GetDimValue(); va > 0 && vb > 0 && va != vb {
			return fmt.Errorf("dimension %d is %d vs %d", i, va, vb)
		}
	}
	return nil
}
