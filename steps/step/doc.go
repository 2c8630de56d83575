// Package step is the harness every mlsteps step runs in.
//
// A step declares its contract once, as a Spec value: typed inputs and
// outputs (artifact types), typed parameters with defaults, and a Run
// function. Everything else derives from that value: the CLI flags and
// --help, `mlsteps describe STEP --json`, and (later) the Argo and KFP
// templates. The harness opens and type-checks inputs, creates outputs,
// records lineage (producer, parameters, input digests) in every output's
// sidecar, commits the outputs, writes an execution record under
// <root>/.mlsteps/executions/, and maps the outcome to an exit code.
//
//	spec := &step.Spec{
//		Name: "import", Version: "1",
//		Outputs: []step.Port{{Name: "examples", Type: artifacts.TypeDataset}},
//		Params:  []step.Param{{Name: "seed", Type: step.Int, Default: int64(42)}},
//		Run: func(ctx context.Context, r *step.Run) error {
//			w, err := r.Output(ctx, "examples")
//			...
//		},
//	}
//
// # Errors
//
// Run returns nil when done. Wrap an error with BadInput when the caller's
// input is at fault (a missing file, an unreadable row): the step exits 2.
// Return a *GateError when a gate says no: outputs are still committed (the
// verdict is an artifact) and the step exits 3. Anything else exits 1 and
// leaves no committed output.
//
// # Sharding
//
// A Spec with Shard set declares that its work splits across processes,
// by the part files of a Dataset input (ShardByParts) or by key
// (ShardByKey), and names its Merge. Invocation.Shard (--shard I/N) runs
// one share: the step asks Run.Shard, does the items Shard.Range gives it
// and says so with Run.ShardCovers; the harness marks every output as a
// partial (property "shard": a ShardInfo with the plan, a digest of the
// run without the shard, shared by all shards of one run). Invocation.Merge
// (--merge OUTPUT=URI, repeatable or a JSON list) runs the Merge instead:
// the harness first checks the partials are one complete set (every shard
// once, one plan, the items covered once) and refuses anything else as bad
// input, then Merge reads Run.Partials and writes the outputs one process
// would have written (property "merged"); their lineage names the
// partials and the inputs the shards read.
//
// # Secrets
//
// A Param with Secret set is never written to sidecars, execution records
// or logs; URLs in parameters and URIs have credentials redacted.
package step
