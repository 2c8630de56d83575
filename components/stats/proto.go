package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// The types below mirror TensorFlow Metadata's statistics.proto
// (tensorflow_metadata/proto/v0/statistics.proto) as protobuf's JSON mapping
// prints it with preserving_proto_field_name=True: snake_case names, 64-bit
// integers as strings, enums as their names, NaN and infinities as "NaN",
// "Infinity" and "-Infinity". TFDV's json_format.Parse and Facets read it.

// Int64 is a protobuf int64: written as a JSON string, read from a string
// or a number.
type Int64 int64

// MarshalJSON writes the value as a decimal string, as protobuf JSON does.
func (v Int64) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(v), 10) + `"`), nil
}

// UnmarshalJSON accepts "12" and 12.
func (v *Int64) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an int64: %s", b)
	}
	*v = Int64(n)
	return nil
}

// Double is a protobuf double: a JSON number, or "NaN", "Infinity",
// "-Infinity", which plain JSON numbers cannot express.
type Double float64

// MarshalJSON writes special values as protobuf JSON's strings.
func (v Double) MarshalJSON() ([]byte, error) {
	f := float64(v)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Infinity"`), nil
	}
	return json.Marshal(f)
}

// UnmarshalJSON accepts numbers, numeric strings and the special names.
func (v *Double) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		s = s[1 : len(s)-1]
		switch s {
		case "NaN":
			*v = Double(math.NaN())
			return nil
		case "Infinity":
			*v = Double(math.Inf(1))
			return nil
		case "-Infinity":
			*v = Double(math.Inf(-1))
			return nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a double: %s", b)
	}
	*v = Double(f)
	return nil
}

// Feature types of FeatureNameStatistics.type.
const (
	TypeInt    = "INT"
	TypeFloat  = "FLOAT"
	TypeString = "STRING"
	TypeBytes  = "BYTES"
	TypeStruct = "STRUCT"
)

// Histogram types.
const (
	HistogramStandard  = "STANDARD"
	HistogramQuantiles = "QUANTILES"
)

// DatasetFeatureStatisticsList is the top-level message: one entry per split.
type DatasetFeatureStatisticsList struct {
	Datasets []DatasetFeatureStatistics `json:"datasets"`
}

// DatasetFeatureStatistics holds the statistics of one dataset (a split).
type DatasetFeatureStatistics struct {
	Name        string                  `json:"name"`
	NumExamples Int64                   `json:"num_examples"`
	Features    []FeatureNameStatistics `json:"features"`
}

// Path names a feature; a flat column has one step.
type Path struct {
	Step []string `json:"step"`
}

// FeatureNameStatistics is one feature's statistics: NumStats for INT and
// FLOAT features, StringStats for STRING and BYTES ones.
type FeatureNameStatistics struct {
	Path        Path               `json:"path"`
	Type        string             `json:"type"`
	NumStats    *NumericStatistics `json:"num_stats,omitempty"`
	StringStats *StringStatistics  `json:"string_stats,omitempty"`
}

// Name returns the feature's name (its path joined with ".").
func (f *FeatureNameStatistics) Name() string {
	name := ""
	for i, s := range f.Path.Step {
		if i > 0 {
			name += "."
		}
		name += s
	}
	return name
}

// Common returns the feature's CommonStatistics, whichever kind it is.
func (f *FeatureNameStatistics) Common() *CommonStatistics {
	switch {
	case f.NumStats != nil:
		return &f.NumStats.CommonStats
	case f.StringStats != nil:
		return &f.StringStats.CommonStats
	}
	return nil
}

// CommonStatistics are the counts every feature has. A flat column has at
// most one value per example, so the num_values fields are 1 for present
// values.
type CommonStatistics struct {
	NumNonMissing Int64  `json:"num_non_missing"`
	NumMissing    Int64  `json:"num_missing"`
	MinNumValues  Int64  `json:"min_num_values"`
	MaxNumValues  Int64  `json:"max_num_values"`
	AvgNumValues  Double `json:"avg_num_values"`
	TotNumValues  Int64  `json:"tot_num_values"`
}

// NumericStatistics of an INT or FLOAT feature. StdDev is the population
// standard deviation (ddof=0), as TFDV computes it.
type NumericStatistics struct {
	CommonStats CommonStatistics `json:"common_stats"`
	Mean        Double           `json:"mean"`
	StdDev      Double           `json:"std_dev"`
	NumZeros    Int64            `json:"num_zeros"`
	Min         Double           `json:"min"`
	Median      Double           `json:"median"`
	Max         Double           `json:"max"`
	Histograms  []Histogram      `json:"histograms"`
}

// Histogram is a STANDARD (equal-width) or QUANTILES (equal-count) histogram.
type Histogram struct {
	NumNaN  Int64    `json:"num_nan,omitempty"`
	Buckets []Bucket `json:"buckets"`
	Type    string   `json:"type"`
}

// Bucket of a Histogram; SampleCount is a double in the proto.
type Bucket struct {
	LowValue    Double `json:"low_value"`
	HighValue   Double `json:"high_value"`
	SampleCount Double `json:"sample_count"`
}

// StringStatistics of a STRING or BYTES feature. AvgLength is in bytes.
type StringStatistics struct {
	CommonStats   CommonStatistics `json:"common_stats"`
	Unique        Int64            `json:"unique"`
	TopValues     []FreqAndValue   `json:"top_values"`
	AvgLength     Double           `json:"avg_length"`
	RankHistogram *RankHistogram   `json:"rank_histogram,omitempty"`
}

// FreqAndValue is a value and how often it occurs.
type FreqAndValue struct {
	Value     string `json:"value"`
	Frequency Double `json:"frequency"`
}

// RankHistogram lists values by rank (most frequent first) with counts.
type RankHistogram struct {
	Buckets []RankBucket `json:"buckets"`
}

// RankBucket is one rank of a RankHistogram.
type RankBucket struct {
	LowRank     Int64  `json:"low_rank"`
	HighRank    Int64  `json:"high_rank"`
	Label       string `json:"label"`
	SampleCount Double `json:"sample_count"`
}
