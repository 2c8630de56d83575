package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/mlsteps/mlsteps/steps/step"
)

// catalogMarkdown renders every step's contract as the step catalogue
// (docs/steps.md): one section per step with its inputs, outputs and
// parameters, from the same declarations that make the flags and --help.
func catalogMarkdown(reg *step.Registry) []byte {
	var b bytes.Buffer
	b.WriteString("# Step catalogue\n\nGenerated from the step contracts by `make manifests` (`mlsteps describe --markdown`); do not edit.\n" +
		"Every step runs as `mlsteps STEP --in NAME=URI ... --out-root URI [--PARAM VALUE ...]`, exits 0 (done), 1 (failed), 2 (bad\n" +
		"input or usage) or 3 (a gate said no, outputs written).\n\n| step | what it does |\n| --- | --- |\n")
	for _, s := range reg.All() {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s |\n", s.Name, s.Name, cell(s.Summary))
	}
	for _, s := range reg.All() {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", s.Name, s.Description)
		ports := func(title string, ps []step.Port) {
			if len(ps) == 0 {
				return
			}
			fmt.Fprintf(&b, "| %s | type | |\n| --- | --- | --- |\n", title)
			for _, p := range ps {
				opt := ""
				if p.Optional {
					opt = " (optional)"
				}
				fmt.Fprintf(&b, "| `%s`%s | %s | %s |\n", p.Name, opt, p.Type, cell(p.Description))
			}
			b.WriteString("\n")
		}
		ports("input", s.Inputs)
		ports("output", s.Outputs)
		if len(s.Params) > 0 {
			b.WriteString("| parameter | type | default | |\n| --- | --- | --- | --- |\n")
			for _, p := range s.Params {
				def := ""
				switch {
				case p.Required:
					def = "required"
				case p.Secret:
					def = "(secret)"
				case p.Default != nil:
					def = fmt.Sprintf("`%v`", p.Default)
				}
				desc := p.Description
				if len(p.Enum) > 0 {
					desc += " (" + strings.Join(p.Enum, ", ") + ")"
				}
				fmt.Fprintf(&b, "| `--%s` | %s | %s | %s |\n", p.Name, p.Type, cell(def), cell(desc))
			}
		}
	}
	return b.Bytes()
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
