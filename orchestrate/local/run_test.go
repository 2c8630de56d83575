package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/orchestrate/local"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline/pipelinetest"
	"github.com/mlsteps/mlsteps/steps/catalog"
	"github.com/mlsteps/mlsteps/steps/step"
)

func graphFile(t testing.TB, reg *step.Registry, path string) *pipeline.Graph {
	return pipelinetest.GraphFile(t, reg, path)
}

func graph(t testing.TB, reg *step.Registry, text string) *pipeline.Graph {
	return pipelinetest.Graph(t, reg, "test.yaml", text)
}

func statuses(res *local.Result) string {
	var out []string
	for _, s := range res.Steps {
		out = append(out, s.Name+"="+s.Status)
	}
	return strings.Join(out, " ")
}

// TestRunCachesAndResumes runs a real pipeline with the mlsteps binary:
// cold, then fully cached, then with one parameter changed (only that step
// re-runs), then with --from, then with a raw file changed under the same
// name (content, not names, key the cache).
func TestRunCachesAndResumes(t *testing.T) {
	reg, err := catalog.Registry()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cars := filepath.Join(dir, "cars.json")
	data, err := os.ReadFile(testenv.VegaData(t, "cars.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cars, data, 0o644); err != nil {
		t.Fatal(err)
	}
	g := graph(t, reg, fmt.Sprintf(`name: two
parameters:
  seed: 7
steps:
  - name: penguins
    step: import
    params: {source: %q, seed: "{{params.seed}}"}
  - name: cars
    step: import
    params: {source: %q, split: "train=0.8,eval=0.2"}
`, testenv.VegaData(t, "penguins.json"), cars))
	opts := local.Options{Binary: testenv.Binary(t), Root: "file://" + filepath.Join(dir, "root"), LogDir: filepath.Join(dir, "logs")}
	run := func(params map[string]string, from string) *local.Result {
		t.Helper()
		o := opts
		o.Params, o.From = params, from
		res, err := local.Run(context.Background(), g, reg, o)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := run(nil, "")
	if got := statuses(first); got != "penguins=succeeded cars=succeeded" || first.ExitCode != 0 {
		t.Fatalf("cold run: %s (exit %d)", got, first.ExitCode)
	}
	second := run(nil, "")
	if got := statuses(second); got != "penguins=cached cars=cached" {
		t.Fatalf("second run: %s", got)
	}
	if second.Steps[0].Outputs["examples"] != first.Steps[0].Outputs["examples"] {
		t.Errorf("a cache hit pointed elsewhere: %v vs %v", second.Steps[0].Outputs, first.Steps[0].Outputs)
	}
	if got := statuses(run(map[string]string{"seed": "8"}, "")); got != "penguins=succeeded cars=cached" {
		t.Errorf("seed changed: %s", got)
	}
	if got := statuses(run(nil, "cars")); got != "penguins=cached cars=succeeded" {
		t.Errorf("--from cars: %s", got)
	}
	if err := os.WriteFile(cars, append(data[:len(data)-2], []byte(",{\"Name\":\"new car\"}]")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := statuses(run(nil, "")); got != "penguins=cached cars=succeeded" {
		t.Errorf("raw file changed: %s", got)
	}
	records, _ := filepath.Glob(filepath.Join(dir, "root", ".mlsteps", "runs", "*.json"))
	if len(records) != 5 {
		t.Errorf("%d run records, want 5", len(records))
	}
}

func TestFailedStep(t *testing.T) {
	reg, err := catalog.Registry()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	g := graph(t, reg, fmt.Sprintf(`name: broken
steps:
  - name: ok
    step: import
    params: {source: %q}
  - name: missing
    step: import
    retries: 2
    params: {source: %q}
`, testenv.VegaData(t, "penguins.json"), filepath.Join(dir, "absent.csv")))
	res, err := local.Run(context.Background(), g, reg, local.Options{Binary: testenv.Binary(t), Root: "file://" + dir, LogDir: filepath.Join(dir, "logs")})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "ok=succeeded missing=failed" || res.ExitCode != 1 {
		t.Fatalf("%s exit %d", got, res.ExitCode)
	}
	miss := res.Steps[1]
	if !strings.Contains(miss.Reason, "absent.csv") || miss.Attempts != 1 {
		t.Errorf("failure %+v: want the reason naming the file and no retry of a usage error", miss)
	}
}
