// Package infer is the batch inference step: Beam's RunInference over a
// Dataset, writing Predictions and DeadLetters artifacts.
package infer

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/steps/step"
)

// Name and Version of the step; they go into lineage and cache keys.
const (
	Name    = "infer"
	Version = "0.1.0"
)

// Predictions properties, beside the Dataset ones.
const (
	PropMetrics       = "metrics" // per model id, Beam's metric names
	PropNumInferences = "num_inferences"
	PropDeadLetters   = "dead_letters"
	PropModelIDs      = "model_ids"
	PropRemote        = "remote" // a remote model's request counters
)

// Spec is the infer step's contract.
func Spec() *step.Spec {
	return &step.Spec{
		Name:    Name,
		Version: Version,
		Summary: "run a model over a Dataset (batch RunInference): predictions, dead letters and Beam's metrics",
		Description: "Runs a Model artifact over every split of a Dataset in ONNX Runtime, in batches (min/max and an adaptive " +
			"size toward a target latency), on one loaded model shared by the workers, and writes Predictions (the passthrough " +
			"columns, the model's outputs — label and score_<class> for a classifier — and model_id, in input order) and " +
			"DeadLetters (the rows that could not be inferred: the row as JSON, the reason, the model). A keyed Model picks " +
			"each row's model by its key column with at most --max-models loaded; --ab splits rows between models by a hash " +
			"of a key; --cascade sends what the first model is unsure of (or everything it outputs) to a second one; " +
			"--in transform fuses the training TransformGraph in front of the model; --watch follows a model pointer and " +
			"swaps models between batches. Metrics use Beam's names per model id and land in the Predictions properties. " +
			"Each input part file makes its own output parts, so --shard I/N (a contiguous share of the part files) writes " +
			"partials that --merge concatenates into the unsharded run's outputs, digests included.",
		Inputs: []step.Port{
			{Name: "examples", Type: artifacts.TypeDataset, Optional: true, Description: "the rows to infer (required unless --stream)"},
			{Name: "model", Type: artifacts.TypeModel, Optional: true, Description: "the model (single or keyed); not with --ab or --watch"},
			{Name: "transform", Type: artifacts.TypeTransformGraph, Optional: true, Description: "preprocessing fused in front of the model"},
			{Name: "challenger", Type: artifacts.TypeModel, Optional: true, Description: "an A/B challenger to --in model (the champion): --challenger-share of the rows by a hash of --ab-key (what --ab does, as an input a pipeline can wire)"},
			{Name: "second", Type: artifacts.TypeModel, Optional: true, Description: "the cascade's second model (what --cascade does, as an input a pipeline can wire)"},
		},
		Outputs: []step.Port{
			{Name: "predictions", Type: artifacts.TypePredictions, Description: "Parquet per split: passthrough columns, outputs, model_id"},
			{Name: "dead_letters", Type: artifacts.TypeDeadLetters, Description: "Parquet per split: split, row, model_id, reason, step, input (JSON)"},
		},
		Params: []step.Param{
			{Name: "splits", Type: step.String, Default: "", Description: "comma-separated splits to infer; empty: every split", Example: "eval"},
			{Name: "passthrough", Type: step.String, Default: "*", Description: "columns copied from the examples into the predictions: * for all, empty for none, or a comma-separated list", Example: "id,island"},
			{Name: "model-id", Type: step.String, Default: "", Description: "the model id in results and metrics; default: the model's name and digest"},
			{Name: "key-column", Type: step.String, Default: "", Description: "for a keyed Model: the column whose value picks the model (default: the model's own)"},
			{Name: "max-models", Type: step.Int, Default: int64(0), Description: "keyed Model: at most this many models loaded, least recently used unloaded (0: no cap)"},
			{Name: "group-by-key", Type: step.Bool, Default: true, Description: "keyed Model: run rows grouped by key (within batches; with --max-models also within windows of --group-window rows, so predictions come grouped by key and models are not reloaded per batch)"},
			{Name: "group-window", Type: step.Int, Default: int64(65536), Description: "keyed Model with --max-models: rows regrouped by key at a time (bounds the memory grouping takes)"},
			{Name: "ab", Type: step.String, Default: "", Description: "A/B split between Model artifacts: ARM=URI:WEIGHT,... (instead of --in model)", Example: "champion=file:///m/v3:0.9,challenger=file:///m/v4:0.1"},
			{Name: "challenger-share", Type: step.Float, Default: 0.1, Description: "with --in challenger: the share of rows the challenger answers"},
			{Name: "ab-key", Type: step.String, Default: "", Description: "the column whose hash picks a row's arm (required with --ab)"},
			{Name: "cascade", Type: step.String, Default: "", Description: "a second Model artifact run after the first", Example: "file:///models/big"},
			{Name: "cascade-below", Type: step.Float, Default: 0.0, Description: "with --cascade: only rows whose top class score is below this go to the second model; 0: every row, the second model reading the first one's outputs"},
			{Name: "watch", Type: step.String, Default: "", Description: "a model pointer (a registry's current, or a Model URI) followed during the run instead of --in model"},
			{Name: "watch-interval", Type: step.Duration, Default: 30 * time.Second, Description: "how often --watch is polled"},
			{Name: "remote", Type: step.String, Default: "", Description: "a KServe V2 / Open Inference Protocol server's base URL, instead of --in model", Example: "http://penguins.models.svc"},
			{Name: "remote-model", Type: step.String, Default: "", Description: "the model's name on the server (required with --remote)"},
			{Name: "remote-version", Type: step.String, Default: "", Description: "the model's version on the server; empty: the server's default"},
			{Name: "remote-token", Type: step.String, Default: "", Secret: true, Description: "a bearer token sent as Authorization"},
			{Name: "remote-features", Type: step.String, Default: "", Description: "columns feeding the remote inputs: INPUT=COL,COL;...; empty: each input from its namesake column", Example: "x=Beak Length (mm),Body Mass (g)"},
			{Name: "remote-classes", Type: step.String, Default: "", Description: "comma-separated class names: read the remote scores as a classifier (label, score_<class>)"},
			{Name: "remote-scores", Type: step.String, Default: "", Description: "with --remote-classes: the [N,classes] output holding class scores"},
			{Name: "rate-limit", Type: step.Float, Default: 0.0, Description: "remote: requests per second, retries included (0: no limit)"},
			{Name: "rate-burst", Type: step.Int, Default: int64(1), Description: "remote: requests allowed at once above the rate"},
			{Name: "max-concurrency", Type: step.Int, Default: int64(0), Description: "remote: requests in flight at most (0: one per worker)"},
			{Name: "timeout", Type: step.Duration, Default: 30 * time.Second, Description: "remote: per attempt"},
			{Name: "retries", Type: step.Int, Default: int64(3), Description: "remote: retries after the first attempt on 429, 5xx, timeouts and dropped connections, with exponential backoff and full jitter"},
			{Name: "breaker-failures", Type: step.Int, Default: int64(5), Description: "remote: failed requests in a row that open the circuit breaker (0: no breaker)"},
			{Name: "breaker-cooldown", Type: step.Duration, Default: 5 * time.Second, Description: "remote: how long an open breaker refuses before one probe"},
			{Name: "batch-min", Type: step.Int, Default: int64(1), Description: "smallest batch (Beam's min_batch_size)"},
			{Name: "batch-max", Type: step.Int, Default: int64(256), Description: "largest batch (Beam's max_batch_size)"},
			{Name: "target-batch-latency", Type: step.Duration, Default: time.Duration(0), Description: "adapt the batch size so one model call takes about this long; 0: always batch-max"},
			{Name: "workers", Type: step.Int, Default: int64(1), Description: "batches run concurrently on the one loaded model"},
			{Name: "intra-op-threads", Type: step.Int, Default: int64(1), Description: "ONNX Runtime threads within an operator"},
			{Name: "inter-op-threads", Type: step.Int, Default: int64(1), Description: "ONNX Runtime threads across operators"},
			{Name: "execution-provider", Type: step.String, Default: "cpu", Enum: []string{"cpu", "cuda"}, Description: "where ONNX Runtime runs the model: cpu, or cuda (needs an ONNX Runtime built with CUDA and a device)"},
			{Name: "graph-optimization", Type: step.String, Default: "all", Enum: []string{"all", "extended", "basic", "none"}, Description: "ONNX Runtime graph optimisation level"},
			{Name: "max-dead-letter-fraction", Type: step.Float, Default: 1.0, Description: "exit 3 (outputs still written) when more than this fraction of rows is dead-lettered"},
			{Name: "stream", Type: step.Bool, Default: false, Description: "infer JSON messages from --source, publishing one result per message to --sink (or a dead letter) until SIGTERM, which drains; the outputs are then written empty with the run's counts"},
			{Name: "source", Type: step.String, Default: "", Description: "--stream: the subscription URL (mem://, nats:// JetStream with ?consumer=NAME, rabbit://, kafka://, gcppubsub://, awssqs://)", Example: "nats://penguins.examples?consumer=infer"},
			{Name: "sink", Type: step.String, Default: "", Description: "--stream: the topic URL results are published to", Example: "nats://penguins.results"},
			{Name: "dead-letters", Type: step.String, Default: "", Description: "--stream: the topic URL dead letters are published to", Example: "nats://penguins.dead"},
			{Name: "max-batch-duration", Type: step.Duration, Default: 20 * time.Millisecond, Description: "--stream: how long a batch waits for more messages after its first one"},
			{Name: "max-in-flight", Type: step.Int, Default: int64(1000), Description: "--stream: messages received and not yet acked, at most"},
		},
		Run:        run,
		ContentKey: contentKey,
		Shard:      sharding(),
	}
}

