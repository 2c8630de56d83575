package step

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// Flags derives a step's CLI flags from its spec: --in, --out, --out-root
// and one flag per parameter, each also read from its MLSTEPS_ variable.
func Flags(spec *Spec) []cli.Flag {
	flags := []cli.Flag{}
	if len(spec.Inputs) > 0 {
		flags = append(flags, &cli.StringSliceFlag{Name: "in", Usage: "input artifact `NAME=URI` (repeatable)", EnvVars: []string{EnvVar("in")}})
	}
	flags = append(flags,
		&cli.StringSliceFlag{Name: "out", Usage: "output artifact `NAME=URI` (repeatable; overrides --out-root)", EnvVars: []string{EnvVar("out")}},
		&cli.StringFlag{Name: "out-root", Usage: "place every output at `URI`/<name> and the execution record under URI/.mlsteps", EnvVars: []string{EnvVar("out-root")}},
		&cli.StringFlag{Name: "cache-root", Usage: "place outputs at `URI`/<step>/<cache key> and reuse a committed result with the same key (content of inputs, parameters, step and binary)", EnvVars: []string{EnvVar("cache-root")}},
		&cli.BoolFlag{Name: "no-cache", Usage: "with --cache-root: run even when a cached result exists", EnvVars: []string{EnvVar("no-cache")}},
		&cli.StringFlag{Name: "kfp-executor-input", Usage: "run under Kubeflow Pipelines' launcher: the executor input `JSON` ({{$}})"},
		&cli.StringFlag{Name: "result-dir", Usage: "write result.json and one file per output holding its URI into `DIR` (for orchestrators)", EnvVars: []string{EnvVar("result-dir")}},
	)
	if spec.Shard != nil {
		flags = append(flags,
			&cli.StringFlag{Name: "shard", Usage: fmt.Sprintf("run shard `I/N` of the work (by %s of input %s): the outputs are partials for --merge", spec.Shard.By, spec.Shard.Input), EnvVars: []string{EnvVar("shard")}},
			&cli.GenericFlag{Name: "merge", Value: &repeated{}, Usage: "merge the partials of a sharded run: `NAME=URI` per partial of each output (repeatable), or NAME=[\"URI\",…] (a JSON list)", EnvVars: []string{EnvVar("merge")}},
		)
	}
	for _, p := range spec.Params {
		usage := p.Description
		if len(p.Enum) > 0 {
			usage += " (one of " + strings.Join(p.Enum, ", ") + ")"
		}
		if p.Required {
			usage += " (required)"
		}
		env := []string{EnvVar(p.Name)}
		switch p.Type {
		case Int:
			v, _ := p.Default.(int64)
			flags = append(flags, &cli.Int64Flag{Name: p.Name, Usage: usage, Value: v, EnvVars: env})
		case Float:
			v, _ := p.Default.(float64)
			flags = append(flags, &cli.Float64Flag{Name: p.Name, Usage: usage, Value: v, EnvVars: env})
		case Bool:
			v, _ := p.Default.(bool)
			flags = append(flags, &cli.BoolFlag{Name: p.Name, Usage: usage, Value: v, EnvVars: env})
		case Duration:
			v, _ := p.Default.(time.Duration)
			flags = append(flags, &cli.DurationFlag{Name: p.Name, Usage: usage, Value: v, EnvVars: env})
		default:
			v, _ := p.Default.(string)
			flags = append(flags, &cli.StringFlag{Name: p.Name, Usage: usage, Value: v, EnvVars: env, DefaultText: secretDefault(p, v)})
		}
	}
	return flags
}

func secretDefault(p Param, v string) string {
	if p.Secret && v != "" {
		return "xxxxx"
	}
	return ""
}

// HelpText describes the inputs and outputs for --help.
func HelpText(spec *Spec) string {
	var b strings.Builder
	if spec.Description != "" {
		b.WriteString(spec.Description)
		b.WriteString("\n\n")
	}
	section := func(title string, ports []Port) {
		if len(ports) == 0 {
			return
		}
		fmt.Fprintf(&b, "%s:\n", title)
		for _, p := range ports {
			opt := ""
			if p.Optional {
				opt = ", optional"
			}
			fmt.Fprintf(&b, "   %-14s %s%s: %s\n", p.Name, p.Type, opt, p.Description)
		}
	}
	section("Inputs (--in NAME=URI)", spec.Inputs)
	section("Outputs (--out NAME=URI or --out-root URI)", spec.Outputs)
	return strings.TrimRight(b.String(), "\n")
}

