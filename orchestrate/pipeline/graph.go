package pipeline

import (
	"fmt"
	"slices"

	"github.com/mlsteps/mlsteps/steps/step"
)

// Graph is a checked pipeline: its steps in dependency order and the
// wiring between them.
type Graph struct {
	Pipeline *Pipeline
	deps     map[string][]string
	refs     map[string]map[string]Ref
	when     map[string]*Condition
	order    []string
}

func (g *Graph) addDep(step, on string) {
	if !slices.Contains(g.deps[step], on) {
		g.deps[step] = append(g.deps[step], on)
	}
}

// Order returns the step names in an order where every step comes after
// the steps it depends on (declaration order among independent steps).
func (g *Graph) Order() []string { return slices.Clone(g.order) }

// Deps returns the steps a step waits for.
func (g *Graph) Deps(name string) []string { return slices.Clone(g.deps[name]) }

// Refs returns the inputs of a step fed by other steps' outputs.
func (g *Graph) Refs(name string) map[string]Ref { return g.refs[name] }

// When returns a step's condition, or nil.
func (g *Graph) When(name string) *Condition { return g.when[name] }

// Step returns a step by name.
func (g *Graph) Step(name string) *Step {
	for _, s := range g.Pipeline.Steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Downstream returns name and every step that depends on it, transitively.
func (g *Graph) Downstream(name string) []string {
	out := []string{name}
	for changed := true; changed; {
		changed = false
		for _, s := range g.order {
			if slices.Contains(out, s) {
				continue
			}
			for _, d := range g.deps[s] {
				if slices.Contains(out, d) {
					out = append(out, s)
					changed = true
					break
				}
			}
		}
	}
	return out
}

func (g *Graph) topoOrder() []string {
	var order []string
	done := map[string]bool{}
	for len(order) < len(g.Pipeline.Steps) {
		for _, s := range g.Pipeline.Steps {
			if done[s.Name] {
				continue
			}
			ready := true
			for _, d := range g.deps[s.Name] {
				ready = ready && done[d]
			}
			if ready {
				done[s.Name] = true
				order = append(order, s.Name)
			}
		}
	}
	return order
}

// findCycle returns a cycle as a path a -> b -> a, or nil.
func (g *Graph) findCycle() []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(string) []string
	visit = func(n string) []string {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range g.deps[n] {
			switch color[d] {
			case grey:
				i := slices.Index(stack, d)
				return append(slices.Clone(stack[i:]), d)
			case white:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return nil
	}
	for _, s := range g.Pipeline.Steps {
		if color[s.Name] == white {
			if c := visit(s.Name); c != nil {
				slices.Reverse(c) // report in data-flow order
				return c
			}
		}
	}
	return nil
}

// Resolve fills parameter values: overrides (from --param) over defaults.
// It returns each step's parameters as typed values for the harness.
func (g *Graph) Resolve(reg *step.Registry, overrides map[string]string) (map[string]map[string]string, error) {
	params := map[string]string{}
	known := map[string]bool{}
	for _, p := range g.Pipeline.Parameters {
		known[p.Name] = true
		if p.HasDefault {
			params[p.Name] = p.Default
		}
	}
	for k, v := range overrides {
		if !known[k] {
			return nil, step.Usagef("--param %s: the pipeline has no parameter %q", k, k)
		}
		params[k] = v
	}
	out := map[string]map[string]string{}
	for _, s := range g.Pipeline.Steps {
		spec, _ := reg.Lookup(s.Type)
		vals := map[string]string{}
		for name, v := range s.Params {
			text, missing := substitute(v.Text, func(p string) (string, bool) { val, ok := params[p]; return val, ok })
			if missing != "" {
				return nil, step.Usagef("step %s: parameter %s needs pipeline parameter %q: give --param %s=VALUE", s.Name, name, missing, missing)
			}
			decl, _ := spec.Param(name)
			if _, err := step.ParseValue(decl, text); err != nil {
				return nil, step.Usagef("step %s: %v", s.Name, err)
			}
			vals[name] = text
		}
		out[s.Name] = vals
	}
	return out, nil
}

// String renders a one-line summary, for logs.
func (g *Graph) String() string {
	return fmt.Sprintf("pipeline %s: %d steps %v", g.Pipeline.Name, len(g.order), g.order)
}
