package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/step"
)

// countSpec is a small real step that reads a Dataset and writes a
// Statistics artifact, so the lineage below has a downstream.
func countSpec() *step.Spec {
	return &step.Spec{
		Name: "count", Version: "0.0.1", Summary: "count",
		Inputs:  []step.Port{{Name: "examples", Type: artifacts.TypeDataset, Description: "rows"}},
		Outputs: []step.Port{{Name: "statistics", Type: artifacts.TypeStatistics, Description: "counts"}},
		Run: func(ctx context.Context, r *step.Run) error {
			w, err := r.Output(ctx, "statistics")
			if err != nil {
				return err
			}
			return w.WriteJSON(ctx, "statistics.json", map[string]string{"of": r.Input("examples").Digest})
		},
	}
}

func TestLineageCLI(t *testing.T) {
	penguins := testenv.VegaData(t, "penguins.json")
	dir := t.TempDir()
	root := "file://" + filepath.Join(dir, "runs")
	for _, seed := range []string{"0", "1"} {
		if code, _, stderr := runApp(t, "import", "--source", penguins, "--seed", seed, "--out-root", root+"/import"+seed); code != 0 {
			t.Fatalf("import: exit %d: %s", code, stderr)
		}
	}
	store := artifacts.NewStore()
	defer store.Close()
	for _, seed := range []string{"0", "1"} {
		err := step.Execute(context.Background(), countSpec(), step.Invocation{Inputs: map[string]string{"examples": root + "/import" + seed + "/examples"},
			OutRoot: root + "/count" + seed}, step.Env{Store: store})
		if err != nil {
			t.Fatal(err)
		}
	}
	data0, stats0, stats1 := root+"/import0/examples", root+"/count0/statistics", root+"/count1/statistics"
	db := "sqlite://" + filepath.Join(dir, "lineage.db")

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
	}{
		{"upstream text", []string{"lineage", stats0}, 0, []string{"Statistics ", "made by count 0.0.1 [succeeded]", "examples: Dataset ", "made by import "}},
		{"flags after the URI", []string{"lineage", data0, "--down", "--root", root}, 0, []string{"read as examples by count 0.0.1", "statistics: Statistics "}},
		{"both as mermaid", []string{"lineage", "--both", "--root", root, "--format", "mermaid", data0}, 0, []string{"flowchart LR"}},
		{"dot", []string{"lineage", "--format", "dot", stats0}, 0, []string{"digraph lineage"}},
		{"json", []string{"lineage", "--format", "json", stats0}, 0, []string{`"executions"`}},
		{"down needs a root", []string{"lineage", "--down", data0}, 2, nil},
		{"two directions", []string{"lineage", "--up", "--down", "--root", root, data0}, 2, nil},
		{"bad format", []string{"lineage", "--format", "svg", data0}, 2, nil},
		{"unknown artifact", []string{"lineage", root + "/nothing"}, 2, nil},
		{"diff", []string{"lineage", "diff", stats0, stats1}, 0, []string{"inputs.examples:", "inputs.examples > parameters.seed: 0 -> 1"}},
		{"index", []string{"lineage", "index", "--root", root, "--db", db}, 0, []string{"8 records listed, 8 read", "4 artifacts, 4 executions, 6 links"}},
		{"index again reads nothing", []string{"lineage", "index", "--root", root, "--db", db}, 0, []string{"8 records listed, 0 read"}},
		{"query the index", []string{"lineage", "--down", "--db", db, data0}, 0, []string{"read as examples by count"}},
		{"bad db url", []string{"lineage", "--db", "mysql://x", data0}, 2, nil},
		{"verify clean", []string{"lineage", "verify", "--root", root}, 0, []string{"ok: every recorded link"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runApp(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
		})
	}

	// Tamper with one artifact's payload and delete another: verify lists both, exit 1.
	u0 := artifacts.MustParseURI(stats0)
	p, _ := u0.LocalPath()
	if err := os.WriteFile(filepath.Join(p, "statistics.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	d1, _ := artifacts.MustParseURI(root + "/import1/examples").LocalPath()
	if err := os.RemoveAll(d1); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := runApp(t, "lineage", "verify", "--root", root, "--format", "json")
	var problems []struct{ URI, Kind string }
	if err := json.Unmarshal([]byte(stdout), &problems); err != nil {
		t.Fatalf("verify --format json: %v\n%s", err, stdout)
	}
	kinds := map[string]bool{}
	for _, pr := range problems {
		kinds[pr.Kind+" "+pr.URI] = true
	}
	if code != 1 || !kinds["tampered "+stats0] || !kinds["missing "+root+"/import1/examples"] {
		t.Errorf("verify after tampering: exit %d, problems %v", code, problems)
	}
}
