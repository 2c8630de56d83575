package inference

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Stage is one model of a cascade, with its pre- and post-processing
// (Beam's with_preprocess_fn and with_postprocess_fn).
type Stage struct {
	Handler ModelHandler
	// Escalate picks the rows this stage answers from the previous stage's
	// answers (nil: every row). Rows it leaves keep the earlier answer, so
	// an escalating stage must answer with the same columns as the stage
	// before it. The first stage's Escalate is not called.
	Escalate func(prev arrow.RecordBatch) ([]bool, error)
	// Pre builds the stage's input from the example rows and the previous
	// stage's answers for them (nil for the first stage). nil: the
	// example's columns with the previous answers' columns added, an
	// answer column replacing an example column of the same name.
	Pre func(example, prev arrow.RecordBatch) (arrow.RecordBatch, error)
	// Post rewrites the stage's output, seeing its input too (nil: as is).
	// It returns a new record with one row per input row.
	Post func(in, out arrow.RecordBatch) (arrow.RecordBatch, error)
}

// CascadeHandler runs models one after another, Beam's cascade pattern:
// each stage reads the example and the previous stage's answer. With
// Escalate a stage answers only some rows, such as those a cheap first
// model is unsure of (see TopScoreBelow); without it the stage consumes
// every row of the previous answer, as a ranking model consumes a
// candidate generator's output. The result holds, per row, the answer of
// the last stage that took the row, and a "model_id" column naming the
// model that gave it. A single stage is a model with hooks.
type CascadeHandler struct {
	ID     string // "cascade" when empty
	Stages []Stage
}

// ModelID implements ModelHandler.
func (h *CascadeHandler) ModelID() string {
	if h.ID == "" {
		return "cascade"
	}
	return h.ID
}

// BatchSizes implements ModelHandler: the first stage's preference.
func (h *CascadeHandler) BatchSizes() (int, int) {
	if len(h.Stages) == 0 {
		return 0, 0
	}
	return h.Stages[0].Handler.BatchSizes()
}

type cascadeModel struct {
	modelList
	stages  []Stage
	metrics *Metrics
}

// Load implements ModelHandler, loading every stage's model.
func (h *CascadeHandler) Load(ctx context.Context, m *Metrics) (Model, error) {
	if len(h.Stages) == 0 {
		return nil, errors.New("cascade: no stages")
	}
	cm := &cascadeModel{stages: h.Stages, metrics: m}
	for i, st := range h.Stages {
		if st.Handler == nil {
			cm.Close()
			return nil, fmt.Errorf("cascade stage %d: no handler", i+1)
		}
		model, err := load(ctx, st.Handler, m)
		if err != nil {
			cm.Close()
			return nil, fmt.Errorf("cascade stage %d: load model %s: %w", i+1, st.Handler.ModelID(), err)
		}
		cm.modelList = append(cm.modelList, model)
	}
	return cm, nil
}

// modelList is the loaded models of a composite handler.
type modelList []Model

// ByteSize is the models' total size.
func (ms modelList) ByteSize() int64 {
	var n int64
	for _, m := range ms {
		n += m.ByteSize()
	}
	return n
}

