package evaluate

import (
	"math"
	"slices"
)

// OverallKey is the key of the slice holding every row.
const OverallKey = "Overall"

// Result is an evaluation: every slice's metrics, the whole dataset first,
// then each slicing in Options order with its slices sorted by value. It
// marshals to JSON as metrics.json is written (NaN as null).
type Result struct {
	// Task is "classification" or "regression".
	Task   string        `json:"task"`
	Slices []SliceResult `json:"slices"`
	// Warnings describe doubtful input that did not stop the evaluation,
	// such as probabilities not summing to 1, naming the rows (counted
	// from 0 across every batch added and merged).
	Warnings []string `json:"warnings,omitempty"`
}

// SliceResult is one slice's metrics.
type SliceResult struct {
	// Slice is the feature values defining the slice, empty for the whole
	// dataset.
	Slice []FeatureValue `json:"slice"`
	// Key is the slice as text: "Overall", "island=Biscoe" or
	// "island=Biscoe, sex=FEMALE".
	Key                  string `json:"key"`
	ExampleCount         int64  `json:"example_count"`
	WeightedExampleCount Number `json:"weighted_example_count"`
	// TooSmall marks a slice with fewer than Options.MinSliceSize rows,
	// whose metrics were not computed. A slice whose weights sum to 0 has
	// no metrics either, as there is nothing to average.
	TooSmall       bool                   `json:"too_small,omitempty"`
	Classification *ClassificationMetrics `json:"classification,omitempty"`
	Regression     *RegressionMetrics     `json:"regression,omitempty"`
	// Intervals holds bootstrap confidence intervals by scalar metric name
	// (see Scalars; every one but the counts), when asked for.
	Intervals map[string]Interval `json:"confidence_intervals,omitempty"`
}

// FeatureValue is one feature's value in a slice key.
type FeatureValue struct {
	Feature string `json:"feature"`
	Value   string `json:"value"`
}

// Interval is a bootstrap confidence interval of one metric.
type Interval struct {
	// Lower and Upper are the 2.5th and 97.5th percentiles of the samples'
	// values (numpy's linear interpolation).
	Lower Number `json:"lower"`
	Upper Number `json:"upper"`
	// StandardError is the samples' standard deviation (ddof 1).
	StandardError Number `json:"standard_error"`
	// Samples is how many samples defined the metric (resamples where it
	// was NaN, such as AUC over one class, are left out).
	Samples int `json:"samples"`
}

// Overall returns the slice of every row.
func (r *Result) Overall() *SliceResult { return r.Slice(OverallKey) }

// Slice returns the slice with key, or nil.
func (r *Result) Slice(key string) *SliceResult {
	for i := range r.Slices {
		if r.Slices[i].Key == key {
			return &r.Slices[i]
		}
	}
	return nil
}

// Scalars returns the slice's single-number metrics by name, the names
// thresholds and intervals use: example_count, weighted_example_count;
// for a classifier accuracy, {macro,micro,weighted}_{precision,recall,f1},
// precision/<class>, recall/<class>, f1/<class>, auc/<class>,
// average_precision/<class>, log_loss, brier_score, auc,
// average_precision and calibration (the expected calibration error); for
// a regressor mse, rmse, mae, mape, r2, mean_label and mean_prediction.
// A slice too small to compute has only the counts.
func (s *SliceResult) Scalars() map[string]float64 {
	m := map[string]float64{"example_count": float64(s.ExampleCount), "weighted_example_count": float64(s.WeightedExampleCount)}
	if c := s.Classification; c != nil {
		m["accuracy"] = float64(c.Accuracy)
		for prefix, a := range map[string]Averages{"macro_": c.Macro, "micro_": c.Micro, "weighted_": c.Weighted} {
			m[prefix+"precision"], m[prefix+"recall"], m[prefix+"f1"] = float64(a.Precision), float64(a.Recall), float64(a.F1)
		}
		for _, pc := range c.PerClass {
			m["precision/"+pc.Class], m["recall/"+pc.Class], m["f1/"+pc.Class] = float64(pc.Precision), float64(pc.Recall), float64(pc.F1)
			m["auc/"+pc.Class], m["average_precision/"+pc.Class] = float64(pc.AUC), float64(pc.AveragePrecision)
		}
		m["log_loss"], m["brier_score"] = float64(c.LogLoss), float64(c.Brier)
		m["auc"], m["average_precision"] = float64(c.AUC), float64(c.AveragePrecision)
		m["calibration"] = float64(c.Calibration.ECE)
	}
	if r := s.Regression; r != nil {
		for name, v := range map[string]Number{"mse": r.MSE, "rmse": r.RMSE, "mae": r.MAE, "mape": r.MAPE, "r2": r.R2,
			"mean_label": r.MeanLabel, "mean_prediction": r.MeanPrediction} {
			m[name] = float64(v)
		}
	}
	return m
}

// interval summarises bootstrap values (it sorts v).
func interval(v []float64) Interval {
	slices.Sort(v)
	n := len(v)
	if n == 0 {
		nan := Number(math.NaN())
		return Interval{nan, nan, nan, 0}
	}
	var mean, ss float64
	for _, x := range v {
		mean += x
	}
	mean /= float64(n)
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	se := math.NaN()
	if n > 1 {
		se = math.Sqrt(ss / float64(n-1))
	}
	return Interval{Lower: Number(percentile(v, 2.5)), Upper: Number(percentile(v, 97.5)), StandardError: Number(se), Samples: n}
}

// percentile of sorted v, interpolating linearly between ranks as
// numpy.percentile does by default.
func percentile(v []float64, q float64) float64 {
	pos := q / 100 * float64(len(v)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(v)-1)
	return v[lo] + (pos-float64(lo))*(v[hi]-v[lo])
}

// poissonWeights fills w with Poisson(1) draws, w[i] a function of seed,
// sample and i only.
func poissonWeights(w []float64, seed, sample uint64) {
	key := mix(seed ^ mix(sample+0x632be59bd9b4e019))
	for i := range w {
		u := float64(mix(key+uint64(i))>>11) * 0x1p-53
		// Inverse CDF of Poisson(1): P(k) = e⁻¹/k!.
		k, p := 0, math.Exp(-1)
		for f := p; u > f && k < 20; f += p {
			k++
			p /= float64(k)
		}
		w[i] = float64(k)
	}
}

// mix is splitmix64's finaliser: a bijective hash of x.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
