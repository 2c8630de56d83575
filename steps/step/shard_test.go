package step_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/steps/step"
)

func TestParseShard(t *testing.T) {
	for text, want := range map[string]string{"0/1": "0/1", " 2/3 ": "2/3", "3/3": "", "-1/2": "", "1": "", "a/b": "", "0/0": ""} {
		sh, err := step.ParseShard(text)
		switch {
		case want == "" && (err == nil || step.ExitCode(err) != step.ExitUsage):
			t.Errorf("%q: %v, %v; want a usage error", text, sh, err)
		case want != "" && (err != nil || sh.String() != want):
			t.Errorf("%q: %v, %v; want %s", text, sh, err, want)
		}
	}
}

// TestShardRange: the shards' ranges are contiguous, in order, cover every
// item once and differ in size by at most one, for any count of items.
func TestShardRange(t *testing.T) {
	for items := range 30 {
		for n := 1; n <= 9; n++ {
			next, lo0, hi0 := 0, items, 0
			for i := range n {
				lo, hi := step.Shard{Index: i, Count: n}.Range(items)
				if lo != next || hi < lo {
					t.Fatalf("%d items, shard %d/%d: [%d, %d) after %d", items, i, n, lo, hi, next)
				}
				lo0, hi0 = min(lo0, hi-lo), max(hi0, hi-lo)
				next = hi
			}
			if next != items || hi0-lo0 > 1 {
				t.Fatalf("%d items in %d shards: ends at %d, sizes %d..%d", items, n, next, lo0, hi0)
			}
		}
	}
	if got := strings.Join(step.Shards(3), ","); got != "0/3,1/3,2/3" {
		t.Errorf("Shards(3) = %s", got)
	}
}

// TestShardingContract: a bad Sharding declaration is refused, and a step
// that does not declare one refuses --shard and --merge.
func TestShardingContract(t *testing.T) {
	merge := func(context.Context, *step.Run) error { return nil }
	for _, sh := range []*step.Sharding{
		{By: "rows", Input: "examples", Merge: merge},
		{By: step.ShardByParts, Input: "schema", Merge: merge},
		{By: step.ShardByParts, Input: "examples"},
	} {
		spec := echoSpec()
		spec.Shard = sh
		if err := spec.Validate(); err == nil {
			t.Errorf("%+v accepted", sh)
		}
	}
	spec := echoSpec()
	spec.Params = append(spec.Params, step.Param{Name: "shard", Type: step.String})
	if err := spec.Validate(); err == nil {
		t.Error("a parameter named shard (reserved) accepted")
	}
	store := artifacts.NewStore()
	defer store.Close()
	for _, inv := range []step.Invocation{
		{OutRoot: "mem://x/a", Shard: &step.Shard{Index: 0, Count: 2}},
		{OutRoot: "mem://x/b", Merge: map[string][]string{"statistics": {"mem://x/c"}}},
	} {
		err := step.Execute(context.Background(), echoSpec(), inv, step.Env{Store: store})
		if err == nil || !strings.Contains(err.Error(), "does not shard") || step.ExitCode(err) != step.ExitUsage {
			t.Errorf("%+v: %v", inv, err)
		}
	}
}

func TestParseMergeList(t *testing.T) {
	got, err := step.ParseMergeList(`["s3://b/a?region=x,y", "s3://b/b"]`)
	if err != nil || len(got) != 2 || got[0] != "s3://b/a?region=x,y" {
		t.Errorf("JSON list: %v %v", got, err)
	}
	if got, _ := step.ParseMergeList("file:///a"); len(got) != 1 {
		t.Errorf("one URI: %v", got)
	}
	if _, err := step.ParseMergeList("[not json"); err == nil {
		t.Error("bad JSON accepted")
	}
}

// TestKFPShardAndMerge: under KFP a shard gets its I/N as the "shard"
// parameter (the ParallelFor item) and a merge its partials as artifact
// lists named merge-OUTPUT (the loop's collected outputs).
func TestKFPShardAndMerge(t *testing.T) {
	t.Setenv(step.KFPLocalRootEnv, "/mnt")
	spec := echoSpec()
	spec.Shard = &step.Sharding{By: step.ShardByParts, Input: "examples", Merge: func(context.Context, *step.Run) error { return nil }}
	inv, _, err := step.FromKFP(spec, `{"inputs": {"parameterValues": {"shard": "1/4", "count": 2},
		"artifacts": {"examples": {"artifacts": [{"uri": "gs://b/ex"}]}}},
		"outputs": {"artifacts": {"statistics": {"artifacts": [{"uri": "gs://b/out"}]}}, "outputFile": "/tmp/x"}}`)
	if err != nil || inv.Shard == nil || inv.Shard.String() != "1/4" || inv.Inputs["examples"] != "file:///mnt/gcs/b/ex" {
		t.Fatalf("shard: %+v %v", inv, err)
	}
	inv, _, err = step.FromKFP(spec, `{"inputs": {"artifacts": {"merge-statistics": {"artifacts": [{"uri": "gs://b/s0"}, {"uri": "gs://b/s1"}]}}},
		"outputs": {"artifacts": {"statistics": {"artifacts": [{"uri": "gs://b/out"}]}}, "outputFile": "/tmp/x"}}`)
	if err != nil || strings.Join(inv.Merge["statistics"], " ") != "file:///mnt/gcs/b/s0 file:///mnt/gcs/b/s1" || len(inv.Inputs) != 0 {
		t.Fatalf("merge: %+v %v", inv, err)
	}
	if _, _, err := step.FromKFP(echoSpec(), `{"inputs": {"parameterValues": {"shard": "1/4"}}}`); err == nil {
		t.Error("a step that does not shard took a shard parameter")
	}
}
