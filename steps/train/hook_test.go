package train_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	ctrain "github.com/mlsteps/mlsteps/components/train"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/train"
)

// fixtureModel fits a logistic regression on synthetic rows with the given
// features and writes its ONNX file.
func fixtureModel(t *testing.T, features []string) string {
	t.Helper()
	d := ctrain.Data{Features: features, Classes: []string{"Adelie", "Chinstrap", "Gentoo"}}
	for i := range 30 {
		for j := range features {
			d.X = append(d.X, float64((i*7+j*3)%11))
		}
		d.Y = append(d.Y, float64(i%3))
	}
	m, err := ctrain.FitLogistic(context.Background(), d, ctrain.LogisticOptions{Lambda: 1})
	if err != nil {
		t.Fatal(err)
	}
	data, err := m.ONNX()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "fixture.onnx")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCommandHook runs a shell trainer that checks its environment (the
// Parquet folders, the CSV files, the transform folder, hparams, seed,
// label, features, classes) and copies a model into MLSTEPS_MODEL_DIR; the
// step stores it fused behind the transform, streams the command's output
// to stderr, and `infer` runs the result on raw rows.
func TestCommandHook(t *testing.T) {
	e := newEnv(t)
	penguins := e.examples("penguins.json")
	xfd, tg := e.transformed(penguins, penguinsSpec)
	fixture := fixtureModel(t, featureOrder(e, tg))
	script := `set -e
ls "$MLSTEPS_TRAIN_DATA"/*.parquet >/dev/null
ls "$MLSTEPS_EVAL_DATA"/*.parquet >/dev/null
test -f "$MLSTEPS_TRANSFORM_DIR/transform.json"
test -f "$MLSTEPS_TRANSFORM_DIR/transform.onnx"
head -1 "$MLSTEPS_TRAIN_CSV" | grep -q 'Species$'
test "$(wc -l < "$MLSTEPS_EVAL_CSV")" -gt 10
echo "hparams=$MLSTEPS_HPARAMS seed=$MLSTEPS_SEED label=$MLSTEPS_LABEL classes=$MLSTEPS_CLASSES"
echo "features=$MLSTEPS_FEATURES" >&2
cp "$FIXTURE" "$MLSTEPS_MODEL_DIR/model.onnx"
`
	t.Setenv("FIXTURE", fixture)
	cmd := writeScript(t, script)
	mu, err := e.train("hook", map[string]string{"examples": xfd, "transform": tg},
		map[string]any{"trainer-command": "sh " + cmd + " --epochs 5", "hparams": `{"lr": 0.01}`, "seed": int64(11)})
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, e.stderr.String())
	}
	out := e.stderr.String()
	for _, want := range []string{`hparams={"lr": 0.01} seed=11 label=Species classes=["Adelie","Chinstrap","Gentoo"]`, `features=["Beak Length (mm)"`} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	a := e.open(mu, artifacts.TypeModel)
	if _, ok := a.File(train.FileTrained); !ok {
		t.Error("no trained.onnx beside the fused model")
	}
	m, err := model.Open(e.ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(m.Meta.Classes, ",") != "Adelie,Chinstrap,Gentoo" || len(m.Meta.Features) != 0 {
		t.Errorf("meta %+v", m.Meta)
	}
	metrics := property[train.CommandMetrics](e, mu, artifacts.TypeModel, train.PropTraining)
	if metrics.Trainer != "command" || metrics.TrainRows == 0 || metrics.EvalRows == 0 {
		t.Errorf("training property %+v", metrics)
	}
	pred := e.infer("hook-infer", map[string]string{"examples": penguins, "model": mu.String()})
	if n := len(e.column(pred, artifacts.TypePredictions, "eval", "label")); n == 0 {
		t.Error("infer predicted no rows with the hook's model")
	}

	// Without a transform the model's one input is fed the feature columns.
	fixture4 := fixtureModel(t, penguinFeatures)
	t.Setenv("FIXTURE", fixture4)
	mu, err = e.train("hook-raw", map[string]string{"examples": penguins},
		map[string]any{"trainer-command": `cp "$FIXTURE" "$MLSTEPS_MODEL_DIR/model.onnx"`, "label": "Species", "features": strings.Join(penguinFeatures, ",")})
	if err != nil {
		t.Fatal(err)
	}
	if m, err = model.Open(e.ctx, e.open(mu, artifacts.TypeModel)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.Meta.Features["x"], "|"); got != strings.Join(penguinFeatures, "|") {
		t.Errorf("features of x: %s", got)
	}
}

func writeScript(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "train.sh")
	if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBadInput runs the step on every kind of bad input the issue lists
