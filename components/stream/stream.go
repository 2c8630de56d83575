package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"gocloud.dev/pubsub"

	"github.com/mlsteps/mlsteps/components/inference"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxBatch         = 64
	DefaultMaxBatchDuration = 20 * time.Millisecond
	DefaultMaxInFlight      = 1000
)

// Config says where a stream comes from, where its answers go and how it
// is batched. Source, Sink, DeadLetters and Engine are required; the
// caller opens and shuts them down. Zero values of the rest take the
// defaults.
type Config struct {
	Source      *pubsub.Subscription
	Sink        *pubsub.Topic // one result per answered example
	DeadLetters *pubsub.Topic // one dead letter per example without a result
	// Engine infers the batches; its model loads with the first batch
	// (or before, if the caller ran it already) and stays loaded.
	Engine *inference.Engine
	// Columns are the features read from each message, in the model's
	// terms; Text lists those read as strings (the others are numbers).
	Columns, Text []string
	// MaxBatch bounds a batch's examples (default 64).
	MaxBatch int
	// MaxBatchDuration is how long a batch waits for more examples after
	// its first one came (default 20ms).
	MaxBatchDuration time.Duration
	// MaxInFlight bounds the messages received and not yet acked (default
	// 1000): the backpressure on the source.
	MaxInFlight int
	// Logger receives failures; nil discards them.
	Logger *slog.Logger
}

// Stats count what a Run did.
type Stats struct {
	Received    int64 // messages received
	Results     int64 // results published (and their inputs acked)
	DeadLetters int64 // dead letters published (and their inputs acked), malformed ones included
	Malformed   int64 // messages that were not a valid example
	Nacked      int64 // messages given back to the source after a failure
	// PeakInFlight is the most messages received and not yet acked or
	// nacked at one time; it never exceeds MaxInFlight.
	PeakInFlight int64
}

func (c *Config) check() error {
	switch {
	case c.Source == nil:
		return errors.New("stream: no source subscription")
	case c.Sink == nil:
		return errors.New("stream: no sink topic")
	case c.DeadLetters == nil:
		return errors.New("stream: no dead-letter topic")
	case c.Engine == nil:
		return errors.New("stream: no inference engine")
	case len(c.Columns) == 0:
		return errors.New("stream: no feature columns")
	case c.MaxBatch < 0 || c.MaxBatchDuration < 0 || c.MaxInFlight < 0:
		return fmt.Errorf("stream: negative max batch (%d), max batch duration (%v) or max in flight (%d)",
			c.MaxBatch, c.MaxBatchDuration, c.MaxInFlight)
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxBatchDuration == 0 {
		c.MaxBatchDuration = DefaultMaxBatchDuration
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// pending is a received message on its way to an answer.
type pending struct {
	msg *pubsub.Message
	ex  example
}

// runner is one Run's state.
type runner struct {
	cfg    Config
	dec    *decoder
	sem    chan struct{} // one token per message in flight
	stop   context.CancelFunc
	work   context.Context // publishing and inference: not cancelled by a drain
	pubs   sync.WaitGroup
	mu     sync.Mutex
	err    error // the first error that stopped the stream
	failed atomic.Bool

	received, results, dead, malformed, nacked, inFlight, peak atomic.Int64
}

// Run infers the stream until ctx is cancelled (then it drains and
// returns nil) or it cannot go on (see the package's Errors). The Stats
// count the whole run, drain included.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	if err := cfg.check(); err != nil {
		return Stats{}, err
	}
	recvCtx, stop := context.WithCancel(ctx)
	defer stop()
	r := &runner{cfg: cfg, dec: newDecoder(cfg.Columns, cfg.Text), sem: make(chan struct{}, cfg.MaxInFlight),
		stop: stop, work: context.WithoutCancel(ctx)}
	rows := make(chan pending)
	batches := make(chan []pending, 1)
	var wg sync.WaitGroup
	wg.Go(func() { r.batch(rows, batches) })
	wg.Go(func() {
		for b := range batches {
			r.infer(b)
		}
	})
	r.receive(recvCtx, rows)
	close(rows)
	wg.Wait()
	r.pubs.Wait()
	return r.stats(), r.err
}

func (r *runner) stats() Stats {
	return Stats{Received: r.received.Load(), Results: r.results.Load(), DeadLetters: r.dead.Load(),
		Malformed: r.malformed.Load(), Nacked: r.nacked.Load(), PeakInFlight: r.peak.Load()}
}

// fail records the first error that stops the stream and stops pulling.
func (r *runner) fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
		r.cfg.Logger.Error("stream stopped", "err", err)
	}
	r.mu.Unlock()
	r.failed.Store(true)
	r.stop()
}

