// Package evaluate is the model evaluation step, TFX's Evaluator over
// TensorFlow Model Analysis: it runs a model (and a baseline) over a
// Dataset split through the inference engine, computes metrics overall
// and per slice, checks thresholds and writes an Evaluation and a Blessing.
package evaluate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/evaluate"
	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/steps/blessing"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
)

// Name and Version of the step; they go into lineage and cache keys.
const (
	Name    = "evaluate"
	Version = "0.1.0"
)

// Files of the Evaluation artifact.
const (
	FileMetrics      = "metrics.json"
	FileReport       = "report.html"
	FileKFPMetrics   = "kfp_metrics.json"
	FileKFPClassific = "kfp_classification_metrics.json"
)

// Spec is the evaluate step's contract.
func Spec() *step.Spec {
	return &step.Spec{
		Name:    Name,
		Version: Version,
		Summary: "evaluate a model (TFMA-style): metrics overall and per slice, thresholds against a baseline, a blessing gate",
		Description: "Runs the model, and a baseline model when given (--in baseline or a registry pointer in --baseline-pointer), over " +
			"one split of a Dataset through the inference engine, and computes classification metrics (accuracy, precision/recall/F1 " +
			"per class and macro/micro/weighted, exact ROC AUC and average precision, log loss, Brier score, calibration, confusion " +
			"matrix) or regression metrics (MSE, RMSE, MAE, MAPE, R², means), overall and per slice, with Poisson-bootstrap " +
			"confidence intervals when asked. Value thresholds and change thresholds against the baseline, on the same rows, " +
			"decide the Blessing; without a baseline, change thresholds are skipped (the first model is judged on values alone). " +
			"Writes metrics.json, KFP's system.Metrics and system.ClassificationMetrics forms and report.html, then blessing.json; " +
			"exits 3 when not blessed, after both are written. With --in predictions it evaluates recorded predictions instead " +
			"(the label passed through, score_<class> or a prediction column), sliceable by arm and model_id. " +
			"--shard I/N reads a contiguous share of the split's part files (of the examples, or of the predictions) and writes " +
			"that share's state (labels, weights, slice values, each model's answers, dead letters, inference metrics) as partials " +
			"that bless nothing; --merge concatenates them in shard order and writes what one process writes, bootstrap intervals " +
			"included, with the gate (exit 3) applied once, there.",
		Inputs: []step.Port{
			{Name: "model", Type: artifacts.TypeModel, Optional: true, Description: "the candidate model (required unless --in predictions)"},
			{Name: "examples", Type: artifacts.TypeDataset, Optional: true, Description: "the labelled rows the model runs over; the config's split is evaluated"},
			{Name: "baseline", Type: artifacts.TypeModel, Optional: true, Description: "the model to compare with (the one serving now)"},
			{Name: "predictions", Type: artifacts.TypePredictions, Optional: true, Description: "instead of a model and examples: an infer step's predictions with the label passed through (model-agnostic evaluation, e.g. of A/B arms sliced by arm)"},
		},
		Outputs: []step.Port{
			{Name: "evaluation", Type: artifacts.TypeEvaluation, Description: "metrics.json, KFP metric forms and report.html"},
			{Name: "blessing", Type: artifacts.TypeBlessing, Description: "blessing.json: blessed or not, every threshold with its verdict"},
		},
		Params: []step.Param{
			{Name: "config", Type: step.String, Default: "", Description: "the evaluation config (label, split, slices, metrics, thresholds, confidence_intervals): a YAML file's blob URL or local path, or the YAML itself", Example: "examples/penguins/eval.yaml"},
			{Name: "baseline-pointer", Type: step.String, Default: "", Description: "a registry pointer (<registry>/<name>/current) or Model URI whose model is the baseline; nothing there yet means no baseline"},
			{Name: "workers", Type: step.Int, Default: int64(1), Description: "inference batches run concurrently"},
			{Name: "batch-max", Type: step.Int, Default: int64(1024), Description: "rows per inference batch"},
		},
		Run:        run,
		ContentKey: contentKey,
		Shard:      sharding(),
	}
}

