package transform

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
)

// PassState is the analyzer state of one fitting pass over a share of the
// rows (a shard's part files): for every feature's first step not yet
// fitted, what its analyzer gathered. It is plain data (JSON): a sharded
// fit writes one per shard, and FinishPass merges them, in shard order,
// into exactly what one pass over all the rows gathers.
type PassState struct {
	// Pass counts the steps fitted before this pass, over the whole graph:
	// states of one pass share it, and FinishPass refuses a mix.
	Pass      int             `json:"pass"`
	Analyzers []AnalyzerState `json:"analyzers"`
}

// AnalyzerState is one analyzer's mergeable state.
type AnalyzerState struct {
	Feature string `json:"feature"`
	Step    int    `json:"step"`
	Op      string `json:"op"`
	// Moments is one per batch, in row order (mean, zscore, scaling).
	Moments []Moments `json:"moments,omitempty"`
	// Sketch is the DDSketch of a median or quantile buckets, in
	// sketches-go's binary encoding (JSON: base64).
	Sketch []byte `json:"sketch,omitempty"`
	// Numbers are a numeric most_frequent's counts, as value, count pairs
	// sorted by value.
	Numbers [][2]float64 `json:"numbers,omitempty"`
	// Strings are the string counts: one map, or two for a cross.
	Strings []map[string]int64 `json:"strings,omitempty"`
}

// Fitted reports whether every analyzer of g has its values.
func (g *Graph) Fitted() bool {
	for _, f := range g.Features {
		for _, s := range f.Steps {
			if !s.Fitted {
				return false
			}
		}
	}
	return true
}

// fittedSteps counts the steps already fitted.
func (g *Graph) fittedSteps() int {
	n := 0
	for _, f := range g.Features {
		for _, s := range f.Steps {
			if s.Fitted {
				n++
			}
		}
	}
	return n
}

// pending returns, per feature, the index of its first step not fitted.
func (g *Graph) pending() map[*Feature]int {
	out := map[*Feature]int{}
	for _, f := range g.Features {
		for i, s := range f.Steps {
			if !s.Fitted {
				out[f] = i
				break
			}
		}
	}
	return out
}

// Analyze runs the next fitting pass over src (a share of the rows, or
// all of them) and returns its state, without fitting anything: g is left
// as it was. It returns nil when g is already fitted. FinishPass turns the
// states of every share into fitted values.
func (g *Graph) Analyze(ctx context.Context, src Source) (*PassState, error) {
	return g.analyzePass(ctx, src, 1)
}

// analyzePass is Analyze, naming the pass in errors from src.
func (g *Graph) analyzePass(ctx context.Context, src Source, pass int) (*PassState, error) {
	pending := g.pending()
	if len(pending) == 0 {
		return nil, nil
	}
	analyzers, err := g.analyze(ctx, src, pending, pass)
	if err != nil {
		return nil, err
	}
	st := &PassState{Pass: g.fittedSteps()}
	for _, f := range g.Features {
		a, ok := analyzers[f]
		if !ok {
			continue
		}
		st.Analyzers = append(st.Analyzers, a.state(f.Name, pending[f]))
	}
	return st, nil
}