// Close closes every model.
func (ms modelList) Close() error {
	var errs []error
	for _, m := range ms {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}

// Run implements Model.
func (cm *cascadeModel) Run(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	n := int(batch.NumRows())
	var (
		answer arrow.RecordBatch // the current answer for every row
		ids    = make([]string, n)
		done   []func() // batch metrics, recorded once the whole batch succeeds
	)
	defer func() {
		if answer != nil {
			answer.Release()
		}
	}()
	for si, st := range cm.stages {
		id := st.Handler.ModelID()
		var rows []int // nil: every row
		if si > 0 && st.Escalate != nil {
			pick, err := st.Escalate(answer)
			if err != nil {
				return nil, fmt.Errorf("cascade stage %d (%s): escalate: %w", si+1, id, err)
			}
			if len(pick) != n {
				return nil, fmt.Errorf("cascade stage %d (%s): escalate picked from %d rows of %d", si+1, id, len(pick), n)
			}
			for r, p := range pick {
				if p {
					rows = append(rows, r)
				}
			}
			if len(rows) == 0 {
				continue
			}
			if len(rows) == n {
				rows = nil
			}
		}
		out, took, err := cm.runStage(ctx, si, batch, answer, rows)
		var bad *BadRowsError
		if errors.As(err, &bad) && rows != nil {
			for i := range bad.Rows {
				bad.Rows[i].Row = rows[bad.Rows[i].Row]
			}
		}
		if err != nil {
			if bad == nil {
				cm.metrics.Failed(id)
			}
			return nil, err
		}
		k := n
		if rows != nil {
			k = len(rows)
		}
		done = append(done, func() { cm.metrics.Batch(id, k, took) })
		stageIDs := columnStrings(out, "model_id")
		out = dropColumns(out, "model_id")
		if rows == nil {
			if answer != nil {
				answer.Release()
			}
			answer = out
			for r := range ids {
				ids[r] = pick(stageIDs, r, id)
			}
			continue
		}
		merged, err := replaceRows(ctx, answer, out, rows)
		out.Release()
		if err != nil {
			return nil, fmt.Errorf("cascade stage %d (%s) answers with other columns than the stage before: %w", si+1, id, err)
		}
		answer.Release()
		answer = merged
		for i, r := range rows {
			ids[r] = pick(stageIDs, i, id)
		}
	}
	for _, f := range done {
		f()
	}
	return withStrings(answer, "model_id", ids), nil
}

// runStage runs one stage on the rows (nil: all) of the batch.
func (cm *cascadeModel) runStage(ctx context.Context, si int, batch, answer arrow.RecordBatch, rows []int) (arrow.RecordBatch, time.Duration, error) {
	st := cm.stages[si]
	id := st.Handler.ModelID()
	example, prev := batch, answer
	if rows != nil {
		var err error
		if example, err = take(ctx, batch, rows); err != nil {
			return nil, 0, err
		}
		defer example.Release()
		if prev, err = take(ctx, answer, rows); err != nil {
			return nil, 0, err
		}
		defer prev.Release()
	}
	pre := st.Pre
	if pre == nil {
		pre = mergeColumns
	}
	in, err := pre(example, prev)
	if err != nil {
		return nil, 0, fmt.Errorf("cascade stage %d (%s): preprocess: %w", si+1, id, err)
	}
	defer in.Release()
	if in.NumRows() != example.NumRows() {
		return nil, 0, fmt.Errorf("cascade stage %d (%s): preprocess made %d rows of %d", si+1, id, in.NumRows(), example.NumRows())
	}
	start := time.Now()
	out, err := cm.modelList[si].Run(ctx, in)
	took := time.Since(start)
	if err != nil {
		var bad *BadRowsError
		if errors.As(err, &bad) {
			for i := range bad.Rows {
				bad.Rows[i].Reason = id + ": " + bad.Rows[i].Reason
			}
			return nil, took, bad
		}
		return nil, took, fmt.Errorf("cascade stage %d (%s): %w", si+1, id, err)
	}
	if st.Post != nil {
		post, err := st.Post(in, out)
		out.Release()
		if err != nil {
			return nil, took, fmt.Errorf("cascade stage %d (%s): postprocess: %w", si+1, id, err)
		}
		out = post
	}
	if out.NumRows() != in.NumRows() {
		out.Release()
		return nil, took, fmt.Errorf("cascade stage %d (%s): %d rows out for %d in", si+1, id, out.NumRows(), in.NumRows())
	}
	return out, took, nil
}

// mergeColumns is the default Pre: the example's columns, then the
// previous answer's (without its model_id and arm), an answer column
// replacing an example column of the same name.
func mergeColumns(example, prev arrow.RecordBatch) (arrow.RecordBatch, error) {
	var (
		fields []arrow.Field
		cols   []arrow.Array
	)
	answered := map[string]bool{}
	if prev != nil {
		for _, f := range prev.Schema().Fields() {
			answered[f.Name] = f.Name != "model_id" && f.Name != "arm"
		}
	}
	for i, f := range example.Schema().Fields() {
		if !answered[f.Name] {
			fields = append(fields, f)
			cols = append(cols, example.Column(i))
		}
	}
	if prev != nil {
		for i, f := range prev.Schema().Fields() {
			if answered[f.Name] {
				fields = append(fields, f)
				cols = append(cols, prev.Column(i))
			}
		}
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, example.NumRows()), nil
}

// replaceRows returns answer with its rows at rows replaced by out's rows.
func replaceRows(ctx context.Context, answer, out arrow.RecordBatch, rows []int) (arrow.RecordBatch, error) {
	both, err := concat([]arrow.RecordBatch{answer, out})
	if err != nil {
		return nil, err
	}
	defer both.Release()
	n := int(answer.NumRows())
	idx := make([]int, n)
	for r := range idx {
		idx[r] = r
	}
	for i, r := range rows {
		idx[r] = n + i
	}
	return take(ctx, both, idx)
}

// columnStrings returns a string column's values, nil when rec has none.
func columnStrings(rec arrow.RecordBatch, name string) []string {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil
	}
	col := rec.Column(idx[0])
	out := make([]string, col.Len())
	for i := range out {
		out[i], _ = stringAt(col, i)
	}
	return out
}

func pick(vals []string, i int, def string) string {
	if vals != nil && vals[i] != "" {
		return vals[i]
	}
	return def
}

// dropColumns returns rec without the named columns, releasing rec.
func dropColumns(rec arrow.RecordBatch, names ...string) arrow.RecordBatch {
	var (
		fields []arrow.Field
		cols   []arrow.Array
	)
	for i, f := range rec.Schema().Fields() {
		drop := false
		for _, n := range names {
			drop = drop || f.Name == n
		}
		if !drop {
			fields = append(fields, f)
			cols = append(cols, rec.Column(i))
		}
	}
	if len(fields) == int(rec.NumCols()) {
		return rec
	}
	out := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, rec.NumRows())
	rec.Release()
	return out
}

// TopScoreBelow escalates rows whose highest "score_<class>" value is
// below threshold: the classic cascade, where a cheap model answers what
// it is sure of and a bigger one the rest.
func TopScoreBelow(threshold float64) func(prev arrow.RecordBatch) ([]bool, error) {
	return func(prev arrow.RecordBatch) ([]bool, error) {
		var scores []*array.Float32
		for i, f := range prev.Schema().Fields() {
			if strings.HasPrefix(f.Name, "score_") {
				c, ok := prev.Column(i).(*array.Float32)
				if !ok {
					return nil, fmt.Errorf("column %q is %s, not float32", f.Name, f.Type)
				}
				scores = append(scores, c)
			}
		}
		if len(scores) == 0 {
			return nil, errors.New("no score_<class> columns to judge confidence by: the previous model is not a classifier")
		}
		out := make([]bool, prev.NumRows())
		for r := range out {
			top := float32(-1)
			for _, c := range scores {
				if c.IsValid(r) {
					top = max(top, c.Value(r))
				}
			}
			out[r] = float64(top) < threshold
		}
		return out, nil
	}
}
