package evaluate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mlsteps/mlsteps/components/evaluate"
)

// Config is what an evaluation computes and gates on, as eval.yaml says it
// (TFMA's EvalConfig, flattened).
type Config struct {
	// Label names the label column: class names (strings, or integers as
	// text) for a classifier, numbers for a regressor.
	Label string `yaml:"label"`
	// Split is the Dataset split evaluated; default "eval".
	Split string `yaml:"split"`
	// Prediction names a regressor's output column; default its only one.
	Prediction string `yaml:"prediction"`
	// ExampleWeight names a column of example weights; empty weighs 1.
	ExampleWeight string `yaml:"example_weight"`
	// Slices lists slicings: [] is the whole dataset, [island] one slice
	// per island.
	Slices       [][]string `yaml:"slices"`
	MinSliceSize int        `yaml:"min_slice_size"`
	// Metrics lists what is reported and may be gated on; empty: all.
	Metrics []string `yaml:"metrics"`
	// Thresholds gate the whole dataset by metric; SliceThresholds gate
	// named slices ("island=Biscoe").
	Thresholds      map[string]evaluate.Threshold            `yaml:"thresholds"`
	SliceThresholds map[string]map[string]evaluate.Threshold `yaml:"slice_thresholds"`
	// MaxDeadLetterFraction is the share of rows a model may fail on
	// (they are left out of the metrics) before it is not blessed.
	MaxDeadLetterFraction float64 `yaml:"max_dead_letter_fraction"`
	// CalibrationBins defaults to 10.
	CalibrationBins     int                  `yaml:"calibration_bins"`
	ConfidenceIntervals *ConfidenceIntervals `yaml:"confidence_intervals"`
}

// ConfidenceIntervals asks for bootstrap intervals of every metric.
type ConfidenceIntervals struct {
	Method  string `yaml:"method"`
	Samples int    `yaml:"samples"`
	Seed    uint64 `yaml:"seed"`
}

// families are the metric names a config may list beyond the scalars:
// each stands for the scalars (or sections) it expands to.
var families = map[string][]string{
	"precision":         {"macro_precision", "micro_precision", "weighted_precision", "precision/"},
	"recall":            {"macro_recall", "micro_recall", "weighted_recall", "recall/"},
	"f1":                {"macro_f1", "micro_f1", "weighted_f1", "f1/"},
	"auc":               {"auc", "auc/"},
	"auc_pr":            {"average_precision", "average_precision/"},
	"average_precision": {"average_precision", "average_precision/"},
	"brier":             {"brier_score"},
	"confusion_matrix":  nil,
	"roc_curve":         nil,
}

var classificationScalars = []string{"accuracy", "macro_precision", "micro_precision", "weighted_precision",
	"macro_recall", "micro_recall", "weighted_recall", "macro_f1", "micro_f1", "weighted_f1",
	"auc", "average_precision", "log_loss", "brier_score", "calibration"}

var regressionScalars = []string{"mse", "rmse", "mae", "mape", "r2", "mean_label", "mean_prediction"}

