package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/internal/testenv"
)

// TestValidateProcess runs `mlsteps validate` as a real process: the gate
// exits 3 with all three artifacts committed (anomalies first), a
// hand-edited schema with a typo exits 2 naming the field, and --fail-on
// never exits 0.
func TestValidateProcess(t *testing.T) {
	bin := testenv.Binary(t)
	penguins := testenv.VegaData(t, "penguins.json")
	dir := t.TempDir()
	root := "file://" + dir
	mlsteps := func(args ...string) (int, string) {
		cmd := exec.Command(bin, append([]string{"--log-format", "json"}, args...)...)
		out, err := cmd.CombinedOutput()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := mlsteps("import", "--source", penguins, "--out-root", root, "--seed", "7"); code != 0 {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	// One penguin's Sex is "." and lands in eval, outside train's domain.
	code, out := mlsteps("validate", "--in", "examples="+root+"/examples", "--out-root", root+"/v1")
	if code != 3 || !strings.Contains(out, "gate validate said no") {
		t.Fatalf("validate: exit %d, want 3\n%s", code, out)
	}
	for _, f := range []string{"statistics/statistics.json", "statistics/report.html", "schema/schema.json", "anomalies/anomalies.json", "anomalies/artifact.json"} {
		if _, err := os.Stat(filepath.Join(dir, "v1", f)); err != nil {
			t.Errorf("after the gate: %v", err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "v1", "anomalies", "anomalies.json"))
	if err != nil {
		t.Fatal(err)
	}
	var an struct {
		AnomalyInfo map[string]struct {
			Severity string `json:"severity"`
		} `json:"anomaly_info"`
	}
	if err := json.Unmarshal(data, &an); err != nil || an.AnomalyInfo["Sex"].Severity != "ERROR" {
		t.Errorf("anomalies.json: %v\n%s", err, data)
	}

	// The edited schema goes back in; a typo is a usage error naming it.
	schema, err := os.ReadFile(filepath.Join(dir, "v1", "schema", "schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	typo := strings.Replace(string(schema), `"min_fraction"`, `"min_fractoin"`, 1)
	typoPath := filepath.Join(dir, "typo.json")
	if err := os.WriteFile(typoPath, []byte(typo), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = mlsteps("validate", "--in", "examples="+root+"/examples", "--schema-file", typoPath, "--out-root", root+"/v2")
	if code != 2 || !strings.Contains(out, `field \"min_fractoin\": unknown field`) {
		t.Errorf("a schema with a typo: exit %d, want 2 naming the field\n%s", code, out)
	}
	for _, o := range []string{"statistics", "schema", "anomalies"} {
		if _, err := os.Stat(filepath.Join(dir, "v2", o)); err == nil {
			t.Errorf("a bad input left output %s behind", o)
		}
	}
	// Accepting "." as a value of Sex (by editing the domain) clears the gate.
	fixed := strings.Replace(string(schema), `"FEMALE",`, `".", "FEMALE",`, 1)
	fixedPath := filepath.Join(dir, "fixed.json")
	if err := os.WriteFile(fixedPath, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out = mlsteps("validate", "--in", "examples="+root+"/examples", "--schema-file", fixedPath, "--out-root", root+"/v3")
	if code != 0 {
		t.Errorf("the edited schema: exit %d, want 0\n%s", code, out)
	}
	code, out = mlsteps("validate", "--in", "examples="+root+"/examples", "--in", "schema="+root+"/examples", "--out-root", root+"/v4")
	if code != 2 || !strings.Contains(out, "expected a Schema") {
		t.Errorf("a Dataset as the schema: exit %d\n%s", code, out)
	}
	code, out = mlsteps("validate", "--in", "examples="+root+"/examples", "--in", "schema="+root+"/v1/schema", "--fail-on", "never", "--out-root", root+"/v5")
	if code != 0 {
		t.Errorf("--fail-on never: exit %d\n%s", code, out)
	}
	code, out = mlsteps("describe", "validate", "--json")
	if code != 0 || !strings.Contains(out, `"fail-on"`) {
		t.Errorf("describe: exit %d\n%s", code, out)
	}
}
