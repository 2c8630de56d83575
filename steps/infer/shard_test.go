package infer_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/artifacts/artifactstest"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/infer"
	"github.com/mlsteps/mlsteps/steps/step"
)

// importParts imports a vega dataset split 80/20 into parts of at most
// rowsPerPart rows, so shards have several parts to share.
func (e *env) importParts(data string, rowsPerPart int64) string {
	e.t.Helper()
	out := e.root.Join(fmt.Sprintf("parts-%s-%d", strings.TrimSuffix(data, filepath.Ext(data)), rowsPerPart))
	inv := step.Invocation{OutRoot: out.String(), Params: map[string]any{"source": testenv.VegaData(e.t, data),
		"split": "train=0.8,eval=0.2", "seed": int64(7), "rows-per-part": rowsPerPart}}
	if err := step.Execute(e.ctx, importer.Spec(), inv, step.Env{Store: e.store}); err != nil {
		e.t.Fatal(err)
	}
	return out.Join("examples").String()
}

// reparted rewrites a Dataset into parts of n rows (the importer cuts
// parts between its own read batches, which hold all of a small file).
func (e *env) reparted(examples string, n int64) string {
	e.t.Helper()
	return artifactstest.Repart(e.t, e.ctx, e.store, artifacts.MustParseURI(examples), e.root.Join(fmt.Sprintf("reparted-%d", n)), n).String()
}

// sharded runs infer as n shards and returns each output's partial URIs,
// in shard order.
func (e *env) sharded(name string, inputs map[string]string, params map[string]any, n int) map[string][]string {
	e.t.Helper()
	parts := map[string][]string{}
	for i := range n {
		out := e.root.Join(fmt.Sprintf("%s-shard-%d-of-%d", name, i, n))
		inv := step.Invocation{Inputs: inputs, OutRoot: out.String(), Params: params, Shard: &step.Shard{Index: i, Count: n}}
		if err := step.Execute(e.ctx, infer.Spec(), inv, step.Env{Store: e.store}); err != nil {
			e.t.Fatalf("shard %d of %d: %v", i, n, err)
		}
		for _, o := range []string{"predictions", "dead_letters"} {
			parts[o] = append(parts[o], out.Join(o).String())
		}
	}
	return parts
}

// merge merges partials into a fresh folder.
func (e *env) merge(name string, parts map[string][]string, params map[string]any) (artifacts.URI, error) {
	out := e.root.Join(name)
	err := step.Execute(e.ctx, infer.Spec(), step.Invocation{OutRoot: out.String(), Merge: parts, Params: params}, step.Env{Store: e.store})
	return out, err
}

