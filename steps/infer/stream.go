package infer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"gocloud.dev/pubsub"
	_ "gocloud.dev/pubsub/awssnssqs"    // awssqs://, awssns://
	_ "gocloud.dev/pubsub/gcppubsub"    // gcppubsub://
	_ "gocloud.dev/pubsub/kafkapubsub"  // kafka://
	_ "gocloud.dev/pubsub/mempubsub"    // mem://
	_ "gocloud.dev/pubsub/rabbitpubsub" // rabbit://

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/stream"
	"github.com/mlsteps/mlsteps/components/stream/jspubsub"
	"github.com/mlsteps/mlsteps/steps/step"
)

// PropStream is the Predictions property with a streaming run's counts.
const PropStream = "stream"

// streamSplit is the one, empty, split of a streaming run's outputs.
const streamSplit = "stream"

// shutdownTimeout bounds flushing acks and sends after a stream ends.
const shutdownTimeout = 30 * time.Second

// runStream is --stream: examples come from --source, results go to
// --sink and dead letters to --dead-letters until ctx is cancelled
// (SIGTERM), which drains. The outputs are written empty, with the run's
// counts and metrics as properties: the answers are on the topics.
func runStream(ctx context.Context, r *step.Run, s settings) error {
	for _, p := range []string{"source", "sink", "dead-letters"} {
		if r.String(p) == "" {
			return step.Usagef("--stream needs --%s", p)
		}
	}
	if r.Input("examples") != nil {
		return step.Usagef("--stream reads examples from --source, not --in examples")
	}
	if r.Int("max-in-flight") < 1 {
		return step.Usagef("--max-in-flight must be at least 1, not %d", r.Int("max-in-flight"))
	}
	if r.Duration("max-batch-duration") <= 0 {
		return step.Usagef("--max-batch-duration must be positive, not %v", r.Duration("max-batch-duration"))
	}
	if err := initORT(); err != nil {
		return err
	}
	h, desc, err := buildHandler(ctx, r, s, nil)
	if err != nil {
		return err
	}
	eng := inference.New(h, s.opts)
	defer eng.Close()

	// The outputs are written after the drain, when ctx is cancelled.
	keep := context.WithoutCancel(ctx)
	pred, err := r.Output(keep, "predictions")
	if err != nil {
		return err
	}
	dead, err := r.Output(keep, "dead_letters")
	if err != nil {
		return err
	}
	// A Dataset has at least one split: the stream's is empty.
	w, err := newWriter(keep, r.Logger(), pred, dead, []string{streamSplit}, arrow.NewSchema(nil, nil))
	if err != nil {
		return err
	}
	w.startSplit(streamSplit)

	shut, cancel := context.WithTimeout(keep, shutdownTimeout)
	defer cancel()
	src, err := openSubscription(ctx, r.String("source"))
	if err != nil {
		w.abandon()
		return err
	}
	var topics []*pubsub.Topic
	shutdown := func() error { // once, whatever happens
		var first error
		for _, t := range topics {
			if err := t.Shutdown(shut); err != nil && first == nil {
				first = fmt.Errorf("shut down topic: %w", err)
			}
		}
		if err := src.Shutdown(shut); err != nil && first == nil {
			first = fmt.Errorf("shut down subscription %s: %w", redactURL(r.String("source")), err)
		}
		topics, src = nil, nil
		return first
	}
	defer func() {
		if src != nil {
			shutdown()
		}
	}()
	for _, p := range []string{"sink", "dead-letters"} {
		t, err := openTopic(ctx, p, r.String(p))
		if err != nil {
			w.abandon()
			return err
		}
		topics = append(topics, t)
	}

	start := time.Now()
	stats, err := stream.Run(ctx, stream.Config{Source: src, Sink: topics[0], DeadLetters: topics[1], Engine: eng,
		Columns: desc.columns, Text: desc.text, MaxBatch: int(r.Int("batch-max")),
		MaxBatchDuration: r.Duration("max-batch-duration"), MaxInFlight: int(r.Int("max-in-flight")), Logger: r.Logger()})
	took := time.Since(start)
	r.Logger().Info("stream ended", "received", stats.Received, "results", stats.Results, "dead_letters", stats.DeadLetters,
		"malformed", stats.Malformed, "nacked", stats.Nacked, "peak_in_flight", stats.PeakInFlight,
		"messages_per_s", int64(float64(stats.Received)/max(took.Seconds(), 1e-9)))
	if err != nil {
		w.abandon()
		return err
	}
	// Flush sends and acks before the outputs say the run is done.
	if err := shutdown(); err != nil {
		w.abandon()
		return err
	}
	if err := w.close(); err != nil {
		return err
	}
	recordMetrics(pred, eng.Metrics(), stats.Results, stats.DeadLetters)
	pred.SetProperty(PropStream, map[string]any{"received": stats.Received, "results": stats.Results,
		"dead_letters": stats.DeadLetters, "malformed": stats.Malformed, "nacked": stats.Nacked, "peak_in_flight": stats.PeakInFlight})
	dead.SetProperty(PropDeadLetters, stats.DeadLetters)
	return nil
}

// openSubscription opens --source; nats:// is JetStream (gocloud's own
// NATS driver is at-most-once), the rest go through gocloud's URL mux.
func openSubscription(ctx context.Context, raw string) (*pubsub.Subscription, error) {
	var (
		sub *pubsub.Subscription
		err error
	)
	if scheme(raw) == jspubsub.Scheme {
		sub, err = jspubsub.OpenSubscription(ctx, raw)
	} else {
		sub, err = pubsub.OpenSubscription(ctx, raw)
	}
	if err != nil {
		return nil, step.BadInput(fmt.Errorf("--source %s: %w", redactURL(raw), err))
	}
	return sub, nil
}

func openTopic(ctx context.Context, param, raw string) (*pubsub.Topic, error) {
	var (
		t   *pubsub.Topic
		err error
	)
	if scheme(raw) == jspubsub.Scheme {
		t, err = jspubsub.OpenTopic(ctx, raw)
	} else {
		t, err = pubsub.OpenTopic(ctx, raw)
	}
	if err != nil {
		return nil, step.BadInput(fmt.Errorf("--%s %s: %w", param, redactURL(raw), err))
	}
	return t, nil
}

func scheme(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme
}

// redactURL hides a URL's password.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// streamNonce makes each streaming run's cache key its own: what it
// answers depends on the broker, not on its inputs.
func streamNonce() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
