package validation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mlsteps/mlsteps/components/stats"
)

// The types below mirror TensorFlow Metadata's schema.proto as protobuf's
// JSON mapping prints it with preserving_proto_field_name=True. Only the
// fields this package reads are declared; decoding refuses any other field,
// so a typo in a hand-edited schema is an error naming it, never silently
// ignored.

// Feature types of a schema Feature.
const (
	TypeInt   = "INT"
	TypeFloat = "FLOAT"
	TypeBytes = "BYTES"
)

// Schema is a dataset's expected shape.
type Schema struct {
	Feature []Feature `json:"feature"`
	// StringDomain holds named domains that features refer to with Domain,
	// as TFDV writes them.
	StringDomain []StringDomain `json:"string_domain,omitempty"`
}

// Feature is one expected feature.
type Feature struct {
	Name     string           `json:"name"`
	Type     string           `json:"type"`
	Presence *FeaturePresence `json:"presence,omitempty"`
	// Domain names a top-level StringDomain.
	Domain          string             `json:"domain,omitempty"`
	IntDomain       *IntDomain         `json:"int_domain,omitempty"`
	FloatDomain     *FloatDomain       `json:"float_domain,omitempty"`
	StringDomain    *StringDomain      `json:"string_domain,omitempty"`
	DriftComparator *FeatureComparator `json:"drift_comparator,omitempty"`
	SkewComparator  *FeatureComparator `json:"skew_comparator,omitempty"`
	// Deprecated features are not checked.
	Deprecated bool `json:"deprecated,omitempty"`
}

// FeaturePresence bounds how often a feature is present.
type FeaturePresence struct {
	MinFraction *float64     `json:"min_fraction,omitempty"`
	MinCount    *stats.Int64 `json:"min_count,omitempty"`
}

// IntDomain bounds an INT feature's values; an unset bound is open.
type IntDomain struct {
	Name          string       `json:"name,omitempty"`
	Min           *stats.Int64 `json:"min,omitempty"`
	Max           *stats.Int64 `json:"max,omitempty"`
	IsCategorical bool         `json:"is_categorical,omitempty"`
}

// FloatDomain bounds a FLOAT feature's values; an unset bound is open.
type FloatDomain struct {
	Name string   `json:"name,omitempty"`
	Min  *float64 `json:"min,omitempty"`
	Max  *float64 `json:"max,omitempty"`
}

// StringDomain lists a BYTES feature's allowed values.
type StringDomain struct {
	Name  string   `json:"name,omitempty"`
	Value []string `json:"value"`
}

// FeatureComparator sets the distance threshold above which two
// statistics of the feature differ too much (drift between spans, skew
// between training and serving).
type FeatureComparator struct {
	// InfinityNorm compares categorical features: the largest difference of
	// any value's share.
	InfinityNorm *Threshold `json:"infinity_norm,omitempty"`
	// JensenShannonDivergence compares numeric features' histograms.
	JensenShannonDivergence *Threshold `json:"jensen_shannon_divergence,omitempty"`
}

// Threshold of a comparator.
type Threshold struct {
	Threshold float64 `json:"threshold"`
}

// FieldError is a schema or statistics file that does not parse: an
// unknown field (a typo) or a value of the wrong JSON type.
type FieldError struct {
	File  string // what was being read, e.g. "schema.json"
	Field string // the offending field, when known
	Err   error
}

func (e *FieldError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: field %q: %v", e.File, e.Field, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// decodeStrict decodes one JSON value, refusing unknown fields and
// trailing data; file names what is read in errors.
func decodeStrict(data []byte, file string, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return &FieldError{File: file, Field: te.Field, Err: fmt.Errorf("a JSON %s cannot be a %s", te.Value, te.Type)}
		case errors.As(err, &se):
			return &FieldError{File: file, Err: fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, err)}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &FieldError{File: file, Field: field, Err: errors.New("unknown field (a typo? see TFDV's schema.proto for the names)")}
		case err == io.EOF:
			return &FieldError{File: file, Err: errors.New("empty file")}
		}
		return &FieldError{File: file, Err: err}
	}
	if dec.More() {
		return &FieldError{File: file, Err: errors.New("data after the JSON value")}
	}
	return nil
}

