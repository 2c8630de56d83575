package train_test

import (
	"os"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/steps/step"
	"github.com/mlsteps/mlsteps/steps/train"
)

// TestCommandScriptInCacheKey: a cached training run is reused while the
// trainer script is unchanged, and not once the script is edited, though
// the command line is the same.
func TestCommandScriptInCacheKey(t *testing.T) {
	e := newEnv(t)
	penguins := e.examples("penguins.json")
	t.Setenv("FIXTURE", fixtureModel(t, penguinFeatures))
	script := writeScript(t, "cp \"$FIXTURE\" \"$MLSTEPS_MODEL_DIR/model.onnx\"\n")
	cache := e.root.Join("cache").String()
	run := func() bool {
		t.Helper()
		var cached bool
		env := e.stepEnv()
		env.OnResult = func(r step.Result) { cached = r.Cached }
		inv := step.Invocation{Inputs: map[string]string{"examples": penguins}, CacheRoot: cache,
			Params: map[string]any{"trainer-command": "sh " + script, "label": "Species", "features": strings.Join(penguinFeatures, ",")}}
		if err := step.Execute(e.ctx, train.Spec(), inv, env); err != nil {
			t.Fatal(err)
		}
		return cached
	}
	if run() {
		t.Fatal("the first run was a cache hit")
	}
	if !run() {
		t.Error("the same script again was not a cache hit")
	}
	if err := os.WriteFile(script, []byte("# tuned\ncp \"$FIXTURE\" \"$MLSTEPS_MODEL_DIR/model.onnx\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if run() {
		t.Error("an edited script was a cache hit")
	}
}
