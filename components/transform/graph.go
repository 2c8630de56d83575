package transform

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"
)

// FormatVersion is the version of transform.json's layout.
const FormatVersion = 1

// OutputName is the name of the ONNX graph's one output tensor.
const OutputName = "features"

// Graph is a transform: the spec compiled against a dataset's columns and,
// once Fit has run, every fitted value. It is what transform.json holds.
type Graph struct {
	Format      int        `json:"format"`
	Spec        string     `json:"spec"`
	Label       string     `json:"label,omitempty"`
	Passthrough []string   `json:"passthrough"`
	Inputs      []Input    `json:"inputs"`
	Features    []*Feature `json:"features_fitted"`
	Output      string     `json:"output"`
	// Order names the output tensor's columns, in order.
	Order []string `json:"feature_order"`
}

// Input is one raw column the graph reads, and one named ONNX input.
type Input struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
}

// Feature is a compiled feature: the raw columns it reads and its steps.
type Feature struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Steps   []*Step  `json:"steps"`
	Outputs []string `json:"outputs"`
	Line    int      `json:"line"`
}

// Step is one op with its arguments and fitted values.
type Step struct {
	Op   string `json:"op"`
	Line int    `json:"line"`
	// impute: mean, median, most_frequent or constant, and the value used.
	Strategy string   `json:"strategy,omitempty"`
	Value    *float64 `json:"value,omitempty"`
	Text     *string  `json:"text,omitempty"`
	// zscore
	Mean float64 `json:"mean,omitempty"`
	Std  float64 `json:"std,omitempty"`
	// scale_to_0_1, scale_by_min_max: fitted min and max; the output range.
	Min    float64 `json:"min,omitempty"`
	Max    float64 `json:"max,omitempty"`
	OutMin float64 `json:"output_min,omitempty"`
	OutMax float64 `json:"output_max,omitempty"`
	// clip bounds (either may be absent).
	Lo *float64 `json:"clip_min,omitempty"`
	Hi *float64 `json:"clip_max,omitempty"`
	// bucketize: quantile (NumBuckets) or fixed Boundaries.
	NumBuckets int       `json:"num_buckets,omitempty"`
	Boundaries []float64 `json:"boundaries,omitempty"`
	// vocabulary and cross.
	TopK         int        `json:"top_k,omitempty"`
	MinFrequency int64      `json:"frequency_threshold,omitempty"`
	NumOOV       int        `json:"num_oov_buckets,omitempty"`
	Vocabulary   []string   `json:"vocabulary,omitempty"`
	Vocabularies [][]string `json:"vocabularies,omitempty"`
	// Columns2 are the two columns a cross reads.
	Columns2 []string `json:"cross_columns,omitempty"`
	// Depth is the number of ids a categorical step yields (one_hot's width).
	Depth int `json:"depth,omitempty"`
	// Fitted is false until Fit filled the step's analyzer values.
	Fitted bool `json:"fitted"`
}

// needsFit reports whether a step has an analyzer.
func (s *Step) needsFit() bool {
	switch s.Op {
	case "impute":
		return s.Strategy != "constant"
	case "zscore", "scale_to_0_1", "scale_by_min_max", "vocabulary", "cross":
		return true
	case "bucketize":
		return s.Boundaries == nil
	}
	return false
}

// ParseGraph reads transform.json and checks that every step has the
// values Apply and ONNX need.
func ParseGraph(data []byte) (*Graph, error) {
	g := &Graph{}
	if err := json.Unmarshal(data, g); err != nil {
		return nil, fmt.Errorf("transform graph: %w", err)
	}
	if g.Format != FormatVersion {
		return nil, fmt.Errorf("transform graph: format %d, this build reads %d", g.Format, FormatVersion)
	}
	if err := g.check(); err != nil {
		return nil, fmt.Errorf("transform graph: %w", err)
	}
	return g, nil
}

// state is what flows between steps while compiling.
type state int

const (
	stNum state = iota
	stStr
	stID
	stOneHot
)

func (s state) String() string {
	return [...]string{"a number", "a string", "a categorical id", "a one-hot vector"}[s]
}

// Compile checks spec against the dataset's columns (name to Kind, in
// dataset order) and the train split's row count, before any data is read,
// and returns the unfitted Graph. Every error is a *SpecError naming the
// spec line and the feature.
func Compile(spec *Spec, columns []Input, trainRows int64) (*Graph, error) {
	kinds := map[string]Kind{}
	for _, c := range columns {
		kinds[c.Name] = c.Kind
	}
	g := &Graph{Format: FormatVersion, Spec: spec.File, Label: spec.Label, Output: OutputName}
	used := map[string]bool{}
	outNames := map[string]bool{}
	for i := range spec.Features {
		sf := &spec.Features[i]
		f, err := compileFeature(spec.File, sf, kinds, trainRows)
		if err != nil {
			return nil, err
		}
		for _, c := range f.Columns {
			used[c] = true
		}
		for _, o := range f.Outputs {
			if outNames[o] {
				return nil, &SpecError{File: spec.File, Line: sf.Line, Feature: sf.Name, Msg: fmt.Sprintf("output column %q is made twice", o)}
			}
			outNames[o] = true
		}
		g.Features = append(g.Features, f)
		g.Order = append(g.Order, f.Outputs...)
	}
	for _, c := range columns {
		if used[c.Name] {
			g.Inputs = append(g.Inputs, c)
		}
	}
	if spec.Label != "" {
		if _, ok := kinds[spec.Label]; !ok && !slices.ContainsFunc(columns, func(c Input) bool { return c.Name == spec.Label }) {
			return nil, &SpecError{File: spec.File, Line: spec.LabelLine, Msg: fmt.Sprintf("label %q is not a column of the dataset", spec.Label)}
		}
		if used[spec.Label] {
			return nil, &SpecError{File: spec.File, Line: spec.LabelLine, Msg: fmt.Sprintf("label %q is also a feature input", spec.Label)}
		}
	}
	if spec.Passthrough != nil {
		for _, p := range spec.Passthrough {
			if !hasColumn(columns, p) {
				return nil, &SpecError{File: spec.File, Line: spec.PassthroughLine, Msg: fmt.Sprintf("passthrough column %q is not a column of the dataset", p)}
			}
		}
		g.Passthrough = slices.Clone(spec.Passthrough)
	} else {
		// Default: carry over what the spec does not consume, typed as is.
		for _, c := range columns {
			if !used[c.Name] && c.Name != spec.Label {
				g.Passthrough = append(g.Passthrough, c.Name)
			}
		}
		if g.Passthrough == nil {
			g.Passthrough = []string{}
		}
	}
	for _, p := range append(slices.Clone(g.Passthrough), spec.Label) {
		if outNames[p] {
			return nil, &SpecError{File: spec.File, Line: max(spec.PassthroughLine, 1), Msg: fmt.Sprintf("output column %q clashes with a carried-over column", p)}
		}
	}
	return g, nil
}

func hasColumn(columns []Input, name string) bool {
	return slices.ContainsFunc(columns, func(c Input) bool { return c.Name == name })
}

// numArg reads a number argument.
func numArg(n *yaml.Node) (float64, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!str" {
		return 0, false
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	return v, err == nil && !math.IsNaN(v) && !math.IsInf(v, 0)
}
