package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/step"
)

// TestKFPExecutor runs a step the way KFP v2's launcher does: the executor
// input JSON in, artifacts at the local paths the launcher mounts for their
// URIs, and the executor output file checked.
func TestKFPExecutor(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(step.KFPLocalRootEnv, dir)
	outFile := filepath.Join(dir, "tmp", "kfp_outputs", "output_metadata.json")
	uri := "minio://mlpipeline/v2/artifacts/penguins/run-1/import/examples"
	input := fmt.Sprintf(`{
  "inputs": {"parameterValues": {"source": %q, "split": "train=0.8,eval=0.2", "seed": 7}},
  "outputs": {
    "artifacts": {"examples": {"artifacts": [{"name": "examples", "type": {"schemaTitle": "system.Dataset"}, "uri": %q}]}},
    "parameters": {"examples__row_count": {"outputFile": "/tmp/unused"}},
    "outputFile": %q
  }
}`, testenv.VegaData(t, "penguins.json"), uri, outFile)
	code, _, stderr := runApp(t, "import", "--kfp-executor-input", input)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	store := artifacts.NewStore()
	defer store.Close()
	a, err := store.Open(context.Background(), artifacts.MustParseURI(filepath.Join(dir, "minio/mlpipeline/v2/artifacts/penguins/run-1/import/examples")), artifacts.TypeDataset)
	if err != nil {
		t.Fatalf("no artifact at the launcher's local path: %v", err)
	}
	if p := a.Producer.Parameters; p["seed"] != float64(7) || p["split"] != "train=0.8,eval=0.2" {
		t.Errorf("parameters from the executor input: %v", p)
	}
	data, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		ParameterValues map[string]string `json:"parameterValues"`
		Artifacts       map[string]struct {
			Artifacts []struct {
				Name     string         `json:"name"`
				URI      string         `json:"uri"`
				Metadata map[string]any `json:"metadata"`
			} `json:"artifacts"`
		} `json:"artifacts"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	got := out.Artifacts["examples"].Artifacts
	if out.ParameterValues["examples__row_count"] != "344" {
		t.Errorf("output parameter for conditions: %v", out.ParameterValues)
	}
	if len(got) != 1 || got[0].URI != uri || got[0].Metadata["row_count"] != float64(344) || got[0].Metadata["mlsteps_digest"] != a.Digest {
		t.Errorf("executor output %s", data)
	}

	// A malformed executor input is a usage error.
	if code, _, stderr := runApp(t, "import", "--kfp-executor-input", "{not json"); code != 2 {
		t.Errorf("bad executor input: exit %d, %s", code, stderr)
	}
}