// contentKey keys the cache on the config's content and on the model a
// baseline pointer names now, neither being a declared input.
func contentKey(ctx context.Context, r *step.Run) (map[string]string, error) {
	out := map[string]string{}
	data, _, err := readConfig(ctx, r)
	if err != nil {
		return nil, err
	}
	out["config"] = step.ContentDigest(data)
	a, err := pointedBaseline(ctx, r)
	if err != nil {
		return nil, err
	}
	if a != nil {
		out["baseline-pointer"] = a.Digest
	}
	return out, nil
}

// readConfig returns the config's YAML and where it came from: inline
// YAML (a value with a newline or a flow mapping) or a file.
func readConfig(ctx context.Context, r *step.Run) ([]byte, string, error) {
	raw := r.String("config")
	switch {
	case strings.TrimSpace(raw) == "":
		return nil, "", step.Usagef("--config is required: a YAML file (or the YAML itself) naming at least the label")
	case strings.Contains(raw, "\n") || strings.HasPrefix(strings.TrimSpace(raw), "{"):
		return []byte(raw), "--config", nil
	}
	data, err := r.ReadParamFile(ctx, "config")
	return data, raw, err
}

// pointedBaseline opens the model --baseline-pointer names, nil when the
// pointer does not exist yet (nothing pushed) or names the candidate.
func pointedBaseline(ctx context.Context, r *step.Run) (*artifacts.Artifact, error) {
	raw := r.String("baseline-pointer")
	if raw == "" {
		return nil, nil
	}
	if r.Input("baseline") != nil {
		return nil, step.Usagef("give the baseline one way: --in baseline=URI or --baseline-pointer")
	}
	u, err := model.ResolvePointer(ctx, r.Store(), raw)
	if errors.Is(err, artifacts.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, step.BadInput(fmt.Errorf("--baseline-pointer: %w", err))
	}
	// The candidate already pushed (a re-run after deploy) is no baseline
	// to itself: the run then keys and evaluates as before the push.
	if cand := r.Input("model"); cand != nil {
		a, err := r.Store().Open(ctx, u, artifacts.TypeModel)
		if err == nil && a.Digest == cand.Digest {
			return nil, nil
		}
	}
	return r.OpenInput(ctx, "baseline", "baseline-pointer", u.String(), artifacts.TypeModel)
}

// subject names an artifact an evaluation read: the candidate Model (or
// the recorded Predictions) and the baseline Model.
type subject struct {
	URI    string `json:"uri"`
	Digest string `json:"digest"`
}

// state is what an evaluation computes before any metric: the truth and
// every model's answers on this run's rows (a shard's share of the split
// or the whole of it), with what they came from. A shard writes it as its
// partial (see shard.go); the merge concatenates the shards' states in
// shard order into the whole run's, and finish does the rest either way.
type state struct {
	cfg    Config
	config []byte // the config's YAML, as read
	source string
	// classes are a classifier's, in score order; nil for a regressor.
	classes []string
	// model is the candidate Model, or the Predictions when predictions.
	model       subject
	predictions bool
	baseline    *subject
	t           *truth
	cand, base  *answers
}

func run(ctx context.Context, r *step.Run) error {
	start := time.Now()
	if r.Int("workers") < 1 || r.Int("batch-max") < 1 {
		return step.Usagef("--workers and --batch-max must be at least 1")
	}
	data, source, err := readConfig(ctx, r)
	if err != nil {
		return err
	}
	cfg, err := ParseConfig(data, source)
	if err != nil {
		return step.BadInput(err)
	}
	st, err := gather(ctx, r, cfg, data, source)
	if err != nil {
		return err
	}
	if sh, ok := r.Shard(); ok {
		// A shard judges nothing: its share says nothing of the whole.
		return writePartial(ctx, r, st, sh, start)
	}
	return finish(ctx, r, st, start)
}

