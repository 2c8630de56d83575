package inference

import (
	"context"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// depth is how many batches the pipeline keeps in flight.
const depth = 16

// A goroutine that waits for the other side of the pipeline first polls,
// and parks only if that takes long: waking a parked goroutine costs the
// waker microseconds (a futex call, and in a virtual machine an interrupt
// to the sleeping CPU), a visible share of a small model's call.
const (
	// spinBelow: while the model's calls take less than this, the
	// engine's goroutine polls for up to this long for one to end. It
	// does not poll for slower calls: polling keeps every P busy, and
	// then the runtime's sysmon takes the P of a goroutine that stays in
	// one cgo call across its ticks (20µs and up), which costs the model
	// goroutine a reschedule; a slower model instead wakes the engine's
	// goroutine once per depth-lowWater batches.
	spinBelow = 40 * time.Microsecond
	// feedSpin is how long the model goroutine polls for the next batch.
	feedSpin = 50 * time.Microsecond
	// lowWater: a parked engine goroutine is woken when the model has
	// this many batches left to start, time enough to refill the ring.
	lowWater = depth / 4
)

// ring carries flights from the engine's goroutine (the feeder) to the
// model goroutine and back, in order: flight k sits in slots[k%depth];
// sent counts the flights the feeder has published, inferred those the
// model goroutine is done with. Each counter is written by one side only,
// and they sit on separate cache lines, so a batch moves between the two
// CPUs with a few cache-line transfers and no lock.
type ring struct {
	slots    [depth]*flight
	sent     atomic.Int64
	_        [56]byte
	inferred atomic.Int64
	_        [56]byte
	closed   atomic.Bool // no flight will be sent after the last one
	// A side that parks sets its flag and waits on its channel; the
	// other side, seeing the flag, clears it and sends one token.
	feederParked, modelParked atomic.Bool
	wakeFeeder, wakeModel     chan struct{}
}

// pipeline runs src with one worker, overlapping the Go-side work with the
// model calls: a second goroutine makes the calls, one at a time and in
// order, while this one cuts and prepares the next batches and finishes
// the previous ones, so results keep the input order. At most depth
// batches are in flight.
func (w *worker) pipeline(ctx context.Context, src iter.Seq2[arrow.RecordBatch, error]) error {
	r := &ring{wakeFeeder: make(chan struct{}, 1), wakeModel: make(chan struct{}, 1)}
	var (
		model     sync.WaitGroup
		sent, got int64 // flights published, and collected back
		// took is the last collected model call's time; a guess at first.
		took = spinBelow / 2
	)
	// collect finishes the flights the model is done with, waiting while
	// more than most are in flight.
	collect := func(most int64) {
		for got < sent {
			if got < r.inferred.Load() {
				f := r.slots[got%depth]
				r.slots[got%depth] = nil
				got++
				took = f.took
				w.complete(ctx, f)
				continue
			}
			if sent-got <= most {
				return
			}
			spin := time.Duration(0)
			if took < spinBelow {
				spin = spinBelow
			}
			r.awaitModel(got, spin)
		}
	}
	err := w.e.batches(ctx, src, w.size, func(j job) error {
		collect(depth - 1)
		f := w.start(ctx, j)
		if f == nil {
			return nil
		}
		r.slots[sent%depth] = f
		sent++
		r.sent.Store(sent)
		if sent == 1 {
			// Started with work waiting, it need not be woken for it.
			model.Go(func() { r.infer(ctx) })
		} else {
			r.wake(&r.modelParked, r.wakeModel)
		}
		return nil
	})
	collect(0)
	r.closed.Store(true)
	r.wake(&r.modelParked, r.wakeModel)
	model.Wait()
	return err
}

// infer makes the model calls of the ring's flights, in order.
func (r *ring) infer(ctx context.Context) {
	var n int64 // flights taken
	// One clock reading per batch: a call starts when the previous one
	// ended, unless this goroutine had to wait for it.
	start := time.Now()
	for {
		if r.sent.Load() <= n {
			if !r.awaitFeeder(n) {
				return
			}
			start = time.Now()
		}
		f := r.slots[n%depth]
		if f.err = ctx.Err(); f.err == nil {
			f.err = f.call.infer()
		}
		end := time.Now()
		f.took = end.Sub(start)
		start = end
		n++
		r.inferred.Store(n)
		if r.feederParked.Load() && r.sent.Load()-n <= lowWater {
			r.wake(&r.feederParked, r.wakeFeeder)
		}
	}
}

// wake sends the parked side its token, if it is parked.
func (r *ring) wake(parked *atomic.Bool, ch chan struct{}) {
	if parked.Load() && parked.CompareAndSwap(true, false) {
		ch <- struct{}{}
	}
}

// park waits on ch unless ready, checked after the flag is set so that
// the other side either sees the flag or made ready true first.
func park(parked *atomic.Bool, ch chan struct{}, ready func() bool) {
	parked.Store(true)
	if ready() && parked.CompareAndSwap(true, false) {
		return
	}
	<-ch // the other side cleared the flag: its token is on the way
}

// awaitModel returns once the model is done with flight got, polling for
// up to spin first.
func (r *ring) awaitModel(got int64, spin time.Duration) {
	start := time.Now()
	for r.inferred.Load() <= got {
		if time.Since(start) < spin {
			runtime.Gosched()
			continue
		}
		park(&r.feederParked, r.wakeFeeder, func() bool { return r.inferred.Load() > got })
	}
}

// awaitFeeder returns once flight n is sent, or false when the ring is
// closed without it.
func (r *ring) awaitFeeder(n int64) bool {
	start := time.Now()
	for r.sent.Load() <= n {
		if r.closed.Load() {
			return r.sent.Load() > n
		}
		if time.Since(start) < feedSpin {
			runtime.Gosched()
			continue
		}
		park(&r.modelParked, r.wakeModel, func() bool { return r.sent.Load() > n || r.closed.Load() })
	}
	return true
}
