package local_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/orchestrate/local"
	"github.com/mlsteps/mlsteps/steps/catalog"
)

// BenchmarkRunnerOverhead runs a pipeline of ten trivial steps (imports of
// a three-row CSV) one at a time, cold and then fully cached, and reports
// the runner's overhead per step: wall time minus the steps' own time (as
// their execution records measure it), divided by the steps.
func BenchmarkRunnerOverhead(b *testing.B) {
	reg, err := catalog.Registry()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	csv := filepath.Join(dir, "tiny.csv")
	if err := os.WriteFile(csv, []byte("a,b\n1,x\n2,y\n3,z\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	const n = 10
	var sb strings.Builder
	sb.WriteString("name: trivial\nsteps:\n")
	for i := range n {
		fmt.Fprintf(&sb, "  - name: s%d\n    step: import\n    params: {source: %q, seed: %d}\n", i, csv, i)
	}
	g := graph(b, reg, sb.String())
	bin := testenv.Binary(b)
	build, err := local.BinaryDigest(bin)
	if err != nil {
		b.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range b.N {
		root := "file://" + filepath.Join(dir, fmt.Sprint("root", i))
		for _, pass := range []string{"cold", "cached"} {
			start := time.Now()
			res, err := local.Run(context.Background(), g, reg, local.Options{Binary: bin, BuildID: build, Root: root, Parallelism: 1, LogDir: filepath.Join(dir, "logs")})
			wall := time.Since(start)
			if err != nil || res.ExitCode != 0 {
				b.Fatalf("%s run: %v %+v", pass, err, res)
			}
			own := stepTime(b, root, seen)
			over := (wall - own) / n
			b.ReportMetric(float64(over.Microseconds())/1000, pass+"-overhead-ms/step")
			b.Logf("%s: %d steps in %v, steps' own time %v, runner overhead %v per step (a process start of the step binary, flag parsing, result files)",
				pass, n, wall.Round(time.Millisecond), own.Round(time.Millisecond), over.Round(time.Millisecond))
		}
	}
}

// stepTime sums the durations the execution records under root measured
// since the last call, so each pass counts only its own records.
func stepTime(b *testing.B, root string, seen map[string]bool) time.Duration {
	store := artifacts.NewStore()
	defer store.Close()
	u := artifacts.MustParseURI(root)
	objs, err := store.Glob(context.Background(), u.Join("*", "*", artifacts.ExecutionsDir, "*.json"))
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for _, o := range objs {
		if seen[o.URI.String()] {
			continue
		}
		seen[o.URI.String()] = true
		rec, err := store.ReadExecution(context.Background(), o.URI.Parent().Parent().Parent(), strings.TrimSuffix(o.URI.Base(), ".json"))
		if err != nil {
			b.Fatal(err)
		}
		total += rec.Ended.Sub(rec.Started)
	}
	return total
}
