package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
)

// writeSummary prints a sidecar for people: what it is, who made it from
// what, its files and its properties.
func writeSummary(out io.Writer, sc *artifacts.Sidecar) error {
	fmt.Fprintf(out, "%s %s\n", sc.Type, sc.Name)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "  uri\t%s\n", sc.URI)
	fmt.Fprintf(w, "  digest\t%s\n", sc.Digest)
	fmt.Fprintf(w, "  created\t%s\n", sc.Created.Format(time.RFC3339))
	if p := sc.Producer; p != nil {
		fmt.Fprintf(w, "  producer\t%s %s, execution %s on %s, took %s\n", p.Step, p.Version, p.ExecutionID, p.Host, p.Ended.Sub(p.Started).Round(time.Millisecond))
		keys := slices.Sorted(maps.Keys(p.Parameters))
		var params []string
		for _, k := range keys {
			params = append(params, k+"="+valueText(p.Parameters[k]))
		}
		fmt.Fprintf(w, "  parameters\t%s\n", strings.Join(params, " "))
	}
	if len(sc.Inputs) == 0 {
		fmt.Fprintf(w, "  inputs\t(none)\n")
	}
	for _, in := range sc.Inputs {
		fmt.Fprintf(w, "  input %s\t%s %s %s\n", in.Name, in.Type, in.URI, in.Digest)
	}
	var total int64
	for _, f := range sc.Files {
		total += f.Size
	}
	fmt.Fprintf(w, "  files\t%d, %s\n", len(sc.Files), bytesText(total))
	w.Flush()
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, f := range sc.Files {
		fmt.Fprintf(w, "    %s\t%s\tsha256:%s\n", f.Path, bytesText(f.Size), f.SHA256[:16])
	}
	w.Flush()
	fmt.Fprintf(out, "  properties\n")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, k := range slices.Sorted(maps.Keys(sc.Properties)) {
		fmt.Fprintf(w, "    %s\t%s\n", k, propertyText(sc, k))
	}
	return w.Flush()
}

// valueText prints JSON numbers that are whole as integers.
func valueText(v any) string {
	if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return fmt.Sprint(v)
}

func propertyText(sc *artifacts.Sidecar, key string) string {
	switch key {
	case artifacts.PropSplits:
		if splits, err := artifacts.Property[[]artifacts.Split](sc, key); err == nil {
			var parts []string
			for _, s := range splits {
				parts = append(parts, fmt.Sprintf("%s: %d rows in %d parts", s.Name, s.RowCount, len(s.Files)))
			}
			return strings.Join(parts, "; ")
		}
	case artifacts.PropColumns:
		if cols, err := artifacts.Property[[]artifacts.Column](sc, key); err == nil {
			var parts []string
			for _, c := range cols {
				parts = append(parts, fmt.Sprintf("%q %s", c.Name, c.Type))
			}
			return strings.Join(parts, ", ")
		}
	}
	data, _ := json.Marshal(sc.Properties[key])
	if len(data) > 300 {
		return string(data[:300]) + "…"
	}
	return string(data)
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
