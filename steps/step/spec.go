package step

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mlsteps/mlsteps/artifacts"
)

// ParamType is the type of a step parameter.
type ParamType string

// Parameter types. Values are held as string, int64, float64, bool and
// time.Duration.
const (
	String   ParamType = "string"
	Int      ParamType = "int"
	Float    ParamType = "float"
	Bool     ParamType = "bool"
	Duration ParamType = "duration"
)

// Port is a named, typed input or output artifact.
type Port struct {
	Name        string         `json:"name"`
	Type        artifacts.Type `json:"type"`
	Description string         `json:"description"`
	// Optional inputs may be left out; every output is always written,
	// except one marked NotOnGate, which a run whose gate said no (exit 3)
	// may leave unwritten: a refusal with nothing to hand on, such as a
	// push that did not happen.
	Optional  bool `json:"optional,omitempty"`
	NotOnGate bool `json:"not_on_gate,omitempty"`
}

// Param is a typed step parameter.
type Param struct {
	Name        string    `json:"name"`
	Type        ParamType `json:"type"`
	Description string    `json:"description"`
	// Default is the value when the parameter is not given, of the Go type
	// matching Type; nil means no default (then Required or empty).
	Default  any      `json:"default,omitempty"`
	Example  string   `json:"example,omitempty"`
	Required bool     `json:"required,omitempty"`
	Enum     []string `json:"enum,omitempty"`
	// Secret values (tokens, passwords) never reach records or logs.
	Secret bool `json:"secret,omitempty"`
}

// Spec is a step's contract and its implementation.
type Spec struct {
	Name        string  `json:"name"`
	Version     string  `json:"version"`
	Summary     string  `json:"summary"`
	Description string  `json:"description,omitempty"`
	Inputs      []Port  `json:"inputs"`
	Outputs     []Port  `json:"outputs"`
	Params      []Param `json:"parameters"`
	// Run does the step's work; see the package doc for its error contract.
	Run func(ctx context.Context, r *Run) error `json:"-"`
	// ContentKey, for steps that read data that is not an input artifact
	// (raw files), returns digests of that content for the cache key, so a
	// changed file is never mistaken for a cached one.
	ContentKey func(ctx context.Context, r *Run) (map[string]string, error) `json:"-"`
	// Shard, when set, says the step's work splits across processes (run
	// with --shard I/N) and how the partials merge (run with --merge).
	Shard *Sharding `json:"shard,omitempty"`
}

// Input returns the declared input port called name.
func (s *Spec) Input(name string) (Port, bool) { return findPort(s.Inputs, name) }

// Output returns the declared output port called name.
func (s *Spec) Output(name string) (Port, bool) { return findPort(s.Outputs, name) }

// Param returns the declared parameter called name.
func (s *Spec) Param(name string) (Param, bool) {
	i := slices.IndexFunc(s.Params, func(p Param) bool { return p.Name == name })
	if i < 0 {
		return Param{}, false
	}
	return s.Params[i], true
}

func findPort(ports []Port, name string) (Port, bool) {
	i := slices.IndexFunc(ports, func(p Port) bool { return p.Name == name })
	if i < 0 {
		return Port{}, false
	}
	return ports[i], true
}

// reserved names would collide with the harness's own flags.
var reserved = []string{"in", "out", "out-root", "cache-root", "no-cache", "result-dir", "kfp-executor-input", "help", "log-level", "log-format", "result", "status", "shard", "merge"}