// and checks the exit code, the message, and that no Model is committed.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	penguins := e.examples("penguins.json")
	xfd, tg := e.transformed(penguins, penguinsSpec)
	t.Setenv("FIXTURE2", fixtureModel(t, penguinFeatures[:2]))
	// A constant label: every Species replaced by one value.
	constant := filepath.Join(t.TempDir(), "constant.csv")
	if err := os.WriteFile(constant, []byte("a,b,label\n1,2,x\n2,3,x\n3,5,x\n4,1,x\n5,5,x\n6,2,x\n7,7,x\n8,1,x\n9,0,x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	constEx := e.importFile(constant)
	raw := map[string]string{"examples": penguins}
	// A transform without impute leaves the missing values NaN.
	nanXF, nanTG := e.transformed(penguins, "features:\n  \"Beak Length (mm)\": [zscore]\nlabel: Species\n")
	withTG := map[string]string{"examples": xfd, "transform": tg}
	feats := strings.Join(penguinFeatures, ",")
	for _, c := range []struct {
		name   string
		inputs map[string]string
		params map[string]any
		code   int
		want   string
	}{
		{"no trainer", raw, map[string]any{"label": "Species"}, 2, "give --trainer"},
		{"both trainers", raw, map[string]any{"label": "Species", "trainer": train.GBDT, "trainer-command": "true"}, 2, "not both"},
		{"unknown trainer", raw, map[string]any{"label": "Species", "trainer": "builtin:svm"}, 2, `"builtin:svm" is not a built-in trainer`},
		{"unknown hparam", raw, map[string]any{"label": "Species", "trainer": train.GBDT, "hparams": `{"trees": 10, "depth": 3}`}, 2, `takes no "depth"`},
		{"hparams not an object", raw, map[string]any{"label": "Species", "trainer": train.GBDT, "hparams": `[1]`}, 2, "want a JSON object"},
		{"label missing", raw, map[string]any{"label": "Kind", "trainer": train.GBDT}, 2, `label column "Kind" is not in the examples`},
		{"no label", raw, map[string]any{"trainer": train.GBDT}, 2, "no label column"},
		{"label constant", map[string]string{"examples": constEx}, map[string]any{"label": "label", "trainer": train.GBDT, "eval-split": ""}, 2, `label "label" is constant`},
		{"NaN for logistic", raw, map[string]any{"label": "Species", "trainer": train.Logistic, "features": feats}, 2, `is NaN: impute missing values`},
		{"NaN after transform", map[string]string{"examples": nanXF, "transform": nanTG}, map[string]any{"trainer": train.Logistic}, 2, `feature "Beak Length (mm)" is NaN`},
		{"string feature", raw, map[string]any{"label": "Species", "trainer": train.GBDT, "features": "Island"}, 2, `"Island" is utf8, not numeric`},
		{"linear on classes", withTG, map[string]any{"trainer": train.Linear}, 2, "builtin:linear needs a numeric label"},
		{"command not found", raw, map[string]any{"label": "Species", "trainer-command": "no-such-trainer-xyz --epochs 1"}, 2, "trainer command not found"},
		{"command fails", raw, map[string]any{"label": "Species", "trainer-command": "echo boom >&2; exit 3"}, 1, "exit code 3: boom"},
		{"no model written", raw, map[string]any{"label": "Species", "trainer-command": "echo done"}, 2, "wrote no model.onnx"},
		{"model ORT cannot load", raw, map[string]any{"label": "Species", "trainer-command": `echo garbage > "$MLSTEPS_MODEL_DIR/model.onnx"`}, 2, "not a valid ONNX model"},
		{"inputs do not match", raw, map[string]any{"label": "Species", "features": feats, "trainer-command": `cp "$FIXTURE2" "$MLSTEPS_MODEL_DIR/model.onnx"`}, 2, `want one input of 4 values per row or one input per feature named after it: "Beak Length (mm)"`},
		{"per-key with a command", raw, map[string]any{"label": "Species", "per-key": "Island", "trainer-command": "true"}, 2, "--per-key trains built-in models"},
		{"per-key column missing", raw, map[string]any{"label": "Species", "per-key": "Region", "trainer": train.GBDT}, 2, `--per-key column "Region"`},
		{"every key too small", raw, map[string]any{"label": "Species", "per-key": "Island", "trainer": train.GBDT, "min-rows-per-key": int64(1000)}, 2, "all skipped"},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := strings.ReplaceAll(c.name, " ", "-")
			mu, err := e.train(name, c.inputs, c.params)
			if err == nil {
				t.Fatal("no error")
			}
			if exitCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
				t.Errorf("exit %d: %v\nwant exit %d with %q", exitCode(err), err, c.code, c.want)
			}
			if e.committed(mu) {
				t.Error("a Model artifact was committed")
			}
		})
	}
}

// TestCancel checks that a cancelled context stops the trainer command.
func TestCancel(t *testing.T) {
	e := newEnv(t)
	penguins := e.examples("penguins.json")
	ctx, cancel := context.WithCancel(e.ctx)
	e.ctx = ctx
	done := make(chan error, 1)
	go func() {
		_, err := e.train("cancel", map[string]string{"examples": penguins},
			map[string]any{"label": "Species", "trainer-command": "echo started >&2; sleep 60"})
		done <- err
	}()
	for !strings.Contains(e.stderr.String(), "started") {
		select {
		case err := <-done:
			t.Fatalf("ended before cancel: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}
