package argo

import (
	"fmt"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/mlsteps/mlsteps/steps/step"
)

// CacheRootParam is the template parameter every step template takes: the
// artifact root (a bucket URL) its outputs and cache live under.
const CacheRootParam = "cache-root"

// StepTemplate derives a ClusterWorkflowTemplate for one step from its
// contract: an input parameter per input artifact (a URI; optional inputs
// default to "") and per step parameter (with its default), an output
// parameter per output artifact (its URI). Workflows call it with
// templateRef {name: mlsteps-<step>, template: <step>, clusterScope: true}.
func StepTemplate(spec *step.Spec, image string) *wfv1.ClusterWorkflowTemplate {
	args := []string{"--log-format", "json", spec.Name, "--cache-root", "{{inputs.parameters." + CacheRootParam + "}}", "--result-dir", ResultDir}
	tmpl := wfv1.Template{Name: spec.Name}
	tmpl.Inputs.Parameters = append(tmpl.Inputs.Parameters, wfv1.Parameter{Name: CacheRootParam,
		Description: wfv1.AnyStringPtr("artifact root (s3://, gs://, azblob://) for outputs and the content cache")})
	for _, in := range spec.Inputs {
		p := wfv1.Parameter{Name: "in-" + in.Name, Description: wfv1.AnyStringPtr(fmt.Sprintf("%s URI: %s", in.Type, in.Description))}
		if in.Optional {
			p.Default = wfv1.AnyStringPtr("") // --in name= means "not given"
		}
		args = append(args, "--in", fmt.Sprintf("%s={{inputs.parameters.in-%s}}", in.Name, in.Name))
		tmpl.Inputs.Parameters = append(tmpl.Inputs.Parameters, p)
	}
	for _, par := range spec.Params {
		p := wfv1.Parameter{Name: par.Name, Description: wfv1.AnyStringPtr(par.Description)}
		if par.Default != nil && !par.Secret {
			p.Default = wfv1.AnyStringPtr(fmt.Sprint(defaultText(par)))
		}
		if len(par.Enum) > 0 {
			for _, e := range par.Enum {
				p.Enum = append(p.Enum, wfv1.AnyString(e))
			}
		}
		tmpl.Inputs.Parameters = append(tmpl.Inputs.Parameters, p)
		args = append(args, fmt.Sprintf("--%s={{inputs.parameters.%s}}", par.Name, par.Name))
	}
	for _, out := range spec.Outputs {
		tmpl.Outputs.Parameters = append(tmpl.Outputs.Parameters, wfv1.Parameter{Name: out.Name,
			Description: wfv1.AnyStringPtr(fmt.Sprintf("%s URI: %s", out.Type, out.Description)),
			ValueFrom:   &wfv1.ValueFrom{Path: ResultDir + "/" + out.Name}})
	}
	tmpl.Container = &corev1.Container{Image: image, Command: []string{"mlsteps"}, Args: args}
	return &wfv1.ClusterWorkflowTemplate{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "ClusterWorkflowTemplate"},
		ObjectMeta: metav1.ObjectMeta{Name: "mlsteps-" + spec.Name, Labels: map[string]string{"app.kubernetes.io/part-of": "mlsteps"}, Annotations: map[string]string{"mlsteps.dev/step-version": spec.Version}},
		Spec:       wfv1.WorkflowSpec{Templates: []wfv1.Template{tmpl}},
	}
}

func defaultText(p step.Param) any {
	if p.Type == step.Duration {
		return fmt.Sprint(p.Default)
	}
	return p.Default
}

// RBAC returns what Argo's executor needs in a namespace to run mlsteps
// steps: a ServiceAccount and a Role bound to it that may report task
// results (Argo ≥ 3.4's workflowtaskresults).
func RBAC(namespace string) []any {
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "mlsteps"}}
	}
	return []any{
		&corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta("mlsteps")},
		&rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: meta("mlsteps-executor"),
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"argoproj.io"}, Resources: []string{"workflowtaskresults"}, Verbs: []string{"create", "patch"}}}},
		&rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"}, ObjectMeta: meta("mlsteps-executor"),
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "mlsteps-executor"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "mlsteps", Namespace: namespace}}},
	}
}
