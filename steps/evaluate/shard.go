package evaluate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/evaluate"
	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/steps/blessing"
	"github.com/mlsteps/mlsteps/steps/step"
)

// Files of a shard's partial Evaluation: the state the merge needs, and
// nothing a person reads (the merged Evaluation has metrics.json).
const (
	// FilePartialState is the partial's small facts (JSON): what was
	// evaluated, the config, the shard's rows and each model's dead-letter
	// counts and inference metrics.
	FilePartialState = "shard/state.json"
	// FilePartialRows is the partial's rows (Parquet, zstd), in split
	// order: the label ("label", a class index, -1 when null; or "target",
	// NaN when null), "weight" when the config weighs examples,
	// "feature:<name>" per slice column (text, evaluate.NullValue for
	// null), and per model ("candidate", then "baseline") "<role>:ok" and
	// "<role>:value:<k>" (class k's score, or the one prediction).
	FilePartialRows = "shard/rows.parquet"
)

// partialFormat versions the partial's layout; the merge refuses others.
const partialFormat = 1

// sharding: evaluate splits the part files of the config's split (of
// examples, or of predictions with --in predictions) across shards. A
// shard reads the truth and runs the models over its parts only, and
// writes that state, every row of it, as a partial Evaluation (and a
// partial Blessing that blesses nothing); the merge concatenates the
// states in shard order into the whole split's and computes, judges and
// writes exactly what one process does: metrics.json with bootstrap
// intervals, report.html and blessing.json are the unsharded run's, byte
// for byte, but for the engine's latencies in inference_metrics and the
// Evaluation's own URI in blessing.json. The gate (exit 3) is the
// merge's: a shard never judges.
func sharding() *step.Sharding {
	return &step.Sharding{By: step.ShardByParts, Input: "examples", Merge: merge}
}

// share is the part files of one split a run reads: all of them, or a
// shard's contiguous share, with the split's row number of its first row.
type share struct {
	a     *artifacts.Artifact
	split string
	files []string
	first int64
}

// planShare lists the split's part files and keeps this shard's share of
// them (all of them when not sharded).
func planShare(ctx context.Context, r *step.Run, a *artifacts.Artifact, input, split string) (share, error) {
	s, err := a.Split(split)
	if err != nil {
		return share{}, step.BadInput(fmt.Errorf("input %s: %w", input, err))
	}
	sh := share{a: a, split: split, files: s.Files}
	shard, ok := r.Shard()
	if !ok {
		return sh, nil
	}
	lo, hi := shard.Range(len(s.Files))
	r.ShardCovers(lo, hi, len(s.Files))
	sh.files = s.Files[lo:hi]
	if lo > 0 && hi > lo {
		// Error messages name rows of the split, and the merge checks the
		// shards follow each other: the rows before this share count.
		counts, err := a.PartRowCounts(ctx, split)
		if err != nil {
			return share{}, fmt.Errorf("input %s: %w", input, err)
		}
		for _, n := range counts[:lo] {
			sh.first += n
		}
	}
	r.Logger().Info("shard", "shard", shard.String(), "split", split, "parts", fmt.Sprintf("[%d, %d) of %d", lo, hi, len(s.Files)), "first_row", sh.first)
	return sh, nil
}

// records streams the share's rows, part after part.
func (s share) records(ctx context.Context, opts artifacts.ReadOptions) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		for _, f := range s.files {
			for rec, err := range s.a.PartRecords(ctx, s.split, f, opts) {
				if !yield(rec, err) || err != nil {
					return
				}
			}
		}
	}
}

// partialState is FilePartialState.
type partialState struct {
	Format       int      `json:"format"`
	Split        string   `json:"split"`
	Config       string   `json:"config"`
	ConfigSource string   `json:"config_source"`
	Classes      []string `json:"classes"`
	Model        subject  `json:"model"`
	Predictions  bool     `json:"predictions,omitempty"`
	Baseline     *subject `json:"baseline,omitempty"`
	// FirstRow is the split's row number of the shard's first row.
	FirstRow   int64          `json:"first_row"`
	Rows       int            `json:"rows"`
	NullLabels int            `json:"null_labels"`
	Weighted   bool           `json:"weighted"`
	Features   []string       `json:"features"`
	Models     []partialModel `json:"models"`
}

