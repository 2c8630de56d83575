package transform

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/artifacts"
	xf "github.com/mlsteps/mlsteps/components/transform"
	"github.com/mlsteps/mlsteps/steps/step"
)

// FilePartialState is what a transform-fit shard's partial TransformGraph
// holds (JSON, partialFit): the compiled graph and its share's analyzer
// state. Nothing a person reads: the merge writes transform.json.
const FilePartialState = "shard/state.json"

// PropPartial is true on a shard's partial TransformGraph.
const PropPartial = "partial"

// partialFormat versions FilePartialState; the merge refuses others.
const partialFormat = 1

// partialFit is FilePartialState.
type partialFit struct {
	Format int    `json:"format"`
	Shard  string `json:"shard"`
	// Graph is the compiled graph before the pass (every shard compiles
	// the same one from the same spec and columns; the merge checks).
	Graph json.RawMessage `json:"graph"`
	// State is the shard's analyzer state of the first pass; nil when the
	// spec has no analyzer.
	State *xf.PassState `json:"state"`
	// Examples and ExamplesDigest name the Dataset fitted on, and
	// TrainSplit its split: a spec whose analyzers need more passes (an
	// impute before a zscore) has them run by the merge.
	Examples       string `json:"examples"`
	ExamplesDigest string `json:"examples_digest"`
	TrainSplit     string `json:"train_split"`
}

// FitSpec is the transform-fit step's contract: transform's fit alone,
// shardable by the part files of the train split.
func FitSpec() *step.Spec {
	return &step.Spec{
		Name:    "transform-fit",
		Version: Version,
		Summary: "fit preprocessing on the train split and export it as an ONNX graph (shardable: the analyzers' state merges)",
		Description: "Compiles a transform spec (as transform does) against the Dataset's columns, fits its analyzers on the train " +
			"split and writes the TransformGraph transform writes (transform.json, transform.onnx, the same properties), without " +
			"transforming any rows: give it to transform as --in transform_graph=URI to apply it, split by split and shard by shard. " +
			"Sharded (--shard I/N), each shard runs the first fitting pass over its share of the train split's part files and writes " +
			"a partial holding the analyzers' state (per-batch moments, DDSketch buckets, value counts); the merge folds the states " +
			"in shard order, exactly, and writes the unsharded run's TransformGraph byte for byte. A spec whose analyzers need " +
			"more passes (impute: mean, then zscore) has the merge run those passes itself over the train split.",
		Inputs: []step.Port{
			{Name: "examples", Type: artifacts.TypeDataset, Description: "the rows to fit on (train split)"},
			{Name: "schema", Type: artifacts.TypeSchema, Optional: true, Description: "recorded as lineage; column types are read from the Dataset"},
		},
		Outputs: []step.Port{
			{Name: "transform_graph", Type: artifacts.TypeTransformGraph, Description: "transform.json and transform.onnx"},
		},
		Params: []step.Param{
			{Name: "spec", Type: step.String, Required: true, Description: "the transform spec (YAML) at a local path or blob URL", Example: "transform.yaml"},
			{Name: "train-split", Type: step.String, Default: "train", Description: "the split analyzers are fitted on", Example: "train"},
		},
		Run:        runFit,
		ContentKey: specDigest,
		Shard:      &step.Sharding{By: step.ShardByParts, Input: "examples", Merge: mergeFit},
	}
}

func runFit(ctx context.Context, r *step.Run) error {
	data, name, err := readSpec(ctx, r)
	if err != nil {
		return err
	}
	examples := r.Input("examples")
	train := r.String("train-split")
	g, err := compile(examples, name, data, train)
	if err != nil {
		return err
	}
	sh, sharded := r.Shard()
	if !sharded {
		if err := fitGraph(ctx, g, examples, train); err != nil {
			return err
		}
		if err := writeFitted(ctx, r, g); err != nil {
			return err
		}
		r.Logger().Info("fitted", "features", len(g.Order), "inputs", len(g.Inputs))
		return nil
	}
	split, err := examples.Split(train)
	if err != nil {
		return step.BadInput(fmt.Errorf("--train-split: %w", err))
	}
	lo, hi := sh.Range(len(split.Files))
	r.ShardCovers(lo, hi, len(split.Files))
	r.Logger().Info("shard", "shard", sh.String(), "parts", fmt.Sprintf("[%d, %d) of %d", lo, hi, len(split.Files)))
	gj, err := json.Marshal(g)
	if err != nil {
		return err
	}
	opts := artifacts.ReadOptions{Columns: inputNames(g)}
	src := func() iter.Seq2[arrow.RecordBatch, error] {
		return func(yield func(arrow.RecordBatch, error) bool) {
			for _, f := range split.Files[lo:hi] {
				for rec, err := range examples.PartRecords(ctx, train, f, opts) {
					if !yield(rec, err) || err != nil {
						return
					}
				}
			}
		}
	}
	st, err := g.Analyze(ctx, src)
	if err != nil {
		return specErr(err)
	}
	state, err := json.Marshal(partialFit{Format: partialFormat, Shard: sh.String(), Graph: gj, State: st,
		Examples: examples.URI, ExamplesDigest: examples.Digest, TrainSplit: train})
	if err != nil {
		return fmt.Errorf("encode the analyzers' state: %w", err)
	}
	w, err := r.Output(ctx, "transform_graph")
	if err != nil {
		return err
	}
	if err := w.WriteFile(ctx, FilePartialState, state); err != nil {
		return err
	}
	w.SetProperty(PropPartial, true)
	return nil
}