// Validate checks the declaration itself; a registry refuses a bad spec.
func (s *Spec) Validate() error {
	if !isName(s.Name) {
		return fmt.Errorf("step %q: name must be lowercase letters, digits and dashes", s.Name)
	}
	if s.Version == "" || s.Run == nil {
		return fmt.Errorf("step %s: Version and Run are required", s.Name)
	}
	if sh := s.Shard; sh != nil {
		in, ok := s.Input(sh.Input)
		switch {
		case sh.By != ShardByParts && sh.By != ShardByKey:
			return fmt.Errorf("step %s: shard by %q: want %s or %s", s.Name, sh.By, ShardByParts, ShardByKey)
		case !ok || in.Type != artifacts.TypeDataset:
			return fmt.Errorf("step %s: shard input %q is not a declared Dataset input", s.Name, sh.Input)
		case sh.Merge == nil:
			return fmt.Errorf("step %s: a shardable step needs a Merge", s.Name)
		}
	}
	seen := map[string]bool{}
	for _, group := range [][]Port{s.Inputs, s.Outputs} {
		for _, p := range group {
			if !isName(p.Name) || !p.Type.Known() {
				return fmt.Errorf("step %s: port %q: bad name or unknown type %q", s.Name, p.Name, p.Type)
			}
		}
	}
	for _, p := range s.Params {
		if !isName(p.Name) || slices.Contains(reserved, p.Name) || seen[p.Name] {
			return fmt.Errorf("step %s: parameter %q: bad, reserved or repeated name", s.Name, p.Name)
		}
		seen[p.Name] = true
		if p.Default != nil {
			if err := checkValue(p, p.Default); err != nil {
				return fmt.Errorf("step %s: parameter %s default: %w", s.Name, p.Name, err)
			}
		}
	}
	return nil
}

func isName(s string) bool {
	if s == "" || !unicode.IsLower(rune(s[0])) {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// checkValue checks that v has p's Go type and is one of p.Enum.
func checkValue(p Param, v any) error {
	var ok bool
	switch p.Type {
	case String:
		var s string
		s, ok = v.(string)
		if ok && len(p.Enum) > 0 && !slices.Contains(p.Enum, s) {
			return fmt.Errorf("%q is not one of %s", s, strings.Join(p.Enum, ", "))
		}
	case Int:
		_, ok = v.(int64)
	case Float:
		_, ok = v.(float64)
	case Bool:
		_, ok = v.(bool)
	case Duration:
		_, ok = v.(time.Duration)
	default:
		return fmt.Errorf("unknown parameter type %q", p.Type)
	}
	if !ok {
		return fmt.Errorf("value %v (%T) is not a %s", v, v, p.Type)
	}
	return nil
}

// ParseValue parses a parameter's text form (from a flag, an environment
// variable or a pipeline file).
func ParseValue(p Param, text string) (any, error) {
	var (
		v   any
		err error
	)
	switch p.Type {
	case String:
		v = text
	case Int:
		v, err = strconv.ParseInt(strings.TrimSpace(text), 10, 64)
	case Float:
		v, err = strconv.ParseFloat(strings.TrimSpace(text), 64)
	case Bool:
		v, err = strconv.ParseBool(strings.TrimSpace(text))
	case Duration:
		v, err = time.ParseDuration(strings.TrimSpace(text))
	default:
		err = fmt.Errorf("unknown parameter type %q", p.Type)
	}
	if err != nil {
		return nil, Usagef("parameter --%s: %q is not a %s", p.Name, text, p.Type)
	}
	if err := checkValue(p, v); err != nil {
		return nil, Usagef("parameter --%s: %v", p.Name, err)
	}
	return v, nil
}

// EnvVar is the environment variable that also sets a flag.
func EnvVar(flag string) string {
	return "MLSTEPS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Registry holds the steps a binary offers, in declaration order.
type Registry struct {
	steps []*Spec
}

// NewRegistry validates and registers specs.
func NewRegistry(specs ...*Spec) (*Registry, error) {
	r := &Registry{}
	for _, s := range specs {
		if err := s.Validate(); err != nil {
			return nil, err
		}
		if _, dup := r.Lookup(s.Name); dup {
			return nil, fmt.Errorf("step %s registered twice", s.Name)
		}
		r.steps = append(r.steps, s)
	}
	return r, nil
}

// Lookup finds a step by name.
func (r *Registry) Lookup(name string) (*Spec, bool) {
	i := slices.IndexFunc(r.steps, func(s *Spec) bool { return s.Name == name })
	if i < 0 {
		return nil, false
	}
	return r.steps[i], true
}

// All returns every step, in declaration order.
func (r *Registry) All() []*Spec { return slices.Clone(r.steps) }
