package train_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/mlsteps/mlsteps/artifacts"
	ctrain "github.com/mlsteps/mlsteps/components/train"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/step"
	"github.com/mlsteps/mlsteps/steps/train"
)

// BenchmarkTrain times builtin:logistic (L2 1, tol 1e-6: the step's
// defaults) and builtin:gbdt (100 rounds, depth 6) through the component, not the step, on transformed penguins
// (266 rows) and on a 1M-row sample of flights-3m (the train split of an
// import split 1:2 with seed 1) predicting delay > 15 minutes from distance
// and the hour of departure; beside scikit-learn's LogisticRegression and
// HistGradientBoostingClassifier on the same rows with the same
// hyper-parameters, on GOMAXPROCS threads, as time ratios. The flights
// matrix is extracted once into .cache/bench/. Without python3-sklearn only
// our times are printed.
func BenchmarkTrain(b *testing.B) {
	e := newEnv(b)
	xfd, tg := e.transformed(e.examples("penguins.json"), penguinsSpec)
	penguins := penguinData(b, e, artifacts.MustParseURI(xfd), featureOrder(e, tg))
	flights := flightsData(b)
	sklearn := exec.Command("/usr/bin/python3", "-c", "import sklearn").Run() == nil
	for _, c := range []struct {
		name string
		d    ctrain.Data
		reps int // fits per timing, so tiny data is measured over more than noise
	}{{"penguins", penguins, 20}, {"flights-1m", flights, 1}} {
		path := filepath.Join(b.TempDir(), c.name+".f64")
		writeMatrix(b, path, c.d)
		for _, trainer := range []string{"logistic", "gbdt"} {
			b.Run(c.name+"/"+trainer, func(b *testing.B) {
				fit := func() error {
					var err error
					switch trainer {
					case "logistic":
						_, err = ctrain.FitLogistic(context.Background(), c.d, ctrain.LogisticOptions{Lambda: 1, Tol: 1e-6}) // the step's default
					default:
						_, err = ctrain.FitGBDT(context.Background(), c.d, nil, ctrain.GBDTOptions{Trees: 100, MaxDepth: 6})
					}
					return err
				}
				var took time.Duration
				for b.Loop() {
					start := time.Now()
					for range c.reps {
						if err := fit(); err != nil {
							b.Fatal(err)
						}
					}
					took += time.Since(start)
				}
				ours := took.Seconds() / float64(b.N*c.reps)
				b.ReportMetric(float64(c.d.Rows())/ours, "rows/s")
				if !sklearn {
					b.Logf("%s %s: %d rows × %d features: mlsteps %.4fs per fit (python3-sklearn not installed: no reference)", c.name, trainer, c.d.Rows(), len(c.d.Features), ours)
					return
				}
				est := "LogisticRegression(C=1.0, max_iter=10000)"
				if trainer == "gbdt" {
					est = "HistGradientBoostingClassifier(max_iter=100, max_depth=6, learning_rate=0.1, max_leaf_nodes=None, min_samples_leaf=1, l2_regularization=0, max_bins=255, early_stopping=False, random_state=0)"
				}
				var ref struct {
					Seconds float64 `json:"seconds"`
				}
				python(b, fmt.Sprintf(`
import json, sys, time, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.ensemble import HistGradientBoostingClassifier
n, f = %d, %d
v = np.fromfile(%q, dtype="<f8")
x, y = v[:n*f].reshape(n, f), v[n*f:]
t = time.perf_counter()
for _ in range(%d):
    %s.fit(x, y)
json.dump({"seconds": (time.perf_counter() - t) / %d}, sys.stdout)
`, c.d.Rows(), len(c.d.Features), path, c.reps, est, c.reps), &ref, fmt.Sprintf("OMP_NUM_THREADS=%d", runtime.GOMAXPROCS(0)))
				b.Logf("%s %s: %d rows × %d features, %d threads: mlsteps %.4fs, sklearn %.4fs per fit; mlsteps/sklearn time ratio %.2f",
					c.name, trainer, c.d.Rows(), len(c.d.Features), runtime.GOMAXPROCS(0), ours, ref.Seconds, ours/ref.Seconds)
				testenv.BenchRow(b, testenv.Row{Issue: 6, Figure: fmt.Sprintf("train %s on %s, %d rows × %d features", trainer, c.name, c.d.Rows(), len(c.d.Features)),
					Ours: ours, Unit: "s per fit", Reference: "scikit-learn " + strings.SplitN(est, "(", 2)[0], Ref: ref.Seconds, Ratio: ref.Seconds / ours, Better: "higher"})
			})
		}
	}
}

