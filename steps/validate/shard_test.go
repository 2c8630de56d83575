package validate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/artifacts/artifactstest"
	"github.com/mlsteps/mlsteps/components/stats"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/step"
	"github.com/mlsteps/mlsteps/steps/validate"
)

// outputs are validate's outputs with their types.
var outputs = []struct {
	name string
	typ  artifacts.Type
	file string
}{
	{"statistics", artifacts.TypeStatistics, validate.StatisticsFile},
	{"schema", artifacts.TypeSchema, validate.SchemaFile},
	{"anomalies", artifacts.TypeAnomalies, validate.AnomaliesFile},
}

// importParts imports a vega dataset split 80/20 into parts of at most
// rowsPerPart rows, so shards have several parts to share.
func (e *env) importParts(name, data string, rowsPerPart int64) string {
	e.t.Helper()
	out := e.root.Join(name)
	inv := step.Invocation{OutRoot: out.String(), Params: map[string]any{"source": testenv.VegaData(e.t, data),
		"split": "train=0.8,eval=0.2", "seed": int64(7), "rows-per-part": rowsPerPart}}
	if err := step.Execute(context.Background(), importer.Spec(), inv, step.Env{Store: e.store}); err != nil {
		e.t.Fatal(err)
	}
	return out.Join("examples").String()
}

// parts counts a Dataset's part files over its splits.
func (e *env) parts(examples string) int {
	e.t.Helper()
	a, err := e.store.Open(context.Background(), artifacts.MustParseURI(examples), artifacts.TypeDataset)
	if err != nil {
		e.t.Fatal(err)
	}
	splits, err := a.Splits()
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, s := range splits {
		n += len(s.Files)
	}
	return n
}

// sharded runs validate as n shards and returns each output's partial
// URIs, in shard order. A shard never gates.
func (e *env) sharded(name string, inputs map[string]string, params map[string]any, n int) map[string][]string {
	e.t.Helper()
	parts := map[string][]string{}
	for i := range n {
		out := e.root.Join(fmt.Sprintf("%s-shard-%d-of-%d", name, i, n))
		inv := step.Invocation{Inputs: inputs, OutRoot: out.String(), Params: params, Shard: &step.Shard{Index: i, Count: n}}
		if err := step.Execute(context.Background(), validate.Spec(), inv, step.Env{Store: e.store}); err != nil {
			e.t.Fatalf("shard %d of %d: %v", i, n, err)
		}
		for _, o := range outputs {
			parts[o.name] = append(parts[o.name], out.Join(o.name).String())
		}
	}
	return parts
}

// merge merges partials into root/name.
func (e *env) merge(name string, parts map[string][]string, params map[string]any) error {
	return step.Execute(context.Background(), validate.Spec(), step.Invocation{OutRoot: e.root.Join(name).String(), Merge: parts, Params: params},
		step.Env{Store: e.store})
}

// sameOutputs checks a merge's outputs against the unsharded run's: the
// same statistics.json, schema.json and anomalies.json, byte for byte, and
// the same report.html.
func (e *env) sameOutputs(label, merged, whole string) {
	e.t.Helper()
	for _, o := range outputs {
		got, want := e.read(merged, o.name, o.file, o.typ), e.read(whole, o.name, o.file, o.typ)
		if !bytes.Equal(got, want) {
			e.t.Errorf("%s: %s differs from the unsharded run's (%d vs %d bytes)%s", label, o.file, len(got), len(want), firstDiff(got, want))
		}
	}
	if got, want := e.read(merged, "statistics", validate.ReportFile, artifacts.TypeStatistics),
		e.read(whole, "statistics", validate.ReportFile, artifacts.TypeStatistics); !bytes.Equal(got, want) {
		e.t.Errorf("%s: report.html differs from the unsharded run's%s", label, firstDiff(got, want))
	}
}

// uniqueCap is stats.Options' default UniqueCap, which validate uses.
const uniqueCap = 100_000

