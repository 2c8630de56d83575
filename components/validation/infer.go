package validation

import (
	"slices"

	"github.com/mlsteps/mlsteps/components/stats"
)

// InferOptions tunes InferSchema; the zero value is the default.
type InferOptions struct {
	// MaxStringDomainSize: a string feature with at most this many distinct
	// values (and values that repeat) gets a string_domain (default 100,
	// as TFDV).
	MaxStringDomainSize int
	// InfinityNormThreshold is the drift and skew threshold written for
	// categorical features (default 0.1).
	InfinityNormThreshold float64
	// JensenShannonThreshold is the drift and skew threshold written for
	// numeric features (default 0.1).
	JensenShannonThreshold float64
}

func (o InferOptions) withDefaults() InferOptions {
	if o.MaxStringDomainSize <= 0 {
		o.MaxStringDomainSize = 100
	}
	if o.InfinityNormThreshold <= 0 {
		o.InfinityNormThreshold = 0.1
	}
	if o.JensenShannonThreshold <= 0 {
		o.JensenShannonThreshold = 0.1
	}
	return o
}

// InferSchema proposes a schema from one dataset's statistics, as TFDV's
// infer_schema does: the type of each feature; presence min_fraction 1
// when the feature was never missing (else min_count 1); a string_domain
// listing the values of low-cardinality string features; and drift and
// skew comparators (L-infinity for strings, Jensen-Shannon for numbers).
// Numeric ranges are not inferred: add int_domain or float_domain bounds
// by hand to check them.
func InferSchema(ds *stats.DatasetFeatureStatistics, opts InferOptions) *Schema {
	opts = opts.withDefaults()
	s := &Schema{Feature: []Feature{}}
	for i := range ds.Features {
		fs := &ds.Features[i]
		f := Feature{Name: fs.Name(), Presence: &FeaturePresence{}}
		cs := fs.Common()
		if cs != nil && cs.NumMissing == 0 && cs.NumNonMissing > 0 {
			one := 1.0
			f.Presence.MinFraction = &one
		} else {
			one := stats.Int64(1)
			f.Presence.MinCount = &one
		}
		switch fs.Type {
		case stats.TypeInt:
			f.Type = TypeInt
		case stats.TypeFloat:
			f.Type = TypeFloat
		default:
			f.Type = TypeBytes
		}
		if f.Type == TypeBytes {
			f.DriftComparator = &FeatureComparator{InfinityNorm: &Threshold{opts.InfinityNormThreshold}}
			f.SkewComparator = &FeatureComparator{InfinityNorm: &Threshold{opts.InfinityNormThreshold}}
		} else {
			f.DriftComparator = &FeatureComparator{JensenShannonDivergence: &Threshold{opts.JensenShannonThreshold}}
			f.SkewComparator = &FeatureComparator{JensenShannonDivergence: &Threshold{opts.JensenShannonThreshold}}
		}
		if ss := fs.StringStats; ss != nil && ss.Unique > 0 && int(ss.Unique) <= opts.MaxStringDomainSize &&
			ss.RankHistogram != nil && len(ss.RankHistogram.Buckets) == int(ss.Unique) && 2*ss.Unique <= ss.CommonStats.NumNonMissing {
			values := make([]string, 0, ss.Unique)
			for _, b := range ss.RankHistogram.Buckets {
				values = append(values, b.Label)
			}
			slices.Sort(values)
			f.StringDomain = &StringDomain{Name: f.Name, Value: values}
		}
		s.Feature = append(s.Feature, f)
	}
	return s
}
