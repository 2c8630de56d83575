package lineage_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/orchestrate/lineage"
)

// FuzzRecords feeds arbitrary bytes as a sidecar and an execution record
// (blobs anyone with write access to the store can change): the walk,
// queries and verify must report, never panic. Verify stays inside the
// root so fuzzed URIs never reach the network or the local disk.
func FuzzRecords(f *testing.F) {
	f.Add([]byte(`{"schema_version":1,"type":"Dataset","name":"x","uri":"mem://fz/r/a","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","files":[],"inputs":[{"name":"in","uri":"mem://fz/r/b","digest":"d"}],"producer":{"step":"s","execution_id":"e1"}}`),
		[]byte(`{"id":"e1","step":"s","inputs":[{"name":"in","uri":"mem://fz/r/a","digest":"d"}],"outputs":[{"name":"o","uri":"mem://fz/r/a","digest":"x"}],"status":"succeeded"}`))
	f.Add([]byte(`{}`), []byte(`{"id":""}`))
	f.Add([]byte(`not json`), []byte(`[1,2]`))
	n := 0
	f.Fuzz(func(t *testing.T, sidecar, record []byte) {
		ctx := context.Background()
		store := artifacts.NewStore()
		defer store.Close()
		n++
		root := artifacts.MustParseURI(fmt.Sprintf("mem://fz/r%d", n))
		b, err := store.Bucket(ctx, root)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.WriteAll(ctx, root.Join("a", artifacts.SidecarName).Path, sidecar, nil); err != nil {
			t.Fatal(err)
		}
		if err := b.WriteAll(ctx, artifacts.ExecutionURI(root, "e1").Path, record, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := lineage.Verify(ctx, store, root, lineage.VerifyOptions{RootOnly: true}); err != nil {
			t.Fatalf("verify failed instead of reporting: %v", err)
		}
		src := lineage.NewBlobSource(store, &root)
		g, err := lineage.Query(ctx, src, root.Join("a").String(), lineage.Options{Direction: lineage.Both})
		if err == nil {
			for _, format := range lineage.Formats {
				if err := lineage.Render(discard{}, g, format, lineage.Both); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