// ParseSchema reads a schema.json strictly and checks it: known types,
// unique names, domains that fit the type, fractions in [0, 1], known
// named domains.
func ParseSchema(data []byte, file string) (*Schema, error) {
	var s Schema
	if err := decodeStrict(data, file, &s); err != nil {
		return nil, err
	}
	if err := s.check(file); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Schema) check(file string) error {
	seen := map[string]bool{}
	domains := map[string]bool{}
	for _, d := range s.StringDomain {
		domains[d.Name] = true
	}
	for i, f := range s.Feature {
		where := fmt.Sprintf("feature[%d]", i)
		if f.Name == "" {
			return &FieldError{File: file, Field: where + ".name", Err: errors.New("empty")}
		}
		where = fmt.Sprintf("feature %q", f.Name)
		if seen[f.Name] {
			return &FieldError{File: file, Field: where, Err: errors.New("named twice")}
		}
		seen[f.Name] = true
		switch f.Type {
		case TypeInt, TypeFloat, TypeBytes:
		default:
			return &FieldError{File: file, Field: where + ".type", Err: fmt.Errorf("%q is not INT, FLOAT or BYTES", f.Type)}
		}
		if p := f.Presence; p != nil && p.MinFraction != nil && (*p.MinFraction < 0 || *p.MinFraction > 1) {
			return &FieldError{File: file, Field: where + ".presence.min_fraction", Err: fmt.Errorf("%v is not in [0, 1]", *p.MinFraction)}
		}
		if f.IntDomain != nil && f.Type != TypeInt || f.FloatDomain != nil && f.Type != TypeFloat {
			return &FieldError{File: file, Field: where, Err: fmt.Errorf("a numeric domain does not fit type %s", f.Type)}
		}
		if (f.StringDomain != nil || f.Domain != "") && f.Type != TypeBytes {
			return &FieldError{File: file, Field: where, Err: fmt.Errorf("a string domain does not fit type %s", f.Type)}
		}
		if f.Domain != "" && !domains[f.Domain] {
			return &FieldError{File: file, Field: where + ".domain", Err: fmt.Errorf("no string_domain named %q", f.Domain)}
		}
		for _, c := range []*FeatureComparator{f.DriftComparator, f.SkewComparator} {
			if c == nil {
				continue
			}
			for _, t := range []*Threshold{c.InfinityNorm, c.JensenShannonDivergence} {
				if t != nil && (t.Threshold < 0 || t.Threshold > 1) {
					return &FieldError{File: file, Field: where + " comparator threshold", Err: fmt.Errorf("%v is not in [0, 1]", t.Threshold)}
				}
			}
		}
	}
	return nil
}

// stringDomain returns a feature's allowed values, inline or named.
func (s *Schema) stringDomain(f *Feature) *StringDomain {
	if f.StringDomain != nil {
		return f.StringDomain
	}
	for i := range s.StringDomain {
		if s.StringDomain[i].Name == f.Domain && f.Domain != "" {
			return &s.StringDomain[i]
		}
	}
	return nil
}

// ParseStatistics reads a statistics.json (TFDV's
// DatasetFeatureStatisticsList) strictly.
func ParseStatistics(data []byte, file string) (*stats.DatasetFeatureStatisticsList, error) {
	var l stats.DatasetFeatureStatisticsList
	if err := decodeStrict(data, file, &l); err != nil {
		return nil, err
	}
	for i, d := range l.Datasets {
		for j, f := range d.Features {
			if len(f.Path.Step) == 0 {
				return nil, &FieldError{File: file, Field: fmt.Sprintf("datasets[%d].features[%d].path", i, j), Err: errors.New("empty")}
			}
		}
	}
	return &l, nil
}
