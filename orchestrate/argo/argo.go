package argo

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
	"github.com/mlsteps/mlsteps/steps/step"
)

// Kinds of document Compile emits.
const (
	KindWorkflow         = "Workflow"
	KindWorkflowTemplate = "WorkflowTemplate"
)

// ResultDir is where a task's step writes its result files; the output
// parameters read them.
const ResultDir = "/tmp/mlsteps-result"

// Options shape the emitted workflow; zero values are the defaults.
type Options struct {
	// Image is the mlsteps image (default "mlsteps:latest").
	Image string
	// Root is the artifact root, a bucket URL the pods can reach
	// (default: the pipeline's root). file:// roots are refused.
	Root string
	// Kind is Workflow (default) or WorkflowTemplate.
	Kind string
	// Namespace of the emitted object (default: none, kubectl's).
	Namespace string
	// ServiceAccount the pods run as.
	ServiceAccount string
	// SecretEnv names a Secret whose keys become the containers'
	// environment (bucket credentials such as AWS_ACCESS_KEY_ID).
	SecretEnv string
}

// Compile builds the Argo object for g. It returns a *wfv1.Workflow or a
// *wfv1.WorkflowTemplate.
func Compile(g *pipeline.Graph, reg *step.Registry, opts Options) (any, error) {
	p := g.Pipeline
	if opts.Image == "" {
		opts.Image = "mlsteps:latest"
	}
	if opts.Kind == "" {
		opts.Kind = KindWorkflow
	}
	if opts.Root == "" {
		opts.Root = p.Root
	}
	errs := &pipeline.SpecError{File: p.File}
	root, err := artifacts.ParseURI(opts.Root)
	switch {
	case opts.Root == "":
		errs.Problems = append(errs.Problems, pipeline.Problem{Path: "root", Msg: "the argo target needs an artifact root the pods can reach: set root in the pipeline or --root (s3://, gs://, azblob://)"})
	case err != nil:
		errs.Problems = append(errs.Problems, pipeline.Problem{Path: "root", Msg: err.Error()})
	case root.Scheme == "file" || root.Scheme == "mem":
		errs.Problems = append(errs.Problems, pipeline.Problem{Path: "root", Msg: fmt.Sprintf("%s is local to one machine; the argo target needs a bucket URL (s3://, gs://, azblob://)", opts.Root)})
	}
	if opts.Kind != KindWorkflow && opts.Kind != KindWorkflowTemplate {
		errs.Problems = append(errs.Problems, pipeline.Problem{Path: "--kind", Msg: fmt.Sprintf("%q: want Workflow or WorkflowTemplate", opts.Kind)})
	}

	spec := wfv1.WorkflowSpec{Entrypoint: "main", ServiceAccountName: opts.ServiceAccount}
	for _, par := range p.Parameters {
		ap := wfv1.Parameter{Name: par.Name, Description: wfv1.AnyStringPtr(par.Description)}
		if par.Description == "" {
			ap.Description = nil
		}
		if par.HasDefault {
			ap.Value = wfv1.AnyStringPtr(par.Default)
		}
		spec.Arguments.Parameters = append(spec.Arguments.Parameters, ap)
	}
	dag := &wfv1.DAGTemplate{FailFast: ptr(false)}
	owner := map[string]string{} // task -> the pipeline step it runs (a sharded step has three tasks)
	for _, name := range g.Order() {
		s := g.Step(name)
		stepSpec, _ := reg.Lookup(s.Type)
		path := fmt.Sprintf("steps[%d]", slices.IndexFunc(p.Steps, func(x *pipeline.Step) bool { return x.Name == name }))
		tmpl, task, err := compileStep(g, s, stepSpec, root, opts, path)
		if err != nil {
			errs.Problems = append(errs.Problems, *err)
			continue
		}
		if s.Shards > 0 {
			tmpls, tasks := fanOut(s, stepSpec, tmpl, task, opts)
			spec.Templates = append(spec.Templates, tmpls...)
			dag.Tasks = append(dag.Tasks, tasks...)
			for _, t := range tasks {
				owner[t.Name] = name
			}
			continue
		}
		spec.Templates = append(spec.Templates, tmpl)
		dag.Tasks = append(dag.Tasks, task)
		owner[name] = name
	}
	if len(errs.Problems) > 0 {
		return nil, errs
	}
	addConditions(g, owner, spec.Templates, dag.Tasks)
	spec.Templates = append([]wfv1.Template{{Name: "main", DAG: dag}}, spec.Templates...)
	meta := metav1.ObjectMeta{Namespace: opts.Namespace, Labels: map[string]string{"mlsteps.dev/pipeline": p.Name}}
	if opts.Kind == KindWorkflowTemplate {
		meta.Name = p.Name
		return &wfv1.WorkflowTemplate{TypeMeta: metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: KindWorkflowTemplate}, ObjectMeta: meta, Spec: spec}, nil
	}
	meta.GenerateName = p.Name + "-"
	return &wfv1.Workflow{TypeMeta: metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: KindWorkflow}, ObjectMeta: meta, Spec: spec}, nil
}

var paramRefRE = regexp.MustCompile(`\{\{\s*params\.([A-Za-z0-9_-]+)\s*\}\}`)

