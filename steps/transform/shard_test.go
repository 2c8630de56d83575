package transform_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/artifacts/artifactstest"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/step"
	"github.com/mlsteps/mlsteps/steps/transform"
)

// onePassSpec fits every analyzer in one pass: the shards do all the
// fitting and the merge reads no rows.
const onePassSpec = `features:
  "Beak Length (mm)": [zscore]
  "Body Mass (g)":    [impute: median, log1p]
  Island:         [vocabulary: {top_k: 10, num_oov_buckets: 1}, one_hot]
  "Flipper Length (mm)": [bucketize: {num_buckets: 4}]
  Sex:            [impute: {constant: "unknown"}, vocabulary: {}]
  "Beak Depth (mm)": [scale_to_0_1]
  "Island x Sex": [cross: {columns: [Island, Sex]}, one_hot]
label: Species
`

// twoPassSpec needs a second pass (impute, then zscore, scaling and
// buckets over the imputed values), which the merge runs.
const twoPassSpec = `features:
  "IMDB Rating": [impute: most_frequent, zscore]
  "Rotten Tomatoes Rating": [bucketize: {num_buckets: 5}, one_hot]
  "Major Genre": [impute: {constant: "unknown"}, vocabulary: {top_k: 5, frequency_threshold: 10}, one_hot]
  "Production Budget": [impute: median, log1p, scale_to_0_1]
  "Genre x Type": [cross: {columns: ["Major Genre", "Creative Type"], top_k: 4}, one_hot]
  Distributor: [impute: most_frequent, hash_bucket: {num_buckets: 10}]
  "Running Time min": [impute: mean, bucketize: {num_buckets: 3}]
label: "Worldwide Gross"
`

type shardEnv struct {
	t     *testing.T
	ctx   context.Context
	store *artifacts.Store
	root  artifacts.URI
}

func newShardEnv(t *testing.T) *shardEnv {
	store := artifacts.NewStore()
	t.Cleanup(func() { store.Close() })
	return &shardEnv{t: t, ctx: context.Background(), store: store, root: artifacts.MustParseURI(t.TempDir())}
}

// examples imports a vega dataset split 80/20 and rewrites it into parts
// of n rows, so shards have several parts (and batches) to share.
func (e *shardEnv) examples(data string, n int64) string {
	e.t.Helper()
	a := imported(e.t, e.store, e.root.Join("import-"+data), data)
	return artifactstest.Repart(e.t, e.ctx, e.store, a.Location(), e.root.Join(fmt.Sprintf("parts-%s-%d", data, n)), n).String()
}

// exec runs a step into root/name.
func (e *shardEnv) exec(spec *step.Spec, name string, inv step.Invocation) (artifacts.URI, error) {
	out := e.root.Join(name)
	inv.OutRoot = out.String()
	return out, step.Execute(e.ctx, spec, inv, step.Env{Store: e.store})
}

// sharded runs spec as n shards and returns each output's partials.
func (e *shardEnv) sharded(spec *step.Spec, name string, inputs map[string]string, params map[string]any, n int) map[string][]string {
	e.t.Helper()
	parts := map[string][]string{}
	for i := range n {
		out, err := e.exec(spec, fmt.Sprintf("%s-shard-%d-of-%d", name, i, n), step.Invocation{Inputs: inputs, Params: params, Shard: &step.Shard{Index: i, Count: n}})
		if err != nil {
			e.t.Fatalf("%s: shard %d of %d: %v", name, i, n, err)
		}
		for _, o := range spec.Outputs {
			parts[o.Name] = append(parts[o.Name], out.Join(o.Name).String())
		}
	}
	return parts
}

