package deploy

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
)

// canaryRows reads the first n rows of split (the first split when empty)
// of examples that have every column the model reads, only those columns.
// Rows with a null are skipped (and counted): the V2 protocol has no null,
// so they cannot be sent to a server at all.
func canaryRows(ctx context.Context, examples *artifacts.Artifact, split string, cols []string, n int) ([]arrow.RecordBatch, int, error) {
	if split == "" {
		splits, err := examples.Splits()
		if err != nil || len(splits) == 0 {
			return nil, 0, step.BadInput(fmt.Errorf("input examples: no splits: %v", err))
		}
		split = splits[0].Name
	}
	schema, err := examples.DatasetSchema(ctx)
	if err != nil {
		return nil, 0, step.BadInput(fmt.Errorf("input examples: %w", err))
	}
	for _, c := range cols {
		if len(schema.FieldIndices(c)) == 0 {
			return nil, 0, step.BadInput(fmt.Errorf("input examples %s: no column %q, which the model reads (it has %s)", examples.Location(), c, fieldNames(schema)))
		}
	}
	var (
		out     []arrow.RecordBatch
		skipped int
		left    = int64(n)
	)
	for rec, err := range examples.Records(ctx, split, artifacts.ReadOptions{Columns: cols, BatchSize: 1024}) {
		if err != nil {
			release(out)
			return nil, 0, step.BadInput(fmt.Errorf("input examples split %s: %w", split, err))
		}
		// Runs of whole rows, as slices of rec.
		for i, rows := int64(0), rec.NumRows(); i < rows && left > 0; {
			if hasNull(rec, int(i)) {
				skipped++
				i++
				continue
			}
			j := i
			for j < rows && j-i < left && !hasNull(rec, int(j)) {
				j++
			}
			out = append(out, rec.NewSlice(i, j))
			left -= j - i
			i = j
		}
		if left == 0 {
			break
		}
	}
	if len(out) == 0 {
		return nil, skipped, step.BadInput(fmt.Errorf("input examples split %s has no row with every column the model reads (%d with a null)", split, skipped))
	}
	return out, skipped, nil
}

func hasNull(rec arrow.RecordBatch, i int) bool {
	for _, col := range rec.Columns() {
		if col.IsNull(i) {
			return true
		}
	}
	return false
}

// syntheticRows is n rows of zeros (empty strings for string inputs), for
// a model deployed without examples: they prove it loads and answers.
func syntheticRows(m *model.Model, n int) []arrow.RecordBatch {
	var (
		fields []arrow.Field
		cols   []arrow.Array
	)
	for _, in := range m.Sig.Inputs {
		names, ok := m.Meta.Features[in.Name]
		if !ok {
			names = []string{in.Name}
		}
		for _, name := range names {
			var col arrow.Array
			switch in.Type {
			case "tensor(string)":
				b := array.NewStringBuilder(memory.DefaultAllocator)
				for range n {
					b.Append("")
				}
				col = b.NewArray()
			case "tensor(int64)":
				b := array.NewInt64Builder(memory.DefaultAllocator)
				b.AppendValues(make([]int64, n), nil)
				col = b.NewArray()
			default:
				b := array.NewFloat64Builder(memory.DefaultAllocator)
				b.AppendValues(make([]float64, n), nil)
				col = b.NewArray()
			}
			fields = append(fields, arrow.Field{Name: name, Type: col.DataType()})
			cols = append(cols, col)
		}
	}
	return []arrow.RecordBatch{array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n))}
}

func release(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

func fieldNames(s *arrow.Schema) string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = fmt.Sprintf("%q", f.Name)
	}
	return strings.Join(names, ", ")
}

// answers are one handler's answers to the canaries, by row position:
// each answered row's output values by column, each refused row's reason.
type answers struct {
	rows    map[int64]map[string]any // float64, int64 or string values
	refused map[int64]string
	columns []string
}

