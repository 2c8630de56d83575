package lineage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/orchestrate/lineage"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/step"
)

// statsSpec is a small real step: it reads a Dataset and writes a
// Statistics artifact, so its records are the harness's own.
func statsSpec() *step.Spec {
	return &step.Spec{
		Name: "test-stats", Version: "1.0.0", Summary: "count a dataset's rows",
		Inputs:  []step.Port{{Name: "examples", Type: artifacts.TypeDataset, Description: "rows"}},
		Outputs: []step.Port{{Name: "statistics", Type: artifacts.TypeStatistics, Description: "counts"}},
		Params:  []step.Param{{Name: "label", Type: step.String, Default: "", Description: "a tag"}},
		Run: func(ctx context.Context, r *step.Run) error {
			w, err := r.Output(ctx, "statistics")
			if err != nil {
				return err
			}
			return w.WriteJSON(ctx, "statistics.json", map[string]any{"of": r.Input("examples").Digest, "label": r.String("label")})
		},
	}
}

// schemaSpec reads a Dataset and its Statistics and writes a Schema.
func schemaSpec(version string) *step.Spec {
	return &step.Spec{
		Name: "test-schema", Version: version, Summary: "infer a schema",
		Inputs: []step.Port{{Name: "examples", Type: artifacts.TypeDataset, Description: "rows"},
			{Name: "statistics", Type: artifacts.TypeStatistics, Description: "counts"}},
		Outputs: []step.Port{{Name: "schema", Type: artifacts.TypeSchema, Description: "schema"}},
		Run: func(ctx context.Context, r *step.Run) error {
			w, err := r.Output(ctx, "schema")
			if err != nil {
				return err
			}
			return w.WriteJSON(ctx, "schema.json", map[string]any{"from": r.Input("statistics").Digest})
		},
	}
}

// fixture is a store made by real step runs:
//
//	import(seed 0) -> data0 -> stats -> stats0 -> schema(1.0.0) -> schema0
//	                   \___________________________/
//	import(seed 1) -> data1 -> stats -> stats1 -> schema(1.1.0) -> schema1
type fixture struct {
	store *artifacts.Store
	root  artifacts.URI
	uri   map[string]string // short name -> artifact URI
}

func (f *fixture) run(t testing.TB, spec *step.Spec, dir string, inputs map[string]string, params map[string]any) {
	t.Helper()
	in := map[string]string{}
	for k, v := range inputs {
		in[k] = f.uri[v]
	}
	err := step.Execute(context.Background(), spec, step.Invocation{Inputs: in, OutRoot: f.root.Join(dir).String(), Params: params}, step.Env{Store: f.store})
	if err != nil {
		t.Fatalf("run %s into %s: %v", spec.Name, dir, err)
	}
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	root, err := artifacts.ParseURI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return newFixtureAt(t, root.Join("pipeline"))
}

func newFixtureAt(t testing.TB, root artifacts.URI) *fixture {
	t.Helper()
	f := &fixture{store: artifacts.NewStore(), uri: map[string]string{}, root: root}
	t.Cleanup(func() { f.store.Close() })
	penguins := testenv.VegaData(t, "penguins.json")
	for i, dir := range []string{"import0", "import1"} {
		f.run(t, importer.Spec(), dir, nil, map[string]any{"source": penguins, "seed": int64(i)})
		f.uri["data"+dir[len(dir)-1:]] = f.root.Join(dir, "examples").String()
	}
	for i, n := range []string{"0", "1"} {
		f.run(t, statsSpec(), "stats"+n, map[string]string{"examples": "data" + n}, nil)
		f.uri["stats"+n] = f.root.Join("stats"+n, "statistics").String()
		f.run(t, schemaSpec([]string{"1.0.0", "1.1.0"}[i]), "schema"+n, map[string]string{"examples": "data" + n, "statistics": "stats" + n}, nil)
		f.uri["schema"+n] = f.root.Join("schema"+n, "schema").String()
	}
	return f
}

// nodes summarises a graph as sorted "step" and "Type uri" names.
func nodes(g *lineage.Graph) (steps, arts []string) {
	for _, e := range g.Executions {
		steps = append(steps, e.Step)
	}
	for _, a := range g.Artifacts {
		arts = append(arts, a.URI)
	}
	slices.Sort(steps)
	slices.Sort(arts)
	return steps, arts
}

