package step_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/steps/step"
)

// TestCache: the cache key is the content of inputs plus parameters, step
// and build; a hit reuses outputs, a killed or partial run is redone, and a
// cached gate still says no.
func TestCache(t *testing.T) {
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()
	root := artifacts.MustParseURI("mem://cache/" + t.Name())
	dataset(t, store, root.Join("a"), artifacts.TypeDataset)
	dataset(t, store, root.Join("b"), artifacts.TypeDataset) // other content: its URI is in the data
	cacheRoot := root.Join("cache").String()

	run := func(in string, params map[string]any, noCache bool, build string) (step.Result, error) {
		var res step.Result
		inv := step.Invocation{Inputs: map[string]string{"examples": root.Join(in).String()}, CacheRoot: cacheRoot, NoCache: noCache, Params: params}
		err := step.Execute(ctx, echoSpec(), inv, step.Env{Store: store, BuildID: build, OnResult: func(r step.Result) { res = r }})
		return res, err
	}
	first, err := run("a", nil, false, "b1")
	if err != nil || first.Cached || first.Status != "succeeded" {
		t.Fatalf("first run: %+v, %v", first, err)
	}
	again, err := run("a", nil, false, "b1")
	if err != nil || !again.Cached || again.Outputs["statistics"] != first.Outputs["statistics"] || again.Status != "cached" {
		t.Fatalf("same key: %+v, %v; want a cache hit on %s", again, err, first.Outputs["statistics"])
	}
	for name, tc := range map[string]struct {
		in     string
		params map[string]any
		build  string
	}{
		"other input content": {"b", nil, "b1"},
		"other parameter":     {"a", map[string]any{"count": int64(4)}, "b1"},
		"other build":         {"a", nil, "b2"},
	} {
		res, err := run(tc.in, tc.params, false, tc.build)
		if err != nil || res.Cached || res.CacheKey == first.CacheKey {
			t.Errorf("%s: %+v, %v; want a fresh run under a new key", name, res, err)
		}
	}
	// A secret does not change what a step computes, so not the key either.
	if res, _ := run("a", map[string]any{"token": "t0ps3cret"}, false, "b1"); !res.Cached {
		t.Errorf("a secret changed the key: %+v", res)
	}
	forced, err := run("a", nil, true, "b1")
	if err != nil || forced.Cached || forced.Outputs["statistics"] == first.Outputs["statistics"] || !strings.HasSuffix(strings.TrimSuffix(forced.Outputs["statistics"], "/statistics"), "-1") {
		t.Errorf("--no-cache: %+v, %v; want a run in a fresh attempt folder", forced, err)
	}

	gated, err := run("a", map[string]any{"mode": "gate"}, false, "b1")
	if step.ExitCode(err) != step.ExitGate || gated.Status != "gated" {
		t.Fatalf("gate: %+v, %v", gated, err)
	}
	hit, err := run("a", map[string]any{"mode": "gate"}, false, "b1")
	if step.ExitCode(err) != step.ExitGate || !hit.Cached || !strings.Contains(err.Error(), "3 anomalies") {
		t.Errorf("cached gate: %+v, %v; want the verdict again with exit 3", hit, err)
	}

	// A failed run leaves nothing committed, so the next one runs again.
	if _, err := run("a", map[string]any{"mode": "fail"}, false, "b1"); step.ExitCode(err) != step.ExitFailed {
		t.Fatalf("fail: %v", err)
	}
	if res, _ := run("a", map[string]any{"mode": "fail"}, false, "b1"); res.Cached {
		t.Error("a failed run was cached")
	}
}

// TestCacheMirrored: when the orchestrator picks the output URIs (KFP), the
// step still consults and feeds the shared content cache through copies.
func TestCacheMirrored(t *testing.T) {
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()
	root := artifacts.MustParseURI("mem://mirror/" + t.Name())
	dataset(t, store, root.Join("a"), artifacts.TypeDataset)
	cacheRoot := root.Join("cache").String()
	run := func(inv step.Invocation) (step.Result, error) {
		var res step.Result
		inv.Inputs = map[string]string{"examples": root.Join("a").String()}
		err := step.Execute(ctx, echoSpec(), inv, step.Env{Store: store, BuildID: "b1", OnResult: func(r step.Result) { res = r }})
		return res, err
	}
	first, err := run(step.Invocation{Outputs: map[string]string{"statistics": root.Join("kfp/run1/statistics").String()}, CacheRoot: cacheRoot})
	if err != nil || first.Cached {
		t.Fatalf("first: %+v %v", first, err)
	}
	second, err := run(step.Invocation{Outputs: map[string]string{"statistics": root.Join("kfp/run2/statistics").String()}, CacheRoot: cacheRoot})
	if err != nil || !second.Cached || second.Outputs["statistics"] != root.Join("kfp/run2/statistics").String() || second.Digests["statistics"] != first.Digests["statistics"] {
		t.Fatalf("second: %+v %v; want a hit copied to the new URI with the same digest", second, err)
	}
	// A run that places by key (Argo, local) hits the same cache entry.
	third, err := run(step.Invocation{CacheRoot: cacheRoot})
	if err != nil || !third.Cached || third.Digests["statistics"] != first.Digests["statistics"] {
		t.Errorf("keyed run after a mirrored one: %+v %v", third, err)
	}
}
