package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// The example pipelines under examples/, run end to end on the real vega
// data with the built binary from the repository root, as their READMEs
// show, and judged by what their artifacts hold.

// exampleRun is one `mlsteps run` of an example pipeline.
type exampleRun struct {
	code           int
	stdout, stderr string
	status         map[string]string            // step → succeeded, cached, gated, skipped, failed
	outputs        map[string]map[string]string // step → output → URI
}

// runExample runs `mlsteps run FILE --root ROOT [--param …]` from the
// repository root and reads the closing table.
func runExample(t *testing.T, file, root string, params ...string) exampleRun {
	t.Helper()
	bin := testenv.Binary(t)
	repo := testenv.RepoRoot(t)
	if _, err := os.Stat(filepath.Join(repo, ".cache", "lib", "libonnxruntime.so.1")); err != nil && os.Getenv("MLSTEPS_ORT_LIB") == "" {
		testenv.Missing(t, "ONNX Runtime's library is not in .cache/lib")
	}
	args := []string{"--log-format", "json", "run", file, "--root", "file://" + root}
	for _, p := range params {
		args = append(args, "--param", p)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = repo
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	run := exampleRun{stdout: stdout.String(), stderr: stderr.String(), status: map[string]string{}, outputs: map[string]map[string]string{}}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		run.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("mlsteps run %s: %v", file, err)
	}
	// The table: STEP STATUS [yes] DURATION name=URI … (or a reason).
	table := false
	for line := range strings.Lines(run.stdout) {
		f := strings.Fields(line)
		switch {
		case len(f) > 1 && f[0] == "STEP" && f[1] == "STATUS":
			table = true
		case table && len(f) > 0 && f[0] == "run":
			table = false // the highlights follow
		case table && len(f) >= 3 && f[0] != "run":
			run.status[f[0]] = f[1]
			run.outputs[f[0]] = map[string]string{}
			for _, kv := range f[2:] {
				if k, v, ok := strings.Cut(kv, "="); ok && strings.Contains(v, "://") {
					run.outputs[f[0]][k] = v
				}
			}
		}
	}
	if len(run.status) == 0 {
		t.Fatalf("mlsteps run %s: exit %d and no summary table\nstdout:\n%s\nstderr:\n%s", file, run.code, run.stdout, run.stderr)
	}
	return run
}

// want fails the test unless the run exited with code and every step has
// the status given.
func (r exampleRun) want(t *testing.T, code int, status map[string]string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for step, s := range status {
		if r.status[step] != s {
			t.Errorf("step %s: status %q, want %q\n%s", step, r.status[step], s, r.stdout)
		}
	}
}

// uri is a step output's URI from the table.
func (r exampleRun) uri(t *testing.T, step, output string) string {
	t.Helper()
	u := r.outputs[step][output]
	if u == "" {
		t.Fatalf("step %s wrote no %s:\n%s", step, output, r.stdout)
	}
	return u
}

