package validate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/validation"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/step"
	"github.com/mlsteps/mlsteps/steps/validate"
)

func writeRaw(t *testing.T, name, content string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBadInput: each bad input gets a clear message and its exit code; a
// gate still commits all three outputs.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	penguins := e.importFile("penguins", testenv.VegaData(t, "penguins.json"), "train=1")
	empty := e.importFile("empty", writeRaw(t, "empty.csv", "a,b\n"), "train=1")
	allNull := e.importFile("allnull", writeRaw(t, "nulls.csv", "a,b\n1,NA\n2,NA\n3,\n"), "train=1")
	goodSchema := `{"feature": [{"name": "a", "type": "INT"}, {"name": "b", "type": "BYTES"}]}`
	schemaOK := e.writeArtifact("schema-ok", artifacts.TypeSchema, "schema.json", goodSchema)
	schemaMissingCol := e.writeArtifact("schema-missing", artifacts.TypeSchema, "schema.json",
		`{"feature": [{"name": "Species", "type": "BYTES"}, {"name": "Wing Span (mm)", "type": "FLOAT", "presence": {"min_fraction": 1}}]}`)
	schemaTypo := e.writeArtifact("schema-typo", artifacts.TypeSchema, "schema.json",
		`{"feature": [{"name": "Species", "type": "BYTES", "presence": {"min_fractoin": 1}}]}`)
	schemaBadType := e.writeArtifact("schema-badtype", artifacts.TypeSchema, "schema.json",
		`{"feature": [{"name": "Species", "type": "STRING"}]}`)
	statsTypo := e.writeArtifact("stats-typo", artifacts.TypeStatistics, "statistics.json",
		`{"datasets": [{"name": "train", "num_exampels": "3", "features": []}]}`)
	notStats := e.writeArtifact("not-stats", artifacts.TypeAnomalies, "anomalies.json", `{"anomaly_info": {}}`)

	cases := []struct {
		name     string
		inputs   map[string]string
		wantExit int
		wantMsg  string
		check    func(t *testing.T, an *validation.Anomalies)
	}{
		{"empty dataset, no schema", map[string]string{"examples": empty}, step.ExitUsage,
			"split train has no rows, so there is nothing to infer a schema from", nil},
		{"empty dataset with a schema", map[string]string{"examples": empty, "schema": schemaOK}, step.ExitGate, "", func(t *testing.T, an *validation.Anomalies) {
			if !an.DataMissing || an.DatasetAnomalyInfo == nil || an.DatasetAnomalyInfo.Reason[0].Type != validation.ReasonLowNumExamples {
				t.Errorf("anomalies %+v", an)
			}
		}},
		{"a column of all nulls", map[string]string{"examples": allNull}, step.ExitGate, "", func(t *testing.T, an *validation.Anomalies) {
			if !has(reasons(an, "b"), validation.ReasonNotPresent) || len(an.AnomalyInfo) != 1 {
				t.Errorf("anomalies %+v", an.AnomalyInfo)
			}
		}},
		{"a schema naming a missing column", map[string]string{"examples": penguins, "schema": schemaMissingCol}, step.ExitGate, "", func(t *testing.T, an *validation.Anomalies) {
			if !has(reasons(an, "Wing Span (mm)"), validation.ReasonMissingColumn) ||
				!strings.Contains(an.AnomalyInfo["Wing Span (mm)"].Description, `column "Wing Span (mm)" is in the schema but not in the data`) {
				t.Errorf("anomalies %+v", an.AnomalyInfo)
			}
			if !has(reasons(an, "Island"), validation.ReasonNewColumn) || an.AnomalyInfo["Island"].Severity != validation.SeverityWarning {
				t.Errorf("Island: %+v", an.AnomalyInfo["Island"])
			}
		}},
		{"a schema with a typo", map[string]string{"examples": penguins, "schema": schemaTypo}, step.ExitUsage,
			`schema.json: field "min_fractoin": unknown field`, nil},
		{"a schema with an unknown type", map[string]string{"examples": penguins, "schema": schemaBadType}, step.ExitUsage,
			`field "feature \"Species\".type": "STRING" is not INT, FLOAT or BYTES`, nil},
		{"baseline statistics with a typo", map[string]string{"examples": penguins, "baseline": statsTypo}, step.ExitUsage,
			`statistics.json: field "num_exampels": unknown field`, nil},
		{"a baseline of the wrong type", map[string]string{"examples": penguins, "baseline": notStats}, step.ExitUsage,
			"it is a Anomalies, expected a Statistics", nil},
		{"examples of the wrong type", map[string]string{"examples": schemaOK}, step.ExitUsage, "it is a Schema, expected a Dataset", nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := "run" + string(rune('a'+i))
			err := e.validate(out, c.inputs, nil)
			if got := step.ExitCode(err); got != c.wantExit {
				t.Fatalf("exit %d (%v), want %d", got, err, c.wantExit)
			}
			if c.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), c.wantMsg)) {
				t.Errorf("error %v\nwant it to contain %q", err, c.wantMsg)
			}
			if c.wantExit == step.ExitGate {
				c.check(t, e.anomalies(out))
			}
		})
	}
}

// TestCancelled: a cancelled run fails and commits nothing.
func TestCancelled(t *testing.T) {
	e := newEnv(t)
	ex := e.importFile("examples", testenv.VegaData(t, "movies.json"), "train=1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := step.Execute(ctx, validate.Spec(), step.Invocation{
		Inputs: map[string]string{"examples": ex}, OutRoot: e.root.Join("v").String(),
	}, step.Env{Store: e.store})
	if err == nil || step.ExitCode(err) == step.ExitOK || step.ExitCode(err) == step.ExitGate {
		t.Fatalf("cancelled run: %v (exit %d)", err, step.ExitCode(err))
	}
	for _, o := range []string{"statistics", "schema", "anomalies"} {
		if _, err := e.store.Open(context.Background(), e.root.Join("v").Join(o), ""); err == nil {
			t.Errorf("output %s committed by a cancelled run", o)
		}
	}
}

// TestTamperedPart: a part file changed after its Dataset was committed
// fails the step with an integrity error, whether the change still
// decodes (another valid Parquet file of the same size) or not, and no
// statistics are written.
func TestTamperedPart(t *testing.T) {
	e := newEnv(t)
	for _, how := range []string{"flip a byte", "swap in another split's part"} {
		t.Run(how, func(t *testing.T) {
			name := strings.ReplaceAll(how, " ", "-")
			ds := e.importFile(name, testenv.VegaData(t, "penguins.json"), "train=1,eval=1")
			dir := filepath.Join(strings.TrimPrefix(ds, "file://"), "Split-train")
			part := filepath.Join(dir, "part-00000.parquet")
			data, err := os.ReadFile(part)
			if err != nil {
				t.Fatal(err)
			}
			switch how {
			case "flip a byte":
				data[len(data)/2] ^= 0xff
			default:
				if data, err = os.ReadFile(filepath.Join(dir, "..", "Split-eval", "part-00000.parquet")); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(part, data, 0o644); err != nil {
				t.Fatal(err)
			}
			err = e.validate(name+"-out", map[string]string{"examples": ds}, nil)
			if !errors.Is(err, artifacts.ErrIntegrity) {
				t.Fatalf("err = %v, want an integrity error", err)
			}
			if _, err := os.Stat(filepath.Join(strings.TrimPrefix(e.root.Join(name+"-out").String(), "file://"), "statistics", "artifact.json")); err == nil {
				t.Error("statistics committed from a tampered part")
			}
		})
	}
}
