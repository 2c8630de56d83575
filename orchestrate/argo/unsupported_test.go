package argo_test

import (
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/orchestrate/argo"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline/pipelinetest"
)

// TestUnsupported lists what the Argo form cannot express yet; each must
// fail clearly, naming the field.
func TestUnsupported(t *testing.T) {
	base := `name: p
root: s3://b/r
steps:
  - name: import
    step: import
    params: {source: "s3://b/raw.csv"}
  - name: stats
    step: stats
    inputs: {examples: "{{steps.import.outputs.examples}}"}
`
	tests := []struct{ name, text, opts, want string }{
		{"local root", strings.Replace(base, "s3://b/r", "file:///tmp/r", 1), "", "root: file:///tmp/r is local"},
		{"bad quantity", base + "    resources: {memory: lots}\n", "", `steps[1].resources.memory: "lots" is not a Kubernetes quantity`},
		{"bad kind", base, "CronWorkflow", `--kind: "CronWorkflow"`},
	}
	reg := pipelinetest.Registry(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := pipelinetest.Graph(t, reg, "p.yaml", tc.text)
			_, err := argo.Compile(g, reg, argo.Options{Kind: tc.opts})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Compile = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
