// Package kfp compiles a checked pipeline into a Kubeflow Pipelines v2
// pipeline spec (the IR YAML KFP's API server takes), built from KFP's own
// pipelinespec protos: one component and one executor per step, typed
// artifact inputs and outputs (system.Dataset, system.Model, system.Metrics,
// system.Artifact with our schema titles), parameters wired from the
// pipeline's inputs, dependentTasks, retry policies, resources and caching.
//
// Each executor runs the mlsteps image as `mlsteps <step>
// --kfp-executor-input {{$}}`: the step reads KFP's executor input, reads
// and writes artifacts at the local paths KFP's launcher mounts for their
// URIs, and writes the executor output file with each artifact's metadata.
//
// A sharded step (shards: N) compiles as KFP's SDK compiles a
// dsl.ParallelFor with dsl.Collected outputs: a for-loop DAG component over
// the shard list ["0/N", …] whose body runs the step's component with the
// item as its "shard" parameter (retried alone by its retry policy), its
// outputs collected into artifact lists that feed the merge component
// (inputs merge-OUTPUT, isArtifactList), which keeps the step's task name.
//
//	spec, err := kfp.Compile(graph, registry, kfp.Options{Image: "ghcr.io/acme/mlsteps:1.0"})
//	data, err := kfp.Marshal(spec)
//
// # Errors
//
// Compile fails with a *pipeline.SpecError naming the step and field for what
// the KFP form cannot express yet (listed in unsupported_test.go).
package kfp
