package inference_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
)

// withKey adds a string column "key" = "k<row mod 10>" to penguins records.
func withKey(recs []arrow.RecordBatch) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	row := 0
	for _, rec := range recs {
		b := array.NewStringBuilder(memory.DefaultAllocator)
		for range rec.NumRows() {
			b.Append("k" + strconv.Itoa(row%10))
			row++
		}
		k := b.NewArray()
		b.Release()
		fields := append(rec.Schema().Fields(), arrow.Field{Name: "key", Type: arrow.BinaryTypes.String})
		out = append(out, array.NewRecordBatch(arrow.NewSchema(fields, nil), append(rec.Columns(), k), rec.NumRows()))
	}
	return out
}

func mlpHandler(id string, model []byte) *inference.ONNXHandler {
	return &inference.ONNXHandler{ID: id, Model: model, Inputs: []inference.Input{{Name: "x", Columns: features}},
		Classifier: &inference.Classifier{Classes: classes, Scores: "probs"}}
}

// TestKeyed maps 10 keys to 5 models (two keys each) and caps loaded
// models at 2: the handler never holds more than 2, and every row gets its
// key's model's answer (checked against a direct ORT call).
func TestKeyed(t *testing.T) {
	orttest.Init(t)
	recs := withKey(penguins(t, 64))
	models := make([][]byte, 5)
	want := make([][][][]float32, 5)
	for i := range models {
		models[i] = mlp(t, 4, 16, uint64(100+i))
		want[i] = direct(t, models[i], []string{"probs"}, recs)
	}
	for _, sorted := range []bool{false, true} {
		t.Run(fmt.Sprintf("sort=%v", sorted), func(t *testing.T) {
			noLeaks(t)
			h := &inference.KeyedHandler{KeyColumn: "key", MaxModels: 2, Sort: sorted}
			for i, m := range models {
				h.Models = append(h.Models, inference.KeyModel{
					Keys:    []string{"k" + strconv.Itoa(2*i), "k" + strconv.Itoa(2*i+1)},
					Handler: mlpHandler("m"+strconv.Itoa(i), m)})
			}
			c := newCollect()
			snap, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 32, Workers: 2, Passthrough: []string{"key"}}, seq(recs), c.sink())
			if err != nil {
				t.Fatal(err)
			}
			if h.PeakLoaded() > 2 || h.PeakLoaded() < 1 || h.Loaded() != 0 {
				t.Errorf("peak loaded %d, loaded after the run %d", h.PeakLoaded(), h.Loaded())
			}
			if c.dups != 0 || len(c.results)+len(c.dead) != len(want[0]) {
				t.Fatalf("%d predicted + %d dead of %d, %d twice", len(c.results), len(c.dead), len(want[0]), c.dups)
			}
			for row := range want[0] {
				m := row % 10 / 2
				w := want[m][row]
				got := c.results[int64(row)]
				if w == nil {
					if got != nil {
						t.Errorf("row %d with a null feature predicted", row)
					}
					continue
				}
				if got["model_id"] != "m"+strconv.Itoa(m) || got["key"] != "k"+strconv.Itoa(row%10) {
					t.Fatalf("row %d: %v", row, got)
				}
				for j, cl := range classes {
					if got["score_"+cl] != str32(w[0][j]) {
						t.Fatalf("row %d score %s: got %s, want %s", row, cl, got["score_"+cl], str32(w[0][j]))
					}
				}
			}
			var inferred int64
			for i := range models {
				inferred += snap["m"+strconv.Itoa(i)].NumInferences
			}
			if inferred != int64(len(c.results)) || snap["keyed"].NumInferences != inferred {
				t.Errorf("per-model inferences sum to %d, keyed %d, results %d", inferred, snap["keyed"].NumInferences, len(c.results))
			}
			t.Logf("sort=%v: %d loads for %d rows, peak %d loaded", sorted, h.Loads(), len(c.results), h.PeakLoaded())
		})
	}
}