// settings are the parameters, checked before anything is read.
type settings struct {
	splits      []string
	passthrough []string // nil with all true: every column
	allColumns  bool
	opts        inference.Options
	session     ort.Options
}

func parseSettings(r *step.Run) (settings, error) {
	var s settings
	for _, p := range []string{"batch-min", "batch-max", "workers", "intra-op-threads", "inter-op-threads"} {
		if r.Int(p) < 1 {
			return s, step.Usagef("--%s must be at least 1, not %d", p, r.Int(p))
		}
	}
	if r.Int("batch-min") > r.Int("batch-max") {
		return s, step.Usagef("--batch-min %d is above --batch-max %d", r.Int("batch-min"), r.Int("batch-max"))
	}
	if f := r.Float("max-dead-letter-fraction"); f < 0 || f > 1 {
		return s, step.Usagef("--max-dead-letter-fraction must be within [0, 1], not %v", f)
	}
	if r.Int("retries") < 0 || r.Int("max-concurrency") < 0 || r.Int("breaker-failures") < 0 || r.Float("rate-limit") < 0 {
		return s, step.Usagef("--retries, --max-concurrency, --breaker-failures and --rate-limit cannot be negative")
	}
	if r.Int("group-window") < 1 {
		return s, step.Usagef("--group-window must be at least 1, not %d", r.Int("group-window"))
	}
	if r.Int("max-models") < 0 {
		return s, step.Usagef("--max-models must be 0 (no cap) or more, not %d", r.Int("max-models"))
	}
	s.splits = list(r.String("splits"))
	switch pt := strings.TrimSpace(r.String("passthrough")); pt {
	case "*":
		s.allColumns = true
	default:
		s.passthrough = list(pt)
	}
	s.opts = inference.Options{MinBatch: int(r.Int("batch-min")), MaxBatch: int(r.Int("batch-max")),
		TargetBatchLatency: r.Duration("target-batch-latency"), Workers: int(r.Int("workers")), Logger: r.Logger()}
	s.session = ort.Options{IntraOpThreads: int(r.Int("intra-op-threads")), InterOpThreads: int(r.Int("inter-op-threads")),
		GraphOptimization: map[string]ort.OptLevel{"all": ort.OptAll, "extended": ort.OptExtended, "basic": ort.OptBasic, "none": ort.OptDisableAll}[r.String("graph-optimization")],
		CUDA:              r.String("execution-provider") == "cuda"}
	return s, nil
}

