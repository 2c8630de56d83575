// Package serve is an online model server speaking KServe V2, the Open
// Inference Protocol, over HTTP/JSON (components/oip):
//
//	GET  /v2/health/live, /v2/health/ready
//	GET  /v2/models/{name}[/versions/{v}]          model metadata
//	GET  /v2/models/{name}[/versions/{v}]/ready
//	POST /v2/models/{name}[/versions/{v}]/infer
//	GET  /metrics                                  Prometheus text format
//
// It serves inference.ModelHandler values, whatever loads them. A Model
// declares its tensors; the handler reads and writes Arrow columns named
// as oip.Tensor.ToColumns names a tensor's: an [N] or [N,1] tensor "x" is
// the column "x", an [N,F] tensor is the columns "x_0" to "x_<F-1>". A
// request's input tensors become those columns, and each output tensor is
// built back from the columns of its name, so clients receive the
// model's raw outputs ("probs" and so on) and do their own post-processing.
//
// Usage:
//
//	srv, err := serve.New(ctx, []serve.Model{{Name: "penguins", Handler: h,
//		Inputs:  []oip.TensorMetadata{{Name: "x", Datatype: oip.FP32, Shape: []int64{-1, 4}}},
//		Outputs: []oip.TensorMetadata{{Name: "probs", Datatype: oip.FP32, Shape: []int64{-1, 3}}}}},
//		serve.Options{MaxBatch: 64, MaxQueueDelay: 2 * time.Millisecond})
//	defer srv.Close()
//	ln, err := net.Listen("tcp", "127.0.0.1:8080")
//	err = srv.Serve(ctx, ln) // until ctx ends; then drains
//
// # Batching
//
// Every model has a queue and batcher goroutines (Options.Workers, one by
// default). A batcher takes the oldest request, then gathers more until
// the batch holds Options.MaxBatch rows or the first request has waited
// Options.MaxQueueDelay, concatenates them into one Arrow batch, makes one
// Model.Run and hands each request its slice of the output. A request
// larger than MaxBatch runs alone. A failing Run fails only that batch's
// requests (500); a *inference.BadRowsError fails the requests that hold
// the bad rows (400) and the others run again.
//
// # Errors
//
// Every failure answers {"error": "..."} (oip.ErrorResponse): 400 for a
// body that does not parse or a tensor the model does not take (unknown
// or missing name, wrong datatype, a shape other than the model's, inputs
// of different row counts), checked before the request is queued; 404 for
// an unknown model or version; 413 for a body over
// Options.MaxRequestBytes; 503 while shutting down; 504 when the request
// is not answered within Options.RequestTimeout.
//
// # Metrics
//
// GET /metrics answers in the Prometheus text format, by model name:
// mlsteps_serve_requests_total{code} and
// mlsteps_serve_request_failures_total (answers of 400 and above),
// mlsteps_serve_request_duration_seconds (histogram, arrival to answer),
// mlsteps_serve_batch_rows (histogram of rows per model call) and
// mlsteps_serve_queued_requests; and the inference engine's metrics by
// model id (Beam's names: mlsteps_inference_num_inferences,
// ..._inference_batch_latency_micro_secs, ..._failed_batches_counter and
// the rest of inference.ModelMetrics.Values), which for a RefreshHandler
// include the load of every version swapped in.
//
// # Lifecycle
//
// New loads every model before it returns, so a server that exists is
// ready. Serve answers until its context ends, then stops accepting, lets
// the requests in flight finish (their batches run) and returns; Close
// then closes the models. Hot reload is the handler's business: an
// inference.RefreshHandler swaps models between batches, so no request
// fails across a swap.
package serve
