package local_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/orchestrate/local"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
	"github.com/mlsteps/mlsteps/steps/catalog"
	"github.com/mlsteps/mlsteps/steps/step"
)

// penguins loads examples/penguins/pipeline.yaml with its files made
// absolute, so it runs from any folder.
func penguins(t testing.TB) (*pipeline.Graph, *step.Registry, map[string]string) {
	reg, err := catalog.Registry()
	if err != nil {
		t.Fatal(err)
	}
	root := testenv.RepoRoot(t)
	path := filepath.Join(root, "examples", "penguins", "pipeline.yaml")
	g := graphFile(t, reg, path)
	params := map[string]string{
		"source": testenv.VegaData(t, "penguins.json"),
		"schema": filepath.Join(root, "examples", "penguins", "schema.json"),
		"spec":   filepath.Join(root, "examples", "penguins", "transform.yaml"),
	}
	return g, reg, params
}

// TestPenguinsGate runs the real penguins pipeline without the curated
// schema: validate finds the "." sex in the eval split and says no (exit
// 3), so transform, which takes validate's schema, is skipped and so is
// everything downstream of it (train, evaluate, deploy, infer); the run ends with
// exit 3 and the anomalies written.
func TestPenguinsGate(t *testing.T) {
	g, reg, params := penguins(t)
	params["schema"] = "" // infer it: the raw data has a value the training split lacks
	dir := t.TempDir()
	params["registry"] = "file://" + filepath.Join(dir, "registry")
	res, err := local.Run(context.Background(), g, reg, local.Options{Binary: testenv.Binary(t), Root: "file://" + dir, Params: params, LogDir: filepath.Join(dir, "logs")})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "import=succeeded validate=gated transform=skipped train=skipped evaluate=skipped deploy=skipped infer=skipped" || res.ExitCode != step.ExitGate {
		t.Fatalf("%s exit %d", got, res.ExitCode)
	}
	if v := res.Steps[1]; v.Outputs["anomalies"] == "" || !strings.Contains(v.Reason, "anomal") {
		t.Errorf("gated validate: %+v; want its anomalies written and the verdict as the reason", v)
	}
	if r := res.Steps[2].Reason; r != "gate validate said no" {
		t.Errorf("transform skipped because %q", r)
	}
}

// BenchmarkPenguinsPipeline times the full penguins pipeline (import,
// validate, transform, train, evaluate, deploy, infer) cold and fully cached, in one run.
func BenchmarkPenguinsPipeline(b *testing.B) {
	g, reg, params := penguins(b)
	bin := testenv.Binary(b)
	build, err := local.BinaryDigest(bin)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		dir := b.TempDir()
		params["registry"] = "file://" + filepath.Join(dir, "registry")
		opts := local.Options{Binary: bin, BuildID: build, Root: "file://" + dir, Params: params, LogDir: filepath.Join(dir, "logs")}
		var walls []time.Duration
		for _, pass := range []string{"cold", "cached"} {
			start := time.Now()
			res, err := local.Run(context.Background(), g, reg, opts)
			if err != nil || res.ExitCode != 0 {
				b.Fatalf("%s: %v %s", pass, err, statuses(res))
			}
			walls = append(walls, time.Since(start))
		}
		b.ReportMetric(float64(walls[0].Milliseconds()), "cold-ms")
		b.ReportMetric(float64(walls[1].Milliseconds()), "cached-ms")
		b.Logf("penguins pipeline (import → validate → transform → train → evaluate → deploy → infer): cold %v, fully cached %v", walls[0].Round(time.Millisecond), walls[1].Round(time.Millisecond))
		testenv.BenchRow(b, testenv.Row{Issue: 11, Figure: "penguins pipeline, 7 steps as local processes: cold", Ours: float64(walls[0].Milliseconds()), Unit: "ms"})
		testenv.BenchRow(b, testenv.Row{Issue: 11, Figure: "penguins pipeline, fully cached re-run", Ours: float64(walls[1].Milliseconds()), Unit: "ms"})
	}
}

// TestWhen: a condition on an upstream artifact's property decides whether
// a step runs.
func TestWhen(t *testing.T) {
	reg, err := catalog.Registry()
	if err != nil {
		t.Fatal(err)
	}
	src := testenv.VegaData(t, "penguins.json")
	for _, tc := range []struct{ cond, want string }{
		{"== 344", "import=succeeded second=succeeded"},
		{"!= 344", "import=succeeded second=skipped"},
	} {
		g := graph(t, reg, `name: cond
steps:
  - name: import
    step: import
    params: {source: "`+src+`"}
  - name: second
    step: import
    params: {source: "`+src+`", seed: 3}
    when: "{{steps.import.outputs.examples.properties.row_count}} `+tc.cond+`"
`)
		dir := t.TempDir()
		res, err := local.Run(context.Background(), g, reg, local.Options{Binary: testenv.Binary(t), Root: "file://" + dir, LogDir: filepath.Join(dir, "logs")})
		if err != nil {
			t.Fatal(err)
		}
		if got := statuses(res); got != tc.want || res.ExitCode != 0 {
			t.Errorf("when row_count %s: %s exit %d", tc.cond, got, res.ExitCode)
		}
	}
}
