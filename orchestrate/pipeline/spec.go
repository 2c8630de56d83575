package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pipeline is a parsed pipeline file.
type Pipeline struct {
	Name       string
	Root       string
	Parameters []Parameter
	Steps      []*Step
	// File names the source in errors.
	File string
	line int
}

// Parameter is a pipeline parameter, set with --param name=value.
type Parameter struct {
	Name        string
	Default     string
	HasDefault  bool
	Description string
	line        int
}

// Step is one task of the pipeline.
type Step struct {
	Name string
	// Type is the step to run (import, validate, …).
	Type string
	// Params are the step's parameters as text: literals or {{params.x}}.
	Params map[string]Value
	// Inputs map input names to "{{steps.S.outputs.O}}" or an artifact URI.
	Inputs map[string]Value
	// When is an optional condition: "{{steps.S.outputs.O.properties.K}} == V" (or !=).
	When      string
	Retries   int
	Resources Resources
	// NoCache runs the step every time (cache: false in the file).
	NoCache bool
	// Shards, when above 0, runs the step as that many shards (each a
	// share of its input's part files or keys) and then its merge; only
	// steps whose contract declares Sharding may say it.
	Shards int
	// ShardBy is how the work splits (parts or key); empty takes the
	// step's own way, and a way the step does not declare is an error.
	ShardBy string
	line    int
	whenAt  int
	shardAt int
}

// Value is a text value with where it was written.
type Value struct {
	Text string
	Line int
}

// Resources are per-step requests for the orchestrators.
type Resources struct {
	CPU    string `yaml:"cpu"`
	Memory string `yaml:"memory"`
	GPU    string `yaml:"gpu"`
}

// Problem is one thing wrong with a pipeline file.
type Problem struct {
	Line int
	Path string
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", p.Line, p.Path, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.Path, p.Msg)
}

// SpecError lists every problem of a pipeline file.
type SpecError struct {
	File     string
	Problems []Problem
}

func (e *SpecError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return fmt.Sprintf("pipeline %s: %s", e.File, strings.Join(lines, "; "))
}

// MaxShards bounds a step's shards: each is a process or a pod.
const MaxShards = 1000

var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// Parse decodes a pipeline file. Unknown fields, wrong shapes and bad names
// are reported with their lines; contract checks are Check's job.
func Parse(file string, data []byte) (*Pipeline, error) {
	errs := &SpecError{File: file}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty file")
		}
		return nil, &SpecError{File: file, Problems: []Problem{{Path: "(file)", Msg: yamlMsg(err)}}}
	}
	p := &Pipeline{File: file}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, &SpecError{File: file, Problems: []Problem{{Line: doc.Line, Path: "(file)", Msg: "want a mapping with name, parameters and steps"}}}
	}
	top := doc.Content[0]
	p.line = top.Line
	fields(top, "", errs, map[string]func(k, v *yaml.Node){
		"name": func(k, v *yaml.Node) { p.Name = scalar(v, "name", errs) },
		"root": func(k, v *yaml.Node) { p.Root = scalar(v, "root", errs) },
		"parameters": func(k, v *yaml.Node) {
			p.Parameters = parseParameters(v, errs)
		},
		"steps": func(k, v *yaml.Node) {
			if v.Kind != yaml.SequenceNode {
				errs.add(v.Line, "steps", "want a list of steps")
				return
			}
			for i, sn := range v.Content {
				p.Steps = append(p.Steps, parseStep(sn, fmt.Sprintf("steps[%d]", i), errs))
			}
		},
	})
	if p.Name == "" {
		errs.add(top.Line, "name", "required")
	} else if !nameRE.MatchString(p.Name) {
		errs.add(top.Line, "name", fmt.Sprintf("%q: use lowercase letters, digits and dashes (it names Argo and KFP objects)", p.Name))
	}
	if len(p.Steps) == 0 {
		errs.add(top.Line, "steps", "at least one step is required")
	}
	if len(errs.Problems) > 0 {
		return nil, errs
	}
	return p, nil
}

func (e *SpecError) add(line int, path, msg string) {
	e.Problems = append(e.Problems, Problem{Line: line, Path: path, Msg: msg})
}

func yamlMsg(err error) string { return strings.TrimPrefix(err.Error(), "yaml: ") }