func (e *env) open(u artifacts.URI, typ artifacts.Type) *artifacts.Artifact {
	e.t.Helper()
	a, err := e.store.Open(e.ctx, u, typ)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// sameArtifact checks a merged output against the unsharded one: the same
// digest (so the same part files, byte for byte, in the same order) and
// the same splits and row counts.
func (e *env) sameArtifact(label string, got, want artifacts.URI, typ artifacts.Type) {
	e.t.Helper()
	g, w := e.open(got, typ), e.open(want, typ)
	gs, _ := g.Splits()
	ws, _ := w.Splits()
	if fmt.Sprint(gs) != fmt.Sprint(ws) {
		e.t.Errorf("%s: splits %v, unsharded %v", label, gs, ws)
	}
	if g.Digest != w.Digest {
		e.t.Errorf("%s: digest %s, unsharded %s", label, g.Digest, w.Digest)
	}
}

// TestShardedInferFlights: infer on flights-3m (3,000,000 rows in 13
// parts over two splits) as 1, 3 and 8 shards, merged, is the unsharded
// run exactly: the same Predictions and DeadLetters digests, splits and
// counts. The 8-shard set is given to the merge in a scrambled order.
func TestShardedInferFlights(t *testing.T) {
	if testing.Short() {
		t.Skip("3 million rows, five times over")
	}
	e := newEnv(t)
	examples := e.importParts("flights-3m.parquet", 250_000)
	inputs := map[string]string{"examples": examples, "model": e.model("flights-delay.onnx", nil)}
	params := map[string]any{"batch-max": int64(1024)}
	whole, err := e.infer("whole", inputs, params)
	if err != nil {
		t.Fatal(err)
	}
	ex := e.open(artifacts.MustParseURI(examples), artifacts.TypeDataset)
	splits, _ := ex.Splits()
	var nparts int
	for _, s := range splits {
		nparts += len(s.Files)
	}
	if nparts < 8 {
		t.Fatalf("the import made %d parts; the test wants more than 8", nparts)
	}
	wp := e.open(whole.Join("predictions"), artifacts.TypePredictions)
	for _, n := range []int{1, 3, 8} {
		parts := e.sharded(fmt.Sprintf("flights-%d", n), inputs, params, n)
		if n == 8 {
			for _, list := range parts {
				slices.Reverse(list)
				list[2], list[5] = list[5], list[2]
			}
		}
		merged, err := e.merge(fmt.Sprintf("merged-%d", n), parts, params)
		if err != nil {
			t.Fatalf("merge of %d shards: %v", n, err)
		}
		e.sameArtifact(fmt.Sprintf("%d shards: predictions", n), merged.Join("predictions"), whole.Join("predictions"), artifacts.TypePredictions)
		e.sameArtifact(fmt.Sprintf("%d shards: dead letters", n), merged.Join("dead_letters"), whole.Join("dead_letters"), artifacts.TypeDeadLetters)
		mp := e.open(merged.Join("predictions"), artifacts.TypePredictions)
		for _, p := range []string{infer.PropNumInferences, infer.PropDeadLetters, artifacts.PropRowCount} {
			if fmt.Sprint(mp.Properties[p]) != fmt.Sprint(wp.Properties[p]) {
				t.Errorf("%d shards: %s = %v, unsharded %v", n, p, mp.Properties[p], wp.Properties[p])
			}
		}
		info, err := artifacts.Property[step.MergeInfo](mp.Sidecar, step.PropMerged)
		if err != nil || info.Shards != n || info.Total != nparts {
			t.Errorf("%d shards: merged property %+v (%v)", n, info, err)
		}
	}
	if rows, _ := artifacts.Property[int64](wp.Sidecar, artifacts.PropRowCount); rows != 3_000_000 {
		t.Errorf("unsharded predictions hold %d rows", rows)
	}
}

// TestShardedInferDeadLetters: penguins in parts of 20 rows, with the two
// rows that have a null dead-lettered. Sharded 1, 3 and 8 ways and merged,
// the dead letters still name each row's place in its split, so both
// outputs have the unsharded digests; the merged metrics add up.
func TestShardedInferDeadLetters(t *testing.T) {
	e := newEnv(t)
	examples := e.reparted(e.examples("penguins.json"), 20)
	inputs := map[string]string{"examples": examples, "model": e.model("penguins-mlp.onnx", nil)}
	params := map[string]any{"workers": int64(2), "batch-max": int64(16)}
	whole, err := e.infer("whole", inputs, params)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3, 8} {
		merged, err := e.merge(fmt.Sprintf("merged-%d", n), e.sharded(fmt.Sprintf("penguins-%d", n), inputs, params, n), params)
		if err != nil {
			t.Fatal(err)
		}
		e.sameArtifact(fmt.Sprintf("%d shards: predictions", n), merged.Join("predictions"), whole.Join("predictions"), artifacts.TypePredictions)
		e.sameArtifact(fmt.Sprintf("%d shards: dead letters", n), merged.Join("dead_letters"), whole.Join("dead_letters"), artifacts.TypeDeadLetters)
		mp := e.open(merged.Join("predictions"), artifacts.TypePredictions)
		metrics, err := artifacts.Property[map[string]map[string]float64](mp.Sidecar, infer.PropMetrics)
		if err != nil {
			t.Fatal(err)
		}
		for id, m := range metrics {
			if m["num_inferences"] != 342 || m["load_model_latency_milli_secs_count"] != float64(n) {
				t.Errorf("%d shards: merged metrics of %s: %v inferences, %v loads", n, id, m["num_inferences"], m["load_model_latency_milli_secs_count"])
			}
		}
	}
	dead := e.rows(whole.Join("dead_letters"), artifacts.TypeDeadLetters)
	if len(dead["train"])+len(dead["eval"]) != 2 {
		t.Fatalf("dead letters %v; want the 2 rows with a null", dead)
	}
	// Dead letters name rows of the split, across part boundaries.
	in := e.rows(artifacts.MustParseURI(examples), artifacts.TypeDataset)
	for split, rows := range dead {
		for _, d := range rows {
			i, _ := strconv.Atoi(d["row"])
			if i >= len(in[split]) || !hasNull(in[split][i]) {
				t.Errorf("dead letter names %s row %s, which has no null", split, d["row"])
			}
		}
	}
	splits, _ := e.open(artifacts.MustParseURI(examples), artifacts.TypeDataset).Splits()
	if len(splits[0].Files)+len(splits[1].Files) <= 8 {
		t.Errorf("the examples have %d+%d parts; the test wants more than 8", len(splits[0].Files), len(splits[1].Files))
	}
}

