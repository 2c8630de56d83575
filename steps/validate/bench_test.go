package validate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/step"
	"github.com/mlsteps/mlsteps/steps/validate"
)

// BenchmarkValidate computes statistics, schema and anomalies of the
// largest tabular vega dataset (zipcodes.csv, 42,049 rows) and of 10× and
// 100× replicated copies, beside pandas computing the same statistics
// (describe(), value_counts() of every string column, deciles) on the same
// CSV in the same run. It reports, per size:
//
//   - stats-rows/s and x-pandas-stats: our statistics pass (verifying the
//     Parquet parts' digests, decoding and summarising every row, as the
//     step logs it) against pandas' statistics on a DataFrame already in
//     memory: statistics against statistics, the target ratio;
//   - rows/s and x-pandas-e2e: the whole step (inputs opened, statistics,
//     schema, anomalies, report.html, three artifacts and the lineage
//     record written) against pandas' CSV load plus statistics;
//   - x-pandas-step: the whole step against pandas' statistics alone, the
//     strictest reading (our reading and writing, not theirs);
//   - cold-ms: the first run in the process, untimed otherwise: the timed
//     runs come after it, as pandas is timed after its import and load;
//   - the peak Go heap, and the peak RSS of a real `mlsteps validate`
//     process (when MLSTEPS_BIN is set, as `make bench` does): memory must
//     stay flat while the input grows 100×.
//
// The copies and their imported Datasets are made once, in .cache/bench/.
func BenchmarkValidate(b *testing.B) {
	src := testenv.VegaData(b, "zipcodes.csv")
	if err := exec.Command("/usr/bin/python3", "-c", "import pandas").Run(); err != nil {
		testenv.Missing(b, "/usr/bin/python3 with pandas (Debian python3-pandas) is not installed")
	}
	cache := filepath.Join(testenv.RepoRoot(b), ".cache", "bench")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		b.Fatal(err)
	}
	store := artifacts.NewStore()
	defer store.Close()
	for _, n := range []int{1, 10, 100} {
		csvPath := src
		if n > 1 {
			csvPath = filepath.Join(cache, fmt.Sprintf("zipcodes-%dx.csv", n))
			testenv.ReplicateCSV(b, src, csvPath, n)
		}
		dataset := importOnce(b, store, csvPath, filepath.Join(cache, fmt.Sprintf("zipcodes-%dx.dataset", n)))
		b.Run(fmt.Sprintf("zipcodes-%dx", n), func(b *testing.B) {
			execute := func(root string, timer *statsTimer) error {
				return step.Execute(context.Background(), validate.Spec(), step.Invocation{
					Inputs: map[string]string{"examples": dataset}, OutRoot: root, Params: map[string]any{"fail-on": "never"},
				}, step.Env{Store: store, Logger: slog.New(timer)})
			}
			start := time.Now()
			if err := execute(filepath.Join(b.TempDir(), "cold"), &statsTimer{}); err != nil {
				b.Fatal(err)
			}
			cold := time.Since(start)
			b.ResetTimer()
			var dur time.Duration
			var peakHeap uint64
			timer := &statsTimer{}
			for i := range b.N {
				root := filepath.Join(b.TempDir(), fmt.Sprint(i))
				runtime.GC()
				stop := testenv.SampleHeap(&peakHeap)
				start := time.Now()
				err := execute(root, timer)
				dur += time.Since(start)
				stop()
				if err != nil {
					b.Fatal(err)
				}
			}
			rows := float64(42_049 * n)
			rate := rows * float64(b.N) / dur.Seconds()
			statsRate := rows * float64(b.N) / timer.seconds
			pd := runPandas(b, csvPath)
			pdRate, pdRateLoad := rows/pd.StatsS, rows/(pd.StatsS+pd.LoadS)
			rss := processRSS(b, dataset)
			b.ReportMetric(rate, "rows/s")
			b.ReportMetric(statsRate, "stats-rows/s")
			b.ReportMetric(pdRate, "pandas-rows/s")
			b.ReportMetric(statsRate/pdRate, "x-pandas-stats")
			b.ReportMetric(rate/pdRateLoad, "x-pandas-e2e")
			b.ReportMetric(rate/pdRate, "x-pandas-step")
			b.ReportMetric(float64(cold.Microseconds())/1000, "cold-ms")
			b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(rss, "peak-rss-MiB")
			b.ReportMetric(pd.PeakRSSMiB, "pandas-peak-rss-MiB")
			testenv.BenchRow(b, testenv.Row{Issue: 4, Figure: fmt.Sprintf("validate statistics, zipcodes %d× (%d rows); mlsteps peak RSS %.0f MiB", n, int(rows), rss),
				Ours: statsRate, Unit: "rows/s", Reference: "pandas describe + value_counts + quantiles", Ref: pdRate, Ratio: statsRate / pdRate, Better: "higher", Target: "≥ 5×, RSS < 256 MiB"})
			testenv.BenchRow(b, testenv.Row{Issue: 4, Figure: fmt.Sprintf("validate whole step (statistics, schema, anomalies, report), zipcodes %d×", n),
				Ours: rate, Unit: "rows/s", Reference: "pandas CSV load + statistics", Ref: pdRateLoad, Ratio: rate / pdRateLoad, Better: "higher"})
			b.Logf("validate %d rows: statistics %.0f rows/s vs pandas statistics %.0f rows/s = %.2f×; "+
				"whole step %.0f rows/s vs pandas load+statistics %.0f rows/s = %.2f× (%.2f× against pandas statistics alone); "+
				"first (cold) run %.1f ms; peak Go heap %.1f MiB; mlsteps process peak RSS %.1f MiB; pandas peak RSS %.1f MiB",
				int(rows), statsRate, pdRate, statsRate/pdRate, rate, pdRateLoad, rate/pdRateLoad, rate/pdRate,
				float64(cold.Microseconds())/1000, float64(peakHeap)/(1<<20), rss, pd.PeakRSSMiB)
		})
	}
}