// partialModel is one model's answers but for the per-row ones.
type partialModel struct {
	Role    string             `json:"role"`
	ID      string             `json:"id"`
	Width   int                `json:"width"`
	Dead    int                `json:"dead_letters"`
	Reasons map[string]int     `json:"dead_letter_reasons"`
	Metrics map[string]float64 `json:"inference_metrics,omitempty"`
}

// roles names the models of a state in column order.
func (st *state) roles() ([]string, []*answers) {
	if st.base == nil {
		return []string{"candidate"}, []*answers{st.cand}
	}
	return []string{"candidate", "baseline"}, []*answers{st.cand, st.base}
}

// rowSchema is FilePartialRows' schema for a state with these facts.
func rowSchema(classifier, weighted bool, features []string, models []partialModel) *arrow.Schema {
	var fields []arrow.Field
	if classifier {
		fields = append(fields, arrow.Field{Name: "label", Type: arrow.PrimitiveTypes.Int32})
	} else {
		fields = append(fields, arrow.Field{Name: "target", Type: arrow.PrimitiveTypes.Float64})
	}
	if weighted {
		fields = append(fields, arrow.Field{Name: "weight", Type: arrow.PrimitiveTypes.Float64})
	}
	for _, f := range features {
		fields = append(fields, arrow.Field{Name: "feature:" + f, Type: arrow.BinaryTypes.String})
	}
	for _, m := range models {
		fields = append(fields, arrow.Field{Name: m.Role + ":ok", Type: arrow.FixedWidthTypes.Boolean})
		for k := range m.Width {
			fields = append(fields, arrow.Field{Name: fmt.Sprintf("%s:value:%d", m.Role, k), Type: arrow.PrimitiveTypes.Float64})
		}
	}
	return arrow.NewSchema(fields, nil)
}

// partialChunk is the rows per record batch and row group of the rows file.
const partialChunk = 64 * 1024