// list splits a comma-separated list, dropping blanks.
func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func run(ctx context.Context, r *step.Run) error {
	s, err := parseSettings(r)
	if err != nil {
		return err
	}
	if r.Bool("stream") {
		return runStream(ctx, r, s)
	}
	examples := r.Input("examples")
	if examples == nil {
		return step.Usagef("input examples (%s) is required without --stream: give --in examples=URI", artifacts.TypeDataset)
	}
	splits, err := pickSplits(examples, s.splits)
	if err != nil {
		return err
	}
	schema, err := examples.DatasetSchema(ctx)
	if err != nil {
		return err
	}
	if s.allColumns {
		for _, f := range schema.Fields() {
			s.passthrough = append(s.passthrough, f.Name)
		}
	}
	var passFields []arrow.Field
	for _, c := range s.passthrough {
		idx := schema.FieldIndices(c)
		if len(idx) == 0 {
			return step.BadInput(fmt.Errorf("--passthrough: the examples have no column %q (columns: %s)", c, columnNames(schema)))
		}
		passFields = append(passFields, schema.Field(idx[0]))
	}
	s.opts.Passthrough = s.passthrough

	// Everything the model needs is checked before it loads, and it loads
	// before any output is created.
	if err := initORT(); err != nil {
		return err
	}
	h, desc, err := buildHandler(ctx, r, s, schema)
	if err != nil {
		return err
	}
	eng := inference.New(h, s.opts)
	defer eng.Close()

	pred, err := r.Output(ctx, "predictions")
	if err != nil {
		return err
	}
	dead, err := r.Output(ctx, "dead_letters")
	if err != nil {
		return err
	}
	w, err := newWriter(ctx, r.Logger(), pred, dead, splits, arrow.NewSchema(passFields, nil))
	if err != nil {
		return err
	}
	read := readColumns(s.passthrough, desc.columns)
	work, err := planParts(ctx, r, examples, splits)
	if err != nil {
		return err
	}
	start := time.Now()
	var rows int64
	for _, split := range splits {
		w.startSplit(split)
		for _, p := range work.parts {
			if p.split != split {
				continue
			}
			// One engine run per input part, and one output part per input
			// part: batches never span parts, so a shard's output files are
			// the unsharded run's, byte for byte.
			w.startPart(work.next[split])
			var n int64
			var src iter.Seq2[arrow.RecordBatch, error] = func(yield func(arrow.RecordBatch, error) bool) {
				for rec, err := range examples.PartRecords(ctx, split, p.file, artifacts.ReadOptions{Columns: read}) {
					if err == nil {
						n += rec.NumRows()
					}
					if !yield(rec, err) {
						return
					}
				}
			}
			if kh, ok := h.(*inference.KeyedHandler); ok && kh.MaxModels > 0 && r.Bool("group-by-key") {
				src = grouped(ctx, src, kh.KeyColumn, int(r.Int("group-window")), &w.origin)
			}
			if _, err := eng.Run(ctx, src, w.sink()); err != nil {
				w.abandon()
				return fmt.Errorf("split %s, %s: %w", split, p.file, err)
			}
			if err := w.endPart(); err != nil {
				w.abandon()
				return err
			}
			rows += n
			work.next[split] += n
		}
	}
	if err := w.close(); err != nil {
		return err
	}
	metrics := eng.Metrics()
	recordMetrics(pred, metrics, w.predicted, w.failed)
	if rh, ok := h.(*inference.RemoteHandler); ok {
		st := rh.Stats()
		pred.SetProperty(PropRemote, map[string]any{"attempts": st.Attempts, "retries": st.Retries, "failures": st.Failures,
			"throttled": st.Throttled, "rejected": st.Rejected, "breaker_opens": st.BreakerOpens, "breaker_closes": st.BreakerCloses})
	}
	dead.SetProperty(PropDeadLetters, w.failed)
	took := time.Since(start)
	r.Logger().Info("inferred", "rows", rows, "predicted", w.predicted, "dead_letters", w.failed,
		"rows_per_s", int64(float64(rows)/max(took.Seconds(), 1e-9)), "models", metrics.IDs())
	if _, shard := r.Shard(); shard {
		return nil // the merge applies the gate to the whole
	}
	if limit := r.Float("max-dead-letter-fraction"); rows > 0 && float64(w.failed)/float64(rows) > limit {
		return &step.GateError{Gate: "max-dead-letter-fraction",
			Reason: fmt.Sprintf("%d of %d rows (%.2f%%) were dead-lettered, above %.2f%%", w.failed, rows, 100*float64(w.failed)/float64(rows), 100*limit)}
	}
	return nil
}

