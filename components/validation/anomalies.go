package validation

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mlsteps/mlsteps/components/stats"
)

// Severities of an anomaly, as TFDV's AnomalyInfo.Severity names them.
const (
	SeverityWarning = "WARNING"
	SeverityError   = "ERROR"
)

// Reason types, as TFDV's AnomalyInfo.Type names them.
const (
	ReasonMissingColumn       = "SCHEMA_MISSING_COLUMN"
	ReasonNewColumn           = "SCHEMA_NEW_COLUMN"
	ReasonUnexpectedType      = "UNEXPECTED_DATA_TYPE"
	ReasonLowFractionPresent  = "FEATURE_TYPE_LOW_FRACTION_PRESENT"
	ReasonLowNumberPresent    = "FEATURE_TYPE_LOW_NUMBER_PRESENT"
	ReasonNotPresent          = "FEATURE_TYPE_NOT_PRESENT"
	ReasonUnexpectedString    = "ENUM_TYPE_UNEXPECTED_STRING_VALUES"
	ReasonSmallInt            = "INT_TYPE_SMALL_INT"
	ReasonBigInt              = "INT_TYPE_BIG_INT"
	ReasonSmallFloat          = "FLOAT_TYPE_SMALL_FLOAT"
	ReasonBigFloat            = "FLOAT_TYPE_BIG_FLOAT"
	ReasonLInfinityHigh       = "COMPARATOR_L_INFTY_HIGH"
	ReasonJensenShannonHigh   = "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"
	ReasonLowNumExamples      = "DATASET_LOW_NUM_EXAMPLES"
	ReasonComparatorNoControl = "COMPARATOR_CONTROL_DATA_MISSING"
)

// Anomalies mirrors TFDV's anomalies.proto in protobuf JSON with
// preserving_proto_field_name=True: anomaly_info maps a feature name to
// what is wrong with it.
type Anomalies struct {
	AnomalyInfo        map[string]*AnomalyInfo `json:"anomaly_info"`
	DatasetAnomalyInfo *AnomalyInfo            `json:"dataset_anomaly_info,omitempty"`
	DataMissing        bool                    `json:"data_missing,omitempty"`
}

// AnomalyInfo is everything wrong with one feature (or the dataset); its
// severity is the highest of its reasons'.
type AnomalyInfo struct {
	Description      string      `json:"description"`
	Severity         string      `json:"severity"`
	ShortDescription string      `json:"short_description"`
	Reason           []Reason    `json:"reason"`
	Path             *stats.Path `json:"path,omitempty"`
}

// Reason is one thing wrong.
type Reason struct {
	Type             string `json:"type"`
	ShortDescription string `json:"short_description"`
	Description      string `json:"description"`
	// severity is kept out of the JSON (TFDV has it on AnomalyInfo only).
	severity string
}

// NewAnomalies returns an empty result to Check datasets into.
func NewAnomalies() *Anomalies { return &Anomalies{AnomalyInfo: map[string]*AnomalyInfo{}} }

// Count returns how many features (and the dataset) have an anomaly at or
// above severity (WARNING counts both).
func (a *Anomalies) Count(severity string) int {
	n := 0
	infos := make([]*AnomalyInfo, 0, len(a.AnomalyInfo)+1)
	for _, info := range a.AnomalyInfo {
		infos = append(infos, info)
	}
	if a.DatasetAnomalyInfo != nil {
		infos = append(infos, a.DatasetAnomalyInfo)
	}
	for _, info := range infos {
		if info.Severity == SeverityError || severity == SeverityWarning {
			n++
		}
	}
	return n
}

