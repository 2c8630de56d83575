package train

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/onnxpb"
	"github.com/mlsteps/mlsteps/components/train"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
)

// options holds one built-in trainer's options, decoded from --hparams.
type options struct {
	linear   train.LinearOptions
	logistic train.LogisticOptions
	gbdt     train.GBDTOptions
}

// defaultTol is builtin:logistic's tolerance when --hparams sets none.
const defaultTol = 1e-6

// hparamKeys lists the --hparams keys each built-in trainer takes.
var hparamKeys = map[string][]string{
	Linear:   {"lambda"},
	Logistic: {"lambda", "max_iter", "tol"},
	GBDT:     {"trees", "max_depth", "learning_rate", "min_child_weight", "lambda", "max_bins", "early_stopping_rounds"},
}

// builtinOptions maps --hparams onto a trainer's options; an unknown key or
// a value of the wrong type is a usage error naming it.
func builtinOptions(trainer string, hp map[string]any, seed int64) (options, error) {
	// The component's default tolerance (1e-8) sits below the rounding
	// floor of the loss on a million rows, where L-BFGS then spends its
	// whole iteration budget in line searches; 1e-6 stops at the same
	// optimum to 1e-8 of the loss (sklearn's default is 1e-4).
	o := options{linear: train.LinearOptions{Lambda: 1}, logistic: train.LogisticOptions{Lambda: 1, Tol: defaultTol},
		gbdt: train.GBDTOptions{Seed: uint64(seed)}}
	keys := hparamKeys[trainer]
	for _, k := range slices.Sorted(maps.Keys(hp)) {
		if !slices.Contains(keys, k) {
			return o, step.Usagef("--hparams: %s takes no %q (it takes %s)", trainer, k, strings.Join(keys, ", "))
		}
		v, ok := hp[k].(float64)
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			return o, step.Usagef("--hparams: %q must be a number, not %v", k, hp[k])
		}
		integer := func() (int, error) {
			if v != math.Trunc(v) || v < 0 {
				return 0, step.Usagef("--hparams: %q must be a non-negative integer, not %v", k, v)
			}
			return int(v), nil
		}
		var err error
		switch k {
		case "lambda":
			o.linear.Lambda, o.logistic.Lambda, o.gbdt.Lambda = v, v, v
		case "tol":
			o.logistic.Tol = v
		case "max_iter":
			o.logistic.MaxIter, err = integer()
		case "trees":
			o.gbdt.Trees, err = integer()
		case "max_depth":
			o.gbdt.MaxDepth, err = integer()
		case "max_bins":
			o.gbdt.MaxBins, err = integer()
		case "early_stopping_rounds":
			o.gbdt.EarlyStoppingRounds, err = integer()
		case "learning_rate":
			o.gbdt.LearningRate = v
		case "min_child_weight":
			o.gbdt.MinChildWeight = v
		}
		if err != nil {
			return o, err
		}
	}
	return o, nil
}

// Metrics is what one fit reports into the "training" property.
type Metrics struct {
	Trainer       string    `json:"trainer"`
	Iterations    int       `json:"iterations"`
	Converged     bool      `json:"converged"`
	Stopped       bool      `json:"stopped_early,omitempty"`
	Loss          []float64 `json:"loss"`
	LossTruncated bool      `json:"loss_truncated,omitempty"`
	EvalLoss      []float64 `json:"eval_loss,omitempty"`
	TrainRows     int       `json:"train_rows"`
	EvalRows      int       `json:"eval_rows"`
	// TrainAccuracy and EvalAccuracy (classification) or TrainRMSE and
	// EvalRMSE (regression); eval ones are absent without eval rows.
	TrainAccuracy *float64 `json:"train_accuracy,omitempty"`
	EvalAccuracy  *float64 `json:"eval_accuracy,omitempty"`
	TrainRMSE     *float64 `json:"train_rmse,omitempty"`
	EvalRMSE      *float64 `json:"eval_rmse,omitempty"`
	// EvalUnknownClass counts eval rows whose class the train split lacks
	// (left out of the eval metrics).
	EvalUnknownClass int `json:"eval_unknown_class,omitempty"`
}