// TestMergeRefuses: the merge refuses a set with a shard missing, a shard
// given twice, a shard of another run (other parameters), and partials of
// an unsharded run, each with an error that says which; it exits 2.
func TestMergeRefuses(t *testing.T) {
	e := newEnv(t)
	examples := e.reparted(e.examples("penguins.json"), 40)
	inputs := map[string]string{"examples": examples, "model": e.model("penguins-mlp.onnx", nil)}
	three := e.sharded("a", inputs, nil, 3)
	other := e.sharded("b", inputs, map[string]any{"passthrough": "Island"}, 3)
	whole, err := e.infer("whole", inputs, nil)
	if err != nil {
		t.Fatal(err)
	}
	pick := func(src map[string][]string, idx ...int) map[string][]string {
		out := map[string][]string{}
		for k, list := range src {
			for _, i := range idx {
				out[k] = append(out[k], list[i])
			}
		}
		return out
	}
	mixed := pick(three, 0, 1)
	for k := range mixed {
		mixed[k] = append(mixed[k], other[k][2])
	}
	swapped := pick(three, 0, 1, 2)
	swapped["dead_letters"][1] = other["dead_letters"][1]
	for _, tc := range []struct {
		name  string
		parts map[string][]string
		want  string
	}{
		{"missing shard", pick(three, 0, 2), "incomplete set"},
		{"shard twice", pick(three, 0, 1, 1), "given twice"},
		{"other run", mixed, "mixed set"},
		{"outputs of two runs", swapped, "mixed set"},
		{"not a partial", map[string][]string{"predictions": {whole.Join("predictions").String()}, "dead_letters": {whole.Join("dead_letters").String()}}, "not a shard's partial"},
		{"one output only", map[string][]string{"predictions": three["predictions"]}, "dead_letters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.merge("m-"+strings.ReplaceAll(tc.name, " ", "-"), tc.parts, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || step.ExitCode(err) != step.ExitUsage {
				t.Fatalf("merge: %v (exit %d); want an error saying %q, exit 2", err, step.ExitCode(err), tc.want)
			}
		})
	}
	// The complete set merges.
	if _, err := e.merge("m-ok", three, nil); err != nil {
		t.Fatal(err)
	}
	// A shard cannot run with --stream, and --shard is refused where a
	// step does not shard.
	err = step.Execute(e.ctx, infer.Spec(), step.Invocation{Inputs: inputs, OutRoot: e.root.Join("s").String(), Shard: &step.Shard{Index: 0, Count: 2},
		Params: map[string]any{"stream": true}}, step.Env{Store: e.store})
	if err == nil || !strings.Contains(err.Error(), "does not shard") {
		t.Errorf("--stream with --shard: %v", err)
	}
	err = step.Execute(e.ctx, importer.Spec(), step.Invocation{OutRoot: e.root.Join("i").String(), Shard: &step.Shard{Index: 0, Count: 2},
		Params: map[string]any{"source": testenv.VegaData(t, "penguins.json")}}, step.Env{Store: e.store})
	if err == nil || !strings.Contains(err.Error(), "does not shard") {
		t.Errorf("import with --shard: %v", err)
	}
}
