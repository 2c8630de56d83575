package transform

import (
	"context"
	"errors"
	"fmt"

	"github.com/mlsteps/mlsteps/artifacts"
	xf "github.com/mlsteps/mlsteps/components/transform"
	"github.com/mlsteps/mlsteps/steps/step"
)

// applySharding: with --in transform_graph (a fitted graph, fit nothing)
// transform splits the part files of its examples (over every split, in
// order) across shards; the merge concatenates the partial transformed
// Datasets part for part and keeps the graph. Every input part makes its
// own output part, sharded or not, so the merged Dataset is the unsharded
// run's, digest included. Fitting does not shard here (run refuses it):
// transform-fit shards the analyzers.
func applySharding() *step.Sharding {
	return &step.Sharding{By: step.ShardByParts, Input: "examples", Merge: mergeApply}
}

// part is one input part file.
type part struct {
	split, file string
}

// planParts lists the part files of the splits, in order, and keeps this
// shard's share of them (all of them when not sharded).
func planParts(r *step.Run, splits []artifacts.Split) []part {
	var all []part
	for _, s := range splits {
		for _, f := range s.Files {
			all = append(all, part{split: s.Name, file: f})
		}
	}
	sh, ok := r.Shard()
	if !ok {
		return all
	}
	lo, hi := sh.Range(len(all))
	r.ShardCovers(lo, hi, len(all))
	r.Logger().Info("shard", "shard", sh.String(), "parts", fmt.Sprintf("[%d, %d) of %d", lo, hi, len(all)))
	return all[lo:hi]
}

// runApply transforms every split (or this shard's parts) with a fitted
// graph, and passes the graph on as the transform_graph output.
func runApply(ctx context.Context, r *step.Run, fitted *artifacts.Artifact) error {
	if r.String("spec") != "" {
		return step.Usagef("give --spec (fit, then apply) or --in transform_graph=URI (apply a fitted graph), not both")
	}
	data, err := fitted.ReadFile(ctx, FileJSON)
	if err != nil {
		if _, perr := artifacts.Property[bool](fitted.Sidecar, PropPartial); perr == nil {
			return step.BadInput(fmt.Errorf("input transform_graph is a transform-fit shard's partial: merge the shards first"))
		}
		return step.BadInput(fmt.Errorf("input transform_graph: %w", err))
	}
	g, err := xf.ParseGraph(data)
	if err != nil {
		return step.BadInput(fmt.Errorf("input transform_graph: %s: %w", FileJSON, err))
	}
	if err := copyGraph(ctx, r, fitted); err != nil {
		return err
	}
	rows, err := writeExamples(ctx, r, r.Input("examples"), g)
	if err != nil {
		return err
	}
	r.Logger().Info("transformed", "features", len(g.Order), "inputs", len(g.Inputs), "rows", rows, "fitted_by", fitted.URI)
	return nil
}

// graphProps are the TransformGraph properties writeGraph sets.
var graphProps = []string{PropInputs, PropOutput, PropFeatureOrder, PropOpset, PropIRVersion, PropLabel, PropPassthrough}

// copyGraph writes src's transform.json and transform.onnx, byte for
// byte, and its TransformGraph properties as the transform_graph output.
func copyGraph(ctx context.Context, r *step.Run, src *artifacts.Artifact) error {
	w, err := r.Output(ctx, "transform_graph")
	if err != nil {
		return err
	}
	for _, name := range []string{FileJSON, FileONNX} {
		data, err := src.ReadFile(ctx, name)
		if err != nil {
			return step.BadInput(fmt.Errorf("transform graph %s: %w", artifacts.Redact(src.URI), err))
		}
		if err := w.WriteFile(ctx, name, data); err != nil {
			return err
		}
	}
	for _, p := range graphProps {
		if v, ok := src.Properties[p]; ok {
			w.SetProperty(p, v)
		}
	}
	return nil
}

// mergeApply concatenates the shards' transformed Datasets in shard order
// and passes on the graph they all applied.
func mergeApply(ctx context.Context, r *step.Run) error {
	graphs, parts := r.Partials("transform_graph"), r.Partials("transformed_examples")
	for _, g := range graphs[1:] {
		if g.Digest != graphs[0].Digest {
			return step.BadInput(fmt.Errorf("merge: %s holds another graph than %s", artifacts.Redact(g.URI), artifacts.Redact(graphs[0].URI)))
		}
	}
	if _, err := graphs[0].ReadFile(ctx, FileJSON); err != nil {
		return step.BadInput(errors.New("merge: the partials come from a transform that fitted, not one that applied a fitted graph"))
	}
	if err := copyGraph(ctx, r, graphs[0]); err != nil {
		return err
	}
	w, err := r.Output(ctx, "transformed_examples")
	if err != nil {
		return err
	}
	if err := artifacts.ConcatDatasets(ctx, w, parts); err != nil {
		return step.BadInput(fmt.Errorf("merge transformed examples: %w", err))
	}
	r.Logger().Info("merged", "shards", len(parts))
	return nil
}
