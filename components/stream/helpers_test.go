package stream_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/mempubsub"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/components/stream"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

var features = []string{"Beak Length (mm)", "Beak Depth (mm)", "Flipper Length (mm)", "Body Mass (g)"}

var classes = []string{"Adelie", "Chinstrap", "Gentoo"}

// mlp is the penguins MLP fixture as an ONNX handler.
func mlp(t testing.TB) *inference.ONNXHandler {
	t.Helper()
	orttest.Init(t)
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "models", "penguins-mlp.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return &inference.ONNXHandler{ID: "penguins-mlp", Model: data, Inputs: []inference.Input{{Name: "x", Columns: features}},
		Classifier: &inference.Classifier{Classes: classes, Scores: "probs"}}
}

// penguins returns the vega penguins rows as JSON objects.
func penguins(t testing.TB) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(testenv.VegaData(t, "penguins.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// complete reports whether a penguins row has all four features.
func complete(row map[string]any) bool {
	for _, f := range features {
		if row[f] == nil {
			return false
		}
	}
	return true
}

// message is an input message for row under id, in the nested shape.
func message(t testing.TB, id string, row map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"id": id, "features": row})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// result and deadLetter are the published messages, as a reader sees them.
type result struct {
	ID        string         `json:"id"`
	MessageID string         `json:"message_id"`
	ModelID   string         `json:"model_id"`
	Outputs   map[string]any `json:"outputs"`
}

type deadLetter struct {
	MessageID string `json:"message_id"`
	ModelID   string `json:"model_id"`
	Reason    string `json:"reason"`
	Input     string `json:"input"`
}

// answers collects what a stream published.
type answers struct {
	mu      sync.Mutex
	results []result
	dead    []deadLetter
}

func (a *answers) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.results) + len(a.dead)
}

// read receives from sub into a until ctx ends, acking each message.
func (a *answers) read(ctx context.Context, t testing.TB, sub *pubsub.Subscription, dead bool, got chan<- struct{}) {
	for {
		m, err := sub.Receive(ctx)
		if err != nil {
			return
		}
		m.Ack()
		a.mu.Lock()
		if dead {
			var d deadLetter
			if err := json.Unmarshal(m.Body, &d); err != nil {
				t.Errorf("dead letter %q: %v", m.Body, err)
			}
			a.dead = append(a.dead, d)
		} else {
			var r result
			if err := json.Unmarshal(m.Body, &r); err != nil {
				t.Errorf("result %q: %v", m.Body, err)
			}
			a.results = append(a.results, r)
		}
		a.mu.Unlock()
		select {
		case got <- struct{}{}:
		default:
		}
	}
}

// memStream is a stream over mem:// topics: in feeds the source; the
// sink and dead letters are read into answers.
type memStream struct {
	in      *pubsub.Topic
	cfg     stream.Config
	answers *answers
	got     chan struct{}
}

func newMemStream(t *testing.T, h inference.ModelHandler) *memStream {
	t.Helper()
	in, sink, dead := mempubsub.NewTopic(), mempubsub.NewTopic(), mempubsub.NewTopic()
	src := mempubsub.NewSubscription(in, time.Minute)
	results, deads := mempubsub.NewSubscription(sink, time.Minute), mempubsub.NewSubscription(dead, time.Minute)
	eng := inference.New(h, inference.Options{})
	ms := &memStream{in: in, answers: &answers{}, got: make(chan struct{}, 1),
		cfg: stream.Config{Source: src, Sink: sink, DeadLetters: dead, Engine: eng, Columns: features}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { ms.answers.read(ctx, t, results, false, ms.got) })
	wg.Go(func() { ms.answers.read(ctx, t, deads, true, ms.got) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		eng.Close()
		shut := context.Background()
		for _, s := range []*pubsub.Subscription{src, results, deads} {
			s.Shutdown(shut)
		}
		for _, tp := range []*pubsub.Topic{in, sink, dead} {
			tp.Shutdown(shut)
		}
	})
	return ms
}

func (ms *memStream) publish(t testing.TB, bodies ...[]byte) {
	t.Helper()
	for _, b := range bodies {
		if err := ms.in.Send(context.Background(), &pubsub.Message{Body: b}); err != nil {
			t.Fatal(err)
		}
	}
}

// wait blocks until n answers came in all (a minute at most, as a guard
// against a hang, not a timing assertion).
func (ms *memStream) wait(t testing.TB, n int) {
	t.Helper()
	guard := time.After(time.Minute)
	for ms.answers.count() < n {
		select {
		case <-ms.got:
		case <-time.After(10 * time.Millisecond):
		case <-guard:
			t.Fatalf("waited a minute for %d answers, have %d", n, ms.answers.count())
		}
	}
}

// start runs the stream until the returned stop is called; stop drains
// it and returns Run's outcome.
func (ms *memStream) start(t testing.TB) (stop func() (stream.Stats, error)) {
	ctx, cancel := context.WithCancel(context.Background())
	type outcome struct {
		s   stream.Stats
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		s, err := stream.Run(ctx, ms.cfg)
		done <- outcome{s, err}
	}()
	var once sync.Once
	var out outcome
	stop = func() (stream.Stats, error) {
		once.Do(func() {
			cancel()
			out = <-done
		})
		return out.s, out.err
	}
	t.Cleanup(func() { stop() })
	return stop
}