// writePartial writes a shard's state as its partial Evaluation, and a
// partial Blessing that blesses nothing.
func writePartial(ctx context.Context, r *step.Run, st *state, sh step.Shard, start time.Time) error {
	t := st.t
	ps := partialState{Format: partialFormat, Split: st.cfg.Split, Config: string(st.config), ConfigSource: st.source,
		Classes: st.classes, Model: st.model, Predictions: st.predictions, Baseline: st.baseline,
		FirstRow: t.first, Rows: t.n, NullLabels: t.nullLabels, Weighted: t.weights != nil, Features: slices.Sorted(maps.Keys(t.features))}
	if ps.Features == nil {
		ps.Features = []string{}
	}
	roles, answers := st.roles()
	for i, a := range answers {
		ps.Models = append(ps.Models, partialModel{Role: roles[i], ID: a.id, Width: a.width, Dead: a.dead, Reasons: a.reasons, Metrics: a.metrics})
	}
	w, err := r.Output(ctx, "evaluation")
	if err != nil {
		return err
	}
	if err := w.WriteJSON(ctx, FilePartialState, ps); err != nil {
		return err
	}
	if err := writeRows(ctx, w, st, rowSchema(st.classes != nil, ps.Weighted, ps.Features, ps.Models), ps.Features); err != nil {
		return err
	}
	w.SetProperty("model_id", st.cand.id)
	w.SetProperty("rows", int64(t.n))
	b := blessing.Blessing{Blessed: false, ModelID: st.cand.id, Evaluation: w.URI().String(), Checks: []evaluate.Check{},
		Reason: fmt.Sprintf("shard %s: a partial evaluation of part of the split; the merge judges the whole", sh)}
	if st.predictions {
		b.Predictions = st.model.URI
	} else {
		b.Model, b.ModelDigest = st.model.URI, st.model.Digest
	}
	if st.baseline != nil {
		b.Baseline, b.BaselineDigest = st.baseline.URI, st.baseline.Digest
	}
	bw, err := r.Output(ctx, "blessing")
	if err != nil {
		return err
	}
	if err := blessing.Write(ctx, bw, b); err != nil {
		return err
	}
	r.Logger().Info("evaluated shard", "shard", sh.String(), "model", st.cand.id, "rows", t.n,
		"took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// writeRows writes the state's rows as FilePartialRows.
func writeRows(ctx context.Context, w *artifacts.Writer, st *state, schema *arrow.Schema, features []string) error {
	f, err := w.Create(ctx, FilePartialRows)
	if err != nil {
		return err
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(partialChunk))
	pw, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		f.Close()
		return fmt.Errorf("partial rows: %w", err)
	}
	_, answers := st.roles()
	t := st.t
	mem := memory.DefaultAllocator
	for lo := 0; lo < t.n || lo == 0; lo += partialChunk {
		hi := min(t.n, lo+partialChunk)
		var cols []arrow.Array
		if st.classes != nil {
			labels := make([]int32, hi-lo)
			for i, v := range t.labels[lo:hi] {
				labels[i] = int32(v)
			}
			cols = append(cols, build(array.NewInt32Builder(mem), labels))
		} else {
			cols = append(cols, build(array.NewFloat64Builder(mem), t.targets[lo:hi]))
		}
		if t.weights != nil {
			cols = append(cols, build(array.NewFloat64Builder(mem), t.weights[lo:hi]))
		}
		for _, name := range features {
			cols = append(cols, build(array.NewStringBuilder(mem), t.features[name][lo:hi]))
		}
		for _, a := range answers {
			cols = append(cols, build(array.NewBooleanBuilder(mem), a.ok[lo:hi]))
			for k := range a.width {
				vals := make([]float64, hi-lo)
				for i := range vals {
					vals[i] = a.values[(lo+i)*a.width+k]
				}
				cols = append(cols, build(array.NewFloat64Builder(mem), vals))
			}
		}
		rec := array.NewRecordBatch(schema, cols, int64(hi-lo))
		for _, c := range cols {
			c.Release()
		}
		err := pw.Write(rec)
		rec.Release()
		if err != nil {
			pw.Close()
			return fmt.Errorf("partial rows: %w", err)
		}
		if hi >= t.n {
			break
		}
	}
	// pqarrow's Close also closes the sink, which records the file.
	if err := pw.Close(); err != nil {
		return fmt.Errorf("partial rows: %w", err)
	}
	return nil
}

// build makes one column of vals.
func build[T any, B interface {
	array.Builder
	AppendValues([]T, []bool)
}](b B, vals []T) arrow.Array {
	defer b.Release()
	b.AppendValues(vals, nil)
	return b.NewArray()
}

// readPartial reads one shard's state back.
func readPartial(ctx context.Context, a *artifacts.Artifact) (partialState, *state, error) {
	var ps partialState
	data, err := a.ReadFile(ctx, FilePartialState)
	if err != nil {
		return ps, nil, err
	}
	if err := json.Unmarshal(data, &ps); err != nil {
		return ps, nil, fmt.Errorf("%s: %w", FilePartialState, err)
	}
	if ps.Format != partialFormat {
		return ps, nil, fmt.Errorf("%s: format %d, this build reads format %d", FilePartialState, ps.Format, partialFormat)
	}
	if len(ps.Models) == 0 || len(ps.Models) > 2 {
		return ps, nil, fmt.Errorf("%s: %d models, want the candidate and at most a baseline", FilePartialState, len(ps.Models))
	}
	cfg, err := ParseConfig([]byte(ps.Config), ps.ConfigSource)
	if err != nil {
		return ps, nil, err
	}
	st := &state{cfg: cfg, config: []byte(ps.Config), source: ps.ConfigSource, classes: ps.Classes, model: ps.Model,
		predictions: ps.Predictions, baseline: ps.Baseline,
		t: &truth{n: ps.Rows, first: ps.FirstRow, nullLabels: ps.NullLabels, features: map[string][]string{}}}
	if ps.Classes != nil {
		st.t.labels = make([]int, 0, ps.Rows)
	} else {
		st.t.targets = make([]float64, 0, ps.Rows)
	}
	if ps.Weighted {
		st.t.weights = make([]float64, 0, ps.Rows)
	}
	for _, name := range ps.Features {
		st.t.features[name] = make([]string, 0, ps.Rows)
	}
	var answers []*answers
	for _, m := range ps.Models {
		if m.Width < 1 || (ps.Classes != nil && m.Width != len(ps.Classes)) || (ps.Classes == nil && m.Width != 1) {
			return ps, nil, fmt.Errorf("%s: model %s answers %d values a row, want %d", FilePartialState, m.ID, m.Width, max(1, len(ps.Classes)))
		}
		ans := newAnswers(m, ps.Rows)
		answers = append(answers, ans)
		switch m.Role {
		case "candidate":
			st.cand = ans
		case "baseline":
			st.base = ans
		default:
			return ps, nil, fmt.Errorf("%s: model role %q", FilePartialState, m.Role)
		}
	}
	if st.cand == nil || (st.base != nil) != (ps.Baseline != nil) {
		return ps, nil, fmt.Errorf("%s: the models do not match the candidate and baseline named", FilePartialState)
	}
	want := rowSchema(ps.Classes != nil, ps.Weighted, ps.Features, ps.Models)
	rows, err := a.ReadFile(ctx, FilePartialRows)
	if err != nil {
		return ps, nil, err
	}
	tbl, err := pqarrow.ReadTable(ctx, bytes.NewReader(rows), nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return ps, nil, fmt.Errorf("%s: %w", FilePartialRows, err)
	}
	defer tbl.Release()
	if err := sameColumns(tbl.Schema(), want); err != nil {
		return ps, nil, fmt.Errorf("%s: %w", FilePartialRows, err)
	}
	if tbl.NumRows() != int64(ps.Rows) {
		return ps, nil, fmt.Errorf("%s: %d rows, the state says %d", FilePartialRows, tbl.NumRows(), ps.Rows)
	}
	tr := array.NewTableReader(tbl, partialChunk)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		c := 0
		next := func() arrow.Array { c++; return rec.Column(c - 1) }
		if ps.Classes != nil {
			for _, v := range next().(*array.Int32).Int32Values() {
				if int(v) >= len(ps.Classes) || v < -1 {
					return ps, nil, fmt.Errorf("%s: class index %d of %d classes", FilePartialRows, v, len(ps.Classes))
				}
				st.t.labels = append(st.t.labels, int(v))
			}
		} else {
			st.t.targets = append(st.t.targets, next().(*array.Float64).Float64Values()...)
		}
		if ps.Weighted {
			st.t.weights = append(st.t.weights, next().(*array.Float64).Float64Values()...)
		}
		for _, name := range ps.Features {
			col := next().(*array.String)
			for i := range col.Len() {
				st.t.features[name] = append(st.t.features[name], col.Value(i))
			}
		}
		for _, ans := range answers {
			ok := next().(*array.Boolean)
			for i := range ok.Len() {
				ans.ok = append(ans.ok, ok.Value(i))
			}
			base := len(ans.values)
			ans.values = append(ans.values, make([]float64, int(rec.NumRows())*ans.width)...)
			for k := range ans.width {
				for i, v := range next().(*array.Float64).Float64Values() {
					ans.values[base+i*ans.width+k] = v
				}
			}
		}
	}
	if err := tr.Err(); err != nil {
		return ps, nil, fmt.Errorf("%s: %w", FilePartialRows, err)
	}
	return ps, st, nil
}

