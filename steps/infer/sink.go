package infer

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/inference"
)

// deadSchema is the DeadLetters artifact's: where the row came from, why
// it failed, and the row itself as JSON (its columns may be of any type).
var deadSchema = arrow.NewSchema([]arrow.Field{
	{Name: "split", Type: arrow.BinaryTypes.String},
	{Name: "row", Type: arrow.PrimitiveTypes.Int64},
	{Name: "model_id", Type: arrow.BinaryTypes.String},
	{Name: "reason", Type: arrow.BinaryTypes.String},
	{Name: "step", Type: arrow.BinaryTypes.String},
	{Name: "input", Type: arrow.BinaryTypes.String},
}, nil)

// writer turns the engine's output into the Predictions and DeadLetters
// datasets. Results reach it out of order when several workers run, so
// it puts them back in input order first: re-running the step writes the
// same files, and the same digest.
type writer struct {
	ctx    context.Context
	log    *slog.Logger
	splits []string

	pred      *artifacts.Writer
	predData  *artifacts.DatasetWriter // made at the first result, which fixes the schema
	predSch   *arrow.Schema
	renamed   map[string]string // passthrough column -> its name in the output
	dead      *artifacts.DatasetWriter
	fallback  *arrow.Schema // the schema when no row was predicted at all
	predicted int64
	failed    int64

	split string
	order reorder
	// origin maps stream positions to input rows when the rows were
	// regrouped by key (empty: the same).
	origin []int64
	// base is the split's row number of the part's first row: dead
	// letters name rows of the split, not of the part.
	base int64
}

func newWriter(ctx context.Context, log *slog.Logger, pred, dead *artifacts.Writer, splits []string, passthrough *arrow.Schema) (*writer, error) {
	dw, err := artifacts.NewDatasetWriter(ctx, dead, deadSchema, splits, artifacts.DatasetOptions{})
	if err != nil {
		return nil, err
	}
	fields := append([]arrow.Field(nil), passthrough.Fields()...)
	fields = append(fields, arrow.Field{Name: "model_id", Type: arrow.BinaryTypes.String})
	return &writer{ctx: ctx, log: log, splits: splits, pred: pred, dead: dw, fallback: arrow.NewSchema(fields, nil)}, nil
}

// startSplit begins a split.
func (w *writer) startSplit(split string) {
	w.split = split
}

// startPart begins an input part whose first row is row base of the
// split: stream positions restart at 0.
func (w *writer) startPart(base int64) {
	w.order = reorder{}
	w.origin = w.origin[:0]
	w.base = base
}

// endPart checks every row of the part was written, and ends the output
// parts, so the next input part starts new ones.
func (w *writer) endPart() error {
	if len(w.order.items) > 0 {
		w.order.release()
		return fmt.Errorf("split %s: rows from %d on were neither predicted nor dead-lettered", w.split, w.base+w.order.next)
	}
	if w.predData != nil {
		if err := w.predData.EndPart(w.split); err != nil {
			return err
		}
	}
	return w.dead.EndPart(w.split)
}

func (w *writer) sink() inference.Sink {
	return inference.Sink{
		Result: func(r inference.Result) error {
			rec, err := w.predictions(r)
			return w.queue(r.Rows, rec, err, func() *artifacts.DatasetWriter { return w.predData }, &w.predicted)
		},
		DeadLetter: func(d inference.DeadLetter) error {
			rec, err := w.deadLetters(d)
			return w.queue(d.Rows, rec, err, func() *artifacts.DatasetWriter { return w.dead }, &w.failed)
		},
	}
}

// queue puts rec in line to be written to dst (which predictions makes
// at the first result, hence a func) when its rows are next, counting
// them into n.
func (w *writer) queue(rows []int64, rec arrow.RecordBatch, err error, dst func() *artifacts.DatasetWriter, n *int64) error {
	if err != nil {
		return err
	}
	return w.order.add(rows, rec, func() error {
		defer rec.Release()
		*n += rec.NumRows()
		return dst().Write(w.split, rec)
	})
}

