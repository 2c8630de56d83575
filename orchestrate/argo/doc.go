// Package argo compiles a checked pipeline into an Argo Workflow (or
// WorkflowTemplate) built from Argo's own Go types: one DAG task per step,
// each a container template running the mlsteps image with the step's
// flags. Artifacts pass between tasks as blob URIs through output
// parameters, so the bucket is the artifact store and lineage and caching
// work as they do locally: every task runs with --cache-root, so a cluster
// run and a laptop run on the same bucket share one content-addressed cache.
//
//	wf, err := argo.Compile(graph, registry, argo.Options{Image: "ghcr.io/acme/mlsteps:1.0", Root: "s3://ml/runs"})
//	data, err := argo.Marshal(wf)
//
// A sharded step (shards: N) fans out: a planning task runs `mlsteps
// shard-plan --shards N`, whose stdout (["0/N", …]) is the list the shard
// task iterates over with withParam, one pod per shard running the step
// with --shard I/N (the retry strategy retries each pod alone); a merge
// task, named after the step so downstream tasks read its outputs as
// before, runs the step with --merge OUTPUT=<the shards' aggregated URIs>.
//
// A gate (exit 3) fails its task, so the tasks that depend on it do not run;
// the DAG does not fail fast, so independent branches finish.
//
// # Errors
//
// Compile fails with a *pipeline.SpecError naming the step and field for what
// the Argo form cannot express (listed in unsupported_test.go).
package argo
