package submit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	kfpapi "github.com/kubeflow/pipelines/backend/api/v2beta1/go_client"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// KFP talks to a Kubeflow Pipelines API server (v2beta1).
type KFP struct {
	Server string // e.g. http://ml-pipeline-ui.kubeflow:80 or the API service
	Token  string
	HTTP   *http.Client
}

// Run is what Submit started.
type Run struct {
	PipelineID, VersionID, RunID string
}

// Submit uploads spec as a new version of the pipeline named after it
// (creating the pipeline the first time), then creates a run of that
// version with the given parameters.
func (k *KFP) Submit(ctx context.Context, spec *pipelinespec.PipelineSpec, params map[string]string, experimentID string) (*Run, error) {
	c := newClient(k.Server, k.Token, k.HTTP)
	name := spec.GetPipelineInfo().GetName()
	pipelineID, err := k.pipelineID(ctx, c, name)
	if err != nil {
		return nil, err
	}
	specStruct, err := toStruct(spec)
	if err != nil {
		return nil, err
	}
	version := &kfpapi.PipelineVersion{PipelineId: pipelineID, DisplayName: fmt.Sprintf("%s-%s", name, time.Now().UTC().Format("20060102-150405")), PipelineSpec: specStruct}
	var created kfpapi.PipelineVersion
	if err := c.do(ctx, http.MethodPost, "/apis/v2beta1/pipelines/"+url.PathEscape(pipelineID)+"/versions", marshal(version), protoOut(&created)); err != nil {
		return nil, fmt.Errorf("kfp: upload pipeline version: %w", err)
	}
	rc := &kfpapi.RuntimeConfig{Parameters: map[string]*structpb.Value{}, PipelineRoot: spec.GetDefaultPipelineRoot()}
	for k, v := range params {
		rc.Parameters[k] = structpb.NewStringValue(v)
	}
	run := &kfpapi.Run{ExperimentId: experimentID, DisplayName: name, RuntimeConfig: rc,
		PipelineSource: &kfpapi.Run_PipelineVersionReference{PipelineVersionReference: &kfpapi.PipelineVersionReference{PipelineId: pipelineID, PipelineVersionId: created.GetPipelineVersionId()}}}
	var started kfpapi.Run
	if err := c.do(ctx, http.MethodPost, "/apis/v2beta1/runs", marshal(run), protoOut(&started)); err != nil {
		return nil, fmt.Errorf("kfp: create run: %w", err)
	}
	return &Run{PipelineID: pipelineID, VersionID: created.GetPipelineVersionId(), RunID: started.GetRunId()}, nil
}

// pipelineID finds the pipeline by name, creating it when absent.
func (k *KFP) pipelineID(ctx context.Context, c client, name string) (string, error) {
	var p kfpapi.Pipeline
	err := c.do(ctx, http.MethodGet, "/apis/v2beta1/pipelines/names/"+url.PathEscape(name), nil, protoOut(&p))
	var he *HTTPError
	switch {
	case err == nil && p.GetPipelineId() != "":
		return p.GetPipelineId(), nil
	case err != nil && !(errors.As(err, &he) && he.Status == http.StatusNotFound):
		return "", fmt.Errorf("kfp: find pipeline %s: %w", name, err)
	}
	if err := c.do(ctx, http.MethodPost, "/apis/v2beta1/pipelines", marshal(&kfpapi.Pipeline{DisplayName: name}), protoOut(&p)); err != nil {
		return "", fmt.Errorf("kfp: create pipeline %s: %w", name, err)
	}
	return p.GetPipelineId(), nil
}

// Wait follows a run until it ends and returns its final state.
func (k *KFP) Wait(ctx context.Context, runID string, every time.Duration, progress func(state string)) (string, error) {
	c := newClient(k.Server, k.Token, k.HTTP)
	var state kfpapi.RuntimeState
	err := poll(ctx, every, func() (bool, error) {
		var r kfpapi.Run
		if err := c.do(ctx, http.MethodGet, "/apis/v2beta1/runs/"+url.PathEscape(runID), nil, protoOut(&r)); err != nil {
			return false, fmt.Errorf("kfp: get run %s: %w", runID, err)
		}
		if r.GetState() != state && progress != nil {
			progress(r.GetState().String())
		}
		state = r.GetState()
		switch state {
		case kfpapi.RuntimeState_SUCCEEDED, kfpapi.RuntimeState_FAILED, kfpapi.RuntimeState_SKIPPED, kfpapi.RuntimeState_CANCELED:
			return true, nil
		}
		return false, nil
	})
	return state.String(), err
}

func marshal(m proto.Message) []byte {
	data, _ := protojson.Marshal(m)
	return data
}

func protoOut(m proto.Message) func([]byte) error {
	return func(data []byte) error { return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, m) }
}

func toStruct(m proto.Message) (*structpb.Struct, error) {
	st := &structpb.Struct{}
	if err := protojson.Unmarshal(marshal(m), st); err != nil {
		return nil, err
	}
	return st, nil
}
