package evaluate

import "math"

// RegressionMetrics are the metrics of a regressor on one slice, weighted
// by the example weights, with scikit-learn's definitions.
type RegressionMetrics struct {
	MSE  Number `json:"mse"`
	RMSE Number `json:"rmse"`
	MAE  Number `json:"mae"`
	// MAPE is mean_absolute_percentage_error: the mean of |y−ŷ|/max(|y|, ε)
	// with ε float64's machine epsilon, as a fraction (not percent).
	MAPE Number `json:"mape"`
	// R2 is r2_score: 1 − SS_res/SS_tot, and when the labels are constant 1
	// for a perfect fit and 0 otherwise.
	R2             Number `json:"r2"`
	MeanLabel      Number `json:"mean_label"`
	MeanPrediction Number `json:"mean_prediction"`
}

func regression(d *rows, idx []int32, w []float64) *RegressionMetrics {
	var total, se, ae, ape, sy, sp float64
	for i, r := range idx {
		wi := w[i]
		if wi == 0 {
			continue
		}
		y, p := d.targets[r], d.predictions[r]
		e := y - p
		total += wi
		se += wi * e * e
		ae += wi * math.Abs(e)
		ape += wi * math.Abs(e) / max(math.Abs(y), probEps)
		sy += wi * y
		sp += wi * p
	}
	meanY := sy / total
	var tot float64
	for i, r := range idx {
		if w[i] != 0 {
			e := d.targets[r] - meanY
			tot += w[i] * e * e
		}
	}
	r2 := 1 - se/tot
	if tot == 0 {
		r2 = 0
		if se == 0 {
			r2 = 1
		}
	}
	mse := se / total
	return &RegressionMetrics{MSE: Number(mse), RMSE: Number(math.Sqrt(mse)), MAE: Number(ae / total), MAPE: Number(ape / total),
		R2: Number(r2), MeanLabel: Number(meanY), MeanPrediction: Number(sp / total)}
}
