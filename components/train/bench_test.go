package train_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/components/train"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// BenchmarkGBDT fits 100 depth-6 rounds on 100,000 synthetic rows × 10
// features (binary log loss, a tenth of one feature missing), and, when
// python3-sklearn is installed, times HistGradientBoostingClassifier with
// the same hyper-parameters on the same rows in the same run, both on
// GOMAXPROCS threads, printing the ratio.
func BenchmarkGBDT(b *testing.B) {
	const n, f = 100_000, 10
	d := synthetic(n, f, 3)
	o := train.GBDTOptions{Trees: 100, MaxDepth: 6, LearningRate: 0.1, MinChildWeight: 1}
	var m *train.GBDT
	start := time.Now()
	for b.Loop() {
		var err error
		if m, err = train.FitGBDT(context.Background(), d, nil, o); err != nil {
			b.Fatal(err)
		}
	}
	per := time.Since(start).Seconds() / float64(b.N)
	b.ReportMetric(float64(n)/per, "rows/s")
	p, err := m.Predict(d.X)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("mlsteps GBDT: %d rows × %d features, %d rounds depth %d, %d workers: %.2fs per fit, %.0f rows/s, train accuracy %.4f",
		n, f, o.Trees, o.MaxDepth, runtime.GOMAXPROCS(0), per, float64(n)/per, accuracy(p.Labels, d.Y))

	path := filepath.Join(b.TempDir(), "x.f64")
	buf := make([]byte, 0, 8*(len(d.X)+len(d.Y)))
	for _, v := range append(append([]float64(nil), d.X...), d.Y...) {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	var ref struct {
		Seconds  float64 `json:"seconds"`
		Accuracy float64 `json:"accuracy"`
	}
	python(b, []string{fmt.Sprintf("OMP_NUM_THREADS=%d", runtime.GOMAXPROCS(0))}, fmt.Sprintf(`
import json, sys, time, numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier as HGB
v = np.fromfile(%q, dtype="<f8")
x, y = v[:%d].reshape(%d, %d), v[%d:]
m = HGB(max_iter=%d, max_depth=%d, learning_rate=0.1, max_leaf_nodes=None, min_samples_leaf=1,
        l2_regularization=0, max_bins=255, early_stopping=False, random_state=0)
t = time.perf_counter(); m.fit(x, y); s = time.perf_counter() - t
json.dump({"seconds": s, "accuracy": m.score(x, y)}, sys.stdout)
`, path, n*f, n, f, n*f, o.Trees, o.MaxDepth), &ref)
	b.Logf("sklearn HistGradientBoostingClassifier: %.2fs per fit, %.0f rows/s, train accuracy %.4f; mlsteps/sklearn time ratio %.2f",
		ref.Seconds, float64(n)/ref.Seconds, ref.Accuracy, per/ref.Seconds)
	testenv.BenchRow(b, testenv.Row{Issue: 6, Figure: fmt.Sprintf("GBDT fit, %d rows × %d features, %d rounds depth %d", n, f, o.Trees, o.MaxDepth),
		Ours: per, Unit: "s", Reference: "scikit-learn HistGradientBoostingClassifier", Ref: ref.Seconds, Ratio: ref.Seconds / per, Better: "higher"})
}
