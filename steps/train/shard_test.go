package train_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
	"github.com/mlsteps/mlsteps/steps/train"
)

// TestShardedPerKey: train --per-key on penguins by island as 1, 2, 3 and
// 4 shards (4: one shard with no key), merged, is the unsharded keyed
// Model exactly: the same index and per-key model bytes (the built-in
// trainers are deterministic), so the same digest, and the same
// per-key training metrics and skipped keys.
func TestShardedPerKey(t *testing.T) {
	e := newEnv(t)
	penguins := e.examples("penguins.json")
	inputs := map[string]string{"examples": penguins}
	params := map[string]any{"trainer": train.GBDT, "hparams": `{"trees": 20, "max_depth": 3}`, "label": "Species",
		"features": strings.Join(penguinFeatures, ","), "per-key": "Island", "workers": int64(2)}
	whole, err := e.train("whole", inputs, params)
	if err != nil {
		t.Fatal(err)
	}
	wa := e.open(whole, artifacts.TypeModel)
	wm, err := model.Open(e.ctx, wa)
	if err != nil {
		t.Fatal(err)
	}
	if len(wm.Keyed.Models) != 3 {
		t.Fatalf("unsharded model keys %v; want the 3 islands", wm.Keyed.Models)
	}
	for _, n := range []int{1, 2, 3, 4} {
		var parts []string
		for i := range n {
			out := e.root.Join(fmt.Sprintf("shard-%d-of-%d", i, n))
			inv := step.Invocation{Inputs: inputs, OutRoot: out.String(), Params: params, Shard: &step.Shard{Index: i, Count: n}}
			if err := step.Execute(e.ctx, train.Spec(), inv, e.stepEnv()); err != nil {
				t.Fatalf("shard %d of %d: %v", i, n, err)
			}
			parts = append(parts, out.Join("model").String())
		}
		out := e.root.Join(fmt.Sprintf("merged-%d", n))
		if err := step.Execute(e.ctx, train.Spec(), step.Invocation{OutRoot: out.String(), Params: params, Merge: map[string][]string{"model": parts}}, e.stepEnv()); err != nil {
			t.Fatalf("merge of %d: %v", n, err)
		}
		ma := e.open(out.Join("model"), artifacts.TypeModel)
		if ma.Digest != wa.Digest {
			t.Errorf("%d shards: merged digest %s, unsharded %s", n, ma.Digest, wa.Digest)
			for _, f := range ma.Files {
				w, _ := wa.File(f.Path)
				t.Logf("%s: %s, unsharded %s", f.Path, f.SHA256, w.SHA256)
			}
		}
		for _, p := range []string{train.PropTrainingPerKey, train.PropSkippedKeys, model.PropKeys, model.PropSignature} {
			if fmt.Sprint(ma.Properties[p]) != fmt.Sprint(wa.Properties[p]) {
				t.Errorf("%d shards: %s = %v, unsharded %v", n, p, ma.Properties[p], wa.Properties[p])
			}
		}
		if info, err := artifacts.Property[step.MergeInfo](ma.Sidecar, step.PropMerged); err != nil || info.Shards != n || info.Total != 3 {
			t.Errorf("%d shards: merged %+v (%v)", n, info, err)
		}
	}
	// Without --per-key train does not shard.
	delete(params, "per-key")
	err = step.Execute(e.ctx, train.Spec(), step.Invocation{Inputs: inputs, OutRoot: e.root.Join("no-key").String(), Params: params,
		Shard: &step.Shard{Index: 0, Count: 2}}, e.stepEnv())
	if err == nil || !strings.Contains(err.Error(), "--per-key") || exitCode(err) != step.ExitUsage {
		t.Errorf("--shard without --per-key: %v", err)
	}
}
