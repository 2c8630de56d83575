package submit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/argoproj/argo-workflows/v3/pkg/apiclient/workflow"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
)

// Argo talks to an Argo Server.
type Argo struct {
	Server string // e.g. https://argo-server.argo:2746
	Token  string
	HTTP   *http.Client // nil: a client with a 60 s timeout
}

// Create submits wf in namespace and returns the workflow's name.
func (a *Argo) Create(ctx context.Context, namespace string, wf *wfv1.Workflow) (string, error) {
	body, err := json.Marshal(&workflow.WorkflowCreateRequest{Namespace: namespace, Workflow: wf})
	if err != nil {
		return "", err
	}
	var created wfv1.Workflow
	c := newClient(a.Server, a.Token, a.HTTP)
	if err := c.do(ctx, http.MethodPost, "/api/v1/workflows/"+url.PathEscape(namespace), body, jsonOut(&created)); err != nil {
		return "", fmt.Errorf("argo: create workflow: %w", err)
	}
	if created.Name == "" {
		return "", fmt.Errorf("argo: create workflow: the server answered without a name")
	}
	return created.Name, nil
}

// Wait follows a workflow until it ends and returns its final phase
// (Succeeded, Failed or Error). progress, when set, hears every change.
func (a *Argo) Wait(ctx context.Context, namespace, name string, every time.Duration, progress func(phase string)) (string, error) {
	c := newClient(a.Server, a.Token, a.HTTP)
	var phase wfv1.WorkflowPhase
	err := poll(ctx, every, func() (bool, error) {
		var wf wfv1.Workflow
		if err := c.do(ctx, http.MethodGet, "/api/v1/workflows/"+url.PathEscape(namespace)+"/"+url.PathEscape(name), nil, jsonOut(&wf)); err != nil {
			return false, fmt.Errorf("argo: get workflow %s: %w", name, err)
		}
		if wf.Status.Phase != phase && progress != nil {
			progress(string(wf.Status.Phase))
		}
		phase = wf.Status.Phase
		return wf.Status.Fulfilled(), nil
	})
	return string(phase), err
}