// sameColumns checks the rows file has the columns its state implies
// (Parquet adds field ids as metadata, which do not matter here).
func sameColumns(got, want *arrow.Schema) error {
	if got.NumFields() != want.NumFields() {
		return fmt.Errorf("%d columns, want %d (%s)", got.NumFields(), want.NumFields(), columnList(want))
	}
	for i, f := range want.Fields() {
		if g := got.Field(i); g.Name != f.Name || !arrow.TypeEqual(g.Type, f.Type) {
			return fmt.Errorf("column %d is %q %s, want %q %s", i, g.Name, g.Type, f.Name, f.Type)
		}
	}
	return nil
}

func newAnswers(m partialModel, rows int) *answers {
	reasons := maps.Clone(m.Reasons)
	if reasons == nil {
		reasons = map[string]int{}
	}
	return &answers{id: m.ID, width: m.Width, dead: m.Dead, reasons: reasons, metrics: m.Metrics,
		ok: make([]bool, 0, rows), values: make([]float64, 0, rows*m.Width)}
}

// merge writes the Evaluation and Blessing of the whole split from the
// shards' partial states, in shard order, and applies the gate once.
func merge(ctx context.Context, r *step.Run) error {
	start := time.Now()
	var (
		whole *state
		first partialState
		rows  int64
	)
	for i, a := range r.Partials("evaluation") {
		ps, st, err := readPartial(ctx, a)
		if err != nil {
			return step.BadInput(fmt.Errorf("merge: shard %d's partial evaluation %s: %w", i, artifacts.Redact(a.Location().String()), err))
		}
		if ps.Rows > 0 && ps.FirstRow != rows {
			return step.BadInput(fmt.Errorf("merge: shard %d starts at row %d of split %s, but the shards before it hold %d rows", i, ps.FirstRow, ps.Split, rows))
		}
		rows += int64(ps.Rows)
		if i == 0 {
			whole, first = st, ps
			continue
		}
		if err := sameRun(first, ps); err != nil {
			return step.BadInput(fmt.Errorf("merge: shard %d: %w", i, err))
		}
		whole.append(st)
	}
	if given := r.String("config"); given != "" {
		data, _, err := readConfig(ctx, r)
		if err != nil {
			return err
		}
		if string(data) != first.Config {
			return step.BadInput(errors.New("merge: --config differs from the config the shards evaluated with; give the same config or none"))
		}
	}
	r.Logger().Info("merging", "shards", len(r.Partials("evaluation")), "rows", whole.t.n, "read", time.Since(start).Round(time.Millisecond).String())
	return finish(ctx, r, whole, start)
}

