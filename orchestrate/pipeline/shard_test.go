package pipeline_test

import (
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline/pipelinetest"
	"github.com/mlsteps/mlsteps/steps/catalog"
)

const shardBase = `name: s
steps:
  - name: import
    step: import
    params: {source: "s3://b/x.csv"}
  - name: train
    step: train
    inputs: {examples: "{{steps.import.outputs.examples}}"}
`

// TestShards: shards and shard_by parse and check against the contracts;
// every misuse is reported with its line and path.
func TestShards(t *testing.T) {
	reg := pipelinetest.Registry(t)
	ok := pipelinetest.Graph(t, reg, "ok.yaml", shardBase+`  - name: score
    step: score
    inputs: {examples: "{{steps.import.outputs.examples}}", model: "{{steps.train.outputs.model}}"}
    shards: 8
    shard_by: parts
`)
	if s := ok.Step("score"); s.Shards != 8 || s.ShardBy != "parts" {
		t.Errorf("score shards %d by %q", s.Shards, s.ShardBy)
	}
	for _, tc := range []struct{ extra, want string }{
		{"    shards: 4\n", "line 9: steps[1].shards: step train does not shard"},
		{"    shards: 0\n", "steps[1].shards: want a whole number from 1 to 1000"},
		{"    shards: many\n", "steps[1].shards: want a whole number"},
	} {
		p, err := pipeline.Parse("bad.yaml", []byte(shardBase+tc.extra))
		if err == nil {
			_, err = pipeline.Check(p, reg)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.extra, err, tc.want)
		}
	}
	score := `  - name: score
    step: score
    inputs: {examples: "{{steps.import.outputs.examples}}", model: "{{steps.train.outputs.model}}"}
`
	for _, tc := range []struct{ extra, want string }{
		{"    shard_by: parts\n", "steps[2].shard_by: give shards: N as well"},
		{"    shards: 2\n    shard_by: key\n", `steps[2].shard_by: "key": score shards by parts`},
	} {
		p, err := pipeline.Parse("bad.yaml", []byte(shardBase+score+tc.extra))
		if err == nil {
			_, err = pipeline.Check(p, reg)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.extra, err, tc.want)
		}
	}
}

// TestShardsStepCheck: the real train step shards by key only with
// --per-key, which the pipeline check asks of its contract.
func TestShardsStepCheck(t *testing.T) {
	reg, err := catalog.Registry()
	if err != nil {
		t.Fatal(err)
	}
	text := shardBase + `    params: {trainer: "builtin:gbdt", label: y}
    shards: 3
    shard_by: key
`
	p, err := pipeline.Parse("t.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Check(p, reg); err == nil || !strings.Contains(err.Error(), "--per-key") {
		t.Fatalf("train shards without --per-key: %v", err)
	}
	p, _ = pipeline.Parse("t.yaml", []byte(strings.Replace(text, "label: y}", "label: y, per-key: Island}", 1)))
	if _, err := pipeline.Check(p, reg); err != nil {
		t.Fatal(err)
	}
}
