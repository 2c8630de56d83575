// Package pipelinetest holds a step registry for pipeline tests: the real
// import step and contract-only steps shaped like validate and train, so
// pipelines can be checked and compiled without running anything.
package pipelinetest

import (
	"context"
	"os"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/step"
)

func noop(context.Context, *step.Run) error { return nil }

// Registry returns import plus contract-only steps: stats, train, and
// score, which shards by part files (shaped like infer).
func Registry(t testing.TB) *step.Registry {
	reg, err := step.NewRegistry(
		importer.Spec(),
		&step.Spec{Name: "stats", Version: "1", Run: noop,
			Inputs:  []step.Port{{Name: "examples", Type: artifacts.TypeDataset}},
			Outputs: []step.Port{{Name: "statistics", Type: artifacts.TypeStatistics}},
			Params:  []step.Param{{Name: "fail-on", Type: step.String, Default: "error", Enum: []string{"error", "warning", "never"}}}},
		&step.Spec{Name: "train", Version: "1", Run: noop,
			Inputs:  []step.Port{{Name: "examples", Type: artifacts.TypeDataset}, {Name: "statistics", Type: artifacts.TypeStatistics, Optional: true}},
			Outputs: []step.Port{{Name: "model", Type: artifacts.TypeModel}},
			Params:  []step.Param{{Name: "epochs", Type: step.Int, Default: int64(5)}}},
		&step.Spec{Name: "score", Version: "1", Run: noop,
			Inputs: []step.Port{{Name: "examples", Type: artifacts.TypeDataset}, {Name: "model", Type: artifacts.TypeModel}},
			Outputs: []step.Port{{Name: "predictions", Type: artifacts.TypePredictions},
				{Name: "dead_letters", Type: artifacts.TypeDeadLetters}},
			Params: []step.Param{{Name: "batch", Type: step.Int, Default: int64(256)}},
			Shard:  &step.Sharding{By: step.ShardByParts, Input: "examples", Merge: noop}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// Graph parses and checks a pipeline text against reg, failing t on any
// problem.
func Graph(t testing.TB, reg *step.Registry, name, text string) *pipeline.Graph {
	t.Helper()
	p, err := pipeline.Parse(name, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	g, err := pipeline.Check(p, reg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// GraphFile is Graph on a pipeline file.
func GraphFile(t testing.TB, reg *step.Registry, path string) *pipeline.Graph {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Graph(t, reg, path, string(data))
}
