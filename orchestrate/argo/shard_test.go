package argo_test

import (
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
	"github.com/mlsteps/mlsteps/steps/catalog"
)

// TestShardedShape: a step with shards: 4 becomes a planning task (its
// stdout the shard list), a shard task fanning out over it with
// withParam (the retry strategy and resources on each shard), and a merge
// task named after the step, fed the shards' aggregated output URIs, which
// downstream tasks and conditions read as before. (TestGolden runs Argo's
// validator over the same case, testdata/sharded.)
func TestShardedShape(t *testing.T) {
	wf := compile(t, "testdata/sharded/pipeline.yaml", argo.Options{Image: "img:1"}).(*wfv1.Workflow)
	tasks := map[string]wfv1.DAGTask{}
	var order []string
	for _, task := range wf.Spec.Templates[0].DAG.Tasks {
		tasks[task.Name] = task
		order = append(order, task.Name)
	}
	if got := strings.Join(order, ","); got != "import,train,score-plan,score-shard,score,again" {
		t.Fatalf("tasks %s", got)
	}
	templates := map[string]wfv1.Template{}
	for _, tmpl := range wf.Spec.Templates {
		templates[tmpl.Name] = tmpl
	}
	if args := strings.Join(templates["score-plan"].Container.Args, " "); args != "shard-plan --shards 4" {
		t.Errorf("plan args %q", args)
	}
	shard := tasks["score-shard"]
	if shard.WithParam != "{{tasks.score-plan.outputs.result}}" || strings.Join(shard.Dependencies, ",") != "import,train,score-plan" {
		t.Errorf("shard task %+v", shard)
	}
	st := templates["score-shard"]
	args := strings.Join(st.Container.Args, " ")
	if !strings.HasSuffix(args, "--shard {{inputs.parameters.shard}}") || !strings.Contains(args, "--in examples={{inputs.parameters.examples}}") {
		t.Errorf("shard args %q", args)
	}
	if st.RetryStrategy == nil || st.RetryStrategy.Limit.IntValue() != 2 || st.Container.Resources.Requests.Cpu().String() != "1" {
		t.Errorf("shard retry %+v resources %+v", st.RetryStrategy, st.Container.Resources)
	}
	merge := templates["score-merge"]
	margs := strings.Join(merge.Container.Args, " ")
	for _, want := range []string{"score --cache-root", "--batch={{workflow.parameters.batch}}", "--merge predictions={{inputs.parameters.merge-predictions}}", "--merge dead_letters={{inputs.parameters.merge-dead_letters}}"} {
		if !strings.Contains(margs, want) {
			t.Errorf("merge args %q lack %q", margs, want)
		}
	}
	if strings.Contains(margs, "--in ") || strings.Contains(margs, "--shard") {
		t.Errorf("merge args %q: a merge reads its partials only", margs)
	}
	if v := tasks["score"].Arguments.Parameters[0].Value.String(); v != "{{tasks.score-shard.outputs.parameters.predictions}}" {
		t.Errorf("merge input %s", v)
	}
	if len(merge.Outputs.Parameters) != 3 || merge.Outputs.Parameters[2].Name != "predictions__dead_letters" {
		t.Errorf("merge outputs %+v: want the condition's property exposed on the merge", merge.Outputs.Parameters)
	}
}

// TestShardedExample: examples/sharded (the real validate, train and
// infer contracts, one sharded by key, two by parts) compiles and passes
// Argo's validator.
func TestShardedExample(t *testing.T) {
	reg, err := catalog.Registry()
	if err != nil {
		t.Fatal(err)
	}
	g := pipelinetest.GraphFile(t, reg, filepath.Join(testenv.RepoRoot(t), "examples", "sharded", "pipeline.yaml"))
	obj, err := argo.Compile(g, reg, argo.Options{Image: "img:1", Root: "s3://ml/runs?region=us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := argo.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var back wfv1.Workflow
	if err := yaml.UnmarshalStrict(data, &back); err != nil {
		t.Fatal(err)
	}
	if err := validate.ValidateWorkflow(templates{}, &templateresolution.NullClusterWorkflowTemplateGetter{}, &back, nil, validate.ValidateOpts{Lint: true}); err != nil {
		t.Fatalf("argo validator: %v\n%s", err, data)
	}
	var names []string
	for _, task := range back.Spec.Templates[0].DAG.Tasks {
		names = append(names, task.Name)
	}
	if got := strings.Join(names, ","); got != "import,validate-plan,validate-shard,validate,train-plan,train-shard,train,infer-plan,infer-shard,infer" {
		t.Errorf("tasks %s", got)
	}
}