// fit trains one built-in model; eval may have no rows.
func fit(ctx context.Context, trainer string, o options, d, eval train.Data) (train.Model, Metrics, error) {
	var (
		m   train.Model
		rep train.Report
		err error
	)
	switch trainer {
	case Linear:
		var lm *train.Linear
		if lm, err = train.FitLinear(ctx, d, o.linear); err == nil {
			m, rep = lm, lm.Report
		}
	case Logistic:
		var lm *train.Logistic
		if lm, err = train.FitLogistic(ctx, d, o.logistic); err == nil {
			m, rep = lm, lm.Report
		}
	case GBDT:
		var ev *train.Data
		if eval.Rows() > 0 {
			ev = &eval
		} else if o.gbdt.EarlyStoppingRounds > 0 {
			return nil, Metrics{}, step.Usagef("--hparams: early_stopping_rounds needs eval rows; the eval split has none")
		}
		var gm *train.GBDT
		if gm, err = train.FitGBDT(ctx, d, ev, o.gbdt); err == nil {
			m, rep = gm, gm.Report
		}
	}
	if err != nil {
		if errors.Is(err, train.ErrInvalid) {
			return nil, Metrics{}, step.BadInput(err)
		}
		return nil, Metrics{}, err
	}
	mt := Metrics{Trainer: trainer, Iterations: rep.Iterations, Converged: rep.Converged, Stopped: rep.Stopped,
		Loss: rep.Loss, EvalLoss: rep.EvalLoss, TrainRows: d.Rows(), EvalRows: eval.Rows()}
	if len(mt.Loss) > maxLoss {
		mt.Loss, mt.LossTruncated = mt.Loss[:maxLoss], true
	}
	if len(mt.EvalLoss) > maxLoss {
		mt.EvalLoss, mt.LossTruncated = mt.EvalLoss[:maxLoss], true
	}
	if err := score(m, d, &mt.TrainAccuracy, &mt.TrainRMSE); err != nil {
		return nil, mt, err
	}
	if eval.Rows() > 0 {
		if err := score(m, eval, &mt.EvalAccuracy, &mt.EvalRMSE); err != nil {
			return nil, mt, err
		}
	}
	return m, mt, nil
}

// score sets accuracy (classification) or RMSE (regression) of m on d.
func score(m train.Model, d train.Data, acc, rmse **float64) error {
	p, err := m.Predict(d.X)
	if err != nil {
		return err
	}
	n := float64(d.Rows())
	if d.Classes != nil {
		right := 0
		for i, l := range p.Labels {
			if float64(l) == d.Y[i] {
				right++
			}
		}
		v := float64(right) / n
		*acc = &v
		return nil
	}
	s := 0.0
	for i, v := range p.Values {
		s += (v - d.Y[i]) * (v - d.Y[i])
	}
	v := math.Sqrt(s / n)
	*rmse = &v
	return nil
}

// split is a split read and turned into train.Data.
type splits struct {
	train, eval *table
	classes     []string
}

// readSplits reads the train and eval splits and finds the classes.
func readSplits(ctx context.Context, r *step.Run, s settings) (splits, error) {
	examples := r.Input("examples")
	var out splits
	if _, err := examples.Split(s.trainSplit); err != nil {
		return out, step.BadInput(fmt.Errorf("--train-split: %w", err))
	}
	var err error
	if out.train, err = readSplit(ctx, examples, s.trainSplit, s); err != nil {
		return out, err
	}
	out.eval = &table{}
	if s.evalSplit != "" {
		if _, err := examples.Split(s.evalSplit); err != nil {
			return out, step.BadInput(fmt.Errorf("--eval-split: %w (give --eval-split \"\" for none)", err))
		}
		if out.eval, err = readSplit(ctx, examples, s.evalSplit, s); err != nil {
			return out, err
		}
	}
	if out.train.nullLabel > 0 || out.train.nullKey > 0 {
		r.Logger().Warn("train rows left out", "null_label", out.train.nullLabel, "null_key", out.train.nullKey)
	}
	if out.train.rows() == 0 {
		return out, step.BadInput(fmt.Errorf("split %s has no rows with a label %q", s.trainSplit, s.label))
	}
	if s.classify {
		out.classes = classesOf(out.train.labels)
		if len(out.classes) < 2 {
			return out, step.BadInput(fmt.Errorf("label %q is constant in split %s (every row is %q): nothing to learn", s.label, s.trainSplit, out.classes[0]))
		}
		return out, nil
	}
	if slices.Min(out.train.values) == slices.Max(out.train.values) {
		return out, step.BadInput(fmt.Errorf("label %q is constant in split %s (every row is %v): nothing to learn", s.label, s.trainSplit, out.train.values[0]))
	}
	return out, nil
}

