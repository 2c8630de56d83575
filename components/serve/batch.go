package serve

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/inference"
)

// batcher gathers the model's queued requests into batches and runs
// them, one at a time.
func (s *Server) batcher(sm *served) {
	defer s.workers.Done()
	var carry *call // taken but did not fit the last batch
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-sm.queue:
				sm.pending.Add(-1)
			case <-s.stop:
				return
			}
		}
		batch, rows := []*call{first}, first.rows
		var (
			timeout <-chan time.Time
			timer   *time.Timer
		)
		if wait := s.opts.MaxQueueDelay - time.Since(first.queued); wait > 0 {
			timer = time.NewTimer(wait)
			timeout = timer.C
		}
	gather:
		for rows < s.opts.MaxBatch {
			var c *call
			if timeout == nil {
				// The delay is over: take only what is queued already.
				select {
				case c = <-sm.queue:
				default:
					break gather
				}
			} else {
				select {
				case c = <-sm.queue:
				case <-timeout:
					timeout = nil
					continue
				case <-s.stop:
					break gather
				}
			}
			sm.pending.Add(-1)
			// Requests join only if they fit and their columns match
			// (an input of open width may differ between requests).
			if rows+c.rows > s.opts.MaxBatch || !c.rec.Schema().Equal(first.rec.Schema()) {
				carry = c
				break
			}
			batch, rows = append(batch, c), rows+c.rows
		}
		if timer != nil {
			timer.Stop()
		}
		s.run(sm, batch)
		for _, c := range batch {
			c.rec.Release()
		}
	}
}

// run makes one model call for batch and answers its requests.
func (s *Server) run(sm *served, batch []*call) {
	live := make([]*call, 0, len(batch))
	rows := 0
	for _, c := range batch {
		// A request that timed out while queued has been answered.
		if c.ctx.Err() == nil {
			live = append(live, c)
			rows += c.rows
		}
	}
	if len(live) == 0 {
		return
	}
	in, err := concat(live, rows)
	if err != nil {
		fail(live, http.StatusInternalServerError, err)
		return
	}
	start := time.Now()
	out, err := sm.model.Run(s.runCtx, in)
	in.Release()
	if bad, ok := errors.AsType[*inference.BadRowsError](err); ok {
		s.badRows(sm, live, bad)
		return
	}
	if err == nil && out.NumRows() != int64(rows) {
		out.Release()
		err = fmt.Errorf("model %s returned %d rows for %d", sm.Name, out.NumRows(), rows)
	}
	if err != nil {
		s.engine.Failed(sm.Handler.ModelID())
		s.opts.Logger.Warn("batch failed", "model", sm.Name, "rows", rows, "requests", len(live), "error", err)
		fail(live, http.StatusInternalServerError, fmt.Errorf("model %s: %w", sm.Name, err))
		return
	}
	s.engine.Batch(sm.Handler.ModelID(), rows, time.Since(start))
	sm.stats.batch(rows)
	off := int64(0)
	for _, c := range live {
		c.done <- result{out: out.NewSlice(off, off+int64(c.rows)), status: http.StatusOK}
		off += int64(c.rows)
	}
	out.Release()
}

// badRows fails the requests holding rows the model refused and runs the
// others again.
func (s *Server) badRows(sm *served, batch []*call, bad *inference.BadRowsError) {
	var rest []*call
	start := 0
	for _, c := range batch {
		var reasons []string
		for _, r := range bad.Rows {
			if r.Row >= start && r.Row < start+c.rows {
				reasons = append(reasons, fmt.Sprintf("row %d: %s", r.Row-start, r.Reason))
			}
		}
		start += c.rows
		if len(reasons) == 0 {
			rest = append(rest, c)
			continue
		}
		c.done <- result{status: http.StatusBadRequest, err: fmt.Errorf("model %s cannot infer %s", sm.Name, strings.Join(reasons, "; "))}
	}
	if len(rest) == len(batch) {
		// The rows named are not in the batch: nothing would change.
		fail(rest, http.StatusInternalServerError, fmt.Errorf("model %s: %w", sm.Name, bad))
		return
	}
	if len(rest) > 0 {
		s.run(sm, rest)
	}
}

func fail(batch []*call, status int, err error) {
	for _, c := range batch {
		c.done <- result{status: status, err: err}
	}
}

// concat puts the requests' columns end to end; all have the model's
// input columns in the same order.
func concat(batch []*call, rows int) (arrow.RecordBatch, error) {
	if len(batch) == 1 {
		batch[0].rec.Retain()
		return batch[0].rec, nil
	}
	schema := batch[0].rec.Schema()
	cols := make([]arrow.Array, schema.NumFields())
	parts := make([]arrow.Array, len(batch))
	for j := range cols {
		for i, c := range batch {
			parts[i] = c.rec.Column(j)
		}
		col, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			for _, done := range cols[:j] {
				done.Release()
			}
			return nil, fmt.Errorf("concatenate column %q: %w", schema.Field(j).Name, err)
		}
		cols[j] = col
	}
	rec := array.NewRecordBatch(schema, cols, int64(rows))
	for _, c := range cols {
		c.Release()
	}
	return rec, nil
}
