package transform

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// compileFeature turns one spec feature into steps, checking each op
// against the kind of value that reaches it.
func compileFeature(file string, sf *SpecFeature, kinds map[string]Kind, trainRows int64) (*Feature, error) {
	f := &Feature{Name: sf.Name, Line: sf.Line}
	bad := func(line int, format string, args ...any) error {
		return &SpecError{File: file, Line: line, Feature: sf.Name, Msg: fmt.Sprintf(format, args...)}
	}
	var st state
	if sf.Ops[0].Name == "cross" {
		st = stID
	} else {
		k, ok := kinds[sf.Name]
		if !ok {
			return nil, bad(sf.Line, "not a column of the dataset (columns: %s)", strings.Join(sortedKeys(kinds), ", "))
		}
		if k == "" {
			return nil, bad(sf.Line, "column type is not supported by transforms (numbers and strings are)")
		}
		f.Columns = []string{sf.Name}
		st = map[Kind]state{Numeric: stNum, Categorical: stStr}[k]
	}
	for i, op := range sf.Ops {
		s := &Step{Op: op.Name, Line: op.Line}
		a := args{op: op, bad: bad}
		need := func(want ...state) error {
			if !slices.Contains(want, st) {
				names := make([]string, len(want))
				for i, w := range want {
					names[i] = w.String()
				}
				return bad(op.Line, "%s needs %s, but here the value is %s", op.Name, strings.Join(names, " or "), st)
			}
			return nil
		}
		var err error
		switch op.Name {
		case "impute":
			if err = need(stNum, stStr); err != nil {
				return nil, err
			}
			err = compileImpute(s, a, st)
		case "zscore", "scale_to_0_1", "log1p":
			if err = need(stNum); err != nil {
				return nil, err
			}
			err = a.only()
		case "scale_by_min_max":
			if err = need(stNum); err != nil {
				return nil, err
			}
			s.OutMin, s.OutMax = 0, 1
			if err = a.only("min", "max"); err == nil {
				err = a.num("min", &s.OutMin)
			}
			if err == nil {
				err = a.num("max", &s.OutMax)
			}
			if err == nil && !(s.OutMin < s.OutMax) {
				err = bad(op.Line, "scale_by_min_max needs min < max")
			}
		case "clip":
			if err = need(stNum); err != nil {
				return nil, err
			}
			if err = a.only("min", "max"); err != nil {
				return nil, err
			}
			err = compileClip(s, a)
		case "bucketize":
			if err = need(stNum); err != nil {
				return nil, err
			}
			err = compileBucketize(s, a)
			st = stID
		case "vocabulary":
			if err = need(stStr); err != nil {
				return nil, err
			}
			err = compileVocab(s, a)
			st = stID
		case "hash_bucket":
			if err = need(stStr); err != nil {
				return nil, err
			}
			if err = a.only("num_buckets"); err == nil {
				err = a.posInt("num_buckets", &s.NumBuckets, true)
			}
			s.Depth = s.NumBuckets
			st = stID
		case "cross":
			if i != 0 {
				return nil, bad(op.Line, "cross must be the first op of a feature")
			}
			err = compileCross(s, a, sf, kinds, f)
		case "one_hot":
			if err = need(stID); err != nil {
				return nil, err
			}
			err = a.only()
			st = stOneHot
		}
		if err != nil {
			return nil, err
		}
		if s.needsFit() && trainRows == 0 {
			return nil, bad(op.Line, "%s would be fitted on an empty train split", op.Name)
		}
		s.Fitted = !s.needsFit()
		f.Steps = append(f.Steps, s)
	}
	if _, isCol := kinds[sf.Name]; sf.Ops[0].Name == "cross" && isCol {
		return nil, bad(sf.Line, "a cross makes a new feature; %q is already a column", sf.Name)
	}
	f.Outputs = []string{sf.Name}
	if st == stOneHot {
		f.Outputs = nil // known once fitted: see finishOutputs
	}
	return f, nil
}

// finishOutputs names one-hot outputs once the depth is known.
func (f *Feature) finishOutputs() {
	last := f.Steps[len(f.Steps)-1]
	if last.Op != "one_hot" {
		f.Outputs = []string{f.Name}
		return
	}
	f.Outputs = make([]string, last.Depth)
	for i := range f.Outputs {
		f.Outputs[i] = f.Name + "_onehot_" + strconv.Itoa(i)
	}
}

func compileImpute(s *Step, a args, st state) error {
	if a.op.Args != nil {
		if err := a.only("constant"); err != nil {
			return err
		}
		s.Strategy = "constant"
		n := a.op.Args["constant"]
		if n == nil {
			return a.bad(a.op.Line, "impute takes a strategy (impute: mean) or {constant: VALUE}")
		}
		if st == stNum {
			v, ok := numArg(n)
			if !ok {
				return a.bad(n.Line, "impute constant %q is not a number, and the column is numeric", n.Value)
			}
			s.Value = &v
			return nil
		}
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			return a.bad(n.Line, "impute constant %q is not a string, and the column holds strings (quote it)", n.Value)
		}
		if n.Value == "" {
			return a.bad(n.Line, "impute constant must not be empty: \"\" is what missing looks like")
		}
		v := n.Value
		s.Text = &v
		return nil
	}
	s.Strategy = a.op.Arg
	allowed := []string{"mean", "median", "most_frequent"}
	if st == stStr {
		allowed = []string{"most_frequent"}
	}
	if !slices.Contains(allowed, s.Strategy) {
		return a.bad(a.op.Line, "impute %q on %s: want one of %s, or {constant: VALUE}", s.Strategy, st, strings.Join(allowed, ", "))
	}
	return nil
}

