package train

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/tailbuf"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
	xfstep "github.com/mlsteps/mlsteps/steps/transform"
)

// Environment variables of the trainer command.
const (
	EnvTrainData    = "MLSTEPS_TRAIN_DATA"
	EnvEvalData     = "MLSTEPS_EVAL_DATA"
	EnvTrainCSV     = "MLSTEPS_TRAIN_CSV"
	EnvEvalCSV      = "MLSTEPS_EVAL_CSV"
	EnvTransformDir = "MLSTEPS_TRANSFORM_DIR"
	EnvModelDir     = "MLSTEPS_MODEL_DIR"
	EnvHParams      = "MLSTEPS_HPARAMS"
	EnvSeed         = "MLSTEPS_SEED"
	EnvLabel        = "MLSTEPS_LABEL"
	EnvFeatures     = "MLSTEPS_FEATURES"
	EnvClasses      = "MLSTEPS_CLASSES"
)

// CommandMetrics is the "training" property of a model made by a command.
type CommandMetrics struct {
	Trainer   string `json:"trainer"` // "command"
	Command   string `json:"command"`
	TrainRows int    `json:"train_rows"`
	EvalRows  int    `json:"eval_rows"`
}

// runCommand runs --trainer-command under the documented environment and
// stores the model it writes.
func runCommand(ctx context.Context, r *step.Run, s settings) error {
	examples := r.Input("examples")
	sp, err := readSplits(ctx, r, s)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "mlsteps-train-")
	if err != nil {
		return fmt.Errorf("trainer workspace: %w", err)
	}
	defer os.RemoveAll(tmp)
	env := map[string]string{EnvHParams: s.hparamsText, EnvSeed: strconv.FormatInt(s.seed, 10), EnvLabel: s.label,
		EnvEvalData: "", EnvEvalCSV: "", EnvTransformDir: ""}
	feats, _ := json.Marshal(s.features)
	env[EnvFeatures] = string(feats)
	classes := sp.classes
	if classes == nil {
		classes = []string{}
	}
	cls, _ := json.Marshal(classes)
	env[EnvClasses] = string(cls)
	for _, sl := range []struct {
		name, dataVar, csvVar string
		t                     *table
	}{{s.trainSplit, EnvTrainData, EnvTrainCSV, sp.train}, {s.evalSplit, EnvEvalData, EnvEvalCSV, sp.eval}} {
		if sl.name == "" {
			continue
		}
		dir, err := stageSplit(ctx, examples, sl.name, filepath.Join(tmp, "data", sl.name))
		if err != nil {
			return err
		}
		env[sl.dataVar] = dir
		file := filepath.Join(tmp, "csv", sl.name+".csv")
		if err := writeCSV(file, s, sl.t); err != nil {
			return err
		}
		env[sl.csvVar] = file
	}
	if tg := r.Input("transform"); tg != nil {
		dir := filepath.Join(tmp, "transform")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, f := range []string{xfstep.FileJSON, xfstep.FileONNX} {
			data, err := tg.ReadFile(ctx, f)
			if err != nil {
				return fmt.Errorf("input transform: %w", err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
				return fmt.Errorf("stage %s: %w", f, err)
			}
		}
		env[EnvTransformDir] = dir
	}
	modelDir := filepath.Join(tmp, "model")
	if err := os.MkdirAll(modelDir, 0o755); err != nil {
		return err
	}
	env[EnvModelDir] = modelDir

	if err := execute(ctx, r, s.command, env); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(modelDir, model.File))
	if errors.Is(err, os.ErrNotExist) {
		return step.BadInput(fmt.Errorf("trainer command exited 0 but wrote no %s into $%s", model.File, EnvModelDir))
	}
	if err != nil {
		return fmt.Errorf("read the trained model: %w", err)
	}
	p, raw, err := checkCommandModel(s, data, sp.classes)
	if err != nil {
		return err
	}
	w, err := r.Output(ctx, "model")
	if err != nil {
		return err
	}
	if err := writeModel(ctx, w, p, raw); err != nil {
		return err
	}
	w.SetProperty(PropTraining, CommandMetrics{Trainer: "command", Command: s.command, TrainRows: sp.train.rows(), EvalRows: sp.eval.rows()})
	r.Logger().Info("trainer command's model stored", "inputs", len(p.Sig.Inputs), "outputs", len(p.Sig.Outputs), "classes", len(p.Meta.Classes))
	return nil
}

// execute runs the command through sh -c, streaming its output to the
// step's stderr and keeping the tail for the error message.
func execute(ctx context.Context, r *step.Run, command string, env map[string]string) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	// The command may start children (python, torchrun); cancelling kills
	// its whole process group, not just sh, and stops waiting for their
	// output soon after.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = os.Environ()
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range env {
			if !yield(k) {
				return
			}
		}
	}) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	tail := tailbuf.New(2048)
	out := io.MultiWriter(r.Stderr(), tail)
	cmd.Stdout, cmd.Stderr = out, out
	r.Logger().Info("running trainer command", "command", command)
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("trainer command: %w", ctx.Err())
	case errors.As(err, &exit) && exit.ExitCode() == 127:
		return step.BadInput(fmt.Errorf("trainer command not found (sh exit 127): %q: %s", command, outputText(tail)))
	case errors.As(err, &exit):
		return fmt.Errorf("trainer command failed with exit code %d: %s", exit.ExitCode(), outputText(tail))
	}
	return fmt.Errorf("trainer command %q: %w", command, err)
}

