// Command benchtable reads `go test -bench` output on stdin, passes it
// through to stdout, and writes every figure the benchmarks logged with
// testenv.BenchRow as one Markdown table: to stdout at the end and to the
// file named by -out (bench/results.md in `make bench`).
package main

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mlsteps/mlsteps/internal/testenv"
)

func main() {
	out := flag.String("out", "", "also write the table to this file")
	flag.Parse()
	var rows []testenv.Row
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	failed := false
	for sc.Scan() {
		line := sc.Text()
		fmt.Println(line)
		if r, ok := testenv.ParseBenchRow(line); ok {
			rows = append(rows, r)
		}
		if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "--- FAIL") {
			failed = true
		}
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	table := render(rows)
	fmt.Print("\n" + table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if failed {
		os.Exit(1)
	}
}

func render(rows []testenv.Row) string {
	slices.SortStableFunc(rows, func(a, b testenv.Row) int { return cmp.Compare(a.Issue, b.Issue) })
	var sb strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&sb, "# mlsteps benchmarks\n\n%s, %d cores (GOMAXPROCS %d), %s/%s, %s, host %s. Every reference ran in the same `make bench` run on the same machine.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(), host)
	sb.WriteString("| issue | figure | mlsteps | reference | ratio | target |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		ref, ratio := "", ""
		if r.Reference != "" {
			ref = r.Reference
			if r.Ref != 0 {
				ref += ": " + num(r.Ref) + " " + r.Unit
			}
			ratio = strconv.FormatFloat(r.Ratio, 'f', 2, 64) + "×"
			if r.Better != "" {
				ratio += " (" + r.Better + " is better)"
			}
		}
		fmt.Fprintf(&sb, "| %d | %s | %s %s | %s | %s | %s |\n", r.Issue, r.Figure, num(r.Ours), r.Unit, ref, ratio, r.Target)
	}
	if len(rows) == 0 {
		sb.WriteString("| | no figures were logged | | | | |\n")
	}
	return sb.String()
}

func num(v float64) string {
	switch {
	case v >= 1e4:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