// receive pulls messages while a slot is free, until ctx ends or the
// stream fails; malformed ones go straight to the dead letters.
func (r *runner) receive(ctx context.Context, rows chan<- pending) {
	for {
		select {
		case r.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		msg, err := r.cfg.Source.Receive(ctx)
		if err != nil {
			<-r.sem
			if ctx.Err() == nil {
				r.fail(fmt.Errorf("receive: %w", err))
			}
			return
		}
		r.received.Add(1)
		if n := r.inFlight.Add(1); n > r.peak.Load() {
			r.peak.Store(n) // only this goroutine raises it
		}
		ex, err := r.dec.decode(msg.Body)
		if err != nil {
			r.malformed.Add(1)
			r.publishDead(msg, "", err.Error())
			continue
		}
		rows <- pending{msg: msg, ex: ex}
	}
}

// batch gathers examples into batches of at most MaxBatch, sending one
// when it is full or MaxBatchDuration after its first example came.
func (r *runner) batch(rows <-chan pending, batches chan<- []pending) {
	defer close(batches)
	var cur []pending
	// A batch cannot outgrow the messages allowed in flight: waiting for
	// more would only wait out MaxBatchDuration.
	full := min(r.cfg.MaxBatch, r.cfg.MaxInFlight)
	timer := time.NewTimer(r.cfg.MaxBatchDuration)
	timer.Stop()
	flush := func() {
		timer.Stop()
		if len(cur) > 0 {
			batches <- cur
			cur = nil
		}
	}
	for {
		select {
		case p, ok := <-rows:
			if !ok {
				flush()
				return
			}
			cur = append(cur, p)
			if len(cur) == 1 {
				timer.Reset(r.cfg.MaxBatchDuration)
			}
			if len(cur) >= full {
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// infer runs one batch through the engine and publishes an answer per
// example; after a failure that stops the stream the batch is nacked.
func (r *runner) infer(b []pending) {
	if r.failed.Load() {
		r.nackAll(b)
		return
	}
	exs := make([]example, len(b))
	for i, p := range b {
		exs[i] = p.ex
	}
	rec := r.dec.record(exs)
	defer rec.Release()
	answered := make([]bool, len(b))
	sink := inference.Sink{
		Result: func(res inference.Result) error {
			for i, pos := range res.Rows {
				p := b[pos]
				answered[pos] = true
				body, err := json.Marshal(result{ID: p.ex.id, MessageID: p.msg.LoggableID, ModelID: rowModelID(res.Inference, i, res.ModelID),
					Outputs: outputs(res.Inference, i)})
				if err != nil {
					// A NaN output, say: this example has no result to give.
					r.publishDead(p.msg, res.ModelID, "encode result: "+err.Error())
					continue
				}
				r.publish(p.msg, r.cfg.Sink, body, &r.results)
			}
			return nil
		},
		DeadLetter: func(d inference.DeadLetter) error {
			for _, pos := range d.Rows {
				answered[pos] = true
				r.publishDead(b[pos].msg, d.ModelID, d.Reason)
			}
			return nil
		},
	}
	src := func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }
	if _, err := r.cfg.Engine.Run(r.work, src, sink); err != nil {
		r.fail(fmt.Errorf("infer: %w", err))
		var rest []pending
		for i, p := range b {
			if !answered[i] {
				rest = append(rest, p)
			}
		}
		r.nackAll(rest)
	}
}

// publishDead publishes msg's dead letter, then acks msg.
func (r *runner) publishDead(msg *pubsub.Message, modelID, reason string) {
	body, err := json.Marshal(deadLetter{MessageID: msg.LoggableID, ModelID: modelID, Reason: reason, Input: string(msg.Body)})
	if err != nil {
		r.fail(fmt.Errorf("encode dead letter of %s: %w", msg.LoggableID, err))
		r.nackAll([]pending{{msg: msg}})
		return
	}
	r.publish(msg, r.cfg.DeadLetters, body, &r.dead)
}

// publish sends body to t and acks msg once it is sent; a failed send
// stops the stream and nacks msg.
func (r *runner) publish(msg *pubsub.Message, t *pubsub.Topic, body []byte, count *atomic.Int64) {
	r.pubs.Go(func() {
		if err := t.Send(r.work, &pubsub.Message{Body: body}); err != nil {
			r.fail(fmt.Errorf("publish answer to %s: %w", msg.LoggableID, err))
			r.nackAll([]pending{{msg: msg}})
			return
		}
		msg.Ack()
		count.Add(1)
		r.done(1)
	})
}

// nackAll gives messages back to the source, where the driver can.
func (r *runner) nackAll(ps []pending) {
	for _, p := range ps {
		if p.msg.Nackable() {
			p.msg.Nack()
			r.nacked.Add(1)
		}
	}
	r.done(len(ps))
}

// done frees n in-flight slots.
func (r *runner) done(n int) {
	r.inFlight.Add(int64(-n))
	for range n {
		<-r.sem
	}
}
