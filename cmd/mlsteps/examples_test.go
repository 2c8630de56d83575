package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/internal/testenv"
)

// TestExamplesCompile: every pipeline under examples/ checks against the
// step contracts and compiles for Argo and for KFP.
func TestExamplesCompile(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(t), "examples", "*", "pipeline.yaml"))
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		for _, target := range []string{"argo", "kfp"} {
			code, stdout, stderr := runApp(t, "compile", f, "--target", target, "--root", "s3://ml-artifacts/mlsteps?region=us-east-1", "--image", "ghcr.io/mlsteps/mlsteps:0.1.0")
			if code != 0 || !strings.Contains(stdout, "penguins") && !strings.Contains(stdout, "name:") {
				t.Errorf("%s --target %s: exit %d\n%s", f, target, code, stderr)
			}
			// An example may check in its compiled forms; they must be
			// what the compiler makes now.
			golden := filepath.Join(filepath.Dir(f), "compiled", target+".yaml")
			if have, err := os.ReadFile(golden); err == nil && string(have) != stdout {
				t.Errorf("%s is stale: run `make manifests` and commit it", golden)
			}
		}
	}
}