func (e *shardEnv) open(u artifacts.URI, typ artifacts.Type) *artifacts.Artifact {
	e.t.Helper()
	a, err := e.store.Open(e.ctx, u, typ)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// sameGraph checks a TransformGraph against transform's: transform.json
// and transform.onnx byte for byte, the digest and the properties.
func (e *shardEnv) sameGraph(label string, got, want artifacts.URI) {
	e.t.Helper()
	g, w := e.open(got, artifacts.TypeTransformGraph), e.open(want, artifacts.TypeTransformGraph)
	for _, f := range []string{transform.FileJSON, transform.FileONNX} {
		gb, err1 := g.ReadFile(e.ctx, f)
		wb, err2 := w.ReadFile(e.ctx, f)
		if err1 != nil || err2 != nil {
			e.t.Fatalf("%s: %s: %v %v", label, f, err1, err2)
		}
		if !bytes.Equal(gb, wb) {
			e.t.Errorf("%s: %s differs from transform's (%d bytes, want %d)", label, f, len(gb), len(wb))
		}
	}
	if g.Digest != w.Digest {
		e.t.Errorf("%s: digest %s, transform's %s", label, g.Digest, w.Digest)
	}
	for _, p := range []string{transform.PropInputs, transform.PropOutput, transform.PropFeatureOrder, transform.PropOpset, transform.PropLabel, transform.PropPassthrough} {
		if fmt.Sprint(g.Properties[p]) != fmt.Sprint(w.Properties[p]) {
			e.t.Errorf("%s: property %s = %v, transform's %v", label, p, g.Properties[p], w.Properties[p])
		}
	}
}

// TestShardedFit: transform-fit, unsharded and as 1, 3 and 8 shards
// merged (the 8 given to the merge in a scrambled order), writes exactly
// transform's TransformGraph, transform.json and transform.onnx byte for
// byte: every merge is exact (moments fold per batch in row order,
// DDSketch buckets and value counts add). One spec fits in one pass, done
// by the shards; the other needs a second, which the merge runs.
func TestShardedFit(t *testing.T) {
	for _, tc := range []struct {
		name, data, spec string
		rows             int64
	}{
		{"penguins one pass", "penguins.json", onePassSpec, 20},
		{"movies two passes", "movies.json", twoPassSpec, 250},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newShardEnv(t)
			examples := e.examples(tc.data, tc.rows)
			ex := e.open(artifacts.MustParseURI(examples), artifacts.TypeDataset)
			train, err := ex.Split("train")
			if err != nil {
				t.Fatal(err)
			}
			if len(train.Files) < 8 {
				t.Fatalf("the train split has %d parts; the test wants at least 8", len(train.Files))
			}
			inputs := map[string]string{"examples": examples}
			params := map[string]any{"spec": writeSpec(t, tc.spec)}
			whole, err := e.exec(transform.Spec(), "transform", step.Invocation{Inputs: inputs, Params: params})
			if err != nil {
				t.Fatal(err)
			}
			fit, err := e.exec(transform.FitSpec(), "fit", step.Invocation{Inputs: inputs, Params: params})
			if err != nil {
				t.Fatal(err)
			}
			e.sameGraph("unsharded transform-fit", fit.Join("transform_graph"), whole.Join("transform_graph"))
			for _, n := range []int{1, 3, 8} {
				parts := e.sharded(transform.FitSpec(), fmt.Sprintf("fit-%d", n), inputs, params, n)
				if n == 8 {
					list := parts["transform_graph"]
					slices.Reverse(list)
					list[2], list[5] = list[5], list[2]
				}
				merged, err := e.exec(transform.FitSpec(), fmt.Sprintf("merged-%d", n), step.Invocation{Merge: parts, Params: params})
				if err != nil {
					t.Fatalf("merge of %d shards: %v", n, err)
				}
				e.sameGraph(fmt.Sprintf("%d shards", n), merged.Join("transform_graph"), whole.Join("transform_graph"))
				m := e.open(merged.Join("transform_graph"), artifacts.TypeTransformGraph)
				info, err := artifacts.Property[step.MergeInfo](m.Sidecar, step.PropMerged)
				if err != nil || info.Shards != n || info.Total != len(train.Files) {
					t.Errorf("%d shards: merged property %+v (%v)", n, info, err)
				}
			}
		})
	}
}

