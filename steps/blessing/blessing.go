// Package blessing is the Blessing artifact's format: blessing.json, the
// evaluate step's verdict on a model, which deploy reads before it pushes.
package blessing

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/evaluate"
)

// File is the name of the verdict inside a Blessing artifact.
const File = "blessing.json"

// Blessing is the verdict on one model: blessed or not, and every
// threshold check that decided it.
type Blessing struct {
	Blessed bool `json:"blessed"`
	// Model is the evaluated Model artifact's URI, ModelDigest its content
	// digest and ModelID the id its predictions carry (name@digest).
	Model       string `json:"model"`
	ModelDigest string `json:"model_digest"`
	ModelID     string `json:"model_id"`
	// Predictions is the Predictions artifact evaluated instead of a
	// model (model-agnostic evaluation); such a blessing blesses no model.
	Predictions string `json:"predictions,omitempty"`
	// Baseline is the baseline Model's URI when change thresholds were
	// checked against one.
	Baseline       string `json:"baseline,omitempty"`
	BaselineDigest string `json:"baseline_digest,omitempty"`
	// Evaluation is the Evaluation artifact holding the metrics.
	Evaluation string           `json:"evaluation"`
	Checks     []evaluate.Check `json:"checks"`
	// Reason says why not, naming each failed check; empty when blessed.
	Reason string `json:"reason,omitempty"`
}

// Write stores b as blessing.json in w and sets the `blessed` property.
func Write(ctx context.Context, w *artifacts.Writer, b Blessing) error {
	w.SetProperty("blessed", b.Blessed)
	if b.Reason != "" {
		w.SetProperty("reason", b.Reason)
	}
	return w.WriteJSON(ctx, File, b)
}

// Read loads the verdict of a Blessing artifact.
func Read(ctx context.Context, a *artifacts.Artifact) (Blessing, error) {
	var b Blessing
	data, err := a.ReadFile(ctx, File)
	if err != nil {
		return b, fmt.Errorf("read blessing %s: %w", a.Location(), err)
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return b, fmt.Errorf("read blessing %s: %w: %w", a.Location(), artifacts.ErrInvalid, err)
	}
	return b, nil
}
