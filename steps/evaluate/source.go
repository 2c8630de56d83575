package evaluate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
)

// checkExamples refuses, before any model loads, examples without the
// config's split or the columns the config and the models read.
func checkExamples(ctx context.Context, examples *artifacts.Artifact, cfg Config, source string, classifier bool, models ...*model.Model) error {
	if _, err := examples.Split(cfg.Split); err != nil {
		return step.BadInput(fmt.Errorf("config %s: split: %w", source, err))
	}
	schema, err := examples.DatasetSchema(ctx)
	if err != nil {
		return err
	}
	if err := checkColumns(schema, cfg, classifier); err != nil {
		return err
	}
	for _, m := range models {
		if m == nil {
			continue
		}
		var missing []string
		for _, c := range m.Columns() {
			if len(schema.FieldIndices(c)) == 0 {
				missing = append(missing, fmt.Sprintf("%q", c))
			}
		}
		if len(missing) > 0 {
			return step.BadInput(fmt.Errorf("model %s reads columns the examples do not have: %s (columns: %s)",
				m.ID(), strings.Join(missing, ", "), columnList(schema)))
		}
	}
	return nil
}

// fromPredictions reads recorded predictions (this run's share of the
// split's part files) as the truth and one model's answers: the model ids
// they hold name it.
func fromPredictions(ctx context.Context, r *step.Run, preds *artifacts.Artifact, cfg Config, source string) (*truth, *answers, []string, error) {
	if _, err := preds.Split(cfg.Split); err != nil {
		return nil, nil, nil, step.BadInput(fmt.Errorf("config %s: split: %w", source, err))
	}
	schema, err := preds.DatasetSchema(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	classes, prediction, err := recordedClasses(schema, cfg.Prediction)
	if err != nil {
		return nil, nil, nil, step.BadInput(fmt.Errorf("input predictions: %w", err))
	}
	if err := cfg.checkMetrics(classes != nil, classes); err != nil {
		return nil, nil, nil, step.BadInput(fmt.Errorf("config %s: %w", source, err))
	}
	if err := checkColumns(schema, cfg, classes != nil); err != nil {
		return nil, nil, nil, fmt.Errorf("input predictions (pass the label through infer's --passthrough): %w", err)
	}
	src, err := planShare(ctx, r, preds, "predictions", cfg.Split)
	if err != nil {
		return nil, nil, nil, err
	}
	t, err := readTruth(ctx, src, cfg, classes)
	if err != nil {
		return nil, nil, nil, err
	}
	ids, _ := artifacts.Property[[]string](preds.Sidecar, "model_ids")
	slices.Sort(ids)
	id := strings.Join(ids, "+")
	if id == "" {
		id = "predictions"
	}
	a, err := recorded(ctx, src, cfg, classes, prediction, t.n, id)
	if err != nil {
		return nil, nil, nil, err
	}
	return t, a, classes, nil
}