// predictions joins a result's passthrough and inference columns, adding
// model_id when the handler did not; the first result fixes the schema.
func (w *writer) predictions(r inference.Result) (arrow.RecordBatch, error) {
	inf := r.Inference.Schema()
	if w.predData == nil {
		w.renamed = map[string]string{}
		var fields []arrow.Field
		for _, f := range r.Example.Schema().Fields() {
			name := f.Name
			if len(inf.FieldIndices(name)) > 0 || (name == "model_id") {
				name += "_input"
				w.log.Warn("a passthrough column has the name of a model output; renamed", "column", f.Name, "as", name)
			}
			w.renamed[f.Name] = name
			f.Name = name
			fields = append(fields, f)
		}
		fields = append(fields, inf.Fields()...)
		if len(inf.FieldIndices("model_id")) == 0 {
			fields = append(fields, arrow.Field{Name: "model_id", Type: arrow.BinaryTypes.String})
		}
		w.predSch = arrow.NewSchema(fields, nil)
		dw, err := artifacts.NewDatasetWriter(w.ctx, w.pred, w.predSch, w.splits, artifacts.DatasetOptions{})
		if err != nil {
			return nil, err
		}
		w.predData = dw
	}
	cols := make([]arrow.Array, 0, w.predSch.NumFields())
	cols = append(cols, r.Example.Columns()...)
	cols = append(cols, r.Inference.Columns()...)
	if len(inf.FieldIndices("model_id")) == 0 {
		ids := make([]string, r.Inference.NumRows())
		for i := range ids {
			ids[i] = r.ModelID
		}
		b := array.NewStringBuilder(memory.DefaultAllocator)
		defer b.Release()
		b.AppendValues(ids, nil)
		id := b.NewArray()
		defer id.Release()
		cols = append(cols, id)
	}
	if len(cols) != w.predSch.NumFields() {
		return nil, fmt.Errorf("split %s: the model answered with %d columns, earlier with %d", w.split, len(cols), w.predSch.NumFields())
	}
	for i, c := range cols {
		if f := w.predSch.Field(i); !arrow.TypeEqual(c.DataType(), f.Type) {
			return nil, fmt.Errorf("split %s: column %q is %s here, %s in earlier rows", w.split, f.Name, c.DataType(), f.Type)
		}
	}
	return array.NewRecordBatch(w.predSch, cols, r.Inference.NumRows()), nil
}

// deadLetters makes a dead letter's rows, each input row as a JSON object.
func (w *writer) deadLetters(d inference.DeadLetter) (arrow.RecordBatch, error) {
	n := int(d.Input.NumRows())
	b := array.NewRecordBuilder(memory.DefaultAllocator, deadSchema)
	defer b.Release()
	split, row := b.Field(0).(*array.StringBuilder), b.Field(1).(*array.Int64Builder)
	model, reason := b.Field(2).(*array.StringBuilder), b.Field(3).(*array.StringBuilder)
	stepName, input := b.Field(4).(*array.StringBuilder), b.Field(5).(*array.StringBuilder)
	values := make(map[string]any, d.Input.NumCols())
	for i := range n {
		for j, col := range d.Input.Columns() {
			if col.IsNull(i) {
				values[d.Input.ColumnName(j)] = nil
			} else {
				values[d.Input.ColumnName(j)] = col.GetOneForMarshal(i)
			}
		}
		js, err := json.Marshal(values)
		if err != nil {
			return nil, fmt.Errorf("split %s row %d: dead letter input as JSON: %w", w.split, d.Rows[i], err)
		}
		split.Append(w.split)
		if len(w.origin) > 0 {
			row.Append(w.base + w.origin[d.Rows[i]])
		} else {
			row.Append(w.base + d.Rows[i])
		}
		model.Append(d.ModelID)
		reason.Append(d.Reason)
		stepName.Append(Name)
		input.Append(string(js))
	}
	return b.NewRecordBatch(), nil
}

// close finishes both datasets.
func (w *writer) close() error {
	if w.predData == nil {
		dw, err := artifacts.NewDatasetWriter(w.ctx, w.pred, w.fallback, w.splits, artifacts.DatasetOptions{})
		if err != nil {
			return err
		}
		w.predData = dw
	}
	if err := w.predData.Close(); err != nil {
		return err
	}
	return w.dead.Close()
}

// abandon drops unfinished parts after a failure.
func (w *writer) abandon() {
	w.order.release()
	if w.predData != nil {
		w.predData.Abandon()
	}
	w.dead.Abandon()
}

// reorder emits output in input order. Every input row is in exactly one
// result or dead letter, so the item holding the smallest row not yet
// written starts with that row: items wait until they are next.
type reorder struct {
	next  int64
	done  map[int64]bool // written rows beyond next
	items itemHeap
}

type item struct {
	first int64
	rows  []int64
	rec   arrow.RecordBatch
	emit  func() error
}

func (o *reorder) add(rows []int64, rec arrow.RecordBatch, emit func() error) error {
	heap.Push(&o.items, item{first: rows[0], rows: rows, rec: rec, emit: emit})
	for len(o.items) > 0 && o.items[0].first == o.next {
		it := heap.Pop(&o.items).(item)
		if err := it.emit(); err != nil {
			return err
		}
		if o.done == nil {
			o.done = map[int64]bool{}
		}
		for _, r := range it.rows {
			o.done[r] = true
		}
		for o.done[o.next] {
			delete(o.done, o.next)
			o.next++
		}
	}
	return nil
}

func (o *reorder) release() {
	for _, it := range o.items {
		it.rec.Release()
	}
	o.items = nil
}

type itemHeap []item

func (h itemHeap) Len() int           { return len(h) }
func (h itemHeap) Less(i, j int) bool { return h[i].first < h[j].first }
func (h itemHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)        { *h = append(*h, x.(item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
