package stream_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/stream"
)

// batchLabels infers rows in one batch run, for comparison: id -> label.
func batchLabels(t *testing.T, h inference.ModelHandler, rows []map[string]any) map[string]string {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{
		{Name: features[0], Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: features[1], Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: features[2], Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: features[3], Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil))
	defer b.Release()
	var ids []string
	for i, row := range rows {
		if !complete(row) {
			continue
		}
		ids = append(ids, strconv.Itoa(i))
		for j, f := range features {
			b.Field(j).(*array.Float64Builder).Append(row[f].(float64))
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	eng := inference.New(h, inference.Options{MaxBatch: 1024})
	defer eng.Close()
	out := map[string]string{}
	_, err := eng.Run(context.Background(), func(yield func(arrow.RecordBatch, error) bool) { yield(rec, nil) }, inference.Sink{
		Result: func(r inference.Result) error {
			labels := r.Inference.Column(int(r.Inference.Schema().FieldIndices("label")[0])).(*array.String)
			for i, pos := range r.Rows {
				out[ids[pos]] = labels.Value(i)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGoodStream answers every penguin one to one, with the labels a
// batch run gives, and dead-letters the rows with missing features.
func TestGoodStream(t *testing.T) {
	h := mlp(t)
	rows := penguins(t)
	ms := newMemStream(t, h)
	ms.cfg.MaxBatch = 16
	stop := ms.start(t)
	for i, row := range rows {
		ms.publish(t, message(t, strconv.Itoa(i), row))
	}
	ms.wait(t, len(rows))
	stats, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	want := batchLabels(t, h, rows)
	seen := map[string]bool{}
	for _, r := range ms.answers.results {
		if seen[r.ID] {
			t.Errorf("example %s answered twice", r.ID)
		}
		seen[r.ID] = true
		if r.ModelID != "penguins-mlp" || r.MessageID == "" {
			t.Errorf("result %s: model id %q, message id %q", r.ID, r.ModelID, r.MessageID)
		}
		if got := r.Outputs["label"]; got != want[r.ID] {
			t.Errorf("example %s: label %v, the batch run says %q", r.ID, got, want[r.ID])
		}
		sum := 0.0
		for _, c := range classes {
			sum += r.Outputs["score_"+c].(float64)
		}
		if sum < 0.999 || sum > 1.001 {
			t.Errorf("example %s: scores sum to %v", r.ID, sum)
		}
	}
	if len(ms.answers.results) != len(want) {
		t.Errorf("%d results, want %d", len(ms.answers.results), len(want))
	}
	for _, d := range ms.answers.dead {
		if !strings.Contains(d.Reason, "is null") || d.ModelID != "penguins-mlp" {
			t.Errorf("dead letter %+v: want a null feature, from the model", d)
		}
	}
	if n := len(rows) - len(want); len(ms.answers.dead) != n {
		t.Errorf("%d dead letters, want %d (rows with a missing feature)", len(ms.answers.dead), n)
	}
	if stats.Received != int64(len(rows)) || stats.Results+stats.DeadLetters != stats.Received || stats.Malformed != 0 {
		t.Errorf("stats %+v", stats)
	}
}

// TestMalformed mixes 1,000 malformed messages into a good stream: each
// lands in the dead letters with its reason and raw text, and every good
// message is answered.
func TestMalformed(t *testing.T) {
	rows := penguins(t)
	ms := newMemStream(t, mlp(t))
	stop := ms.start(t)
	bad := []struct{ body, reason string }{
		{`not json`, "not a JSON object"},
		{`[1, 2, 3]`, "not a JSON object"},
		{`null`, "not a JSON object"},
		{`{"id": "x", "features": [1, 2]}`, `"features" is not a JSON object`},
		{`{"id": "x", "features": {"Body Mass (g)": "heavy"}}`, `column "Body Mass (g)": want a number, got the string "heavy"`},
		{`{"id": "x", "Beak Length (mm)": true}`, `column "Beak Length (mm)": want a number, got true`},
		{`{"id": {"nested": 1}, "Beak Length (mm)": 1}`, `"id" must be a string or a number`},
		{`{"id": "x", "Beak Length (mm)": 1e999}`, `column "Beak Length (mm)": 1e999 is not a number`},
		{`{"id": "trunc", "features": {`, "not a JSON object"},
		{`{"id": "x", "features": {"Flipper Length (mm)": [181]}}`, `column "Flipper Length (mm)": want a number, got [181]`},
	}
	good := 0
	for i := range 1000 {
		b := bad[i%len(bad)]
		ms.publish(t, []byte(b.body))
		if i%2 == 0 {
			row := rows[(i/2)%len(rows)]
			if !complete(row) {
				continue
			}
			ms.publish(t, message(t, "good-"+strconv.Itoa(i), row))
			good++
		}
	}
	ms.wait(t, 1000+good)
	stats, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms.answers.results) != good {
		t.Errorf("%d results, want %d", len(ms.answers.results), good)
	}
	if len(ms.answers.dead) != 1000 {
		t.Fatalf("%d dead letters, want 1000", len(ms.answers.dead))
	}
	reasons := map[string]string{}
	for _, b := range bad {
		reasons[b.body] = b.reason
	}
	for _, d := range ms.answers.dead {
		want, ok := reasons[d.Input]
		if !ok {
			t.Errorf("dead letter of an unknown input %q", d.Input)
			continue
		}
		if !strings.Contains(d.Reason, want) || d.MessageID == "" || d.ModelID != "" {
			t.Errorf("input %s: dead letter %+v, want reason %q", d.Input, d, want)
		}
	}
	if stats.Malformed != 1000 || stats.Results != int64(good) {
		t.Errorf("stats %+v", stats)
	}
}

// poisoned fails every batch holding a penguin of body mass -1.
type poisoned struct{ inference.ModelHandler }

func (p poisoned) Load(ctx context.Context, m *inference.Metrics) (inference.Model, error) {
	model, err := p.ModelHandler.Load(ctx, m)
	return poisonedModel{model}, err
}

type poisonedModel struct{ inference.Model }

func (p poisonedModel) Run(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	mass := batch.Column(int(batch.Schema().FieldIndices("Body Mass (g)")[0])).(*array.Float64)
	for i := range mass.Len() {
		if mass.IsValid(i) && mass.Value(i) == -1 {
			return nil, errors.New("poisoned batch")
		}
	}
	return p.Model.Run(ctx, batch)
}

// TestFailingBatch dead-letters a batch the model fails, with the
// model's error, and goes on answering.
func TestFailingBatch(t *testing.T) {
	rows := penguins(t)
	ms := newMemStream(t, poisoned{mlp(t)})
	stop := ms.start(t)
	poison := map[string]any{}
	for _, f := range features {
		poison[f] = 1.0
	}
	poison["Body Mass (g)"] = -1.0
	var first [][]byte
	for i := range 40 {
		first = append(first, message(t, "a"+strconv.Itoa(i), rows[i+4]))
	}
	first = append(first, message(t, "poison", poison))
	ms.publish(t, first...)
	ms.wait(t, len(first))
	var second [][]byte
	for i := range 40 {
		second = append(second, message(t, "b"+strconv.Itoa(i), rows[i+100]))
	}
	ms.publish(t, second...)
	ms.wait(t, len(first)+len(second))
	stats, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	poisonDead := false
	for _, d := range ms.answers.dead {
		if d.Reason != "poisoned batch" || d.ModelID != "penguins-mlp" {
			t.Errorf("dead letter %+v: want the model's error", d)
		}
		if strings.Contains(d.Input, `"id":"poison"`) {
			poisonDead = true
		}
	}
	if !poisonDead {
		t.Error("the poison message is not in the dead letters")
	}
	secondAnswered := 0
	for _, r := range ms.answers.results {
		if strings.HasPrefix(r.ID, "b") {
			secondAnswered++
		}
	}
	if secondAnswered != len(second) {
		t.Errorf("after the failed batch %d of %d examples have results", secondAnswered, len(second))
	}
	if stats.Results+stats.DeadLetters != int64(len(first)+len(second)) {
		t.Errorf("stats %+v", stats)
	}
}

// counting records the largest batch the model was given.
type counting struct {
	inference.ModelHandler
	mu      *sync.Mutex
	largest *int
}

func (c counting) Load(ctx context.Context, m *inference.Metrics) (inference.Model, error) {
	model, err := c.ModelHandler.Load(ctx, m)
	return countingModel{model, c}, err
}

type countingModel struct {
	inference.Model
	c counting
}

func (m countingModel) Run(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	m.c.mu.Lock()
	*m.c.largest = max(*m.c.largest, int(batch.NumRows()))
	m.c.mu.Unlock()
	return m.Model.Run(ctx, batch)
}

// TestMaxInFlight bounds the unacked messages: with three allowed, no
// batch holds more than three examples, whatever MaxBatch says.
func TestMaxInFlight(t *testing.T) {
	rows := penguins(t)
	largest := 0
	ms := newMemStream(t, counting{ModelHandler: mlp(t), mu: &sync.Mutex{}, largest: &largest})
	ms.cfg.MaxBatch, ms.cfg.MaxInFlight = 64, 3
	stop := ms.start(t)
	var bodies [][]byte
	for i := range 200 {
		bodies = append(bodies, message(t, strconv.Itoa(i), rows[i]))
	}
	ms.publish(t, bodies...)
	ms.wait(t, len(bodies))
	stats, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	if stats.PeakInFlight > 3 || stats.PeakInFlight < 1 {
		t.Errorf("peak in flight %d, want 1 to 3", stats.PeakInFlight)
	}
	if largest > 3 {
		t.Errorf("the model got a batch of %d examples with at most 3 in flight", largest)
	}
	if stats.Received != 200 {
		t.Errorf("stats %+v", stats)
	}
}

// draining cancels the stream from inside its third model call.
type draining struct {
	inference.ModelHandler
	calls  *int
	cancel func()
}

func (d draining) Load(ctx context.Context, m *inference.Metrics) (inference.Model, error) {
	model, err := d.ModelHandler.Load(ctx, m)
	return drainingModel{model, d}, err
}

type drainingModel struct {
	inference.Model
	d draining
}

func (m drainingModel) Run(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	if *m.d.calls++; *m.d.calls == 3 {
		m.d.cancel()
	}
	return m.Model.Run(ctx, batch)
}

// TestDrain cancels mid-stream: Run returns nil once every message it
// received is answered and acked; a second run answers the rest, and
// nothing is answered twice.
func TestDrain(t *testing.T) {
	rows := penguins(t)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	ms := newMemStream(t, draining{ModelHandler: mlp(t), calls: &calls, cancel: cancel})
	ms.cfg.MaxBatch = 8
	var bodies [][]byte
	for i := range 300 {
		row := rows[i]
		if complete(row) {
			bodies = append(bodies, message(t, strconv.Itoa(i), row))
		}
	}
	ms.publish(t, bodies...)
	stats, err := stream.Run(ctx, ms.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Received == 0 || stats.Received >= int64(len(bodies)) {
		t.Fatalf("the first run received %d of %d messages: want a drain mid-stream", stats.Received, len(bodies))
	}
	if stats.Results != stats.Received {
		t.Errorf("drained with %d received and %d answered", stats.Received, stats.Results)
	}
	ms.wait(t, int(stats.Results))
	stop := ms.start(t)
	ms.wait(t, len(bodies))
	rest, err := stop()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, r := range ms.answers.results {
		ids[r.ID]++
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("example %s answered %d times", id, n)
		}
	}
	if len(ids) != len(bodies) || stats.Received+rest.Received != int64(len(bodies)) {
		t.Errorf("%d examples answered of %d; received %d then %d", len(ids), len(bodies), stats.Received, rest.Received)
	}
}

// TestConfig rejects a config missing what a stream needs.
func TestConfig(t *testing.T) {
	ms := newMemStream(t, mlp(t))
	for name, mutate := range map[string]func(*stream.Config){
		"no source":    func(c *stream.Config) { c.Source = nil },
		"no sink":      func(c *stream.Config) { c.Sink = nil },
		"no dead":      func(c *stream.Config) { c.DeadLetters = nil },
		"no engine":    func(c *stream.Config) { c.Engine = nil },
		"no columns":   func(c *stream.Config) { c.Columns = nil },
		"negative max": func(c *stream.Config) { c.MaxInFlight = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := ms.cfg
			mutate(&cfg)
			if _, err := stream.Run(context.Background(), cfg); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}
