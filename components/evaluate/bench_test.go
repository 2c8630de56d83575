package evaluate_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/components/evaluate"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// synthetic returns n rows of 3-class labels with noisy softmax scores
// (about 70% accurate, few ties), weights in [0.5, 1.5) and two slice
// features: "region" (3 values) and "segment" (2).
func synthetic(n int) evaluate.Batch {
	r := rand.New(rand.NewPCG(1, 2))
	const k = 3
	b := evaluate.Batch{Labels: make([]int, n), Scores: make([]float64, n*k), Weights: make([]float64, n),
		Features: map[string][]string{"region": make([]string, n), "segment": make([]string, n)}}
	regions, segments := []string{"north", "south", "west"}, []string{"new", "returning"}
	for i := range n {
		y := r.IntN(k)
		b.Labels[i] = y
		var z [k]float64
		var sum float64
		for c := range k {
			z[c] = r.NormFloat64()
			if c == y {
				z[c] += 1.5
			}
			z[c] = math.Exp(z[c])
			sum += z[c]
		}
		for c := range k {
			b.Scores[i*k+c] = z[c] / sum
		}
		b.Weights[i] = 0.5 + r.Float64()
		b.Features["region"][i] = regions[r.IntN(3)]
		b.Features["segment"][i] = segments[r.IntN(2)]
	}
	return b
}