// sameStatistics checks merged statistics against the unsharded ones:
// every feature byte for byte in JSON, but for string features past the
// unique cap, whose counts and average length must be equal, unique
// within 5% (three standard errors of the HLL sketch) and whose top
// values and rank histogram, which depend on the order values were seen
// past the cap, must have the same lengths. It returns those features.
func (e *env) sameStatistics(label, merged, whole string) (pastCap []string) {
	e.t.Helper()
	var got, want stats.DatasetFeatureStatisticsList
	if err := json.Unmarshal(e.read(merged, "statistics", validate.StatisticsFile, artifacts.TypeStatistics), &got); err != nil {
		e.t.Fatal(err)
	}
	if err := json.Unmarshal(e.read(whole, "statistics", validate.StatisticsFile, artifacts.TypeStatistics), &want); err != nil {
		e.t.Fatal(err)
	}
	if len(got.Datasets) != len(want.Datasets) {
		e.t.Fatalf("%s: %d datasets, unsharded %d", label, len(got.Datasets), len(want.Datasets))
	}
	for d, wd := range want.Datasets {
		gd := got.Datasets[d]
		if gd.Name != wd.Name || gd.NumExamples != wd.NumExamples || len(gd.Features) != len(wd.Features) {
			e.t.Errorf("%s: dataset %s of %d examples and %d features, unsharded %s of %d and %d", label,
				gd.Name, gd.NumExamples, len(gd.Features), wd.Name, wd.NumExamples, len(wd.Features))
			continue
		}
		for f, wf := range wd.Features {
			gf := gd.Features[f]
			where := fmt.Sprintf("%s: split %s, feature %s", label, wd.Name, wf.Name())
			if ws := wf.StringStats; ws != nil && ws.Unique > uniqueCap {
				pastCap = append(pastCap, wd.Name+"/"+wf.Name())
				gs := gf.StringStats
				switch {
				case gs == nil:
					e.t.Errorf("%s: no string statistics", where)
				case gs.CommonStats != ws.CommonStats || gs.AvgLength != ws.AvgLength:
					e.t.Errorf("%s: counts %+v, average length %v; unsharded %+v, %v", where, gs.CommonStats, gs.AvgLength, ws.CommonStats, ws.AvgLength)
				case math.Abs(float64(gs.Unique-ws.Unique)) > 0.05*float64(ws.Unique):
					e.t.Errorf("%s: unique %d, unsharded %d: beyond 5%%", where, gs.Unique, ws.Unique)
				case len(gs.TopValues) != len(ws.TopValues) || len(gs.RankHistogram.Buckets) != len(ws.RankHistogram.Buckets):
					e.t.Errorf("%s: %d top values and %d ranks, unsharded %d and %d", where, len(gs.TopValues), len(gs.RankHistogram.Buckets), len(ws.TopValues), len(ws.RankHistogram.Buckets))
				}
				continue
			}
			g, _ := json.Marshal(gf)
			w, _ := json.Marshal(wf)
			if !bytes.Equal(g, w) {
				e.t.Errorf("%s differs from the unsharded run's%s", where, firstDiff(g, w))
			}
		}
	}
	return pastCap
}

// sameVerdict checks a merge's schema and anomalies against the
// unsharded run's, byte for byte.
func (e *env) sameVerdict(label, merged, whole string) {
	e.t.Helper()
	for _, o := range outputs[1:] {
		got, want := e.read(merged, o.name, o.file, o.typ), e.read(whole, o.name, o.file, o.typ)
		if !bytes.Equal(got, want) {
			e.t.Errorf("%s: %s differs from the unsharded run's%s", label, o.file, firstDiff(got, want))
		}
	}
}

// firstDiff shows where two texts first differ.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) && i == len(b) {
		return ""
	}
	lo := max(0, i-200)
	return fmt.Sprintf("; first difference at byte %d:\n got: …%s…\nwant: …%s…", i, a[lo:min(len(a), i+80)], b[lo:min(len(b), i+80)])
}