// TestShardedApply: transform with a fitted graph (--in transform_graph)
// fits nothing and writes what transform writes when it fits; as 1 and 3
// shards merged, the same transformed Dataset, digest included, and the
// same graph.
func TestShardedApply(t *testing.T) {
	e := newShardEnv(t)
	examples := e.examples("penguins.json", 20)
	spec := writeSpec(t, penguinsSpec)
	whole, err := e.exec(transform.Spec(), "transform", step.Invocation{Inputs: map[string]string{"examples": examples}, Params: map[string]any{"spec": spec}})
	if err != nil {
		t.Fatal(err)
	}
	fit, err := e.exec(transform.FitSpec(), "fit", step.Invocation{Inputs: map[string]string{"examples": examples}, Params: map[string]any{"spec": spec}})
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]string{"examples": examples, "transform_graph": fit.Join("transform_graph").String()}
	want := e.open(whole.Join("transformed_examples"), artifacts.TypeDataset)
	check := func(label string, out artifacts.URI) {
		t.Helper()
		got := e.open(out.Join("transformed_examples"), artifacts.TypeDataset)
		gs, _ := got.Splits()
		ws, _ := want.Splits()
		if fmt.Sprint(gs) != fmt.Sprint(ws) {
			t.Errorf("%s: splits %v, transform's %v", label, gs, ws)
		}
		if got.Digest != want.Digest {
			t.Errorf("%s: transformed_examples digest %s, transform's %s", label, got.Digest, want.Digest)
		}
		e.sameGraph(label, out.Join("transform_graph"), whole.Join("transform_graph"))
	}
	applied, err := e.exec(transform.Spec(), "applied", step.Invocation{Inputs: inputs})
	if err != nil {
		t.Fatal(err)
	}
	check("unsharded apply", applied)
	if ws, _ := want.Splits(); len(ws) != 2 || len(ws[0].Files) < 3 {
		t.Fatalf("transformed splits %v: the test wants several parts", ws)
	}
	for _, n := range []int{1, 3} {
		parts := e.sharded(transform.Spec(), fmt.Sprintf("apply-%d", n), inputs, nil, n)
		merged, err := e.exec(transform.Spec(), fmt.Sprintf("merged-%d", n), step.Invocation{Merge: parts})
		if err != nil {
			t.Fatalf("merge of %d shards: %v", n, err)
		}
		check(fmt.Sprintf("%d shards", n), merged)
	}
}

