package inference

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Options configure an Engine. The zero value is usable: batches of the
// handler's max size (64 when it has none), one worker, no passthrough.
type Options struct {
	// MinBatch and MaxBatch bound the batch size (Beam's min_batch_size and
	// max_batch_size); 0 takes the handler's BatchSizes, then 1 and 64.
	MinBatch, MaxBatch int
	// TargetBatchLatency, when set, adapts the batch size between MinBatch
	// and MaxBatch so one Run takes about this long (Beam's
	// target_batch_duration_secs); 0 keeps batches at MaxBatch.
	TargetBatchLatency time.Duration
	// Workers run batches concurrently on the one loaded model; 0 means 1.
	Workers int
	// Passthrough names example columns copied into each Result.
	Passthrough []string
	// Logger receives load and failure events; nil discards them.
	Logger *slog.Logger
}

// Result is one inferred batch.
type Result struct {
	ModelID string
	// Rows are the input-stream positions (0-based) of the batch's rows.
	Rows []int64
	// Example holds the Passthrough columns, Inference the model's output
	// columns, row for row. Both are released after the sink returns:
	// Retain them to keep them.
	Example, Inference arrow.RecordBatch
}

// DeadLetter holds rows that were not inferred, with why.
type DeadLetter struct {
	ModelID string
	Reason  string
	// Rows are the input-stream positions of Input's rows.
	Rows []int64
	// Input holds the rows as given (every column); released after the
	// sink returns.
	Input arrow.RecordBatch
}

// Sink receives the engine's output. Its functions are called by one
// goroutine at a time; an error stops the run and is returned by Run.
type Sink struct {
	Result     func(Result) error
	DeadLetter func(DeadLetter) error
}

// Engine runs a ModelHandler over streams of examples (Beam's
// RunInference). It loads the model on the first Run and keeps it, shared
// by every worker and every later Run (Beam's Shared), until Close.
type Engine struct {
	h       ModelHandler
	opts    Options
	metrics *Metrics
	size    *sizer

	mu    sync.Mutex // guards model
	model Model
}

// New returns an engine for h. It loads nothing yet.
func New(h ModelHandler, opts Options) *Engine {
	hmin, hmax := h.BatchSizes()
	if opts.MinBatch <= 0 {
		opts.MinBatch = max(hmin, 1)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = hmax
		if opts.MaxBatch <= 0 {
			opts.MaxBatch = 64
		}
	}
	opts.MaxBatch = max(opts.MaxBatch, opts.MinBatch)
	opts.Workers = max(opts.Workers, 1)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{h: h, opts: opts, metrics: NewMetrics(), size: newSizer(opts.MinBatch, opts.MaxBatch, opts.TargetBatchLatency)}
}

// Metrics returns the metrics of every Run so far.
func (e *Engine) Metrics() Snapshot { return e.metrics.Snapshot() }

// Close unloads the model; a later Run loads it again.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.model == nil {
		return nil
	}
	err := e.model.Close()
	e.model = nil
	return err
}

func (e *Engine) load(ctx context.Context) (Model, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.model != nil {
		return e.model, nil
	}
	start := time.Now()
	model, err := e.h.Load(ctx, e.metrics)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", e.h.ModelID(), err)
	}
	if _, ok := e.h.(*ONNXHandler); !ok {
		// Composite handlers record their inner models' loads; record
		// the handler's own id too.
		e.metrics.Loaded(e.h.ModelID(), time.Since(start), model.ByteSize())
	}
	e.opts.Logger.Info("model loaded", "model", e.h.ModelID(), "bytes", model.ByteSize())
	e.model = model
	return model, nil
}

type job struct {
	offset int64
	rec    arrow.RecordBatch
}