// TestShardedValidateFlights: validate on flights-3m (3,000,000 rows in
// 13 parts of at most 250,000 over two splits) as 1, 3 and 8 shards,
// merged, writes the unsharded statistics: every number of delay,
// distance, origin and destination equal to the bit (exact counts, min,
// max, mean and std_dev, and the DDSketch median and histograms, which
// merge by adding bucket counts; top values and rank histograms), and the
// same schema and anomalies, byte for byte. date has about 200,000
// distinct values, past the unique cap: its counts are equal, its unique
// within the HLL's bound, its top values depend on the order values came
// past the cap. One shard writes the very same bytes, report included.
// The 8-shard set is given to the merge scrambled.
func TestShardedValidateFlights(t *testing.T) {
	if testing.Short() {
		t.Skip("3 million rows, thirteen times over")
	}
	e := newEnv(t)
	examples := e.importParts("flights", "flights-3m.parquet", 250_000)
	if n := e.parts(examples); n < 9 {
		t.Fatalf("the import made %d parts; the test wants more than 8", n)
	}
	inputs := map[string]string{"examples": examples}
	params := map[string]any{"fail-on": "never"}
	if err := e.validate("whole", inputs, params); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3, 8} {
		parts := e.sharded(fmt.Sprintf("flights-%d", n), inputs, params, n)
		if n == 8 {
			for _, list := range parts {
				slices.Reverse(list)
				list[2], list[5] = list[5], list[2]
			}
		}
		name := fmt.Sprintf("merged-%d", n)
		if err := e.merge(name, parts, params); err != nil {
			t.Fatalf("merge of %d shards: %v", n, err)
		}
		label := fmt.Sprintf("%d shards", n)
		if n == 1 {
			e.sameOutputs(label, name, "whole") // one shard: the same pass
		} else if pastCap := e.sameStatistics(label, name, "whole"); !slices.Equal(pastCap, []string{"train/date", "eval/date"}) {
			t.Errorf("%s: features past the unique cap: %v; the test expects the dates' only", label, pastCap)
		}
		e.sameVerdict(label, name, "whole")
		a, err := e.store.Open(context.Background(), e.root.Join(name).Join("statistics"), artifacts.TypeStatistics)
		if err != nil {
			t.Fatal(err)
		}
		if info, err := artifacts.Property[step.MergeInfo](a.Sidecar, step.PropMerged); err != nil || info.Shards != n || info.Total != e.parts(examples) {
			t.Errorf("%d shards: merged property %+v (%v)", n, info, err)
		}
	}
}