// sameRun refuses a partial that evaluated something else than the
// first: the harness's plan already ties the partials to one run, so this
// guards the state's own consistency.
func sameRun(a, b partialState) error {
	switch {
	case a.Split != b.Split:
		return fmt.Errorf("evaluated split %s, shard 0 split %s", b.Split, a.Split)
	case a.Config != b.Config:
		return errors.New("evaluated with another config than shard 0")
	case !slices.Equal(a.Classes, b.Classes):
		return fmt.Errorf("classes %v, shard 0's %v", b.Classes, a.Classes)
	case a.Model != b.Model || a.Predictions != b.Predictions:
		return fmt.Errorf("evaluated %s, shard 0 %s", b.Model.URI, a.Model.URI)
	case (a.Baseline == nil) != (b.Baseline == nil) || (a.Baseline != nil && *a.Baseline != *b.Baseline):
		return errors.New("compared with another baseline than shard 0")
	case a.Weighted != b.Weighted || !slices.Equal(a.Features, b.Features):
		return fmt.Errorf("read weights %v and slice columns %v, shard 0 %v and %v", b.Weighted, b.Features, a.Weighted, a.Features)
	}
	for k, m := range b.Models {
		if m.ID != a.Models[k].ID || m.Role != a.Models[k].Role {
			return fmt.Errorf("model %s (%s), shard 0's %s (%s)", m.ID, m.Role, a.Models[k].ID, a.Models[k].Role)
		}
	}
	return nil
}

// append puts o's rows after st's: truth, answers, dead letters and
// inference metrics.
func (st *state) append(o *state) {
	t, u := st.t, o.t
	t.n += u.n
	t.nullLabels += u.nullLabels
	t.labels = append(t.labels, u.labels...)
	t.targets = append(t.targets, u.targets...)
	if t.weights != nil {
		t.weights = append(t.weights, u.weights...)
	}
	for name, vals := range u.features {
		t.features[name] = append(t.features[name], vals...)
	}
	_, mine := st.roles()
	_, theirs := o.roles()
	for k, a := range mine {
		b := theirs[k]
		a.ok = append(a.ok, b.ok...)
		a.values = append(a.values, b.values...)
		a.dead += b.dead
		for reason, n := range b.reasons {
			a.reasons[reason] += n
		}
		a.metrics = mergeMetrics(a.metrics, b.metrics)
	}
}

// mergeMetrics combines two shards' engine metrics.
func mergeMetrics(a, b map[string]float64) map[string]float64 { return inference.MergeValues(a, b) }