// penguinData reads the transformed train split as the step would.
func penguinData(b *testing.B, e *env, u artifacts.URI, features []string) ctrain.Data {
	x := e.numbers(u, artifacts.TypeDataset, "train", features)
	labels := e.column(u, artifacts.TypeDataset, "train", "Species")
	classes := []string{"Adelie", "Chinstrap", "Gentoo"}
	d := ctrain.Data{Features: features, Classes: classes}
	f := len(features)
	for i, l := range labels {
		for k, c := range classes {
			if c == l {
				d.X = append(d.X, x[i*f:(i+1)*f]...)
				d.Y = append(d.Y, float64(k))
			}
		}
	}
	return d
}

// flightsData returns distance and departure hour → delay > 15 of the
// train split of flights-3m imported with split train=1,rest=2 and seed 1,
// extracted once into .cache/bench/.
func flightsData(b *testing.B) ctrain.Data {
	features := []string{"distance", "hour"}
	d := ctrain.Data{Features: features, Classes: []string{"on time", "late"}}
	dir := filepath.Join(testenv.RepoRoot(b), ".cache", "bench")
	cache := filepath.Join(dir, "train-flights-1m.f64")
	if data, err := os.ReadFile(cache); err == nil {
		v := make([]float64, len(data)/8)
		for i := range v {
			v[i] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:]))
		}
		n := len(v) / 3
		d.X, d.Y = v[:2*n], v[2*n:]
		return d
	}
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()
	root := artifacts.MustParseURI(b.TempDir())
	inv := step.Invocation{OutRoot: root.String(), Params: map[string]any{"source": testenv.VegaData(b, "flights-3m.parquet"), "split": "train=1,rest=2", "seed": int64(1)}}
	if err := step.Execute(ctx, importer.Spec(), inv, step.Env{Store: store}); err != nil {
		b.Fatal(err)
	}
	a, err := store.Open(ctx, root.Join("examples"), artifacts.TypeDataset)
	if err != nil {
		b.Fatal(err)
	}
	for rec, err := range a.Records(ctx, "train", artifacts.ReadOptions{Columns: []string{"date", "delay", "distance"}}) {
		if err != nil {
			b.Fatal(err)
		}
		date := rec.Column(0).(*array.Timestamp)
		unit := date.DataType().(*arrow.TimestampType).Unit
		delay, dist := rec.Column(1), rec.Column(2)
		for i := range int(rec.NumRows()) {
			if date.IsNull(i) || delay.IsNull(i) || dist.IsNull(i) {
				continue
			}
			dv, _ := train.Number(dist, i)
			late, _ := train.Number(delay, i)
			d.X = append(d.X, dv, float64(date.Value(i).ToTime(unit).Hour()))
			d.Y = append(d.Y, map[bool]float64{true: 1, false: 0}[late > 15])
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	writeMatrix(b, cache+".tmp", d)
	if err := os.Rename(cache+".tmp", cache); err != nil {
		b.Fatal(err)
	}
	return d
}

// writeMatrix writes X then Y as little-endian float64, for numpy.fromfile.
func writeMatrix(b *testing.B, path string, d ctrain.Data) {
	buf := make([]byte, 0, 8*(len(d.X)+len(d.Y)))
	for _, v := range d.X {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
	}
	for _, v := range d.Y {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.Fatal(err)
	}
}
