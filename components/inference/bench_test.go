package inference_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
)

// benchBatches makes n batches of rows rows of penguin-like features, as
// Arrow records (one float32 column per feature) and as the ORT wrapper's
// pre-built [rows,4] input.
func benchBatches(n, rows int) ([]arrow.RecordBatch, [][]ort.Column) {
	r := rand.New(rand.NewPCG(1, 2))
	lo := []float32{32, 13, 172, 2700}
	hi := []float32{60, 22, 231, 6300}
	fields := make([]arrow.Field, len(features))
	for j, f := range features {
		fields[j] = arrow.Field{Name: f, Type: arrow.PrimitiveTypes.Float32}
	}
	schema := arrow.NewSchema(fields, nil)
	recs := make([]arrow.RecordBatch, n)
	cols := make([][]ort.Column, n)
	for i := range n {
		x := make([]float32, rows*len(features))
		arrs := make([]arrow.Array, len(features))
		for j := range features {
			b := array.NewFloat32Builder(memory.DefaultAllocator)
			for k := range rows {
				v := lo[j] + r.Float32()*(hi[j]-lo[j])
				b.Append(v)
				x[k*len(features)+j] = v
			}
			arrs[j] = b.NewArray()
			b.Release()
		}
		recs[i] = array.NewRecordBatch(schema, arrs, int64(rows))
		cols[i] = []ort.Column{{Name: "x", Width: int64(len(features)), Floats: x}}
	}
	return recs, cols
}

// benchRatio measures, in one run, the engine's rows/s against a plain
// loop of the ORT wrapper's Run on the same model, batches and thread
// settings, alternating rounds so drift hits both alike.
func benchRatio(b *testing.B, name string, model []byte, outputs []string, label string) {
	orttest.Init(b)
	const batch, nBatches, rounds = 64, 500, 9
	recs, cols := benchBatches(nBatches, batch)
	opts := ort.Options{IntraOpThreads: 1, InterOpThreads: 1}
	sess, err := ort.NewSessionWith(model, []string{"x"}, outputs, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Close()
	h := &inference.ONNXHandler{ID: name, Model: model, Session: opts, Inputs: []inference.Input{{Name: "x", Columns: features}},
		Classifier: &inference.Classifier{Classes: classes, Scores: "probs", Label: label}}
	eng := inference.New(h, inference.Options{MinBatch: batch, MaxBatch: batch, Workers: 1})
	defer eng.Close()
	// Warm both: the model loads once (and is kept, as in a long run), and
	// ORT's first runs on a session allocate.
	for range 2 {
		if _, err := eng.Run(context.Background(), seq(recs[:10]), inference.Sink{}); err != nil {
			b.Fatal(err)
		}
		for _, c := range cols[:10] {
			if _, err := sess.Run(batch, c); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Rounds alternate raw and engine; each side's fastest round counts,
	// which filters out the other processes sharing this machine.
	rawT, engT := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	var rows int64
	b.ResetTimer()
	for range b.N {
		for range rounds {
			start := time.Now()
			for _, c := range cols {
				if _, err := sess.Run(batch, c); err != nil {
					b.Fatal(err)
				}
			}
			rawT = min(rawT, time.Since(start))
			start = time.Now()
			_, err := eng.Run(context.Background(), seq(recs), inference.Sink{Result: func(r inference.Result) error {
				rows += int64(len(r.Rows))
				return nil
			}})
			if err != nil {
				b.Fatal(err)
			}
			engT = min(engT, time.Since(start))
		}
	}
	b.StopTimer()
	if want := int64(b.N * rounds * nBatches * batch); rows != want {
		b.Fatalf("engine answered %d rows of %d", rows, want)
	}
	total := float64(nBatches * batch)
	raw, engine := total/rawT.Seconds(), total/engT.Seconds()
	b.ReportMetric(engine, "rows/s")
	b.ReportMetric(engine/raw, "ratio")
	b.Logf("%s batch %d: engine %.0f rows/s, raw ORT Run loop %.0f rows/s, ratio %.3f (target >= 0.97)",
		name, batch, engine, raw, engine/raw)
}

// BenchmarkEngineVsRawMLP: a 4-64-3 MLP, where ORT's fixed cost per call
// dominates and the engine's per-batch work (Arrow in, columns out) shows.
func BenchmarkEngineVsRawMLP(b *testing.B) {
	benchRatio(b, "mlp 4-64-3", mlp(b, 4, 64, 1), []string{"probs"}, "")
}

// BenchmarkEngineVsRawMLPWide: a 4-512-3 MLP, more compute per call.
func BenchmarkEngineVsRawMLPWide(b *testing.B) {
	benchRatio(b, "mlp 4-512-3", mlp(b, 4, 512, 1), []string{"probs"}, "")
}

func BenchmarkEngineVsRawTrees(b *testing.B) {
	benchRatio(b, "trees 50x depth 2, 3 classes", trees(b, 50, 3), []string{"label", "probs"}, "label")
}

// BenchmarkKeyed: rows/s of the keyed handler with 10 keys (10 small MLPs)
// and max_models 2 against max_models 10, on the same batches; keys are
// drawn at random per row, so with 2 models loaded most groups reload.
func BenchmarkKeyed(b *testing.B) {
	orttest.Init(b)
	const batch, nBatches = 64, 100
	recs, _ := benchBatches(nBatches, batch)
	r := rand.New(rand.NewPCG(3, 4))
	keyed := make([]arrow.RecordBatch, len(recs))
	for i, rec := range recs {
		kb := array.NewStringBuilder(memory.DefaultAllocator)
		for range rec.NumRows() {
			kb.Append("k" + string(rune('0'+r.IntN(10))))
		}
		k := kb.NewArray()
		kb.Release()
		fields := append(rec.Schema().Fields(), arrow.Field{Name: "key", Type: arrow.BinaryTypes.String})
		keyed[i] = array.NewRecordBatch(arrow.NewSchema(fields, nil), append(rec.Columns(), k), rec.NumRows())
	}
	models := make([][]byte, 10)
	for i := range models {
		models[i] = mlp(b, 4, 64, uint64(i))
	}
	rate := map[int]float64{}
	loads := map[int]int{}
	for range b.N {
		for _, maxModels := range []int{10, 2} {
			h := &inference.KeyedHandler{KeyColumn: "key", MaxModels: maxModels, Sort: true}
			for i, m := range models {
				h.Models = append(h.Models, inference.KeyModel{Keys: []string{"k" + string(rune('0'+i))}, Handler: mlpHandler("m"+string(rune('0'+i)), m)})
			}
			eng := inference.New(h, inference.Options{MaxBatch: batch})
			start := time.Now()
			if _, err := eng.Run(context.Background(), seq(keyed), inference.Sink{}); err != nil {
				b.Fatal(err)
			}
			rate[maxModels] = float64(nBatches*batch) / time.Since(start).Seconds()
			loads[maxModels] = h.Loads()
			eng.Close()
			if h.PeakLoaded() > maxModels {
				b.Fatalf("max_models %d: %d loaded at once", maxModels, h.PeakLoaded())
			}
		}
	}
	b.ReportMetric(rate[2], "rows/s")
	b.Logf("keyed, 10 keys, batch %d: max_models 2 %.0f rows/s (%d loads), max_models 10 %.0f rows/s (%d loads), ratio %.3f",
		batch, rate[2], loads[2], rate[10], loads[10], rate[2]/rate[10])
}
