package argo_test

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/templateresolution"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
	"sigs.k8s.io/yaml"

	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/orchestrate/argo"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline/pipelinetest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// templates is the namespaced WorkflowTemplate getter the validator needs.
type templates map[string]*wfv1.WorkflowTemplate

func (t templates) Get(name string) (*wfv1.WorkflowTemplate, error) {
	if wt, ok := t[name]; ok {
		return wt, nil
	}
	return nil, fmt.Errorf("workflowtemplate %q not found", name)
}

func compile(t *testing.T, path string, opts argo.Options) any {
	t.Helper()
	reg := pipelinetest.Registry(t)
	obj, err := argo.Compile(pipelinetest.GraphFile(t, reg, path), reg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// TestGolden compiles every testdata case, checks it with Argo's own
// validator, round-trips the YAML through Argo's types with unknown fields
// rejected, and compares with the golden file (-update rewrites it).
func TestGolden(t *testing.T) {
	cases, _ := filepath.Glob("testdata/*/pipeline.yaml")
	if len(cases) == 0 {
		t.Fatal("no testdata")
	}
	for _, path := range cases {
		dir := filepath.Dir(path)
		for _, kind := range []string{argo.KindWorkflow, argo.KindWorkflowTemplate} {
			t.Run(filepath.Base(dir)+"/"+kind, func(t *testing.T) {
				obj := compile(t, path, argo.Options{Image: "ghcr.io/mlsteps/mlsteps:0.1.0", Kind: kind, Namespace: "ml", ServiceAccount: "mlsteps", SecretEnv: "mlsteps-bucket"})
				data, err := argo.Marshal(obj)
				if err != nil {
					t.Fatal(err)
				}
				opts := validate.ValidateOpts{Lint: true}
				switch o := obj.(type) {
				case *wfv1.Workflow:
					var back wfv1.Workflow
					if err := yaml.UnmarshalStrict(data, &back); err != nil {
						t.Fatalf("emitted YAML does not read back strictly: %v", err)
					}
					if err := validate.ValidateWorkflow(templates{}, &templateresolution.NullClusterWorkflowTemplateGetter{}, &back, nil, opts); err != nil {
						t.Fatalf("argo validator: %v\n%s", err, data)
					}
					// Submitting a Workflow that references the template works too.
					_ = o
				case *wfv1.WorkflowTemplate:
					var back wfv1.WorkflowTemplate
					if err := yaml.UnmarshalStrict(data, &back); err != nil {
						t.Fatalf("emitted YAML does not read back strictly: %v", err)
					}
					if err := validate.ValidateWorkflowTemplate(templates{}, &templateresolution.NullClusterWorkflowTemplateGetter{}, &back, nil, opts); err != nil {
						t.Fatalf("argo validator: %v\n%s", err, data)
					}
					ref := &wfv1.Workflow{Spec: wfv1.WorkflowSpec{WorkflowTemplateRef: &wfv1.WorkflowTemplateRef{Name: back.Name}}}
					ref.GenerateName = "run-"
					if err := validate.ValidateWorkflow(templates{back.Name: &back}, &templateresolution.NullClusterWorkflowTemplateGetter{}, ref, nil, opts); err != nil {
						t.Fatalf("argo validator on a workflow referencing the template: %v", err)
					}
				}
				testenv.Golden(t, filepath.Join(dir, "argo."+strings.ToLower(kind)+".golden.yaml"), data, *update)
			})
		}
	}
}

func TestWorkflowShape(t *testing.T) {
	wf := compile(t, "testdata/penguins/pipeline.yaml", argo.Options{Image: "img:1"}).(*wfv1.Workflow)
	main := wf.Spec.Templates[0]
	if main.DAG == nil || len(main.DAG.Tasks) != 3 || *main.DAG.FailFast {
		t.Fatalf("main template %+v", main)
	}
	train := wf.Spec.Templates[3]
	args := strings.Join(train.Container.Args, " ")
	for _, want := range []string{"train --cache-root s3://ml-artifacts/pipelines?region=us-east-1", "--no-cache", "--in examples={{inputs.parameters.examples}}", "--epochs={{workflow.parameters.epochs}}"} {
		if !strings.Contains(args, want) {
			t.Errorf("train args %q lack %q", args, want)
		}
	}
	if train.RetryStrategy == nil || train.RetryStrategy.Limit.IntValue() != 2 {
		t.Errorf("retry %+v", train.RetryStrategy)
	}
	if q := train.Container.Resources.Limits["nvidia.com/gpu"]; q.String() != "1" {
		t.Errorf("gpu limit %v", q)
	}
	if w := main.DAG.Tasks[2].When; w != "{{tasks.stats.outputs.parameters.statistics__num_anomalies}} == 0" {
		t.Errorf("train when %q", w)
	}
	stats := wf.Spec.Templates[2]
	if n := len(stats.Outputs.Parameters); n != 2 || stats.Outputs.Parameters[1].ValueFrom.Path != argo.ResultDir+"/statistics.num_anomalies" {
		t.Errorf("stats outputs %+v: want the condition's property exposed", stats.Outputs.Parameters)
	}
	deps := main.DAG.Tasks[2].Dependencies
	if strings.Join(deps, ",") != "import,stats" {
		t.Errorf("train depends on %v", deps)
	}
}
