package step

import (
	"fmt"
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
	)
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
	inv := Invocation{OutRoot: c.String("out-root"), Params: map[string]any{}}
	var err error
	if inv.Inputs, err = pairs("--in", c.StringSlice("in")); err != nil {
		return inv, err
	}
	if inv.Outputs, err = pairs("--out", c.StringSlice("out")); err != nil {
		return inv, err
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
		if !ok || name == "" || uri == "" {
			return nil, Usagef("%s %q: want NAME=URI", flag, v)
		}
		if _, dup := out[name]; dup {
			return nil, Usagef("%s %s given twice", flag, name)
		}
		out[name] = uri
	}
	return out, nil
}
