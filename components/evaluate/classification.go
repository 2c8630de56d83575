package evaluate

import (
	"math"
	"slices"
)

// ClassificationMetrics are the metrics of a classifier on one slice.
// Sums are weighted by the example weights (1 when none are given).
type ClassificationMetrics struct {
	Classes  []string `json:"classes"`
	Accuracy Number   `json:"accuracy"`
	// PerClass is in the order of Classes.
	PerClass []ClassMetrics `json:"per_class"`
	Macro    Averages       `json:"macro"`
	Micro    Averages       `json:"micro"`
	Weighted Averages       `json:"weighted"`
	// ConfusionMatrix[i][j] is the weight of rows labelled Classes[i] and
	// predicted Classes[j] (scikit-learn's layout, and KFP's).
	ConfusionMatrix [][]Number `json:"confusion_matrix"`
	LogLoss         Number     `json:"log_loss"`
	// Brier is scikit-learn's brier_score_loss for two classes (the squared
	// error of the second class's probability) and the multi-class Brier
	// score, the mean over rows of Σ_k (p_k − 1[y=k])², for more.
	Brier Number `json:"brier_score"`
	// AUC is the area under the ROC curve of the second class for two
	// classes, and the unweighted mean of the one-vs-rest AUCs for more
	// (roc_auc_score(multi_class="ovr", average="macro")). Exact: computed
	// from every (score, label, weight) sorted, ties as one threshold.
	AUC Number `json:"auc"`
	// AveragePrecision is scikit-learn's average_precision_score (area
	// under the precision-recall curve as Σ (R_n − R_{n−1}) P_n, not
	// interpolated): of the second class for two classes, the macro mean of
	// the one-vs-rest values for more.
	AveragePrecision Number      `json:"average_precision"`
	Calibration      Calibration `json:"calibration"`
	// ROC is the ROC curve of the second class (two classes) or of the
	// first class against the rest (more), thinned to at most
	// Options.CurvePoints points, for plots and KFP's
	// system.ClassificationMetrics confidenceMetrics.
	ROC []ROCPoint `json:"roc_curve"`
}

// ClassMetrics are one class's one-vs-rest metrics.
type ClassMetrics struct {
	Class     string `json:"class"`
	Precision Number `json:"precision"`
	Recall    Number `json:"recall"`
	F1        Number `json:"f1"`
	// Support is the weight of rows labelled with the class.
	Support          Number `json:"support"`
	AUC              Number `json:"auc"`
	AveragePrecision Number `json:"average_precision"`
}

// Averages are precision, recall and F1 averaged over classes.
type Averages struct {
	Precision Number `json:"precision"`
	Recall    Number `json:"recall"`
	F1        Number `json:"f1"`
}

// Calibration is a reliability diagram over equal-width probability bins.
// For two classes it bins the second class's probability against the
// fraction of rows of that class (scikit-learn's calibration_curve with
// strategy="uniform"); for more it bins each row's top probability against
// whether the top class was right (top-label calibration).
type Calibration struct {
	// ECE is the expected calibration error, Σ_b (W_b/W)·|MeanPredicted_b −
	// FractionPositive_b| over the bins.
	ECE  Number           `json:"expected_calibration_error"`
	Bins []CalibrationBin `json:"bins"`
}

// CalibrationBin is one bin (Lower, Upper]; the first also holds 0.
type CalibrationBin struct {
	Lower  float64 `json:"lower"`
	Upper  float64 `json:"upper"`
	Weight Number  `json:"weight"`
	// MeanPredicted and FractionPositive are NaN for an empty bin.
	MeanPredicted    Number `json:"mean_predicted"`
	FractionPositive Number `json:"fraction_positive"`
}

// ROCPoint is one threshold of a ROC curve: rows scoring at least
// Threshold are predicted positive.
type ROCPoint struct {
	Threshold float64 `json:"threshold"`
	FPR       float64 `json:"false_positive_rate"`
	TPR       float64 `json:"true_positive_rate"`
	// Precision at the threshold, 1 above every score (scikit-learn's
	// precision_recall_curve end point): with TPR as the recall, the
	// points are also the precision-recall curve.
	Precision float64 `json:"precision"`
}

// probEps is the clip of log loss, float64's machine epsilon, as
// scikit-learn's log_loss(eps="auto").
const probEps = 0x1p-52