// Run infers every example of src (loading the model first if needed)
// and sends results and dead letters to sink. It returns the engine's
// metrics so far and the first error that stopped it: the model's load
// failure, src's error, the sink's error or ctx's. Bad rows and failed
// batches do not stop it. Runs may overlap; they share the model.
func (e *Engine) Run(ctx context.Context, src iter.Seq2[arrow.RecordBatch, error], sink Sink) (Snapshot, error) {
	model, err := e.load(ctx)
	if err != nil {
		return e.metrics.Snapshot(), err
	}
	metrics := e.metrics
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := &worker{e: e, model: model, metrics: metrics, sink: sink, cancel: cancel, size: e.size}
	var srcErr error
	if e.opts.Workers == 1 {
		// One worker runs inline: a hand-off to another goroutine per
		// batch costs microseconds, a visible share of a small model's run.
		srcErr = e.batches(ctx, src, w.size, func(j job) error {
			w.do(ctx, j)
			j.rec.Release()
			return nil
		})
	} else {
		jobs := make(chan job, e.opts.Workers)
		var wg sync.WaitGroup
		for range e.opts.Workers {
			wg.Go(func() {
				for j := range jobs {
					w.do(ctx, j)
					j.rec.Release()
				}
			})
		}
		srcErr = e.batches(ctx, src, w.size, func(j job) error {
			select {
			case jobs <- j:
				return nil
			case <-ctx.Done():
				j.rec.Release()
				return context.Cause(ctx)
			}
		})
		close(jobs)
		wg.Wait()
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return metrics.Snapshot(), cause
	}
	if srcErr != nil {
		return metrics.Snapshot(), srcErr
	}
	return metrics.Snapshot(), ctx.Err()
}