// outputText is a command's kept output for a message.
func outputText(t *tailbuf.Buffer) string {
	if s := strings.TrimSpace(t.String()); s != "" {
		return s
	}
	return "(no output)"
}

// checkCommandModel checks that a command's model loads in ONNX Runtime
// and takes the features, and fuses it behind the transform when there is
// one and it takes them as one input.
func checkCommandModel(s settings, data []byte, classes []string) (model.Prepared, []byte, error) {
	sig, props, err := model.Inspect(data)
	if err != nil {
		return model.Prepared{}, nil, step.BadInput(fmt.Errorf("the trainer's %s is not a valid ONNX model: %w", model.File, err))
	}
	if err := model.Check(data, sig); err != nil {
		return model.Prepared{}, nil, step.BadInput(fmt.Errorf("the trainer's %s does not load in ONNX Runtime: %w", model.File, err))
	}
	meta := model.Meta{Name: s.name}
	if props[model.MetaClasses] == "" {
		meta.Classes = classes
	}
	var single bool
	switch {
	case len(sig.Inputs) == 1 && widthOK(sig.Inputs[0], len(s.features)):
		single = true
		meta.Features = map[string][]string{sig.Inputs[0].Name: s.features}
	case sameNames(sig.Inputs, s.features):
		meta.Features = map[string][]string{}
	default:
		return model.Prepared{}, nil, step.BadInput(fmt.Errorf("the trainer's model inputs do not match the features: the model takes %s; "+
			"want one input of %d values per row or one input per feature named after it: %s",
			describeInputs(sig.Inputs), len(s.features), strings.Join(quote(s.features), ", ")))
	}
	if s.transform != nil && single {
		p, err := prepare(s, data, meta)
		if err != nil {
			return p, nil, step.BadInput(fmt.Errorf("the trainer's model: %w", err))
		}
		return p, data, nil
	}
	// Without a transform, or with per-feature inputs (which read the
	// transformed columns by name), the model is stored as trained.
	p, err := model.Prepare(data, meta)
	if err != nil {
		return p, nil, step.BadInput(fmt.Errorf("the trainer's model: %w", err))
	}
	return p, nil, nil
}

// widthOK says whether t takes w values per row ([N,w], or a second axis
// the model leaves open).
func widthOK(t model.Tensor, w int) bool {
	if len(t.Shape) != 2 {
		return w == 1 && len(t.Shape) == 1
	}
	switch d := t.Shape[1].(type) {
	case int64:
		return int(d) == w
	case string:
		return true
	}
	return false
}

func sameNames(ins []model.Tensor, features []string) bool {
	if len(ins) != len(features) {
		return false
	}
	names := make([]string, len(ins))
	for i, t := range ins {
		names[i] = t.Name
	}
	slices.Sort(names)
	want := slices.Sorted(slices.Values(features))
	return slices.Equal(names, want)
}

func describeInputs(ins []model.Tensor) string {
	out := make([]string, len(ins))
	for i, t := range ins {
		out[i] = fmt.Sprintf("%q %s %v", t.Name, t.Type, t.Shape)
	}
	return strings.Join(out, ", ")
}

func quote(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// stageSplit returns a local folder holding the split's Parquet parts: the
// artifact's own folder for a file:// artifact (each part verified), else
// copies in dst.
func stageSplit(ctx context.Context, a *artifacts.Artifact, split, dst string) (string, error) {
	sp, err := a.Split(split)
	if err != nil {
		return "", step.BadInput(err)
	}
	dir := ""
	for _, name := range sp.Files {
		local, release, err := a.LocalFile(ctx, name)
		if err != nil {
			return "", fmt.Errorf("stage split %s: %w", split, err)
		}
		if _, ok := a.Location().Join(name).LocalPath(); ok {
			release()
			dir = filepath.Dir(local)
			continue
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			release()
			return "", err
		}
		err = os.Rename(local, filepath.Join(dst, path.Base(name)))
		release()
		if err != nil {
			return "", fmt.Errorf("stage split %s: %w", split, err)
		}
		dir = dst
	}
	if dir == "" {
		// A split without parts: an empty folder says so.
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return "", err
		}
		dir = dst
	}
	return dir, nil
}

// writeCSV writes the rows the step read (features, then the label) as
// CSV, for trainers that cannot read Parquet.
func writeCSV(file string, s settings, t *table) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	w := csv.NewWriter(f)
	_ = w.Write(append(slices.Clone(s.features), s.label))
	n := len(s.features)
	rec := make([]string, n+1)
	for i := range t.rows() {
		for j, v := range t.x[i*n : (i+1)*n] {
			rec[j] = ""
			if v == v { // NaN (missing) stays empty
				rec[j] = strconv.FormatFloat(v, 'g', -1, 64)
			}
		}
		if s.classify {
			rec[n] = t.labels[i]
		} else {
			rec[n] = strconv.FormatFloat(t.values[i], 'g', -1, 64)
		}
		_ = w.Write(rec)
	}
	w.Flush()
	return errors.Join(w.Error(), f.Close())
}
