package evaluate

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/evaluate"
	"github.com/mlsteps/mlsteps/components/report"
)

// Metrics is metrics.json: what was evaluated, on which rows, and each
// slice's reported metrics beside the baseline's and the differences; the
// full detail (per-class metrics, confusion matrices, curves, calibration
// bins, intervals) follows in Candidate and Baseline.
type Metrics struct {
	// Model is the evaluated model; with recorded predictions its URI is
	// the Predictions artifact's and its id the model ids they hold.
	Model    ModelRef  `json:"model"`
	Baseline *ModelRef `json:"baseline,omitempty"`
	Task     string    `json:"task"`
	Label    string    `json:"label"`
	Split    string    `json:"split"`
	Rows     Rows      `json:"rows"`
	// Slices are the headline metrics by slice, in the detail's order.
	Slices    []SliceMetrics   `json:"slices"`
	Candidate *evaluate.Result `json:"candidate"`
	BaselineR *evaluate.Result `json:"baseline_result,omitempty"`
	Warnings  []string         `json:"warnings,omitempty"`
}

// ModelRef names an evaluated model.
type ModelRef struct {
	URI    string `json:"uri"`
	ID     string `json:"id"`
	Digest string `json:"digest"`
	// InferenceMetrics are the engine's metrics (Beam's names) for the run.
	InferenceMetrics map[string]float64 `json:"inference_metrics,omitempty"`
	DeadLetters      int                `json:"dead_letters"`
	DeadReasons      map[string]int     `json:"dead_letter_reasons,omitempty"`
}

// Rows counts the split's rows and those evaluated: labelled and answered
// by every model.
type Rows struct {
	Total      int `json:"total"`
	Evaluated  int `json:"evaluated"`
	NullLabels int `json:"null_labels"`
}

// SliceMetrics is one slice's headline scalars.
type SliceMetrics struct {
	Key          string                     `json:"key"`
	Slice        []evaluate.FeatureValue    `json:"slice"`
	ExampleCount int64                      `json:"example_count"`
	TooSmall     bool                       `json:"too_small,omitempty"`
	Metrics      map[string]evaluate.Number `json:"metrics"`
	// ConfidenceIntervals of the reported metrics, when asked for.
	ConfidenceIntervals map[string]evaluate.Interval `json:"confidence_intervals,omitempty"`
	Baseline            map[string]evaluate.Number   `json:"baseline,omitempty"`
	// Diff is candidate − baseline, metric by metric.
	Diff map[string]evaluate.Number `json:"diff,omitempty"`
}

func metricsDoc(st *state, keep []int, cr, br *evaluate.Result) Metrics {
	cfg, t, ca, ba := st.cfg, st.t, st.cand, st.base
	ref := func(s subject, a *answers) *ModelRef {
		r := &ModelRef{URI: s.URI, ID: a.id, Digest: s.Digest, InferenceMetrics: a.metrics, DeadLetters: a.dead}
		if len(a.reasons) > 0 {
			r.DeadReasons = a.reasons
		}
		return r
	}
	doc := Metrics{Model: *ref(st.model, ca), Task: cr.Task, Label: cfg.Label, Split: cfg.Split,
		Rows: Rows{Total: t.n, Evaluated: len(keep), NullLabels: t.nullLabels}, Candidate: cr, BaselineR: br, Warnings: cr.Warnings}
	if st.baseline != nil {
		doc.Baseline = ref(*st.baseline, ba)
	}
	if t.nullLabels > 0 {
		doc.Warnings = append(doc.Warnings, fmt.Sprintf("%d rows have no %q label and were not evaluated", t.nullLabels, cfg.Label))
	}
	for _, s := range cr.Slices {
		sm := SliceMetrics{Key: s.Key, Slice: s.Slice, ExampleCount: s.ExampleCount, TooSmall: s.TooSmall, Metrics: reportedScalars(cfg, &s)}
		if sm.Slice == nil {
			sm.Slice = []evaluate.FeatureValue{}
		}
		for k, iv := range s.Intervals {
			if cfg.reported(k) {
				if sm.ConfidenceIntervals == nil {
					sm.ConfidenceIntervals = map[string]evaluate.Interval{}
				}
				sm.ConfidenceIntervals[k] = iv
			}
		}
		if br != nil {
			if bs := br.Slice(s.Key); bs != nil {
				sm.Baseline = reportedScalars(cfg, bs)
				sm.Diff = map[string]evaluate.Number{}
				for k, v := range sm.Metrics {
					if b, ok := sm.Baseline[k]; ok && k != "example_count" && k != "weighted_example_count" {
						sm.Diff[k] = v - b
					}
				}
			}
		}
		doc.Slices = append(doc.Slices, sm)
	}
	return doc
}

