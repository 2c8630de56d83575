package inference

import (
	"maps"
	"math"
)

// MergeValues combines two runs' metric values (Metrics' Values, by
// Beam's names), as when shards of one job are merged: counters add,
// means are weighted by their counts, minima and maxima take the smaller
// and larger, the model's size is the larger. A nil side is no run.
func MergeValues(a, b map[string]float64) map[string]float64 {
	if a == nil {
		return maps.Clone(b)
	}
	if b == nil {
		return a
	}
	out := maps.Clone(a)
	for _, counter := range []string{NumInferences, FailedBatchesCounter} {
		out[counter] = a[counter] + b[counter]
	}
	out[ModelByteSize] = math.Max(a[ModelByteSize], b[ModelByteSize])
	for _, dist := range []string{LoadModelLatency, InferenceRequestBatchSize, InferenceBatchLatency} {
		na, nb := a[dist+"_count"], b[dist+"_count"]
		if na+nb > 0 {
			out[dist] = (a[dist]*na + b[dist]*nb) / (na + nb)
		}
		out[dist+"_count"] = na + nb
		if _, ok := a[dist+"_min"]; ok {
			switch {
			case na == 0:
				out[dist+"_min"], out[dist+"_max"] = b[dist+"_min"], b[dist+"_max"]
			case nb > 0:
				out[dist+"_min"] = math.Min(a[dist+"_min"], b[dist+"_min"])
				out[dist+"_max"] = math.Max(a[dist+"_max"], b[dist+"_max"])
			}
		}
	}
	return out
}
