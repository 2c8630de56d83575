package infer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/steps/step"
)

// sharding: infer splits the part files of its examples across shards
// (over the selected splits, in order); the merge concatenates the
// partial Predictions and DeadLetters part for part. Every input part is
// inferred on its own and makes its own output parts, whether sharded or
// not, so the merged artifacts are the unsharded run's, digest included.
func sharding() *step.Sharding {
	return &step.Sharding{By: step.ShardByParts, Input: "examples", Merge: merge,
		Check: func(params map[string]string) error {
			if params["stream"] == "true" {
				return errors.New("infer --stream reads a subscription, not part files: it does not shard")
			}
			return nil
		}}
}

// part is one input part file.
type part struct {
	split, file string
}

// partPlan is the parts this run infers, and for each split the row
// number (in the split) of the next part's first row.
type partPlan struct {
	parts []part
	next  map[string]int64
}

// planParts lists the parts of the selected splits and keeps this shard's
// share of them (all of them when not sharded).
func planParts(ctx context.Context, r *step.Run, examples *artifacts.Artifact, splits []string) (partPlan, error) {
	var all []part
	for _, name := range splits {
		s, err := examples.Split(name)
		if err != nil {
			return partPlan{}, step.BadInput(fmt.Errorf("input examples: %w", err))
		}
		for _, f := range s.Files {
			all = append(all, part{split: name, file: f})
		}
	}
	plan := partPlan{parts: all, next: map[string]int64{}}
	sh, ok := r.Shard()
	if !ok {
		return plan, nil
	}
	lo, hi := sh.Range(len(all))
	r.ShardCovers(lo, hi, len(all))
	plan.parts = all[lo:hi]
	// Dead letters name rows of the split: a shard starting inside a split
	// needs the rows of the parts before its own.
	if len(plan.parts) > 0 {
		first := plan.parts[0]
		s, _ := examples.Split(first.split)
		if k := slices.Index(s.Files, first.file); k > 0 {
			counts, err := examples.PartRowCounts(ctx, first.split)
			if err != nil {
				return plan, fmt.Errorf("input examples: %w", err)
			}
			for _, n := range counts[:k] {
				plan.next[first.split] += n
			}
		}
	}
	r.Logger().Info("shard", "shard", sh.String(), "parts", fmt.Sprintf("[%d, %d) of %d", lo, hi, len(all)))
	return plan, nil
}

// merge writes the Predictions and DeadLetters of the whole from the
// shards' partials: part files in the original order, counts summed,
// metrics combined per model id, and the dead-letter gate applied to the
// whole.
func merge(ctx context.Context, r *step.Run) error {
	preds, deads := r.Partials("predictions"), r.Partials("dead_letters")
	pred, err := r.Output(ctx, "predictions")
	if err != nil {
		return err
	}
	dead, err := r.Output(ctx, "dead_letters")
	if err != nil {
		return err
	}
	if err := artifacts.ConcatDatasets(ctx, pred, preds); err != nil {
		return step.BadInput(fmt.Errorf("merge predictions: %w", err))
	}
	if err := artifacts.ConcatDatasets(ctx, dead, deads); err != nil {
		return step.BadInput(fmt.Errorf("merge dead letters: %w", err))
	}
	var predicted, failed int64
	metrics := map[string]map[string]float64{}
	remote := map[string]float64{}
	ids := map[string]bool{}
	for _, a := range preds {
		n, err := artifacts.Property[int64](a.Sidecar, PropNumInferences)
		if err != nil {
			return step.BadInput(fmt.Errorf("merge: %w", err))
		}
		f, err := artifacts.Property[int64](a.Sidecar, PropDeadLetters)
		if err != nil {
			return step.BadInput(fmt.Errorf("merge: %w", err))
		}
		predicted, failed = predicted+n, failed+f
		m, _ := artifacts.Property[map[string]map[string]float64](a.Sidecar, PropMetrics)
		for id, v := range m {
			metrics[id] = mergeMetrics(metrics[id], v)
			ids[id] = true
		}
		rs, _ := artifacts.Property[map[string]float64](a.Sidecar, PropRemote)
		for k, v := range rs {
			remote[k] += v
		}
	}
	pred.SetProperty(PropMetrics, metrics)
	pred.SetProperty(PropNumInferences, predicted)
	pred.SetProperty(PropDeadLetters, failed)
	pred.SetProperty(PropModelIDs, slices.Sorted(maps.Keys(ids)))
	if len(remote) > 0 {
		pred.SetProperty(PropRemote, remote)
	}
	dead.SetProperty(PropDeadLetters, failed)
	rows := predicted + failed
	r.Logger().Info("merged", "shards", len(preds), "predicted", predicted, "dead_letters", failed)
	if limit := r.Float("max-dead-letter-fraction"); rows > 0 && float64(failed)/float64(rows) > limit {
		return &step.GateError{Gate: "max-dead-letter-fraction",
			Reason: fmt.Sprintf("%d of %d rows (%.2f%%) were dead-lettered, above %.2f%%", failed, rows, 100*float64(failed)/float64(rows), 100*limit)}
	}
	return nil
}

// mergeMetrics combines two shards' engine metrics.
func mergeMetrics(a, b map[string]float64) map[string]float64 { return inference.MergeValues(a, b) }