// fitGraph fits g on the train split of examples, in as many passes as it
// needs.
func fitGraph(ctx context.Context, g *xf.Graph, examples *artifacts.Artifact, train string) error {
	src := func() iter.Seq2[arrow.RecordBatch, error] {
		return examples.Records(ctx, train, artifacts.ReadOptions{Columns: inputNames(g)})
	}
	return specErr(xf.Fit(ctx, g, src))
}

// writeFitted writes a fitted graph as the transform_graph output.
func writeFitted(ctx context.Context, r *step.Run, g *xf.Graph) error {
	model, err := g.ONNX()
	if err != nil {
		return err
	}
	return writeGraph(ctx, r, g, model)
}

// mergeFit folds the shards' analyzer states, in shard order, finishes
// the fit (running any further pass over the train split itself) and
// writes the TransformGraph one process would have.
func mergeFit(ctx context.Context, r *step.Run) error {
	parts := r.Partials("transform_graph")
	var (
		g      *xf.Graph
		first  partialFit
		states []*xf.PassState
	)
	for i, p := range parts {
		where := artifacts.Redact(p.Location().String())
		data, err := p.ReadFile(ctx, FilePartialState)
		if err != nil {
			return step.BadInput(fmt.Errorf("merge: %s is not a transform-fit shard's partial: %w", where, err))
		}
		var pf partialFit
		if err := json.Unmarshal(data, &pf); err != nil {
			return step.BadInput(fmt.Errorf("merge: %s: %s: %w", where, FilePartialState, err))
		}
		if pf.Format != partialFormat {
			return step.BadInput(fmt.Errorf("merge: %s: partial format %d, this build reads %d", where, pf.Format, partialFormat))
		}
		if i == 0 {
			first = pf
			g = &xf.Graph{}
			if err := json.Unmarshal(pf.Graph, g); err != nil {
				return step.BadInput(fmt.Errorf("merge: %s: graph: %w", where, err))
			}
		} else if !bytes.Equal(pf.Graph, first.Graph) || pf.ExamplesDigest != first.ExamplesDigest || pf.TrainSplit != first.TrainSplit {
			return step.BadInput(fmt.Errorf("merge: %s (shard %s) compiled another graph or read other examples than shard 0", where, pf.Shard))
		}
		if (pf.State == nil) != (first.State == nil) {
			return step.BadInput(fmt.Errorf("merge: %s (shard %s) has no analyzer state where shard 0 has one, or the reverse", where, pf.Shard))
		}
		states = append(states, pf.State)
	}
	if first.State == nil {
		// No analyzer: Fit reads nothing and derives the outputs.
		if err := xf.Fit(ctx, g, nil); err != nil {
			return specErr(err)
		}
	} else if err := g.FinishPass(states); err != nil {
		return step.BadInput(fmt.Errorf("merge: %w", err))
	}
	more := !g.Fitted()
	if more {
		// Later passes need the first's fitted values: the merge runs them.
		u, err := artifacts.ParseURI(first.Examples)
		if err != nil {
			return step.BadInput(fmt.Errorf("merge: examples: %w", err))
		}
		examples, err := r.Store().Open(ctx, u, artifacts.TypeDataset)
		if err != nil {
			return fmt.Errorf("merge: the spec needs more fitting passes over the examples: %w", err)
		}
		if examples.Digest != first.ExamplesDigest {
			return step.BadInput(fmt.Errorf("merge: examples %s changed since the shards read them (digest %.12s, not %.12s)",
				artifacts.Redact(first.Examples), examples.Digest, first.ExamplesDigest))
		}
		if err := fitGraph(ctx, g, examples, first.TrainSplit); err != nil {
			return err
		}
	}
	if err := writeFitted(ctx, r, g); err != nil {
		return err
	}
	r.Logger().Info("merged", "shards", len(parts), "later_passes_in_merge", more, "features", len(g.Order))
	return nil
}
