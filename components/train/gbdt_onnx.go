package train

import (
	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/onnxpb"
)

// ONNX returns the ensemble as an ai.onnx.ml tree ensemble over input "x"
// (float [N,F]); every split is BRANCH_LEQ on the float32 threshold, with
// nodes_missing_value_tracks_true carrying where NaN goes.
//
// Regression: TreeEnsembleRegressor, output "prediction" (float [N,1]).
// Multi-class: TreeEnsembleClassifier with a SOFTMAX post-transform, outputs
// "label" (int64 [N]) and "probabilities" (float [N,K]).
// Binary: a TreeEnsembleRegressor for the log-odds, then Sigmoid, Concat
// and ArgMax to the same two outputs. ONNX Runtime's binary
// TreeEnsembleClassifier has returned wrong labels or a zero class-0
// probability depending on how the leaves are laid out, so binary models
// stay clear of it.
func (m *GBDT) ONNX() ([]byte, error) {
	g := onnx.NewGraph("mlsteps_gbdt")
	x := g.Input(InputName, onnx.Float, -1, int64(len(m.Features)))
	attrs, leaves := m.nodeAttrs()
	k := int64(len(m.Classes))
	switch {
	case k == 0:
		g.NodeTo(onnx.DomainML, "TreeEnsembleRegressor", []string{x}, []string{OutputPrediction},
			append(attrs, leafAttrs("target", leaves)...,
			)...)
		g.Output(OutputPrediction, onnx.Float, -1, 1)
	case len(m.Base) == 1:
		z := g.Node(onnx.DomainML, "TreeEnsembleRegressor", []string{x}, append(attrs, leafAttrs("target", leaves)...)...)
		p1 := g.Op("Sigmoid", g.Cast(z, onnx.Double))
		probs := g.Node("", "Concat", []string{g.Op("Sub", g.ConstDouble(1), p1), p1}, onnx.AttrInt("axis", 1))
		g.NodeTo("", "ArgMax", []string{probs}, []string{OutputLabel}, onnx.AttrInt("axis", 1), onnx.AttrInt("keepdims", 0))
		g.NodeTo("", "Cast", []string{probs}, []string{OutputProbability}, onnx.AttrInt("to", int64(onnx.Float)))
		g.Output(OutputProbability, onnx.Float, -1, 2)
		g.Output(OutputLabel, onnx.Int64, -1)
	default:
		labels := make([]int64, k)
		for i := range labels {
			labels[i] = int64(i)
		}
		attrs = append(attrs, leafAttrs("class", leaves)...)
		attrs = append(attrs, onnx.AttrInts("classlabels_int64s", labels), onnx.AttrString("post_transform", "SOFTMAX"))
		g.NodeTo(onnx.DomainML, "TreeEnsembleClassifier", []string{x}, []string{OutputLabel, OutputProbability}, attrs...)
		g.Output(OutputLabel, onnx.Int64, -1)
		g.Output(OutputProbability, onnx.Float, -1, k)
	}
	return finish(g, m.Features, m.Classes, "mlsteps gradient-boosted trees")
}

// leafList is the leaves of every tree: the target_* or class_* attributes.
type leafList struct {
	trees, nodes, ids []int64
	weights           []float32
}

func leafAttrs(prefix string, l leafList) []*onnxpb.AttributeProto {
	return []*onnxpb.AttributeProto{
		onnx.AttrInts(prefix+"_treeids", l.trees), onnx.AttrInts(prefix+"_nodeids", l.nodes),
		onnx.AttrInts(prefix+"_ids", l.ids), onnx.AttrFloats(prefix+"_weights", l.weights),
	}
}

// nodeAttrs lays out every node (nodes_*, base_values and, for a
// regressor, n_targets) and returns the leaves.
func (m *GBDT) nodeAttrs() ([]*onnxpb.AttributeProto, leafList) {
	var (
		treeIDs, nodeIDs, feats, trues, falses, missing []int64
		values                                          []float32
		modes                                           []string
		leaves                                          leafList
	)
	k := len(m.Base)
	for t, tree := range m.Trees {
		for id, n := range tree.Nodes {
			treeIDs, nodeIDs = append(treeIDs, int64(t)), append(nodeIDs, int64(id))
			if n.Feature < 0 {
				feats, values, modes = append(feats, 0), append(values, 0), append(modes, "LEAF")
				trues, falses, missing = append(trues, 0), append(falses, 0), append(missing, 0)
				leaves.trees, leaves.nodes = append(leaves.trees, int64(t)), append(leaves.nodes, int64(id))
				leaves.ids, leaves.weights = append(leaves.ids, int64(t%k)), append(leaves.weights, n.Value)
				continue
			}
			feats, values, modes = append(feats, int64(n.Feature)), append(values, n.Threshold), append(modes, "BRANCH_LEQ")
			trues, falses = append(trues, int64(n.Left)), append(falses, int64(n.Right))
			tracks := int64(0)
			if n.MissingLeft {
				tracks = 1
			}
			missing = append(missing, tracks)
		}
	}
	attrs := []*onnxpb.AttributeProto{
		onnx.AttrInts("nodes_treeids", treeIDs), onnx.AttrInts("nodes_nodeids", nodeIDs),
		onnx.AttrInts("nodes_featureids", feats), onnx.AttrFloats("nodes_values", values),
		onnx.AttrStrings("nodes_modes", modes), onnx.AttrInts("nodes_truenodeids", trues),
		onnx.AttrInts("nodes_falsenodeids", falses), onnx.AttrInts("nodes_missing_value_tracks_true", missing),
		onnx.AttrFloats("base_values", m.Base),
	}
	if len(m.Classes) == 0 || k == 1 {
		attrs = append(attrs, onnx.AttrInt("n_targets", 1), onnx.AttrString("aggregate_function", "SUM"))
	}
	return attrs, leaves
}
