package inference

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// twice is a staged Go model, y = 2x over an int64 column "x": prepare
// refuses x < 0, infer fails a batch holding 13 and takes delay; with
// block, infer waits for its context instead.
type twice struct {
	delay   time.Duration
	block   bool
	ctx     context.Context
	started chan struct{}
	calls   atomic.Int64
	running atomic.Int64 // infer calls under way, to catch two at once
	overlap atomic.Bool
}

func (m *twice) ModelID() string                               { return "twice" }
func (m *twice) BatchSizes() (int, int)                        { return 0, 0 }
func (m *twice) Load(context.Context, *Metrics) (Model, error) { return m, nil }
func (m *twice) ByteSize() int64                               { return 8 }
func (m *twice) Close() error                                  { return nil }
func (m *twice) Run(ctx context.Context, b arrow.RecordBatch) (arrow.RecordBatch, error) {
	c, err := m.prepare(ctx, b)
	if err != nil {
		return nil, err
	}
	if err := c.infer(); err != nil {
		c.release()
		return nil, err
	}
	return c.finish()
}

type twiceCall struct {
	m  *twice
	x  []int64
	y  []int64
	ok bool
}

func (m *twice) prepare(ctx context.Context, b arrow.RecordBatch) (stagedCall, error) {
	x := b.Column(b.Schema().FieldIndices("x")[0]).(*array.Int64)
	var bad []BadRow
	for i, v := range x.Int64Values() {
		if v < 0 {
			bad = append(bad, BadRow{Row: i, Reason: fmt.Sprintf("x = %d is negative", v)})
		}
	}
	if bad != nil {
		return nil, &BadRowsError{Rows: bad}
	}
	return &twiceCall{m: m, x: append([]int64(nil), x.Int64Values()...)}, nil
}

func (c *twiceCall) infer() error {
	m := c.m
	if m.running.Add(1) > 1 {
		m.overlap.Store(true)
	}
	defer m.running.Add(-1)
	m.calls.Add(1)
	if m.block {
		select {
		case m.started <- struct{}{}:
		default:
		}
		<-m.ctx.Done()
		return m.ctx.Err()
	}
	if m.delay > 0 {
		time.Sleep(m.delay)
	}
	c.y = make([]int64, len(c.x))
	for i, v := range c.x {
		if v == 13 {
			return errors.New("unlucky batch")
		}
		c.y[i] = 2 * v
	}
	c.ok = true
	return nil
}

func (c *twiceCall) finish() (arrow.RecordBatch, error) {
	if !c.ok {
		return nil, errors.New("finish before infer")
	}
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(c.y, nil)
	y := b.NewArray()
	defer y.Release()
	return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "y", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{y}, int64(len(c.y))), nil
}

func (c *twiceCall) release() {}

// pipelined makes sure a one-worker engine pipelines (it needs two Ps).
func pipelined(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		prev := runtime.GOMAXPROCS(2)
		t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	}
}

func int64Records(vals []int64, per int) []arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	var recs []arrow.RecordBatch
	for at := 0; at < len(vals); at += per {
		b := array.NewInt64Builder(memory.DefaultAllocator)
		b.AppendValues(vals[at:min(at+per, len(vals))], nil)
		a := b.NewArray()
		recs = append(recs, array.NewRecordBatch(schema, []arrow.Array{a}, int64(a.Len())))
		a.Release()
		b.Release()
	}
	return recs
}

// records yields recs, waiting gap before each.
func records(recs []arrow.RecordBatch, gap time.Duration) func(func(arrow.RecordBatch, error) bool) {
	return func(yield func(arrow.RecordBatch, error) bool) {
		for _, r := range recs {
			time.Sleep(gap)
			r.Retain()
			if !yield(r, nil) {
				r.Release()
				return
			}
			r.Release()
		}
	}
}