// trained is a fitted built-in model ready to write.
type trained struct {
	prepared model.Prepared
	raw      []byte // the model before fusing; nil when not fused
	metrics  Metrics
}

// fitOne fits a model on the given rows (nil: all) and prepares it.
func fitOne(ctx context.Context, s settings, o options, sp splits, trainRows, evalRows []int) (trained, error) {
	d, _ := sp.train.data(s.features, sp.classes, trainRows)
	ev, unknown := sp.eval.data(s.features, sp.classes, evalRows)
	m, mt, err := fit(ctx, s.trainer, o, d, ev)
	if err != nil {
		return trained{}, err
	}
	mt.EvalUnknownClass = unknown
	data, err := m.ONNX()
	if err != nil {
		return trained{}, fmt.Errorf("export ONNX: %w", err)
	}
	meta := model.Meta{Name: s.name, Features: map[string][]string{train.InputName: s.features}, Classes: sp.classes}
	p, err := prepare(s, data, meta)
	if err != nil {
		return trained{}, fmt.Errorf("trained model: %w", err)
	}
	t := trained{prepared: p, metrics: mt}
	if s.transform != nil {
		t.raw = data
	}
	return t, nil
}

// builtinInputs checks the hyper-parameters, then reads the splits: a
// typo in --hparams fails before any data is read.
func builtinInputs(ctx context.Context, r *step.Run, s settings) (options, splits, error) {
	o, err := builtinOptions(s.trainer, s.hparams, s.seed)
	if err != nil {
		return o, splits{}, err
	}
	sp, err := readSplits(ctx, r, s)
	return o, sp, err
}

func runBuiltin(ctx context.Context, r *step.Run, s settings) error {
	o, sp, err := builtinInputs(ctx, r, s)
	if err != nil {
		return err
	}
	t, err := fitOne(ctx, s, o, sp, nil, nil)
	if err != nil {
		return err
	}
	w, err := r.Output(ctx, "model")
	if err != nil {
		return err
	}
	if err := writeModel(ctx, w, t.prepared, t.raw); err != nil {
		return err
	}
	w.SetProperty(PropTraining, t.metrics)
	r.Logger().Info("trained", "trainer", s.trainer, "rows", t.metrics.TrainRows, "iterations", t.metrics.Iterations,
		"converged", t.metrics.Converged, "eval_accuracy", deref(t.metrics.EvalAccuracy), "eval_rmse", deref(t.metrics.EvalRMSE))
	return nil
}

// writeModel writes model.onnx and, when it is fused (raw is the model
// before fusing), the unfused model as trained.onnx.
func writeModel(ctx context.Context, w *artifacts.Writer, p model.Prepared, raw []byte) error {
	if err := model.Write(ctx, w, p); err != nil {
		return err
	}
	if raw != nil {
		return w.WriteFile(ctx, FileTrained, raw)
	}
	return nil
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

// dropFeatureMeta removes the trained model's mlsteps.features from a
// fused model: it names the transformed columns, while the fused model
// reads raw ones.
func dropFeatureMeta(data []byte) ([]byte, error) {
	m, err := onnx.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("fused model: %w", err)
	}
	m.MetadataProps = slices.DeleteFunc(m.MetadataProps, func(p *onnxpb.StringStringEntryProto) bool {
		return p.GetKey() == model.MetaFeatures
	})
	return onnx.Marshal(m)
}
