// Package catalog lists every step this build of mlsteps offers. The CLI
// and the pipeline compilers read contracts from here.
package catalog

import (
	"github.com/mlsteps/mlsteps/steps/deploy"
	"github.com/mlsteps/mlsteps/steps/evaluate"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/infer"
	"github.com/mlsteps/mlsteps/steps/step"
	"github.com/mlsteps/mlsteps/steps/train"
	"github.com/mlsteps/mlsteps/steps/transform"
	"github.com/mlsteps/mlsteps/steps/validate"
)

// Registry returns a registry of every step, in pipeline order.
func Registry() (*step.Registry, error) {
	return step.NewRegistry(
		importer.Spec(),
		validate.Spec(),
		transform.Spec(),
		transform.FitSpec(),
		train.Spec(),
		evaluate.Spec(),
		importer.ModelSpec(),
		infer.Spec(),
		deploy.Spec(),
	)
}
