package validate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/report"
	"github.com/mlsteps/mlsteps/components/stats"
	"github.com/mlsteps/mlsteps/components/validation"
	"github.com/mlsteps/mlsteps/steps/step"
)

// Version of the validate step; it goes into lineage and cache keys.
const Version = "0.1.0"

// Payload file names.
const (
	StatisticsFile = "statistics.json"
	ReportFile     = "report.html"
	SchemaFile     = "schema.json"
	AnomaliesFile  = "anomalies.json"
)

// Spec is the validate step's contract.
func Spec() *step.Spec {
	return &step.Spec{
		Name:    "validate",
		Version: Version,
		Summary: "compute statistics, infer or apply a schema and find anomalies, drift and skew (TFDV's formats)",
		Description: "Computes per-split statistics of a Dataset in one streaming pass (TFDV's DatasetFeatureStatisticsList JSON " +
			"plus an HTML report), infers a schema from the training split unless one is given (TFDV's Schema JSON, meant " +
			"to be edited and passed back with --schema-file or --in schema=), and checks every split against it (TFDV's Anomalies JSON), " +
			"with drift against --in baseline= and training/serving skew against --in serving= statistics. Exits 3 when " +
			"anomalies at or above --fail-on exist; the artifacts are written either way. --shard I/N computes the mergeable " +
			"statistics state (exact counts and moments, quantile-sketch buckets, distinct values with their counts) of a " +
			"contiguous share of the part files of every split, as partials that judge nothing; --merge folds them in shard " +
			"order and writes what one process writes (the same statistics.json while string features stay under the unique cap; " +
			"past it, unique is within its sketch's bound), with the schema, anomalies and the gate (exit 3) decided once, there.",
		Inputs: []step.Port{
			{Name: "examples", Type: artifacts.TypeDataset, Description: "the data to describe and check"},
			{Name: "schema", Type: artifacts.TypeSchema, Optional: true, Description: "the expected schema; inferred from the training split when left out"},
			{Name: "baseline", Type: artifacts.TypeStatistics, Optional: true, Description: "statistics of an earlier span, for drift (drift_comparator)"},
			{Name: "serving", Type: artifacts.TypeStatistics, Optional: true, Description: "statistics of serving data, for training/serving skew (skew_comparator)"},
		},
		Outputs: []step.Port{
			{Name: "statistics", Type: artifacts.TypeStatistics, Description: "statistics.json (one dataset per split) and report.html"},
			{Name: "schema", Type: artifacts.TypeSchema, Description: "schema.json: the inferred schema, or a copy of the given one"},
			{Name: "anomalies", Type: artifacts.TypeAnomalies, Description: "anomalies.json: what does not match the schema, drift and skew"},
		},
		Params: []step.Param{
			{Name: "schema-file", Type: step.String, Default: "",
				Description: "a hand-edited schema.json (blob URL or local path) to check against, instead of --in schema", Example: "file:///work/schema.json"},
			{Name: "fail-on", Type: step.String, Default: "error", Enum: []string{"error", "warning", "never"},
				Description: "exit 3 when anomalies of this severity or worse exist"},
			{Name: "training-split", Type: step.String, Default: "train",
				Description: "the split a schema is inferred from and compared with serving statistics (the first split when absent)"},
			{Name: "max-domain-size", Type: step.Int, Default: int64(100),
				Description: "string features with at most this many distinct values get a string_domain in an inferred schema"},
			{Name: "workers", Type: step.Int, Default: int64(0),
				Description: "goroutines decoding row groups and columns; 0 means one per CPU; the result does not depend on it"},
			{Name: "memory-limit-mib", Type: step.Int, Default: int64(160),
				Description: "soft memory limit of the statistics pass: the Go garbage collector runs only as the heap nears it (GOMEMLIMIT with GOGC off, for the pass alone), so a short pass is not slowed by collections; 0, or GOGC/GOMEMLIMIT set in the environment, keeps the runtime's settings"},
		},
		Run:        run,
		ContentKey: schemaFileDigest,
		Shard:      sharding(),
	}
}

