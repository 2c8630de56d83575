package kfp

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
)

var pipelineParamRE = regexp.MustCompile(`^\{\{\s*params\.([A-Za-z0-9_-]+)\s*\}\}$`)

// resources sets a container's requests as KFP's ResourceSpec takes them.
func resources(c *pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec, r pipeline.Resources, path string) *pipeline.Problem {
	if r == (pipeline.Resources{}) {
		return nil
	}
	spec := &pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec_ResourceSpec{}
	check := func(text, field string) *pipeline.Problem {
		if text == "" {
			return nil
		}
		if _, err := resource.ParseQuantity(text); err != nil {
			return &pipeline.Problem{Path: path + ".resources." + field, Msg: fmt.Sprintf("%q is not a Kubernetes quantity", text)}
		}
		return nil
	}
	for _, f := range []struct{ text, field string }{{r.CPU, "cpu"}, {r.Memory, "memory"}, {r.GPU, "gpu"}} {
		if p := check(f.text, f.field); p != nil {
			return p
		}
	}
	spec.ResourceCpuRequest, spec.ResourceCpuLimit = r.CPU, r.CPU
	spec.ResourceMemoryRequest, spec.ResourceMemoryLimit = r.Memory, r.Memory
	if r.GPU != "" {
		n, err := strconv.ParseInt(r.GPU, 10, 64)
		if err != nil {
			return &pipeline.Problem{Path: path + ".resources.gpu", Msg: fmt.Sprintf("%q: the kfp target takes a whole number of GPUs", r.GPU)}
		}
		spec.Accelerator = &pipelinespec.PipelineDeploymentConfig_PipelineContainerSpec_ResourceSpec_AcceleratorConfig{
			ResourceType: "nvidia.com/gpu", ResourceCount: strconv.FormatInt(n, 10)}
	}
	c.Resources = spec
	return nil
}
