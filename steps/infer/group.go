package infer

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// grouped reorders src's rows by the key column within windows of about
// window rows (Beam groups by key before keyed inference): a keyed model
// with a cap on loaded models then meets each key once per window rather
// than once per batch, and stops reloading models. The order within a key
// is kept, so the result is deterministic. origin receives, for each row
// of the reordered stream, its position in src.
func grouped(ctx context.Context, src iter.Seq2[arrow.RecordBatch, error], key string, window int, origin *[]int64) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		var (
			held []arrow.RecordBatch
			rows int
			base int64
		)
		defer func() {
			for _, r := range held {
				r.Release()
			}
		}()
		flush := func() bool {
			rec, err := sortWindow(ctx, held, key, base, origin)
			for _, r := range held {
				r.Release()
			}
			held, base, rows = held[:0], base+int64(rows), 0
			if err != nil {
				yield(nil, err)
				return false
			}
			defer rec.Release()
			return yield(rec, nil)
		}
		for rec, err := range src {
			if err != nil {
				yield(nil, err)
				return
			}
			rec.Retain()
			held = append(held, rec)
			rows += int(rec.NumRows())
			if rows >= window && !flush() {
				return
			}
		}
		if rows > 0 {
			flush()
		}
	}
}

// sortWindow concatenates recs and sorts the rows by key (stable).
func sortWindow(ctx context.Context, recs []arrow.RecordBatch, key string, base int64, origin *[]int64) (arrow.RecordBatch, error) {
	schema := recs[0].Schema()
	ki := schema.FieldIndices(key)
	if len(ki) == 0 {
		return nil, fmt.Errorf("key column %q not in the examples", key)
	}
	cols := make([]arrow.Array, schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range cols {
		parts := make([]arrow.Array, len(recs))
		for j, r := range recs {
			parts[j] = r.Column(i)
		}
		c, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			return nil, fmt.Errorf("group rows by %s: %w", key, err)
		}
		cols[i] = c
	}
	n := cols[0].Len()
	keys := make([]string, n)
	for r := range n {
		if cols[ki[0]].IsValid(r) {
			keys[r] = cols[ki[0]].ValueStr(r)
		}
	}
	idx := make([]int64, n)
	for i := range idx {
		idx[i] = int64(i)
	}
	slices.SortStableFunc(idx, func(a, b int64) int {
		switch {
		case keys[a] < keys[b]:
			return -1
		case keys[a] > keys[b]:
			return 1
		}
		return 0
	})
	for _, i := range idx {
		*origin = append(*origin, base+i)
	}
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(idx, nil)
	take := b.NewArray()
	defer take.Release()
	out := make([]arrow.Array, len(cols))
	for i, c := range cols {
		t, err := compute.TakeArray(ctx, c, take)
		if err != nil {
			for _, o := range out[:i] {
				o.Release()
			}
			return nil, fmt.Errorf("group rows by %s: %w", key, err)
		}
		out[i] = t
	}
	rec := array.NewRecordBatch(schema, out, int64(n))
	for _, o := range out {
		o.Release()
	}
	return rec, nil
}
