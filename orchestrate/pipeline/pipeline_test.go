package pipeline_test

import (
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline/pipelinetest"
	"github.com/mlsteps/mlsteps/steps/step"
)

func registry(t testing.TB) *step.Registry { return pipelinetest.Registry(t) }

const good = `name: penguins
root: file:///tmp/mlsteps
parameters:
  source: {default: data/penguins.json, description: raw file}
  epochs: 3
steps:
  - name: import
    step: import
    params:
      source: "{{params.source}}"
      split: train=0.8,eval=0.2
  - name: stats
    step: stats
    inputs:
      examples: "{{steps.import.outputs.examples}}"
  - name: train
    step: train
    inputs:
      examples: "{{steps.import.outputs.examples}}"
      statistics: "{{steps.stats.outputs.statistics}}"
    params: {epochs: "{{params.epochs}}"}
    retries: 2
    resources: {cpu: "1", memory: 2Gi}
    cache: false
`

func TestGoodPipeline(t *testing.T) {
	reg := registry(t)
	p, err := pipeline.Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	g, err := pipeline.Check(p, reg)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(g.Order(), ","); got != "import,stats,train" {
		t.Errorf("order %s", got)
	}
	if refs := g.Refs("train"); refs["statistics"] != (pipeline.Ref{Step: "stats", Output: "statistics"}) {
		t.Errorf("refs %v", refs)
	}
	tr := g.Step("train")
	if tr.Retries != 2 || !tr.NoCache || tr.Resources.Memory != "2Gi" {
		t.Errorf("train step %+v", tr)
	}
	vals, err := g.Resolve(reg, map[string]string{"epochs": "9"})
	if err != nil {
		t.Fatal(err)
	}
	if vals["train"]["epochs"] != "9" || vals["import"]["source"] != "data/penguins.json" {
		t.Errorf("resolved %v", vals)
	}
	if _, err := g.Resolve(reg, map[string]string{"epochs": "many"}); err == nil || !strings.Contains(err.Error(), "epochs") {
		t.Errorf("bad --param accepted: %v", err)
	}
	if _, err := g.Resolve(reg, map[string]string{"nope": "1"}); err == nil {
		t.Error("unknown --param accepted")
	}
	if got := strings.Join(g.Downstream("stats"), ","); got != "stats,train" {
		t.Errorf("downstream of stats: %s", got)
	}
}

func TestBadPipelines(t *testing.T) {
	reg := registry(t)
	tests := []struct {
		name, from, to string
		want           []string // substrings of the error, with lines
	}{
		{"unknown field", "    retries: 2", "    retrys: 2", []string{"line 22: steps[2].retrys: unknown field"}},
		{"unknown step type", "    step: stats", "    step: statz", []string{`line 12: steps[1].step: unknown step "statz"`}},
		{"unknown upstream", `"{{steps.stats.outputs.statistics}}"`, `"{{steps.stat.outputs.statistics}}"`, []string{`line 20: steps[2].inputs.statistics: no step "stat"`}},
		{"unknown output", `"{{steps.stats.outputs.statistics}}"`, `"{{steps.stats.outputs.stats}}"`, []string{`has no output "stats"`}},
		{"type mismatch", `statistics: "{{steps.stats.outputs.statistics}}"`, `statistics: "{{steps.import.outputs.examples}}"`, []string{"type mismatch: import.examples is a Dataset, input statistics takes a Statistics"}},
		{"missing required param", `      source: "{{params.source}}"`, ``, []string{"import needs parameter source"}},
		{"unknown pipeline param", `"{{params.epochs}}"`, `"{{params.epoch}}"`, []string{`no pipeline parameter "epoch"`}},
		{"bad literal", `split: train=0.8,eval=0.2`, `seed: lots`, []string{`line 11: steps[0].params.seed: "lots" is not a int`}},
		{"missing required input", "    inputs:\n      examples: \"{{steps.import.outputs.examples}}\"\n  - name: train", "  - name: train", []string{"stats needs input examples"}},
		{"duplicate step", "  - name: train", "  - name: stats", []string{`"stats" is also the name of the step at line 12`}},
		{"bad name", "name: penguins", "name: Penguins_1", []string{"line 1: name:"}},
		{"not yaml", "steps:", "steps: [", []string{"(file)"}},
		{"bad retries", "retries: 2", "retries: -1", []string{"steps[2].retries: want a whole number"}},
		{"bad resources", `{cpu: "1", memory: 2Gi}`, `{cpus: "1"}`, []string{"steps[2].resources"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(good, tc.from, tc.to, 1)
			if text == good {
				t.Fatalf("%q not in the pipeline", tc.from)
			}
			p, err := pipeline.Parse("bad.yaml", []byte(text))
			if err == nil {
				_, err = pipeline.Check(p, reg)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestCycle(t *testing.T) {
	text := `name: loop
steps:
  - name: a
    step: stats
    inputs: {examples: "file:///x"}
    when: "{{steps.b.outputs.model.properties.ok}} == true"
  - name: b
    step: train
    inputs: {examples: "file:///x", statistics: "{{steps.a.outputs.statistics}}"}
`
	p, err := pipeline.Parse("loop.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	_, err = pipeline.Check(p, registry(t))
	if err == nil || !strings.Contains(err.Error(), "cycle: a -> b -> a") && !strings.Contains(err.Error(), "cycle: b -> a -> b") {
		t.Errorf("cycle error %v", err)
	}
}

// FuzzParse: any bytes parse or fail with a SpecError; never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("name: x\nsteps: [{name: a, step: import}]\n"))
	f.Add([]byte("- 1\n- 2"))
	reg := registry(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := pipeline.Parse("fuzz.yaml", data)
		if err != nil {
			if _, ok := err.(*pipeline.SpecError); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if g, err := pipeline.Check(p, reg); err == nil {
			if len(g.Order()) != len(p.Steps) {
				t.Fatalf("order %v for %d steps", g.Order(), len(p.Steps))
			}
		}
	})
}
