// Package jspubsub is a gocloud.dev/pubsub driver for NATS JetStream,
// giving NATS at-least-once delivery: a message stays with the server
// until the subscriber acks it, and one never acked (its consumer killed,
// say) is delivered again once its ack wait runs out. gocloud's own
// natspubsub speaks core NATS, where a message is delivered at most once
// and acks do nothing.
//
// A topic publishes to a subject that a JetStream stream holds and waits
// for the stream's acknowledgement; a subscription reads one durable pull
// consumer of such a stream, filtered to one subject, created when it is
// missing. Streams are not created here: they are the broker's
// configuration (retention, replicas, limits).
//
// Usage:
//
//	topic, err := jspubsub.OpenTopic(ctx, "nats://penguins.results")
//	sub, err := jspubsub.OpenSubscription(ctx, "nats://penguins.examples?consumer=infer&ack_wait=30s")
//
// # URLs
//
// nats://SUBJECT names a subject; the server is $NATS_SERVER_URL, else
// nats://127.0.0.1:4222. A subscription URL needs consumer=NAME (the
// durable consumer) and takes ack_wait (how long a delivered message may
// stay unacked before it is delivered again; default 30s) and
// max_ack_pending (the server's bound on unacked messages; default the
// server's, 1000).
//
// Message ids (pubsub.Message.LoggableID) are STREAM:SEQUENCE, the same
// on every delivery of a message, so consumers can drop duplicates.
//
// # As
//
// Topic.As: *nats.Conn, jetstream.JetStream. Subscription.As: *nats.Conn,
// jetstream.Consumer. Message.As: jetstream.Msg.
package jspubsub

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocloud.dev/gcerrors"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/batcher"
	"gocloud.dev/pubsub/driver"
)

// Scheme is the URL scheme this driver opens.
const Scheme = "nats"

// fetchWait is how long a receive waits for a message when none is
// there.
const fetchWait = 500 * time.Millisecond

// connect dials the server named by $NATS_SERVER_URL.
func connect() (*nats.Conn, jetstream.JetStream, error) {
	server := os.Getenv("NATS_SERVER_URL")
	if server == "" {
		server = nats.DefaultURL
	}
	nc, err := nats.Connect(server, nats.Name("mlsteps"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS %s: %w", server, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("JetStream on %s: %w", server, err)
	}
	return nc, js, nil
}

// subject reads a nats:// URL's subject.
func subject(raw string) (*url.URL, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("parse %q: %w", raw, err)
	}
	if u.Scheme != Scheme {
		return nil, "", fmt.Errorf("%q: want a %s:// URL", raw, Scheme)
	}
	subj := u.Host + u.Path
	if subj == "" {
		return nil, "", fmt.Errorf("%q names no subject", raw)
	}
	return u, subj, nil
}

// OpenTopic opens a topic publishing to the URL's subject, which a
// stream must hold. The topic owns its connection; Shutdown closes it.
func OpenTopic(ctx context.Context, rawURL string) (*pubsub.Topic, error) {
	u, subj, err := subject(rawURL)
	if err != nil {
		return nil, err
	}
	if len(u.Query()) > 0 {
		return nil, fmt.Errorf("open topic %s: unknown query parameters %v", rawURL, u.Query())
	}
	nc, js, err := connect()
	if err != nil {
		return nil, err
	}
	if _, err := js.StreamNameBySubject(ctx, subj); err != nil {
		nc.Close()
		return nil, fmt.Errorf("open topic %s: no JetStream stream holds subject %q: %w", rawURL, subj, err)
	}
	return pubsub.NewTopic(&topic{nc: nc, js: js, subject: subj}, &batcher.Options{MaxHandlers: 4, MaxBatchSize: 256}), nil
}

type topic struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
}

// SendBatch publishes every message, then waits for the stream to
// acknowledge each: a message is sent once the stream holds it.
func (t *topic) SendBatch(ctx context.Context, ms []*driver.Message) error {
	futures := make([]jetstream.PubAckFuture, 0, len(ms))
	for _, m := range ms {
		msg := nats.NewMsg(t.subject)
		msg.Data = m.Body
		for k, v := range m.Metadata {
			msg.Header.Set(k, v)
		}
		if m.BeforeSend != nil {
			if err := m.BeforeSend(func(i any) bool { return asMsg(msg, i) }); err != nil {
				return err
			}
		}
		f, err := t.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publish to %s: %w", t.subject, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish to %s: %w", t.subject, err)
		case <-ctx.Done():
			return ctx.Err()
		}
		if m := ms[i]; m.AfterSend != nil {
			if err := m.AfterSend(func(any) bool { return false }); err != nil {
				return err
			}
		}
	}
	return nil
}

func asMsg(msg *nats.Msg, i any) bool {
	p, ok := i.(**nats.Msg)
	if ok {
		*p = msg
	}
	return ok
}

func (t *topic) IsRetryable(error) bool { return false }

func (t *topic) As(i any) bool {
	switch p := i.(type) {
	case **nats.Conn:
		*p = t.nc
	case *jetstream.JetStream:
		*p = t.js
	default:
		return false
	}
	return true
}

func (t *topic) ErrorAs(err error, i any) bool { return errors.As(err, i) }

func (t *topic) ErrorCode(err error) gcerrors.ErrorCode { return errorCode(err) }

func (t *topic) Close() error {
	err := t.nc.Flush()
	t.nc.Close()
	return err
}