// TestShardRefusals: the merges refuse an incomplete set; transform
// refuses to shard a fit and points at transform-fit; a fit's partial is
// not a graph to apply.
func TestShardRefusals(t *testing.T) {
	e := newShardEnv(t)
	examples := e.examples("penguins.json", 20)
	inputs := map[string]string{"examples": examples}
	params := map[string]any{"spec": writeSpec(t, onePassSpec)}
	parts := e.sharded(transform.FitSpec(), "fit", inputs, params, 3)
	partial := map[string][]string{"transform_graph": {parts["transform_graph"][0], parts["transform_graph"][2]}}
	_, err := e.exec(transform.FitSpec(), "merged", step.Invocation{Merge: partial, Params: params})
	if err == nil || !strings.Contains(err.Error(), "incomplete set") || step.ExitCode(err) != 2 {
		t.Errorf("merge of shards 0 and 2 of 3: %v, want an incomplete set refused (exit 2)", err)
	}

	_, err = e.exec(transform.Spec(), "sharded-fit", step.Invocation{Inputs: inputs, Params: params, Shard: &step.Shard{Index: 0, Count: 2}})
	if err == nil || !strings.Contains(err.Error(), "transform-fit") || step.ExitCode(err) != 2 {
		t.Errorf("transform --shard with --spec: %v, want a refusal pointing at transform-fit (exit 2)", err)
	}

	apply := map[string]string{"examples": examples, "transform_graph": parts["transform_graph"][1]}
	_, err = e.exec(transform.Spec(), "apply-partial", step.Invocation{Inputs: apply})
	if err == nil || !strings.Contains(err.Error(), "merge the shards first") || step.ExitCode(err) != 2 {
		t.Errorf("transform --in transform_graph=<a shard's partial>: %v, want a refusal (exit 2)", err)
	}

	fit, err := e.exec(transform.FitSpec(), "fit-whole", step.Invocation{Inputs: inputs, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	ap := e.sharded(transform.Spec(), "apply", map[string]string{"examples": examples, "transform_graph": fit.Join("transform_graph").String()}, nil, 3)
	for name, list := range ap {
		ap[name] = list[:2]
	}
	_, err = e.exec(transform.Spec(), "apply-merged", step.Invocation{Merge: ap})
	if err == nil || !strings.Contains(err.Error(), "incomplete set") {
		t.Errorf("apply merge of shards 0 and 1 of 3: %v, want an incomplete set refused", err)
	}
}

// flightsSpec fits in one pass: on flights-3m every analyzer runs in the
// shards.
const flightsSpec = `features:
  delay: [zscore]
  distance: [bucketize: {num_buckets: 10}]
  origin: [vocabulary: {top_k: 50, num_oov_buckets: 1}, one_hot]
  destination: [vocabulary: {top_k: 50, num_oov_buckets: 1}]
`

// TestShardedFlights: on flights-3m (3,000,000 rows in 13 parts of at
// most 250,000 over two splits), transform-fit as 3 and 8 shards writes
// transform's TransformGraph byte for byte, and transform applying it as
// 3 shards writes transform's transformed Dataset, digest included.
func TestShardedFlights(t *testing.T) {
	if testing.Short() {
		t.Skip("3 million rows, several times over")
	}
	e := newShardEnv(t)
	out := e.root.Join("flights")
	inv := step.Invocation{OutRoot: out.String(), Params: map[string]any{"source": testenv.VegaData(t, "flights-3m.parquet"),
		"split": "train=0.8,eval=0.2", "seed": int64(7), "rows-per-part": int64(250_000)}}
	if err := step.Execute(e.ctx, importer.Spec(), inv, step.Env{Store: e.store}); err != nil {
		t.Fatal(err)
	}
	examples := out.Join("examples").String()
	inputs := map[string]string{"examples": examples}
	params := map[string]any{"spec": writeSpec(t, flightsSpec)}
	whole, err := e.exec(transform.Spec(), "transform", step.Invocation{Inputs: inputs, Params: params})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{3, 8} {
		parts := e.sharded(transform.FitSpec(), fmt.Sprintf("fit-%d", n), inputs, params, n)
		merged, err := e.exec(transform.FitSpec(), fmt.Sprintf("merged-%d", n), step.Invocation{Merge: parts, Params: params})
		if err != nil {
			t.Fatalf("merge of %d shards: %v", n, err)
		}
		e.sameGraph(fmt.Sprintf("%d shards", n), merged.Join("transform_graph"), whole.Join("transform_graph"))
	}
	apply := map[string]string{"examples": examples, "transform_graph": e.root.Join("merged-3", "transform_graph").String()}
	parts := e.sharded(transform.Spec(), "apply-3", apply, nil, 3)
	merged, err := e.exec(transform.Spec(), "applied-3", step.Invocation{Merge: parts})
	if err != nil {
		t.Fatal(err)
	}
	got := e.open(merged.Join("transformed_examples"), artifacts.TypeDataset)
	want := e.open(whole.Join("transformed_examples"), artifacts.TypeDataset)
	if got.Digest != want.Digest {
		t.Errorf("3 shards: transformed_examples digest %s, transform's %s", got.Digest, want.Digest)
	}
	if rows, _ := artifacts.Property[int64](got.Sidecar, artifacts.PropRowCount); rows != 3_000_000 {
		t.Errorf("transformed %d rows, want 3,000,000", rows)
	}
}
