package kfp

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
	"github.com/mlsteps/mlsteps/steps/step"
)

// SchemaVersion is the pipeline spec schema this compiler emits.
const SchemaVersion = "2.1.0"

// Options shape the emitted spec; zero values are the defaults.
type Options struct {
	// Image is the mlsteps image (default "mlsteps:latest").
	Image string
	// Root is the pipeline root (default: the pipeline's root; KFP's own
	// default when both are empty).
	Root string
}

// SchemaTitle maps our artifact types to KFP's artifact types.
func SchemaTitle(t artifacts.Type) string {
	switch t {
	case artifacts.TypeDataset, artifacts.TypePredictions, artifacts.TypeDeadLetters:
		return "system.Dataset"
	case artifacts.TypeModel, artifacts.TypePushedModel:
		return "system.Model"
	case artifacts.TypeEvaluation:
		return "system.Metrics"
	}
	return "mlsteps." + string(t)
}

func artifactType(t artifacts.Type) *pipelinespec.ArtifactTypeSchema {
	return &pipelinespec.ArtifactTypeSchema{Kind: &pipelinespec.ArtifactTypeSchema_SchemaTitle{SchemaTitle: SchemaTitle(t)}, SchemaVersion: "0.0.1"}
}

func parameterType(t step.ParamType) pipelinespec.ParameterType_ParameterTypeEnum {
	switch t {
	case step.Int:
		return pipelinespec.ParameterType_NUMBER_INTEGER
	case step.Float:
		return pipelinespec.ParameterType_NUMBER_DOUBLE
	case step.Bool:
		return pipelinespec.ParameterType_BOOLEAN
	}
	return pipelinespec.ParameterType_STRING
}

// Component derives a step's KFP component and executor from its contract.
// With a cacheRoot, the step also consults and feeds mlsteps' content cache
// there (the same keys as local and Argo runs), copying a hit into KFP's
// output URIs.
func Component(spec *step.Spec, image, cacheRoot string) (*pipelinespec.ComponentSpec, *pipelinespec.PipelineDeploymentConfig_ExecutorSpec) {
	c := &pipelinespec.ComponentSpec{
		InputDefinitions:  &pipelinespec.ComponentInputsSpec{Artifacts: map[string]*pipelinespec.ComponentInputsSpec_ArtifactSpec{}, Parameters: map[string]*pipelinespec.ComponentInputsSpec_ParameterSpec{}},
		OutputDefinitions: &pipelinespec.ComponentOutputsSpec{Artifacts: map[string]*pipelinespec.ComponentOutputsSpec_ArtifactSpec{}},
		Implementation:    &pipelinespec.ComponentSpec_ExecutorLabel{ExecutorLabel: "exec-" + spec.Name},
	}
	for _, in := range spec.Inputs {
		c.InputDefinitions.Artifacts[in.Name] = &pipelinespec.ComponentInputsSpec_ArtifactSpec{ArtifactType: artifactType(in.Type), IsOptional: true}
		// The same input given as a literal URI rather than a task's artifact.
		c.InputDefinitions.Parameters[step.KFPInputPrefix+in.Name] = &pipelinespec.ComponentInputsSpec_ParameterSpec{
			ParameterType: pipelinespec.ParameterType_STRING, IsOptional: true, DefaultValue: structpb.NewStringValue("")}
	}
	for _, p := range spec.Params {
		ps := &pipelinespec.ComponentInputsSpec_ParameterSpec{ParameterType: parameterType(p.Type), IsOptional: !p.Required, Description: p.Description}
		if p.Default != nil && !p.Secret {
			ps.DefaultValue = defaultValue(p)
		}
		c.InputDefinitions.Parameters[p.Name] = ps
	}
	for _, out := range spec.Outputs {
		c.OutputDefinitions.Artifacts[out.Name] = &pipelinespec.ComponentOutputsSpec_ArtifactSpec{ArtifactType: artifactType(out.Type)}
	}
	args := []string{"--log-format", "json", spec.Name, "--kfp-executor-input", "{{$}}"}
	if cacheRoot != "" {
		args = append(args, "--cache-root", cacheRoot)
	}
	exec := &pipelinespec.PipelineDeploymentConfig_ExecutorSpec{Spec: &pipelinespec.PipelineDeploymentConfig_ExecutorSpec_Container{
		Container: &pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec{Image: image, Command: []string{"mlsteps"}, Args: args}}}
	return c, exec
}