// OpenSubscription opens a subscription reading the durable pull
// consumer the URL names, on the stream holding its subject; the
// consumer is created (or updated) to filter that subject with explicit
// acks. The subscription owns its connection; Shutdown closes it.
func OpenSubscription(ctx context.Context, rawURL string) (*pubsub.Subscription, error) {
	u, subj, err := subject(rawURL)
	if err != nil {
		return nil, err
	}
	cfg := jetstream.ConsumerConfig{FilterSubject: subj, AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, AckWait: 30 * time.Second}
	for k, v := range u.Query() {
		if len(v) != 1 {
			return nil, fmt.Errorf("open subscription %s: %s given %d times", rawURL, k, len(v))
		}
		switch k {
		case "consumer":
			cfg.Durable = v[0]
		case "ack_wait":
			if cfg.AckWait, err = time.ParseDuration(v[0]); err != nil || cfg.AckWait <= 0 {
				return nil, fmt.Errorf("open subscription %s: ack_wait %q is not a positive duration", rawURL, v[0])
			}
		case "max_ack_pending":
			if cfg.MaxAckPending, err = strconv.Atoi(v[0]); err != nil || cfg.MaxAckPending < 1 {
				return nil, fmt.Errorf("open subscription %s: max_ack_pending %q is not a positive integer", rawURL, v[0])
			}
		default:
			return nil, fmt.Errorf("open subscription %s: unknown query parameter %q", rawURL, k)
		}
	}
	if cfg.Durable == "" {
		return nil, fmt.Errorf("open subscription %s: consumer=NAME is required (a durable consumer keeps unacked messages for the next run)", rawURL)
	}
	nc, js, err := connect()
	if err != nil {
		return nil, err
	}
	stream, err := js.StreamNameBySubject(ctx, subj)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("open subscription %s: no JetStream stream holds subject %q: %w", rawURL, subj, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("open subscription %s: consumer %s on stream %s: %w", rawURL, cfg.Durable, stream, err)
	}
	sub := &subscription{nc: nc, cons: cons, msgs: make(chan jetstream.Msg, prefetch), done: make(chan struct{})}
	// Consume keeps pull requests open, so a message is handed over as
	// soon as it is stored; a Fetch per receive would wait for a full
	// batch or its expiry.
	sub.cc, err = cons.Consume(func(m jetstream.Msg) {
		select {
		case sub.msgs <- m:
		case <-sub.done:
		}
	}, jetstream.PullMaxMessages(prefetch))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("open subscription %s: consume: %w", rawURL, err)
	}
	return pubsub.NewSubscription(sub, nil, nil), nil
}

// prefetch is how many messages the client asks for ahead of Receive.
const prefetch = 256

type subscription struct {
	nc   *nats.Conn
	cons jetstream.Consumer
	cc   jetstream.ConsumeContext
	msgs chan jetstream.Msg
	done chan struct{} // closed by Close
	once sync.Once
}

// ReceiveBatch returns up to max messages: it waits at most fetchWait
// for the first, then takes those already delivered.
func (s *subscription) ReceiveBatch(ctx context.Context, max int) ([]*driver.Message, error) {
	timer := time.NewTimer(fetchWait)
	defer timer.Stop()
	var out []*driver.Message
	select {
	case m := <-s.msgs:
		out = append(out, s.message(m))
	case <-timer.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for len(out) < max {
		select {
		case m := <-s.msgs:
			out = append(out, s.message(m))
		default:
			return out, nil
		}
	}
	return out, nil
}

func (s *subscription) message(m jetstream.Msg) *driver.Message {
	id := "unknown"
	if meta, err := m.Metadata(); err == nil {
		id = meta.Stream + ":" + strconv.FormatUint(meta.Sequence.Stream, 10)
	}
	var md map[string]string
	for k, v := range m.Headers() {
		if len(v) > 0 {
			if md == nil {
				md = map[string]string{}
			}
			md[k] = v[0]
		}
	}
	return &driver.Message{LoggableID: id, Body: m.Data(), Metadata: md, AckID: m,
		AsFunc: func(i any) bool {
			p, ok := i.(*jetstream.Msg)
			if ok {
				*p = m
			}
			return ok
		}}
}

// SendAcks acks each message without waiting for the server's reply: an
// ack lost on the way only means the message comes again.
func (s *subscription) SendAcks(ctx context.Context, ids []driver.AckID) error {
	for _, id := range ids {
		if err := id.(jetstream.Msg).Ack(); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
	}
	return nil
}

func (s *subscription) CanNack() bool { return true }

// SendNacks asks the server to deliver the messages again now.
func (s *subscription) SendNacks(ctx context.Context, ids []driver.AckID) error {
	for _, id := range ids {
		if err := id.(jetstream.Msg).Nak(); err != nil {
			return fmt.Errorf("nak: %w", err)
		}
	}
	return nil
}

func (s *subscription) IsRetryable(error) bool { return false }

func (s *subscription) As(i any) bool {
	switch p := i.(type) {
	case **nats.Conn:
		*p = s.nc
	case *jetstream.Consumer:
		*p = s.cons
	default:
		return false
	}
	return true
}

func (s *subscription) ErrorAs(err error, i any) bool { return errors.As(err, i) }

func (s *subscription) ErrorCode(err error) gcerrors.ErrorCode { return errorCode(err) }

// Close stops pulling, flushes the acks sent so far and closes the
// connection; messages delivered and not received come again after
// their ack wait.
func (s *subscription) Close() error {
	var err error
	s.once.Do(func() {
		s.cc.Stop()
		close(s.done)
		err = s.nc.Flush()
		s.nc.Close()
	})
	return err
}

func errorCode(err error) gcerrors.ErrorCode {
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrConsumerNotFound):
		return gcerrors.NotFound
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return gcerrors.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return gcerrors.Canceled
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrNoServers):
		return gcerrors.Internal
	}
	return gcerrors.Unknown
}
