package artifacts_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/artifacts"
)

var partSchema = arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)

// numbers is a batch of the values lo..hi-1.
func numbers(lo, hi int64) arrow.RecordBatch {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	for v := lo; v < hi; v++ {
		b.Append(v)
	}
	col := b.NewArray()
	defer col.Release()
	return array.NewRecordBatch(partSchema, []arrow.Array{col}, hi-lo)
}

// writeParts writes a Dataset at u whose splits get one part per range
// (each [lo, hi) of numbers), cut with EndPart; an empty range adds no part.
func writeParts(ctx context.Context, store *artifacts.Store, u artifacts.URI, splits []string, ranges map[string][][2]int64) (*artifacts.Artifact, error) {
	w, err := store.Create(ctx, u, artifacts.TypePredictions, "predictions")
	if err != nil {
		return nil, err
	}
	dw, err := artifacts.NewDatasetWriter(ctx, w, partSchema, splits, artifacts.DatasetOptions{})
	if err != nil {
		return nil, err
	}
	for _, s := range splits {
		for _, r := range ranges[s] {
			rec := numbers(r[0], r[1])
			err := dw.Write(s, rec)
			rec.Release()
			if err != nil {
				return nil, err
			}
			if err := dw.EndPart(s); err != nil {
				return nil, err
			}
		}
	}
	if err := dw.Close(); err != nil {
		return nil, err
	}
	if _, err := w.Commit(ctx); err != nil {
		return nil, err
	}
	return store.Open(ctx, u, artifacts.TypePredictions)
}

// TestConcatDatasets: partials cut at the whole's part boundaries
// concatenate into the whole, digest included; empty partials and empty
// splits are handled as one writer handles them; PartRecords reads one
// part, PartRowCounts says where each part's rows sit.
func TestConcatDatasets(t *testing.T) {
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()
	root := artifacts.MustParseURI("mem://parts")
	splits := []string{"train", "eval", "empty"}
	whole, err := writeParts(ctx, store, root.Join("whole"), splits, map[string][][2]int64{
		"train": {{0, 10}, {10, 25}, {25, 26}}, "eval": {{100, 107}}})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := whole.PartRowCounts(ctx, "train")
	if err != nil || fmt.Sprint(counts) != "[10 15 1]" {
		t.Fatalf("part rows %v (%v)", counts, err)
	}
	var got []int64
	for rec, err := range whole.PartRecords(ctx, "train", "Split-train/part-00001.parquet", artifacts.ReadOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec.Column(0).(*array.Int64).Int64Values()...)
	}
	if len(got) != 15 || got[0] != 10 {
		t.Errorf("part 1 holds %v", got)
	}
	for rec, err := range whole.PartRecords(ctx, "eval", "Split-train/part-00001.parquet", artifacts.ReadOptions{}) {
		if err == nil || !strings.Contains(err.Error(), "no part") {
			t.Errorf("a part of another split: %v %v", rec, err)
		}
	}
	var parts []*artifacts.Artifact
	for i, r := range []map[string][][2]int64{
		{"train": {{0, 10}, {10, 25}}},
		{}, // a shard with nothing to do
		{"train": {{25, 26}}, "eval": {{100, 107}}},
	} {
		a, err := writeParts(ctx, store, root.Join(fmt.Sprintf("part-%d", i)), splits, r)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, a)
	}
	w, err := store.Create(ctx, root.Join("merged"), artifacts.TypePredictions, "predictions")
	if err != nil {
		t.Fatal(err)
	}
	if err := artifacts.ConcatDatasets(ctx, w, parts); err != nil {
		t.Fatal(err)
	}
	sc, err := w.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Digest != whole.Digest {
		t.Errorf("merged digest %s, whole %s", sc.Digest, whole.Digest)
	}
	merged, err := store.Open(ctx, root.Join("merged"), artifacts.TypePredictions)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := merged.Splits()
	ws, _ := whole.Splits()
	if fmt.Sprint(ms) != fmt.Sprint(ws) {
		t.Errorf("merged splits %v\nwhole %v", ms, ws)
	}

	// Partials of another shape are refused, naming the one that differs.
	odd, err := writeParts(ctx, store, root.Join("odd"), []string{"train"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, _ = store.Create(ctx, root.Join("bad"), artifacts.TypePredictions, "predictions")
	if err := artifacts.ConcatDatasets(ctx, w, []*artifacts.Artifact{parts[0], odd}); err == nil || !strings.Contains(err.Error(), "mem://parts/odd") {
		t.Errorf("concat of other splits: %v", err)
	}
}