func defaultValue(p step.Param) *structpb.Value {
	switch v := p.Default.(type) {
	case int64:
		return structpb.NewNumberValue(float64(v))
	case float64:
		return structpb.NewNumberValue(v)
	case bool:
		return structpb.NewBoolValue(v)
	}
	return structpb.NewStringValue(fmt.Sprint(p.Default))
}

// Compile builds the KFP pipeline spec of g.
func Compile(g *pipeline.Graph, reg *step.Registry, opts Options) (*pipelinespec.PipelineSpec, error) {
	p := g.Pipeline
	if opts.Image == "" {
		opts.Image = "mlsteps:latest"
	}
	if opts.Root == "" {
		opts.Root = p.Root
	}
	errs := &pipeline.SpecError{File: p.File}
	cacheRoot := ""
	if u, err := artifacts.ParseURI(opts.Root); err == nil && u.Scheme != "file" && u.Scheme != "mem" {
		cacheRoot = u.String()
	}
	root := &pipelinespec.ComponentSpec{InputDefinitions: &pipelinespec.ComponentInputsSpec{Parameters: map[string]*pipelinespec.ComponentInputsSpec_ParameterSpec{}}}
	for _, par := range p.Parameters {
		ps := &pipelinespec.ComponentInputsSpec_ParameterSpec{ParameterType: pipelinespec.ParameterType_STRING, Description: par.Description}
		if par.HasDefault {
			ps.DefaultValue, ps.IsOptional = structpb.NewStringValue(par.Default), true
		}
		root.InputDefinitions.Parameters[par.Name] = ps
	}
	dag := &pipelinespec.DagSpec{Tasks: map[string]*pipelinespec.PipelineTaskSpec{}}
	deploy := &pipelinespec.PipelineDeploymentConfig{Executors: map[string]*pipelinespec.PipelineDeploymentConfig_ExecutorSpec{}}
	components := map[string]*pipelinespec.ComponentSpec{}
	for _, name := range g.Order() {
		s := g.Step(name)
		path := fmt.Sprintf("steps[%d]", slices.IndexFunc(p.Steps, func(x *pipeline.Step) bool { return x.Name == name }))
		spec, _ := reg.Lookup(s.Type)
		comp, exec := Component(spec, opts.Image, cacheRoot)
		// One component per task: a task's resources live on its executor.
		compName, execName := "comp-"+name, "exec-"+name
		comp.Implementation = &pipelinespec.ComponentSpec_ExecutorLabel{ExecutorLabel: execName}
		if prob := resources(exec.GetContainer(), s.Resources, path); prob != nil {
			errs.Problems = append(errs.Problems, *prob)
			continue
		}
		components[compName], deploy.Executors[execName] = comp, exec
		task := &pipelinespec.PipelineTaskSpec{
			TaskInfo:       &pipelinespec.PipelineTaskInfo{Name: name},
			ComponentRef:   &pipelinespec.ComponentRef{Name: compName},
			Inputs:         &pipelinespec.TaskInputsSpec{Artifacts: map[string]*pipelinespec.TaskInputsSpec_InputArtifactSpec{}, Parameters: map[string]*pipelinespec.TaskInputsSpec_InputParameterSpec{}},
			DependentTasks: g.Deps(name),
			CachingOptions: &pipelinespec.PipelineTaskSpec_CachingOptions{EnableCache: !s.NoCache},
		}
		if s.Retries > 0 {
			task.RetryPolicy = &pipelinespec.PipelineTaskSpec_RetryPolicy{MaxRetryCount: int32(s.Retries)}
		}
		refs := g.Refs(name)
		for in, v := range s.Inputs {
			if ref, ok := refs[in]; ok {
				task.Inputs.Artifacts[in] = &pipelinespec.TaskInputsSpec_InputArtifactSpec{Kind: &pipelinespec.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifact{
					TaskOutputArtifact: &pipelinespec.TaskInputsSpec_InputArtifactSpec_TaskOutputArtifactSpec{ProducerTask: ref.Step, OutputArtifactKey: ref.Output}}}
				continue
			}
			task.Inputs.Parameters[step.KFPInputPrefix+in] = constant(structpb.NewStringValue(v.Text))
		}
		for pname, v := range s.Params {
			decl, _ := spec.Param(pname)
			task.Inputs.Parameters[pname] = paramInput(v.Text, decl)
		}
		if s.Shards > 0 {
			if s.When != "" {
				errs.Problems = append(errs.Problems, pipeline.Problem{Path: path + ".when", Msg: "the kfp target cannot put a condition on a sharded step yet (the argo target and local runs can)"})
				continue
			}
			fanOut(g, reg, s, spec, comp, exec, task, components, deploy, dag)
			continue
		}
		dag.Tasks[name] = task
	}
	if len(errs.Problems) > 0 {
		return nil, errs
	}
	addConditions(g, components, dag.Tasks)
	root.Implementation = &pipelinespec.ComponentSpec_Dag{Dag: dag}
	deployStruct, err := toStruct(deploy)
	if err != nil {
		return nil, err
	}
	return &pipelinespec.PipelineSpec{
		PipelineInfo:        &pipelinespec.PipelineInfo{Name: p.Name},
		DeploymentSpec:      deployStruct,
		SdkVersion:          "mlsteps",
		SchemaVersion:       SchemaVersion,
		Components:          components,
		Root:                root,
		DefaultPipelineRoot: opts.Root,
	}, nil
}

