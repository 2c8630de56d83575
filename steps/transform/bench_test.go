package transform_test

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	xf "github.com/mlsteps/mlsteps/components/transform"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/step"
)

const zipSpec = `features:
  latitude: [impute: mean, zscore]
  longitude: [impute: median, scale_to_0_1]
  state: [vocabulary: {}, one_hot]
  county: [impute: most_frequent, vocabulary: {top_k: 100}]
  city: [hash_bucket: {num_buckets: 64}]
label: zip_code
`

// BenchmarkTransform fits and applies a transform in Go on the largest
// tabular vega dataset (zipcodes.csv, 42,049 rows) and a 10× copy, and runs
// transform.onnx through ONNX Runtime on the same rows, in one run. It
// reports rows/s of Go's fit+apply, of Go's apply alone and of ORT's apply
// (both from Arrow batches, input extraction included), their ratio, and
// rows/s of the whole step (read Parquet, fit, write both artifacts).
func BenchmarkTransform(b *testing.B) {
	orttest.Init(b)
	src := testenv.VegaData(b, "zipcodes.csv")
	dir := filepath.Join(testenv.RepoRoot(b), ".cache", "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 10} {
		path := src
		if n > 1 {
			path = filepath.Join(dir, fmt.Sprintf("zipcodes-%dx.csv", n))
			testenv.ReplicateCSV(b, src, path, n)
		}
		b.Run(fmt.Sprintf("zipcodes-%dx", n), func(b *testing.B) {
			ctx := context.Background()
			store := artifacts.NewStore()
			defer store.Close()
			root := artifacts.MustParseURI(b.TempDir())
			inv := step.Invocation{OutRoot: root.String(), Params: map[string]any{"source": path, "split": "train=0.8,eval=0.2"}}
			if err := step.Execute(ctx, importer.Spec(), inv, step.Env{Store: store}); err != nil {
				b.Fatal(err)
			}
			examples, err := store.Open(ctx, root.Join("examples"), artifacts.TypeDataset)
			if err != nil {
				b.Fatal(err)
			}
			train, all := readAll(b, examples, "train"), append(readAll(b, examples, "train"), readAll(b, examples, "eval")...)
			var rows int64
			for _, r := range all {
				rows += r.NumRows()
			}
			spec, err := xf.ParseSpec("transform.yaml", []byte(zipSpec))
			if err != nil {
				b.Fatal(err)
			}
			var fitDur, applyDur, ortDur, stepDur time.Duration
			for i := range b.N {
				start := time.Now()
				g, err := xf.Compile(spec, columnsOf(all[0].Schema()), 1)
				if err != nil {
					b.Fatal(err)
				}
				if err := xf.Fit(ctx, g, batches(train)); err != nil {
					b.Fatal(err)
				}
				fitDur += time.Since(start)
				start = time.Now()
				for _, rec := range all {
					if _, err := g.Apply(rec); err != nil {
						b.Fatal(err)
					}
				}
				applyDur += time.Since(start)

				sess := onnxSession(b, g)
				start = time.Now()
				for _, rec := range all {
					raw, err := g.RawColumns(rec)
					if err != nil {
						b.Fatal(err)
					}
					cols := make([]ort.Column, len(raw))
					for j, c := range raw {
						cols[j] = ort.Column{Name: c.Name, Doubles: c.Doubles, Strings: c.Strings}
					}
					if _, err := sess.Run(rec.NumRows(), cols); err != nil {
						b.Fatal(err)
					}
				}
				ortDur += time.Since(start)
				sess.Close()

				start = time.Now()
				out := root.Join(fmt.Sprint("run", i))
				if err := runTransform(store, out, examples.Location().String(), writeSpec(b, zipSpec)); err != nil {
					b.Fatal(err)
				}
				stepDur += time.Since(start)
			}
			per := func(d time.Duration) float64 { return float64(rows) * float64(b.N) / d.Seconds() }
			goRate, applyRate, ortRate, stepRate := per(fitDur+applyDur), per(applyDur), per(ortDur), per(stepDur)
			b.ReportMetric(goRate, "go-fit+apply-rows/s")
			b.ReportMetric(applyRate, "go-apply-rows/s")
			b.ReportMetric(ortRate, "ort-apply-rows/s")
			b.ReportMetric(applyRate/ortRate, "go/ort-apply")
			b.ReportMetric(stepRate, "step-rows/s")
			b.Logf("%d rows: Go fit+apply %.0f rows/s (apply alone %.0f rows/s); ONNX Runtime apply of transform.onnx %.0f rows/s; Go apply / ORT apply = %.2f; whole step (Parquet in, both artifacts out) %.0f rows/s",
				rows, goRate, applyRate, ortRate, applyRate/ortRate, stepRate)
			testenv.BenchRow(b, testenv.Row{Issue: 5, Figure: fmt.Sprintf("transform apply, %d rows (Go)", rows), Ours: applyRate, Unit: "rows/s",
				Reference: "ONNX Runtime running transform.onnx", Ref: ortRate, Ratio: applyRate / ortRate, Better: "higher"})
			testenv.BenchRow(b, testenv.Row{Issue: 5, Figure: fmt.Sprintf("transform step, %d rows (Parquet in, both artifacts out)", rows), Ours: stepRate, Unit: "rows/s"})
		})
	}
}

func onnxSession(b *testing.B, g *xf.Graph) *ort.Session {
	m, err := g.ONNX()
	if err != nil {
		b.Fatal(err)
	}
	data, err := onnx.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, len(g.Inputs))
	for i, in := range g.Inputs {
		names[i] = in.Name
	}
	s, err := ort.NewSession(data, names, []string{g.Output})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func readAll(b *testing.B, a *artifacts.Artifact, split string) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	for rec, err := range a.Records(context.Background(), split, artifacts.ReadOptions{}) {
		if err != nil {
			b.Fatal(err)
		}
		rec.Retain()
		out = append(out, rec)
	}
	return out
}

func batches(recs []arrow.RecordBatch) xf.Source {
	return func() iter.Seq2[arrow.RecordBatch, error] {
		return func(yield func(arrow.RecordBatch, error) bool) {
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
		}
	}
}

func columnsOf(s *arrow.Schema) []xf.Input {
	out := make([]xf.Input, s.NumFields())
	for i, f := range s.Fields() {
		k, _ := xf.KindOf(f.Type.String())
		out[i] = xf.Input{Name: f.Name, Kind: k}
	}
	return out
}