// TestShardedValidatePenguins: penguins in parts of 20 rows. Its eval
// split holds a Sex of "." outside the domain inferred from train: the
// unsharded run gates (exit 3). Sharded 1, 3 and 8 ways, no shard gates
// (each writes partial outputs that say so), and the merge gates with the
// same schema, anomalies and statistics; with --fail-on never it does not.
// Given a schema, baseline and serving statistics, the merge checks drift
// and skew from the shards' copies just as one process does.
func TestShardedValidatePenguins(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	one := e.importFile("examples", testenv.VegaData(t, "penguins.json"), "train=2,eval=1")
	examples := artifactstest.Repart(t, ctx, e.store, artifacts.MustParseURI(one), e.root.Join("reparted"), 20).String()
	if n := e.parts(examples); n < 16 {
		t.Fatalf("%d parts; the test wants more than 8", n)
	}
	inputs := map[string]string{"examples": examples}
	if err := e.validate("whole", inputs, nil); step.ExitCode(err) != step.ExitGate {
		t.Fatalf("unsharded: %v (exit %d), want exit 3", err, step.ExitCode(err))
	}
	for _, n := range []int{1, 3, 8} {
		parts := e.sharded(fmt.Sprintf("p-%d", n), inputs, nil, n)
		for _, o := range outputs[1:] {
			a, err := e.store.Open(ctx, artifacts.MustParseURI(parts[o.name][0]), o.typ)
			if err != nil {
				t.Fatal(err)
			}
			if p, _ := artifacts.Property[bool](a.Sidecar, validate.PropPartial); !p {
				t.Errorf("%d shards: shard 0's %s does not say it is partial", n, o.name)
			}
			if note, err := a.ReadFile(ctx, validate.FilePartialNote); err != nil || !strings.Contains(string(note), `"partial": true`) {
				t.Errorf("%d shards: shard 0's %s note: %s (%v)", n, o.name, note, err)
			}
		}
		name := fmt.Sprintf("merged-%d", n)
		if err := e.merge(name, parts, nil); step.ExitCode(err) != step.ExitGate {
			t.Fatalf("merge of %d shards: %v (exit %d), want exit 3", n, err, step.ExitCode(err))
		}
		e.sameOutputs(fmt.Sprintf("%d shards", n), name, "whole")
		if err := e.merge(name+"-never", parts, map[string]any{"fail-on": "never"}); err != nil {
			t.Errorf("merge of %d shards with --fail-on never: %v", n, err)
		}
	}

	// More shards than parts: the one-part-a-split import in 3 shards
	// leaves shard 0 with no parts at all; it still lists every column.
	if err := e.validate("one", map[string]string{"examples": one}, map[string]any{"fail-on": "never"}); err != nil {
		t.Fatal(err)
	}
	if n := e.parts(one); n != 2 {
		t.Fatalf("the import made %d parts, the test wants 2", n)
	}
	if err := e.merge("one-merged", e.sharded("one", map[string]string{"examples": one}, map[string]any{"fail-on": "never"}, 3), map[string]any{"fail-on": "never"}); err != nil {
		t.Fatal(err)
	}
	e.sameOutputs("2 parts, 3 shards", "one-merged", "one")

	// A given schema, baseline and serving statistics: the merge reads
	// the shards' copies.
	prior := map[string]string{"examples": examples,
		"schema":   e.root.Join("whole").Join("schema").String(),
		"baseline": e.root.Join("whole").Join("statistics").String(),
		"serving":  e.root.Join("whole").Join("statistics").String()}
	params := map[string]any{"fail-on": "never"}
	if err := e.validate("given", prior, params); err != nil {
		t.Fatal(err)
	}
	parts := e.sharded("given", prior, params, 3)
	if err := e.merge("given-merged", parts, params); err != nil {
		t.Fatal(err)
	}
	e.sameOutputs("given inputs, 3 shards", "given-merged", "given")
}

// TestShardedValidateRefusesPartialSet: the merge refuses a set with a
// shard missing, and one mixing two runs' shards.
func TestShardedValidateRefusesPartialSet(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	one := e.importFile("examples", testenv.VegaData(t, "penguins.json"), "train=2,eval=1")
	examples := artifactstest.Repart(t, ctx, e.store, artifacts.MustParseURI(one), e.root.Join("reparted"), 40).String()
	params := map[string]any{"fail-on": "never"}
	parts := e.sharded("a", map[string]string{"examples": examples}, params, 3)
	missing := map[string][]string{}
	for name, list := range parts {
		missing[name] = []string{list[0], list[2]}
	}
	err := e.merge("missing", missing, params)
	if step.ExitCode(err) != step.ExitUsage || !strings.Contains(fmt.Sprint(err), "incomplete set") {
		t.Errorf("merge without shard 1: %v (exit %d), want an incomplete set refused", err, step.ExitCode(err))
	}
	other := e.sharded("b", map[string]string{"examples": examples}, map[string]any{"fail-on": "never", "max-domain-size": int64(5)}, 3)
	mixed := map[string][]string{}
	for name, list := range parts {
		mixed[name] = []string{list[0], other[name][1], list[2]}
	}
	err = e.merge("mixed", mixed, params)
	if step.ExitCode(err) != step.ExitUsage || !strings.Contains(fmt.Sprint(err), "mixed set") {
		t.Errorf("merge of two runs' shards: %v (exit %d), want a mixed set refused", err, step.ExitCode(err))
	}
}
