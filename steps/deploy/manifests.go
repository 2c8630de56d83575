package deploy

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Manifest files in a PushedModel artifact.
const (
	InferenceServiceFile = "manifests/inferenceservice.yaml"
	DeploymentFile       = "manifests/deployment.yaml" // a Deployment, then a Service
)

// Predictor kinds of the InferenceService.
const (
	PredictorMlsteps = "mlsteps" // a custom container running mlsteps serve
	PredictorONNX    = "onnx"    // KServe's own ONNX runtime reading the version's folder
)

// servePort is the port mlsteps serve listens on in a pod.
const servePort = 8080

// manifestInput is what the manifests say.
type manifestInput struct {
	Name      string // the model's registry name, also the Kubernetes name
	Namespace string // "" leaves it to kubectl
	Image     string
	Predictor string
	Version   int
	Digest    string
	Pointer   string // the registry pointer serve follows (redacted)
	Storage   string // the version's folder (redacted), for the ONNX predictor
	Registry  string
}

// InferenceService is the part of KServe's serving.kserve.io/v1beta1
// InferenceService that deploy writes; tests check it against KServe's
// published CRD schema.
type InferenceService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              InferenceServiceSpec `json:"spec"`
}

// InferenceServiceSpec holds the predictor.
type InferenceServiceSpec struct {
	Predictor PredictorSpec `json:"predictor"`
}

// PredictorSpec is either a model in a serving runtime or custom containers.
type PredictorSpec struct {
	MinReplicas *int32             `json:"minReplicas,omitempty"`
	Model       *ModelSpec         `json:"model,omitempty"`
	Containers  []corev1.Container `json:"containers,omitempty"`
}

// ModelSpec names a model format and where the runtime downloads it from.
type ModelSpec struct {
	ModelFormat     ModelFormat `json:"modelFormat"`
	ProtocolVersion string      `json:"protocolVersion,omitempty"`
	StorageURI      string      `json:"storageUri"`
}

// ModelFormat is KServe's model format selector.
type ModelFormat struct {
	Name string `json:"name"`
}

func (in manifestInput) meta() metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      in.Name,
		Namespace: in.Namespace,
		Labels:    in.labels(),
		Annotations: map[string]string{
			"mlsteps.dev/registry":      in.Registry,
			"mlsteps.dev/model-version": strconv.Itoa(in.Version),
			"mlsteps.dev/model-digest":  in.Digest,
		},
	}
}

func (in manifestInput) labels() map[string]string {
	return map[string]string{"app.kubernetes.io/name": in.Name, "app.kubernetes.io/managed-by": "mlsteps"}
}

// container runs mlsteps serve on the registry pointer, so a later push or
// `mlsteps registry rollback` reaches the pods without a redeploy.
func (in manifestInput) container(name string) corev1.Container {
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}},
			PeriodSeconds: 5, FailureThreshold: 3}
	}
	return corev1.Container{
		Name:           name,
		Image:          in.Image,
		Command:        []string{"mlsteps"},
		Args:           []string{"serve", "--watch", in.Name + "=" + in.Pointer, "--addr", fmt.Sprintf("0.0.0.0:%d", servePort)},
		Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: servePort, Protocol: corev1.ProtocolTCP}},
		ReadinessProbe: probe("/v2/health/ready"),
		LivenessProbe:  probe("/v2/health/live"),
	}
}

// inferenceService renders the KServe InferenceService.
func (in manifestInput) inferenceService() ([]byte, error) {
	one := int32(1)
	isvc := InferenceService{
		TypeMeta:   metav1.TypeMeta{APIVersion: "serving.kserve.io/v1beta1", Kind: "InferenceService"},
		ObjectMeta: in.meta(),
		Spec:       InferenceServiceSpec{Predictor: PredictorSpec{MinReplicas: &one}},
	}
	switch in.Predictor {
	case PredictorONNX:
		isvc.Spec.Predictor.Model = &ModelSpec{ModelFormat: ModelFormat{Name: "onnx"}, ProtocolVersion: "v2", StorageURI: in.Storage}
	default:
		// KServe names the serving container kserve-container.
		isvc.Spec.Predictor.Containers = []corev1.Container{in.container("kserve-container")}
	}
	return yaml.Marshal(isvc)
}

// deployment renders a plain Deployment and its Service, one YAML
// document each.
func (in manifestInput) deployment() ([]byte, error) {
	one := int32(1)
	labels := in.labels()
	selector := map[string]string{"app.kubernetes.io/name": in.Name}
	d := appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: in.meta(),
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{in.container("serve")}},
			},
		},
	}
	s := corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: in.meta(),
		Spec: corev1.ServiceSpec{
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}},
		},
	}
	dy, err := yaml.Marshal(d)
	if err != nil {
		return nil, err
	}
	sy, err := yaml.Marshal(s)
	if err != nil {
		return nil, err
	}
	return append(append(dy, "---\n"...), sy...), nil
}