// BenchmarkClassification evaluates 1M rows of 3 classes (every
// classification metric, weighted) fed in 64K-row batches, over the whole
// dataset and over 3 slicings ([], [region], [region, segment]: 10
// slices), and, when python3-sklearn is installed, times scikit-learn
// computing the same metrics on the same arrays (per slice, by boolean
// masks) in the same run, printing the ratio.
func BenchmarkClassification(b *testing.B) {
	const n, k, batch = 1_000_000, 3, 1 << 16
	data := synthetic(n)
	classes := []string{"a", "b", "c"}
	run := func(b *testing.B, o evaluate.Options) (perRun float64, peak uint64) {
		stop := testenv.SampleHeap(&peak)
		start := time.Now()
		for b.Loop() {
			e, err := evaluate.New(o)
			if err != nil {
				b.Fatal(err)
			}
			for lo := 0; lo < n; lo += batch {
				if err := e.Add(part(data, lo, min(lo+batch, n))); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := e.Result(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		per := time.Since(start).Seconds() / float64(b.N)
		stop()
		b.ReportMetric(float64(n)/per, "rows/s")
		return per, peak
	}
	// scikit-learn first, so that each sub-benchmark can print its ratio.
	var ref struct{ Overall, Sliced float64 }
	path := filepath.Join(b.TempDir(), "rows.f64")
	buf := make([]byte, 0, 8*n*(k+4))
	for _, col := range [][]float64{data.Scores, data.Weights, ints(data.Labels), codes(data.Features["region"]), codes(data.Features["segment"])} {
		for _, v := range col {
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
		}
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	python(b, nil, fmt.Sprintf(`
import json, sys, time, numpy as np
from sklearn import metrics
from sklearn.preprocessing import label_binarize
n, k = %d, %d
v = np.fromfile(%q, dtype="<f8")
p = v[:n*k].reshape(n, k); w = v[n*k:n*(k+1)]; y = v[n*(k+1):n*(k+2)].astype(int)
region = v[n*(k+2):n*(k+3)].astype(int); segment = v[n*(k+3):].astype(int)

def evaluate(m):
    yy, pp, ww = y[m], p[m], w[m]
    pred = pp.argmax(1)
    metrics.accuracy_score(yy, pred, sample_weight=ww)
    metrics.precision_recall_fscore_support(yy, pred, sample_weight=ww, zero_division=0)
    for avg in ["macro", "micro", "weighted"]:
        metrics.precision_recall_fscore_support(yy, pred, average=avg, sample_weight=ww, zero_division=0)
    metrics.confusion_matrix(yy, pred, sample_weight=ww)
    metrics.log_loss(yy, pp, sample_weight=ww, labels=list(range(k)))
    np.average(((pp - np.eye(k)[yy]) ** 2).sum(1), weights=ww)
    for c in range(k):
        metrics.roc_auc_score(yy == c, pp[:, c], sample_weight=ww)
        metrics.average_precision_score(yy == c, pp[:, c], sample_weight=ww)
    metrics.roc_auc_score(yy, pp, multi_class="ovr", average="macro", sample_weight=ww)
    metrics.average_precision_score(label_binarize(yy, classes=list(range(k))), pp, average="macro", sample_weight=ww)
    conf = pp.max(1); hit = (pred == yy).astype(float)
    b = np.clip(np.ceil(conf * 10).astype(int) - 1, 0, 9)
    wb = np.bincount(b, ww, 10); pb = np.bincount(b, ww * conf, 10); hb = np.bincount(b, ww * hit, 10)
    nz = wb > 0
    (wb[nz] / wb.sum() * np.abs(pb[nz] / wb[nz] - hb[nz] / wb[nz])).sum()

t = time.perf_counter(); evaluate(np.ones(n, bool)); overall = time.perf_counter() - t
t = time.perf_counter()
evaluate(np.ones(n, bool))
for r in range(3):
    evaluate(region == r)
    for s in range(2):
        evaluate((region == r) & (segment == s))
sliced = time.perf_counter() - t
json.dump({"Overall": overall, "Sliced": sliced}, sys.stdout)
`, n, k, path), &ref)
	b.Run("overall", func(b *testing.B) {
		per, peak := run(b, evaluate.Options{Classes: classes})
		b.Logf("mlsteps: %d rows × %d classes, all classification metrics: %.3fs, %.0f rows/s, peak heap %.0f MB; scikit-learn %.3fs (%.0f rows/s); mlsteps/sklearn time ratio %.2f",
			n, k, per, n/per, float64(peak)/1e6, ref.Overall, n/ref.Overall, per/ref.Overall)
		testenv.BenchRow(b, testenv.Row{Issue: 8, Figure: fmt.Sprintf("evaluate %.0fM predictions × %d classes, every metric, overall", n/1e6, k),
			Ours: per, Unit: "s", Reference: "scikit-learn", Ref: ref.Overall, Ratio: ref.Overall / per, Better: "higher"})
		testenv.BenchRow(b, testenv.Row{Issue: 8, Figure: "evaluate: peak heap", Ours: float64(peak) / (1 << 20), Unit: "MiB"})
	})
	b.Run("3slicings", func(b *testing.B) {
		per, peak := run(b, evaluate.Options{Classes: classes, Slices: [][]string{{}, {"region"}, {"region", "segment"}}})
		b.Logf("mlsteps: %d rows × %d classes, 3 slicings (10 slices): %.3fs, %.0f rows/s, peak heap %.0f MB; scikit-learn %.3fs (%.0f rows/s); mlsteps/sklearn time ratio %.2f",
			n, k, per, n/per, float64(peak)/1e6, ref.Sliced, n/ref.Sliced, per/ref.Sliced)
		testenv.BenchRow(b, testenv.Row{Issue: 8, Figure: fmt.Sprintf("evaluate %.0fM predictions, 3 slicings (10 slices)", n/1e6),
			Ours: per, Unit: "s", Reference: "scikit-learn", Ref: ref.Sliced, Ratio: ref.Sliced / per, Better: "higher"})
	})
}

func ints(v []int) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// codes numbers the distinct values of v in order of first appearance.
func codes(v []string) []float64 {
	seen := map[string]float64{}
	out := make([]float64, len(v))
	for i, s := range v {
		c, ok := seen[s]
		if !ok {
			c = float64(len(seen))
			seen[s] = c
		}
		out[i] = c
	}
	return out
}
