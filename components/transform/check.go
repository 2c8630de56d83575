package transform

import (
	"fmt"
	"slices"
)

// check validates a graph read from transform.json, so that Apply and ONNX
// never meet a step without its fitted values: the same type flow as
// Compile, plus the values each step needs.
func (g *Graph) check() error {
	if len(g.Features) == 0 {
		return fmt.Errorf("no features")
	}
	kinds := map[string]Kind{}
	for _, in := range g.Inputs {
		if in.Kind != Numeric && in.Kind != Categorical {
			return fmt.Errorf("input %q: unknown kind %q", in.Name, in.Kind)
		}
		kinds[in.Name] = in.Kind
	}
	var order []string
	for _, f := range g.Features {
		if err := f.check(kinds); err != nil {
			return fmt.Errorf("feature %q: %w", f.Name, err)
		}
		order = append(order, f.Outputs...)
	}
	if !slices.Equal(order, g.Order) {
		return fmt.Errorf("feature_order does not match the features' outputs")
	}
	return nil
}

func (f *Feature) check(kinds map[string]Kind) error {
	if len(f.Steps) == 0 {
		return fmt.Errorf("no steps")
	}
	var st state
	if f.Steps[0].Op == "cross" {
		st = stID
	} else {
		if len(f.Columns) != 1 {
			return fmt.Errorf("want one column, have %d", len(f.Columns))
		}
		k, ok := kinds[f.Columns[0]]
		if !ok {
			return fmt.Errorf("column %q is not an input", f.Columns[0])
		}
		st = map[Kind]state{Numeric: stNum, Categorical: stStr}[k]
	}
	const maxDepth = 1 << 24
	for i, s := range f.Steps {
		if !s.Fitted {
			return fmt.Errorf("%s is not fitted", s.Op)
		}
		want, next := stNum, stNum
		var ok bool
		switch s.Op {
		case "impute":
			want, next = st, st
			ok = st == stNum && s.Value != nil || st == stStr && s.Text != nil
		case "zscore", "scale_to_0_1", "scale_by_min_max", "log1p", "clip":
			ok = true
		case "bucketize":
			next = stID
			ok = slices.IsSorted(s.Boundaries) && s.Depth == len(s.Boundaries)+1
		case "vocabulary":
			want, next = stStr, stID
			ok = s.NumOOV >= 0 && s.NumOOV <= maxDepth && len(s.Vocabulary) > 0 && s.Depth == len(s.Vocabulary)+s.NumOOV
		case "hash_bucket":
			want, next = stStr, stID
			ok = s.NumBuckets > 0 && s.NumBuckets <= maxDepth && s.Depth == s.NumBuckets
		case "cross":
			want, next = stID, stID
			ok = i == 0 && len(s.Columns2) == 2 && len(s.Vocabularies) == 2 && slices.Equal(s.Columns2, f.Columns) &&
				kinds[s.Columns2[0]] == Categorical && kinds[s.Columns2[1]] == Categorical &&
				len(s.Vocabularies[0]) > 0 && len(s.Vocabularies[1]) > 0 &&
				s.Depth == (len(s.Vocabularies[0])+1)*(len(s.Vocabularies[1])+1)
		case "one_hot":
			want, next = stID, stOneHot
			ok = i == len(f.Steps)-1 && i > 0 && s.Depth == f.Steps[i-1].Depth && s.Depth > 0 && s.Depth <= maxDepth
		}
		if !ok || st != want {
			return fmt.Errorf("step %d (%s): missing or inconsistent values", i+1, s.Op)
		}
		st = next
	}
	want := []string{f.Name}
	if last := f.Steps[len(f.Steps)-1]; last.Op == "one_hot" {
		g := &Feature{Name: f.Name, Steps: f.Steps}
		g.finishOutputs()
		want = g.Outputs
	}
	if !slices.Equal(want, f.Outputs) {
		return fmt.Errorf("outputs do not match the steps")
	}
	return nil
}