// collect runs h over the canaries.
func collect(ctx context.Context, h inference.ModelHandler, canary []arrow.RecordBatch) (*answers, error) {
	eng := inference.New(h, inference.Options{MaxBatch: 64})
	defer eng.Close()
	a := &answers{rows: map[int64]map[string]any{}, refused: map[int64]string{}}
	src := func(yield func(arrow.RecordBatch, error) bool) {
		for _, rec := range canary {
			if !yield(rec, nil) {
				return
			}
		}
	}
	_, err := eng.Run(ctx, src, inference.Sink{
		Result: func(r inference.Result) error {
			if a.columns == nil {
				for _, f := range r.Inference.Schema().Fields() {
					a.columns = append(a.columns, f.Name)
				}
			}
			for i, pos := range r.Rows {
				row := map[string]any{}
				for j, col := range r.Inference.Columns() {
					row[r.Inference.ColumnName(j)] = value(col, i)
				}
				a.rows[pos] = row
			}
			return nil
		},
		DeadLetter: func(d inference.DeadLetter) error {
			for _, pos := range d.Rows {
				a.refused[pos] = d.Reason
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// value reads one cell as float64, int64 or string (nil when null).
func value(col arrow.Array, i int) any {
	if col.IsNull(i) {
		return nil
	}
	switch c := col.(type) {
	case *array.Float32:
		return float64(c.Value(i))
	case *array.Float64:
		return c.Value(i)
	case *array.Int64:
		return c.Value(i)
	case *array.String:
		return c.Value(i)
	}
	return col.ValueStr(i)
}

// compare checks the served answers against the in-process ones: the same
// rows answered, the same columns, numbers within tol (relative to the
// value, absolute below 1), everything else equal. It fills rep's counts.
func compare(want, got *answers, tol float64, rep *InfraReport) error {
	rep.Columns = want.columns
	if len(want.rows) == 0 {
		return refusef("the in-process engine answered none of the %d canary rows (%s)", len(want.refused), firstReason(want.refused))
	}
	if !slices.Equal(want.columns, got.columns) && len(got.rows) > 0 {
		return refusef("the served model answers with columns %v, the in-process engine with %v", got.columns, want.columns)
	}
	var diffs []string
	positions := slices.Sorted(maps.Keys(want.rows))
	positions = slices.Sorted(slices.Values(append(positions, slices.Collect(maps.Keys(want.refused))...)))
	for _, pos := range positions {
		w, answered := want.rows[pos]
		g, servedOK := got.rows[pos]
		switch {
		case !answered && !servedOK:
			rep.Refused++
			continue
		case answered && !servedOK:
			reason, ok := got.refused[pos]
			if !ok {
				reason = "no answer"
			}
			diffs = append(diffs, fmt.Sprintf("row %d: the served model failed (%s)", pos, reason))
			continue
		case !answered:
			diffs = append(diffs, fmt.Sprintf("row %d: the served model answered a row the in-process engine refused (%s)", pos, want.refused[pos]))
			continue
		}
		rep.Compared++
		for _, c := range want.columns {
			if d, ok := differ(w[c], g[c], tol); !ok {
				diffs = append(diffs, fmt.Sprintf("row %d column %q: served %v, in-process %v", pos, c, g[c], w[c]))
			} else {
				rep.MaxAbsDiff = max(rep.MaxAbsDiff, d)
			}
		}
	}
	if len(diffs) > 0 {
		more := ""
		if len(diffs) > 3 {
			more = fmt.Sprintf(" and %d more", len(diffs)-3)
		}
		return refusef("the served model answers differently from the in-process engine on %d of %d canary checks: %s%s",
			len(diffs), len(positions), strings.Join(diffs[:min(3, len(diffs))], "; "), more)
	}
	return nil
}

// differ reports the absolute difference of two numbers and whether they
// agree within tol; other values must be equal.
func differ(a, b any, tol float64) (float64, bool) {
	if ai, ok := a.(int64); ok {
		bi, ok := b.(int64)
		return 0, ok && ai == bi
	}
	fa, aNum := number(a)
	fb, bNum := number(b)
	if aNum && bNum {
		if math.IsNaN(fa) || math.IsNaN(fb) {
			return 0, math.IsNaN(fa) && math.IsNaN(fb)
		}
		d := math.Abs(fa - fb)
		return d, d <= tol*max(1, math.Abs(fa))
	}
	return 0, a == b
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	}
	return 0, false
}

func firstReason(m map[int64]string) string {
	if len(m) == 0 {
		return "no rows"
	}
	p := slices.Min(slices.Collect(maps.Keys(m)))
	return fmt.Sprintf("row %d: %s", p, m[p])
}
