package kfp

import (
	"encoding/json"
	"maps"
	"strings"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/proto"

	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
	"github.com/mlsteps/mlsteps/steps/step"
)

// fanOut compiles a sharded step as KFP's SDK compiles a dsl.ParallelFor
// with a dsl.Collected output: a for-loop DAG component (for-loop-STEP)
// iterating over the shard list ("0/N", …) whose body is the step's
// component run as one shard (STEP-shard, its item the "shard"
// parameter), each iteration retried alone by its retry policy; the
// loop's outputs are the shards' outputs collected into artifact lists,
// which feed the merge component (task STEP, so downstream tasks read the
// merged outputs as they read an unsharded step's).
func fanOut(g *pipeline.Graph, reg *step.Registry, s *pipeline.Step, spec *step.Spec, comp *pipelinespec.ComponentSpec,
	exec *pipelinespec.PipelineDeploymentConfig_ExecutorSpec, task *pipelinespec.PipelineTaskSpec,
	components map[string]*pipelinespec.ComponentSpec, deploy *pipelinespec.PipelineDeploymentConfig, dag *pipelinespec.DagSpec) {
	name := s.Name
	loopName, shardName := "for-loop-"+name, name+"-shard"
	item := step.KFPChannelPrefix + "loop-item-" + name

	// The shard: the step's component with the shard parameter.
	shardComp := proto.Clone(comp).(*pipelinespec.ComponentSpec)
	shardComp.Implementation = &pipelinespec.ComponentSpec_ExecutorLabel{ExecutorLabel: "exec-" + shardName}
	shardComp.InputDefinitions.Parameters[step.KFPShardParam] = &pipelinespec.ComponentInputsSpec_ParameterSpec{
		ParameterType: pipelinespec.ParameterType_STRING, Description: "I/N: the shard this task runs"}
	components["comp-"+shardName] = shardComp
	deploy.Executors["exec-"+shardName] = exec

	// The loop body sees outside values only through the loop's inputs.
	loop := &pipelinespec.ComponentSpec{
		InputDefinitions: &pipelinespec.ComponentInputsSpec{
			Artifacts:  map[string]*pipelinespec.ComponentInputsSpec_ArtifactSpec{},
			Parameters: map[string]*pipelinespec.ComponentInputsSpec_ParameterSpec{item: {ParameterType: pipelinespec.ParameterType_STRING}}},
		OutputDefinitions: &pipelinespec.ComponentOutputsSpec{Artifacts: map[string]*pipelinespec.ComponentOutputsSpec_ArtifactSpec{}},
	}
	loopTask := &pipelinespec.PipelineTaskSpec{
		TaskInfo:       &pipelinespec.PipelineTaskInfo{Name: loopName},
		ComponentRef:   &pipelinespec.ComponentRef{Name: "comp-" + loopName},
		Inputs:         &pipelinespec.TaskInputsSpec{Artifacts: map[string]*pipelinespec.TaskInputsSpec_InputArtifactSpec{}, Parameters: map[string]*pipelinespec.TaskInputsSpec_InputParameterSpec{}},
		DependentTasks: task.DependentTasks,
		Iterator: &pipelinespec.PipelineTaskSpec_ParameterIterator{ParameterIterator: &pipelinespec.ParameterIteratorSpec{
			ItemInput: item,
			Items:     &pipelinespec.ParameterIteratorSpec_ItemsSpec{Kind: &pipelinespec.ParameterIteratorSpec_ItemsSpec_Raw{Raw: shardList(s.Shards)}}}},
	}
	inner := proto.Clone(task).(*pipelinespec.PipelineTaskSpec)
	inner.TaskInfo = &pipelinespec.PipelineTaskInfo{Name: shardName}
	inner.ComponentRef = &pipelinespec.ComponentRef{Name: "comp-" + shardName}
	inner.DependentTasks = nil
	for in, a := range inner.Inputs.Artifacts {
		up := a.GetTaskOutputArtifact()
		channel := step.KFPChannelPrefix + up.GetProducerTask() + "-" + up.GetOutputArtifactKey()
		upSpec, _ := reg.Lookup(g.Step(up.GetProducerTask()).Type)
		port, _ := upSpec.Output(up.GetOutputArtifactKey())
		loop.InputDefinitions.Artifacts[channel] = &pipelinespec.ComponentInputsSpec_ArtifactSpec{ArtifactType: artifactType(port.Type)}
		loopTask.Inputs.Artifacts[channel] = a
		inner.Inputs.Artifacts[in] = &pipelinespec.TaskInputsSpec_InputArtifactSpec{Kind: &pipelinespec.TaskInputsSpec_InputArtifactSpec_ComponentInputArtifact{ComponentInputArtifact: channel}}
	}
	for pname, p := range inner.Inputs.Parameters {
		if root := p.GetComponentInputParameter(); root != "" {
			channel := step.KFPChannelPrefix + root
			loop.InputDefinitions.Parameters[channel] = &pipelinespec.ComponentInputsSpec_ParameterSpec{ParameterType: pipelinespec.ParameterType_STRING}
			loopTask.Inputs.Parameters[channel] = p
			inner.Inputs.Parameters[pname] = &pipelinespec.TaskInputsSpec_InputParameterSpec{Kind: &pipelinespec.TaskInputsSpec_InputParameterSpec_ComponentInputParameter{ComponentInputParameter: channel}}
		}
	}
	inner.Inputs.Parameters[step.KFPShardParam] = &pipelinespec.TaskInputsSpec_InputParameterSpec{Kind: &pipelinespec.TaskInputsSpec_InputParameterSpec_ComponentInputParameter{ComponentInputParameter: item}}
	body := &pipelinespec.DagSpec{Tasks: map[string]*pipelinespec.PipelineTaskSpec{shardName: inner},
		Outputs: &pipelinespec.DagOutputsSpec{Artifacts: map[string]*pipelinespec.DagOutputsSpec_DagOutputArtifactSpec{}}}

	// The merge: the step's component with the collected partials as
	// artifact lists instead of its inputs.
	mergeComp := &pipelinespec.ComponentSpec{
		InputDefinitions:  &pipelinespec.ComponentInputsSpec{Artifacts: map[string]*pipelinespec.ComponentInputsSpec_ArtifactSpec{}, Parameters: map[string]*pipelinespec.ComponentInputsSpec_ParameterSpec{}},
		OutputDefinitions: comp.OutputDefinitions,
		Implementation:    &pipelinespec.ComponentSpec_ExecutorLabel{ExecutorLabel: "exec-" + name},
	}
	for pname, p := range comp.InputDefinitions.Parameters {
		if !strings.HasPrefix(pname, step.KFPInputPrefix) {
			mergeComp.InputDefinitions.Parameters[pname] = p
		}
	}
	mergeTask := proto.Clone(task).(*pipelinespec.PipelineTaskSpec)
	mergeTask.DependentTasks = []string{loopName}
	mergeTask.Inputs.Artifacts = map[string]*pipelinespec.TaskInputsSpec_InputArtifactSpec{}
	maps.DeleteFunc(mergeTask.Inputs.Parameters, func(k string, _ *pipelinespec.TaskInputsSpec_InputParameterSpec) bool {
		return strings.HasPrefix(k, step.KFPInputPrefix)
	})
	for _, out := range spec.Outputs {
		collected := step.KFPChannelPrefix + shardName + "-" + out.Name
		loop.OutputDefinitions.Artifacts[collected] = &pipelinespec.ComponentOutputsSpec_ArtifactSpec{ArtifactType: artifactType(out.Type), IsArtifactList: true}
		body.Outputs.Artifacts[collected] = &pipelinespec.DagOutputsSpec_DagOutputArtifactSpec{ArtifactSelectors: []*pipelinespec.DagOutputsSpec_ArtifactSelectorSpec{{ProducerSubtask: shardName, OutputArtifactKey: out.Name}}}
		in := step.KFPMergePrefix + out.Name
		mergeComp.InputDefinitions.Artifacts[in] = &pipelinespec.ComponentInputsSpec_ArtifactSpec{ArtifactType: artifactType(out.Type), IsArtifactList: true}
		mergeTask.Inputs.Artifacts[in] = &pipelinespec.TaskInputsSpec_InputArtifactSpec{Kind: &pipelinespec.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifact{
			TaskOutputArtifact: &pipelinespec.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifactSpec{ProducerTask: loopName, OutputArtifactKey: collected}}}
	}
	loop.Implementation = &pipelinespec.ComponentSpec_Dag{Dag: body}
	components["comp-"+loopName] = loop
	components["comp-"+name] = mergeComp
	deploy.Executors["exec-"+name] = exec
	dag.Tasks[loopName] = loopTask
	dag.Tasks[name] = mergeTask
}

// shardList is the loop's items: a JSON list of "I/N".
func shardList(n int) string {
	data, _ := json.Marshal(step.Shards(n))
	return string(data)
}
