package testenv

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// BenchRowPrefix starts the log line of one figure of the benchmark table
// (bench/results.md), which scripts/benchtable collects from `make bench`.
const BenchRowPrefix = "BENCHROW"

// Row is one figure of the benchmark table: what was measured, our value
// and unit, and, when there is one, the reference measured in the same run
// with the ratio (ours/reference, or as Better explains).
type Row struct {
	// Issue is the issue number the target comes from; Figure names it.
	Issue  int
	Figure string
	Ours   float64
	Unit   string
	// Reference names what ours is compared with ("pandas 2.1",
	// "raw ONNX Runtime"); empty when there is none.
	Reference string
	Ref       float64
	// Ratio is the comparison, with Better saying how to read it
	// ("higher", "lower") and Target the issue's goal ("≥ 5×"), if any.
	Ratio  float64
	Better string
	Target string
}

// BenchRow logs r as one tab-separated line for the benchmark table.
func BenchRow(b testing.TB, r Row) {
	b.Helper()
	clean := func(s string) string { return strings.NewReplacer("\t", " ", "\n", " ").Replace(s) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	b.Log(strings.Join([]string{BenchRowPrefix, strconv.Itoa(r.Issue), clean(r.Figure), f(r.Ours), clean(r.Unit),
		clean(r.Reference), f(r.Ref), f(r.Ratio), clean(r.Better), clean(r.Target)}, "\t"))
}

// ParseBenchRow reads a line BenchRow logged (with go test's indentation
// and file:line prefix); ok is false for any other line.
func ParseBenchRow(line string) (r Row, ok bool) {
	i := strings.Index(line, BenchRowPrefix+"\t")
	if i < 0 {
		return r, false
	}
	fields := strings.Split(strings.TrimRight(line[i:], "\r\n"), "\t")
	if len(fields) != 10 {
		return r, false
	}
	num := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	issue, err := strconv.Atoi(fields[1])
	if err != nil {
		return r, false
	}
	return Row{Issue: issue, Figure: fields[2], Ours: num(fields[3]), Unit: fields[4], Reference: fields[5],
		Ref: num(fields[6]), Ratio: num(fields[7]), Better: fields[8], Target: fields[9]}, true
}

// String is the row as the table shows it, for logs.
func (r Row) String() string {
	return fmt.Sprintf("%s: %g %s (%s %g, ratio %.3g)", r.Figure, r.Ours, r.Unit, r.Reference, r.Ref, r.Ratio)
}
