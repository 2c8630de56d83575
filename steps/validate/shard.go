package validate

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/stats"
	"github.com/mlsteps/mlsteps/components/validation"
	"github.com/mlsteps/mlsteps/steps/step"
)

// Files of a shard's partial outputs: the state the merge needs, nothing a
// person reads (the merged Statistics have statistics.json).
const (
	// FilePartialState (JSON, partialState) lists the splits and columns
	// of the partial Statistics and what the shard was given.
	FilePartialState = "shard/state.json"
	// FilePartialSplit is, per split (by its index in the state), the
	// columns' statistics states in column order: each a uvarint length
	// and a stats.Accumulator's MarshalBinary encoding.
	FilePartialSplit = "shard/split-%04d.bin"
	// FilePartialSchema and FilePartialBaseline, FilePartialServing are
	// copies of the schema and statistics the shard was given (the merge
	// takes no inputs but the partials).
	FilePartialSchema   = "shard/schema.json"
	FilePartialBaseline = "shard/baseline.json"
	FilePartialServing  = "shard/serving.json"
	// FilePartialNote is what the partial Schema and Anomalies hold: a
	// note that they are partial (the merge infers and checks the whole).
	FilePartialNote = "shard/partial.json"
)

// partialFormat versions the partial's layout; the merge refuses others.
const partialFormat = 1

// PropPartial is true on a shard's partial outputs.
const PropPartial = "partial"

// sharding: validate splits the part files of its examples (over every
// split, in order) across shards. A shard runs the statistics pass over
// its share and writes, per split and column, the mergeable statistics
// state (exact counts and per-batch moments, DDSketch buckets, the
// distinct values with their counts, the HLL sketch past the cap) in its
// partial Statistics; its partial Schema and Anomalies only say they are
// partial. The merge folds the states in shard order and then runs what
// one process runs after its pass (finish): schema inference or the given
// schema, anomalies, drift and skew, report.html, and the gate (exit 3
// with --fail-on) for the whole; a shard never judges.
//
// Every statistic is bit-identical to the unsharded run's while string
// features stay within the unique cap (100,000 distinct values): counts,
// min and max, moments (folded in a canonical order of per-batch groups,
// and batches never span row groups), and the sketch-derived median,
// histograms and quantiles (DDSketch merges by adding bucket counts).
// Past the cap, unique is an HLL estimate either way, and which values
// keep exact counts depends on the order rows are seen, so a feature's
// top values and rank histogram may differ, as they may between lanes
// of one process.
func sharding() *step.Sharding {
	return &step.Sharding{By: step.ShardByParts, Input: "examples", Merge: merge}
}

// partialState is FilePartialState.
type partialState struct {
	Format int            `json:"format"`
	Shard  string         `json:"shard"`
	Splits []partialSplit `json:"splits"`
	// SchemaGiven says the shard was given a schema (FilePartialSchema);
	// SchemaSource names it in errors.
	SchemaGiven  bool   `json:"schema_given"`
	SchemaSource string `json:"schema_source,omitempty"`
	Baseline     bool   `json:"baseline"`
	Serving      bool   `json:"serving"`
	// Examples is the examples' URI, for error messages.
	Examples string `json:"examples"`
}

// partialSplit is one split's share.
type partialSplit struct {
	Name    string   `json:"name"`
	Parts   int      `json:"parts"`
	Rows    int64    `json:"rows"`
	Columns []string `json:"columns"`
}