func TestKeyedUnknownKey(t *testing.T) {
	noLeaks(t)
	vals := []int64{1, 2, 3, 4}
	recs := ints(vals, 4)
	b := array.NewStringBuilder(memory.DefaultAllocator)
	b.AppendValues([]string{"a", "zzz", "a", ""}, []bool{true, true, true, false})
	k := b.NewArray()
	rec := array.NewRecordBatch(arrow.NewSchema(append(recs[0].Schema().Fields(), arrow.Field{Name: "key", Type: arrow.BinaryTypes.String}), nil),
		append(recs[0].Columns(), k), 4)
	h := &inference.KeyedHandler{KeyColumn: "key", MaxModels: 1, Models: []inference.KeyModel{{Keys: []string{"a"}, Handler: &doubler{}}}}
	c := newCollect()
	if _, err := runOnce(context.Background(), h, inference.Options{}, seq([]arrow.RecordBatch{rec}), c.sink()); err != nil {
		t.Fatal(err)
	}
	if c.results[0]["y"] != "2" || c.results[2]["y"] != "6" || c.dead[1] != `no model for key "zzz"` || c.dead[3] != `key column "key" is null` {
		t.Errorf("results %v, dead %v", c.results, c.dead)
	}
}

// TestSplit checks the A/B split: proportions within 1% of the weights on
// 100k keys, and the same key always in the same arm.
func TestSplit(t *testing.T) {
	for _, weights := range [][]float64{{0.9, 0.1}, {1, 1, 2}, {0.5, 0, 0.5}} {
		s, err := inference.NewSplit(weights)
		if err != nil {
			t.Fatal(err)
		}
		const n = 100_000
		counts := make([]int, len(weights))
		var sum float64
		for _, w := range weights {
			sum += w
		}
		for i := range n {
			key := "user-" + strconv.Itoa(i)
			a := s.Arm(key)
			if s.Arm(key) != a {
				t.Fatalf("key %s changed arm", key)
			}
			counts[a]++
		}
		for i, w := range weights {
			if got := float64(counts[i]) / n; math.Abs(got-w/sum) > 0.01 {
				t.Errorf("weights %v: arm %d got %.4f, want %.4f", weights, i, got, w/sum)
			}
		}
	}
	for _, bad := range [][]float64{{0, 0}, {-1, 2}, {math.NaN()}} {
		if _, err := inference.NewSplit(bad); err == nil {
			t.Errorf("weights %v accepted", bad)
		}
	}
}

// TestAB runs champion and challenger MLPs split by key: each row is tagged
// with its arm, answered by that arm's model, and a key's arm matches Split.
func TestAB(t *testing.T) {
	orttest.Init(t)
	noLeaks(t)
	recs := withKey(penguins(t, 64))
	champ, chall := mlp(t, 4, 16, 7), mlp(t, 4, 16, 8)
	want := map[string][][][]float32{"champion": direct(t, champ, []string{"probs"}, recs), "challenger": direct(t, chall, []string{"probs"}, recs)}
	h := &inference.ABHandler{KeyColumn: "key", Arms: []inference.Arm{
		{Name: "champion", Weight: 0.6, Handler: mlpHandler("champ-v3", champ)},
		{Name: "challenger", Weight: 0.4, Handler: mlpHandler("chall-v1", chall)}}}
	split, _ := inference.NewSplit([]float64{0.6, 0.4})
	c := newCollect()
	snap, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 50, Workers: 2, Passthrough: []string{"key"}}, seq(recs), c.sink())
	if err != nil {
		t.Fatal(err)
	}
	arms := map[string]int{}
	for row, got := range c.results {
		arm := []string{"champion", "challenger"}[split.Arm(got["key"])]
		if got["arm"] != arm {
			t.Fatalf("row %d: arm %q, want %q", row, got["arm"], arm)
		}
		arms[arm]++
		w := want[arm][row][0]
		for j, cl := range classes {
			if got["score_"+cl] != str32(w[j]) {
				t.Fatalf("row %d %s score %s: got %s, want %s", row, arm, cl, got["score_"+cl], str32(w[j]))
			}
		}
	}
	if arms["champion"] == 0 || arms["challenger"] == 0 || len(c.results)+len(c.dead) != 344 {
		t.Errorf("arms %v, %d dead", arms, len(c.dead))
	}
	if snap["champ-v3"].NumInferences != int64(arms["champion"]) || snap["chall-v1"].NumInferences != int64(arms["challenger"]) {
		t.Errorf("metrics %v vs arms %v", snap, arms)
	}
	_ = ort.Options{}
}