// recordMetrics puts Beam's metrics per model id, and totals the runner
// can branch on, into the Predictions properties.
func recordMetrics(pred *artifacts.Writer, s inference.Snapshot, predicted, failed int64) {
	per := map[string]map[string]float64{}
	for _, id := range s.IDs() {
		per[id] = s[id].Values()
	}
	pred.SetProperty(PropMetrics, per)
	pred.SetProperty(PropNumInferences, predicted)
	pred.SetProperty(PropDeadLetters, failed)
	pred.SetProperty(PropModelIDs, s.IDs())
}

func pickSplits(examples *artifacts.Artifact, want []string) ([]string, error) {
	all, err := examples.Splits()
	if err != nil {
		return nil, step.BadInput(fmt.Errorf("input examples: %w", err))
	}
	if len(want) == 0 {
		names := make([]string, len(all))
		for i, s := range all {
			names[i] = s.Name
		}
		return names, nil
	}
	for _, s := range want {
		if _, err := examples.Split(s); err != nil {
			return nil, step.BadInput(fmt.Errorf("--splits: %w", err))
		}
	}
	return want, nil
}

// readColumns is what the step reads: passthrough then model columns.
func readColumns(passthrough, model []string) []string {
	read := slices.Clone(passthrough)
	for _, c := range model {
		if !slices.Contains(read, c) {
			read = append(read, c)
		}
	}
	return read
}

func columnNames(s *arrow.Schema) string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = fmt.Sprintf("%q", f.Name)
	}
	return strings.Join(names, ", ")
}

// initORT loads ONNX Runtime once per process from the usual places.
func initORT() error { return ort.InitFound() }