// runShard runs the statistics pass over this shard's share of the part
// files and writes the partial outputs.
func runShard(ctx context.Context, r *step.Run, examples *artifacts.Artifact, splits []artifacts.Split, in given, workers int, sh step.Shard) error {
	start := time.Now()
	total := 0
	for _, sp := range splits {
		total += len(sp.Files)
	}
	lo, hi := sh.Range(total)
	r.ShardCovers(lo, hi, total)
	r.Logger().Info("shard", "shard", sh.String(), "parts", fmt.Sprintf("[%d, %d) of %d", lo, hi, total))

	w, err := r.Output(ctx, "statistics")
	if err != nil {
		return err
	}
	ps := partialState{Format: partialFormat, Shard: sh.String(), SchemaGiven: in.schema != nil,
		Baseline: in.baseline != nil, Serving: in.serving != nil, Examples: examples.URI}
	if in.schema != nil {
		ps.SchemaSource = schemaSource(r)
	}
	counts := map[string]int64{}
	first := 0 // index of the split's first part among all parts
	for k, sp := range splits {
		a, b := max(lo, first)-first, min(hi, first+len(sp.Files))-first
		first += len(sp.Files)
		var files []string
		if a < b {
			files = sp.Files[a:b]
		}
		cols, err := splitColumns(ctx, examples, files, workers, stats.Options{})
		if err != nil {
			return err
		}
		psplit := partialSplit{Name: sp.Name, Parts: len(files), Columns: []string{}}
		var buf []byte
		for _, c := range cols {
			enc, err := c.MarshalBinary()
			if err != nil {
				return fmt.Errorf("split %s: %w", sp.Name, err)
			}
			buf = binary.AppendUvarint(buf, uint64(len(enc)))
			buf = append(buf, enc...)
			psplit.Columns = append(psplit.Columns, c.Columns()...)
		}
		if len(cols) > 0 {
			psplit.Rows = cols[0].Rows()
		}
		if err := w.WriteFile(ctx, fmt.Sprintf(FilePartialSplit, k), buf); err != nil {
			return err
		}
		counts[sp.Name] = psplit.Rows
		ps.Splits = append(ps.Splits, psplit)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{FilePartialSchema, in.schemaRaw}, {FilePartialBaseline, in.baselineRaw}, {FilePartialServing, in.servingRaw}} {
		if f.data != nil {
			if err := w.WriteFile(ctx, f.name, f.data); err != nil {
				return err
			}
		}
	}
	if err := w.WriteJSON(ctx, FilePartialState, ps); err != nil {
		return err
	}
	w.SetProperty("num_examples", counts)
	w.SetProperty(PropPartial, true)
	note := map[string]any{"partial": true, "shard": sh.String(),
		"note": fmt.Sprintf("shard %s of validate: statistics of part files [%d, %d) of %d; the merge infers or applies the schema and finds anomalies for the whole", sh, lo, hi, total)}
	for _, name := range []string{"schema", "anomalies"} {
		o, err := r.Output(ctx, name)
		if err != nil {
			return err
		}
		if err := o.WriteJSON(ctx, FilePartialNote, note); err != nil {
			return err
		}
		o.SetProperty(PropPartial, true)
	}
	r.Logger().Info("statistics of shard", "shard", sh.String(), "examples", counts, "seconds", time.Since(start).Seconds())
	return nil
}

// schemaSource names the given schema in errors.
func schemaSource(r *step.Run) string {
	if file := r.String("schema-file"); file != "" {
		return artifacts.Redact(file)
	}
	if a := r.Input("schema"); a != nil {
		return a.URI + "/" + SchemaFile
	}
	return ""
}

// merge folds the shards' statistics states, split by split and column by
// column in shard order, and finishes as one process does.
func merge(ctx context.Context, r *step.Run) error {
	start := time.Now()
	parts := r.Partials("statistics")
	states := make([]partialState, len(parts))
	for i, a := range parts {
		ps, err := readPartialState(ctx, a)
		if err != nil {
			return step.BadInput(fmt.Errorf("merge: shard %d's partial statistics %s: %w", i, artifacts.Redact(a.Location().String()), err))
		}
		if i > 0 {
			if err := sameShape(states[0], ps); err != nil {
				return step.BadInput(fmt.Errorf("merge: shard %d: %w", i, err))
			}
		}
		states[i] = ps
	}
	first := states[0]
	in, err := readGivenCopies(ctx, parts[0], first)
	if err != nil {
		return step.BadInput(fmt.Errorf("merge: shard 0's partial statistics: %w", err))
	}
	if r.String("schema-file") != "" {
		data, err := readSchemaFile(ctx, r)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, in.schemaRaw) {
			return step.BadInput(errors.New("merge: --schema-file differs from the schema the shards were given; give the same file"))
		}
	}
	workers := int(r.Int("workers"))
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	list := &stats.DatasetFeatureStatisticsList{}
	for k, sp := range first.Splits {
		blobs := make([][][]byte, len(parts)) // shard, column
		for i, a := range parts {
			data, err := a.ReadFile(ctx, fmt.Sprintf(FilePartialSplit, k))
			if err != nil {
				return step.BadInput(fmt.Errorf("merge: shard %d: %w", i, err))
			}
			if blobs[i], err = splitBlobs(data, len(sp.Columns)); err != nil {
				return step.BadInput(fmt.Errorf("merge: shard %d, split %s: %w", i, sp.Name, err))
			}
		}
		cols := make([]*stats.Accumulator, len(sp.Columns))
		errs := make([]error, len(sp.Columns))
		parallel(workers, len(cols), func(c int) {
			for i := range parts {
				acc := &stats.Accumulator{}
				if err := acc.UnmarshalBinary(blobs[i][c]); err != nil {
					errs[c] = fmt.Errorf("shard %d, split %s, column %q: %w", i, sp.Name, sp.Columns[c], err)
					return
				}
				if got := acc.Columns(); len(got) != 1 || got[0] != sp.Columns[c] {
					errs[c] = fmt.Errorf("shard %d, split %s: state of columns %q where %q belongs", i, sp.Name, got, sp.Columns[c])
					return
				}
				if i == 0 {
					cols[c] = acc
				} else if err := cols[c].Merge(acc); err != nil {
					errs[c] = fmt.Errorf("shard %d, split %s: %w", i, sp.Name, err)
					return
				}
			}
		})
		if err := errors.Join(errs...); err != nil {
			return step.BadInput(fmt.Errorf("merge: %w", err))
		}
		ds, err := columnsResult(sp.Name, cols, workers)
		if err != nil {
			return step.BadInput(fmt.Errorf("merge: split %s: %w", sp.Name, err))
		}
		list.Datasets = append(list.Datasets, ds)
	}
	r.Logger().Info("merged statistics", "shards", len(parts), "splits", len(list.Datasets), "seconds", time.Since(start).Seconds())
	var upstream []artifacts.Input
	for _, name := range inputNames {
		for _, in := range parts[0].Inputs {
			if in.Name == name {
				upstream = append(upstream, in)
			}
		}
	}
	return finish(ctx, r, list, in, first.Examples, upstream)
}