// classification computes the metrics of rows idx of d, row idx[i] having
// weight w[i].
func classification(d *rows, classes []string, idx []int32, w []float64, o *Options, curves bool) *ClassificationMetrics {
	k := len(classes)
	m := &ClassificationMetrics{Classes: classes}
	cm := make([]float64, k*k)
	var total, logLoss, brier float64
	for i, r := range idx {
		wi := w[i]
		if wi == 0 {
			continue
		}
		y, p := int(d.labels[r]), int(d.predicted[r])
		cm[y*k+p] += wi
		total += wi
		s := d.scores[int(r)*k : int(r)*k+k]
		// As scikit-learn: clip every probability, then renormalise the
		// row, so float32 scores summing to 1±1e-7 lose nothing.
		var clipped float64
		for _, v := range s {
			clipped += min(max(v, probEps), 1-probEps)
		}
		logLoss -= wi * math.Log(min(max(s[y], probEps), 1-probEps)/clipped)
		if k == 2 {
			e := s[1]
			if y == 1 {
				e--
			}
			brier += wi * e * e
		} else {
			var b float64
			for c, v := range s {
				if c == y {
					v--
				}
				b += v * v
			}
			brier += wi * b
		}
	}
	m.LogLoss, m.Brier = Number(logLoss/total), Number(brier/total)

	m.ConfusionMatrix = make([][]Number, k)
	var correct float64
	for y := range k {
		m.ConfusionMatrix[y] = make([]Number, k)
		for p := range k {
			m.ConfusionMatrix[y][p] = Number(cm[y*k+p])
		}
		correct += cm[y*k+y]
	}
	m.Accuracy = Number(correct / total)

	m.PerClass = make([]ClassMetrics, k)
	var tpSum, predSum, trueSum float64
	var macro, weighted [3]float64
	for c := range k {
		var tp, pred, support float64
		tp = cm[c*k+c]
		for j := range k {
			pred += cm[j*k+c]
			support += cm[c*k+j]
		}
		p, r := safeDiv(tp, pred), safeDiv(tp, support)
		f := fScore(p, r)
		var roc *[]ROCPoint
		if curves && c == rocClass(k) {
			roc = &m.ROC
		}
		auc, ap := binaryCurve(d, idx, w, c, k, roc)
		m.PerClass[c] = ClassMetrics{Class: classes[c], Precision: Number(p), Recall: Number(r), F1: Number(f),
			Support: Number(support), AUC: Number(auc), AveragePrecision: Number(ap)}
		tpSum, predSum, trueSum = tpSum+tp, predSum+pred, trueSum+support
		for i, v := range [3]float64{p, r, f} {
			macro[i] += v / float64(k)
			weighted[i] += v * support
		}
	}
	m.Macro = Averages{Number(macro[0]), Number(macro[1]), Number(macro[2])}
	m.Weighted = Averages{Number(safeDiv(weighted[0], trueSum)), Number(safeDiv(weighted[1], trueSum)), Number(safeDiv(weighted[2], trueSum))}
	mp, mr := safeDiv(tpSum, predSum), safeDiv(tpSum, trueSum)
	m.Micro = Averages{Number(mp), Number(mr), Number(fScore(mp, mr))}

	if k == 2 {
		m.AUC, m.AveragePrecision = m.PerClass[1].AUC, m.PerClass[1].AveragePrecision
	} else {
		var auc, ap float64
		for _, c := range m.PerClass {
			auc += float64(c.AUC) / float64(k)
			ap += float64(c.AveragePrecision) / float64(k)
		}
		m.AUC, m.AveragePrecision = Number(auc), Number(ap)
	}
	m.Calibration = calibration(d, idx, w, k, o.CalibrationBins)
	m.ROC = thin(m.ROC, o.CurvePoints)
	return m
}

// rocClass is the class whose ROC curve is kept: the second of two, else
// the first.
func rocClass(k int) int {
	if k == 2 {
		return 1
	}
	return 0
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0 // scikit-learn's zero_division default
	}
	return a / b
}

