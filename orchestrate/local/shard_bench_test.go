package local_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/orchestrate/local"
	"github.com/mlsteps/mlsteps/steps/catalog"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/step"
)

// BenchmarkShardedInferFlights: `infer` on flights-3m (3,000,000 rows in
// 12 parts of 250,000) with the fixture regression model, run by the
// local runner as one process and as 2 shards (child processes at once)
// plus their merge, uncached; one iteration is both runs. It reports the
// wall times, their ratio (the reference is the unsharded run in the same
// iteration), and the merge's own wall time (a process that copies the
// partials' part files into one artifact).
func BenchmarkShardedInferFlights(b *testing.B) {
	orttest.Init(b)
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()
	dir := b.TempDir()
	root := artifacts.MustParseURI(dir)
	inv := step.Invocation{OutRoot: root.Join("data").String(), Params: map[string]any{"source": testenv.VegaData(b, "flights-3m.parquet"),
		"split": "all=1", "rows-per-part": int64(250_000)}}
	if err := step.Execute(ctx, importer.Spec(), inv, step.Env{Store: store}); err != nil {
		b.Fatal(err)
	}
	inv = step.Invocation{OutRoot: root.Join("model").String(), Params: map[string]any{"source": filepath.Join(testenv.RepoRoot(b), "testdata", "models", "flights-delay.onnx")}}
	if err := step.Execute(ctx, importer.ModelSpec(), inv, step.Env{Store: store}); err != nil {
		b.Fatal(err)
	}
	text := func(shards string) string {
		return fmt.Sprintf(`name: flights
steps:
  - name: infer
    step: infer
    inputs: {examples: %q, model: %q}
    params: {batch-max: 1024}
%s`, root.Join("data", "examples").String(), root.Join("model", "model").String(), shards)
	}
	shardedVsWhole(b, "infer", text)
}

// BenchmarkShardedValidateFlights: `validate` on flights-3m (3,000,000
// rows in 12 parts of 250,000), run by the local runner as one process and
// as 2 shards (child processes at once) plus their merge, uncached; one
// iteration is both runs. It reports the wall times, their ratio (the
// reference is the unsharded run in the same iteration), and the merge's
// own wall time (a process that decodes and merges the shards' statistics
// states, then infers the schema, checks anomalies and writes the
// statistics, report, schema and anomalies).
func BenchmarkShardedValidateFlights(b *testing.B) {
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()
	dir := b.TempDir()
	root := artifacts.MustParseURI(dir)
	inv := step.Invocation{OutRoot: root.Join("data").String(), Params: map[string]any{"source": testenv.VegaData(b, "flights-3m.parquet"),
		"split": "all=1", "rows-per-part": int64(250_000)}}
	if err := step.Execute(ctx, importer.Spec(), inv, step.Env{Store: store}); err != nil {
		b.Fatal(err)
	}
	text := func(shards string) string {
		return fmt.Sprintf(`name: flights
steps:
  - name: validate
    step: validate
    inputs: {examples: %q}
    params: {fail-on: never}
%s`, root.Join("data", "examples").String(), shards)
	}
	shardedVsWhole(b, "validate", text)
}

// shardedVsWhole runs the one-step pipeline text makes, uncached, as one
// process and as 2 shards plus their merge, and reports both wall times,
// their ratio and the merge's own time.
func shardedVsWhole(b *testing.B, stepName string, text func(shards string) string) {
	reg, err := catalog.Registry()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dir := b.TempDir()
	bin := testenv.Binary(b)
	build, err := local.BinaryDigest(bin)
	if err != nil {
		b.Fatal(err)
	}
	var whole, sharded, merge time.Duration
	for i := range b.N {
		for _, tc := range []struct {
			name, shards string
			wall         *time.Duration
		}{{"whole", "", &whole}, {"sharded", "    shards: 2\n", &sharded}} {
			out := filepath.Join(dir, fmt.Sprintf("%s-%d", tc.name, i))
			opts := local.Options{Binary: bin, BuildID: build, Root: "file://" + out, LogDir: out + "-logs", NoCache: true}
			start := time.Now()
			res, err := local.Run(ctx, graph(b, reg, text(tc.shards)), reg, opts)
			if err != nil || res.ExitCode != 0 {
				b.Fatalf("%s: %v %s", tc.name, err, statuses(res))
			}
			*tc.wall += time.Since(start)
			merge += res.Steps[0].MergeDuration
		}
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64(whole.Milliseconds())/float64(b.N), "unsharded-ms")
	b.ReportMetric(float64(sharded.Milliseconds())/float64(b.N), "2-shards-ms")
	b.ReportMetric(float64(merge.Milliseconds())/float64(b.N), "merge-ms")
	b.ReportMetric(float64(sharded)/float64(whole), "sharded/unsharded")
	testenv.BenchRow(b, testenv.Row{Issue: 13, Figure: stepName + " flights-3m (12 parts), 2 shards as local processes + merge", Ours: (sharded / n).Seconds(), Unit: "s",
		Reference: "unsharded, one process", Ref: (whole / n).Seconds(), Ratio: float64(whole) / float64(sharded), Better: "higher"})
	testenv.BenchRow(b, testenv.Row{Issue: 13, Figure: stepName + " shard merge alone (12 parts)", Ours: (merge / n).Seconds() * 1000, Unit: "ms"})
	b.Logf("%s flights-3m (12 parts), local processes: unsharded %v, 2 shards + merge %v (%.2fx the unsharded time), merge alone %v", stepName,
		(whole / n).Round(time.Millisecond), (sharded / n).Round(time.Millisecond), float64(sharded)/float64(whole), (merge / n).Round(time.Millisecond))
}
