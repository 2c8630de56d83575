package lineage_test

import (
	"context"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/orchestrate/lineage"
)

// TestS3 runs the same pipeline with its root on a real S3-compatible
// server: the walk, the index and verify see what they see on file://.
func TestS3(t *testing.T) {
	s3 := testenv.StartS3(t)
	f := newFixtureAt(t, artifacts.MustParseURI(s3.URL("pipeline")))
	ctx := context.Background()
	blob := lineage.NewBlobSource(f.store, &f.root)
	ix, err := lineage.OpenIndex(ctx, sqliteURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if st, err := ix.Update(ctx, f.store, f.root, lineage.UpdateOptions{}); err != nil || st.Read != 12 {
		t.Fatalf("index of the S3 root: %+v %v", st, err)
	}
	for _, name := range []string{"data0", "stats1", "schema0"} {
		want, err := lineage.Query(ctx, blob, f.uri[name], lineage.Options{Direction: lineage.Both})
		if err != nil {
			t.Fatal(err)
		}
		got, err := lineage.Query(ctx, ix, f.uri[name], lineage.Options{Direction: lineage.Both})
		if err != nil {
			t.Fatal(err)
		}
		if asJSON(t, want) != asJSON(t, got) || len(want.Executions) < 2 {
			t.Errorf("%s: index and walk differ on S3 (or too small):\n%s\n%s", name, asJSON(t, got), asJSON(t, want))
		}
	}
	if problems, err := lineage.Verify(ctx, f.store, f.root, lineage.VerifyOptions{}); err != nil || len(problems) != 0 {
		t.Fatalf("fresh S3 store: %v %v", problems, err)
	}
	// Delete one artifact's sidecar: verify sees missing links, the index drops it.
	u := artifacts.MustParseURI(f.uri["stats0"])
	b, err := f.store.Bucket(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, u.Join(artifacts.SidecarName).Path); err != nil {
		t.Fatal(err)
	}
	problems, err := lineage.Verify(ctx, f.store, f.root, lineage.VerifyOptions{SkipPayload: true})
	if err != nil {
		t.Fatal(err)
	}
	// stats0 is linked from its run's record (output), the schema sidecar and record (inputs).
	if len(problems) != 3 || problems[0].Kind != lineage.ProblemMissing {
		t.Errorf("after deleting stats0 on S3: %v", problems)
	}
	if st, err := ix.Update(ctx, f.store, f.root, lineage.UpdateOptions{}); err != nil || st.Removed != 1 || st.Read != 0 {
		t.Errorf("update after the delete: %+v %v", st, err)
	}
}
