package evaluate_test

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/artifacts/artifactstest"
	"github.com/mlsteps/mlsteps/steps/evaluate"
	"github.com/mlsteps/mlsteps/steps/infer"
	"github.com/mlsteps/mlsteps/steps/step"
)

// reparted rewrites a Dataset into parts of n rows (the importer keeps a
// small file in one part), so shards have several parts to share.
func (e *env) reparted(examples string, n int64) string {
	e.t.Helper()
	return artifactstest.Repart(e.t, e.ctx, e.store, artifacts.MustParseURI(examples), e.root.Join(fmt.Sprintf("reparted-%d", n)), n).String()
}

// shards runs evaluate as n shards and returns each output's partial
// URIs, in shard order.
func (e *env) shards(name string, inputs map[string]string, config string, n int) map[string][]string {
	e.t.Helper()
	parts := map[string][]string{}
	for i := range n {
		out := e.root.Join(fmt.Sprintf("%s-shard-%d-of-%d", name, i, n))
		inv := step.Invocation{Inputs: inputs, OutRoot: out.String(), Params: map[string]any{"config": config}, Shard: &step.Shard{Index: i, Count: n}}
		if err := step.Execute(e.ctx, evaluate.Spec(), inv, step.Env{Store: e.store}); err != nil {
			e.t.Fatalf("shard %d of %d: %v", i, n, err)
		}
		for _, o := range []string{"evaluation", "blessing"} {
			parts[o] = append(parts[o], out.Join(o).String())
		}
	}
	return parts
}

// mergeShards merges partials into a fresh folder, with the config as a
// pipeline passes it.
func (e *env) mergeShards(name string, parts map[string][]string, config string) (artifacts.URI, error) {
	out := e.root.Join(name)
	err := step.Execute(e.ctx, evaluate.Spec(), step.Invocation{OutRoot: out.String(), Merge: parts, Params: map[string]any{"config": config}}, step.Env{Store: e.store})
	return out, err
}

func (e *env) file(out artifacts.URI, output string, typ artifacts.Type, file string) []byte {
	e.t.Helper()
	a, err := e.store.Open(e.ctx, out.Join(output), typ)
	if err != nil {
		e.t.Fatal(err)
	}
	data, err := a.ReadFile(e.ctx, file)
	if err != nil {
		e.t.Fatal(err)
	}
	return data
}

var (
	// The engine's latencies (and a load count per shard) are the only
	// run-to-run differences of metrics.json, sharded or not.
	latency = regexp.MustCompile(`("[a-z_]*latency[a-z_]*": )[^,\n]+`)
	// A Blessing names the Evaluation beside it, which lives elsewhere.
	evaluationURI = regexp.MustCompile(`"evaluation": "[^"]*"`)
)

