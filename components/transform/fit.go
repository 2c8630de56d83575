package transform

import (
	"context"
	"fmt"
	"iter"

	"github.com/apache/arrow-go/v18/arrow"
)

// Source returns a fresh pass over the rows to fit on (the train split).
// Fit calls it once per pass; each call must yield the same rows.
type Source func() iter.Seq2[arrow.RecordBatch, error]

// Fit fills every analyzer value of g from the rows of src, in streaming
// passes: a pass fits, in every feature, the first step not yet fitted, on
// values that went through the steps before it (so zscore after impute
// sees imputed values). Most specs need one or two passes. Memory is bounded
// by the analyzers' state, not by the rows.
func Fit(ctx context.Context, g *Graph, src Source) error {
	for pass := 1; ; pass++ {
		st, err := g.analyzePass(ctx, src, pass)
		if err != nil {
			return err
		}
		if st == nil {
			break
		}
		if err := g.FinishPass([]*PassState{st}); err != nil {
			return err
		}
	}
	return g.finish()
}

// finish derives what follows from fitted values: one-hot depths, output
// names and the output order.
func (g *Graph) finish() error {
	g.Order = nil
	seen := map[string]bool{}
	for _, p := range g.Passthrough {
		seen[p] = true
	}
	if g.Label != "" {
		seen[g.Label] = true
	}
	for _, f := range g.Features {
		for i, s := range f.Steps {
			if s.Op == "one_hot" {
				s.Depth = f.Steps[i-1].Depth
			}
		}
		f.finishOutputs()
		for _, o := range f.Outputs {
			if seen[o] {
				return &SpecError{File: g.Spec, Line: f.Line, Feature: f.Name, Msg: fmt.Sprintf("output column %q clashes with another column", o)}
			}
			seen[o] = true
		}
		g.Order = append(g.Order, f.Outputs...)
	}
	return nil
}

func (g *Graph) rawMap(rec arrow.RecordBatch) (map[string]values, error) {
	raw, err := g.RawColumns(rec)
	if err != nil {
		return nil, err
	}
	m := make(map[string]values, len(raw))
	for _, c := range raw {
		m[c.Name] = values{num: c.Doubles, str: c.Strings}
	}
	return m, nil
}
