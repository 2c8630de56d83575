package local_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/orchestrate/lineage"
	"github.com/mlsteps/mlsteps/orchestrate/local"
	"github.com/mlsteps/mlsteps/steps/catalog"
	"github.com/mlsteps/mlsteps/steps/step"
)

// shardedExample is examples/sharded/pipeline.yaml, and the same pipeline
// with the shards taken out.
func shardedExample(t *testing.T) (sharded, whole string) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples", "sharded", "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sharded = string(data)
	whole = regexp.MustCompile(`(?m)^\s+shard(s|_by): .*\n`).ReplaceAllString(sharded, "")
	if whole == sharded {
		t.Fatal("the example has no shards")
	}
	return sharded, whole
}

// TestShardedPipeline runs examples/sharded (validate in 2 shards of part
// files, train --per-key in 3 shards by island, infer in 2 shards of part
// files) as child processes, and the same pipeline unsharded: the merged
// statistics (but for the report's links), schema, anomalies, model,
// predictions and dead letters have the unsharded digests. A second run is cached shard by shard and
// merge by merge, and the merged artifacts' lineage names their partials
// and the inputs the shards read.
func TestShardedPipeline(t *testing.T) {
	reg, err := catalog.Registry()
	if err != nil {
		t.Fatal(err)
	}
	shardedText, wholeText := shardedExample(t)
	params := map[string]string{"source": testenv.VegaData(t, "penguins.json")}
	dir := t.TempDir()
	run := func(text, root string) *local.Result {
		t.Helper()
		g := graph(t, reg, text)
		res, err := local.Run(context.Background(), g, reg, local.Options{Binary: testenv.Binary(t), Root: "file://" + filepath.Join(dir, root),
			Params: params, LogDir: filepath.Join(dir, root+"-logs")})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	sharded := run(shardedText, "sharded")
	if got := statuses(sharded); got != "import=succeeded validate=succeeded train=succeeded infer=succeeded" || sharded.ExitCode != 0 {
		t.Fatalf("sharded run: %s (exit %d)", got, sharded.ExitCode)
	}
	if v, n, m := len(sharded.Steps[1].Shards), len(sharded.Steps[2].Shards), len(sharded.Steps[3].Shards); v != 2 || n != 3 || m != 2 {
		t.Fatalf("validate ran %d shards, train %d, infer %d; want 2, 3 and 2", v, n, m)
	}
	whole := run(wholeText, "whole")
	if got := statuses(whole); got != "import=succeeded validate=succeeded train=succeeded infer=succeeded" {
		t.Fatalf("unsharded run: %s", got)
	}
	store := artifacts.NewStore()
	defer store.Close()
	for i, name := range []string{"import", "validate", "train", "infer"} {
		s, w := sharded.Steps[i], whole.Steps[i]
		if name == "validate" {
			// report.html links the examples by URI, which differ between
			// the two roots: the rest must be the same bytes.
			s, w = withoutReport(t, store, s), withoutReport(t, store, w)
		}
		if fmt.Sprint(s.Digests) != fmt.Sprint(w.Digests) {
			t.Errorf("%s: sharded digests %v, unsharded %v", name, s.Digests, w.Digests)
		}
	}
	again := run(shardedText, "sharded")
	if got := statuses(again); got != "import=cached validate=cached train=cached infer=cached" {
		t.Errorf("second run: %s", got)
	}
	for _, s := range slices.Concat(again.Steps[1].Shards, again.Steps[2].Shards) {
		if s.Status != local.Cached {
			t.Errorf("second run: %s %s", s.Name, s.Status)
		}
	}

	pred, err := store.Open(context.Background(), artifacts.MustParseURI(sharded.Steps[3].Outputs["predictions"]), artifacts.TypePredictions)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range pred.Inputs {
		names = append(names, in.Name)
	}
	for _, want := range []string{"predictions.shard-0000", "predictions.shard-0001", "dead_letters.shard-0001", "examples", "model"} {
		if !slices.Contains(names, want) {
			t.Errorf("merged predictions' lineage inputs %v lack %s", names, want)
		}
	}
	if pred.Producer.Parameters["merge"] != float64(2) {
		t.Errorf("merge producer parameters %v", pred.Producer.Parameters)
	}
	// The lineage walk finds both shards' executions and the merge's, and
	// every recorded link checks out.
	root := artifacts.MustParseURI("file://" + filepath.Join(dir, "sharded"))
	lg, err := lineage.Query(context.Background(), lineage.NewBlobSource(store, &root), sharded.Steps[3].Outputs["predictions"], lineage.Options{Direction: lineage.Up, Depth: 2})
	if err != nil {
		t.Fatal(err)
	}
	var runs []string
	for _, x := range lg.Executions {
		if x.Step == "infer" {
			runs = append(runs, fmt.Sprintf("shard=%v merge=%v", x.Parameters["shard"], x.Parameters["merge"]))
		}
	}
	slices.Sort(runs)
	if got := strings.Join(runs, "; "); got != "shard=0/2 merge=<nil>; shard=1/2 merge=<nil>; shard=<nil> merge=2" {
		t.Errorf("infer executions upstream of the merged predictions: %s", got)
	}
	problems, err := lineage.Verify(context.Background(), store, root, lineage.VerifyOptions{})
	if err != nil || len(problems) > 0 {
		t.Errorf("verify: %v %+v", err, problems)
	}
}

// withoutReport is a validate result whose statistics digest is replaced
// by statistics.json's own.
func withoutReport(t *testing.T, store *artifacts.Store, res *local.StepResult) *local.StepResult {
	t.Helper()
	a, err := store.Open(context.Background(), artifacts.MustParseURI(res.Outputs["statistics"]), artifacts.TypeStatistics)
	if err != nil {
		t.Fatal(err)
	}
	out := *res
	out.Digests = maps.Clone(res.Digests)
	for _, f := range a.Files {
		if f.Path == "statistics.json" {
			out.Digests["statistics"] = f.SHA256
		}
	}
	return &out
}

// TestShardRetriedAlone: a shard that fails once (the binary is wrapped
// so that shard 1/3's first attempt exits 1) is retried alone, per the
// step's retries; the other shards and the merge run once. Without
// retries the step fails naming the shard, and no merge runs.
func TestShardRetriedAlone(t *testing.T) {
	reg, err := catalog.Registry()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls.log")
	wrapper := filepath.Join(dir, "mlsteps-flaky")
	script := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %[1]q
case " $* " in
  *" --shard 1/3 "*) if [ ! -e %[2]q ]; then touch %[2]q; echo "mlsteps: injected failure of shard 1/3" >&2; exit 1; fi ;;
esac
exec %[3]q "$@"
`, calls, filepath.Join(dir, "failed-once"), testenv.Binary(t))
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	text := func(retries int) string {
		return fmt.Sprintf(`name: flaky
steps:
  - name: import
    step: import
    params: {source: %q, split: "train=0.8,eval=0.2", seed: 7}
  - name: train
    step: train
    inputs: {examples: "{{steps.import.outputs.examples}}"}
    params: {trainer: "builtin:gbdt", hparams: '{"trees": 5}', label: Species, per-key: Island, features: "Beak Length (mm),Body Mass (g)"}
    shards: 3
    shard_by: key
    retries: %d
`, testenv.VegaData(t, "penguins.json"), retries)
	}
	for _, retries := range []int{1, 0} {
		os.Remove(calls)
		os.Remove(filepath.Join(dir, "failed-once"))
		root := filepath.Join(dir, fmt.Sprintf("root-%d", retries))
		res, err := local.Run(context.Background(), graph(t, reg, text(retries)), reg, local.Options{Binary: wrapper, Root: "file://" + root, LogDir: root + "-logs"})
		if err != nil {
			t.Fatal(err)
		}
		log, _ := os.ReadFile(calls)
		count := func(s string) int { return strings.Count(string(log), s) }
		train := res.Steps[1]
		if retries == 0 {
			if train.Status != local.Failed || !strings.Contains(train.Reason, "shard 1 of 3") || count("--merge") != 0 || res.ExitCode != step.ExitFailed {
				t.Errorf("no retries: %s %q, %d merges", train.Status, train.Reason, count("--merge"))
			}
			continue
		}
		if train.Status != local.Succeeded || res.ExitCode != 0 {
			t.Fatalf("train %s: %s", train.Status, train.Reason)
		}
		for i, s := range train.Shards {
			want := 1
			if i == 1 {
				want = 2
			}
			if s.Attempts != want || s.Status != local.Succeeded {
				t.Errorf("shard %d: %d attempts, %s; want %d", i, s.Attempts, s.Status, want)
			}
		}
		if a, b, c, m := count("--shard 0/3"), count("--shard 1/3"), count("--shard 2/3"), count("--merge model="); a != 1 || b != 2 || c != 1 || m != 3 {
			t.Errorf("calls: shard 0 %d, shard 1 %d, shard 2 %d, merge partials %d; want 1, 2, 1 and 3 in one merge\n%s", a, b, c, m, log)
		}
	}
}
