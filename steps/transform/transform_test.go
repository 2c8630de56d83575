package transform_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	xf "github.com/mlsteps/mlsteps/components/transform"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/step"
	"github.com/mlsteps/mlsteps/steps/transform"
)

const penguinsSpec = `features:
  "Beak Length (mm)": [impute: mean, zscore]
  "Body Mass (g)":    [impute: median, scale_to_0_1]
  Island:         [vocabulary: {top_k: 10, num_oov_buckets: 1}, one_hot]
  "Flipper Length (mm)": [bucketize: {num_buckets: 4}]   # quantile boundaries
  Sex:            [impute: {constant: "unknown"}, vocabulary: {}]
label: Species
`

// imported imports a vega dataset into root/examples, split 80/20.
func imported(t testing.TB, store *artifacts.Store, root artifacts.URI, data string) *artifacts.Artifact {
	t.Helper()
	ctx := context.Background()
	inv := step.Invocation{OutRoot: root.String(), Params: map[string]any{"source": testenv.VegaData(t, data), "split": "train=0.8,eval=0.2", "seed": int64(7)}}
	if err := step.Execute(ctx, importer.Spec(), inv, step.Env{Store: store}); err != nil {
		t.Fatal(err)
	}
	a, err := store.Open(ctx, root.Join("examples"), artifacts.TypeDataset)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func writeSpec(t testing.TB, text string) string {
	p := filepath.Join(t.TempDir(), "transform.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runTransform(store *artifacts.Store, root artifacts.URI, examples, spec string) error {
	inv := step.Invocation{Inputs: map[string]string{"examples": examples}, OutRoot: root.String(), Params: map[string]any{"spec": spec}}
	return step.Execute(context.Background(), transform.Spec(), inv, step.Env{Store: store})
}

// TestTransformStep runs the step on penguins and checks both outputs: the
// TransformGraph's properties, and that every row of every split of the
// transformed Dataset equals ONNX Runtime running transform.onnx (read back
// from the artifact) on the raw rows.
func TestTransformStep(t *testing.T) {
	orttest.Init(t)
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()
	root := artifacts.MustParseURI(t.TempDir())
	examples := imported(t, store, root, "penguins.json")
	if err := runTransform(store, root, examples.Location().String(), writeSpec(t, penguinsSpec)); err != nil {
		t.Fatal(err)
	}
	tg, err := store.Open(ctx, root.Join("transform_graph"), artifacts.TypeTransformGraph)
	if err != nil {
		t.Fatal(err)
	}
	order, err := artifacts.Property[[]string](tg.Sidecar, transform.PropFeatureOrder)
	if err != nil {
		t.Fatal(err)
	}
	inputs, err := artifacts.Property[[]transform.InputInfo](tg.Sidecar, transform.PropInputs)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Beak Length (mm),Body Mass (g),Island_onehot_0,Island_onehot_1,Island_onehot_2,Island_onehot_3,Flipper Length (mm),Sex"; strings.Join(order, ",") != want {
		t.Errorf("feature order %v, want %s", order, want)
	}
	js, err := tg.ReadFile(ctx, transform.FileJSON)
	if err != nil {
		t.Fatal(err)
	}
	g, err := xf.ParseGraph(js)
	if err != nil {
		t.Fatal(err)
	}
	model, err := tg.ReadFile(ctx, transform.FileONNX)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(inputs))
	for i, in := range inputs {
		names[i] = in.Name
	}
	sess, err := ort.NewSession(model, names, []string{"features"})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := store.Open(ctx, root.Join("transformed_examples"), artifacts.TypeDataset)
	if err != nil {
		t.Fatal(err)
	}
	for _, split := range []string{"train", "eval"} {
		var onnxRows [][]float32
		for rec, err := range examples.Records(ctx, split, artifacts.ReadOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			raw, err := g.RawColumns(rec)
			if err != nil {
				t.Fatal(err)
			}
			cols := make([]ort.Column, len(raw))
			for i, c := range raw {
				cols[i] = ort.Column{Name: c.Name, Doubles: c.Doubles, Strings: c.Strings}
			}
			res, err := sess.Run(rec.NumRows(), cols)
			if err != nil {
				t.Fatal(err)
			}
			for r := range int(rec.NumRows()) {
				onnxRows = append(onnxRows, res[0].Data[r*len(order):(r+1)*len(order)])
			}
		}
		row := 0
		for rec, err := range out.Records(ctx, split, artifacts.ReadOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.Schema().Field(len(order)).Name; got != "Species" {
				t.Fatalf("column after the features is %q, want the label", got)
			}
			for r := range int(rec.NumRows()) {
				for c, name := range order {
					got := rec.Column(c).(*array.Float32).Value(r)
					if want := onnxRows[row][c]; math.Abs(float64(got-want)) > 1e-6 {
						t.Fatalf("%s row %d %s: dataset %v, ONNX Runtime %v", split, row, name, got, want)
					}
				}
				row++
			}
		}
		if row != len(onnxRows) || row == 0 {
			t.Fatalf("%s: %d transformed rows, %d raw", split, row, len(onnxRows))
		}
	}
}

