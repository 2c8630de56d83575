package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/orchestrate/local"
)

// headlineMetrics are the Evaluation properties a run's highlights show,
// in this order, when present.
var headlineMetrics = []string{"accuracy", "macro_f1", "auc", "log_loss", "rmse", "mae", "r2"}

// writeHighlights follows a run's summary table with what its outputs
// say: reports to open, headline metrics, the blessing and the push,
// anomalies and dead letters. Outputs that cannot be read are left out;
// the table already has every URI.
func writeHighlights(ctx context.Context, out io.Writer, store *artifacts.Store, res *local.Result) {
	var lines []string
	width := 0
	for _, s := range res.Steps {
		width = max(width, len(s.Name))
	}
	add := func(step, format string, args ...any) {
		lines = append(lines, fmt.Sprintf("  %-*s  %s", width, step, fmt.Sprintf(format, args...)))
	}
	for _, s := range res.Steps {
		names := make([]string, 0, len(s.Outputs))
		for name := range s.Outputs {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			u, err := artifacts.ParseURI(s.Outputs[name])
			if err != nil {
				continue
			}
			a, err := store.Open(ctx, u, "")
			if err != nil {
				continue
			}
			prop := func(key string) (any, bool) { v, ok := a.Properties[key]; return v, ok }
			report := func() string {
				if _, ok := a.File("report.html"); !ok {
					return ""
				}
				// A local report is a path a browser opens as it is.
				return strings.TrimPrefix(u.Join("report.html").String(), "file://")
			}
			switch a.Type {
			case artifacts.TypeStatistics:
				if r := report(); r != "" {
					add(s.Name, "statistics report: %s", r)
				}
			case artifacts.TypeAnomalies:
				errs, _ := prop("errors")
				warns, _ := prop("warnings")
				feats, _ := prop("features_with_anomalies")
				add(s.Name, "anomalies: %v errors, %v warnings %v", errs, warns, feats)
			case artifacts.TypeEvaluation:
				var parts []string
				for _, m := range headlineMetrics {
					if v, ok := prop(m); ok {
						parts = append(parts, fmt.Sprintf("%s %.4g", m, v))
					}
				}
				add(s.Name, "metrics (%v): %s", a.Properties["model_id"], strings.Join(parts, ", "))
				if r := report(); r != "" {
					add(s.Name, "evaluation report: %s", r)
				}
			case artifacts.TypeBlessing:
				if b, _ := prop("blessed"); b == true {
					add(s.Name, "blessed")
				} else {
					why, _ := prop("reason")
					add(s.Name, "NOT blessed: %v", why)
				}
			case artifacts.TypePushedModel:
				// A refused model has no PushedModel: the Blessing and the
				// table's reason say why.
				v, _ := prop("version")
				name, _ := prop("name")
				ptr, _ := prop("pointer")
				if again, _ := prop("already_current"); again == true {
					add(s.Name, "%v version %v is this model already (current: %v)", name, v, ptr)
				} else {
					add(s.Name, "pushed %v version %v (current: %v)", name, v, ptr)
				}
			case artifacts.TypePredictions:
				n, _ := prop("num_inferences")
				ids, _ := prop("model_ids")
				add(s.Name, "%v predictions by %v", n, ids)
			case artifacts.TypeDeadLetters:
				if n, _ := prop("dead_letters"); n != nil && fmt.Sprint(n) != "0" {
					add(s.Name, "%v dead letters: %s", n, u)
				}
			}
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(out, "\n%s\n", strings.Join(lines, "\n"))
	}
}
