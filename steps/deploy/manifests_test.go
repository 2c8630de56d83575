package deploy_test

import (
	"slices"
	"strings"
	"testing"

	kserve "github.com/kserve/kserve/pkg/apis/serving/v1beta1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/steps/deploy"
)

// TestManifests decodes the manifests a push writes into the upstream Go
// types, KServe's v1beta1 InferenceService and Kubernetes' Deployment and
// Service, with unknown fields rejected, and checks that they serve the
// pushed model: serve --watch on the registry pointer (or KServe's ONNX
// runtime on the version's folder), readiness on /v2/health/ready, a
// Service whose selector and port reach the pods.
func TestManifests(t *testing.T) {
	e := newEnv(t)
	mlp := e.model("penguins-mlp.onnx")
	reg := e.root.Join("registry").String()
	r, err := deploy.OpenRegistry(e.ctx, e.store, reg)
	if err != nil {
		t.Fatal(err)
	}
	pointer := r.PointerURI("penguins").String()
	// The check has teeth: a misspelt field is refused.
	var probe kserve.InferenceService
	if err := yaml.UnmarshalStrict([]byte("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nspec:\n  predictor:\n    minReplica: 1\n"), &probe); err == nil {
		t.Fatal("strict decoding accepted an unknown field")
	}
	for i, predictor := range []string{deploy.PredictorMlsteps, deploy.PredictorONNX} {
		t.Run(predictor, func(t *testing.T) {
			out := e.root.Join("deploy-" + predictor)
			rec, err := e.deploy("deploy-"+predictor, map[string]string{"model": mlp}, map[string]any{"registry": reg, "name": "penguins",
				"skip-blessing": true, "skip-infra-validation": true, "force": true, "predictor": predictor, "image": "ghcr.io/acme/mlsteps:1.2", "namespace": "models"})
			if err != nil {
				t.Fatal(err)
			}
			version := r.VersionURI("penguins", i+1).String()
			if rec["uri"] != version {
				t.Fatalf("record uri %v, want %s", rec["uri"], version)
			}
			a, err := e.store.Open(e.ctx, out.Join("pushed_model"), artifacts.TypePushedModel)
			if err != nil {
				t.Fatal(err)
			}
			isvcYAML, err := a.ReadFile(e.ctx, deploy.InferenceServiceFile)
			if err != nil {
				t.Fatal(err)
			}
			var isvc kserve.InferenceService
			if err := yaml.UnmarshalStrict(isvcYAML, &isvc); err != nil {
				t.Fatalf("InferenceService does not decode strictly into KServe's type: %v\n%s", err, isvcYAML)
			}
			if isvc.APIVersion != "serving.kserve.io/v1beta1" || isvc.Kind != "InferenceService" || isvc.Name != "penguins" || isvc.Namespace != "models" ||
				isvc.Annotations["mlsteps.dev/model-version"] != strings.TrimPrefix(version[strings.LastIndex(version, "/"):], "/") {
				t.Fatalf("InferenceService metadata: %+v %+v", isvc.TypeMeta, isvc.ObjectMeta)
			}
			p := isvc.Spec.Predictor
			switch predictor {
			case deploy.PredictorONNX:
				if p.Model == nil || p.Model.ModelFormat.Name != "onnx" || p.Model.StorageURI == nil || *p.Model.StorageURI != version ||
					p.Model.ProtocolVersion == nil || *p.Model.ProtocolVersion != "v2" || len(p.Containers) != 0 {
					t.Fatalf("ONNX predictor: %+v", p)
				}
			default:
				if p.Model != nil || len(p.Containers) != 1 {
					t.Fatalf("custom predictor: %+v", p)
				}
				checkServeContainer(t, p.Containers[0], pointer)
			}

			depYAML, err := a.ReadFile(e.ctx, deploy.DeploymentFile)
			if err != nil {
				t.Fatal(err)
			}
			docs := strings.Split(string(depYAML), "\n---\n")
			if len(docs) != 2 {
				t.Fatalf("%s: %d documents, want a Deployment and a Service", deploy.DeploymentFile, len(docs))
			}
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict([]byte(docs[0]), &d); err != nil {
				t.Fatalf("Deployment does not decode strictly: %v\n%s", err, docs[0])
			}
			var s corev1.Service
			if err := yaml.UnmarshalStrict([]byte(docs[1]), &s); err != nil {
				t.Fatalf("Service does not decode strictly: %v\n%s", err, docs[1])
			}
			if d.Kind != "Deployment" || d.APIVersion != "apps/v1" || s.Kind != "Service" || s.APIVersion != "v1" || d.Namespace != "models" {
				t.Fatalf("kinds: %+v %+v", d.TypeMeta, s.TypeMeta)
			}
			tmpl := d.Spec.Template
			for k, v := range d.Spec.Selector.MatchLabels {
				if tmpl.Labels[k] != v || s.Spec.Selector[k] != v {
					t.Fatalf("selector %v does not match the pod labels %v or the Service's %v", d.Spec.Selector.MatchLabels, tmpl.Labels, s.Spec.Selector)
				}
			}
			if len(tmpl.Spec.Containers) != 1 {
				t.Fatalf("containers: %+v", tmpl.Spec.Containers)
			}
			c := tmpl.Spec.Containers[0]
			checkServeContainer(t, c, pointer)
			if c.Image != "ghcr.io/acme/mlsteps:1.2" || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.StrVal != c.Ports[0].Name {
				t.Fatalf("image %s, service ports %+v, container ports %+v", c.Image, s.Spec.Ports, c.Ports)
			}
		})
	}
}

func checkServeContainer(t *testing.T, c corev1.Container, pointer string) {
	t.Helper()
	if !slices.Equal(c.Command, []string{"mlsteps"}) || !slices.Contains(c.Args, "penguins="+pointer) || c.Args[0] != "serve" || c.Args[1] != "--watch" {
		t.Fatalf("container runs %v %v, want mlsteps serve --watch penguins=%s", c.Command, c.Args, pointer)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/v2/health/ready" ||
		c.ReadinessProbe.HTTPGet.Port.StrVal != "http" || len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Fatalf("container probes and ports: %+v %+v", c.ReadinessProbe, c.Ports)
	}
	if !slices.Contains(c.Args, "0.0.0.0:8080") {
		t.Fatalf("serve does not listen on the pod's port: %v", c.Args)
	}
}