// fields walks a mapping, calling the handler of each known key and
// reporting unknown and repeated keys.
func fields(m *yaml.Node, path string, errs *SpecError, handlers map[string]func(k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		at := join(path, k.Value)
		h, ok := handlers[k.Value]
		switch {
		case !ok:
			known := make([]string, 0, len(handlers))
			for name := range handlers {
				known = append(known, name)
			}
			errs.add(k.Line, at, fmt.Sprintf("unknown field (known: %s)", strings.Join(sortedStrings(known), ", ")))
		case seen[k.Value]:
			errs.add(k.Line, at, "given twice")
		default:
			seen[k.Value] = true
			h(k, v)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func scalar(v *yaml.Node, path string, errs *SpecError) string {
	if v.Kind != yaml.ScalarNode {
		errs.add(v.Line, path, "want a single value")
		return ""
	}
	return v.Value
}

func parseParameters(v *yaml.Node, errs *SpecError) []Parameter {
	if v.Kind != yaml.MappingNode {
		errs.add(v.Line, "parameters", "want a mapping of name: {default: …}")
		return nil
	}
	var out []Parameter
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, pv := v.Content[i], v.Content[i+1]
		par := Parameter{Name: k.Value, line: k.Line}
		path := "parameters." + k.Value
		if !nameRE.MatchString(strings.ReplaceAll(par.Name, "_", "-")) {
			errs.add(k.Line, path, "parameter names use lowercase letters, digits, dashes and underscores")
		}
		switch pv.Kind {
		case yaml.ScalarNode: // the short form: name: default
			par.Default, par.HasDefault = pv.Value, pv.Tag != "!!null"
		case yaml.MappingNode:
			fields(pv, path, errs, map[string]func(k, v *yaml.Node){
				"default": func(_, d *yaml.Node) {
					par.Default, par.HasDefault = scalar(d, path+".default", errs), d.Tag != "!!null"
				},
				"description": func(_, d *yaml.Node) { par.Description = scalar(d, path+".description", errs) },
			})
		default:
			errs.add(pv.Line, path, "want a value or {default: …, description: …}")
		}
		out = append(out, par)
	}
	return out
}

func parseStep(n *yaml.Node, path string, errs *SpecError) *Step {
	s := &Step{line: n.Line, Params: map[string]Value{}, Inputs: map[string]Value{}}
	if n.Kind != yaml.MappingNode {
		errs.add(n.Line, path, "want a mapping with name and step")
		return s
	}
	valueMap := func(field string, into map[string]Value) func(k, v *yaml.Node) {
		return func(_, v *yaml.Node) {
			if v.Kind != yaml.MappingNode {
				errs.add(v.Line, path+"."+field, "want a mapping")
				return
			}
			for i := 0; i+1 < len(v.Content); i += 2 {
				k, val := v.Content[i], v.Content[i+1]
				if _, dup := into[k.Value]; dup {
					errs.add(k.Line, path+"."+field+"."+k.Value, "given twice")
				}
				into[k.Value] = Value{Text: scalar(val, path+"."+field+"."+k.Value, errs), Line: val.Line}
			}
		}
	}
	fields(n, path, errs, map[string]func(k, v *yaml.Node){
		"name":   func(_, v *yaml.Node) { s.Name = scalar(v, path+".name", errs) },
		"step":   func(_, v *yaml.Node) { s.Type = scalar(v, path+".step", errs) },
		"params": valueMap("params", s.Params),
		"inputs": valueMap("inputs", s.Inputs),
		"when":   func(_, v *yaml.Node) { s.When, s.whenAt = scalar(v, path+".when", errs), v.Line },
		"retries": func(_, v *yaml.Node) {
			if err := v.Decode(&s.Retries); err != nil || s.Retries < 0 || s.Retries > 20 {
				errs.add(v.Line, path+".retries", "want a whole number from 0 to 20")
			}
		},
		"resources": func(_, v *yaml.Node) {
			if err := strictDecode(v, &s.Resources); err != nil {
				errs.add(v.Line, path+".resources", "want {cpu, memory, gpu}: "+yamlMsg(err))
			}
		},
		"shards": func(_, v *yaml.Node) {
			s.shardAt = v.Line
			if err := v.Decode(&s.Shards); err != nil || s.Shards < 1 || s.Shards > MaxShards {
				errs.add(v.Line, path+".shards", fmt.Sprintf("want a whole number from 1 to %d", MaxShards))
			}
		},
		"shard_by": func(_, v *yaml.Node) {
			s.ShardBy = scalar(v, path+".shard_by", errs)
			if s.shardAt == 0 {
				s.shardAt = v.Line
			}
		},
		"cache": func(_, v *yaml.Node) {
			var on bool
			if err := v.Decode(&on); err != nil {
				errs.add(v.Line, path+".cache", "want true or false")
			}
			s.NoCache = !on
		},
	})
	if s.Name == "" {
		errs.add(n.Line, path+".name", "required")
	} else if !nameRE.MatchString(s.Name) {
		errs.add(n.Line, path+".name", fmt.Sprintf("%q: use lowercase letters, digits and dashes", s.Name))
	}
	if s.Type == "" {
		errs.add(n.Line, path+".step", "required (the step to run: import, validate, …)")
	}
	return s
}

// strictDecode decodes a node rejecting unknown fields.
func strictDecode(n *yaml.Node, into any) error {
	data, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(into)
}

func sortedStrings(s []string) []string {
	slices.Sort(s)
	return s
}
