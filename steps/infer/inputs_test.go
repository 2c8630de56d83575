package infer_test

import (
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/steps/step"
)

// TestModelsAsInputs: --in challenger and --in second, the wireable forms
// of --ab and --cascade, give the same predictions (by content digest) as
// the parameters, and record the models as lineage inputs.
func TestModelsAsInputs(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	mlp, trees := e.model("penguins-mlp.onnx", nil), e.model("penguins-trees.onnx", nil)
	digest := func(u artifacts.URI) (string, *artifacts.Artifact) {
		t.Helper()
		a, err := e.store.Open(e.ctx, u.Join("predictions"), artifacts.TypePredictions)
		if err != nil {
			t.Fatal(err)
		}
		return a.Digest, a
	}
	for _, c := range []struct {
		name           string
		inputs, params map[string]any
		lineage        string
	}{
		{"ab", map[string]any{"challenger": trees}, map[string]any{"challenger-share": 0.3, "ab-key": "Body Mass (g)"}, "challenger"},
		{"cascade", map[string]any{"second": trees}, map[string]any{"cascade-below": 0.99}, "second"},
	} {
		t.Run(c.name, func(t *testing.T) {
			byParam := map[string]any{"ab": "champion=" + mlp + ":0.7,challenger=" + trees + ":0.3", "ab-key": "Body Mass (g)"}
			if c.name == "cascade" {
				byParam = map[string]any{"cascade": trees, "cascade-below": 0.99}
			}
			paramInputs := map[string]string{"examples": examples, "model": mlp}
			if c.name == "ab" {
				delete(paramInputs, "model") // --ab names both arms
			}
			p, err := e.infer(c.name+"-params", paramInputs, byParam)
			if err != nil {
				t.Fatal(err)
			}
			inputs := map[string]string{"examples": examples, "model": mlp}
			for k, v := range c.inputs {
				inputs[k] = v.(string)
			}
			i, err := e.infer(c.name+"-inputs", inputs, c.params)
			if err != nil {
				t.Fatal(err)
			}
			pd, _ := digest(p)
			id, a := digest(i)
			if pd != id {
				t.Errorf("predictions by parameter %s, by input %s", pd, id)
			}
			found := false
			for _, in := range a.Inputs {
				found = found || in.Name == c.lineage
			}
			if !found {
				t.Errorf("lineage inputs %+v lack %s", a.Inputs, c.lineage)
			}
		})
	}
	for name, c := range map[string]struct {
		inputs map[string]string
		params map[string]any
	}{
		"challenger without model": {map[string]string{"examples": examples, "challenger": trees}, nil},
		"challenger without key":   {map[string]string{"examples": examples, "model": mlp, "challenger": trees}, nil},
		"share of 1":               {map[string]string{"examples": examples, "model": mlp, "challenger": trees}, map[string]any{"ab-key": "Sex", "challenger-share": 1.0}},
		"second twice":             {map[string]string{"examples": examples, "model": mlp, "second": trees}, map[string]any{"cascade": trees}},
	} {
		if _, err := e.infer("bad-"+strings.ReplaceAll(name, " ", "-"), c.inputs, c.params); step.ExitCode(err) != step.ExitUsage {
			t.Errorf("%s: %v, want a usage error", name, err)
		}
	}
}
