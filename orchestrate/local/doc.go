// Package local runs a checked pipeline on this machine: every step is a
// child process of the same mlsteps binary, started as soon as the steps it
// depends on are done, at most Parallelism at a time.
//
// Steps run with --cache-root, so the harness places outputs by cache key
// (the step, its version, the binary's digest, the parameters and the
// content digests of the inputs): a step whose key matches a committed
// earlier execution is a cache hit, and a run that was killed resumes by
// running again (what committed is reused, the rest runs). The same key is
// what a step computes under Argo or KFP, so every run shares one cache.
//
//	res, err := local.Run(ctx, graph, registry, local.Options{Binary: exe, Root: "file:///tmp/mlsteps"})
//
// A sharded step (shards: N in the file) runs as N child processes at once
// (at most Parallelism), `mlsteps STEP --shard I/N`, each retried alone
// per the step's retries and cached by its own key; when all succeeded,
// `mlsteps STEP --merge OUTPUT=URI …` combines their partial outputs into
// the step's outputs. StepResult.Shards holds each shard's result.
//
// A gate (a step exiting 3) skips the steps that depend on it; the rest of
// the pipeline finishes, and the run's exit code is 3. A failed step (exit
// 1, after its retries) skips its dependants and makes the run exit 1.
//
// # Errors
//
// Run returns an error only when the run could not be carried out at all;
// step outcomes are in the result.
package local