func reportedScalars(cfg Config, s *evaluate.SliceResult) map[string]evaluate.Number {
	out := map[string]evaluate.Number{}
	for k, v := range s.Scalars() {
		if cfg.reported(k) {
			out[k] = evaluate.Number(v)
		}
	}
	return out
}

// kfpMetrics is system.Metrics' metadata: the overall headline scalars by
// name (finite ones; KFP's UI shows numbers only).
func kfpMetrics(doc Metrics) map[string]float64 {
	out := map[string]float64{}
	for k, v := range doc.Slices[0].Metrics {
		if f := float64(v); !math.IsNaN(f) && !math.IsInf(f, 0) {
			out[k] = f
		}
	}
	return out
}

// kfpClassification is system.ClassificationMetrics' metadata, as KFP's
// SDK writes it: the confusion matrix with its class names and the ROC
// curve's points as confidenceMetrics.
type kfpClassification struct {
	ConfusionMatrix   *kfpConfusion   `json:"confusionMatrix,omitempty"`
	ConfidenceMetrics []kfpConfidence `json:"confidenceMetrics,omitempty"`
}

type kfpConfusion struct {
	AnnotationSpecs []kfpAnnotation `json:"annotationSpecs"`
	Rows            []kfpRow        `json:"rows"`
}

type kfpAnnotation struct {
	DisplayName string `json:"displayName"`
}

type kfpRow struct {
	Row []float64 `json:"row"`
}

type kfpConfidence struct {
	ConfidenceThreshold float64 `json:"confidenceThreshold"`
	Recall              float64 `json:"recall"`
	FalsePositiveRate   float64 `json:"falsePositiveRate"`
}

func kfpClassificationOf(cfg Config, overall *evaluate.SliceResult) *kfpClassification {
	c := overall.Classification
	if c == nil {
		return nil
	}
	out := &kfpClassification{}
	if cfg.wants("confusion_matrix") {
		cm := &kfpConfusion{}
		for i, name := range c.Classes {
			cm.AnnotationSpecs = append(cm.AnnotationSpecs, kfpAnnotation{DisplayName: name})
			row := make([]float64, len(c.ConfusionMatrix[i]))
			for j, v := range c.ConfusionMatrix[i] {
				row[j] = float64(v)
			}
			cm.Rows = append(cm.Rows, kfpRow{Row: row})
		}
		out.ConfusionMatrix = cm
	}
	if cfg.wants("roc_curve") || cfg.wants("auc") {
		for _, p := range c.ROC {
			// KFP's UI reads thresholds within [0, 1]; the point above every
			// score is the curve's origin.
			out.ConfidenceMetrics = append(out.ConfidenceMetrics, kfpConfidence{ConfidenceThreshold: min(p.Threshold, 1), Recall: p.TPR, FalsePositiveRate: p.FPR})
		}
	}
	return out
}

// writeEvaluation writes metrics.json, the KFP forms and report.html, and
// puts the overall headline scalars in the artifact's properties (what
// KFP's launcher shows as system.Metrics).
func writeEvaluation(ctx context.Context, w *artifacts.Writer, cfg Config, doc Metrics, res *evaluate.Result, verdict evaluate.Verdict) error {
	if err := w.WriteJSON(ctx, FileMetrics, doc); err != nil {
		return err
	}
	scalars := kfpMetrics(doc)
	if err := w.WriteJSON(ctx, FileKFPMetrics, scalars); err != nil {
		return err
	}
	if kc := kfpClassificationOf(cfg, res.Overall()); kc != nil {
		if err := w.WriteJSON(ctx, FileKFPClassific, kc); err != nil {
			return err
		}
	}
	for _, k := range sortedNames(scalars) {
		if !slices.Contains(classificationScalars, k) && !slices.Contains(regressionScalars, k) && k != "example_count" {
			continue // per-class scalars stay in metrics.json
		}
		w.SetProperty(k, scalars[k])
	}
	w.SetProperty("task", doc.Task)
	w.SetProperty("model_id", doc.Model.ID)
	w.SetProperty("rows_evaluated", int64(doc.Rows.Evaluated))
	page := report.EvaluationPage{Title: "Evaluation of " + doc.Model.ID, Model: doc.Model.ID, Split: doc.Split, Label: doc.Label,
		Result: res, Baseline: doc.BaselineR, Checks: verdict.Checks, Blessed: verdict.Passed, Warnings: doc.Warnings,
		Reported: cfg.reported, Rows: doc.Rows.Evaluated, TotalRows: doc.Rows.Total}
	if doc.Baseline != nil {
		page.BaselineModel = doc.Baseline.ID
	}
	html, err := report.EvaluationHTML(page)
	if err != nil {
		return err
	}
	return w.WriteFile(ctx, FileReport, html)
}
