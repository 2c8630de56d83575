package argo

import (
	"fmt"
	"slices"
	"strconv"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"

	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
	"github.com/mlsteps/mlsteps/steps/step"
)

// fanOut turns a sharded step into three tasks: STEP-plan runs
// `mlsteps shard-plan`, whose stdout (the JSON list of shards, "0/N" …)
// is the list STEP-shard fans out over with withParam, one pod per shard
// (each retried alone by the retry strategy); STEP, the merge, takes the
// shards' aggregated output URIs (a JSON list per output) with --merge.
// The merge task keeps the step's name, so downstream tasks read its
// outputs as they read an unsharded step's.
func fanOut(s *pipeline.Step, spec *step.Spec, tmpl wfv1.Template, task wfv1.DAGTask, opts Options) ([]wfv1.Template, []wfv1.DAGTask) {
	planName, shardName := s.Name+"-plan", s.Name+"-shard"
	plan := wfv1.Template{Name: planName, Container: &corev1.Container{Image: opts.Image, Command: []string{"mlsteps"},
		Args: []string{"shard-plan", "--shards", strconv.Itoa(s.Shards)}}}
	planTask := wfv1.DAGTask{Name: planName, Template: planName, Dependencies: task.Dependencies}

	shard := tmpl
	shard.Name = shardName
	shard.Inputs.Parameters = append(slices.Clone(tmpl.Inputs.Parameters), wfv1.Parameter{Name: "shard", Description: wfv1.AnyStringPtr("I/N: the shard this pod runs")})
	sc := *tmpl.Container
	sc.Args = append(slices.Clone(sc.Args), "--shard", "{{inputs.parameters.shard}}")
	shard.Container = &sc
	shardTask := task
	shardTask.Name, shardTask.Template = shardName, shardName
	shardTask.Dependencies = append(slices.Clone(task.Dependencies), planName)
	shardTask.WithParam = fmt.Sprintf("{{tasks.%s.outputs.result}}", planName)
	shardTask.Arguments.Parameters = append(slices.Clone(task.Arguments.Parameters), wfv1.Parameter{Name: "shard", Value: wfv1.AnyStringPtr("{{item}}")})

	merge := wfv1.Template{Name: s.Name + "-merge", Outputs: tmpl.Outputs, RetryStrategy: tmpl.RetryStrategy}
	mc := *tmpl.Container
	mc.Args = nil
	for i := 0; i < len(tmpl.Container.Args); i++ {
		if tmpl.Container.Args[i] == "--in" { // a merge reads the partials only
			i++
			continue
		}
		mc.Args = append(mc.Args, tmpl.Container.Args[i])
	}
	mergeTask := wfv1.DAGTask{Name: s.Name, Template: merge.Name, Dependencies: []string{shardName}}
	for _, out := range spec.Outputs {
		in := "merge-" + out.Name
		merge.Inputs.Parameters = append(merge.Inputs.Parameters, wfv1.Parameter{Name: in,
			Description: wfv1.AnyStringPtr(fmt.Sprintf("the shards' %s URIs, a JSON list", out.Name))})
		mc.Args = append(mc.Args, "--merge", fmt.Sprintf("%s={{inputs.parameters.%s}}", out.Name, in))
		mergeTask.Arguments.Parameters = append(mergeTask.Arguments.Parameters, wfv1.Parameter{Name: in,
			Value: wfv1.AnyStringPtr(fmt.Sprintf("{{tasks.%s.outputs.parameters.%s}}", shardName, out.Name))})
	}
	merge.Container = &mc
	return []wfv1.Template{plan, shard, merge}, []wfv1.DAGTask{planTask, shardTask, mergeTask}
}
