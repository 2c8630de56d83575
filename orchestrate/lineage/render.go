package lineage

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Formats lists the output formats of Render.
var Formats = []string{"text", "json", "dot", "mermaid"}

// Render writes g in format: "text" (a readable tree, upstream then
// downstream as dir asks), "json", "dot" (Graphviz) or "mermaid" (a
// flowchart).
func Render(w io.Writer, g *Graph, format string, dir Direction) error {
	switch format {
	case "", "text":
		return renderText(w, g, dir)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(g)
	case "dot":
		return renderDot(w, g)
	case "mermaid":
		return renderMermaid(w, g)
	}
	return fmt.Errorf("lineage: unknown format %q (formats: %s)", format, strings.Join(Formats, ", "))
}

// adjacency indexes a graph's edges for walking it as a tree.
type adjacency struct {
	producers map[string][]Edge // artifact id -> output edges into it
	inputs    map[string][]Edge // execution id -> input edges into it
	consumers map[string][]Edge // artifact id -> input edges out of it
	outputs   map[string][]Edge // execution id -> output edges out of it
}

func newAdjacency(g *Graph) adjacency {
	a := adjacency{map[string][]Edge{}, map[string][]Edge{}, map[string][]Edge{}, map[string][]Edge{}}
	for _, e := range g.Edges {
		if e.Kind == "output" {
			a.producers[e.To] = append(a.producers[e.To], e)
			a.outputs[e.From] = append(a.outputs[e.From], e)
		} else {
			a.inputs[e.To] = append(a.inputs[e.To], e)
			a.consumers[e.From] = append(a.consumers[e.From], e)
		}
	}
	return a
}

