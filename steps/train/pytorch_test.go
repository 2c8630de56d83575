package train_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/model"
)

// TestPyTorchExample runs examples/trainers/pytorch/train.py through the
// hook on transformed penguins: the step accepts its model.onnx, fuses it
// behind the transform, and `infer` on the raw eval rows predicts the
// species with over 90% accuracy. `make setup` installs python3-torch and
// python3-onnx, so under CI their absence is a failure.
func TestPyTorchExample(t *testing.T) {
	if err := exec.Command("/usr/bin/python3", "-c", "import torch, onnx, numpy").Run(); err != nil {
		testenv.Missing(t, "/usr/bin/python3 lacks torch or onnx (apt install python3-torch python3-onnx)")
	}
	e := newEnv(t)
	penguins := e.examples("penguins.json")
	xfd, tg := e.transformed(penguins, penguinsSpec)
	script := filepath.Join(testenv.RepoRoot(t), "examples", "trainers", "pytorch", "train.py")
	mu, err := e.train("pytorch", map[string]string{"examples": xfd, "transform": tg},
		map[string]any{"trainer-command": "/usr/bin/python3 '" + script + "' --epochs 200", "hparams": `{"hidden": 16}`, "seed": int64(1)})
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, e.stderr.String())
	}
	t.Logf("trainer output:\n%s", e.stderr.String())
	m, err := model.Open(e.ctx, e.open(mu, artifacts.TypeModel))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.Meta.Classes, ","); got != "Adelie,Chinstrap,Gentoo" {
		t.Errorf("classes %s", got)
	}
	if m.Sig.Opset["ai.onnx"] != 17 {
		t.Errorf("opsets %v, want ai.onnx 17", m.Sig.Opset)
	}
	pred := e.infer("pytorch-infer", map[string]string{"examples": penguins, "model": mu.String()})
	labels := e.column(pred, artifacts.TypePredictions, "eval", "label")
	truth := e.column(pred, artifacts.TypePredictions, "eval", "Species")
	right := 0
	for i, l := range labels {
		if l == truth[i] {
			right++
		}
	}
	acc := float64(right) / float64(len(labels))
	t.Logf("PyTorch MLP through the hook: eval accuracy %.4f on %d rows (fused, raw columns in)", acc, len(labels))
	if acc < 0.9 {
		t.Errorf("eval accuracy %.4f, want at least 0.9", acc)
	}
}
