package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/workflow/templateresolution"
	"github.com/argoproj/argo-workflows/v3/workflow/validate"
	"sigs.k8s.io/yaml"

	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/orchestrate/kfp"
	"github.com/mlsteps/mlsteps/steps/catalog"
)

type noTemplates struct{}

func (noTemplates) Get(name string) (*wfv1.WorkflowTemplate, error) {
	return nil, os.ErrNotExist
}

// TestManifestsUpToDate fails when the checked-in manifests/ differ from
// what `make manifests` generates, and checks each Argo template with
// Argo's validator.
func TestManifestsUpToDate(t *testing.T) {
	reg, err := catalog.Registry()
	if err != nil {
		t.Fatal(err)
	}
	files, err := manifestFiles(reg, "ghcr.io/mlsteps/mlsteps:latest", "argo")
	if err != nil {
		t.Fatal(err)
	}
	if have, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "steps.md")); err != nil || !bytes.Equal(have, catalogMarkdown(reg)) {
		t.Errorf("docs/steps.md is stale or missing: run `make manifests` and commit it")
	}
	dir := filepath.Join(testenv.RepoRoot(t), "manifests")
	for name, data := range files {
		have, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(have, data) {
			t.Errorf("manifests/%s is stale or missing: run `make manifests` and commit it", name)
		}
		if strings.HasPrefix(name, "kfp/") {
			if _, err := kfp.Parse(data); err != nil {
				t.Errorf("%s does not parse into KFP's protos: %v", name, err)
			}
			continue
		}
		if !strings.HasPrefix(name, "argo/") {
			continue
		}
		var cwt wfv1.ClusterWorkflowTemplate
		if err := yaml.UnmarshalStrict(data, &cwt); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := validate.ValidateClusterWorkflowTemplate(noTemplates{}, &templateresolution.NullClusterWorkflowTemplateGetter{}, &cwt, nil, validate.ValidateOpts{Lint: true}); err != nil {
			t.Errorf("%s: argo validator: %v", name, err)
		}
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "argo", "*.yaml"))
	for _, e := range entries {
		if _, ok := files["argo/"+filepath.Base(e)]; !ok {
			t.Errorf("manifests/argo/%s has no step any more: run `make manifests`", filepath.Base(e))
		}
	}
}
