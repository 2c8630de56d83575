package pipeline

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/mlsteps/mlsteps/steps/step"
)

var (
	// refRE matches a whole input reference: {{steps.S.outputs.O}}.
	refRE = regexp.MustCompile(`^\{\{\s*steps\.([a-z0-9-]+)\.outputs\.([a-z0-9_-]+)\s*\}\}$`)
	// paramRE matches a parameter reference inside a value: {{params.x}}.
	paramRE = regexp.MustCompile(`\{\{\s*params\.([A-Za-z0-9_-]+)\s*\}\}`)
	// whenRE: {{steps.S.outputs.O.properties.K}} == V (or !=).
	whenRE = regexp.MustCompile(`^\{\{\s*steps\.([a-z0-9-]+)\.outputs\.([a-z0-9_-]+)\.properties\.([A-Za-z0-9_-]+)\s*\}\}\s*(==|!=)\s*(.+)$`)
	// anyRefRE finds references that are not whole values.
	anyRefRE = regexp.MustCompile(`\{\{[^}]*\}\}`)
)

// Ref is an input fed by another step's output.
type Ref struct {
	Step, Output string
}

// Condition is a parsed `when`.
type Condition struct {
	Step, Output, Property string
	Negate                 bool
	Value                  string
}

// Check validates p against the step contracts in reg and returns the
// execution order. It reports every problem at once, with lines.
func Check(p *Pipeline, reg *step.Registry) (*Graph, error) {
	errs := &SpecError{File: p.File}
	params := map[string]Parameter{}
	for _, par := range p.Parameters {
		params[par.Name] = par
	}
	byName := map[string]*Step{}
	for i, s := range p.Steps {
		if prev, dup := byName[s.Name]; dup {
			errs.add(s.line, fmt.Sprintf("steps[%d].name", i), fmt.Sprintf("%q is also the name of the step at line %d", s.Name, prev.line))
		}
		byName[s.Name] = s
	}
	g := &Graph{Pipeline: p, deps: map[string][]string{}, refs: map[string]map[string]Ref{}, when: map[string]*Condition{}}
	for i, s := range p.Steps {
		path := fmt.Sprintf("steps[%d]", i)
		spec, ok := reg.Lookup(s.Type)
		if !ok {
			var names []string
			for _, sp := range reg.All() {
				names = append(names, sp.Name)
			}
			errs.add(s.line, path+".step", fmt.Sprintf("unknown step %q (steps: %s)", s.Type, strings.Join(names, ", ")))
			continue
		}
		g.refs[s.Name] = map[string]Ref{}
		checkParams(s, spec, params, path, errs)
		checkShards(s, spec, path, errs)
		for _, name := range sortedKeys(s.Inputs) {
			v := s.Inputs[name]
			at := path + ".inputs." + name
			port, ok := spec.Input(name)
			if !ok {
				errs.add(v.Line, at, fmt.Sprintf("%s has no input %q", s.Type, name))
				continue
			}
			m := refRE.FindStringSubmatch(v.Text)
			if m == nil {
				if anyRefRE.MatchString(v.Text) {
					errs.add(v.Line, at, fmt.Sprintf("%q: want {{steps.STEP.outputs.OUTPUT}} or an artifact URI", v.Text))
				}
				continue // a URI, checked when the step opens it
			}
			up, ok := byName[m[1]]
			if !ok {
				errs.add(v.Line, at, fmt.Sprintf("no step %q", m[1]))
				continue
			}
			upSpec, ok := reg.Lookup(up.Type)
			if !ok {
				continue // reported at the upstream step
			}
			out, ok := upSpec.Output(m[2])
			if !ok {
				errs.add(v.Line, at, fmt.Sprintf("step %s (%s) has no output %q", up.Name, up.Type, m[2]))
				continue
			}
			if out.Type != port.Type {
				errs.add(v.Line, at, fmt.Sprintf("type mismatch: %s.%s is a %s, input %s takes a %s", up.Name, m[2], out.Type, name, port.Type))
				continue
			}
			g.refs[s.Name][name] = Ref{Step: up.Name, Output: m[2]}
			g.addDep(s.Name, up.Name)
		}
		for _, port := range spec.Inputs {
			if _, given := s.Inputs[port.Name]; !given && !port.Optional {
				errs.add(s.line, path+".inputs", fmt.Sprintf("%s needs input %s (%s)", s.Type, port.Name, port.Type))
			}
		}
		if s.When != "" {
			c, err := parseWhen(s.When)
			if err != nil {
				errs.add(s.whenAt, path+".when", err.Error())
			} else if up, ok := byName[c.Step]; !ok {
				errs.add(s.whenAt, path+".when", fmt.Sprintf("no step %q", c.Step))
			} else if upSpec, ok := reg.Lookup(up.Type); ok {
				if _, ok := upSpec.Output(c.Output); !ok {
					errs.add(s.whenAt, path+".when", fmt.Sprintf("step %s has no output %q", c.Step, c.Output))
				} else {
					g.when[s.Name] = c
					g.addDep(s.Name, c.Step)
				}
			}
		}
	}
	if len(errs.Problems) == 0 {
		if cycle := g.findCycle(); cycle != nil {
			errs.add(byName[cycle[0]].line, "steps", "cycle: "+strings.Join(cycle, " -> "))
		}
	}
	if len(errs.Problems) > 0 {
		return nil, errs
	}
	g.order = g.topoOrder()
	return g, nil
}