// gather reads the truth and runs the models (or reads the recorded
// predictions) over this run's share of the config's split.
func gather(ctx context.Context, r *step.Run, cfg Config, data []byte, source string) (*state, error) {
	st := &state{cfg: cfg, config: data, source: source}
	examples, preds := r.Input("examples"), r.Input("predictions")
	if preds != nil {
		if r.Input("model") != nil || examples != nil || r.Input("baseline") != nil || r.String("baseline-pointer") != "" {
			return nil, step.Usagef("--in predictions evaluates recorded predictions: give no model, examples or baseline with it")
		}
		t, a, classes, err := fromPredictions(ctx, r, preds, cfg, source)
		if err != nil {
			return nil, err
		}
		st.t, st.cand, st.classes = t, a, classes
		st.model, st.predictions = subject{URI: preds.Location().String(), Digest: preds.Digest}, true
		return st, nil
	}
	if r.Input("model") == nil || examples == nil {
		return nil, step.Usagef("give --in model=MODEL and --in examples=DATASET, or --in predictions=PREDICTIONS")
	}
	cand, err := model.Open(ctx, r.Input("model"))
	if err != nil {
		return nil, step.BadInput(fmt.Errorf("input model: %w", err))
	}
	st.classes = cand.Meta.Classes
	st.model = subject{URI: cand.Artifact.Location().String(), Digest: cand.Artifact.Digest}
	if err := cfg.checkMetrics(len(st.classes) > 0, st.classes); err != nil {
		return nil, step.BadInput(fmt.Errorf("config %s: %w", source, err))
	}
	baseArt := r.Input("baseline")
	if baseArt == nil {
		if baseArt, err = pointedBaseline(ctx, r); err != nil {
			return nil, err
		}
	}
	var base *model.Model
	if baseArt != nil {
		if base, err = model.Open(ctx, baseArt); err != nil {
			return nil, step.BadInput(fmt.Errorf("baseline model: %w", err))
		}
		if err := sameInterface(cand, base); err != nil {
			return nil, step.BadInput(err)
		}
		st.baseline = &subject{URI: base.Artifact.Location().String(), Digest: base.Artifact.Digest}
	}
	if err := checkExamples(ctx, examples, cfg, source, st.classes != nil, cand, base); err != nil {
		return nil, err
	}
	src, err := planShare(ctx, r, examples, "examples", cfg.Split)
	if err != nil {
		return nil, err
	}
	if err := ort.InitFound(); err != nil {
		return nil, err
	}
	if st.t, err = readTruth(ctx, src, cfg, st.classes); err != nil {
		return nil, err
	}
	opts := inference.Options{MaxBatch: int(r.Int("batch-max")), Workers: int(r.Int("workers")), Logger: r.Logger()}
	if st.cand, err = predict(ctx, src, cand, cfg, st.t.n, opts, model.HandlerOptions{MaxBatch: opts.MaxBatch}); err != nil {
		return nil, err
	}
	if base != nil {
		if st.base, err = predict(ctx, src, base, cfg, st.t.n, opts, model.HandlerOptions{MaxBatch: opts.MaxBatch}); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// finish computes the metrics of the whole split from its state, judges
// them, and writes the Evaluation and the Blessing; not blessed is a gate
// error (exit 3), after both are written.
func finish(ctx context.Context, r *step.Run, st *state, start time.Time) error {
	cfg, source, t, candAns, baseAns := st.cfg, st.source, st.t, st.cand, st.base
	both := []*answers{candAns}
	if baseAns != nil {
		both = append(both, baseAns)
	}
	keep := evaluated(t, both...)
	eo := evaluate.Options{Classes: st.classes, Slices: cfg.Slices, MinSliceSize: cfg.MinSliceSize, CalibrationBins: cfg.CalibrationBins}
	if ci := cfg.ConfidenceIntervals; ci != nil {
		eo.Bootstrap = evaluate.Bootstrap{Samples: ci.Samples, Seed: ci.Seed}
	}
	score := func(a *answers) (*evaluate.Result, error) {
		e, err := evaluate.New(eo)
		if err != nil {
			return nil, step.BadInput(fmt.Errorf("config %s: %w", source, err))
		}
		if len(keep) > 0 {
			if err := e.Add(batch(t, a, keep)); err != nil {
				return nil, fmt.Errorf("model %s: %w", a.id, err)
			}
		}
		return e.Result(ctx)
	}
	candRes, err := score(candAns)
	if err != nil {
		return err
	}
	var baseRes *evaluate.Result
	if baseAns != nil {
		if baseRes, err = score(baseAns); err != nil {
			return err
		}
	}
	verdict, skipped, err := judge(cfg, candRes, baseRes, candAns, baseAns)
	if err != nil {
		return step.BadInput(fmt.Errorf("config %s: %w", source, err))
	}
	for _, w := range candRes.Warnings {
		r.Logger().Warn("model "+candAns.id, "warning", w)
	}

	doc := metricsDoc(st, keep, candRes, baseRes)
	evalOut, err := r.Output(ctx, "evaluation")
	if err != nil {
		return err
	}
	if err := writeEvaluation(ctx, evalOut, cfg, doc, candRes, verdict); err != nil {
		return err
	}
	b := blessing.Blessing{Blessed: verdict.Passed, ModelID: candAns.id, Evaluation: evalOut.URI().String(), Checks: verdict.Checks}
	if st.predictions {
		b.Predictions = st.model.URI
	} else {
		b.Model, b.ModelDigest = st.model.URI, st.model.Digest
	}
	if st.baseline != nil {
		b.Baseline, b.BaselineDigest = st.baseline.URI, st.baseline.Digest
	}
	if err := verdict.Err(); err != nil {
		b.Reason = err.Error()
	}
	blessOut, err := r.Output(ctx, "blessing")
	if err != nil {
		return err
	}
	if err := blessing.Write(ctx, blessOut, b); err != nil {
		return err
	}
	overall := candRes.Overall()
	r.Logger().Info("evaluated", "model", candAns.id, "rows", len(keep), "of", t.n, "took", time.Since(start).Round(time.Millisecond).String(),
		"blessed", verdict.Passed, "headline", headline(overall.Scalars(), cfg), "change_thresholds_skipped", skipped)
	if !verdict.Passed {
		return &step.GateError{Gate: "blessing", Reason: b.Reason}
	}
	return nil
}

// sameInterface refuses a baseline that cannot be compared with the
// candidate on the same rows, naming what differs.
func sameInterface(cand, base *model.Model) error {
	if !slices.Equal(cand.Meta.Classes, base.Meta.Classes) {
		return fmt.Errorf("baseline model %s: classes [%s] differ from the model's [%s]; change thresholds compare like with like",
			base.ID(), strings.Join(base.Meta.Classes, ", "), strings.Join(cand.Meta.Classes, ", "))
	}
	ci, bi := cand.Sig.Inputs, base.Sig.Inputs
	for _, in := range ci {
		j := slices.IndexFunc(bi, func(t model.Tensor) bool { return t.Name == in.Name })
		if j < 0 {
			return fmt.Errorf("baseline model %s: signature has no input %q (it has %s)", base.ID(), in.Name, tensorNames(bi))
		}
		if bi[j].Type != in.Type || fmt.Sprint(bi[j].Shape) != fmt.Sprint(in.Shape) {
			return fmt.Errorf("baseline model %s: signature input %q is %s%v, the model's is %s%v",
				base.ID(), in.Name, bi[j].Type, bi[j].Shape, in.Type, in.Shape)
		}
	}
	if len(bi) != len(ci) {
		return fmt.Errorf("baseline model %s: signature has inputs %s, the model's are %s", base.ID(), tensorNames(bi), tensorNames(ci))
	}
	if !slices.Equal(cand.Columns(), base.Columns()) {
		return fmt.Errorf("baseline model %s: features read columns [%s], the model's read [%s]",
			base.ID(), strings.Join(base.Columns(), ", "), strings.Join(cand.Columns(), ", "))
	}
	return nil
}

func tensorNames(ts []model.Tensor) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = fmt.Sprintf("%q", t.Name)
	}
	return "[" + strings.Join(names, ", ") + "]"
}

