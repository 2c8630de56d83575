// Package stream runs a model over a stream of messages: it reads
// examples from a gocloud.dev/pubsub subscription, gathers them into
// micro-batches, infers each batch with an inference.Engine and publishes
// one result per input to a topic, or a dead letter saying why there is
// none. It is the streaming half of Beam's RunInference; any pubsub
// driver works (mem://, NATS JetStream through jspubsub, rabbit://,
// kafka://, the clouds').
//
// Usage:
//
//	eng := inference.New(handler, inference.Options{})
//	defer eng.Close()
//	stats, err := stream.Run(ctx, stream.Config{Source: sub, Sink: results, DeadLetters: dead,
//		Engine: eng, Columns: []string{"Beak Length (mm)", "Body Mass (g)"}})
//
// # Messages
//
// An input message is a JSON object, either
//
//	{"id": "p-17", "features": {"Beak Length (mm)": 39.1, "Island": "Biscoe"}}
//
// or the columns themselves, flat: {"id": "p-17", "Beak Length (mm)": 39.1}.
// "id" is optional and any JSON value; it is echoed in the result. Only
// Config.Columns are read: a number for a numeric column, a string (or a
// number, taken as its text) for a Text column; a column that is absent or
// null reaches the model as null, which dead-letters the example with the
// model's reason.
//
// A result, one per input, on Config.Sink:
//
//	{"id": "p-17", "message_id": "EXAMPLES:42", "model_id": "penguins@1a2b3c",
//	 "outputs": {"label": "Adelie", "score_Adelie": 0.98, ...}}
//
// outputs holds the model's output columns for the example (for a
// classifier its label and score_<class>; for A/B its arm). A dead
// letter, on Config.DeadLetters:
//
//	{"message_id": "EXAMPLES:43", "reason": "not a JSON object: ...", "input": "<the raw body>"}
//
// with "model_id" too when the model refused the example. message_id is
// the input's pubsub.Message.LoggableID; with an at-least-once broker the
// same input may be answered twice (after a consumer dies between
// publishing and acking), and message_id is how a reader drops the copy.
//
// # Delivery
//
// A message is acked only after its result or dead letter is published,
// so a consumer that dies loses nothing the broker redelivers. A batch
// holds at most Config.MaxBatch examples and leaves at most
// MaxBatchDuration after its first example came, whichever is first. At
// most MaxInFlight messages are received and not yet acked. Cancelling
// ctx drains: no more messages are pulled, the batches in flight are
// inferred, published and acked, and Run returns nil.
//
// # Errors
//
// A malformed message is dead-lettered with the reason and acked. A
// model error on a batch dead-letters that batch's examples and the
// stream goes on. Run returns an error only when the stream cannot go
// on: the subscription fails, a publish fails, or the model does not
// load. Then the messages not yet answered are nacked (where the driver
// can) so that they come again, and Run stops pulling, finishes what is
// in flight and returns the first such error.
//
// # Metrics
//
// Run returns Stats: messages received, results and dead letters
// published, malformed messages, and the peak of unacked messages. The
// engine keeps Beam's inference metrics (Engine.Metrics).
package stream