// schemaFileDigest keys the cache on a --schema-file's content, which is
// not an input artifact.
func schemaFileDigest(ctx context.Context, r *step.Run) (map[string]string, error) {
	if r.String("schema-file") == "" {
		return nil, nil
	}
	data, err := readSchemaFile(ctx, r)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return map[string]string{"schema-file": hex.EncodeToString(sum[:])}, nil
}

func readSchemaFile(ctx context.Context, r *step.Run) ([]byte, error) {
	u, err := artifacts.ParseURI(r.String("schema-file"))
	if err != nil {
		return nil, step.BadInput(fmt.Errorf("--schema-file: %w", err))
	}
	data, err := r.Store().ReadAll(ctx, u)
	if err != nil {
		if errors.Is(err, artifacts.ErrNotFound) || errors.Is(err, artifacts.ErrInvalid) {
			return nil, step.BadInput(fmt.Errorf("--schema-file: %w", err))
		}
		return nil, fmt.Errorf("--schema-file: %w", err)
	}
	return data, nil
}

// given is what validate reads besides the examples: the expected schema
// (nil when it is to be inferred) and the statistics to compare with, as
// parsed and as read (a shard hands the bytes on to the merge).
type given struct {
	schema                  *validation.Schema
	schemaRaw               []byte
	baseline, serving       *stats.DatasetFeatureStatisticsList
	baselineRaw, servingRaw []byte
}

func run(ctx context.Context, r *step.Run) error {
	workers := int(r.Int("workers"))
	if workers < 0 || r.Int("max-domain-size") < 0 {
		return step.Usagef("--workers and --max-domain-size must not be negative")
	}
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	examples := r.Input("examples")
	splits, err := examples.Splits()
	if err != nil {
		return step.BadInput(fmt.Errorf("input examples: %w", err))
	}
	if len(splits) == 0 {
		return step.Usagef("input examples %s has no splits", examples.URI)
	}
	// Read every small input before the long pass, so a bad one fails fast.
	in, err := readGiven(ctx, r)
	if err != nil {
		return err
	}
	restore, err := passMemoryLimit(r)
	if err != nil {
		return err
	}
	defer restore()
	if sh, ok := r.Shard(); ok {
		return runShard(ctx, r, examples, splits, in, workers, sh)
	}
	list := &stats.DatasetFeatureStatisticsList{}
	for _, sp := range splits {
		start := time.Now()
		ds, err := splitStatistics(ctx, examples, sp, workers, stats.Options{})
		if err != nil {
			return err
		}
		r.Logger().Info("statistics", "split", sp.Name, "examples", int64(ds.NumExamples), "features", len(ds.Features),
			"seconds", time.Since(start).Seconds())
		list.Datasets = append(list.Datasets, ds)
	}
	return finish(ctx, r, list, in, examples.URI, runInputs(r))
}

// readGiven reads the schema (--in schema or --schema-file) and the
// baseline and serving statistics.
func readGiven(ctx context.Context, r *step.Run) (given, error) {
	var in given
	var err error
	in.schema, in.schemaRaw, err = readSchema(ctx, r.Input("schema"))
	if err != nil {
		return in, err
	}
	if file := r.String("schema-file"); file != "" {
		if in.schema != nil {
			return in, step.Usagef("give --in schema= or --schema-file, not both")
		}
		if in.schemaRaw, err = readSchemaFile(ctx, r); err != nil {
			return in, err
		}
		if in.schema, err = validation.ParseSchema(in.schemaRaw, artifacts.Redact(file)); err != nil {
			return in, step.BadInput(fmt.Errorf("--schema-file: %w", err))
		}
	}
	if in.baseline, in.baselineRaw, err = readStatistics(ctx, r.Input("baseline"), "baseline"); err != nil {
		return in, err
	}
	in.serving, in.servingRaw, err = readStatistics(ctx, r.Input("serving"), "serving")
	return in, err
}

