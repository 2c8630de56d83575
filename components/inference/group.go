package inference

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// group is the rows of a batch that go to one model.
type group struct {
	model int   // index of the model among the handler's
	rows  []int // batch rows, ascending
	id    string
	tag   string // the A/B arm, if any
}

// groupRows buckets batch rows by which(row), keeping first-seen order;
// which returns -1 and a reason for a row that cannot be routed.
func groupRows(n int, which func(row int) (int, string)) ([]group, []BadRow) {
	at := map[int]int{}
	var (
		groups []group
		bad    []BadRow
	)
	for r := range n {
		m, why := which(r)
		if m < 0 {
			bad = append(bad, BadRow{Row: r, Reason: why})
			continue
		}
		gi, ok := at[m]
		if !ok {
			gi = len(groups)
			at[m] = gi
			groups = append(groups, group{model: m})
		}
		groups[gi].rows = append(groups[gi].rows, r)
	}
	return groups, bad
}

// runGroups runs each group's rows through run and reassembles the outputs
// in batch order (run also returns the model call's own latency, without
// any load), adding a "model_id" column (and "arm" when tagged).
// Bad rows reported by a group's model are mapped back to batch rows.
// Per-model batch metrics are recorded only when the whole batch succeeds,
// since the engine runs the good rows of a batch with bad rows again.
func runGroups(ctx context.Context, batch arrow.RecordBatch, groups []group, arm bool, m *Metrics,
	run func(ctx context.Context, g group, sub arrow.RecordBatch) (arrow.RecordBatch, time.Duration, error)) (arrow.RecordBatch, error) {
	n := int(batch.NumRows())
	outs := make([]arrow.RecordBatch, 0, len(groups))
	defer func() {
		for _, o := range outs {
			o.Release()
		}
	}()
	order := make([]int, 0, n) // order[i]: batch row of the i-th concatenated output row
	ids := make([]string, n)
	tags := make([]string, n)
	var bad []BadRow
	lat := make([]time.Duration, len(groups)+1)
	var done []group
	for _, g := range groups {
		sub, err := take(ctx, batch, g.rows)
		if err != nil {
			return nil, err
		}
		out, took, err := run(ctx, g, sub)
		lat[len(outs)] = took
		sub.Release()
		var be *BadRowsError
		if errors.As(err, &be) {
			for _, b := range be.Rows {
				bad = append(bad, BadRow{Row: g.rows[b.Row], Reason: g.id + ": " + b.Reason})
			}
			continue
		}
		if err != nil {
			m.Failed(g.id)
			return nil, fmt.Errorf("model %s: %w", g.id, err)
		}
		if out.NumRows() != int64(len(g.rows)) {
			out.Release()
			return nil, fmt.Errorf("model %s: %d rows out for %d in", g.id, out.NumRows(), len(g.rows))
		}
		outs = append(outs, out)
		done = append(done, g)
		order = append(order, g.rows...)
		for _, r := range g.rows {
			ids[r], tags[r] = g.id, g.tag
		}
	}
	if len(bad) > 0 {
		return nil, &BadRowsError{Rows: bad}
	}
	for i, g := range done {
		m.Batch(g.id, len(g.rows), lat[i])
	}
	all, err := concat(outs)
	if err != nil {
		return nil, fmt.Errorf("models disagree on outputs: %w", err)
	}
	defer all.Release()
	inv := make([]int, n)
	for i, r := range order {
		inv[r] = i
	}
	sorted, err := take(ctx, all, inv)
	if err != nil {
		return nil, err
	}
	defer sorted.Release()
	out := withStrings(sorted, "model_id", ids)
	if !arm {
		return out, nil
	}
	defer out.Release()
	return withStrings(out, "arm", tags), nil
}