// TestBadSpecWritesNothing: a bad spec exits 2 with the spec line and the
// feature in the message, before any data is read, and writes no output.
func TestBadSpecWritesNothing(t *testing.T) {
	store := artifacts.NewStore()
	defer store.Close()
	base := artifacts.MustParseURI(t.TempDir())
	examples := imported(t, store, base, "penguins.json")
	for _, tc := range []struct{ name, spec, want string }{
		{"unknown column", "features:\n  Beak: [zscore]\n", `transform.yaml:2: feature "Beak": not a column`},
		{"unknown op", "features:\n  Island: [vocabulary: {}, embed]\n", `transform.yaml:2: feature "Island": unknown op "embed"`},
		{"zscore on a string", "features:\n  \"Beak Length (mm)\": [zscore]\n  Island: [zscore]\n", `transform.yaml:3: feature "Island": zscore needs a number`},
		{"constant of the wrong type", "features:\n  Sex: [impute: {constant: 1}]\n", `transform.yaml:2: feature "Sex": impute constant "1" is not a string`},
		{"missing spec", "", "--spec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := base.Join(strings.ReplaceAll(tc.name, " ", "-"))
			spec := filepath.Join(t.TempDir(), "nope.yaml")
			if tc.spec != "" {
				spec = writeSpec(t, tc.spec)
			}
			err := runTransform(store, root, examples.Location().String(), spec)
			if step.ExitCode(err) != step.ExitUsage || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v (exit %d), want exit 2 with %q", err, step.ExitCode(err), tc.want)
			}
			for _, out := range []string{"transform_graph", "transformed_examples"} {
				if _, err := store.Open(context.Background(), root.Join(out), artifacts.TypeDataset); !errors.Is(err, artifacts.ErrNotFound) {
					t.Errorf("%s: %v, want nothing written", out, err)
				}
			}
		})
	}
	// An empty train split is refused by transform.Compile (see its
	// tests); import cannot make one. A split that does not exist:
	t.Run("unknown train split", func(t *testing.T) {
		root := base.Join("nosplit")
		err := step.Execute(context.Background(), transform.Spec(), step.Invocation{Inputs: map[string]string{"examples": examples.Location().String()},
			OutRoot: root.String(), Params: map[string]any{"spec": writeSpec(t, "features:\n  Island: [vocabulary: {}]\n"), "train-split": "test"}},
			step.Env{Store: store})
		if step.ExitCode(err) != step.ExitUsage || !strings.Contains(err.Error(), `no split "test"`) {
			t.Fatalf("error %v, want exit 2 naming the split", err)
		}
	})
}

// TestCLI runs the real binary: the user's command line, and a bad spec
// exiting 2.
func TestCLI(t *testing.T) {
	bin := testenv.Binary(t)
	dir := t.TempDir()
	root := "file://" + dir
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if out, code := run("import", "--source", testenv.VegaData(t, "penguins.json"), "--out-root", root); code != 0 {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	spec := writeSpec(t, penguinsSpec)
	if out, code := run("transform", "--in", "examples="+root+"/examples", "--spec", spec, "--out-root", root); code != 0 {
		t.Fatalf("transform: exit %d\n%s", code, out)
	}
	for _, f := range []string{"transform_graph/transform.onnx", "transform_graph/transform.json", "transformed_examples/artifact.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	bad := writeSpec(t, "features:\n  Island: [zscore]\n")
	out, code := run("transform", "--in", "examples="+root+"/examples", "--spec", bad, "--out-root", root+"/bad")
	if code != 2 || !strings.Contains(out, `transform.yaml:2: feature \"Island\": zscore needs a number`) && !strings.Contains(out, `transform.yaml:2: feature "Island": zscore needs a number`) {
		t.Fatalf("bad spec: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad", "transform_graph")); !os.IsNotExist(err) {
		t.Errorf("bad spec wrote something: %v", err)
	}
}

// TestONNXChecker runs the onnx package's full checker on transform.onnx.
func TestONNXChecker(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import onnx").Run(); err != nil {
		testenv.Missing(t, "%s with onnx (apt-get install python3-onnx): %v", py, err)
		return
	}
	store := artifacts.NewStore()
	defer store.Close()
	root := artifacts.MustParseURI(t.TempDir())
	examples := imported(t, store, root, "movies.json")
	spec := `features:
  "IMDB Rating": [impute: most_frequent, zscore]
  "Major Genre": [impute: {constant: "unknown"}, vocabulary: {top_k: 5, num_oov_buckets: 2}, one_hot]
  "Genre x Type": [cross: {columns: ["Major Genre", "Creative Type"], top_k: 4}, one_hot]
  Distributor: [hash_bucket: {num_buckets: 10}]
`
	if err := runTransform(store, root, examples.Location().String(), writeSpec(t, spec)); err != nil {
		t.Fatal(err)
	}
	path, _ := root.Join("transform_graph", transform.FileONNX).LocalPath()
	out, err := exec.Command(py, "-c", "import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); print(len(m.graph.node))", path).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx checker: %v\n%s", err, out)
	}
}

// TestDeterministic: the same input and spec give the same digests.
func TestDeterministic(t *testing.T) {
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()
	base := artifacts.MustParseURI(t.TempDir())
	examples := imported(t, store, base, "movies.json")
	spec := writeSpec(t, `features:
  "Production Budget": [impute: median, log1p, scale_to_0_1]
  "Rotten Tomatoes Rating": [bucketize: {num_buckets: 5}, one_hot]
  Distributor: [impute: most_frequent, vocabulary: {top_k: 20}, one_hot]
label: "Worldwide Gross"
passthrough: [Title]
`)
	var digests [2][2]string
	for i := range 2 {
		root := base.Join(fmt.Sprint("run", i))
		if err := runTransform(store, root, examples.Location().String(), spec); err != nil {
			t.Fatal(err)
		}
		for j, out := range []string{"transform_graph", "transformed_examples"} {
			typ := artifacts.TypeDataset
			if j == 0 {
				typ = artifacts.TypeTransformGraph
			}
			a, err := store.Open(ctx, root.Join(out), typ)
			if err != nil {
				t.Fatal(err)
			}
			digests[i][j] = a.Digest
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("digests differ between runs: %v", digests)
	}
}