// analyze is one streaming pass feeding the pending steps' analyzers.
func (g *Graph) analyze(ctx context.Context, src Source, pending map[*Feature]int, pass int) (map[*Feature]*analyzer, error) {
	analyzers := map[*Feature]*analyzer{}
	for f, i := range pending {
		analyzers[f] = newAnalyzer(f.Steps[i])
	}
	for rec, err := range src() {
		if err != nil {
			return nil, fmt.Errorf("fit pass %d: %w", pass, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		raw, err := g.rawMap(rec)
		if err != nil {
			return nil, err
		}
		for _, f := range g.Features {
			i, ok := pending[f]
			if !ok {
				continue
			}
			var v values
			if f.Steps[0].Op != "cross" {
				v = f.run(raw, i, int(rec.NumRows()))
			}
			analyzers[f].add(v, raw)
		}
	}
	return analyzers, nil
}

// FinishPass merges the states of one pass, in order (shard order), and
// fits the pass's steps; once no step is left unfitted it derives the
// outputs, as Fit does. Merging is exact: per-batch moments fold in row
// order, sketch buckets and counts add. A state of another pass or graph
// is an error; so is an empty list.
func (g *Graph) FinishPass(states []*PassState) error {
	if len(states) == 0 {
		return errors.New("transform: no pass states to finish")
	}
	pending := g.pending()
	if len(pending) == 0 {
		return errors.New("transform: the graph is already fitted")
	}
	pass := g.fittedSteps()
	byName := map[string]*Feature{}
	for _, f := range g.Features {
		byName[f.Name] = f
	}
	analyzers := map[*Feature]*analyzer{}
	for k, st := range states {
		if st == nil || st.Pass != pass || len(st.Analyzers) != len(pending) {
			return fmt.Errorf("transform: state %d is not of this pass (pass after %d fitted steps, %d analyzers)", k, pass, len(pending))
		}
		for _, as := range st.Analyzers {
			f, ok := byName[as.Feature]
			if !ok || pending[f] != as.Step || f.Steps[as.Step].Op != as.Op {
				return fmt.Errorf("transform: state %d: feature %q step %d (%s) is not pending in this graph", k, as.Feature, as.Step, as.Op)
			}
			a, ok := analyzers[f]
			if !ok {
				a = newAnalyzer(f.Steps[as.Step])
				analyzers[f] = a
			}
			if err := a.merge(as); err != nil {
				return fmt.Errorf("transform: state %d: feature %q: %w", k, as.Feature, err)
			}
		}
	}
	for _, f := range g.Features {
		if a, ok := analyzers[f]; ok {
			if err := a.finish(); err != nil {
				return &SpecError{File: g.Spec, Line: a.step.Line, Feature: f.Name, Msg: err.Error()}
			}
		}
	}
	if g.Fitted() {
		return g.finish()
	}
	return nil
}

// state encodes the analyzer's state.
func (a *analyzer) state(feature string, step int) AnalyzerState {
	st := AnalyzerState{Feature: feature, Step: step, Op: a.step.Op}
	switch {
	case a.quant != nil:
		a.quant.s.Encode(&st.Sketch, false)
	case a.nums != nil || a.strs != nil:
		for _, k := range slices.Sorted(maps.Keys(a.nums)) {
			st.Numbers = append(st.Numbers, [2]float64{k, float64(a.nums[k])})
		}
		for _, c := range a.strs {
			st.Strings = append(st.Strings, map[string]int64(c))
		}
	default:
		st.Moments = a.batches
		if st.Moments == nil {
			st.Moments = []Moments{}
		}
	}
	return st
}

// merge folds in one share's encoded state.
func (a *analyzer) merge(st AnalyzerState) error {
	switch {
	case a.quant != nil:
		if len(st.Sketch) == 0 {
			return errors.New("no sketch in the state")
		}
		if err := a.quant.s.DecodeAndMergeWith(st.Sketch); err != nil {
			return fmt.Errorf("decode sketch: %w", err)
		}
	case a.nums != nil || a.strs != nil:
		if len(st.Strings) != len(a.strs) {
			return fmt.Errorf("%d string counts in the state, want %d", len(st.Strings), len(a.strs))
		}
		for _, p := range st.Numbers {
			if math.IsNaN(p[0]) || p[1] < 0 {
				return fmt.Errorf("bad count %v", p)
			}
			a.nums[p[0]] += int64(p[1])
		}
		for j, c := range st.Strings {
			a.strs[j].Merge(c)
		}
	default:
		if st.Moments == nil {
			return errors.New("no moments in the state")
		}
		a.batches = append(a.batches, st.Moments...)
	}
	return nil
}