// checkParams checks names, required parameters, references to pipeline
// parameters, and that literal values (and parameter defaults) parse.
func checkParams(s *Step, spec *step.Spec, params map[string]Parameter, path string, errs *SpecError) {
	for _, name := range sortedKeys(s.Params) {
		v := s.Params[name]
		at := path + ".params." + name
		decl, ok := spec.Param(name)
		if !ok {
			errs.add(v.Line, at, fmt.Sprintf("%s has no parameter %q", s.Type, name))
			continue
		}
		text, missing := substitute(v.Text, func(p string) (string, bool) {
			par, ok := params[p]
			return par.Default, ok
		})
		if missing != "" {
			errs.add(v.Line, at, fmt.Sprintf("no pipeline parameter %q", missing))
			continue
		}
		if anyRefRE.MatchString(text) {
			errs.add(v.Line, at, fmt.Sprintf("%q: parameters take literals or {{params.NAME}}", v.Text))
			continue
		}
		if usesParams(v.Text) && !allDefaulted(v.Text, params) {
			continue // set at run time with --param
		}
		if _, err := step.ParseValue(decl, text); err != nil {
			errs.add(v.Line, at, strings.TrimPrefix(err.Error(), "parameter --"+name+": "))
		}
	}
	for _, decl := range spec.Params {
		if _, given := s.Params[decl.Name]; decl.Required && !given {
			errs.add(s.line, path+".params", fmt.Sprintf("%s needs parameter %s", s.Type, decl.Name))
		}
	}
}

// checkShards checks shards and shard_by against the step's contract.
func checkShards(s *Step, spec *step.Spec, path string, errs *SpecError) {
	if s.Shards == 0 && s.ShardBy == "" {
		return
	}
	switch sh := spec.Shard; {
	case sh == nil:
		errs.add(s.shardAt, path+".shards", fmt.Sprintf("step %s does not shard (its contract declares no way to split its work)", s.Type))
	case s.Shards == 0:
		errs.add(s.shardAt, path+".shard_by", "give shards: N as well (how many shards)")
	case s.ShardBy != "" && s.ShardBy != string(sh.By):
		errs.add(s.shardAt, path+".shard_by", fmt.Sprintf("%q: %s shards by %s", s.ShardBy, s.Type, sh.By))
	case sh.Check != nil:
		texts := map[string]string{}
		for name, v := range s.Params {
			texts[name] = v.Text
		}
		if err := sh.Check(texts); err != nil {
			errs.add(s.shardAt, path+".shards", err.Error())
		}
	}
}

func usesParams(text string) bool { return paramRE.MatchString(text) }

func allDefaulted(text string, params map[string]Parameter) bool {
	for _, m := range paramRE.FindAllStringSubmatch(text, -1) {
		if !params[m[1]].HasDefault {
			return false
		}
	}
	return true
}

// substitute replaces {{params.x}} using lookup; it returns the first name
// lookup did not know.
func substitute(text string, lookup func(string) (string, bool)) (string, string) {
	missing := ""
	out := paramRE.ReplaceAllStringFunc(text, func(m string) string {
		name := paramRE.FindStringSubmatch(m)[1]
		v, ok := lookup(name)
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	return out, missing
}

func parseWhen(s string) (*Condition, error) {
	m := whenRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return nil, fmt.Errorf("%q: want {{steps.STEP.outputs.OUTPUT.properties.KEY}} == VALUE (or !=)", s)
	}
	return &Condition{Step: m[1], Output: m[2], Property: m[3], Negate: m[4] == "!=", Value: strings.Trim(strings.TrimSpace(m[5]), `"'`)}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
