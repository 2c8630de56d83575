package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	xf "github.com/mlsteps/mlsteps/components/transform"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
	xfstep "github.com/mlsteps/mlsteps/steps/transform"
)

// Version of the train step; it goes into lineage and cache keys.
const Version = "0.1.0"

// Built-in trainers, the values of --trainer.
const (
	Linear   = "builtin:linear"
	Logistic = "builtin:logistic"
	GBDT     = "builtin:gbdt"
)

// Model artifact properties the step adds.
const (
	PropTraining       = "training"
	PropTrainingPerKey = "training_per_key"
	PropSkippedKeys    = "skipped_keys"
)

// FileTrained is the unfused trained model, kept beside the fused
// model.onnx when a TransformGraph was given.
const FileTrained = "trained.onnx"

// maxLoss caps the loss-per-iteration list in the properties.
const maxLoss = 1000

// Spec is the train step's contract.
func Spec() *step.Spec {
	return &step.Spec{
		Name:    "train",
		Version: Version,
		Summary: "fit a model (built-in Go trainers or any command that writes ONNX) and write a Model artifact",
		Description: "Fits a model on the train split of a Dataset, with a built-in deterministic Go trainer (builtin:linear: ridge; " +
			"builtin:logistic: binary or multinomial L2 logistic regression; builtin:gbdt: histogram gradient-boosted trees with " +
			"early stopping on the eval split) or with any command (--trainer-command, run through sh -c with MLSTEPS_TRAIN_DATA, " +
			"MLSTEPS_EVAL_DATA, MLSTEPS_TRAIN_CSV, MLSTEPS_EVAL_CSV, MLSTEPS_TRANSFORM_DIR, MLSTEPS_MODEL_DIR, MLSTEPS_HPARAMS, " +
			"MLSTEPS_SEED, MLSTEPS_LABEL, MLSTEPS_FEATURES and MLSTEPS_CLASSES set; it must write model.onnx into MLSTEPS_MODEL_DIR). " +
			"The model is checked in ONNX Runtime and its inputs against the features. With --in transform the examples are the " +
			"transform step's output and the model is fused behind transform.onnx so it takes raw columns. --per-key trains one " +
			"model per value of a column into a keyed Model; with it, --shard I/N trains one group of the sorted keys and --merge " +
			"writes the keyed Model of all the groups, the unsharded one file for file. Training metrics (loss per iteration, accuracy or RMSE) go into the " +
			"artifact's properties.",
		Inputs: []step.Port{
			{Name: "examples", Type: artifacts.TypeDataset, Description: "the rows to train on (train split) and to evaluate on (eval split)"},
			{Name: "transform", Type: artifacts.TypeTransformGraph, Optional: true, Description: "the TransformGraph that made the examples: features, label, and the graph fused in front of the model"},
		},
		Outputs: []step.Port{
			{Name: "model", Type: artifacts.TypeModel, Description: "model.onnx (fused with the transform when given; trained.onnx unfused), or models/*.onnx with models/index.json"},
		},
		Params: []step.Param{
			{Name: "trainer", Type: step.String, Default: "", Description: "a built-in trainer: builtin:linear, builtin:logistic or builtin:gbdt (or give --trainer-command)", Example: GBDT},
			{Name: "trainer-command", Type: step.String, Default: "", Description: "a command run through sh -c that writes $MLSTEPS_MODEL_DIR/model.onnx (instead of --trainer)", Example: "python3 train.py --epochs 5"},
			{Name: "label", Type: step.String, Default: "", Description: "the label column; default: the TransformGraph's label", Example: "Species"},
			{Name: "features", Type: step.String, Default: "", Description: "comma-separated feature columns without --in transform; default: every numeric column but the label", Example: "Beak Length (mm),Body Mass (g)"},
			{Name: "hparams", Type: step.String, Default: "{}", Description: "hyper-parameters as a JSON object: the built-in trainers' options, or passed to the command as MLSTEPS_HPARAMS", Example: `{"trees": 200, "max_depth": 4}`},
			{Name: "seed", Type: step.Int, Default: int64(0), Description: "seed of every random choice (gbdt's bin sample; MLSTEPS_SEED for a command)"},
			{Name: "train-split", Type: step.String, Default: "train", Description: "the split to fit on"},
			{Name: "eval-split", Type: step.String, Default: "eval", Description: "the split for eval metrics and early stopping; empty: none"},
			{Name: "name", Type: step.String, Default: "", Description: "the model's name in model ids; default: the trainer's"},
			{Name: "per-key", Type: step.String, Default: "", Description: "train one built-in model per value of this column (a keyed Model)", Example: "Island"},
			{Name: "min-rows-per-key", Type: step.Int, Default: int64(10), Description: "with --per-key: keys with fewer train rows are skipped and listed"},
			{Name: "workers", Type: step.Int, Default: int64(0), Description: "with --per-key: models trained at once (0: one per CPU)"},
		},
		Run:        run,
		Shard:      sharding(),
		ContentKey: commandFiles,
	}
}

