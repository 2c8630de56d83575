package infer_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"
	"gocloud.dev/pubsub"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/stream/jspubsub"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/infer"
	"github.com/mlsteps/mlsteps/steps/step"
)

// penguinRows returns the vega penguins rows as JSON objects.
func penguinRows(t testing.TB) []map[string]any {
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

// inputs makes n input messages cycling through the penguins; every
// tenth is flat instead of nested. complete counts those with all four
// features.
func inputs(t testing.TB, n int) (bodies [][]byte, complete int) {
	rows := penguinRows(t)
	for i := range n {
		row := rows[i%len(rows)]
		msg := map[string]any{"id": strconv.Itoa(i), "features": row}
		if i%10 == 0 {
			msg = map[string]any{"id": strconv.Itoa(i)}
			for k, v := range row {
				msg[k] = v
			}
		}
		b, err := json.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
		full := true
		for _, f := range features {
			full = full && row[f] != nil
		}
		if full {
			complete++
		}
	}
	return bodies, complete
}

// answer is a result or a dead letter as a reader sees it.
type answer struct {
	ID        json.RawMessage `json:"id"`
	MessageID string          `json:"message_id"`
	ModelID   string          `json:"model_id"`
	Outputs   map[string]any  `json:"outputs"`
	Reason    string          `json:"reason"`
	Input     string          `json:"input"`
	dead      bool
}

// collector reads answers from subscriptions until stopped.
type collector struct {
	mu      sync.Mutex
	answers []answer
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	pinged  atomic.Int64 // answers to ping, not kept
}

// ping is a malformed message whose dead letter says a stream is up.
const ping = `"ping"`

func collect(t testing.TB, results, dead *pubsub.Subscription) *collector {
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{cancel: cancel}
	read := func(sub *pubsub.Subscription, isDead bool) {
		for {
			m, err := sub.Receive(ctx)
			if err != nil {
				return
			}
			m.Ack()
			var a answer
			if err := json.Unmarshal(m.Body, &a); err != nil {
				t.Errorf("answer %q: %v", m.Body, err)
			}
			a.dead = isDead
			if a.Input == ping {
				c.pinged.Add(1)
				continue
			}
			c.mu.Lock()
			c.answers = append(c.answers, a)
			c.mu.Unlock()
		}
	}
	c.wg.Go(func() { read(results, false) })
	c.wg.Go(func() { read(dead, true) })
	t.Cleanup(c.stop)
	return c
}

// drop removes the answers to inputs of the given text; it returns how
// many distinct messages they answered.
func (c *collector) drop(input string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.answers[:0]
	seen := map[string]bool{}
	for _, a := range c.answers {
		if a.Input == input {
			seen[a.MessageID] = true
		} else {
			kept = append(kept, a)
		}
	}
	c.answers = kept
	return len(seen)
}

func (c *collector) stop() {
	c.cancel()
	c.wg.Wait()
}

// distinct counts answers by message id.
func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for _, a := range c.answers {
		seen[a.MessageID] = true
	}
	return len(seen)
}

