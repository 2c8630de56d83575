package kfp_test

import (
	"flag"
	"strings"
	"testing"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/kubeflow/pipelines/backend/src/v2/compiler"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/orchestrate/kfp"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline/pipelinetest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func compile(t *testing.T, path string) *pipelinespec.PipelineSpec {
	t.Helper()
	reg := pipelinetest.Registry(t)
	spec, err := kfp.Compile(pipelinetest.GraphFile(t, reg, path), reg, kfp.Options{Image: "ghcr.io/mlsteps/mlsteps:0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// visitor records what KFP's backend compiler walks.
type visitor struct{ containers, dags []string }

func (v *visitor) Container(name string, _ *pipelinespec.ComponentSpec, c *pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec) error {
	v.containers = append(v.containers, name+":"+c.GetImage())
	return nil
}
func (v *visitor) Importer(string, *pipelinespec.ComponentSpec, *pipelinespec.PipelineDeploymentConfig_ImporterSpec) error {
	return nil
}
func (v *visitor) Resolver(string, *pipelinespec.ComponentSpec, *pipelinespec.PipelineDeploymentConfig_ResolverSpec) error {
	return nil
}
func (v *visitor) DAG(name string, _ *pipelinespec.ComponentSpec, _ *pipelinespec.DagSpec) error {
	v.dags = append(v.dags, name)
	return nil
}
func (v *visitor) AddKubernetesSpec(string, *structpb.Struct) error { return nil }

func job(t *testing.T, spec *pipelinespec.PipelineSpec) *pipelinespec.PipelineJob {
	t.Helper()
	data, err := protojson.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	st := &structpb.Struct{}
	if err := protojson.Unmarshal(data, st); err != nil {
		t.Fatal(err)
	}
	return &pipelinespec.PipelineJob{PipelineSpec: st}
}

// TestGolden: the IR YAML parses back into KFP's protos with unknown fields
// rejected, KFP's backend compiler walks every task and component, and the
// output matches the golden file (-update rewrites it).
func TestGolden(t *testing.T) {
	spec := compile(t, "testdata/penguins.yaml")
	data, err := kfp.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	back, err := kfp.Parse(data)
	if err != nil {
		t.Fatalf("IR does not parse back strictly: %v", err)
	}
	v := &visitor{}
	if err := compiler.Accept(job(t, back), nil, v); err != nil {
		t.Fatalf("KFP's compiler walker: %v", err)
	}
	if len(v.containers) != 3 || len(v.dags) != 1 {
		t.Errorf("walked containers %v and dags %v; want 3 and the root", v.containers, v.dags)
	}
	testenv.Golden(t, "testdata/penguins.kfp.golden.yaml", data, *update)
}

func TestShape(t *testing.T) {
	spec := compile(t, "testdata/penguins.yaml")
	train := spec.GetRoot().GetDag().GetTasks()["train"]
	if got := strings.Join(train.GetDependentTasks(), ","); got != "import,stats" {
		t.Errorf("dependentTasks %s", got)
	}
	if train.GetCachingOptions().GetEnableCache() || train.GetRetryPolicy().GetMaxRetryCount() != 2 {
		t.Errorf("train caching %v retry %v", train.GetCachingOptions(), train.GetRetryPolicy())
	}
	if a := train.GetInputs().GetArtifacts()["statistics"].GetTaskOutputArtifact(); a.GetProducerTask() != "stats" || a.GetOutputArtifactKey() != "statistics" {
		t.Errorf("statistics input %v", a)
	}
	if p := train.GetInputs().GetParameters()["epochs"].GetComponentInputParameter(); p != "epochs" {
		t.Errorf("epochs wired to %q", p)
	}
	comp := spec.GetComponents()["comp-import"]
	if title := comp.GetOutputDefinitions().GetArtifacts()["examples"].GetArtifactType().GetSchemaTitle(); title != "system.Dataset" {
		t.Errorf("examples is a %s", title)
	}
	if title := spec.GetComponents()["comp-stats"].GetOutputDefinitions().GetArtifacts()["statistics"].GetArtifactType().GetSchemaTitle(); title != "mlsteps.Statistics" {
		t.Errorf("statistics is a %s", title)
	}
}

// TestBrokenReference: KFP's walker rejects a task whose component is gone.
func TestBrokenReference(t *testing.T) {
	spec := compile(t, "testdata/penguins.yaml")
	delete(spec.Components, "comp-stats")
	if err := compiler.Accept(job(t, spec), nil, &visitor{}); err == nil {
		t.Error("KFP's walker accepted a task referring to a missing component")
	}
}

func TestCondition(t *testing.T) {
	spec := compile(t, "testdata/penguins.yaml")
	train := spec.GetRoot().GetDag().GetTasks()["train"]
	const channel = "pipelinechannel--stats-statistics__num_anomalies"
	if c := train.GetTriggerPolicy().GetCondition(); c != `inputs.parameter_values['`+channel+`'] == "0"` {
		t.Errorf("condition %q", c)
	}
	if p := train.GetInputs().GetParameters()[channel].GetTaskOutputParameter(); p.GetProducerTask() != "stats" || p.GetOutputParameterKey() != "statistics__num_anomalies" {
		t.Errorf("channel %v", p)
	}
	if _, ok := spec.GetComponents()["comp-stats"].GetOutputDefinitions().GetParameters()["statistics__num_anomalies"]; !ok {
		t.Error("stats does not output the condition's property")
	}
}
