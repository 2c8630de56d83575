package lineage_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/orchestrate/lineage"
)

// synthStore writes chains×length executions as a pipeline would leave
// them: each execution reads the previous one's output in its chain and
// writes one artifact, with the sidecar and the execution record written
// through the artifacts package's types. Payload files are listed in the
// sidecars but not written (lineage never reads them; verify would).
func synthStore(tb testing.TB, dir string, chains, length int) (root artifacts.URI, last string) {
	tb.Helper()
	root = artifacts.MustParseURI("file://" + dir)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(path string, v any) {
		data, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil && !os.IsExist(err) {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	for c := range chains {
		// One root per chain (as a pipeline run with one output root):
		// records share its executions folder, which keeps the folder
		// count, and so the time to write and delete the store, down.
		chainDir := filepath.Join(dir, fmt.Sprintf("chain%03d", c))
		if err := os.MkdirAll(filepath.Join(chainDir, artifacts.ExecutionsDir), 0o755); err != nil {
			tb.Fatal(err)
		}
		var prev *artifacts.Input
		for i := range length {
			n := c*length + i
			id := fmt.Sprintf("%s-%06d", t0.Add(time.Duration(n)*time.Second).Format("20060102T150405.000000Z"), n)
			outDir := filepath.Join(chainDir, fmt.Sprintf("step%03d", i))
			sum := sha256.Sum256([]byte(id))
			files := []artifacts.File{{Path: "data.json", Size: 100, SHA256: hex.EncodeToString(sum[:])}}
			uri := "file://" + outDir
			out := artifacts.Input{Name: "out", Type: artifacts.TypeStatistics, URI: uri, Digest: artifacts.ContentDigest(files)}
			params := map[string]any{"chain": c, "index": i}
			var inputs []artifacts.Input
			if prev != nil {
				in := *prev
				in.Name = "in"
				inputs = []artifacts.Input{in}
			}
			at := t0.Add(time.Duration(n) * time.Second)
			write(filepath.Join(outDir, artifacts.SidecarName), &artifacts.Sidecar{SchemaVersion: artifacts.SchemaVersion,
				Type: out.Type, Name: "out", URI: uri, Created: at, Digest: out.Digest, Files: files,
				Producer: &artifacts.Producer{Step: "synth", Version: "1", ExecutionID: id, Parameters: params, Started: at, Ended: at}, Inputs: inputs})
			write(filepath.Join(chainDir, artifacts.ExecutionsDir, id+".json"), &artifacts.Execution{ID: id, Step: "synth", Version: "1",
				Parameters: params, Inputs: inputs, Outputs: []artifacts.Input{out}, Status: artifacts.StatusSucceeded, Started: at, Ended: at})
			prev = &out
			last = uri
		}
	}
	return root, last
}

// BenchmarkLineage times an upstream query (100 executions deep) on a
// store of 10,000 executions: from the blob walk, and from SQLite and
// PostgreSQL indexes, with the time to build each index, in one run.
func BenchmarkLineage(b *testing.B) {
	const chains, length = 100, 100
	ctx := context.Background()
	root, last := synthStore(b, b.TempDir(), chains, length)
	store := artifacts.NewStore()
	defer store.Close()
	opts := lineage.Options{Direction: lineage.Up}
	check := func(g *lineage.Graph, err error) {
		if err != nil {
			b.Fatal(err)
		}
		if len(g.Executions) != length {
			b.Fatalf("upstream has %d executions, want %d", len(g.Executions), length)
		}
	}
	timeIt := func(f func()) time.Duration {
		start := time.Now()
		f()
		return time.Since(start)
	}
	b.ResetTimer()
	for range b.N {
		walk := timeIt(func() {
			check(lineage.Query(ctx, lineage.NewBlobSource(store, &root), last, opts))
		})
		line := fmt.Sprintf("lineage on %d executions, upstream %d deep: blob walk %v", chains*length, length, walk.Round(time.Millisecond))
		b.ReportMetric(walk.Seconds(), "walk-s")
		dbs := []struct{ name, url string }{{"sqlite", sqliteURL(b)}}
		if pg, ok := pgForBench(b); ok {
			dbs = append(dbs, struct{ name, url string }{"postgres", pg})
		} else {
			line += "; postgres absent, not measured"
		}
		for _, db := range dbs {
			ix, err := lineage.OpenIndex(ctx, db.url)
			if err != nil {
				b.Fatal(err)
			}
			var st lineage.UpdateStats
			build := timeIt(func() {
				if st, err = ix.Update(ctx, store, root, lineage.UpdateOptions{}); err != nil {
					b.Fatal(err)
				}
			})
			if st.Read != 2*chains*length {
				b.Fatalf("%s index read %d records, want %d", db.name, st.Read, 2*chains*length)
			}
			again := timeIt(func() {
				if _, err = ix.Update(ctx, store, root, lineage.UpdateOptions{}); err != nil {
					b.Fatal(err)
				}
			})
			query := timeIt(func() { check(lineage.Query(ctx, ix, last, opts)) })
			ix.Close()
			b.ReportMetric(query.Seconds(), db.name+"-query-s")
			b.ReportMetric(build.Seconds(), db.name+"-index-s")
			testenv.BenchRow(b, testenv.Row{Issue: 12, Figure: fmt.Sprintf("lineage upstream query, %d executions, %d deep, %s index", chains*length, length, db.name),
				Ours: query.Seconds() * 1000, Unit: "ms", Reference: "blob walk (no index)", Ref: walk.Seconds() * 1000, Ratio: walk.Seconds() / query.Seconds(), Better: "higher"})
			line += fmt.Sprintf("; %s: query %v (%.0fx faster than the walk), index build %v, re-index with nothing new %v",
				db.name, query.Round(time.Microsecond), walk.Seconds()/query.Seconds(), build.Round(time.Millisecond), again.Round(time.Millisecond))
		}
		b.Logf("%s", line)
	}
}

// pgForBench is pgSchema for benchmarks: outside CI an absent server is
// noted rather than a failure.
func pgForBench(b *testing.B) (string, bool) {
	if os.Getenv("CI") != "true" && !pgReachable() {
		return "", false
	}
	return pgSchema(b), true
}
