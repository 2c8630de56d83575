// Package validate is the `mlsteps validate` step: TFX's StatisticsGen,
// SchemaGen and ExampleValidator in one step, writing TFDV's formats.
//
//	mlsteps validate --in examples=file:///tmp/run/examples --out-root file:///tmp/run \
//	    [--in schema=SCHEMA] [--in baseline=STATISTICS] [--in serving=STATISTICS] \
//	    [--fail-on error|warning|never]
//
// It reads every split of a Dataset once, decoding Parquet column chunks
// on several goroutines (deterministically: see lanes; flat string and
// number columns straight from their pages, see dictpages.go; part digests
// verified beside the pass), and writes three artifacts: statistics (statistics.json, one dataset per split, and
// report.html), schema (the given one copied, or one inferred from the
// training split) and anomalies (every split checked against the schema,
// drift against baseline statistics, skew of the training split against
// serving statistics).
//
// # Errors
//
// Bad inputs exit 2 with a message naming the input, file and field: a
// schema or statistics file that does not parse (a typo in a field name),
// an input of the wrong artifact type, nothing to infer a schema from (an
// empty training split and no --in schema). Anomalies at or above
// --fail-on exit 3 after all three artifacts are committed.
package validate