// passMemoryLimit applies --memory-limit-mib for the statistics pass;
// restore puts the runtime's settings back.
func passMemoryLimit(r *step.Run) (restore func(), err error) {
	mib := r.Int("memory-limit-mib")
	if mib < 0 {
		return nil, step.Usagef("--memory-limit-mib must not be negative")
	}
	if mib == 0 || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}, nil
	}
	// A batch pass with a known memory budget: collect near the budget
	// rather than every time the live heap doubles (Go's GC guide).
	gc, limit := debug.SetGCPercent(-1), debug.SetMemoryLimit(mib<<20)
	return func() {
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(limit)
	}, nil
}

// finish is everything after the statistics pass, the same whether the
// statistics come from one process or from merged shards: the schema
// (inferred from the training split, or the given one), anomalies with
// drift and skew, the three outputs and the gate. examplesURI names the
// examples in errors; upstream lists the inputs for the report.
func finish(ctx context.Context, r *step.Run, list *stats.DatasetFeatureStatisticsList, in given, examplesURI string, upstream []artifacts.Input) error {
	train := trainingSplit(list, r.String("training-split"))
	schema, schemaRaw := in.schema, in.schemaRaw
	if schema == nil {
		if train.NumExamples == 0 {
			return step.Usagef("input examples %s: split %s has no rows, so there is nothing to infer a schema from (pass --in schema=)", examplesURI, train.Name)
		}
		schema = validation.InferSchema(train, validation.InferOptions{MaxStringDomainSize: int(r.Int("max-domain-size"))})
		var err error
		if schemaRaw, err = json.MarshalIndent(schema, "", "  "); err != nil {
			return err
		}
		schemaRaw = append(schemaRaw, '\n')
	}

	anomalies := validation.NewAnomalies()
	for i := range list.Datasets {
		ds := &list.Datasets[i]
		cmp := validation.Compare{Baseline: matching(in.baseline, ds.Name)}
		if ds == train {
			cmp.Serving = matching(in.serving, "")
		}
		anomalies.Check(ds, schema, cmp)
	}

	// The verdict first: it is what a gate reads.
	if err := writeAnomalies(ctx, r, anomalies); err != nil {
		return err
	}
	if err := writeStatistics(ctx, r, list, anomalies, upstream); err != nil {
		return err
	}
	sw, err := r.Output(ctx, "schema")
	if err != nil {
		return err
	}
	if err := sw.WriteFile(ctx, SchemaFile, schemaRaw); err != nil {
		return err
	}
	sw.SetProperty("features", len(schema.Feature))
	sw.SetProperty("inferred", in.schema == nil)

	errs, warns := anomalies.Count(validation.SeverityError), anomalies.Count(validation.SeverityWarning)
	r.Logger().Info("anomalies", "error", errs, "warning_or_error", warns)
	var n int
	switch r.String("fail-on") {
	case "error":
		n = errs
	case "warning":
		n = warns
	}
	if n > 0 {
		return &step.GateError{Gate: "validate", Reason: fmt.Sprintf("%d anomalies at or above %s (features: %v)", n, r.String("fail-on"), anomalies.Features())}
	}
	return nil
}

// trainingSplit returns the named split's statistics, or the first's.
func trainingSplit(list *stats.DatasetFeatureStatisticsList, name string) *stats.DatasetFeatureStatistics {
	for i := range list.Datasets {
		if list.Datasets[i].Name == name {
			return &list.Datasets[i]
		}
	}
	return &list.Datasets[0]
}

// matching picks the dataset of other statistics to compare a split with:
// the one of the same name, else the first.
func matching(l *stats.DatasetFeatureStatisticsList, name string) *stats.DatasetFeatureStatistics {
	if l == nil || len(l.Datasets) == 0 {
		return nil
	}
	for i := range l.Datasets {
		if name != "" && l.Datasets[i].Name == name {
			return &l.Datasets[i]
		}
	}
	return &l.Datasets[0]
}

