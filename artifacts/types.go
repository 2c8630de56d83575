package artifacts

import "slices"

// Type names what an artifact holds; readers check it before anything else.
type Type string

// The artifact types of DESIGN.md's table.
const (
	TypeDataset        Type = "Dataset"
	TypeStatistics     Type = "Statistics"
	TypeSchema         Type = "Schema"
	TypeAnomalies      Type = "Anomalies"
	TypeTransformGraph Type = "TransformGraph"
	TypeModel          Type = "Model"
	TypeEvaluation     Type = "Evaluation"
	TypeBlessing       Type = "Blessing"
	TypePredictions    Type = "Predictions"
	TypeDeadLetters    Type = "DeadLetters"
	TypePushedModel    Type = "PushedModel"
)

// Types lists every known type, in the order of DESIGN.md's table.
func Types() []Type {
	return []Type{TypeDataset, TypeStatistics, TypeSchema, TypeAnomalies, TypeTransformGraph,
		TypeModel, TypeEvaluation, TypeBlessing, TypePredictions, TypeDeadLetters, TypePushedModel}
}

// Known reports whether t is one of Types.
func (t Type) Known() bool { return slices.Contains(Types(), t) }