// paramInput wires a step parameter: a whole {{params.x}} from the
// pipeline's input, anything else a constant of the parameter's type.
func paramInput(text string, decl step.Param) *pipelinespec.TaskInputsSpec_InputParameterSpec {
	if m := pipelineParamRE.FindStringSubmatch(text); m != nil {
		return &pipelinespec.TaskInputsSpec_InputParameterSpec{Kind: &pipelinespec.TaskInputsSpec_InputParameterSpec_ComponentInputParameter{ComponentInputParameter: m[1]}}
	}
	switch decl.Type {
	case step.Int, step.Float:
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return constant(structpb.NewNumberValue(f))
		}
	case step.Bool:
		if b, err := strconv.ParseBool(text); err == nil {
			return constant(structpb.NewBoolValue(b))
		}
	}
	return constant(structpb.NewStringValue(text))
}

func constant(v *structpb.Value) *pipelinespec.TaskInputsSpec_InputParameterSpec {
	return &pipelinespec.TaskInputsSpec_InputParameterSpec{Kind: &pipelinespec.TaskInputsSpec_InputParameterSpec_RuntimeValue{
		RuntimeValue: &pipelinespec.ValueOrRuntimeParameter{Value: &pipelinespec.ValueOrRuntimeParameter_Constant{Constant: v}}}}
}

func toStruct(m proto.Message) (*structpb.Struct, error) {
	data, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	st := &structpb.Struct{}
	if err := protojson.Unmarshal(data, st); err != nil {
		return nil, err
	}
	return st, nil
}

// Marshal renders the spec as KFP's IR YAML.
func Marshal(spec *pipelinespec.PipelineSpec) ([]byte, error) {
	data, err := protojson.MarshalOptions{Multiline: false}.Marshal(spec)
	if err != nil {
		return nil, err
	}
	// protojson output is not byte-stable; YAML via a sorted map is.
	return yaml.JSONToYAML(data)
}

// Parse reads IR YAML back strictly (unknown fields are errors).
func Parse(data []byte) (*pipelinespec.PipelineSpec, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	spec := &pipelinespec.PipelineSpec{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, spec); err != nil {
		return nil, err
	}
	return spec, nil
}