// judge checks every threshold: the config's on the whole dataset and per
// named slice, plus the dead-letter bound. Without a baseline, change
// thresholds are kept as passing checks saying they were skipped.
func judge(cfg Config, cand, base *evaluate.Result, candAns, baseAns *answers) (evaluate.Verdict, int, error) {
	v := evaluate.Verdict{Passed: true}
	skipped := 0
	apply := func(key string, ts map[string]evaluate.Threshold) error {
		if base == nil {
			values := map[string]evaluate.Threshold{}
			for _, name := range sortedNames(ts) {
				t := ts[name]
				if t.Change != nil {
					skipped++
					v.Checks = append(v.Checks, evaluate.Check{Slice: key, Metric: name, Kind: "change", Passed: true,
						Value:   evaluate.Number(cand.Slice(key).Scalars()[name]),
						Message: fmt.Sprintf("%s %s: change threshold skipped, no baseline model", key, name)})
					t.Change = nil
				}
				if t.LowerBound != nil || t.UpperBound != nil {
					values[name] = t
				}
			}
			ts = values
		}
		if cand.Slice(key) == nil {
			return fmt.Errorf("slice_thresholds.%s: no such slice (slices: %s)", key, sliceKeys(cand))
		}
		if s := cand.Slice(key); s.TooSmall {
			return fmt.Errorf("slice_thresholds.%s: the slice has %d rows, below min_slice_size %d, so its metrics are not computed", key, s.ExampleCount, cfg.MinSliceSize)
		}
		got, err := evaluate.CheckSliceThresholds(key, cand, base, ts)
		if err != nil {
			return err
		}
		v.Checks = append(v.Checks, got.Checks...)
		v.Passed = v.Passed && got.Passed
		return nil
	}
	if err := apply(evaluate.OverallKey, cfg.Thresholds); err != nil {
		return v, 0, err
	}
	for _, key := range sortedNames(cfg.SliceThresholds) {
		if err := apply(key, cfg.SliceThresholds[key]); err != nil {
			return v, 0, err
		}
	}
	for _, a := range []*answers{candAns, baseAns} {
		if a == nil {
			continue
		}
		f := a.deadFraction()
		ok := f <= cfg.MaxDeadLetterFraction
		msg := fmt.Sprintf("model %s failed on %d of %d rows (%.4g), within max_dead_letter_fraction %g", a.id, a.dead, len(a.ok), f, cfg.MaxDeadLetterFraction)
		if !ok {
			msg = fmt.Sprintf("model %s failed on %d of %d rows (%.4g), above max_dead_letter_fraction %g: %s", a.id, a.dead, len(a.ok), f, cfg.MaxDeadLetterFraction, reasons(a.reasons))
		}
		if a == baseAns {
			ok = true // a failing baseline does not veto the candidate; its rows are left out of both
		}
		v.Checks = append(v.Checks, evaluate.Check{Slice: evaluate.OverallKey, Metric: "dead_letter_fraction/" + a.id, Kind: "upper_bound",
			Bound: cfg.MaxDeadLetterFraction, Value: evaluate.Number(f), Passed: ok, Message: msg})
		v.Passed = v.Passed && ok
	}
	return v, skipped, nil
}

func reasons(m map[string]int) string {
	var parts []string
	for _, k := range sortedNames(m) {
		parts = append(parts, fmt.Sprintf("%d× %s", m[k], k))
	}
	return strings.Join(parts, "; ")
}

func sliceKeys(r *evaluate.Result) string {
	keys := make([]string, len(r.Slices))
	for i, s := range r.Slices {
		keys[i] = fmt.Sprintf("%q", s.Key)
	}
	return strings.Join(keys, ", ")
}

// headline picks the reported scalars worth a log line.
func headline(s map[string]float64, cfg Config) map[string]float64 {
	out := map[string]float64{}
	for _, k := range append(slices.Clone(classificationScalars), regressionScalars...) {
		if v, ok := s[k]; ok && cfg.reported(k) {
			out[k] = v
		}
	}
	return out
}
