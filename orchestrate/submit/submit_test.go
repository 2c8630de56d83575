package submit_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/apiclient/workflow"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/templateresolution"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	kfpapi "github.com/kubeflow/pipelines/backend/api/v2beta1/go_client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mlsteps/mlsteps/orchestrate/argo"
	"github.com/mlsteps/mlsteps/orchestrate/kfp"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline/pipelinetest"
	"github.com/mlsteps/mlsteps/orchestrate/submit"
)

const text = `name: penguins
root: s3://ml/pipelines
parameters:
  source: {default: "s3://raw/penguins.json"}
steps:
  - name: import
    step: import
    params: {source: "{{params.source}}"}
  - name: stats
    step: stats
    inputs: {examples: "{{steps.import.outputs.examples}}"}
`

func graph(t *testing.T) *pipeline.Graph {
	return pipelinetest.Graph(t, pipelinetest.Registry(t), "p.yaml", text)
}

// strictJSON decodes a request body into the server's own request type,
// refusing unknown fields, as a real API server would not silently drop them.
func strictJSON(r *http.Request, into any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

type noTemplates struct{}

func (noTemplates) Get(string) (*wfv1.WorkflowTemplate, error) { return nil, io.EOF }

// TestArgoSubmit talks to a local server that checks every request against
// Argo's own request types and validator and answers as Argo Server does.
func TestArgoSubmit(t *testing.T) {
	reg := pipelinetest.Registry(t)
	obj, err := argo.Compile(graph(t), reg, argo.Options{Image: "img:1"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		polls int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, `{"code":16,"message":"token not valid"}`, http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/v1/workflows/ml":
			var req workflow.WorkflowCreateRequest
			if err := strictJSON(r, &req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if err := validate.ValidateWorkflow(noTemplates{}, &templateresolution.NullClusterWorkflowTemplateGetter{}, req.Workflow, nil, validate.ValidateOpts{}); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			wf := req.Workflow.DeepCopy()
			wf.Name = wf.GenerateName + "x7k2p"
			json.NewEncoder(w).Encode(wf)
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/workflows/ml/penguins-x7k2p":
			mu.Lock()
			polls++
			phase := wfv1.WorkflowRunning
			if polls > 2 {
				phase = wfv1.WorkflowSucceeded
			}
			mu.Unlock()
			json.NewEncoder(w).Encode(&wfv1.Workflow{Status: wfv1.WorkflowStatus{Phase: phase}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	c := &submit.Argo{Server: srv.URL, Token: "s3cret"}
	ctx := context.Background()
	name, err := c.Create(ctx, "ml", obj.(*wfv1.Workflow))
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	phase, err := c.Wait(ctx, "ml", name, time.Millisecond, func(p string) { seen = append(seen, p) })
	if err != nil || phase != "Succeeded" || strings.Join(seen, ",") != "Running,Succeeded" {
		t.Errorf("wait: %s %v, phases %v", phase, err, seen)
	}
	bad := &submit.Argo{Server: srv.URL, Token: "wrong"}
	if _, err := bad.Create(ctx, "ml", obj.(*wfv1.Workflow)); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("bad token: %v", err)
	}
}

func protoJSON(r *http.Request, m proto.Message) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	return protojson.UnmarshalOptions{DiscardUnknown: false}.Unmarshal(data, m)
}

func reply(w http.ResponseWriter, m proto.Message) {
	data, _ := protojson.Marshal(m)
	w.Write(data)
}

// TestKFPSubmit talks to a local server that decodes every request into
// KFP's v2beta1 types with unknown fields rejected, parses the uploaded
// pipeline spec strictly, and answers as the KFP API server does.
func TestKFPSubmit(t *testing.T) {
	reg := pipelinetest.Registry(t)
	spec, err := kfp.Compile(graph(t), reg, kfp.Options{Image: "img:1"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		calls []string
		polls int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		mu.Unlock()
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/apis/v2beta1/pipelines/names/penguins":
			http.Error(w, `{"error":"pipeline not found","code":5}`, http.StatusNotFound)
		case r.Method == http.MethodPost && r.URL.Path == "/apis/v2beta1/pipelines":
			var p kfpapi.Pipeline
			if err := protoJSON(r, &p); err != nil || p.GetDisplayName() != "penguins" {
				http.Error(w, "bad pipeline", http.StatusBadRequest)
				return
			}
			p.PipelineId = "pl-1"
			reply(w, &p)
		case r.Method == http.MethodPost && r.URL.Path == "/apis/v2beta1/pipelines/pl-1/versions":
			var v kfpapi.PipelineVersion
			if err := protoJSON(r, &v); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			raw, _ := protojson.Marshal(v.GetPipelineSpec())
			var ps pipelinespec.PipelineSpec
			if err := protojson.Unmarshal(raw, &ps); err != nil || ps.GetRoot().GetDag() == nil {
				http.Error(w, "pipeline_spec is not a KFP pipeline spec", http.StatusBadRequest)
				return
			}
			v.PipelineVersionId = "pv-1"
			reply(w, &v)
		case r.Method == http.MethodPost && r.URL.Path == "/apis/v2beta1/runs":
			var run kfpapi.Run
			if err := protoJSON(r, &run); err != nil || run.GetPipelineVersionReference().GetPipelineVersionId() != "pv-1" {
				http.Error(w, "bad run", http.StatusBadRequest)
				return
			}
			if got := run.GetRuntimeConfig().GetParameters()["source"].GetStringValue(); got != "s3://raw/other.json" {
				http.Error(w, "parameter lost: "+got, http.StatusBadRequest)
				return
			}
			run.RunId = "run-1"
			reply(w, &run)
		case r.Method == http.MethodGet && r.URL.Path == "/apis/v2beta1/runs/run-1":
			mu.Lock()
			polls++
			state := kfpapi.RuntimeState_RUNNING
			if polls > 1 {
				state = kfpapi.RuntimeState_SUCCEEDED
			}
			mu.Unlock()
			reply(w, &kfpapi.Run{RunId: "run-1", State: state})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := &submit.KFP{Server: srv.URL}
	ctx := context.Background()
	run, err := c.Submit(ctx, spec, map[string]string{"source": "s3://raw/other.json"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if *run != (submit.Run{PipelineID: "pl-1", VersionID: "pv-1", RunID: "run-1"}) {
		t.Errorf("run %+v", run)
	}
	state, err := c.Wait(ctx, run.RunID, time.Millisecond, nil)
	if err != nil || state != "SUCCEEDED" {
		t.Errorf("wait: %s %v", state, err)
	}
	want := "GET /apis/v2beta1/pipelines/names/penguins,POST /apis/v2beta1/pipelines,POST /apis/v2beta1/pipelines/pl-1/versions,POST /apis/v2beta1/runs"
	if got := strings.Join(calls[:4], ","); got != want {
		t.Errorf("calls %s", got)
	}
}