// ComponentPipeline is a step as a standalone KFP component file: the IR of
// a one-task pipeline whose inputs are the component's, as KFP's SDK writes
// a compiled component, so it can be loaded and reused in other pipelines.
func ComponentPipeline(spec *step.Spec, image string) (*pipelinespec.PipelineSpec, error) {
	comp, exec := Component(spec, image, "")
	root := &pipelinespec.ComponentSpec{InputDefinitions: &pipelinespec.ComponentInputsSpec{
		Artifacts: comp.InputDefinitions.Artifacts, Parameters: comp.InputDefinitions.Parameters}}
	task := &pipelinespec.PipelineTaskSpec{
		TaskInfo:     &pipelinespec.PipelineTaskInfo{Name: spec.Name},
		ComponentRef: &pipelinespec.ComponentRef{Name: "comp-" + spec.Name},
		Inputs:       &pipelinespec.TaskInputsSpec{Artifacts: map[string]*pipelinespec.TaskInputsSpec_InputArtifactSpec{}, Parameters: map[string]*pipelinespec.TaskInputsSpec_InputParameterSpec{}},
	}
	for name := range comp.InputDefinitions.Artifacts {
		task.Inputs.Artifacts[name] = &pipelinespec.TaskInputsSpec_InputArtifactSpec{Kind: &pipelinespec.TaskInputsSpec_InputArtifactSpec_ComponentInputArtifact{ComponentInputArtifact: name}}
	}
	for name := range comp.InputDefinitions.Parameters {
		task.Inputs.Parameters[name] = &pipelinespec.TaskInputsSpec_InputParameterSpec{Kind: &pipelinespec.TaskInputsSpec_InputParameterSpec_ComponentInputParameter{ComponentInputParameter: name}}
	}
	root.Implementation = &pipelinespec.ComponentSpec_Dag{Dag: &pipelinespec.DagSpec{Tasks: map[string]*pipelinespec.PipelineTaskSpec{spec.Name: task}}}
	deploy, err := toStruct(&pipelinespec.PipelineDeploymentConfig{Executors: map[string]*pipelinespec.PipelineDeploymentConfig_ExecutorSpec{"exec-" + spec.Name: exec}})
	if err != nil {
		return nil, err
	}
	return &pipelinespec.PipelineSpec{PipelineInfo: &pipelinespec.PipelineInfo{Name: spec.Name, Description: spec.Summary},
		DeploymentSpec: deploy, SdkVersion: "mlsteps", SchemaVersion: SchemaVersion,
		Components: map[string]*pipelinespec.ComponentSpec{"comp-" + spec.Name: comp}, Root: root}, nil
}

// addConditions turns `when` conditions into KFP's trigger policies: the
// upstream component outputs the property as a parameter (OUTPUT__KEY,
// which the step writes into its executor output), the task takes it as a
// pipeline channel, and its condition compares it.
func addConditions(g *pipeline.Graph, components map[string]*pipelinespec.ComponentSpec, tasks map[string]*pipelinespec.PipelineTaskSpec) {
	for name, task := range tasks {
		c := g.When(name)
		if c == nil {
			continue
		}
		param := c.Output + step.KFPPropertySep + c.Property
		up := components["comp-"+c.Step]
		if up.OutputDefinitions.Parameters == nil {
			up.OutputDefinitions.Parameters = map[string]*pipelinespec.ComponentOutputsSpec_ParameterSpec{}
		}
		up.OutputDefinitions.Parameters[param] = &pipelinespec.ComponentOutputsSpec_ParameterSpec{ParameterType: pipelinespec.ParameterType_STRING}
		channel := step.KFPChannelPrefix + c.Step + "-" + param
		task.Inputs.Parameters[channel] = &pipelinespec.TaskInputsSpec_InputParameterSpec{Kind: &pipelinespec.TaskInputsSpec_InputParameterSpec_TaskOutputParameter{
			TaskOutputParameter: &pipelinespec.TaskInputsSpec_InputParameterSpec_TaskOutputParameterSpec{ProducerTask: c.Step, OutputParameterKey: param}}}
		components["comp-"+name].InputDefinitions.Parameters[channel] = &pipelinespec.ComponentInputsSpec_ParameterSpec{ParameterType: pipelinespec.ParameterType_STRING, IsOptional: true}
		op := "=="
		if c.Negate {
			op = "!="
		}
		task.TriggerPolicy = &pipelinespec.PipelineTaskSpec_TriggerPolicy{Condition: fmt.Sprintf("inputs.parameter_values['%s'] %s %s", channel, op, strconv.Quote(c.Value))}
	}
}
