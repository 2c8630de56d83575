package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// runApp runs the CLI in-process and returns its exit code and output.
func runApp(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"mlsteps", "--log-format", "json"}, args...), options{Stdout: &stdout, Stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.csv", "a,b\n1,x\n2,y\n")
	ragged := writeFile(t, dir, "ragged.csv", "a,b\n1,x\n2,y,extra\n")
	late := writeFile(t, dir, "late.jsonl", "{\"n\": 1}\n{\"n\": 2}\n{\"n\": \"three\"}\n")
	noext := writeFile(t, dir, "data.bin", "a\n1\n")
	out := func(name string) string { return "file://" + filepath.Join(dir, "out", name) }

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring expected on stdout
		stderr string // substring expected on stderr
	}{
		{"help lists steps", []string{"--help"}, 0, "import", ""},
		{"step help from the contract", []string{"import", "--help"}, 0, "--split-key", ""},
		{"step help shows defaults", []string{"import", "--help"}, 0, "train=2,eval=1", ""},
		{"describe text", []string{"describe", "import"}, 0, "--infer-rows", ""},
		{"describe unknown", []string{"describe", "nope"}, 2, "", `unknown step "nope"`},
		{"import ok", []string{"import", "--source", good, "--out-root", out("ok")}, 0, "", `"rows":2`},
		{"missing file", []string{"import", "--source", filepath.Join(dir, "absent.csv"), "--out-root", out("absent")}, 2, "", "absent.csv"},
		{"glob matching nothing", []string{"import", "--source", "file://" + dir + "/*.parquet", "--out-root", out("glob")}, 2, "", "no file matches"},
		{"ragged CSV row", []string{"import", "--source", good + "x", "--out-root", out("x")}, 2, "", "good.csvx"},
		{"unreadable CSV row", []string{"import", "--source", ragged, "--out-root", out("ragged")}, 2, "", "ragged.csv:3"},
		{"late bad value", []string{"import", "--source", late, "--infer-rows", "2", "--out-root", out("late")}, 2, "", `late.jsonl:3`},
		{"unknown extension", []string{"import", "--source", noext, "--out-root", out("noext")}, 2, "", "data.bin"},
		{"unknown scheme", []string{"import", "--source", "ftp://host/x.csv", "--out-root", out("ftp")}, 2, "", `unknown scheme "ftp"`},
		{"unknown out scheme", []string{"import", "--source", good, "--out-root", "hdfs://x/y"}, 2, "", `unknown scheme "hdfs"`},
		{"missing required", []string{"import", "--out-root", out("req")}, 2, "", "--source is required"},
		{"bad enum", []string{"import", "--source", good, "--format", "xml", "--out-root", out("xml")}, 2, "", `"xml" is not one of`},
		{"bad split", []string{"import", "--source", good, "--split", "train", "--out-root", out("split")}, 2, "", "--split"},
		{"bad split key", []string{"import", "--source", good, "--split-key", "nope", "--out-root", out("key")}, 2, "", `--split-key "nope"`},
		{"bad flag value", []string{"import", "--source", good, "--seed", "abc", "--out-root", out("seed")}, 2, "", "seed"},
		{"unknown flag", []string{"import", "--bogus"}, 2, "", "bogus"},
		{"no input on import", []string{"import", "--in", "examples=file:///x", "--source", good, "--out-root", out("in")}, 2, "", "in"},
		{"stray argument", []string{"import", "--source", good, "--out-root", out("arg"), "extra"}, 2, "", "takes no arguments"},
		{"show not committed", []string{"artifact", "show", out("nothing")}, 2, "", "not found"},
		{"verify wrong scheme", []string{"artifact", "verify", "gopher://x"}, 2, "", "unknown scheme"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runApp(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, stdout)
			}
			if !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr)
			}
		})
	}
}

func TestDescribeJSON(t *testing.T) {
	code, stdout, stderr := runApp(t, "describe", "import", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var spec struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Outputs []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"outputs"`
		Parameters []struct {
			Name     string `json:"name"`
			Type     string `json:"type"`
			Default  any    `json:"default"`
			Required bool   `json:"required"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal([]byte(stdout), &spec); err != nil {
		t.Fatalf("describe --json is not JSON: %v\n%s", err, stdout)
	}
	if spec.Name != "import" || len(spec.Outputs) != 1 || spec.Outputs[0].Type != "Dataset" {
		t.Errorf("contract %+v", spec)
	}
	params := map[string]any{}
	for _, p := range spec.Parameters {
		params[p.Name] = p.Default
		if p.Name == "source" && !p.Required {
			t.Error("source is not marked required")
		}
	}
	if params["split"] != "train=2,eval=1" || params["seed"] != float64(0) || params["infer-rows"] != float64(10000) {
		t.Errorf("defaults %v", params)
	}
}

// TestShowAndVerifyAndTamper checks `artifact show`, `artifact verify`, and
// that flipping one byte of a payload makes verify and readers fail naming
// the file.
func TestShowAndVerifyAndTamper(t *testing.T) {
	dir := t.TempDir()
	root := "file://" + dir
	src := testenv.VegaData(t, "penguins.json")
	if code, _, stderr := runApp(t, "import", "--source", src, "--out-root", root, "--split", "train=0.8,eval=0.2"); code != 0 {
		t.Fatalf("import: %s", stderr)
	}
	uri := root + "/examples"
	code, stdout, stderr := runApp(t, "artifact", "show", uri)
	if code != 0 {
		t.Fatalf("show: %s", stderr)
	}
	var sc artifacts.Sidecar
	if err := json.Unmarshal([]byte(stdout), &sc); err != nil {
		t.Fatal(err)
	}
	if sc.Type != artifacts.TypeDataset || sc.Producer == nil || sc.Producer.Step != "import" || sc.Properties["row_count"] != float64(344) || len(sc.Files) != 2 {
		t.Errorf("show printed %+v", sc)
	}
	if code, stdout, _ := runApp(t, "artifact", "verify", uri); code != 0 || !strings.Contains(stdout, sc.Digest) {
		t.Fatalf("verify of a clean artifact: exit %d, %s", code, stdout)
	}

	part := sc.Files[1].Path // Split-train/…
	p := filepath.Join(dir, "examples", part)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runApp(t, "artifact", "verify", uri)
	if code != 1 || !strings.Contains(stderr, part) {
		t.Errorf("verify after tampering: exit %d, stderr %s; want exit 1 naming %s", code, stderr, part)
	}
	store := artifacts.NewStore()
	defer store.Close()
	a, err := store.Open(context.Background(), artifacts.MustParseURI(uri), artifacts.TypeDataset)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range a.Records(context.Background(), "train", artifacts.ReadOptions{}) {
		if err == nil {
			t.Fatal("a tampered part was decoded")
		}
		if !strings.Contains(err.Error(), part) || !strings.Contains(err.Error(), "integrity") {
			t.Errorf("reader error %v, want an integrity error naming %s", err, part)
		}
		break
	}
}