// compileStep builds a task's container template and its DAG task.
func compileStep(g *pipeline.Graph, s *pipeline.Step, spec *step.Spec, root artifacts.URI, opts Options, path string) (wfv1.Template, wfv1.DAGTask, *pipeline.Problem) {
	args := []string{"--log-format", "json", s.Type, "--cache-root", root.String(), "--result-dir", ResultDir}
	if s.NoCache {
		args = append(args, "--no-cache")
	}
	tmpl := wfv1.Template{Name: s.Name}
	task := wfv1.DAGTask{Name: s.Name, Template: s.Name, Dependencies: g.Deps(s.Name)}
	refs := g.Refs(s.Name)
	for _, in := range sortedKeys(s.Inputs) {
		if ref, ok := refs[in]; ok {
			tmpl.Inputs.Parameters = append(tmpl.Inputs.Parameters, wfv1.Parameter{Name: in})
			task.Arguments.Parameters = append(task.Arguments.Parameters,
				wfv1.Parameter{Name: in, Value: wfv1.AnyStringPtr(fmt.Sprintf("{{tasks.%s.outputs.parameters.%s}}", ref.Step, ref.Output))})
			args = append(args, "--in", fmt.Sprintf("%s={{inputs.parameters.%s}}", in, in))
			continue
		}
		args = append(args, "--in", in+"="+s.Inputs[in].Text)
	}
	for _, name := range sortedKeys(s.Params) {
		v := paramRefRE.ReplaceAllString(s.Params[name].Text, "{{workflow.parameters.$1}}")
		args = append(args, "--"+name+"="+v)
	}
	for _, out := range spec.Outputs {
		tmpl.Outputs.Parameters = append(tmpl.Outputs.Parameters, wfv1.Parameter{Name: out.Name,
			ValueFrom: &wfv1.ValueFrom{Path: ResultDir + "/" + out.Name}})
	}
	c := &corev1.Container{Image: opts.Image, Command: []string{"mlsteps"}, Args: args}
	if opts.SecretEnv != "" {
		c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: opts.SecretEnv}}}}
	}
	res, prob := resources(s.Resources, path)
	if prob != nil {
		return tmpl, task, prob
	}
	c.Resources = res
	tmpl.Container = c
	if s.Retries > 0 {
		// Retry failures (exit 1) only: usage errors and gates are not transient.
		tmpl.RetryStrategy = &wfv1.RetryStrategy{Limit: ptr(intstr.FromInt(s.Retries)), Expression: "asInt(lastRetry.exitCode) == 1",
			Backoff: &wfv1.Backoff{Duration: "10s", Factor: ptr(intstr.FromInt(2)), MaxDuration: "10m"}}
	}
	return tmpl, task, nil
}

func resources(r pipeline.Resources, path string) (corev1.ResourceRequirements, *pipeline.Problem) {
	out := corev1.ResourceRequirements{}
	set := func(list *corev1.ResourceList, name corev1.ResourceName, text, field string) *pipeline.Problem {
		if text == "" {
			return nil
		}
		q, err := resource.ParseQuantity(text)
		if err != nil {
			return &pipeline.Problem{Path: path + ".resources." + field, Msg: fmt.Sprintf("%q is not a Kubernetes quantity", text)}
		}
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[name] = q
		return nil
	}
	if p := set(&out.Requests, corev1.ResourceCPU, r.CPU, "cpu"); p != nil {
		return out, p
	}
	if p := set(&out.Requests, corev1.ResourceMemory, r.Memory, "memory"); p != nil {
		return out, p
	}
	if p := set(&out.Limits, "nvidia.com/gpu", r.GPU, "gpu"); p != nil {
		return out, p
	}
	return out, nil
}

// Marshal renders the object as YAML, without the empty status and
// creation timestamp the Go types carry.
func Marshal(obj any) ([]byte, error) {
	data, err := yaml.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var lines []string
	skip := false
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(l, "status:"):
			skip = true
			continue
		case skip && strings.HasPrefix(l, " "):
			continue
		case strings.TrimSpace(l) == "creationTimestamp: null":
			continue
		}
		skip = false
		lines = append(lines, l)
	}
	return []byte(strings.Join(lines, "\n")), nil
}

func ptr[T any](v T) *T { return &v }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// addConditions turns `when` conditions into Argo's: the upstream template
// exposes the property as an output parameter (the step writes
// OUTPUT.KEY into its result folder) and the task's when compares it.
// owner maps each task to its pipeline step: a sharded step's plan,
// shard and merge tasks all take its condition, and the upstream's
// outputs are its merge's.
func addConditions(g *pipeline.Graph, owner map[string]string, templates []wfv1.Template, tasks []wfv1.DAGTask) {
	templateOf := map[string]string{}
	for _, t := range tasks {
		templateOf[t.Name] = t.Template
	}
	for i := range tasks {
		c := g.When(owner[tasks[i].Name])
		if c == nil {
			continue
		}
		param := c.Output + step.KFPPropertySep + c.Property
		for j := range templates {
			if templates[j].Name != templateOf[c.Step] {
				continue
			}
			if !slices.ContainsFunc(templates[j].Outputs.Parameters, func(p wfv1.Parameter) bool { return p.Name == param }) {
				templates[j].Outputs.Parameters = append(templates[j].Outputs.Parameters, wfv1.Parameter{Name: param,
					ValueFrom: &wfv1.ValueFrom{Path: ResultDir + "/" + c.Output + "." + c.Property, Default: wfv1.AnyStringPtr("")}})
			}
		}
		op := "=="
		if c.Negate {
			op = "!="
		}
		tasks[i].When = fmt.Sprintf("{{tasks.%s.outputs.parameters.%s}} %s %s", c.Step, param, op, c.Value)
	}
}
