package kfp_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kubeflow/pipelines/backend/src/v2/compiler"

	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/orchestrate/kfp"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline/pipelinetest"
	"github.com/mlsteps/mlsteps/steps/catalog"
)

// TestShardedGolden: a step with shards: 4 compiles as KFP's SDK compiles
// a ParallelFor with a Collected output: a for-loop DAG over the shard
// list whose body runs the step as one shard, its outputs collected into
// artifact lists feeding the merge component, which keeps the step's
// name. The IR parses back strictly, KFP's compiler walks it, and it
// matches the golden file.
func TestShardedGolden(t *testing.T) {
	spec := compile(t, "testdata/sharded.yaml")
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
	slices.Sort(v.containers)
	slices.Sort(v.dags)
	if got := strings.Join(v.containers, ","); got != "comp-again:ghcr.io/mlsteps/mlsteps:0.1.0,comp-import:ghcr.io/mlsteps/mlsteps:0.1.0,comp-score-shard:ghcr.io/mlsteps/mlsteps:0.1.0,comp-score:ghcr.io/mlsteps/mlsteps:0.1.0,comp-train:ghcr.io/mlsteps/mlsteps:0.1.0" {
		t.Errorf("walked containers %s", got)
	}
	if len(v.dags) != 2 {
		t.Errorf("walked dags %v; want the root and the for-loop", v.dags)
	}
	testenv.Golden(t, "testdata/sharded.kfp.golden.yaml", data, *update)

	root := back.GetRoot().GetDag().GetTasks()
	loop := root["for-loop-score"]
	if items := loop.GetParameterIterator().GetItems().GetRaw(); items != `["0/4","1/4","2/4","3/4"]` {
		t.Errorf("loop items %s", items)
	}
	if got := loop.GetInputs().GetArtifacts()["pipelinechannel--train-model"].GetTaskOutputArtifact().GetProducerTask(); got != "train" {
		t.Errorf("the loop's model comes from %q", got)
	}
	body := back.GetComponents()["comp-for-loop-score"]
	inner := body.GetDag().GetTasks()["score-shard"]
	if inner.GetInputs().GetParameters()["shard"].GetComponentInputParameter() != loop.GetParameterIterator().GetItemInput() ||
		inner.GetRetryPolicy().GetMaxRetryCount() != 2 {
		t.Errorf("shard task %v", inner)
	}
	if !body.GetOutputDefinitions().GetArtifacts()["pipelinechannel--score-shard-predictions"].GetIsArtifactList() {
		t.Error("the loop does not collect the shards' predictions into a list")
	}
	merge := root["score"]
	in := merge.GetInputs().GetArtifacts()["merge-predictions"].GetTaskOutputArtifact()
	if in.GetProducerTask() != "for-loop-score" || in.GetOutputArtifactKey() != "pipelinechannel--score-shard-predictions" {
		t.Errorf("merge input %v", in)
	}
	if !back.GetComponents()["comp-score"].GetInputDefinitions().GetArtifacts()["merge-dead_letters"].GetIsArtifactList() {
		t.Error("the merge component does not take a list of dead letters")
	}
	if c := root["again"].GetTriggerPolicy().GetCondition(); !strings.Contains(c, "score-predictions__dead_letters") {
		t.Errorf("downstream condition %q", c)
	}
}

// TestShardedWhenUnsupported: a condition on a sharded step itself is
// refused clearly by the kfp target (Argo and local runs take it).
func TestShardedWhenUnsupported(t *testing.T) {
	reg := pipelinetest.Registry(t)
	g := pipelinetest.Graph(t, reg, "w.yaml", `name: w
steps:
  - name: import
    step: import
    params: {source: "s3://b/x.csv"}
  - name: train
    step: train
    inputs: {examples: "{{steps.import.outputs.examples}}"}
  - name: score
    step: score
    inputs: {examples: "{{steps.import.outputs.examples}}", model: "{{steps.train.outputs.model}}"}
    shards: 2
    when: "{{steps.import.outputs.examples.properties.row_count}} == 3"
`)
	_, err := kfp.Compile(g, reg, kfp.Options{})
	if err == nil || !strings.Contains(err.Error(), "steps[2].when") || !strings.Contains(err.Error(), "sharded") {
		t.Fatalf("compile: %v", err)
	}
}

// TestShardedExample: examples/sharded (the real validate, train and
// infer contracts) compiles to IR that parses back strictly and that
// KFP's compiler walks: three for-loops, each feeding its merge.
func TestShardedExample(t *testing.T) {
	reg, err := catalog.Registry()
	if err != nil {
		t.Fatal(err)
	}
	g := pipelinetest.GraphFile(t, reg, filepath.Join(testenv.RepoRoot(t), "examples", "sharded", "pipeline.yaml"))
	spec, err := kfp.Compile(g, reg, kfp.Options{Image: "img:1", Root: "s3://ml/runs?region=us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := kfp.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	back, err := kfp.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	v := &visitor{}
	if err := compiler.Accept(job(t, back), nil, v); err != nil {
		t.Fatalf("KFP's compiler walker: %v", err)
	}
	slices.Sort(v.dags)
	if len(v.containers) != 7 || strings.Join(v.dags, ",") != "comp-for-loop-infer,comp-for-loop-train,comp-for-loop-validate,root" {
		t.Errorf("walked containers %v, dags %v", v.containers, v.dags)
	}
	merge := back.GetRoot().GetDag().GetTasks()["infer"]
	if a := merge.GetInputs().GetArtifacts()["merge-predictions"].GetTaskOutputArtifact(); a.GetProducerTask() != "for-loop-infer" {
		t.Errorf("infer's merge reads %v", a)
	}
	loop := back.GetRoot().GetDag().GetTasks()["for-loop-infer"]
	if a := loop.GetInputs().GetArtifacts()["pipelinechannel--train-model"].GetTaskOutputArtifact(); a.GetProducerTask() != "train" {
		t.Errorf("infer's shards read the model from %v; want train's merge", a)
	}
}