func TestQueryBlobWalk(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	src := lineage.NewBlobSource(f.store, &f.root)
	u := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, f.uri[n])
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name  string
		uri   string
		opts  lineage.Options
		steps []string
		arts  []string
		edges int
	}{
		{"schema upstream", "schema0", lineage.Options{}, []string{"import", "test-schema", "test-stats"}, u("data0", "stats0", "schema0"), 6},
		{"schema upstream depth 1", "schema0", lineage.Options{Depth: 1}, []string{"test-schema"}, u("data0", "stats0", "schema0"), 3},
		{"data downstream", "data1", lineage.Options{Direction: lineage.Down}, []string{"test-schema", "test-stats"}, u("data1", "stats1", "schema1"), 5},
		{"stats both", "stats0", lineage.Options{Direction: lineage.Both}, []string{"import", "test-schema", "test-stats"}, u("data0", "stats0", "schema0"), 5},
		{"leaf downstream", "schema1", lineage.Options{Direction: lineage.Down}, nil, u("schema1"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := lineage.Query(ctx, src, f.uri[tt.uri], tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			steps, arts := nodes(g)
			if !slices.Equal(steps, tt.steps) || !slices.Equal(arts, tt.arts) || len(g.Edges) != tt.edges {
				t.Errorf("got steps %v artifacts %v %d edges; want %v %v %d", steps, arts, len(g.Edges), tt.steps, tt.arts, tt.edges)
			}
			for _, e := range g.Executions {
				if e.Status != artifacts.StatusSucceeded || e.NoRecord {
					t.Errorf("execution %s: status %q, no record %v", e.ID, e.Status, e.NoRecord)
				}
			}
		})
	}
	// The import's parameters and version are the upstream facts a user asks for.
	g, err := lineage.Query(ctx, src, f.uri["schema1"], lineage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var imp *lineage.ExecutionNode
	for _, e := range g.Executions {
		if e.Step == "import" {
			imp = e
		}
	}
	if imp == nil || imp.Version != importer.Version || imp.Parameters["seed"] != float64(1) {
		t.Errorf("import node %+v: want version %s and seed 1", imp, importer.Version)
	}
	// Without a root, upstream still follows the sidecars.
	g2, err := lineage.Query(ctx, lineage.NewBlobSource(f.store, nil), f.uri["schema1"], lineage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s1, a1 := nodes(g); !equalNodes(g2, s1, a1) {
		t.Errorf("sidecar-only upstream differs from the walk: %v", g2)
	}
	if _, err := lineage.Query(ctx, src, f.root.Join("nothing").String(), lineage.Options{}); err == nil {
		t.Error("query of an empty URI succeeded")
	}
}

func equalNodes(g *lineage.Graph, steps, arts []string) bool {
	s, a := nodes(g)
	return slices.Equal(s, steps) && slices.Equal(a, arts)
}

func TestRender(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	g, err := lineage.Query(ctx, lineage.NewBlobSource(f.store, &f.root), f.uri["stats0"], lineage.Options{Direction: lineage.Both})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"text":    {"Statistics ", "upstream (made from):", "└─ made by test-stats 1.0.0 [succeeded]", "examples: Dataset ", "made by import " + importer.Version, "downstream (made with it):", "read as statistics by test-schema 1.0.0", "schema: Schema "},
		"dot":     {"digraph lineage {", "shape=note", "-> ", "label=\"examples\""},
		"mermaid": {"flowchart LR", "-->|\"statistics\"|", "style "},
		"json":    {`"root": "artifact:` + f.uri["stats0"] + "@"},
	}
	for format, parts := range want {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := lineage.Render(&buf, g, format, lineage.Both); err != nil {
				t.Fatal(err)
			}
			for _, p := range parts {
				if !strings.Contains(buf.String(), p) {
					t.Errorf("%s output lacks %q:\n%s", format, p, buf.String())
				}
			}
			if format == "json" {
				var back lineage.Graph
				if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Edges) != len(g.Edges) {
					t.Errorf("json does not read back: %v", err)
				}
			}
		})
	}
	if err := lineage.Render(&bytes.Buffer{}, g, "svg", lineage.Up); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestDiff(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	src := lineage.NewBlobSource(f.store, &f.root)
	changes, err := lineage.Diff(ctx, src, f.uri["schema0"], f.uri["schema1"], 0)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]lineage.Change{}
	for _, c := range changes {
		paths[c.Path] = c
	}
	for _, p := range []string{"version", "inputs.examples", "inputs.statistics", "inputs.examples > parameters.seed", "inputs.statistics > inputs.examples"} {
		if _, ok := paths[p]; !ok {
			t.Errorf("diff lacks %q; got %v", p, changes)
		}
	}
	if c := paths["version"]; c.A != "1.0.0" || c.B != "1.1.0" {
		t.Errorf("version change %v", c)
	}
	same, err := lineage.Diff(ctx, src, f.uri["stats0"], f.uri["stats0"], 0)
	if err != nil || len(same) != 0 {
		t.Errorf("diff of an artifact with itself: %v %v", same, err)
	}
	var buf bytes.Buffer
	if err := lineage.RenderDiff(&buf, changes, "text"); err != nil || !strings.Contains(buf.String(), "version: 1.0.0 -> 1.1.0") {
		t.Errorf("text diff %q %v", buf.String(), err)
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	problems, err := lineage.Verify(ctx, f.store, f.root, lineage.VerifyOptions{})
	if err != nil || len(problems) != 0 {
		t.Fatalf("a fresh store has problems: %v %v", problems, err)
	}
	local := func(name string) string {
		p, _ := artifacts.MustParseURI(f.uri[name]).LocalPath()
		return p
	}
	// Tamper with a payload file and delete a whole artifact.
	if err := os.WriteFile(filepath.Join(local("stats0"), "statistics.json"), []byte(`{"of":"forged"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(local("data1")); err != nil {
		t.Fatal(err)
	}
	// Forge the schema0 sidecar's digest: it no longer matches its file list.
	scPath := filepath.Join(local("schema0"), artifacts.SidecarName)
	data, err := os.ReadFile(scPath)
	if err != nil {
		t.Fatal(err)
	}
	var sc map[string]any
	json.Unmarshal(data, &sc)
	sc["digest"] = "sha256:" + strings.Repeat("0", 64)
	data, _ = json.Marshal(sc)
	if err := os.WriteFile(scPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	problems, err = lineage.Verify(ctx, f.store, f.root, lineage.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, p := range problems {
		got[p.Kind+" "+p.URI]++
	}
	want := map[string]int{
		"tampered " + f.uri["stats0"]: 1,
		// data1 is linked from the import's record (output), the stats and
		// schema sidecars and records (inputs).
		"missing " + f.uri["data1"]: 5,
		// the damaged sidecar itself, and the schema run's record of its output
		"tampered " + f.uri["schema0"]: 2,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("verify: %d × %q, want %d; all: %v", got[k], k, n, problems)
		}
	}
	if len(problems) != 8 {
		t.Errorf("verify found %d problems, want 8: %v", len(problems), problems)
	}
	// The deleted artifact shows as missing in its consumers' lineage.
	g, err := lineage.Query(ctx, lineage.NewBlobSource(f.store, &f.root), f.uri["stats1"], lineage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	lineage.Render(&buf, g, "text", lineage.Up)
	if !strings.Contains(buf.String(), "MISSING") || !strings.Contains(buf.String(), "made by import") {
		t.Errorf("deleted input not shown as missing, or its producer lost:\n%s", buf.String())
	}
}

func TestUpstreamLinks(t *testing.T) {
	f := newFixture(t)
	a, err := f.store.Open(context.Background(), artifacts.MustParseURI(f.uri["schema0"]), "")
	if err != nil {
		t.Fatal(err)
	}
	links := lineage.UpstreamLinks(a.Sidecar)
	if len(links) != 2 || links[0].URI != f.uri["data0"] || !strings.HasPrefix(links[0].Text, "examples: Dataset ") {
		t.Errorf("links %+v", links)
	}
}

// TestCancelled: a cancelled context stops the walk, the index and verify.
func TestCancelled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := lineage.Query(ctx, lineage.NewBlobSource(f.store, &f.root), f.uri["schema0"], lineage.Options{}); err == nil {
		t.Error("query with a cancelled context succeeded")
	}
	if _, err := lineage.Verify(ctx, f.store, f.root, lineage.VerifyOptions{}); err == nil {
		t.Error("verify with a cancelled context succeeded")
	}
	ix, err := lineage.OpenIndex(context.Background(), sqliteURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if _, err := ix.Update(ctx, f.store, f.root, lineage.UpdateOptions{}); err == nil {
		t.Error("index update with a cancelled context succeeded")
	}
}
