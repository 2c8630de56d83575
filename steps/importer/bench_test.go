package importer_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// BenchmarkImportCSV imports the largest tabular vega CSV (zipcodes.csv,
// 42,049 rows) and a 10× replicated copy from CSV to Parquet, beside Go's
// encoding/csv parsing the same file as the reference, in the same run. It
// reports rows/s of both, their ratio, the peak Go heap during the import
// and the peak RSS of a real `mlsteps import` process: memory must stay flat
// as rows grow.
func BenchmarkImportCSV(b *testing.B) {
	src := testenv.VegaData(b, "zipcodes.csv")
	dir := b.TempDir()
	for _, n := range []int{1, 10} {
		path := filepath.Join(dir, fmt.Sprintf("zipcodes-%dx.csv", n))
		testenv.ReplicateCSV(b, src, path, n)
		b.Run(fmt.Sprintf("zipcodes-%dx", n), func(b *testing.B) {
			var refDur, impDur time.Duration
			var rows int64
			var peakHeap uint64
			for i := range b.N {
				refStart := time.Now()
				rows = parseCSV(b, path)
				refDur += time.Since(refStart)

				store := artifacts.NewStore()
				root := artifacts.MustParseURI("file://" + filepath.Join(b.TempDir(), fmt.Sprint(i)))
				runtime.GC()
				stop := testenv.SampleHeap(&peakHeap)
				impStart := time.Now()
				a, err := importTo(b, store, root, map[string]any{"source": path, "split": "train=0.8,eval=0.2"})
				impDur += time.Since(impStart)
				stop()
				store.Close()
				if err != nil {
					b.Fatal(err)
				}
				if n, _ := artifacts.Property[int64](a.Sidecar, artifacts.PropRowCount); n != rows {
					b.Fatalf("imported %d rows, encoding/csv counted %d", n, rows)
				}
			}
			impRate := float64(rows) * float64(b.N) / impDur.Seconds()
			refRate := float64(rows) * float64(b.N) / refDur.Seconds()
			rss := processRSS(b, path)
			b.ReportMetric(impRate, "rows/s")
			b.ReportMetric(refRate, "ref-rows/s")
			b.ReportMetric(impRate/refRate, "x-ref")
			b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(rss, "peak-rss-MiB")
			b.Logf("import %d rows: %.0f rows/s; encoding/csv alone %.0f rows/s; import/reference = %.2f; peak heap %.1f MiB; process peak RSS %.1f MiB",
				rows, impRate, refRate, impRate/refRate, float64(peakHeap)/(1<<20), rss)
			testenv.BenchRow(b, testenv.Row{Issue: 3, Figure: fmt.Sprintf("import %d rows (CSV → Parquet Dataset); peak RSS %.0f MiB", rows, rss), Ours: impRate, Unit: "rows/s",
				Reference: "encoding/csv parse alone", Ref: refRate, Ratio: impRate / refRate, Better: "higher"})
		})
	}
}

// parseCSV is the reference: Go's encoding/csv reading every record.
func parseCSV(b testing.TB, path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = true
	var n int64 = -1 // the header
	for {
		_, err := r.Read()
		if err == io.EOF {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
}

// processRSS runs the real binary and returns its peak resident set in MiB.
func processRSS(b *testing.B, path string) float64 {
	bin := os.Getenv("MLSTEPS_BIN")
	if bin == "" {
		return 0
	}
	root := filepath.Join(b.TempDir(), "rss")
	cmd := exec.CommandContext(context.Background(), bin, "--log-format", "json", "import", "--source", path, "--out-root", "file://"+root, "--split", "train=0.8,eval=0.2")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", bin, err, out)
	}
	return float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024
}