func compileClip(s *Step, a args) error {
	for _, k := range []string{"min", "max"} {
		if a.op.Args[k] == nil {
			continue
		}
		var v float64
		if err := a.num(k, &v); err != nil {
			return err
		}
		if k == "min" {
			s.Lo = &v
		} else {
			s.Hi = &v
		}
	}
	if s.Lo == nil && s.Hi == nil {
		return a.bad(a.op.Line, "clip needs min, max or both")
	}
	if s.Lo != nil && s.Hi != nil && *s.Lo > *s.Hi {
		return a.bad(a.op.Line, "clip needs min <= max")
	}
	return nil
}

func compileBucketize(s *Step, a args) error {
	if err := a.only("num_buckets", "boundaries"); err != nil {
		return err
	}
	if b := a.op.Args["boundaries"]; b != nil {
		if a.op.Args["num_buckets"] != nil {
			return a.bad(a.op.Line, "bucketize takes num_buckets (quantiles) or boundaries, not both")
		}
		if b.Kind != yaml.SequenceNode || len(b.Content) == 0 {
			return a.bad(b.Line, "boundaries must be a non-empty list of numbers")
		}
		s.Boundaries = []float64{}
		for _, n := range b.Content {
			v, ok := numArg(n)
			if !ok || len(s.Boundaries) > 0 && v <= s.Boundaries[len(s.Boundaries)-1] {
				return a.bad(n.Line, "boundaries must be increasing numbers; %q is not", n.Value)
			}
			s.Boundaries = append(s.Boundaries, v)
		}
		s.Depth = len(s.Boundaries) + 1
		return nil
	}
	if err := a.posInt("num_buckets", &s.NumBuckets, true); err != nil {
		return err
	}
	if s.NumBuckets < 2 {
		return a.bad(a.op.Line, "bucketize needs num_buckets >= 2")
	}
	return nil
}

func compileVocab(s *Step, a args) error {
	if err := a.only("top_k", "frequency_threshold", "num_oov_buckets"); err != nil {
		return err
	}
	s.NumOOV = 1
	var freq int
	err := a.posInt("top_k", &s.TopK, false)
	if err == nil {
		err = a.posInt("frequency_threshold", &freq, false)
	}
	if err == nil && a.op.Args["num_oov_buckets"] != nil {
		err = a.posInt("num_oov_buckets", &s.NumOOV, false)
	}
	s.MinFrequency = int64(freq)
	return err
}

func compileCross(s *Step, a args, sf *SpecFeature, kinds map[string]Kind, f *Feature) error {
	if err := a.only("columns", "top_k"); err != nil {
		return err
	}
	n := a.op.Args["columns"]
	if n == nil || n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
		return a.bad(a.op.Line, "cross needs columns: [A, B], two string columns")
	}
	for _, c := range n.Content {
		k, ok := kinds[c.Value]
		if !ok {
			return a.bad(c.Line, "cross column %q is not a column of the dataset", c.Value)
		}
		if k != Categorical {
			return a.bad(c.Line, "cross column %q is %s; cross takes string columns (bucketize numbers first in a feature of their own)", c.Value, k)
		}
		f.Columns = append(f.Columns, c.Value)
	}
	if f.Columns[0] == f.Columns[1] {
		return a.bad(n.Line, "cross needs two different columns")
	}
	s.Columns2 = slices.Clone(f.Columns)
	s.NumOOV = 1
	return a.posInt("top_k", &s.TopK, false)
}

// args reads an op's arguments with errors naming its line.
type args struct {
	op  SpecOp
	bad func(line int, format string, args ...any) error
}

// only checks that the op has no arguments but keys (map form), and no
// scalar argument.
func (a args) only(keys ...string) error {
	if a.op.Arg != "" {
		return a.bad(a.op.Line, "%s takes no value %q here", a.op.Name, a.op.Arg)
	}
	for k, n := range a.op.Args {
		if !slices.Contains(keys, k) {
			if len(keys) == 0 {
				return a.bad(n.Line, "%s takes no arguments", a.op.Name)
			}
			return a.bad(n.Line, "%s has no argument %q (it takes %s)", a.op.Name, k, strings.Join(keys, ", "))
		}
	}
	return nil
}

func (a args) num(key string, dst *float64) error {
	n := a.op.Args[key]
	if n == nil {
		return nil
	}
	v, ok := numArg(n)
	if !ok {
		return a.bad(n.Line, "%s %s: %q is not a number", a.op.Name, key, n.Value)
	}
	*dst = v
	return nil
}

func (a args) posInt(key string, dst *int, required bool) error {
	n := a.op.Args[key]
	if n == nil {
		if required {
			return a.bad(a.op.Line, "%s needs %s", a.op.Name, key)
		}
		return nil
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < 0 || required && v == 0 || n.Tag == "!!str" || v > 1<<24 {
		return a.bad(n.Line, "%s %s: %q is not a positive integer", a.op.Name, key, n.Value)
	}
	*dst = v
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
