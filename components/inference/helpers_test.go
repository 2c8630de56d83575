package inference_test

import (
	"context"
	"iter"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/tabular/tabulartest"
)

// Penguins' numeric columns, the features of the test models.
var features = []string{"Beak Length (mm)", "Beak Depth (mm)", "Flipper Length (mm)", "Body Mass (g)"}

var classes = []string{"Adelie", "Chinstrap", "Gentoo"}

// mlp builds MatMul+Add+Relu+MatMul+Add+Softmax over an [N,in] float
// input "x", with weights drawn from seed, and a [N,3] "probs" output.
func mlp(t testing.TB, in, hidden int, seed uint64) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	w := func(n int, scale float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = (r.Float32()*2 - 1) * scale
		}
		return v
	}
	g := onnx.NewGraph("mlp")
	x := g.Input("x", onnx.Float, -1, int64(in))
	h := g.Op("Relu", g.Op("Add", g.Op("MatMul", x, g.ConstFloats(w(in*hidden, 0.02), int64(in), int64(hidden))), g.ConstFloats(w(hidden, 1), int64(hidden))))
	z := g.Op("Add", g.Op("MatMul", h, g.ConstFloats(w(hidden*3, 0.5), int64(hidden), 3)), g.ConstFloats(w(3, 1), 3))
	g.NodeTo("", "Softmax", []string{z}, []string{"probs"}, onnx.AttrInt("axis", 1))
	g.Output("probs", onnx.Float, -1, 3)
	data, err := onnx.Marshal(g.Model())
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// trees builds a 3-class TreeEnsembleClassifier (ai.onnx.ml) over an
// [N,4] float input "x": trees depth-2 trees with leaf weights for every
// class, softmax post-transform; outputs "label" [N] int64 and "probs"
// [N,3]. Multi-class on purpose: DESIGN.md warns about binary ensembles.
func trees(t testing.TB, n int, seed uint64) []byte {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 11))
	thresholds := [4][2]float32{{39, 50}, {15, 19}, {190, 215}, {3500, 5000}}
	var (
		treeIDs, nodeIDs, featIDs, trueIDs, falseIDs []int64
		values                                       []float32
		modes                                        []string
		cTree, cNode, cID                            []int64
		cW                                           []float32
	)
	for tr := range int64(n) {
		for node := range int64(7) {
			treeIDs, nodeIDs = append(treeIDs, tr), append(nodeIDs, node)
			if node < 3 {
				f := r.IntN(4)
				th := thresholds[f]
				featIDs = append(featIDs, int64(f))
				values = append(values, th[0]+r.Float32()*(th[1]-th[0]))
				modes = append(modes, "BRANCH_LEQ")
				trueIDs, falseIDs = append(trueIDs, 2*node+1), append(falseIDs, 2*node+2)
				continue
			}
			featIDs, values, modes = append(featIDs, 0), append(values, 0), append(modes, "LEAF")
			trueIDs, falseIDs = append(trueIDs, 0), append(falseIDs, 0)
			for c := range int64(3) {
				cTree, cNode, cID = append(cTree, tr), append(cNode, node), append(cID, c)
				cW = append(cW, r.Float32())
			}
		}
	}
	g := onnx.NewGraph("trees")
	x := g.Input("x", onnx.Float, -1, 4)
	g.NodeTo(onnx.DomainML, "TreeEnsembleClassifier", []string{x}, []string{"label", "probs"},
		onnx.AttrInts("nodes_treeids", treeIDs), onnx.AttrInts("nodes_nodeids", nodeIDs),
		onnx.AttrInts("nodes_featureids", featIDs), onnx.AttrFloats("nodes_values", values),
		onnx.AttrStrings("nodes_modes", modes), onnx.AttrInts("nodes_truenodeids", trueIDs),
		onnx.AttrInts("nodes_falsenodeids", falseIDs), onnx.AttrInts("class_treeids", cTree),
		onnx.AttrInts("class_nodeids", cNode), onnx.AttrInts("class_ids", cID),
		onnx.AttrFloats("class_weights", cW), onnx.AttrInts("classlabels_int64s", []int64{0, 1, 2}),
		onnx.AttrString("post_transform", "SOFTMAX"))
	g.Output("label", onnx.Int64, -1)
	g.Output("probs", onnx.Float, -1, 3)
	data, err := onnx.Marshal(g.Model())
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// penguins reads penguins.json in records of batch rows.
func penguins(t testing.TB, batch int) []arrow.RecordBatch {
	_, recs := tabulartest.Load(t, "penguins.json", batch)
	return recs
}

func seq(recs []arrow.RecordBatch) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// noLeaks fails t if goroutines started during the test outlive it.
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// runOnce runs h over src with a fresh engine and unloads the model.
func runOnce(ctx context.Context, h inference.ModelHandler, o inference.Options, src iter.Seq2[arrow.RecordBatch, error], sink inference.Sink) (inference.Snapshot, error) {
	e := inference.New(h, o)
	defer e.Close()
	return e.Run(ctx, src, sink)
}
