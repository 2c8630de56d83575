package inference

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"runtime"
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
	// MaxBatchDuration, when set, sends a batch that is not full once its
	// first row has waited this long for more (Beam's
	// max_batch_duration_secs): for streams, where the next rows may be
	// long in coming. 0 waits for a full batch or the end of the input.
	MaxBatchDuration time.Duration
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
	model, err := load(ctx, e.h, e.metrics)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", e.h.ModelID(), err)
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
	w := &worker{e: e, model: staged(model), metrics: metrics, sink: sink, cancel: cancel, size: e.size,
		passthrough: newLookup(e.opts.Passthrough)}
	var srcErr error
	switch _, ok := model.(stagedModel); {
	case e.opts.Workers == 1 && ok && runtime.GOMAXPROCS(0) > 1:
		srcErr = w.pipeline(ctx, src)
	case e.opts.Workers == 1:
		// One worker runs inline: a hand-off to another goroutine per
		// batch costs microseconds, a visible share of a small model's run.
		srcErr = e.batches(ctx, src, w.size, func(j job) error {
			w.do(ctx, j)
			return nil
		})
	default:
		jobs := make(chan job, e.opts.Workers)
		var wg sync.WaitGroup
		for range e.opts.Workers {
			wg.Go(func() {
				for j := range jobs {
					w.do(ctx, j)
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
	add := func(rec arrow.RecordBatch) error {
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
		return nil
	}
	if e.opts.MaxBatchDuration > 0 {
		state := func() (int64, int) { return offset, rows }
		if err := timedBatches(ctx, src, e.opts.MaxBatchDuration, add, flush, state); err != nil {
			return err
		}
	} else {
		for rec, err := range src {
			if err != nil {
				return fmt.Errorf("read examples: %w", err)
			}
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			if err := add(rec); err != nil {
				return err
			}
		}
	}
	if rows > 0 {
		return flush()
	}
	return nil
}

// item is one record of the source, or its error.
type item struct {
	rec arrow.RecordBatch
	err error
}

// timedBatches feeds src's records to add, and calls flush when the
// batch being filled (state: its first row's stream offset and its rows
// so far) has waited maxWait since its first row came. The source runs in
// its own goroutine so that waiting for it can time out.
func timedBatches(ctx context.Context, src iter.Seq2[arrow.RecordBatch, error], maxWait time.Duration,
	add func(arrow.RecordBatch) error, flush func() error, state func() (int64, int)) error {
	items := make(chan item)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(items)
		for rec, err := range src {
			if rec != nil {
				rec.Retain() // the source may reuse it once yield returns
			}
			select {
			case items <- item{rec, err}:
			case <-done:
				if rec != nil {
					rec.Release()
				}
				return
			}
			if err != nil {
				return
			}
		}
	}()
	timer := time.NewTimer(maxWait)
	timer.Stop()
	timed := int64(-1) // offset of the batch the timer runs for
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-timer.C:
			if at, rows := state(); rows > 0 && at == timed {
				if err := flush(); err != nil {
					return err
				}
			}
			timed = -1
		case it, ok := <-items:
			if !ok {
				return nil
			}
			if it.err != nil {
				return fmt.Errorf("read examples: %w", it.err)
			}
			err := add(it.rec)
			it.rec.Release()
			if err != nil {
				return err
			}
			switch at, rows := state(); {
			case rows == 0:
				timer.Stop()
				timed = -1
			case at != timed:
				// A new batch started filling: its clock starts now.
				timer.Reset(maxWait)
				timed = at
			}
		}
	}
}

// stagedModel is a Model whose Run splits into steps the engine can
// overlap across batches: prepare and the call's finish are Go work (the
// examples into the model's input, its output into columns), the call's
// infer is the model call alone. Run is prepare, infer, finish.
type stagedModel interface {
	Model
	// prepare fails like Run: a *BadRowsError names rows it refuses.
	prepare(ctx context.Context, batch arrow.RecordBatch) (stagedCall, error)
}

// stagedCall is one prepared batch. After prepare, exactly one of finish
// (after infer) or release frees it.
type stagedCall interface {
	infer() error
	finish() (arrow.RecordBatch, error)
	release()
}

// staged returns m as a stagedModel; a plain Model does all its work in
// prepare.
func staged(m Model) stagedModel {
	if s, ok := m.(stagedModel); ok {
		return s
	}
	return plainModel{m}
}

type plainModel struct{ Model }

func (m plainModel) prepare(ctx context.Context, batch arrow.RecordBatch) (stagedCall, error) {
	out, err := m.Run(ctx, batch)
	if err != nil {
		return nil, err
	}
	return plainCall{out}, nil
}

type plainCall struct{ out arrow.RecordBatch }

func (c plainCall) infer() error                       { return nil }
func (c plainCall) finish() (arrow.RecordBatch, error) { return c.out, nil }
func (c plainCall) release()                           { c.out.Release() }

type worker struct {
	e       *Engine
	model   stagedModel
	metrics *Metrics
	sink    Sink
	size    *sizer
	cancel  context.CancelCauseFunc
	mu      sync.Mutex // serialises sink calls
	// passthrough finds the Passthrough columns in examples.
	passthrough *lookup
}

// flight is one batch being inferred. It owns its job's record.
type flight struct {
	j    job
	rec  arrow.RecordBatch // j.rec, or its good rows once bad ones are dropped
	rows []int             // rec's rows in j.rec; nil when rec is j.rec
	call stagedCall
	lat  time.Duration // time spent preparing and finishing
	took time.Duration // the model call's time
	err  error         // from infer
}

func (f *flight) close() {
	if f.rec != f.j.rec {
		f.rec.Release()
	}
	f.j.rec.Release()
}

// do infers one batch, start to end.
func (w *worker) do(ctx context.Context, j job) {
	f := w.start(ctx, j)
	if f == nil {
		return
	}
	f.infer(ctx)
	w.complete(ctx, f)
}

// start prepares j's batch: bad rows are dead-lettered and the rest
// prepared again once; a batch that fails is dead-lettered whole. It
// returns nil (having released j) when nothing is left to infer.
func (w *worker) start(ctx context.Context, j job) *flight {
	f := &flight{j: j, rec: j.rec}
	for attempt := 0; ctx.Err() == nil; attempt++ {
		t := time.Now()
		call, err := w.model.prepare(ctx, f.rec)
		f.lat = time.Since(t)
		n := int(f.rec.NumRows())
		var bad *BadRowsError
		switch {
		case err == nil:
			f.call = call
			return f
		case ctx.Err() != nil:
			// Cancelled: the rows were neither inferred nor failed.
		case errors.As(err, &bad) && attempt == 0 && len(bad.Rows) > 0 && len(bad.Rows) < n:
			if w.dropBad(ctx, f, bad) {
				continue
			}
		case errors.As(err, &bad) && attempt == 0 && len(bad.Rows) == n:
			w.dropBad(ctx, f, bad) // every row bad: not a failed batch
		default:
			w.fail(f, err)
		}
		break
	}
	f.close()
	return nil
}

func (f *flight) infer(ctx context.Context) {
	if err := ctx.Err(); err != nil {
		f.err = err
		return
	}
	t := time.Now()
	f.err = f.call.infer()
	f.took = time.Since(t)
}

// complete finishes an inferred flight and sends its result, or its
// rows to the dead letters when the model failed it.
func (w *worker) complete(ctx context.Context, f *flight) {
	defer f.close()
	if f.err != nil {
		f.call.release()
	} else {
		t := time.Now()
		out, err := f.call.finish()
		f.lat += time.Since(t)
		if err == nil {
			n, lat := int(f.rec.NumRows()), f.lat+f.took
			w.size.observe(n, lat)
			w.metrics.Batch(w.e.h.ModelID(), n, lat)
			w.emit(ctx, f, out)
			out.Release()
			return
		}
		f.err = err
	}
	if ctx.Err() == nil {
		w.fail(f, f.err)
	}
}

// fail dead-letters f's rows as a failed batch.
func (w *worker) fail(f *flight, err error) {
	id := w.e.h.ModelID()
	w.metrics.Failed(id)
	w.e.opts.Logger.Warn("batch failed", "model", id, "offset", f.j.offset, "rows", f.rec.NumRows(), "err", err)
	w.dead(DeadLetter{ModelID: id, Reason: err.Error(), Rows: positions(f.j.offset, f.rows, f.rec.NumRows()), Input: f.rec})
}

// dropBad dead-letters bad's rows of f and keeps the others in f; false
// when none are left.
func (w *worker) dropBad(ctx context.Context, f *flight, bad *BadRowsError) bool {
	isBad := make(map[int]string, len(bad.Rows))
	for _, b := range bad.Rows {
		isBad[b.Row] = b.Reason
	}
	var good []int
	for i := range int(f.rec.NumRows()) {
		if why, ok := isBad[i]; ok {
			one := f.rec.NewSlice(int64(i), int64(i+1))
			w.dead(DeadLetter{ModelID: w.e.h.ModelID(), Reason: why, Rows: []int64{f.j.offset + int64(row(f.rows, i))}, Input: one})
			one.Release()
		} else {
			good = append(good, i)
		}
	}
	if len(good) == 0 {
		return false
	}
	sub, err := take(ctx, f.rec, good)
	if err != nil {
		w.cancel(err)
		return false
	}
	for i, g := range good {
		good[i] = row(f.rows, g)
	}
	if f.rec != f.j.rec {
		f.rec.Release()
	}
	f.rec, f.rows = sub, good
	return true
}

// row is the position in the job's record of row i of a flight's rows.
func row(rows []int, i int) int {
	if rows == nil {
		return i
	}
	return rows[i]
}

// positions returns the stream positions of n rows (nil rows: 0..n-1)
// of the record at offset.
func positions(offset int64, rows []int, n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = offset + int64(row(rows, i))
	}
	return out
}

func (w *worker) emit(ctx context.Context, f *flight, out arrow.RecordBatch) {
	ex, err := w.passthrough.project(f.rec)
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
	r := Result{ModelID: w.e.h.ModelID(), Rows: positions(f.j.offset, f.rows, f.rec.NumRows()), Example: ex, Inference: out}
	if err := w.sink.Result(r); err != nil {
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
