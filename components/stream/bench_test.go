package stream_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/mempubsub"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/stream"
	"github.com/mlsteps/mlsteps/components/stream/jspubsub"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// broker is the topics and subscriptions of one benchmarked stream.
type broker struct {
	in               *pubsub.Topic
	src              *pubsub.Subscription
	sink, dead       *pubsub.Topic
	results, letters *pubsub.Subscription
}

func (br broker) shutdown() {
	ctx := context.Background()
	for _, s := range []*pubsub.Subscription{br.src, br.results, br.letters} {
		s.Shutdown(ctx)
	}
	for _, t := range []*pubsub.Topic{br.in, br.sink, br.dead} {
		t.Shutdown(ctx)
	}
}

func memBroker(testing.TB) broker {
	in, sink, dead := mempubsub.NewTopic(), mempubsub.NewTopic(), mempubsub.NewTopic()
	return broker{in: in, src: mempubsub.NewSubscription(in, time.Minute), sink: sink, dead: dead,
		results: mempubsub.NewSubscription(sink, time.Minute), letters: mempubsub.NewSubscription(dead, time.Minute)}
}

// natsBroker makes a JetStream stream for one run and opens its subjects
// through jspubsub; it skips (fails under CI) without a server.
func natsBroker(tb testing.TB) broker {
	tb.Helper()
	server := os.Getenv("NATS_SERVER_URL")
	if server == "" {
		server = nats.DefaultURL
	}
	nc, err := nats.Connect(server, nats.Timeout(2*time.Second))
	if err != nil {
		testenv.Missing(tb, "no NATS server at %s: %v", server, err)
		return broker{}
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "mlsteps-bench-" + hex.EncodeToString(b[:])
	name := strings.ReplaceAll(prefix, "-", "_")
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"}}); err != nil {
		testenv.Missing(tb, "NATS at %s: no JetStream: %v", server, err)
	}
	tb.Cleanup(func() { js.DeleteStream(context.Background(), name) })
	var br broker
	for _, t := range []struct {
		p   **pubsub.Topic
		sub string
	}{{&br.in, "in"}, {&br.sink, "out"}, {&br.dead, "dead"}} {
		if *t.p, err = jspubsub.OpenTopic(ctx, "nats://"+prefix+"."+t.sub); err != nil {
			tb.Fatal(err)
		}
	}
	for _, s := range []struct {
		p   **pubsub.Subscription
		url string
	}{{&br.src, "in?consumer=infer"}, {&br.results, "out?consumer=reader-out"}, {&br.letters, "dead?consumer=reader-dead"}} {
		if *s.p, err = jspubsub.OpenSubscription(ctx, "nats://"+prefix+"."+s.url); err != nil {
			tb.Fatal(err)
		}
	}
	return br
}

// BenchmarkStream pushes penguins through a stream with the MLP, one
// message per iteration, from 16 publishers, and reports messages/s and
// the p50/p99 latency from publishing an example to reading its answer:
// flooded (everything published at once: throughput, and latency that
// is mostly queueing) and with at most 64 examples unanswered (latency
// under a light load).
func BenchmarkStream(b *testing.B) {
	for _, bc := range []struct {
		name string
		open func(testing.TB) broker
	}{{"mem", memBroker}, {"nats-jetstream", natsBroker}} {
		for _, window := range []int{0, 64} {
			name := bc.name + "/flood"
			if window > 0 {
				name = bc.name + "/window-" + strconv.Itoa(window)
			}
			b.Run(name, func(b *testing.B) { benchStream(b, name, mlp(b), bc.open(b), window) })
		}
	}
}

// streamMessages is how many messages one flooded iteration sends:
// enough for a throughput and a p99 even when `make bench` runs one
// iteration; a windowed one (a latency measurement, and mempubsub polls
// an empty queue every 250ms) sends a tenth.
const streamMessages = 20000

// benchStream runs streamMessages×b.N messages through br; window > 0
// bounds the messages published and not yet answered.
func benchStream(b *testing.B, name string, h inference.ModelHandler, br broker, window int) {
	total := streamMessages * b.N
	if window > 0 {
		total /= 10
	}
	defer br.shutdown()
	var rows [][]byte
	for i, row := range penguins(b) {
		if complete(row) {
			rows = append(rows, message(b, strconv.Itoa(i), row))
		}
	}
	eng := inference.New(h, inference.Options{})
	defer eng.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := stream.Run(ctx, stream.Config{Source: br.src, Sink: br.sink, DeadLetters: br.dead, Engine: eng,
			Columns: features, MaxBatch: 256, MaxBatchDuration: 2 * time.Millisecond})
		done <- err
	}()

	sent := make([]time.Time, total)
	lat := make([]time.Duration, 0, total)
	var mu sync.Mutex
	answered := make(chan struct{})
	slots := make(chan struct{}, max(window, 1))
	acquire, release := func() {}, func() {}
	if window > 0 {
		acquire, release = func() { slots <- struct{}{} }, func() { <-slots }
	}
	readCtx, stopRead := context.WithCancel(context.Background())
	defer stopRead()
	read := func(sub *pubsub.Subscription) {
		for {
			m, err := sub.Receive(readCtx)
			if err != nil {
				return
			}
			now := time.Now()
			m.Ack()
			var a struct {
				ID        string `json:"id"`
				Input     string `json:"input"`
				MessageID string `json:"message_id"`
			}
			if err := json.Unmarshal(m.Body, &a); err != nil {
				b.Error(err)
				return
			}
			if a.ID == "" { // a dead letter: the id is in its input
				var in struct{ ID string }
				_ = json.Unmarshal([]byte(a.Input), &in)
				a.ID = in.ID
			}
			i, _ := strconv.Atoi(strings.TrimPrefix(a.ID, "b"))
			release()
			mu.Lock()
			lat = append(lat, now.Sub(sent[i]))
			if len(lat) == total {
				close(answered)
			}
			mu.Unlock()
		}
	}
	var readers sync.WaitGroup
	readers.Go(func() { read(br.results) })
	readers.Go(func() { read(br.letters) })

	b.ResetTimer()
	start := time.Now()
	var pubs sync.WaitGroup
	const publishers = 16
	for p := range publishers {
		pubs.Go(func() {
			for i := p; i < total; i += publishers {
				var msg map[string]any
				_ = json.Unmarshal(rows[i%len(rows)], &msg)
				msg["id"] = "b" + strconv.Itoa(i)
				body, _ := json.Marshal(msg)
				acquire()
				mu.Lock()
				sent[i] = time.Now()
				mu.Unlock()
				if err := br.in.Send(context.Background(), &pubsub.Message{Body: body}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	pubs.Wait()
	select {
	case <-answered:
	case <-time.After(5 * time.Minute):
		b.Fatalf("answers for %d of %d messages in 5 minutes", len(lat), total)
	}
	took := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	stopRead()
	readers.Wait()
	slices.Sort(lat)
	b.ReportMetric(float64(total)/took.Seconds(), "msgs/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
	testenv.BenchRow(b, testenv.Row{Issue: 9, Figure: fmt.Sprintf("stream %s: throughput, %d penguins messages", name, total), Ours: float64(total) / took.Seconds(), Unit: "msgs/s"})
	testenv.BenchRow(b, testenv.Row{Issue: 9, Figure: "stream " + name + ": publish-to-answer latency", Ours: float64(lat[len(lat)/2].Microseconds()) / 1000,
		Unit: fmt.Sprintf("ms p50, %.1f ms p99", float64(lat[len(lat)*99/100].Microseconds())/1000)})
}