// ShortDigest shortens a sha256 digest for people.
func ShortDigest(d string) string {
	h := strings.TrimPrefix(d, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

func artifactLabel(n *ArtifactNode) string {
	typ := string(n.Type)
	if typ == "" {
		typ = "Artifact"
	}
	s := fmt.Sprintf("%s %s %s", typ, ShortDigest(n.Digest), n.URI)
	switch {
	case n.Missing:
		s += "  [MISSING: no artifact there any more]"
	case n.Replaced:
		s += fmt.Sprintf("  [REPLACED: now %s]", ShortDigest(n.Now))
	}
	return s
}

func executionLabel(n *ExecutionNode) string {
	id := strings.TrimPrefix(n.ID, "execution:")
	step := n.Step
	if step == "" {
		step = "?"
	}
	s := fmt.Sprintf("%s %s [%s] %s", step, n.Version, status(n), id)
	if len(n.Parameters) > 0 {
		var ps []string
		for _, k := range slices.Sorted(maps.Keys(n.Parameters)) {
			ps = append(ps, k+"="+paramText(n.Parameters[k]))
		}
		s += "  " + strings.Join(ps, " ")
	}
	return s
}

func status(n *ExecutionNode) string {
	switch {
	case n.NoRecord:
		return "no record"
	case n.CachedFrom != "":
		return "cached from " + n.CachedFrom
	}
	return n.Status
}

func renderText(w io.Writer, g *Graph, dir Direction) error {
	adj := newAdjacency(g)
	root := g.Artifact(g.Root)
	var b strings.Builder
	b.WriteString(artifactLabel(root) + "\n")
	if dir == Up || dir == Both {
		if dir == Both {
			b.WriteString("upstream (made from):\n")
		}
		textUp(&b, g, adj, root, "", map[string]bool{})
	}
	if dir == Down || dir == Both {
		if dir == Both {
			b.WriteString("downstream (made with it):\n")
		}
		textDown(&b, g, adj, root, "", map[string]bool{})
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func branch(prefix string, last bool) (line, next string) {
	if last {
		return prefix + "└─ ", prefix + "   "
	}
	return prefix + "├─ ", prefix + "│  "
}

// textUp prints who made a, what that read, and so on; a node printed
// before is named again but not expanded.
func textUp(b *strings.Builder, g *Graph, adj adjacency, a *ArtifactNode, prefix string, seen map[string]bool) {
	prods := adj.producers[a.ID]
	for i, pe := range prods {
		line, next := branch(prefix, i == len(prods)-1)
		ex := g.Execution(pe.From)
		fmt.Fprintf(b, "%smade by %s\n", line, executionLabel(ex))
		if seen[ex.ID] {
			fmt.Fprintf(b, "%s└─ (shown above)\n", next)
			continue
		}
		seen[ex.ID] = true
		ins := adj.inputs[ex.ID]
		for j, ie := range ins {
			l2, n2 := branch(next, j == len(ins)-1)
			in := g.Artifact(ie.From)
			fmt.Fprintf(b, "%s%s: %s\n", l2, ie.Name, artifactLabel(in))
			textUp(b, g, adj, in, n2, seen)
		}
	}
}

// textDown prints what read a, what that wrote, and so on.
func textDown(b *strings.Builder, g *Graph, adj adjacency, a *ArtifactNode, prefix string, seen map[string]bool) {
	cons := adj.consumers[a.ID]
	for i, ce := range cons {
		line, next := branch(prefix, i == len(cons)-1)
		ex := g.Execution(ce.To)
		fmt.Fprintf(b, "%sread as %s by %s\n", line, ce.Name, executionLabel(ex))
		if seen[ex.ID] {
			fmt.Fprintf(b, "%s└─ (shown above)\n", next)
			continue
		}
		seen[ex.ID] = true
		outs := adj.outputs[ex.ID]
		for j, oe := range outs {
			l2, n2 := branch(next, j == len(outs)-1)
			out := g.Artifact(oe.To)
			fmt.Fprintf(b, "%s%s: %s\n", l2, oe.Name, artifactLabel(out))
			textDown(b, g, adj, out, n2, seen)
		}
	}
}

// nodeNames gives every node a short identifier safe in DOT and Mermaid.
func nodeNames(g *Graph) map[string]string {
	names := map[string]string{}
	for i, a := range g.Artifacts {
		names[a.ID] = fmt.Sprintf("a%d", i)
	}
	for i, e := range g.Executions {
		names[e.ID] = fmt.Sprintf("e%d", i)
	}
	return names
}

func artifactShort(n *ArtifactNode) string {
	typ := string(n.Type)
	if typ == "" {
		typ = "Artifact"
	}
	s := fmt.Sprintf("%s %s\n%s", typ, ShortDigest(n.Digest), n.URI)
	if n.Missing {
		s += "\nMISSING"
	}
	if n.Replaced {
		s += "\nREPLACED"
	}
	return s
}

func executionShort(n *ExecutionNode) string {
	return fmt.Sprintf("%s %s\n%s", n.Step, n.Version, status(n))
}

func renderDot(w io.Writer, g *Graph) error {
	names := nodeNames(g)
	var b strings.Builder
	b.WriteString("digraph lineage {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n")
	for _, a := range g.Artifacts {
		extra := ""
		if a.ID == g.Root {
			extra = ", penwidth=2"
		}
		if a.Missing || a.Replaced {
			extra += ", color=red"
		}
		fmt.Fprintf(&b, "  %s [shape=note, label=%s%s];\n", names[a.ID], dotQuote(artifactShort(a)), extra)
	}
	for _, e := range g.Executions {
		fmt.Fprintf(&b, "  %s [shape=box, style=rounded, label=%s];\n", names[e.ID], dotQuote(executionShort(e)))
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", names[e.From], names[e.To], dotQuote(e.Name))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// dotQuote quotes a DOT string; newlines become centred line breaks.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

func renderMermaid(w io.Writer, g *Graph) error {
	names := nodeNames(g)
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, a := range g.Artifacts {
		fmt.Fprintf(&b, "  %s[/%s/]\n", names[a.ID], mermaidQuote(artifactShort(a)))
	}
	for _, e := range g.Executions {
		fmt.Fprintf(&b, "  %s(%s)\n", names[e.ID], mermaidQuote(executionShort(e)))
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  %s -->|%s| %s\n", names[e.From], mermaidQuote(e.Name), names[e.To])
	}
	if a := g.Artifact(g.Root); a != nil {
		fmt.Fprintf(&b, "  style %s stroke-width:3px\n", names[a.ID])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mermaidQuote makes a Mermaid label: quoted, with quotes as entities and
// line breaks as <br/>.
func mermaidQuote(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "\n", "<br/>", "|", "#124;")
	return `"` + r.Replace(s) + `"`
}

// paramText shows a parameter as it was given: JSON numbers come back as
// float64, so whole numbers print without an exponent.
func paramText(v any) string {
	if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	if s, ok := v.(string); ok && (s == "" || strings.ContainsAny(s, " \t")) {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}