// ParseConfig reads eval.yaml strictly: an unknown key is an error naming
// it, as is a missing label or a bad value.
func ParseConfig(data []byte, source string) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config %s: %w", source, err)
	}
	if strings.TrimSpace(c.Label) == "" {
		return c, fmt.Errorf("config %s: label: the label column is required", source)
	}
	if c.Split == "" {
		c.Split = "eval"
	}
	if c.MinSliceSize < 0 {
		return c, fmt.Errorf("config %s: min_slice_size: %d is negative", source, c.MinSliceSize)
	}
	if c.MaxDeadLetterFraction < 0 || c.MaxDeadLetterFraction > 1 {
		return c, fmt.Errorf("config %s: max_dead_letter_fraction: %v is not within [0, 1]", source, c.MaxDeadLetterFraction)
	}
	if c.CalibrationBins < 0 {
		return c, fmt.Errorf("config %s: calibration_bins: %d is negative", source, c.CalibrationBins)
	}
	for i, s := range c.Slices {
		for _, f := range s {
			if strings.TrimSpace(f) == "" {
				return c, fmt.Errorf("config %s: slices[%d]: an empty feature name", source, i)
			}
		}
	}
	sets := c.thresholdSets()
	for _, where := range sortedNames(sets) {
		ts := sets[where]
		for _, name := range sortedNames(ts) {
			t := ts[name]
			if t.LowerBound == nil && t.UpperBound == nil && t.Change == nil {
				return c, fmt.Errorf("config %s: %s.%s: no lower_bound, upper_bound or change", source, where, name)
			}
			if ch := t.Change; ch != nil {
				if ch.Direction != evaluate.HigherIsBetter && ch.Direction != evaluate.LowerIsBetter {
					return c, fmt.Errorf("config %s: %s.%s.change.direction: %q is neither %s nor %s", source, where, name, ch.Direction, evaluate.HigherIsBetter, evaluate.LowerIsBetter)
				}
				if ch.Absolute == nil && ch.Relative == nil {
					return c, fmt.Errorf("config %s: %s.%s.change: no absolute or relative bound", source, where, name)
				}
			}
		}
	}
	if ci := c.ConfidenceIntervals; ci != nil {
		if ci.Method != "" && ci.Method != "poisson_bootstrap" {
			return c, fmt.Errorf("config %s: confidence_intervals.method: %q is not poisson_bootstrap", source, ci.Method)
		}
		if ci.Samples < 2 {
			return c, fmt.Errorf("config %s: confidence_intervals.samples: %d, want at least 2", source, ci.Samples)
		}
	}
	return c, nil
}

// features lists every column the slices cut by, in first-use order.
func (c Config) features() []string {
	var out []string
	for _, s := range c.Slices {
		for _, f := range s {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// reported says whether a scalar metric (as SliceResult.Scalars names it)
// is one the config lists; an empty list reports everything.
func (c Config) reported(scalar string) bool {
	if len(c.Metrics) == 0 || scalar == "example_count" || scalar == "weighted_example_count" {
		return true
	}
	for _, m := range c.Metrics {
		if m == scalar {
			return true
		}
		for _, e := range families[m] {
			if e == scalar || strings.HasSuffix(e, "/") && strings.HasPrefix(scalar, e) {
				return true
			}
		}
	}
	return false
}

// wants says whether a non-scalar section (confusion_matrix, roc_curve,
// calibration) is listed.
func (c Config) wants(section string) bool {
	return len(c.Metrics) == 0 || slices.Contains(c.Metrics, section)
}

// checkMetrics refuses metric names that do not exist for the task and
// thresholds on metrics not listed, naming them.
func (c Config) checkMetrics(classifier bool, classes []string) error {
	known := regressionScalars
	if classifier {
		known = slices.Clone(classificationScalars)
		for _, cl := range classes {
			for _, p := range []string{"precision/", "recall/", "f1/", "auc/", "average_precision/"} {
				known = append(known, p+cl)
			}
		}
	}
	task := map[bool]string{true: "a classifier", false: "a regressor"}[classifier]
	for i, m := range c.Metrics {
		if slices.Contains(known, m) {
			continue
		}
		if _, ok := families[m]; ok && classifier {
			continue
		}
		return fmt.Errorf("metrics[%d]: %q is not a metric of %s (known: %s)", i, m, task, strings.Join(known, ", "))
	}
	check := func(where string, ts map[string]evaluate.Threshold) error {
		for _, name := range sortedNames(ts) {
			if name == "example_count" || name == "weighted_example_count" {
				continue
			}
			if !slices.Contains(known, name) {
				return fmt.Errorf("%s.%s: %q is not a metric of %s (known: %s)", where, name, name, task, strings.Join(known, ", "))
			}
			if !c.reported(name) {
				return fmt.Errorf("%s.%s: the threshold names a metric not computed: add it to metrics (%s)", where, name, strings.Join(c.Metrics, ", "))
			}
		}
		return nil
	}
	if err := check("thresholds", c.Thresholds); err != nil {
		return err
	}
	for _, key := range sortedNames(c.SliceThresholds) {
		if err := check("slice_thresholds."+key, c.SliceThresholds[key]); err != nil {
			return err
		}
	}
	return nil
}

// thresholdSets returns every threshold map by where the config holds it.
func (c Config) thresholdSets() map[string]map[string]evaluate.Threshold {
	out := map[string]map[string]evaluate.Threshold{"thresholds": c.Thresholds}
	for key, ts := range c.SliceThresholds {
		out["slice_thresholds."+key] = ts
	}
	return out
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