// settings are the checked parameters and what the inputs' sidecars say.
type settings struct {
	trainer, command string
	hparams          map[string]any
	hparamsText      string
	seed             int64
	label            string
	labelType        string
	features         []string
	classify         bool
	trainSplit       string
	evalSplit        string
	name             string
	perKey           string
	minRows          int
	workers          int
	transform        []byte // transform.onnx, with --in transform
}

func parseSettings(ctx context.Context, r *step.Run) (settings, error) {
	s := settings{trainer: strings.TrimSpace(r.String("trainer")), command: strings.TrimSpace(r.String("trainer-command")),
		seed: r.Int("seed"), trainSplit: r.String("train-split"), evalSplit: r.String("eval-split"), name: r.String("name"),
		perKey: r.String("per-key"), minRows: int(r.Int("min-rows-per-key")), workers: int(r.Int("workers"))}
	switch {
	case s.trainer == "" && s.command == "":
		return s, step.Usagef("give --trainer (%s, %s or %s) or --trainer-command", Linear, Logistic, GBDT)
	case s.trainer != "" && s.command != "":
		return s, step.Usagef("give --trainer or --trainer-command, not both")
	case s.trainer != "" && !slices.Contains([]string{Linear, Logistic, GBDT}, s.trainer):
		return s, step.Usagef("--trainer %q is not a built-in trainer: use %s, %s or %s, or --trainer-command", s.trainer, Linear, Logistic, GBDT)
	case s.command != "" && s.perKey != "":
		return s, step.Usagef("--per-key trains built-in models; it does not work with --trainer-command")
	case s.minRows < 1 || s.workers < 0:
		return s, step.Usagef("--min-rows-per-key must be at least 1 and --workers at least 0")
	}
	s.hparamsText = strings.TrimSpace(r.String("hparams"))
	if s.hparamsText == "" {
		s.hparamsText = "{}"
	}
	if err := json.Unmarshal([]byte(s.hparamsText), &s.hparams); err != nil || s.hparams == nil {
		return s, step.Usagef("--hparams: want a JSON object, got %q", s.hparamsText)
	}
	if s.trainer != "" {
		if _, err := builtinOptions(s.trainer, s.hparams, s.seed); err != nil {
			return s, err
		}
	}
	if s.name == "" {
		s.name = strings.TrimPrefix(s.trainer, "builtin:")
		if s.name == "" {
			s.name = "model"
		}
	}
	if err := s.resolveColumns(ctx, r); err != nil {
		return s, err
	}
	return s, nil
}

