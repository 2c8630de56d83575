package inference_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/inference"
)

// doubler is a Go model: y = 2x over an int64 column "x". Rows with x < 0
// are bad rows; a batch holding x == 13 fails as a whole; block, when
// set, makes Run wait for ctx.
type doubler struct {
	block   bool
	started chan struct{}
}

func (d *doubler) ModelID() string        { return "doubler" }
func (d *doubler) BatchSizes() (int, int) { return 0, 0 }
func (d *doubler) Load(ctx context.Context, m *inference.Metrics) (inference.Model, error) {
	return d, nil
}
func (d *doubler) ByteSize() int64 { return 8 }
func (d *doubler) Close() error    { return nil }
func (d *doubler) Run(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	if d.block {
		select {
		case d.started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	x := batch.Column(batch.Schema().FieldIndices("x")[0]).(*array.Int64)
	var bad []inference.BadRow
	b := array.NewInt64Builder(memory.DefaultAllocator)
	defer b.Release()
	for i := range x.Len() {
		switch v := x.Value(i); {
		case v < 0:
			bad = append(bad, inference.BadRow{Row: i, Reason: fmt.Sprintf("x = %d is negative", v)})
		case v == 13:
			return nil, errors.New("unlucky batch")
		default:
			b.Append(2 * v)
		}
	}
	if bad != nil {
		return nil, &inference.BadRowsError{Rows: bad}
	}
	y := b.NewArray()
	defer y.Release()
	return array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "y", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{y}, int64(x.Len())), nil
}

// ints makes records of per rows from vals, in column "x".
func ints(vals []int64, per int) []arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	var recs []arrow.RecordBatch
	for at := 0; at < len(vals); at += per {
		b := array.NewInt64Builder(memory.DefaultAllocator)
		b.AppendValues(vals[at:min(at+per, len(vals))], nil)
		a := b.NewArray()
		recs = append(recs, array.NewRecordBatch(schema, []arrow.Array{a}, int64(a.Len())))
		b.Release()
	}
	return recs
}

func TestDeadLetters(t *testing.T) {
	noLeaks(t)
	vals := make([]int64, 100)
	for i := range vals {
		vals[i] = int64(i)
	}
	vals[5], vals[6], vals[70] = -1, -2, -3 // bad rows
	// Row 13 holds 13: its batch (rows 10..19) fails whole.
	c := newCollect()
	// Records of 7 rows and batches of 10: batches span records.
	snap, err := runOnce(context.Background(), &doubler{}, inference.Options{MaxBatch: 10, Workers: 3, Passthrough: []string{"x"}}, seq(ints(vals, 7)), c.sink())
	if err != nil {
		t.Fatal(err)
	}
	if c.dups != 0 || len(c.results)+len(c.dead) != 100 {
		t.Fatalf("%d predicted, %d dead, %d duplicates", len(c.results), len(c.dead), c.dups)
	}
	for row := range int64(100) {
		switch {
		case row == 5 || row == 6 || row == 70:
			if !strings.Contains(c.dead[row], "is negative") {
				t.Errorf("row %d: dead %q", row, c.dead[row])
			}
		case row >= 10 && row < 20:
			if c.dead[row] != "unlucky batch" {
				t.Errorf("row %d: dead %q", row, c.dead[row])
			}
		default:
			if got := c.results[row]; got["y"] != fmt.Sprint(2*row) || got["x"] != fmt.Sprint(row) {
				t.Errorf("row %d: %v", row, got)
			}
		}
	}
	m := snap["doubler"]
	if m.FailedBatchesCounter != 1 || m.NumInferences != 87 || m.InferenceRequestBatchSize.Max != 10 {
		t.Errorf("metrics %+v", m)
	}
}

func TestCancel(t *testing.T) {
	noLeaks(t)
	d := &doubler{block: true, started: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	endless := func(yield func(arrow.RecordBatch, error) bool) {
		recs := ints([]int64{1, 2, 3, 4}, 4)
		for {
			recs[0].Retain()
			if !yield(recs[0], nil) {
				return
			}
		}
	}
	done := make(chan error)
	go func() {
		_, err := runOnce(ctx, d, inference.Options{MaxBatch: 4, Workers: 2}, iter.Seq2[arrow.RecordBatch, error](endless), inference.Sink{})
		done <- err
	}()
	<-d.started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestSinkAndSourceErrors(t *testing.T) {
	noLeaks(t)
	boom := errors.New("disk full")
	_, err := runOnce(context.Background(), &doubler{}, inference.Options{MaxBatch: 2}, seq(ints([]int64{1, 2, 3, 4, 5, 6}, 2)),
		inference.Sink{Result: func(inference.Result) error { return boom }})
	if !errors.Is(err, boom) {
		t.Errorf("sink error: got %v", err)
	}
	bad := func(yield func(arrow.RecordBatch, error) bool) { yield(nil, errors.New("truncated file")) }
	_, err = runOnce(context.Background(), &doubler{}, inference.Options{}, bad, inference.Sink{})
	if err == nil || !strings.Contains(err.Error(), "truncated file") {
		t.Errorf("source error: got %v", err)
	}
}

// TestMaxBatchDuration: a stream whose next rows are slow in coming still
// gets its first rows answered, in a short batch, once they have waited
// MaxBatchDuration; without it the engine would wait for a full batch.
func TestMaxBatchDuration(t *testing.T) {
	noLeaks(t)
	recs := ints([]int64{1, 2, 3, 4, 5, 6}, 3)
	answered := make(chan int, 10)
	src := func(yield func(arrow.RecordBatch, error) bool) {
		if !yield(recs[0], nil) {
			return
		}
		// The next record comes only after the first rows were answered.
		select {
		case n := <-answered:
			if n != 3 {
				t.Errorf("first batch had %d rows, want the 3 that had come", n)
			}
		case <-time.After(10 * time.Second):
			t.Error("the first rows were never answered: the partial batch was not sent")
			return
		}
		yield(recs[1], nil)
	}
	var got []int64
	sink := inference.Sink{Result: func(r inference.Result) error {
		y := r.Inference.Column(0).(*array.Int64)
		for i := range y.Len() {
			got = append(got, y.Value(i))
		}
		answered <- len(r.Rows)
		return nil
	}}
	for _, workers := range []int{1, 2} {
		got = nil
		_, err := runOnce(context.Background(), &doubler{}, inference.Options{MaxBatch: 64, MaxBatchDuration: 20 * time.Millisecond, Workers: workers}, src, sink)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[2 4 6 8 10 12]" {
			t.Fatalf("workers %d: answers %v", workers, got)
		}
	}
}
