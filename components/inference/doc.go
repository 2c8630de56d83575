// Package inference runs models over streams of examples, in the manner of
// Apache Beam's RunInference: a ModelHandler loads a model and says how it
// likes to be batched; an Engine cuts Arrow record batches into model
// batches, runs them on one loaded model shared by its workers, and hands
// back results (the example's passthrough columns, the inference, the
// model id) and dead letters (rows that could not be inferred, with why).
//
// Handlers:
//
//   - ONNXHandler runs an ONNX model in ONNX Runtime through
//     components/onnx/ort (call ort.Init first). Inputs are built from
//     named columns with the model's declared element types (several
//     columns make an [N,F] input); outputs become named columns, and a
//     Classifier adds a "label" column and one "score_<class>" per class.
//     Session options (intra- and inter-op threads, graph optimisation)
//     are ort.Options.
//   - KeyedHandler picks a row's model by a key column (several keys may
//     share one model) and keeps at most MaxModels loaded, unloading the
//     least recently used one (Beam's max_models_per_worker_hint).
//   - ABHandler splits rows between arms by a hash of a key column, in
//     proportion to weights; every result row carries its "arm".
//   - RemoteHandler sends each batch to a KServe V2 / Open Inference
//     Protocol server (components/oip) under a rate limit and a bound on
//     requests in flight, retrying with backoff behind a circuit breaker;
//     a batch whose retries run out fails into the dead letters.
//
// Any type implementing ModelHandler and Model works, too (see Example).
//
// Usage:
//
//	h := &inference.ONNXHandler{ID: "penguins-v3", Model: onnxBytes,
//		Inputs:     []inference.Input{{Name: "x", Columns: []string{"Beak Length (mm)", "Body Mass (g)"}}},
//		Classifier: &inference.Classifier{Classes: []string{"Adelie", "Chinstrap", "Gentoo"}, Scores: "probs"},
//		Session:    ort.Options{IntraOpThreads: 2}}
//	eng := inference.New(h, inference.Options{MaxBatch: 256, Workers: 2, Passthrough: []string{"id"}})
//	defer eng.Close()
//	metrics, err := eng.Run(ctx, records, inference.Sink{Result: write, DeadLetter: quarantine})
//
// Batching follows Beam's BatchElements: batches hold MaxBatch rows (a
// batch may span input records; the last may be short); with
// TargetBatchLatency set the size adapts between MinBatch and MaxBatch so
// one model call takes about that long, at most doubling per batch; with
// MaxBatchDuration set a batch that is not full goes once its first row
// has waited that long (for streams). With one worker an ONNX model is pipelined (when GOMAXPROCS allows two
// goroutines to run): one goroutine makes the model calls, one at a time
// and in order, while Run's goroutine cuts and prepares the next batches
// and turns earlier outputs into columns, so the Go work overlaps the
// model's; results keep the input order (a bad row's dead letter may come
// before earlier batches' results). Other models run inline.
//
// # Errors
//
// A Model reports rows it cannot infer (a null feature, a key with no
// model) as a *BadRowsError: the engine sends each such row to the dead
// letters with its reason and runs the batch's other rows again. Any other
// error from Run fails the batch: all its rows go to the dead letters with
// the error's text, failed_batches_counter counts it, and the run goes on.
// Engine.Run itself returns an error only when the run cannot go on: the
// model does not load, the source fails, a sink returns an error, or ctx
// is cancelled (then ctx's error; rows not yet inferred are in neither
// output). Every input row ends in exactly one Result or DeadLetter
// otherwise, identified by its position in the input stream.
//
// # Metrics
//
// Metrics use Beam's names, per model id (the handler's, and for keyed and
// A/B handlers also each inner model's): num_inferences,
// inference_request_batch_size and inference_batch_latency_micro_secs
// (distributions), load_model_latency_milli_secs, model_byte_size and
// failed_batches_counter. Engine.Run returns a Snapshot;
// ModelMetrics.Values flattens one model's metrics under those names.
package inference
