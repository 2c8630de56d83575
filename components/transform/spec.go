package transform

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Kind is what a raw column holds, as far as transforms care.
type Kind string

// Column kinds. Numbers of every width are read as float64 (null: NaN);
// strings as string (null: "").
const (
	Numeric     Kind = "numeric"
	Categorical Kind = "string"
)

// KindOf maps an Arrow type name (as Datasets record it, e.g. "int64",
// "float64", "utf8") to a Kind; ok is false for types transforms do not take.
func KindOf(arrowType string) (Kind, bool) {
	switch arrowType {
	case "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64", "double", "float":
		return Numeric, true
	case "utf8", "large_utf8", "string", "large_string":
		return Categorical, true
	}
	return "", false
}

// Spec is a parsed transform spec: features in the order written, each with
// its chain of ops.
type Spec struct {
	File        string
	Features    []SpecFeature
	Label       string
	Passthrough []string // nil: every column neither a feature input nor the label
	// LabelLine and PassthroughLine locate those keys, for errors.
	LabelLine, PassthroughLine int
}

// SpecFeature is one entry of the spec's features map.
type SpecFeature struct {
	Name string
	Line int
	Ops  []SpecOp
}

// SpecOp is one op of a feature's chain with its arguments as written.
type SpecOp struct {
	Name string
	Line int
	// Arg is the scalar form (impute: mean); Args the map form.
	Arg  string
	Args map[string]*yaml.Node
}

// The ops a spec may name.
var opNames = []string{"impute", "zscore", "scale_to_0_1", "scale_by_min_max", "log1p", "clip", "bucketize",
	"vocabulary", "one_hot", "hash_bucket", "cross"}

// SpecError is a bad spec, naming the file, line and feature.
type SpecError struct {
	File    string
	Line    int
	Feature string
	Msg     string
}

func (e *SpecError) Error() string {
	where := fmt.Sprintf("%s:%d", e.File, e.Line)
	if e.Feature != "" {
		return fmt.Sprintf("%s: feature %q: %s", where, e.Feature, e.Msg)
	}
	return where + ": " + e.Msg
}

// ParseSpec parses a spec's YAML. file names it in errors. It checks the
// form only; Validate checks it against a dataset's columns.
func ParseSpec(file string, data []byte) (*Spec, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &SpecError{File: file, Line: yamlErrLine(err), Msg: err.Error()}
	}
	s := &Spec{File: file}
	if len(doc.Content) == 0 {
		return nil, &SpecError{File: file, Line: 1, Msg: "empty spec: it needs a features map"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &SpecError{File: file, Line: root.Line, Msg: "the spec must be a map with features, label and passthrough"}
	}
	bad := func(n *yaml.Node, feature, format string, args ...any) error {
		return &SpecError{File: file, Line: n.Line, Feature: feature, Msg: fmt.Sprintf(format, args...)}
	}
	var sawFeatures bool
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "features":
			sawFeatures = true
			if v.Kind != yaml.MappingNode {
				return nil, bad(v, "", "features must be a map of feature name to a list of ops")
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				f, err := parseFeature(file, v.Content[j], v.Content[j+1])
				if err != nil {
					return nil, err
				}
				if slices.ContainsFunc(s.Features, func(o SpecFeature) bool { return o.Name == f.Name }) {
					return nil, bad(v.Content[j], f.Name, "named twice")
				}
				s.Features = append(s.Features, f)
			}
		case "label":
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				return nil, bad(v, "", "label must be a column name")
			}
			s.Label, s.LabelLine = v.Value, v.Line
		case "passthrough":
			if v.Kind != yaml.SequenceNode {
				return nil, bad(v, "", "passthrough must be a list of column names")
			}
			s.Passthrough, s.PassthroughLine = []string{}, v.Line
			for _, c := range v.Content {
				if c.Kind != yaml.ScalarNode {
					return nil, bad(c, "", "passthrough must be a list of column names")
				}
				s.Passthrough = append(s.Passthrough, c.Value)
			}
		default:
			return nil, bad(k, "", "unknown key %q (want features, label, passthrough)", k.Value)
		}
	}
	if !sawFeatures || len(s.Features) == 0 {
		return nil, &SpecError{File: file, Line: root.Line, Msg: "no features"}
	}
	return s, nil
}

func parseFeature(file string, k, v *yaml.Node) (SpecFeature, error) {
	f := SpecFeature{Name: k.Value, Line: k.Line}
	bad := func(n *yaml.Node, format string, args ...any) error {
		return &SpecError{File: file, Line: n.Line, Feature: f.Name, Msg: fmt.Sprintf(format, args...)}
	}
	if k.Kind != yaml.ScalarNode || k.Value == "" {
		return f, bad(k, "a feature name must be a non-empty string")
	}
	if v.Kind != yaml.SequenceNode {
		return f, bad(v, "ops must be a list, e.g. [impute: mean, zscore]")
	}
	for _, item := range v.Content {
		var op SpecOp
		switch item.Kind {
		case yaml.ScalarNode:
			op = SpecOp{Name: item.Value, Line: item.Line}
		case yaml.MappingNode:
			if len(item.Content) != 2 {
				return f, bad(item, "each op is one name, optionally with arguments (impute: mean)")
			}
			name, arg := item.Content[0], item.Content[1]
			op = SpecOp{Name: name.Value, Line: name.Line}
			switch arg.Kind {
			case yaml.ScalarNode:
				op.Arg = arg.Value
			case yaml.MappingNode:
				op.Args = map[string]*yaml.Node{}
				for j := 0; j+1 < len(arg.Content); j += 2 {
					op.Args[arg.Content[j].Value] = arg.Content[j+1]
				}
			default:
				return f, bad(arg, "arguments of %s must be a value or a map", op.Name)
			}
		default:
			return f, bad(item, "each op is a name or a one-entry map")
		}
		if !slices.Contains(opNames, op.Name) {
			return f, bad(item, "unknown op %q (ops: %s)", op.Name, strings.Join(opNames, ", "))
		}
		f.Ops = append(f.Ops, op)
	}
	if len(f.Ops) == 0 {
		return f, bad(v, "no ops")
	}
	return f, nil
}

func yamlErrLine(err error) int {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return 1
	}
	var line int
	if _, e := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &line); e == nil {
		return line
	}
	return 1
}