// statsTimer is a slog handler that adds up the seconds the validate step
// logs for its statistics passes (one per split).
type statsTimer struct{ seconds float64 }

func (h *statsTimer) Enabled(context.Context, slog.Level) bool { return true }
func (h *statsTimer) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "statistics" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "seconds" {
				h.seconds += a.Value.Float64()
			}
			return true
		})
	}
	return nil
}
func (h *statsTimer) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *statsTimer) WithGroup(string) slog.Handler      { return h }

// importOnce imports csvPath into dir with the import step unless a
// committed Dataset is already there; it returns the Dataset's URI.
func importOnce(b *testing.B, store *artifacts.Store, csvPath, dir string) string {
	ctx := context.Background()
	u, err := artifacts.ParseURI(dir)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := store.Open(ctx, u, artifacts.TypeDataset); err == nil {
		return u.String()
	} else if !errors.Is(err, artifacts.ErrNotFound) && !errors.Is(err, artifacts.ErrNotCommitted) {
		b.Fatal(err)
	}
	err = step.Execute(ctx, importer.Spec(), step.Invocation{
		Outputs: map[string]string{"examples": u.String()},
		OutRoot: filepath.Join(filepath.Dir(dir), "records"),
		Params:  map[string]any{"source": csvPath, "split": "train=1"},
	}, step.Env{Store: store})
	if err != nil {
		b.Fatalf("import %s: %v", csvPath, err)
	}
	return u.String()
}

type pandasResult struct {
	Rows       int64   `json:"rows"`
	LoadS      float64 `json:"load_s"`
	StatsS     float64 `json:"stats_s"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

func runPandas(b *testing.B, csvPath string) pandasResult {
	out, err := exec.Command("/usr/bin/python3", filepath.Join("testdata", "pandas_bench.py"), csvPath, "zip_code").Output()
	if err != nil {
		b.Fatalf("pandas_bench.py: %v", err)
	}
	var r pandasResult
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatal(err)
	}
	return r
}

// processRSS runs the real binary and returns its peak resident set in MiB
// (0 when MLSTEPS_BIN is not set).
func processRSS(b *testing.B, dataset string) float64 {
	bin := os.Getenv("MLSTEPS_BIN")
	if bin == "" {
		return 0
	}
	cmd := exec.Command(bin, "--log-format", "json", "validate", "--in", "examples="+dataset,
		"--out-root", "file://"+filepath.Join(b.TempDir(), "rss"), "--fail-on", "never")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", bin, err, out)
	}
	return float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
}
