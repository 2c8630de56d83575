package artifactstest

import (
	"context"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
)

// Repart rewrites the Dataset at src into a new Dataset at dst whose parts
// hold n rows each (the importer cuts parts between its own read batches,
// which hold all of a small file), for tests of work split by part files.
func Repart(t testing.TB, ctx context.Context, store *artifacts.Store, src, dst artifacts.URI, n int64) artifacts.URI {
	t.Helper()
	a, err := store.Open(ctx, src, artifacts.TypeDataset)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := a.DatasetSchema(ctx)
	if err != nil {
		t.Fatal(err)
	}
	splits, err := a.Splits()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range splits {
		names = append(names, s.Name)
	}
	w, err := store.Create(ctx, dst, artifacts.TypeDataset, "examples")
	if err != nil {
		t.Fatal(err)
	}
	dw, err := artifacts.NewDatasetWriter(ctx, w, schema, names, artifacts.DatasetOptions{RowsPerPart: n})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		for rec, err := range a.Records(ctx, name, artifacts.ReadOptions{BatchSize: n}) {
			if err != nil {
				t.Fatal(err)
			}
			if err := dw.Write(name, rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return dst
}