// TestPipeline runs a one-worker engine over many more batches than the
// pipeline holds, with a fast model (the engine's goroutine polls), a slow
// one (it parks) and a slow source (the model goroutine parks): results
// come in input order, one model call runs at a time, bad rows and a
// failed batch go to the dead letters, and every row is answered exactly
// once.
func TestPipeline(t *testing.T) {
	pipelined(t)
	vals := make([]int64, 400)
	for i := range vals {
		vals[i] = int64(i)
	}
	vals[5], vals[6], vals[333] = -1, -2, -3 // bad rows
	// Row 13 holds 13: its batch (rows 10..14) fails whole.
	for _, tc := range []struct{ model, source time.Duration }{{0, 0}, {2 * spinBelow, 0}, {0, 2 * feedSpin}} {
		t.Run(fmt.Sprintf("model=%v,source=%v", tc.model, tc.source), func(t *testing.T) {
			m := &twice{delay: tc.model}
			var (
				last  int64 = -1
				seen        = map[int64]string{}
				dead        = map[int64]string{}
				order error
			)
			sink := Sink{
				Result: func(r Result) error {
					y := r.Inference.Column(0).(*array.Int64)
					for i, row := range r.Rows {
						if row <= last && order == nil {
							order = fmt.Errorf("row %d after row %d", row, last)
						}
						last = row
						seen[row] = fmt.Sprint(y.Value(i))
					}
					return nil
				},
				DeadLetter: func(d DeadLetter) error {
					for _, row := range d.Rows {
						dead[row] = d.Reason
					}
					return nil
				},
			}
			e := New(m, Options{MaxBatch: 5})
			defer e.Close()
			snap, err := e.Run(context.Background(), records(int64Records(vals, 7), tc.source), sink)
			if err != nil {
				t.Fatal(err)
			}
			if order != nil {
				t.Error(order)
			}
			if m.overlap.Load() {
				t.Error("two model calls ran at once")
			}
			if len(seen)+len(dead) != len(vals) {
				t.Fatalf("%d results + %d dead letters for %d rows", len(seen), len(dead), len(vals))
			}
			for row, v := range vals {
				switch {
				case v < 0:
					if !strings.Contains(dead[int64(row)], "is negative") {
						t.Errorf("row %d: dead %q", row, dead[int64(row)])
					}
				case row >= 10 && row < 15:
					if dead[int64(row)] != "unlucky batch" {
						t.Errorf("row %d: dead %q", row, dead[int64(row)])
					}
				default:
					if seen[int64(row)] != fmt.Sprint(2*v) {
						t.Errorf("row %d: got %q", row, seen[int64(row)])
					}
				}
			}
			mm := snap["twice"]
			if mm.FailedBatchesCounter != 1 || mm.NumInferences != int64(len(seen)) || mm.InferenceBatchLatencyMicroSecs.Count != 79 {
				t.Errorf("metrics %+v", mm)
			}
		})
	}
}

// TestPipelineStops cancels a pipelined run while the model is in a call,
// and stops another with a sink error: Run returns the cause, and the
// model goroutine is gone.
func TestPipelineStops(t *testing.T) {
	pipelined(t)
	before := runtime.NumGoroutine()
	endless := func(yield func(arrow.RecordBatch, error) bool) {
		recs := int64Records([]int64{1, 2, 3, 4}, 4)
		for {
			recs[0].Retain()
			if !yield(recs[0], nil) {
				return
			}
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	m := &twice{block: true, ctx: ctx, started: make(chan struct{}, 1)}
	done := make(chan error)
	go func() {
		e := New(m, Options{MaxBatch: 4})
		defer e.Close()
		_, err := e.Run(ctx, endless, Sink{})
		done <- err
	}()
	<-m.started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}

	full := errors.New("disk full")
	n := 0
	e := New(&twice{}, Options{MaxBatch: 3})
	defer e.Close()
	_, err := e.Run(context.Background(), endless, Sink{Result: func(Result) error {
		if n++; n == 3 {
			return full
		}
		return nil
	}})
	if !errors.Is(err, full) || n != 3 {
		t.Errorf("sink error: got %v after %d results", err, n)
	}

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("goroutines leaked: %d before, %d after", before, g)
	}
}
