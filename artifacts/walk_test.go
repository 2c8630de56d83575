package artifacts_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
)

func TestWalk(t *testing.T) {
	ctx := context.Background()
	for _, raw := range []string{"mem://walk-test/root", "file://" + t.TempDir() + "/root"} {
		t.Run(raw[:4], func(t *testing.T) {
			store := artifacts.NewStore()
			defer store.Close()
			root := artifacts.MustParseURI(raw)
			w, err := store.Create(ctx, root.Join("a"), artifacts.TypeStatistics, "a")
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteFile(ctx, "statistics.json", []byte("{}")); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := store.WriteExecution(ctx, root, &artifacts.Execution{ID: "x1", Step: "s", Status: artifacts.StatusSucceeded, Started: time.Now()}); err != nil {
				t.Fatal(err)
			}
			var sidecars, records, all int
			err = store.Walk(ctx, root, func(e artifacts.Entry) error {
				all++
				if e.Version() == "" {
					t.Errorf("%s: empty version", e.URI)
				}
				if e.IsSidecar() {
					sidecars++
				}
				if e.IsExecutionRecord() {
					records++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if sidecars != 1 || records != 1 || all != 3 {
				t.Errorf("walk found %d blobs, %d sidecars, %d records; want 3, 1, 1", all, sidecars, records)
			}
		})
	}
}

func ExampleUpstreamLinks() {
	links := artifacts.UpstreamLinks([]artifacts.Input{
		{Name: "examples", Type: artifacts.TypeDataset, URI: "file:///runs/import/examples", Digest: "sha256:3de99d90cdfb5d11e3f7a06a23b6861bd0d96bd440e1953d89cc4d150ac95948"},
		{Name: "schema", Type: artifacts.TypeSchema, URI: "s3://bucket/runs/schema", Digest: "sha256:0123456789abcdef"},
	})
	for _, l := range links {
		fmt.Printf("%s -> %s %q\n", l.Text, l.URI, l.Href)
	}
	// Output:
	// examples: Dataset 3de99d90cdfb -> file:///runs/import/examples "file:///runs/import/examples/artifact.json"
	// schema: Schema 0123456789ab -> s3://bucket/runs/schema ""
}