// sameAsWhole checks a merged evaluation against the unsharded one: every
// file of the Evaluation byte for byte (metrics.json but for the engine's
// latencies), and blessing.json but for the Evaluation's URI.
func (e *env) sameAsWhole(label string, got, want artifacts.URI) {
	e.t.Helper()
	ga, _ := e.store.Open(e.ctx, got.Join("evaluation"), artifacts.TypeEvaluation)
	wa, _ := e.store.Open(e.ctx, want.Join("evaluation"), artifacts.TypeEvaluation)
	names := func(a *artifacts.Artifact) []string {
		var out []string
		for _, f := range a.Sidecar.Files {
			out = append(out, f.Path)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(names(ga), names(wa)) {
		e.t.Fatalf("%s: files %v, unsharded %v", label, names(ga), names(wa))
	}
	for _, f := range names(wa) {
		g, w := e.file(got, "evaluation", artifacts.TypeEvaluation, f), e.file(want, "evaluation", artifacts.TypeEvaluation, f)
		if f == evaluate.FileMetrics {
			g, w = latency.ReplaceAll(g, []byte("${1}0")), latency.ReplaceAll(w, []byte("${1}0"))
		}
		if string(g) != string(w) {
			e.t.Errorf("%s: %s differs from the unsharded run's (%d bytes, %d)\n%s", label, f, len(g), len(w), firstDiff(g, w))
		}
	}
	for _, k := range []string{"accuracy", "rows_evaluated", "model_id", "task"} {
		if g, w := ga.Sidecar.Properties[k], wa.Sidecar.Properties[k]; fmt.Sprint(g) != fmt.Sprint(w) {
			e.t.Errorf("%s: property %s = %v, unsharded %v", label, k, g, w)
		}
	}
	gb := evaluationURI.ReplaceAll(e.file(got, "blessing", artifacts.TypeBlessing, "blessing.json"), nil)
	wb := evaluationURI.ReplaceAll(e.file(want, "blessing", artifacts.TypeBlessing, "blessing.json"), nil)
	if string(gb) != string(wb) {
		e.t.Errorf("%s: blessing.json differs\n%s", label, firstDiff(gb, wb))
	}
}

func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return fmt.Sprintf("line %d:\n  got  %s\n  want %s", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("%d lines, %d lines", len(la), len(lb))
}

// shardConfig has slices, bootstrap intervals (every row's resampling
// weights depend on its position), value and change thresholds.
const shardConfig = `
label: Species
split: eval
slices: [[], [Island], [Island, Sex]]
min_slice_size: 10
thresholds:
  accuracy: {lower_bound: 0.85}
  auc: {change: {direction: higher_is_better, absolute: -0.05}}
slice_thresholds:
  Island=Biscoe: {accuracy: {lower_bound: 0.8}}
max_dead_letter_fraction: 0.05
confidence_intervals: {method: poisson_bootstrap, samples: 40, seed: 11}
`

// TestShardedEvaluate: a GBDT judged against the PyTorch MLP on the
// penguins eval split (in parts of 10 rows) as 1, 2, 3 and 9 shards (one
// with no part at all), merged, is the unsharded evaluation: metrics.json
// (intervals included), report.html, the KFP forms and blessing.json. The
// 3-shard set is given to the merge in a scrambled order.
func TestShardedEvaluate(t *testing.T) {
	e := newEnv(t)
	examples := e.reparted(e.examples("penguins.json"), 10)
	ex, _ := e.store.Open(e.ctx, artifacts.MustParseURI(examples), artifacts.TypeDataset)
	split, _ := ex.Split("eval")
	if len(split.Files) < 4 {
		t.Fatalf("the eval split has %d parts, want several", len(split.Files))
	}
	gbdt := e.trained(examples, "builtin:gbdt", "Species", penguinFeatures, `{"trees": 30, "max_depth": 3}`)
	mlp := e.fixture("penguins-mlp.onnx", map[string]any{"name": "penguins-mlp"})
	inputs := map[string]string{"model": gbdt, "baseline": mlp, "examples": examples}
	whole, err := e.evaluate("whole", inputs, shardConfig, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := e.metrics(whole); m.Rows.Evaluated < 50 || m.Baseline == nil || len(m.Slices[0].ConfidenceIntervals) == 0 {
		t.Fatalf("unsharded: rows %+v, baseline %v", m.Rows, m.Baseline)
	}
	for _, n := range []int{1, 2, 3, len(split.Files) + 2} {
		t.Run(fmt.Sprintf("%d shards", n), func(t *testing.T) {
			parts := e.shards(fmt.Sprintf("ev%d", n), inputs, shardConfig, n)
			b := e.blessing(artifacts.MustParseURI(strings.TrimSuffix(parts["blessing"][0], "/blessing")))
			if b.Blessed || !strings.Contains(b.Reason, "partial") {
				t.Errorf("a shard's blessing blesses: %+v", b)
			}
			if n == 3 {
				for _, o := range []string{"evaluation", "blessing"} {
					p := parts[o]
					p[0], p[2] = p[2], p[0]
				}
			}
			got, err := e.mergeShards(fmt.Sprintf("merged%d", n), parts, shardConfig)
			if err != nil {
				t.Fatal(err)
			}
			e.sameAsWhole(fmt.Sprintf("%d shards", n), got, whole)
			a, _ := e.store.Open(e.ctx, got.Join("evaluation"), artifacts.TypeEvaluation)
			if mi, err := artifacts.Property[step.MergeInfo](a.Sidecar, step.PropMerged); err != nil || mi.Shards != n || mi.Total != len(split.Files) {
				t.Errorf("merge info %+v, %v", mi, err)
			}
			if m := e.metrics(got); m.Model.InferenceMetrics["num_inferences"] != float64(m.Rows.Total) {
				t.Errorf("merged num_inferences %v of %d rows", m.Model.InferenceMetrics["num_inferences"], m.Rows.Total)
			}
		})
	}
}

// TestShardedNotBlessed: shards of a model that fails its thresholds all
// succeed; the merge writes the unsharded run's verdict and says no
// (exit 3) once.
func TestShardedNotBlessed(t *testing.T) {
	e := newEnv(t)
	examples := e.reparted(e.examples("penguins.json"), 12)
	weak := e.trained(examples, "builtin:gbdt", "Species", penguinFeatures, `{"trees": 1, "max_depth": 1}`)
	mlp := e.fixture("penguins-mlp.onnx", map[string]any{"name": "penguins-mlp"})
	config := `{label: Species, slices: [[Island]], thresholds: {accuracy: {lower_bound: 0.99}, macro_f1: {change: {direction: higher_is_better, relative: -0.01}}}}`
	inputs := map[string]string{"model": weak, "baseline": mlp, "examples": examples}
	whole, err := e.evaluate("whole", inputs, config, nil)
	if step.ExitCode(err) != step.ExitGate {
		t.Fatalf("unsharded: %v, want exit 3", err)
	}
	parts := e.shards("weak", inputs, config, 2) // fails the test if a shard says no
	got, err := e.mergeShards("merged", parts, config)
	var gate *step.GateError
	if !errors.As(err, &gate) || step.ExitCode(err) != step.ExitGate || !strings.Contains(gate.Reason, "accuracy") {
		t.Fatalf("merge: %v (exit %d), want the blessing gate's exit 3", err, step.ExitCode(err))
	}
	e.sameAsWhole("not blessed", got, whole)
	if b := e.blessing(got); b.Blessed || !strings.Contains(b.Reason, "macro_f1") {
		t.Errorf("merged blessing %+v", b)
	}
}

// TestShardedMergeRefuses: the merge refuses a set with a shard missing,
// shards of two runs and a changed config, naming what is wrong.
func TestShardedMergeRefuses(t *testing.T) {
	e := newEnv(t)
	examples := e.reparted(e.examples("penguins.json"), 10)
	mlp := e.fixture("penguins-mlp.onnx", map[string]any{"name": "penguins-mlp"})
	inputs := map[string]string{"model": mlp, "examples": examples}
	config := "{label: Species, thresholds: {accuracy: {lower_bound: 0.5}}}"
	three := e.shards("three", inputs, config, 3)
	two := e.shards("two", inputs, config, 2)
	other := e.shards("other", inputs, "{label: Species, slices: [[Island]]}", 3)
	pick := func(set map[string][]string, idx ...int) map[string][]string {
		out := map[string][]string{}
		for o, list := range set {
			for _, i := range idx {
				out[o] = append(out[o], list[i])
			}
		}
		return out
	}
	mixed := pick(three, 0, 1)
	for o := range mixed {
		mixed[o] = append(mixed[o], other[o][2])
	}
	for _, c := range []struct {
		name   string
		parts  map[string][]string
		config string
		want   string
	}{
		{"missing", pick(three, 0, 2), config, "incomplete set"},
		{"two runs", map[string][]string{"evaluation": {three["evaluation"][0], two["evaluation"][1]}, "blessing": {three["blessing"][0], two["blessing"][1]}}, config, "incomplete set"},
		{"mixed", mixed, config, "mixed set"},
		{"no blessing", map[string][]string{"evaluation": three["evaluation"]}, config, "partials of every output"},
		{"config", three, "{label: Species}", "--config differs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.mergeShards("refused-"+strings.ReplaceAll(c.name, " ", "-"), c.parts, c.config)
			if code := step.ExitCode(err); code != step.ExitUsage || !strings.Contains(fmt.Sprint(err), c.want) {
				t.Errorf("err %v (exit %d), want exit 2 naming %q", err, code, c.want)
			}
		})
	}
	if _, err := e.mergeShards("accepted", three, config); err != nil {
		t.Errorf("the complete set: %v", err)
	}
}

// TestShardedRecordedPredictions: --in predictions shards by the
// predictions' part files (infer writes one per input part) and merges to
// the unsharded evaluation of the same A/B predictions.
func TestShardedRecordedPredictions(t *testing.T) {
	e := newEnv(t)
	examples := e.reparted(e.examples("penguins.json"), 10)
	gbdt := e.trained(examples, "builtin:gbdt", "Species", penguinFeatures, `{"trees": 5, "max_depth": 2}`)
	mlp := e.fixture("penguins-mlp.onnx", map[string]any{"name": "penguins-mlp"})
	pred := e.must(infer.Spec(), "ab", map[string]string{"examples": examples},
		map[string]any{"ab": "champion=" + mlp + ":0.5,challenger=" + gbdt + ":0.5", "ab-key": "Body Mass (g)", "passthrough": "Species,Island"})
	inputs := map[string]string{"predictions": pred.Join("predictions").String()}
	config := "{label: Species, split: eval, slices: [[arm], [arm, Island]], confidence_intervals: {samples: 20, seed: 3}}"
	whole, err := e.evaluate("whole", inputs, config, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.mergeShards("merged", e.shards("recorded", inputs, config, 2), config)
	if err != nil {
		t.Fatal(err)
	}
	e.sameAsWhole("recorded predictions", got, whole)
}

// TestShardedRegression: a cars MPG regressor on the train split (rows
// without MPG among them), weighted by the car's weight and sliced by
// origin and cylinders, with intervals: 2 and 3 shards merge to the
// unsharded evaluation.
func TestShardedRegression(t *testing.T) {
	e := newEnv(t)
	examples := e.reparted(e.examples("cars.json"), 40)
	gbdt := e.trained(examples, "builtin:gbdt", "Miles_per_Gallon", "Cylinders,Displacement,Weight_in_lbs,Acceleration", `{"trees": 40}`)
	inputs := map[string]string{"model": gbdt, "examples": examples}
	config := `{label: Miles_per_Gallon, split: train, example_weight: Weight_in_lbs, slices: [[], [Origin], [Cylinders]],
  thresholds: {r2: {lower_bound: 0.5}}, max_dead_letter_fraction: 0.1, confidence_intervals: {samples: 30, seed: 5}}`
	whole, err := e.evaluate("whole", inputs, config, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := e.metrics(whole); m.Task != "regression" || m.Rows.NullLabels == 0 {
		t.Fatalf("task %s, rows %+v: want a regression with null labels", m.Task, m.Rows)
	}
	for _, n := range []int{2, 3} {
		got, err := e.mergeShards(fmt.Sprintf("merged%d", n), e.shards(fmt.Sprintf("cars%d", n), inputs, config, n), config)
		if err != nil {
			t.Fatal(err)
		}
		e.sameAsWhole(fmt.Sprintf("%d shards", n), got, whole)
	}
}
