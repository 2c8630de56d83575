package main

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves a command's positional arguments after its flags, so
// `mlsteps run pipeline.yaml --param k=v` works: urfave/cli v2 stops
// parsing flags at the first positional argument.
func interspersed(app *cli.App, args []string) []string {
	out := slices.Clone(args)
	cmds := app.Commands
	for i := 1; i < len(out); i++ {
		a := out[i]
		if strings.HasPrefix(a, "-") {
			if a == "--" {
				return out
			}
			if takesValue(app.Flags, a) && !strings.Contains(a, "=") {
				i++
			}
			continue
		}
		cmd := findCommand(cmds, a)
		if cmd == nil {
			return out
		}
		if len(cmd.Subcommands) > 0 {
			cmds = cmd.Subcommands
			continue
		}
		return append(out[:i+1], reorder(cmd.Flags, out[i+1:])...)
	}
	return out
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.Name == name || slices.Contains(c.Aliases, name) {
			return c
		}
	}
	return nil
}

// reorder puts flags (with their values) first and positionals last.
func reorder(flags []cli.Flag, args []string) []string {
	var fl, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i:]...)
			return append(fl, pos...)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			fl = append(fl, a)
			if takesValue(flags, a) && !strings.Contains(a, "=") && i+1 < len(args) {
				i++
				fl = append(fl, args[i])
			}
		default:
			pos = append(pos, a)
		}
	}
	return append(fl, pos...)
}

// takesValue reports whether the flag named by arg expects a value.
func takesValue(flags []cli.Flag, arg string) bool {
	name := strings.TrimLeft(arg, "-")
	name, _, _ = strings.Cut(name, "=")
	for _, f := range flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		_, isBool := f.(*cli.BoolFlag)
		return !isBool
	}
	return false
}
