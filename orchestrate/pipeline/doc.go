// Package pipeline reads, checks and plans mlsteps pipelines: one YAML file
// naming steps, their parameters and how outputs feed inputs.
//
//	name: penguins
//	root: file:///tmp/mlsteps          # artifact root; --root overrides
//	parameters:
//	  source: {default: "data/penguins.json"}
//	  seed: {default: 7}
//	steps:
//	  - name: import
//	    step: import
//	    params: {source: "{{params.source}}", seed: "{{params.seed}}"}
//	  - name: validate
//	    step: validate
//	    inputs: {examples: "{{steps.import.outputs.examples}}"}
//	    retries: 2
//	    resources: {cpu: "1", memory: 2Gi}
//	    cache: false
//	  - name: infer
//	    step: infer
//	    inputs: {examples: "{{steps.import.outputs.examples}}", model: "s3://models/m"}
//	    shards: 8                      # 8 shards of the part files, then the merge
//	    shard_by: parts                # optional: the step's own way (parts or key)
//
// Parse decodes the file (unknown fields are errors); Check validates the
// whole pipeline against the step contracts before anything runs and
// returns every problem with its line and path (`line 12: steps[1].inputs.examples:
// no step "imprt"`); Plan orders the steps and resolves parameters. Checking
// never changes the pipeline.
//
// # Errors
//
// Parse and Check return a *SpecError listing every Problem found.
package pipeline