// InvocationFromCLI reads the flags Flags declared.
func InvocationFromCLI(spec *Spec, c *cli.Context) (Invocation, error) {
	inv := Invocation{OutRoot: c.String("out-root"), CacheRoot: c.String("cache-root"), NoCache: c.Bool("no-cache"), Params: map[string]any{}}
	var err error
	if inv.Inputs, err = pairs("--in", c.StringSlice("in")); err != nil {
		return inv, err
	}
	if inv.Outputs, err = pairs("--out", c.StringSlice("out")); err != nil {
		return inv, err
	}
	if spec.Shard != nil {
		if text := c.String("shard"); text != "" {
			sh, err := ParseShard(text)
			if err != nil {
				return inv, err
			}
			inv.Shard = &sh
		}
		var merge []string
		if r, ok := c.Generic("merge").(*repeated); ok {
			merge = *r
		}
		for _, v := range merge {
			name, list, ok := strings.Cut(v, "=")
			if !ok || name == "" || list == "" {
				return inv, Usagef("--merge %q: want NAME=URI or NAME=[JSON list of URIs]", v)
			}
			uris, err := ParseMergeList(list)
			if err != nil {
				return inv, Usagef("--merge %s: %v", name, err)
			}
			if inv.Merge == nil {
				inv.Merge = map[string][]string{}
			}
			inv.Merge[name] = append(inv.Merge[name], uris...)
		}
	}
	if c.Args().Present() {
		return inv, Usagef("%s takes no arguments, got %q (inputs go in --in NAME=URI)", spec.Name, c.Args().Slice())
	}
	for _, p := range spec.Params {
		if !c.IsSet(p.Name) {
			continue
		}
		switch p.Type {
		case Int:
			inv.Params[p.Name] = c.Int64(p.Name)
		case Float:
			inv.Params[p.Name] = c.Float64(p.Name)
		case Bool:
			inv.Params[p.Name] = c.Bool(p.Name)
		case Duration:
			inv.Params[p.Name] = c.Duration(p.Name)
		default:
			inv.Params[p.Name] = c.String(p.Name)
		}
	}
	return inv, nil
}

func pairs(flag string, values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		name, uri, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return nil, Usagef("%s %q: want NAME=URI", flag, v)
		}
		if uri == "" {
			continue // NAME= leaves an optional input out (templates pass it so)
		}
		if _, dup := out[name]; dup {
			return nil, Usagef("%s %s given twice", flag, name)
		}
		out[name] = uri
	}
	return out, nil
}

// WriteResultDir writes res for an orchestrator: result.json, one file per
// output holding its URI (Argo output parameters read these), and "status".
func WriteResultDir(dir string, res Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("result dir: %w", err)
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{"result.json": append(data, '\n'), "status": []byte(res.Status)}
	for name, uri := range res.Outputs {
		files[name] = []byte(uri)
	}
	// Scalar properties, for conditions: Argo's `when` reads them as output
	// parameters (OUTPUT.KEY).
	for name, props := range res.Properties {
		for key, v := range props {
			if CheckPropertyKey(key) == nil {
				files[name+"."+key] = []byte(PropertyText(v))
			}
		}
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("result dir: %w", err)
		}
	}
	return nil
}

// PropertyText renders a scalar property as conditions compare it: whole
// numbers without a fraction, booleans as true/false.
func PropertyText(v any) string {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	}
	return fmt.Sprint(v)
}

// CheckPropertyKey accepts property keys that can name files and
// orchestrator parameters.
func CheckPropertyKey(key string) error {
	if key == "" || len(key) > 100 {
		return fmt.Errorf("property key %q: empty or too long", key)
	}
	for _, r := range key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("property key %q: use letters, digits, _ and -", key)
		}
	}
	return nil
}

// repeated is a repeatable flag whose values are kept whole: a slice flag
// would split them at commas, and a JSON list of URIs has commas.
type repeated []string

func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }
func (r *repeated) String() string {
	if r == nil {
		return ""
	}
	return strings.Join(*r, " ")
}