// fScore is F1 in scikit-learn's form, 2PR/(P+R), 0 when P+R is 0.
func fScore(p, r float64) float64 {
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

type scored struct {
	score, w float64
	pos      bool
}

// binaryCurve returns the exact ROC AUC and average precision of class c
// against the rest, NaN when the rows hold no positive (either) or no
// negative (AUC) weight. With roc non-nil it also stores the ROC curve,
// one point per distinct score from the highest down, after (0, 0).
func binaryCurve(d *rows, idx []int32, w []float64, c, k int, roc *[]ROCPoint) (auc, ap float64) {
	pts := make([]scored, 0, len(idx))
	for i, r := range idx {
		if w[i] == 0 {
			continue
		}
		pts = append(pts, scored{d.scores[int(r)*k+c], w[i], int(d.labels[r]) == c})
	}
	// Scores are checked to be in [0, 1] by Add, so no NaN needs ordering.
	slices.SortFunc(pts, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return 0
	})
	var P, N float64
	for _, p := range pts {
		if p.pos {
			P += p.w
		} else {
			N += p.w
		}
	}
	if roc != nil && len(pts) > 0 {
		// Above every score, nothing is positive: scikit-learn 1.2 puts
		// this point at the highest score + 1.
		*roc = append((*roc)[:0], ROCPoint{Threshold: pts[0].score + 1, Precision: 1})
	}
	var tp, fp, area, sumAP float64
	for i := 0; i < len(pts); {
		j := i
		prevTP, prevFP := tp, fp
		for ; j < len(pts) && pts[j].score == pts[i].score; j++ {
			if pts[j].pos {
				tp += pts[j].w
			} else {
				fp += pts[j].w
			}
		}
		area += (fp - prevFP) * (tp + prevTP) / 2
		if tp+fp > 0 {
			sumAP += (tp - prevTP) * tp / (tp + fp)
		}
		if roc != nil {
			*roc = append(*roc, ROCPoint{Threshold: pts[i].score, FPR: safeDiv(fp, N), TPR: safeDiv(tp, P), Precision: safeDiv(tp, tp+fp)})
		}
		i = j
	}
	auc, ap = math.NaN(), math.NaN()
	if P > 0 && N > 0 {
		auc = area / (P * N)
	}
	if P > 0 {
		ap = sumAP / P
	}
	return auc, ap
}

// thin keeps at most n points of a curve, evenly spaced by index, always
// keeping both ends; n <= 0 keeps all.
func thin(c []ROCPoint, n int) []ROCPoint {
	if n <= 0 || len(c) <= n {
		return c
	}
	out := make([]ROCPoint, 0, n)
	for i := range n {
		out = append(out, c[i*(len(c)-1)/(n-1)])
	}
	return out
}

// calibration bins as scikit-learn's calibration_curve: bin b holds
// probabilities in (b/n, (b+1)/n], the first bin also 0.
func calibration(d *rows, idx []int32, w []float64, k, n int) Calibration {
	wsum := make([]float64, n)
	psum := make([]float64, n)
	ysum := make([]float64, n)
	for i, r := range idx {
		wi := w[i]
		if wi == 0 {
			continue
		}
		s := d.scores[int(r)*k : int(r)*k+k]
		var p, y float64
		if k == 2 {
			p = s[1]
			if d.labels[r] == 1 {
				y = 1
			}
		} else {
			p = s[d.predicted[r]]
			if d.labels[r] == d.predicted[r] {
				y = 1
			}
		}
		b := min(max(int(math.Ceil(p*float64(n)))-1, 0), n-1)
		wsum[b] += wi
		psum[b] += wi * p
		ysum[b] += wi * y
	}
	var total, ece float64
	for _, v := range wsum {
		total += v
	}
	c := Calibration{Bins: make([]CalibrationBin, n)}
	for b := range n {
		bin := CalibrationBin{Lower: float64(b) / float64(n), Upper: float64(b+1) / float64(n), Weight: Number(wsum[b]),
			MeanPredicted: Number(math.NaN()), FractionPositive: Number(math.NaN())}
		if wsum[b] > 0 {
			mp, fp := psum[b]/wsum[b], ysum[b]/wsum[b]
			bin.MeanPredicted, bin.FractionPositive = Number(mp), Number(fp)
			ece += wsum[b] / total * math.Abs(mp-fp)
		}
		c.Bins[b] = bin
	}
	c.ECE = Number(ece)
	return c
}