func readSchema(ctx context.Context, a *artifacts.Artifact) (*validation.Schema, []byte, error) {
	if a == nil {
		return nil, nil, nil
	}
	data, err := readPayload(ctx, a, SchemaFile, "schema")
	if err != nil {
		return nil, nil, err
	}
	s, err := validation.ParseSchema(data, a.URI+"/"+SchemaFile)
	if err != nil {
		return nil, nil, step.BadInput(fmt.Errorf("input schema: %w", err))
	}
	return s, data, nil
}

func readStatistics(ctx context.Context, a *artifacts.Artifact, input string) (*stats.DatasetFeatureStatisticsList, []byte, error) {
	if a == nil {
		return nil, nil, nil
	}
	data, err := readPayload(ctx, a, StatisticsFile, input)
	if err != nil {
		return nil, nil, err
	}
	l, err := parseStatistics(data, a.URI+"/"+StatisticsFile, input)
	return l, data, err
}

// parseStatistics parses statistics to compare with, which must hold a
// dataset.
func parseStatistics(data []byte, where, input string) (*stats.DatasetFeatureStatisticsList, error) {
	l, err := validation.ParseStatistics(data, where)
	if err != nil {
		return nil, step.BadInput(fmt.Errorf("input %s: %w", input, err))
	}
	if len(l.Datasets) == 0 {
		return nil, step.Usagef("input %s: %s has no datasets", input, where)
	}
	return l, nil
}

func readPayload(ctx context.Context, a *artifacts.Artifact, name, input string) ([]byte, error) {
	data, err := a.ReadFile(ctx, name)
	if err != nil {
		err = fmt.Errorf("input %s: %w", input, err)
		if errors.Is(err, artifacts.ErrNotFound) || errors.Is(err, artifacts.ErrIntegrity) {
			return nil, step.BadInput(err)
		}
		return nil, err
	}
	return data, nil
}

func writeAnomalies(ctx context.Context, r *step.Run, an *validation.Anomalies) error {
	w, err := r.Output(ctx, "anomalies")
	if err != nil {
		return err
	}
	if err := w.WriteJSON(ctx, AnomaliesFile, an); err != nil {
		return err
	}
	w.SetProperty("features_with_anomalies", an.Features())
	w.SetProperty("errors", an.Count(validation.SeverityError))
	w.SetProperty("warnings", an.Count(validation.SeverityWarning)-an.Count(validation.SeverityError))
	w.SetProperty("data_missing", an.DataMissing)
	return nil
}

func writeStatistics(ctx context.Context, r *step.Run, list *stats.DatasetFeatureStatisticsList, an *validation.Anomalies, upstream []artifacts.Input) error {
	w, err := r.Output(ctx, "statistics")
	if err != nil {
		return err
	}
	// The same bytes as WriteJSON would write, several times faster: the
	// rank histograms make this the biggest file the step writes.
	if err := w.WriteFile(ctx, StatisticsFile, append(list.IndentedJSON(), '\n')); err != nil {
		return err
	}
	html, err := report.HTML(report.Page{Title: "Data statistics and anomalies", Statistics: list, Anomalies: an, Upstream: upstreamLinks(upstream)})
	if err != nil {
		return err
	}
	if err := w.WriteFile(ctx, ReportFile, html); err != nil {
		return err
	}
	counts := map[string]int64{}
	for _, ds := range list.Datasets {
		counts[ds.Name] = int64(ds.NumExamples)
	}
	w.SetProperty("num_examples", counts)
	return nil
}

// inputNames are the inputs a report links to, in order.
var inputNames = []string{"examples", "schema", "baseline", "serving"}

// runInputs lists the run's inputs, for the report.
func runInputs(r *step.Run) []artifacts.Input {
	var ins []artifacts.Input
	for _, name := range inputNames {
		if a := r.Input(name); a != nil {
			ins = append(ins, artifacts.InputOf(name, a))
		}
	}
	return ins
}

// upstreamLinks names the artifacts the report was computed from.
func upstreamLinks(ins []artifacts.Input) []report.Link {
	var out []report.Link
	for _, l := range artifacts.UpstreamLinks(ins) {
		out = append(out, report.Link{Text: l.Text, Href: l.Href, Detail: l.URI})
	}
	return out
}