// batches cuts src into batches of the sizer's current size and hands them
// to send, which owns them; a batch may span input records (then it is a
// copy) and the last one may be short.
func (e *Engine) batches(ctx context.Context, src iter.Seq2[arrow.RecordBatch, error], size *sizer, send func(job) error) error {
	var (
		pending []arrow.RecordBatch // slices awaiting a full batch
		rows    int
		target  int   // size of the batch being filled
		offset  int64 // stream position of pending's first row
	)
	release := func() {
		for _, p := range pending {
			p.Release()
		}
		pending = pending[:0]
	}
	defer release()
	flush := func() error {
		rec, err := concat(pending)
		if err != nil {
			return err
		}
		release()
		if err := send(job{offset: offset, rec: rec}); err != nil {
			return err
		}
		offset += int64(rows)
		rows = 0
		return nil
	}
	for rec, err := range src {
		if err != nil {
			return fmt.Errorf("read examples: %w", err)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		n := int(rec.NumRows())
		for at := 0; at < n; {
			if rows == 0 {
				target = size.next() // fixed for the batch being filled
			}
			take := min(target-rows, n-at)
			if take == n {
				rec.Retain() // the whole record is the batch: no slice
				pending = append(pending, rec)
			} else {
				pending = append(pending, rec.NewSlice(int64(at), int64(at+take)))
			}
			rows += take
			at += take
			if rows >= target {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if rows > 0 {
		return flush()
	}
	return nil
}

type worker struct {
	e       *Engine
	model   Model
	metrics *Metrics
	sink    Sink
	size    *sizer
	cancel  context.CancelCauseFunc
	mu      sync.Mutex // serialises sink calls
}

// do infers one batch: bad rows are dead-lettered and the rest run again
// once; a failed batch is dead-lettered whole.
func (w *worker) do(ctx context.Context, j job) {
	if ctx.Err() != nil {
		return
	}
	id := w.e.h.ModelID()
	rec := j.rec
	rows := make([]int, rec.NumRows())
	for i := range rows {
		rows[i] = i
	}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		out, err := w.model.Run(ctx, rec)
		lat := time.Since(start)
		var bad *BadRowsError
		switch {
		case err == nil:
			w.size.observe(int(rec.NumRows()), lat)
			w.metrics.Batch(id, int(rec.NumRows()), lat)
			w.emit(ctx, j, rec, rows, out)
			out.Release()
		case ctx.Err() != nil:
			// Cancelled: the rows were neither inferred nor failed.
		case errors.As(err, &bad) && attempt == 0 && len(bad.Rows) > 0 && len(bad.Rows) < int(rec.NumRows()):
			keep, ok := w.dropBad(ctx, j, rec, rows, bad)
			if !ok {
				break
			}
			if rec != j.rec {
				rec.Release()
			}
			rec, rows = keep.rec, keep.rows
			continue
		default:
			if errors.As(err, &bad) && attempt == 0 && len(bad.Rows) == int(rec.NumRows()) {
				w.dropBad(ctx, j, rec, rows, bad) // every row bad: not a failed batch
				break
			}
			w.metrics.Failed(id)
			w.e.opts.Logger.Warn("batch failed", "model", id, "offset", j.offset, "rows", rec.NumRows(), "err", err)
			w.dead(DeadLetter{ModelID: id, Reason: err.Error(), Rows: positions(j.offset, rows), Input: rec})
		}
		if rec != j.rec {
			rec.Release()
		}
		return
	}
}

type kept struct {
	rec  arrow.RecordBatch
	rows []int
}

// dropBad dead-letters bad's rows of rec and returns the others.
func (w *worker) dropBad(ctx context.Context, j job, rec arrow.RecordBatch, rows []int, bad *BadRowsError) (kept, bool) {
	isBad := make(map[int]string, len(bad.Rows))
	for _, b := range bad.Rows {
		isBad[b.Row] = b.Reason
	}
	var good []int
	for i := range rows {
		if _, ok := isBad[i]; ok {
			one := rec.NewSlice(int64(i), int64(i+1))
			w.dead(DeadLetter{ModelID: w.e.h.ModelID(), Reason: isBad[i], Rows: positions(j.offset, rows[i:i+1]), Input: one})
			one.Release()
		} else {
			good = append(good, i)
		}
	}
	if len(good) == 0 {
		return kept{}, false
	}
	sub, err := take(ctx, rec, good)
	if err != nil {
		w.cancel(err)
		return kept{}, false
	}
	pos := make([]int, len(good))
	for i, g := range good {
		pos[i] = rows[g]
	}
	return kept{rec: sub, rows: pos}, true
}

func positions(offset int64, rows []int) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = offset + int64(r)
	}
	return out
}

func (w *worker) emit(ctx context.Context, j job, rec arrow.RecordBatch, rows []int, out arrow.RecordBatch) {
	ex, err := project(rec, w.e.opts.Passthrough)
	if err != nil {
		w.cancel(err)
		return
	}
	defer ex.Release()
	if w.sink.Result == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	if err := w.sink.Result(Result{ModelID: w.e.h.ModelID(), Rows: positions(j.offset, rows), Example: ex, Inference: out}); err != nil {
		w.cancel(fmt.Errorf("result sink: %w", err))
	}
}

func (w *worker) dead(d DeadLetter) {
	if w.sink.DeadLetter == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.sink.DeadLetter(d); err != nil {
		w.cancel(fmt.Errorf("dead-letter sink: %w", err))
	}
}

// sizer picks the next batch size. With a target latency it keeps an
// exponentially weighted per-row cost (fixed overhead folded in) and aims
// at target/cost rows, growing at most twofold per batch so one fast batch
// cannot jump straight to the maximum; without one it returns max.
type sizer struct {
	mu       sync.Mutex
	min, max int
	target   time.Duration
	perRow   float64 // ns per row, 0 until the first observation
	cur      int
}

func newSizer(minN, maxN int, target time.Duration) *sizer {
	s := &sizer{min: minN, max: maxN, target: target, cur: maxN}
	if target > 0 {
		s.cur = minN
	}
	return s
}

func (s *sizer) next() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *sizer) observe(rows int, lat time.Duration) {
	if s.target <= 0 || rows == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := float64(lat.Nanoseconds()) / float64(rows)
	if s.perRow == 0 {
		s.perRow = c
	} else {
		s.perRow = 0.7*s.perRow + 0.3*c
	}
	want := int(float64(s.target.Nanoseconds()) / max(s.perRow, 1))
	want = min(want, 2*s.cur)
	s.cur = max(s.min, min(s.max, want))
}