// resolveColumns picks the label and features from the TransformGraph or
// the parameters, and checks them against the Dataset's columns before any
// row is read.
func (s *settings) resolveColumns(ctx context.Context, r *step.Run) error {
	examples := r.Input("examples")
	cols, err := artifacts.Property[[]artifacts.Column](examples.Sidecar, artifacts.PropColumns)
	if err != nil {
		return step.BadInput(fmt.Errorf("input examples: %w", err))
	}
	types := map[string]string{}
	var order []string
	for _, c := range cols {
		types[c.Name] = c.Type
		order = append(order, c.Name)
	}
	s.label = r.String("label")
	if tg := r.Input("transform"); tg != nil {
		if r.String("features") != "" {
			return step.Usagef("--features: with --in transform the features are the TransformGraph's feature order")
		}
		if s.features, err = artifacts.Property[[]string](tg.Sidecar, xfstep.PropFeatureOrder); err != nil {
			return step.BadInput(fmt.Errorf("input transform: %w", err))
		}
		if s.label == "" {
			s.label, _ = artifacts.Property[string](tg.Sidecar, xfstep.PropLabel)
		}
		if s.transform, err = tg.ReadFile(ctx, xfstep.FileONNX); err != nil {
			return fmt.Errorf("input transform: %w", err)
		}
	}
	if s.label == "" {
		return step.Usagef("--label: no label column given (and no TransformGraph naming one)")
	}
	var ok bool
	if s.labelType, ok = types[s.label]; !ok {
		return step.BadInput(fmt.Errorf("label column %q is not in the examples (columns: %s)", s.label, strings.Join(order, ", ")))
	}
	if s.perKey != "" {
		if _, ok := types[s.perKey]; !ok {
			return step.BadInput(fmt.Errorf("--per-key column %q is not in the examples (columns: %s)", s.perKey, strings.Join(order, ", ")))
		}
	}
	if r.Input("transform") == nil {
		for _, f := range strings.Split(r.String("features"), ",") {
			if f = strings.TrimSpace(f); f != "" {
				s.features = append(s.features, f)
			}
		}
		if len(s.features) == 0 {
			for _, c := range order {
				if k, _ := xf.KindOf(types[c]); k == xf.Numeric && c != s.label && c != s.perKey {
					s.features = append(s.features, c)
				}
			}
		}
	}
	if len(s.features) == 0 {
		return step.BadInput(errors.New("no feature columns: the examples have no numeric column besides the label; give --features"))
	}
	for _, f := range s.features {
		t, ok := types[f]
		if !ok {
			return step.BadInput(fmt.Errorf("feature column %q is not in the examples (columns: %s)", f, strings.Join(order, ", ")))
		}
		if k, _ := xf.KindOf(t); k != xf.Numeric {
			return step.BadInput(fmt.Errorf("feature column %q is %s, not numeric: encode it with the transform step", f, t))
		}
		if f == s.label {
			return step.BadInput(fmt.Errorf("the label %q is also a feature", f))
		}
	}
	k, _ := xf.KindOf(s.labelType)
	s.classify = k != xf.Numeric || s.trainer == Logistic
	if s.trainer == Linear && s.classify {
		return step.BadInput(fmt.Errorf("builtin:linear needs a numeric label; %q is %s (use builtin:logistic or builtin:gbdt)", s.label, s.labelType))
	}
	return nil
}

func run(ctx context.Context, r *step.Run) error {
	s, err := parseSettings(ctx, r)
	if err != nil {
		return err
	}
	if err := ort.InitFound(); err != nil {
		return err
	}
	switch {
	case s.command != "":
		return runCommand(ctx, r, s)
	case s.perKey != "":
		return runPerKey(ctx, r, s)
	}
	return runBuiltin(ctx, r, s)
}

// prepare checks a trained model (fusing it behind the transform when
// there is one) and returns what model.Write stores.
func prepare(s settings, data []byte, meta model.Meta) (fused model.Prepared, err error) {
	if s.transform == nil {
		p, err := model.Prepare(data, meta)
		if err != nil {
			return p, err
		}
		return p, model.Check(p.Data, p.Sig)
	}
	f, err := model.Fuse(s.transform, data)
	if err != nil {
		return model.Prepared{}, fmt.Errorf("fuse the model behind transform.onnx: %w", err)
	}
	if f, err = dropFeatureMeta(f); err != nil {
		return model.Prepared{}, err
	}
	// The fused model takes raw columns, each fed by its namesake, and
	// imputes their nulls.
	meta.Features = map[string][]string{}
	meta.NullsAsMissing = true
	p, err := model.Prepare(f, meta)
	if err != nil {
		return p, fmt.Errorf("fused model: %w", err)
	}
	if err := model.Check(p.Data, p.Sig); err != nil {
		return p, fmt.Errorf("fused model does not load in ONNX Runtime: %w", err)
	}
	return p, nil
}
