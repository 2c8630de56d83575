package deploy

import (
	"errors"
	"strings"
	"testing"
)

// TestCompare: what counts as answering differently.
func TestCompare(t *testing.T) {
	cols := []string{"label", "score_a", "n"}
	in := func(rows map[int64]map[string]any, refused map[int64]string) *answers {
		return &answers{rows: rows, refused: refused, columns: cols}
	}
	row := func(label string, score float64, n int64) map[string]any {
		return map[string]any{"label": label, "score_a": score, "n": n}
	}
	want := in(map[int64]map[string]any{0: row("a", 0.5, 1), 1: row("b", 1234.5, 2)}, map[int64]string{2: "null feature"})
	for _, c := range []struct {
		name string
		got  *answers
		err  string // "" when the answers agree
	}{
		{"same", in(map[int64]map[string]any{0: row("a", 0.5, 1), 1: row("b", 1234.5, 2)}, map[int64]string{2: "null"}), ""},
		{"within tolerance (relative above 1)", in(map[int64]map[string]any{0: row("a", 0.50005, 1), 1: row("b", 1234.6, 2)}, map[int64]string{2: "x"}), ""},
		{"a score off", in(map[int64]map[string]any{0: row("a", 0.51, 1), 1: row("b", 1234.5, 2)}, map[int64]string{2: "x"}), `row 0 column "score_a": served 0.51, in-process 0.5`},
		{"another label", in(map[int64]map[string]any{0: row("a", 0.5, 1), 1: row("c", 1234.5, 2)}, map[int64]string{2: "x"}), `row 1 column "label"`},
		{"an integer off by one", in(map[int64]map[string]any{0: row("a", 0.5, 1), 1: row("b", 1234.5, 3)}, map[int64]string{2: "x"}), `row 1 column "n"`},
		{"a served failure", in(map[int64]map[string]any{0: row("a", 0.5, 1)}, map[int64]string{1: "HTTP 500: boom", 2: "x"}), "row 1: the served model failed (HTTP 500: boom)"},
		{"an answer the engine refused", in(map[int64]map[string]any{0: row("a", 0.5, 1), 1: row("b", 1234.5, 2), 2: row("a", 0, 0)}, nil), "row 2: the served model answered a row"},
		{"other columns", &answers{rows: map[int64]map[string]any{0: {"x": 1.0}}, columns: []string{"x"}}, "answers with columns [x]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var rep InfraReport
			err := compare(want, c.got, 1e-4, &rep)
			var no *refusal
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.err == "":
				if rep.Compared != 2 || rep.Refused != 1 {
					t.Fatalf("report %+v", rep)
				}
			case !errors.As(err, &no) || !strings.Contains(err.Error(), c.err):
				t.Fatalf("got %v, want a refusal saying %q", err, c.err)
			}
		})
	}
	var rep InfraReport
	if err := compare(in(nil, map[int64]string{0: "bad"}), in(nil, nil), 1e-4, &rep); err == nil || !strings.Contains(err.Error(), "answered none of the 1 canary rows (row 0: bad)") {
		t.Fatalf("nothing answered in-process: %v", err)
	}
}