// readPartialState reads and checks one partial's FilePartialState.
func readPartialState(ctx context.Context, a *artifacts.Artifact) (partialState, error) {
	var ps partialState
	data, err := a.ReadFile(ctx, FilePartialState)
	if err != nil {
		return ps, err
	}
	if err := json.Unmarshal(data, &ps); err != nil {
		return ps, fmt.Errorf("%s: %w", FilePartialState, err)
	}
	if ps.Format != partialFormat {
		return ps, fmt.Errorf("%s: format %d, this build reads format %d", FilePartialState, ps.Format, partialFormat)
	}
	if len(ps.Splits) == 0 {
		return ps, fmt.Errorf("%s: no splits", FilePartialState)
	}
	return ps, nil
}

// sameShape refuses a partial of other splits, columns or given inputs
// than shard 0's: the harness's plan already ties the partials to one
// run, so this guards the states' own consistency.
func sameShape(a, b partialState) error {
	if a.SchemaGiven != b.SchemaGiven || a.Baseline != b.Baseline || a.Serving != b.Serving {
		return errors.New("was given another schema, baseline or serving statistics than shard 0")
	}
	if len(a.Splits) != len(b.Splits) {
		return fmt.Errorf("%d splits, shard 0 %d", len(b.Splits), len(a.Splits))
	}
	for k := range a.Splits {
		x, y := a.Splits[k], b.Splits[k]
		if x.Name != y.Name || !slices.Equal(x.Columns, y.Columns) {
			return fmt.Errorf("split %d is %s with columns %q, shard 0's %s with %q", k, y.Name, y.Columns, x.Name, x.Columns)
		}
	}
	return nil
}

// readGivenCopies reads back the schema and statistics a shard was given.
func readGivenCopies(ctx context.Context, a *artifacts.Artifact, ps partialState) (given, error) {
	var in given
	var err error
	if ps.SchemaGiven {
		if in.schemaRaw, err = a.ReadFile(ctx, FilePartialSchema); err != nil {
			return in, err
		}
		if in.schema, err = validation.ParseSchema(in.schemaRaw, ps.SchemaSource); err != nil {
			return in, err
		}
	}
	if ps.Baseline {
		if in.baselineRaw, err = a.ReadFile(ctx, FilePartialBaseline); err != nil {
			return in, err
		}
		if in.baseline, err = parseStatistics(in.baselineRaw, ps.Examples+" baseline copy", "baseline"); err != nil {
			return in, err
		}
	}
	if ps.Serving {
		if in.servingRaw, err = a.ReadFile(ctx, FilePartialServing); err != nil {
			return in, err
		}
		if in.serving, err = parseStatistics(in.servingRaw, ps.Examples+" serving copy", "serving"); err != nil {
			return in, err
		}
	}
	return in, nil
}

// splitBlobs cuts a FilePartialSplit into its n column states.
func splitBlobs(data []byte, n int) ([][]byte, error) {
	out := make([][]byte, 0, n)
	for len(data) > 0 {
		size, k := binary.Uvarint(data)
		if k <= 0 || size > uint64(len(data)-k) {
			return nil, fmt.Errorf("column state %d: truncated", len(out))
		}
		out = append(out, data[k:k+int(size)])
		data = data[k+int(size):]
	}
	if len(out) != n {
		return nil, fmt.Errorf("%d column states, the state lists %d columns", len(out), n)
	}
	return out, nil
}
