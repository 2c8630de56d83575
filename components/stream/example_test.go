package stream_test

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/mempubsub"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/stream"
)

// fahrenheit is a model written in Go; it refuses a missing temperature.
type fahrenheit struct{}

func (fahrenheit) ModelID() string        { return "c-to-f" }
func (fahrenheit) BatchSizes() (int, int) { return 0, 0 }
func (f fahrenheit) Load(context.Context, *inference.Metrics) (inference.Model, error) {
	return f, nil
}
func (fahrenheit) ByteSize() int64 { return 0 }
func (fahrenheit) Close() error    { return nil }
func (fahrenheit) Run(_ context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	c := batch.Column(0).(*array.Float64)
	var bad []inference.BadRow
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	defer b.Release()
	for i := range c.Len() {
		if c.IsNull(i) {
			bad = append(bad, inference.BadRow{Row: i, Reason: "no temperature"})
		}
		b.Append(c.Value(i)*9/5 + 32)
	}
	if bad != nil {
		return nil, &inference.BadRowsError{Rows: bad}
	}
	f := b.NewArray()
	defer f.Release()
	schema := arrow.NewSchema([]arrow.Field{{Name: "fahrenheit", Type: arrow.PrimitiveTypes.Float64}}, nil)
	return array.NewRecordBatch(schema, []arrow.Array{f}, int64(c.Len())), nil
}

func ExampleRun() {
	ctx := context.Background()
	in, results, dead := mempubsub.NewTopic(), mempubsub.NewTopic(), mempubsub.NewTopic()
	src := mempubsub.NewSubscription(in, time.Minute)
	readResults, readDead := mempubsub.NewSubscription(results, time.Minute), mempubsub.NewSubscription(dead, time.Minute)
	for _, body := range []string{
		`{"id": "kitchen", "features": {"celsius": 21}}`,
		`{"id": "oven", "celsius": 180}`,
		`{"id": "cellar"}`,
		`{"id": "attic", "celsius": "warm"}`,
	} {
		_ = in.Send(ctx, &pubsub.Message{Body: []byte(body)})
	}

	eng := inference.New(fahrenheit{}, inference.Options{})
	defer eng.Close()
	run, drain := context.WithCancel(ctx)
	done := make(chan stream.Stats)
	go func() {
		stats, err := stream.Run(run, stream.Config{Source: src, Sink: results, DeadLetters: dead, Engine: eng, Columns: []string{"celsius"}})
		if err != nil {
			fmt.Println(err)
		}
		done <- stats
	}()

	var answers []string
	receive := func(sub *pubsub.Subscription) {
		m, err := sub.Receive(ctx)
		if err != nil {
			fmt.Println(err)
			return
		}
		m.Ack()
		answers = append(answers, string(m.Body))
	}
	receive(readResults)
	receive(readResults)
	receive(readDead)
	receive(readDead)
	drain() // what SIGTERM does: finish, publish, ack, return
	stats := <-done
	slices.Sort(answers)
	for _, a := range answers {
		fmt.Println(a)
	}
	fmt.Printf("received %d, results %d, dead letters %d (malformed %d)\n", stats.Received, stats.Results, stats.DeadLetters, stats.Malformed)
	// Output:
	// {"id":"kitchen","message_id":"msg #0","model_id":"c-to-f","outputs":{"fahrenheit":69.8}}
	// {"id":"oven","message_id":"msg #1","model_id":"c-to-f","outputs":{"fahrenheit":356}}
	// {"message_id":"msg #2","model_id":"c-to-f","reason":"no temperature","input":"{\"id\": \"cellar\"}"}
	// {"message_id":"msg #3","reason":"column \"celsius\": want a number, got the string \"warm\"","input":"{\"id\": \"attic\", \"celsius\": \"warm\"}"}
	// received 4, results 2, dead letters 2 (malformed 1)
}