// open opens a committed artifact of the given type.
func openArtifact(t *testing.T, uri string, typ artifacts.Type) *artifacts.Artifact {
	t.Helper()
	store := artifacts.NewStore()
	t.Cleanup(func() { store.Close() })
	a, err := store.Open(context.Background(), artifacts.MustParseURI(uri), typ)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// splitRows reads one split of a tabular artifact, every value as text
// ("" for null).
func splitRows(t *testing.T, uri string, typ artifacts.Type, split string) []map[string]string {
	t.Helper()
	a := openArtifact(t, uri, typ)
	var out []map[string]string
	for rec, err := range a.Records(context.Background(), split, artifacts.ReadOptions{}) {
		if err != nil {
			t.Fatalf("%s split %s: %v", uri, split, err)
		}
		for i := range int(rec.NumRows()) {
			row := map[string]string{}
			for j, col := range rec.Columns() {
				if !col.IsNull(i) {
					row[rec.ColumnName(j)] = col.ValueStr(i)
				}
			}
			out = append(out, row)
		}
	}
	return out
}

// payloadJSON decodes a payload file of an artifact (digest checked).
func payloadJSON(t *testing.T, uri string, typ artifacts.Type, file string, v any) {
	t.Helper()
	data, err := openArtifact(t, uri, typ).ReadFile(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s/%s: %v", uri, file, err)
	}
}

// evalSlices is the part of metrics.json the tests read.
type evalSlices struct {
	Slices []struct {
		Key          string             `json:"key"`
		ExampleCount int                `json:"example_count"`
		Metrics      map[string]float64 `json:"metrics"`
	} `json:"slices"`
}

func (e evalSlices) slice(t *testing.T, key string) map[string]float64 {
	t.Helper()
	for _, s := range e.Slices {
		if s.Key == key {
			return s.Metrics
		}
	}
	t.Fatalf("no slice %q in the evaluation", key)
	return nil
}

type exampleBlessing struct {
	Blessed bool `json:"blessed"`
	Checks  []struct {
		Metric  string  `json:"metric"`
		Kind    string  `json:"kind"`
		Value   float64 `json:"value"`
		Passed  bool    `json:"passed"`
		Message string  `json:"message"`
	} `json:"checks"`
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestExamplePerEntity: one species model per island, each island's rows
// answered by its own model with at most two loaded at once.
func TestExamplePerEntity(t *testing.T) {
	testenv.VegaData(t, "penguins.json")
	run := runExample(t, "examples/per-entity/pipeline.yaml", t.TempDir())
	run.want(t, 0, map[string]string{"import": "succeeded", "transform": "succeeded", "train": "succeeded", "infer": "succeeded"})

	model := openArtifact(t, run.uri(t, "train", "model"), artifacts.TypeModel)
	keys, err := artifacts.Property[[]string](model.Sidecar, "keys")
	if err != nil || strings.Join(keys, ",") != "Biscoe,Dream,Torgersen" {
		t.Fatalf("keyed model keys %v (%v), want the three islands", keys, err)
	}
	digest := strings.TrimPrefix(model.Digest, "sha256:")[:12]

	preds := run.uri(t, "infer", "predictions")
	total := 0
	for _, split := range []string{"train", "eval"} {
		rows := splitRows(t, preds, artifacts.TypePredictions, split)
		total += len(rows)
		right := map[string]int{}
		count := map[string]int{}
		for _, r := range rows {
			island := r["Island"]
			if want := "island@" + digest + "/" + island; r["model_id"] != want {
				t.Fatalf("split %s: a row of %s answered by %q, want %q", split, island, r["model_id"], want)
			}
			count[island]++
			if r["label"] == r["Species"] {
				right[island]++
			}
			// Torgersen has only Adelie penguins: its model knows no other species.
			if island == "Torgersen" && r["label"] != "Adelie" {
				t.Errorf("Torgersen's model answered %q", r["label"])
			}
		}
		if split == "eval" {
			for island, n := range count {
				if acc := float64(right[island]) / float64(n); acc < 0.9 {
					t.Errorf("eval accuracy on %s: %.3f (%d rows), want >= 0.9", island, acc, n)
				}
			}
		}
	}
	if total != 344 {
		t.Errorf("%d predictions, want 344 (every penguin)", total)
	}
	a := openArtifact(t, preds, artifacts.TypePredictions)
	ids, _ := artifacts.Property[[]string](a.Sidecar, "model_ids")
	if len(ids) != 4 { // the keyed model and its three islands
		t.Errorf("model_ids %v, want the keyed model and three islands", ids)
	}
	if dl, _ := artifacts.Property[int](a.Sidecar, "dead_letters"); dl != 0 {
		t.Errorf("%d dead letters", dl)
	}
}

// TestExampleABTest: champion and challenger trained and compared head to
// head, then a 90/10 split by date with an evaluation per arm.
func TestExampleABTest(t *testing.T) {
	testenv.VegaData(t, "seattle-weather.csv")
	root := t.TempDir()
	train := runExample(t, "examples/ab-test/pipeline.yaml", root)
	train.want(t, 0, map[string]string{"train-champion": "succeeded", "train-challenger": "succeeded", "compare": "succeeded",
		"infer": "succeeded", "evaluate-arms": "succeeded"})
	var b exampleBlessing
	payloadJSON(t, train.uri(t, "compare", "blessing"), artifacts.TypeBlessing, "blessing.json", &b)
	found := false
	for _, c := range b.Checks {
		if c.Metric == "accuracy" && c.Kind == "change_absolute" {
			found = c.Passed && strings.Contains(c.Message, "vs baseline")
		}
	}
	if !b.Blessed || !found {
		t.Errorf("challenger vs champion: blessed %v, checks %+v; want blessed with an accuracy change check against the champion", b.Blessed, b.Checks)
	}

	serve := train
	preds := serve.uri(t, "infer", "predictions")
	arms := map[string]int{}
	evalArms := map[string][2]int{} // arm → rows, right
	for _, split := range []string{"train", "eval"} {
		for _, r := range splitRows(t, preds, artifacts.TypePredictions, split) {
			arm := r["arm"]
			prefix := map[string]string{"champion": "champion-gbdt@", "challenger": "challenger-logistic@"}[arm]
			if prefix == "" || !strings.HasPrefix(r["model_id"], prefix) {
				t.Fatalf("day %s: arm %q answered by %q", r["date"], arm, r["model_id"])
			}
			arms[arm]++
			if split == "eval" {
				e := evalArms[arm]
				e[0]++
				if r["label"] == r["weather"] {
					e[1]++
				}
				evalArms[arm] = e
			}
		}
	}
	days := arms["champion"] + arms["challenger"]
	if share := float64(arms["challenger"]) / float64(days); days != 1461 || share < 0.07 || share > 0.13 {
		t.Errorf("arms %v over %d days: challenger share %.3f, want about 0.1 of 1461", arms, days, share)
	}

	var ev evalSlices
	payloadJSON(t, serve.uri(t, "evaluate-arms", "evaluation"), artifacts.TypeEvaluation, "metrics.json", &ev)
	for arm, e := range evalArms {
		m := ev.slice(t, "arm="+arm)
		if int(m["example_count"]) != e[0] || !near(m["accuracy"], float64(e[1])/float64(e[0])) {
			t.Errorf("slice arm=%s: %v rows, accuracy %v; the predictions hold %d rows, %d right", arm, m["example_count"], m["accuracy"], e[0], e[1])
		}
		if m["accuracy"] < 0.7 {
			t.Errorf("arm %s: accuracy %.3f, want >= 0.7", arm, m["accuracy"])
		}
	}
}

// TestExampleCascade: a species classifier's scores feed a body-mass
// regressor in one infer run; the cascade's RMSE is judged on eval rows.
func TestExampleCascade(t *testing.T) {
	testenv.VegaData(t, "penguins.json")
	repo := testenv.RepoRoot(t)
	models := t.TempDir()
	cmd := exec.Command("bash", "examples/cascade/make-models.sh", testenv.Binary(t), models)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make-models.sh: %v\n%s", err, out)
	}
	// The pipeline names model A by a literal path (inputs take no
	// parameters): point it at this test's models.
	spec, err := os.ReadFile(filepath.Join(repo, "examples", "cascade", "pipeline.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(spec, []byte(".cache/examples/cascade/")) {
		t.Fatal("examples/cascade/pipeline.yaml no longer reads .cache/examples/cascade/")
	}
	file := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(file, bytes.ReplaceAll(spec, []byte(".cache/examples/cascade/"), []byte(models+"/")), 0o644); err != nil {
		t.Fatal(err)
	}
	run := runExample(t, file, t.TempDir())
	run.want(t, 0, map[string]string{"import": "succeeded", "infer": "succeeded", "evaluate": "succeeded"})

	// Model B reads model A's outputs.
	b := openArtifact(t, "file://"+models+"/body-mass/model", artifacts.TypeModel)
	features, err := artifacts.Property[map[string][]string](b.Sidecar, "features")
	if err != nil || strings.Join(features["x"], ",") != "score_Adelie,score_Chinstrap,score_Gentoo,Flipper Length (mm),Beak Depth (mm)" {
		t.Errorf("body-mass model reads %v (%v), want model A's three scores and two measurements", features, err)
	}
	preds := run.uri(t, "infer", "predictions")
	a := openArtifact(t, preds, artifacts.TypePredictions)
	ids, _ := artifacts.Property[[]string](a.Sidecar, "model_ids")
	if s := strings.Join(ids, ","); !strings.Contains(s, "species@") || !strings.Contains(s, "body-mass@") {
		t.Errorf("model_ids %v, want both stages", ids)
	}
	rows := splitRows(t, preds, artifacts.TypePredictions, "eval")
	var se float64
	for _, r := range rows {
		if !strings.HasPrefix(r["model_id"], "body-mass@") {
			t.Fatalf("row answered by %q, want the last stage", r["model_id"])
		}
		p, err1 := strconv.ParseFloat(r["prediction"], 64)
		y, err2 := strconv.ParseFloat(r["Body Mass (g)"], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("row %v: no prediction or label", r)
		}
		se += (p - y) * (p - y)
	}
	if len(rows) != 78 {
		t.Fatalf("%d eval predictions, want 78", len(rows))
	}
	rmse := math.Sqrt(se / float64(len(rows)))
	var ev evalSlices
	payloadJSON(t, run.uri(t, "evaluate", "evaluation"), artifacts.TypeEvaluation, "metrics.json", &ev)
	overall := ev.slice(t, "Overall")
	if math.Abs(overall["rmse"]-rmse) > 1e-6*rmse || rmse > 400 || overall["r2"] < 0.75 {
		t.Errorf("cascade rmse %.2f (evaluation says %.2f), r2 %.3f; want them equal, rmse <= 400 g and r2 >= 0.75", rmse, overall["rmse"], overall["r2"])
	}
	ev.slice(t, "Species=Gentoo")
}

// TestExampleDrift: the 2013 span drifted from 2012 and skews from the
// 2015 serving logs, so validate stops the pipeline with anomalies written.
func TestExampleDrift(t *testing.T) {
	testenv.VegaData(t, "seattle-weather.csv")
	run := runExample(t, "examples/drift/pipeline.yaml", t.TempDir())
	run.want(t, 3, map[string]string{"import-previous": "succeeded", "import-serving": "succeeded", "import": "succeeded",
		"previous-stats": "succeeded", "serving-stats": "succeeded", "validate": "gated", "transform": "skipped", "train": "skipped"})

	for step, n := range map[string]int{"import-previous": 366, "import": 365, "import-serving": 365} {
		a := openArtifact(t, run.uri(t, step, "examples"), artifacts.TypeDataset)
		splits, err := a.Splits()
		if err != nil || len(splits) != 1 || splits[0].RowCount != int64(n) {
			t.Errorf("%s: splits %+v (%v), want one split of %d days", step, splits, err, n)
		}
		if un, _ := artifacts.Property[int](a.Sidecar, "unmatched_rows"); un != 1461-n {
			t.Errorf("%s: unmatched_rows %d, want %d", step, un, 1461-n)
		}
	}

	var anomalies struct {
		Info map[string]struct {
			Severity string `json:"severity"`
			Reason   []struct {
				Type, Description string
			} `json:"reason"`
		} `json:"anomaly_info"`
	}
	payloadJSON(t, run.uri(t, "validate", "anomalies"), artifacts.TypeAnomalies, "anomalies.json", &anomalies)
	found := map[string]bool{}
	for feature, info := range anomalies.Info {
		for _, r := range info.Reason {
			for _, kind := range []string{"drift", "skew"} {
				if strings.Contains(r.Description, "above the "+kind+" threshold") {
					found[feature+" "+kind] = true
				}
			}
		}
		if info.Severity != "ERROR" {
			t.Errorf("%s: severity %s", feature, info.Severity)
		}
	}
	for _, want := range []string{"weather drift", "weather skew", "precipitation skew"} {
		if !found[want] {
			t.Errorf("anomalies %+v lack %s", anomalies.Info, want)
		}
	}
	if len(found) != 3 {
		t.Errorf("anomalies found %v, want exactly weather drift and skew and precipitation skew", found)
	}
}

// TestExampleExternalTrainer: the PyTorch MLP through the training hook,
// evaluated and run like a built-in model.
func TestExampleExternalTrainer(t *testing.T) {
	testenv.VegaData(t, "penguins.json")
	if err := exec.Command("/usr/bin/python3", "-c", "import torch, onnx, numpy").Run(); err != nil {
		testenv.Missing(t, "/usr/bin/python3 lacks torch or onnx (apt install python3-torch python3-onnx)")
	}
	run := runExample(t, "examples/external-trainer/pipeline.yaml", t.TempDir())
	run.want(t, 0, map[string]string{"train": "succeeded", "evaluate": "succeeded", "infer": "succeeded"})

	var b exampleBlessing
	payloadJSON(t, run.uri(t, "evaluate", "blessing"), artifacts.TypeBlessing, "blessing.json", &b)
	var ev evalSlices
	payloadJSON(t, run.uri(t, "evaluate", "evaluation"), artifacts.TypeEvaluation, "metrics.json", &ev)
	acc := ev.slice(t, "Overall")["accuracy"]
	if !b.Blessed || acc < 0.9 {
		t.Errorf("blessed %v with accuracy %.3f, want blessed and >= 0.9", b.Blessed, acc)
	}
	rows := splitRows(t, run.uri(t, "infer", "predictions"), artifacts.TypePredictions, "eval")
	right := 0
	for _, r := range rows {
		if !strings.HasPrefix(r["model_id"], "penguins-mlp@") {
			t.Fatalf("row answered by %q", r["model_id"])
		}
		if r["label"] == r["Species"] {
			right++
		}
	}
	if len(rows) != 78 || !near(float64(right)/float64(len(rows)), acc) {
		t.Errorf("infer: %d of %d right; evaluate says accuracy %v on the same rows", right, len(rows), acc)
	}
}

// TestExampleExtraPipelinesCompile: pipelines of the examples besides
// their pipeline.yaml (which TestExamplesCompile covers) compile too.

// TestExampleStreaming runs examples/streaming/run.sh against the NATS
// server: the penguins pipeline pushes a model, a streaming infer follows
// the registry pointer, and the reader gets one answer per message: every
// penguin a result (the fused model imputes nulls), each malformed
// message a dead letter; SIGTERM drains the consumer.
func TestExampleStreaming(t *testing.T) {
	testenv.VegaData(t, "penguins.json")
	server := os.Getenv("NATS_SERVER_URL")
	if server == "" {
		server = "127.0.0.1:4222"
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(server, "nats://"), 2*time.Second); err != nil {
		testenv.Missing(t, "no NATS server at %s: %v", server, err)
	} else {
		c.Close()
	}
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "the go command (the example's publisher and reader are `go run`)")
	}
	repo := testenv.RepoRoot(t)
	cmd := exec.Command("bash", "examples/streaming/run.sh", testenv.Binary(t))
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "STREAMING_WORK="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run.sh: %v\n%s", err, out)
	}
	for _, want := range []string{"347 answers: 344 results, 3 dead letters", "not a JSON object", `"malformed":3`, `"results":344`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestDemo runs make demo's script: the penguins pipeline cold (every
// step succeeds, the model is blessed and pushed as version 1), again
// (every step a cache hit), with one parameter changed (train onwards
// re-run, version 2 pushed after an evaluation against version 1), then
// the registry and the pushed model's lineage.
func TestDemo(t *testing.T) {
	testenv.VegaData(t, "penguins.json")
	cmd := exec.Command("bash", "scripts/demo.sh", testenv.Binary(t))
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), "DEMO_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	text := string(out)
	runs := strings.Split(text, "== ")
	if len(runs) < 6 {
		t.Fatalf("demo printed %d sections:\n%s", len(runs)-1, text)
	}
	count := func(s, sub string) int { return strings.Count(s, sub) }
	if n := count(runs[1], " succeeded "); n != 7 || !strings.Contains(runs[1], "pushed penguins version 1") {
		t.Errorf("cold run: %d steps succeeded, want 7 and version 1 pushed:\n%s", n, runs[1])
	}
	if n := count(runs[2], " cached     yes"); n != 7 {
		t.Errorf("second run: %d cache hits, want 7:\n%s", n, runs[2])
	}
	if n := count(runs[3], " succeeded "); n != 4 || !strings.Contains(runs[3], "pushed penguins version 2") {
		t.Errorf("changed run: %d steps re-ran, want 4 (train, evaluate, deploy, infer) and version 2:\n%s", n, runs[3])
	}
	for _, want := range []string{"evaluate", "blessed", "evaluation report: ", "statistics report: ", "accuracy 0.9"} {
		if !strings.Contains(runs[3], want) {
			t.Errorf("changed run's highlights lack %q", want)
		}
	}
	if !strings.Contains(runs[4], "blessed") || count(runs[4], "penguins-gbdt@") != 2 {
		t.Errorf("registry list:\n%s", runs[4])
	}
	if !strings.Contains(runs[5], "PushedModel") || !strings.Contains(runs[5], "baseline: Model") || !strings.Contains(runs[5], "made by train") {
		t.Errorf("lineage:\n%s", runs[5])
	}
}