// Features returns the names of the features with anomalies, sorted.
func (a *Anomalies) Features() []string {
	names := make([]string, 0, len(a.AnomalyInfo))
	for n := range a.AnomalyInfo {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (a *Anomalies) add(feature string, r Reason) {
	info := a.AnomalyInfo[feature]
	if info == nil {
		info = &AnomalyInfo{Path: &stats.Path{Step: []string{feature}}}
		a.AnomalyInfo[feature] = info
	}
	info.addReason(r)
}

func (info *AnomalyInfo) addReason(r Reason) {
	info.Reason = append(info.Reason, r)
	if info.Severity != SeverityError {
		info.Severity = r.severity
	}
	if len(info.Reason) == 1 {
		info.ShortDescription, info.Description = r.ShortDescription, r.Description
		return
	}
	info.ShortDescription = "Multiple errors"
	info.Description += " " + r.Description
}

// Compare names the statistics a dataset is compared against.
type Compare struct {
	// Baseline is an earlier span: drift_comparator thresholds apply.
	Baseline *stats.DatasetFeatureStatistics
	// Serving is serving data's statistics, compared with this (training)
	// dataset: skew_comparator thresholds apply.
	Serving *stats.DatasetFeatureStatistics
}

// Check validates one dataset's statistics against schema and adds what
// it finds. When ds has a name (a split), descriptions start with it, so
// several splits can be checked into one Anomalies.
func (a *Anomalies) Check(ds *stats.DatasetFeatureStatistics, schema *Schema, cmp Compare) {
	prefix := ""
	if ds.Name != "" {
		prefix = "split " + ds.Name + ": "
	}
	reason := func(typ, severity, short, format string, args ...any) Reason {
		return Reason{Type: typ, ShortDescription: short, Description: prefix + fmt.Sprintf(format, args...), severity: severity}
	}
	if ds.NumExamples == 0 {
		a.DataMissing = true
		if a.DatasetAnomalyInfo == nil {
			a.DatasetAnomalyInfo = &AnomalyInfo{}
		}
		a.DatasetAnomalyInfo.addReason(reason(ReasonLowNumExamples, SeverityError, "No examples", "the dataset has no examples"))
		return
	}
	byName := map[string]*stats.FeatureNameStatistics{}
	for i := range ds.Features {
		byName[ds.Features[i].Name()] = &ds.Features[i]
	}
	inSchema := map[string]bool{}
	for i := range schema.Feature {
		f := &schema.Feature[i]
		inSchema[f.Name] = true
		if f.Deprecated {
			continue
		}
		fs := byName[f.Name]
		if fs == nil {
			a.add(f.Name, reason(ReasonMissingColumn, SeverityError, "Column missing",
				"column %q is in the schema but not in the data", f.Name))
			continue
		}
		for _, r := range checkFeature(schema, f, fs, int64(ds.NumExamples)) {
			r.Description = prefix + r.Description
			a.add(f.Name, r)
		}
		if cmp.Baseline != nil && f.DriftComparator != nil {
			a.compare(f.Name, fs, cmp.Baseline, f.DriftComparator, prefix, "drift", "the baseline")
		}
		if cmp.Serving != nil && f.SkewComparator != nil {
			a.compare(f.Name, fs, cmp.Serving, f.SkewComparator, prefix, "skew", "serving data")
		}
	}
	for i := range ds.Features {
		name := ds.Features[i].Name()
		if !inSchema[name] {
			a.add(name, reason(ReasonNewColumn, SeverityWarning, "New column",
				"column %q (%s) is in the data but not in the schema", name, ds.Features[i].Type))
		}
	}
}

// schemaType maps a statistics type to a schema type.
func schemaType(t string) string {
	switch t {
	case stats.TypeInt:
		return TypeInt
	case stats.TypeFloat:
		return TypeFloat
	}
	return TypeBytes
}

// checkFeature checks one present feature against its schema entry.
func checkFeature(schema *Schema, f *Feature, fs *stats.FeatureNameStatistics, rows int64) []Reason {
	var out []Reason
	add := func(typ, short, format string, args ...any) {
		out = append(out, Reason{Type: typ, ShortDescription: short, Description: fmt.Sprintf(format, args...), severity: SeverityError})
	}
	if got := schemaType(fs.Type); got != f.Type {
		add(ReasonUnexpectedType, "Unexpected data type", "column %q holds %s values, the schema expects %s", f.Name, got, f.Type)
		return out
	}
	cs := fs.Common()
	present := int64(0)
	if cs != nil {
		present = int64(cs.NumNonMissing)
	}
	if present == 0 {
		add(ReasonNotPresent, "Column is entirely null", "column %q has no values in %d examples: all are null", f.Name, rows)
		return out
	}
	if p := f.Presence; p != nil {
		frac := float64(present) / float64(rows)
		if p.MinFraction != nil && frac < *p.MinFraction {
			add(ReasonLowFractionPresent, "Column dropped", "column %q is present in %.4g%% of examples, the schema wants at least %.4g%% (presence.min_fraction %v)",
				f.Name, 100*frac, 100**p.MinFraction, *p.MinFraction)
		}
		if p.MinCount != nil && present < int64(*p.MinCount) {
			add(ReasonLowNumberPresent, "Column dropped", "column %q is present in %d examples, the schema wants at least %d (presence.min_count)", f.Name, present, *p.MinCount)
		}
	}
	if d := schema.stringDomain(f); d != nil && fs.StringStats != nil {
		allowed := map[string]bool{}
		for _, v := range d.Value {
			allowed[v] = true
		}
		var bad []string
		var badCount float64
		for v, c := range categorical(fs) {
			if !allowed[v] {
				bad = append(bad, v)
				badCount += c
			}
		}
		if len(bad) > 0 {
			slices.Sort(bad)
			shown := bad
			if len(shown) > 10 {
				shown = shown[:10]
			}
			quoted := make([]string, len(shown))
			for i, v := range shown {
				quoted[i] = fmt.Sprintf("%q", v)
			}
			more := ""
			if len(bad) > len(shown) {
				more = fmt.Sprintf(" and %d more", len(bad)-len(shown))
			}
			add(ReasonUnexpectedString, "Unexpected string values", "column %q has values outside its domain: %s%s (%.4g%% of its values)",
				f.Name, strings.Join(quoted, ", "), more, 100*badCount/float64(present))
		}
	}
	if ns := fs.NumStats; ns != nil {
		if d := f.IntDomain; d != nil {
			if d.Min != nil && float64(ns.Min) < float64(*d.Min) {
				add(ReasonSmallInt, "Out-of-range values", "column %q has values down to %v, below int_domain.min %d", f.Name, float64(ns.Min), *d.Min)
			}
			if d.Max != nil && float64(ns.Max) > float64(*d.Max) {
				add(ReasonBigInt, "Out-of-range values", "column %q has values up to %v, above int_domain.max %d", f.Name, float64(ns.Max), *d.Max)
			}
		}
		if d := f.FloatDomain; d != nil {
			if d.Min != nil && float64(ns.Min) < *d.Min {
				add(ReasonSmallFloat, "Out-of-range values", "column %q has values down to %v, below float_domain.min %v", f.Name, float64(ns.Min), *d.Min)
			}
			if d.Max != nil && float64(ns.Max) > *d.Max {
				add(ReasonBigFloat, "Out-of-range values", "column %q has values up to %v, above float_domain.max %v", f.Name, float64(ns.Max), *d.Max)
			}
		}
	}
	return out
}

// compare applies a drift or skew comparator between fs and the same
// feature in other.
func (a *Anomalies) compare(name string, fs *stats.FeatureNameStatistics, other *stats.DatasetFeatureStatistics, c *FeatureComparator, prefix, what, against string) {
	var ofs *stats.FeatureNameStatistics
	for i := range other.Features {
		if other.Features[i].Name() == name {
			ofs = &other.Features[i]
		}
	}
	if ofs == nil {
		a.add(name, Reason{Type: ReasonComparatorNoControl, ShortDescription: "No " + what + " data",
			Description: fmt.Sprintf("%scolumn %q is not in %s's statistics, so its %s cannot be measured", prefix, name, against, what), severity: SeverityWarning})
		return
	}
	if t := c.InfinityNorm; t != nil && fs.StringStats != nil && ofs.StringStats != nil {
		if d, at := LInfinity(categorical(ofs), categorical(fs)); d > t.Threshold {
			a.add(name, Reason{Type: ReasonLInfinityHigh, ShortDescription: "High L-infinity distance (" + what + ")",
				Description: fmt.Sprintf("%sthe L-infinity distance between %s and this data is %.4g (largest at value %q), above the %s threshold %v",
					prefix, against, d, at, what, t.Threshold), severity: SeverityError})
		}
	}
	if t := c.JensenShannonDivergence; t != nil && fs.NumStats != nil && ofs.NumStats != nil {
		if d := JensenShannon(standardHistogram(ofs), standardHistogram(fs)); d > t.Threshold {
			a.add(name, Reason{Type: ReasonJensenShannonHigh, ShortDescription: "High Jensen-Shannon divergence (" + what + ")",
				Description: fmt.Sprintf("%sthe Jensen-Shannon divergence between %s and this data is %.4g, above the %s threshold %v",
					prefix, against, d, what, t.Threshold), severity: SeverityError})
		}
	}
}