// waitFor polls until at least n distinct inputs are answered; the limit
// guards against a hang and is no timing assertion.
func (c *collector) waitFor(t testing.TB, n int, limit time.Duration, alive func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for c.distinct() < n {
		if alive != nil {
			if err := alive(); err != nil {
				t.Fatalf("consumer stopped with %d of %d answered: %v", c.distinct(), n, err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %d answers, have %d", limit, n, c.distinct())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// check asserts every input (by example id) has an answer, each result
// is a penguin label from the model and every dead letter a missing
// feature; it returns the duplicates (answers beyond one per message id).
func (c *collector) check(t testing.TB, n, complete int) (dups int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	byMsg := map[string]answer{}
	results := 0
	for _, a := range c.answers {
		if prev, ok := byMsg[a.MessageID]; ok {
			dups++
			if prev.dead != a.dead {
				t.Errorf("message %s answered both as a result and a dead letter", a.MessageID)
			}
			continue
		}
		byMsg[a.MessageID] = a
		switch {
		case a.dead:
			if !strings.Contains(a.Reason, "is null") {
				t.Errorf("dead letter %+v: want a null feature", a)
			}
		default:
			results++
			if l, _ := a.Outputs["label"].(string); !strings.Contains("Adelie Chinstrap Gentoo", l) || l == "" || a.ModelID == "" {
				t.Errorf("result %+v: want a penguin label and a model id", a)
			}
		}
	}
	ids := map[string]bool{}
	for _, a := range byMsg {
		var id string
		if a.dead {
			var in struct{ ID string }
			_ = json.Unmarshal([]byte(a.Input), &in)
			id = in.ID
		} else if err := json.Unmarshal(a.ID, &id); err != nil {
			t.Errorf("result id %s: %v", a.ID, err)
		}
		if ids[id] {
			t.Errorf("example %s answered under two message ids", id)
		}
		ids[id] = true
	}
	if len(ids) != n || results != complete {
		t.Errorf("%d examples answered of %d, %d results (want %d)", len(ids), n, results, complete)
	}
	return dups
}

// streamParams are the step's parameters for a stream.
func streamParams(source, sink, dead string) map[string]any {
	return map[string]any{"stream": true, "source": source, "sink": sink, "dead-letters": dead,
		"max-batch-duration": 5 * time.Millisecond}
}

// runStep runs the step in-process until stop is called; stop drains
// it (as SIGTERM does) and returns its error.
func (e *env) runStep(name, model string, params map[string]any) (out artifacts.URI, stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	out = e.root.Join(name)
	done := make(chan error, 1)
	inputs := map[string]string{"model": model}
	if model == "" { // the params name the models (--ab, --watch)
		inputs = nil
	}
	go func() {
		done <- step.Execute(ctx, infer.Spec(), step.Invocation{Inputs: inputs, OutRoot: out.String(), Params: params},
			step.Env{Store: e.store})
	}()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	e.t.Cleanup(func() { stop() })
	return out, stop
}

// TestStreamUsage checks the parameters --stream needs, and that the
// batch mode still needs its examples.
func TestStreamUsage(t *testing.T) {
	e := newEnv(t)
	model := e.model("penguins-mlp.onnx", nil)
	for name, tc := range map[string]struct {
		inputs map[string]string
		params map[string]any
		want   string
	}{
		"no source":          {map[string]string{"model": model}, map[string]any{"stream": true, "sink": "mem://a", "dead-letters": "mem://b"}, "--stream needs --source"},
		"no dead letters":    {map[string]string{"model": model}, map[string]any{"stream": true, "source": "mem://a", "sink": "mem://b"}, "--stream needs --dead-letters"},
		"no examples":        {map[string]string{"model": model}, nil, "input examples"},
		"zero in flight":     {map[string]string{"model": model}, map[string]any{"stream": true, "source": "mem://a", "sink": "mem://b", "dead-letters": "mem://c", "max-in-flight": int64(0)}, "--max-in-flight"},
		"unknown scheme":     {map[string]string{"model": model}, map[string]any{"stream": true, "source": "nope://a", "sink": "mem://b", "dead-letters": "mem://c"}, "--source nope://a"},
		"kafka needs broker": {map[string]string{"model": model}, map[string]any{"stream": true, "source": "kafka://group?topic=x", "sink": "mem://b", "dead-letters": "mem://c"}, "KAFKA_BROKERS"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := e.infer("usage-"+strings.ReplaceAll(name, " ", "-"), tc.inputs, tc.params)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if code := step.ExitCode(err); code != step.ExitUsage {
				t.Errorf("exit code %d, want %d", code, step.ExitUsage)
			}
		})
	}
}

// TestStreamKafkaWiring opens the kafka:// driver through the step's URL
// handling: with a broker list it gets as far as dialing (no broker
// here), which only a linked driver does.
func TestStreamKafkaWiring(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "127.0.0.1:1")
	_, err := pubsub.OpenTopic(context.Background(), "kafka://results")
	if err == nil || strings.Contains(err.Error(), "no driver registered") {
		t.Fatalf("kafka:// topic: %v, want a dial error from the kafka driver", err)
	}
}

// TestStreamMem runs the step over mem:// topics: every message is
// answered, and the drained run's outputs carry its counts.
func TestStreamMem(t *testing.T) {
	e := newEnv(t)
	model := e.model("penguins-mlp.onnx", nil)
	ctx := context.Background()
	name := "mem://" + t.Name() + "-"
	in, err := pubsub.OpenTopic(ctx, name+"in")
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"out", "dead"} {
		if _, err := pubsub.OpenTopic(ctx, name+topic); err != nil {
			t.Fatal(err)
		}
	}
	results, err := pubsub.OpenSubscription(ctx, name+"out")
	if err != nil {
		t.Fatal(err)
	}
	dead, err := pubsub.OpenSubscription(ctx, name+"dead")
	if err != nil {
		t.Fatal(err)
	}
	c := collect(t, results, dead)
	out, stop := e.runStep("mem", model, streamParams(name+"in", name+"out", name+"dead"))
	// mem:// drops what is sent before the step subscribes: ping until a
	// ping is answered.
	for c.pinged.Load() == 0 {
		if err := in.Send(ctx, &pubsub.Message{Body: []byte(ping)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	bodies, complete := inputs(t, 1000)
	for _, b := range bodies {
		if err := in.Send(ctx, &pubsub.Message{Body: b}); err != nil {
			t.Fatal(err)
		}
	}
	c.waitFor(t, len(bodies), time.Minute, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if dups := c.check(t, len(bodies), complete); dups != 0 {
		t.Errorf("%d duplicates through mem://", dups)
	}
	pred, err := e.store.Open(ctx, out.Join("predictions"), artifacts.TypePredictions)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := artifacts.Property[map[string]int64](pred.Sidecar, infer.PropStream)
	if err != nil {
		t.Fatal(err)
	}
	// The pings are the malformed messages.
	if counts["received"]-counts["malformed"] != int64(len(bodies)) || counts["results"] != int64(complete) || counts["malformed"] < 1 {
		t.Errorf("stream counts %v, want %d received beside %d pings and %d results", counts, len(bodies), c.pinged.Load(), complete)
	}
}

// natsJS connects to the NATS server with JetStream, skipping (failing
// under CI) when there is none.
func natsJS(t testing.TB) jetstream.JetStream {
	t.Helper()
	server := os.Getenv("NATS_SERVER_URL")
	if server == "" {
		server = nats.DefaultURL
	}
	nc, err := nats.Connect(server, nats.Timeout(2*time.Second))
	if err != nil {
		testenv.Missing(t, "no NATS server at %s: %v", server, err)
		return nil
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(context.Background()); err != nil {
		testenv.Missing(t, "NATS at %s has no JetStream: %v", server, err)
	}
	return js
}

// jsStream makes a JetStream stream for one test, holding the subjects
// PREFIX.in, PREFIX.out and PREFIX.dead, and returns PREFIX.
func jsStream(t testing.TB, js jetstream.JetStream) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "mlsteps-test-" + hex.EncodeToString(b[:])
	name := strings.ReplaceAll(prefix, "-", "_")
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), name) })
	return prefix
}

// publishJS publishes bodies to subject and waits for the stream to hold
// them all.
func publishJS(t testing.TB, js jetstream.JetStream, subject string, bodies [][]byte) {
	t.Helper()
	for i, b := range bodies {
		if _, err := js.PublishAsync(subject, b); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		t.Fatal("publishing did not complete in a minute")
	}
}

func jsCollect(t testing.TB, prefix string) *collector {
	t.Helper()
	ctx := context.Background()
	var subs [2]*pubsub.Subscription
	for i, s := range []string{"out", "dead"} {
		sub, err := jspubsub.OpenSubscription(ctx, "nats://"+prefix+"."+s+"?consumer=reader-"+s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Shutdown(context.Background()) })
		subs[i] = sub
	}
	return collect(t, subs[0], subs[1])
}

// TestStreamJetStream runs the step in-process over NATS JetStream.
func TestStreamJetStream(t *testing.T) {
	js := natsJS(t)
	e := newEnv(t)
	model := e.model("penguins-mlp.onnx", nil)
	prefix := jsStream(t, js)
	bodies, complete := inputs(t, 2000)
	bodies = append(bodies, []byte(`{"id": "broken"`))
	c := jsCollect(t, prefix)
	publishJS(t, js, prefix+".in", bodies)
	_, stop := e.runStep("nats", model, streamParams("nats://"+prefix+".in?consumer=infer", "nats://"+prefix+".out", "nats://"+prefix+".dead"))
	c.waitFor(t, len(bodies), time.Minute, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	for _, a := range c.answers {
		if a.Input == `{"id": "broken"` && !strings.Contains(a.Reason, "not a JSON object") {
			t.Errorf("the malformed message's dead letter: %+v", a)
		}
	}
	c.mu.Unlock()
	if n := c.drop(`{"id": "broken"`); n != 1 {
		t.Errorf("the malformed message has %d dead letters", n)
	}
	dups := c.check(t, len(bodies)-1, complete)
	t.Logf("%d duplicates", dups)
}

// TestStreamRabbit runs the step in-process over RabbitMQ: an exchange
// per topic, a queue bound to each.
func TestStreamRabbit(t *testing.T) {
	server := os.Getenv("RABBIT_SERVER_URL")
	if server == "" {
		server = "amqp://guest:guest@127.0.0.1:5672/"
		t.Setenv("RABBIT_SERVER_URL", server)
	}
	conn, err := amqp.Dial(server)
	if err != nil {
		testenv.Missing(t, "no RabbitMQ at %s: %v", redact(server), err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "mlsteps-test-" + hex.EncodeToString(b[:])
	for _, s := range []string{"in", "out", "dead"} {
		name := prefix + "." + s
		if err := ch.ExchangeDeclare(name, "fanout", false, true, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := ch.QueueDeclare(name, false, true, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.QueueBind(name, "", name, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t)
	model := e.model("penguins-mlp.onnx", nil)
	ctx := context.Background()
	in, err := pubsub.OpenTopic(ctx, "rabbit://"+prefix+".in")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Shutdown(ctx)
	var subs [2]*pubsub.Subscription
	for i, s := range []string{"out", "dead"} {
		if subs[i], err = pubsub.OpenSubscription(ctx, "rabbit://"+prefix+"."+s); err != nil {
			t.Fatal(err)
		}
		defer subs[i].Shutdown(ctx)
	}
	c := collect(t, subs[0], subs[1])
	bodies, complete := inputs(t, 1000)
	for _, b := range bodies {
		if err := in.Send(ctx, &pubsub.Message{Body: b}); err != nil {
			t.Fatal(err)
		}
	}
	_, stop := e.runStep("rabbit", model, streamParams("rabbit://"+prefix+".in", "rabbit://"+prefix+".out", "rabbit://"+prefix+".dead"))
	c.waitFor(t, len(bodies), time.Minute, nil)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if dups := c.check(t, len(bodies), complete); dups != 0 {
		t.Errorf("%d duplicates without a kill", dups)
	}
}

func redact(raw string) string {
	if i := strings.Index(raw, "@"); i > 0 {
		return "amqp://...@" + raw[i+1:]
	}
	return raw
}

// TestStreamNoLossKilled publishes 20,000 examples to JetStream and runs
// the real binary over them, SIGKILLing it twice mid-stream and
// restarting it: after dropping duplicates by message id, every input
// has exactly one result or dead letter. The last run ends with SIGTERM,
// which drains and exits 0.
func TestStreamNoLossKilled(t *testing.T) {
	const n = 20000
	js := natsJS(t)
	bin := testenv.Binary(t)
	e := newEnv(t)
	model := e.model("penguins-mlp.onnx", nil)
	prefix := jsStream(t, js)
	bodies, complete := inputs(t, n)
	c := jsCollect(t, prefix)
	publishJS(t, js, prefix+".in", bodies)

	lib := ort.LibPath(testenv.RepoRoot(t))
	start := func(run int) (*exec.Cmd, func() error) {
		cmd := exec.Command(bin, "--log-format", "json", "infer", "--stream", "--in", "model="+model,
			"--source", "nats://"+prefix+".in?consumer=infer&ack_wait=5s", "--sink", "nats://"+prefix+".out",
			"--dead-letters", "nats://"+prefix+".dead", "--max-in-flight", "500", "--batch-max", "64",
			"--out-root", e.root.Join(fmt.Sprintf("run-%d", run)).String())
		cmd.Env = append(os.Environ(), "MLSTEPS_ORT_LIB="+lib)
		log, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr, cmd.Stdout = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		alive := func() error {
			select {
			case err := <-exited:
				out, _ := os.ReadFile(log.Name())
				return fmt.Errorf("exited: %v\n%s", err, out)
			default:
				return nil
			}
		}
		t.Cleanup(func() {
			if alive() == nil {
				cmd.Process.Kill()
			}
		})
		return cmd, alive
	}
	for run, upTo := range []int{n / 5, n / 2} {
		cmd, alive := start(run)
		c.waitFor(t, upTo, 2*time.Minute, alive)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		t.Logf("run %d killed with %d of %d inputs answered", run, c.distinct(), n)
	}
	cmd, alive := start(2)
	c.waitFor(t, n, 3*time.Minute, alive)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		err := alive()
		if err != nil {
			if !strings.Contains(err.Error(), "exited: <nil>") {
				t.Fatalf("after SIGTERM: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGTERM did not end the stream within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.stop()
	dups := c.check(t, n, complete)
	t.Logf("%d inputs, %d duplicates after two SIGKILLs", n, dups)
}
