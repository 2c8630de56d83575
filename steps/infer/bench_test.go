package infer_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/infer"
	"github.com/mlsteps/mlsteps/steps/step"
)

// BenchmarkInferFlights is `mlsteps infer` end to end, Parquet to Parquet,
// on the largest vega dataset (flights-3m: 3 million rows) with the
// fixture regression model: read, batch, infer, reorder, write every
// column back with the prediction. The import is not timed.
func BenchmarkInferFlights(b *testing.B) {
	orttest.Init(b)
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()
	root := artifacts.MustParseURI(b.TempDir())
	inv := step.Invocation{OutRoot: root.Join("data").String(), Params: map[string]any{"source": testenv.VegaData(b, "flights-3m.parquet"), "split": "all=1"}}
	if err := step.Execute(ctx, importer.Spec(), inv, step.Env{Store: store}); err != nil {
		b.Fatal(err)
	}
	inv = step.Invocation{OutRoot: root.Join("model").String(), Params: map[string]any{"source": filepath.Join(testenv.RepoRoot(b), "testdata", "models", "flights-delay.onnx")}}
	if err := step.Execute(ctx, importer.ModelSpec(), inv, step.Env{Store: store}); err != nil {
		b.Fatal(err)
	}
	examples, err := store.Open(ctx, root.Join("data", "examples"), artifacts.TypeDataset)
	if err != nil {
		b.Fatal(err)
	}
	rows, err := artifacts.Property[int64](examples.Sidecar, artifacts.PropRowCount)
	if err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int64{1, 2} {
		var took time.Duration
		for i := range b.N {
			out := root.Join("pred", string(rune('a'+i)), string(rune('0'+workers)))
			inv := step.Invocation{Inputs: map[string]string{"examples": examples.Location().String(), "model": root.Join("model", "model").String()},
				OutRoot: out.String(), Params: map[string]any{"workers": workers, "batch-max": int64(1024)}}
			start := time.Now()
			if err := step.Execute(ctx, infer.Spec(), inv, step.Env{Store: store}); err != nil {
				b.Fatal(err)
			}
			took += time.Since(start)
		}
		rate := float64(rows) * float64(b.N) / took.Seconds()
		if workers == 2 {
			b.ReportMetric(rate, "rows/s")
		}
		b.Logf("mlsteps infer flights-3m (%d rows, 5 columns passed through), Parquet to Parquet, %d worker(s), batch 1024: %.0f rows/s", rows, workers, rate)
		testenv.BenchRow(b, testenv.Row{Issue: 7, Figure: fmt.Sprintf("infer step, flights-3m (%d rows) Parquet to Parquet, %d worker(s)", rows, workers), Ours: rate, Unit: "rows/s"})
	}
}
