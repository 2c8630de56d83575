package report

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"

	"github.com/mlsteps/mlsteps/components/evaluate"
)

// EvaluationPage is what a model-evaluation report shows.
type EvaluationPage struct {
	Title                string
	Model, BaselineModel string
	Split, Label         string
	// Rows were evaluated of TotalRows in the split.
	Rows, TotalRows int
	Result          *evaluate.Result
	Baseline        *evaluate.Result // nil without a baseline
	Checks          []evaluate.Check
	Blessed         bool
	Warnings        []string
	// Reported says which scalar metrics to show; nil shows all.
	Reported func(metric string) bool
}

type evalSlice struct {
	Key      string
	Count    int64
	TooSmall bool
	Cells    []evalCell
}

type evalCell struct {
	Value, Interval, Baseline, Diff string
	Worse                           bool
}

// lowerIsBetter are the scalars that improve downward, for colouring
// differences against the baseline.
var lowerIsBetter = []string{"log_loss", "brier_score", "calibration", "mse", "rmse", "mae", "mape"}

// EvaluationHTML renders the page: one self-contained document (inline
// CSS and SVG, no scripts, nothing fetched) with the verdict and every
// threshold check, a metrics table per slice (with the baseline's values
// and the differences, and confidence intervals when computed), the
// overall ROC and precision-recall curves, the calibration plot and the
// confusion matrix.
func EvaluationHTML(p EvaluationPage) ([]byte, error) {
	if p.Result == nil || len(p.Result.Slices) == 0 {
		return nil, fmt.Errorf("render evaluation report: no result")
	}
	reported := p.Reported
	if reported == nil {
		reported = func(string) bool { return true }
	}
	overall := p.Result.Overall()
	var metrics []string
	for _, m := range headlineOrder {
		if _, ok := overall.Scalars()[m]; ok && reported(m) {
			metrics = append(metrics, m)
		}
	}
	data := struct {
		EvaluationPage
		Metrics []string
		Slices  []evalSlice
		ROC     template.HTML
		PR      template.HTML
		Calib   template.HTML
		CM      *confusion
	}{EvaluationPage: p, Metrics: metrics}
	for _, s := range p.Result.Slices {
		es := evalSlice{Key: s.Key, Count: s.ExampleCount, TooSmall: s.TooSmall}
		if !s.TooSmall {
			sc := s.Scalars()
			var bs map[string]float64
			if p.Baseline != nil {
				if b := p.Baseline.Slice(s.Key); b != nil && !b.TooSmall {
					bs = b.Scalars()
				}
			}
			for _, m := range metrics {
				c := evalCell{Value: num(sc[m])}
				if m == "example_count" {
					c.Value = fmt.Sprint(s.ExampleCount)
				}
				if iv, ok := s.Intervals[m]; ok {
					c.Interval = fmt.Sprintf("[%s, %s]", num(float64(iv.Lower)), num(float64(iv.Upper)))
				}
				if b, ok := bs[m]; ok && m != "example_count" {
					d := sc[m] - b
					c.Baseline, c.Diff = num(b), fmt.Sprintf("%+.4f", d)
					c.Worse = d < 0 && !slices.Contains(lowerIsBetter, m) || d > 0 && slices.Contains(lowerIsBetter, m)
				}
				es.Cells = append(es.Cells, c)
			}
		}
		data.Slices = append(data.Slices, es)
	}
	if c := overall.Classification; c != nil {
		var base *evaluate.ClassificationMetrics
		if p.Baseline != nil && p.Baseline.Overall() != nil {
			base = p.Baseline.Overall().Classification
		}
		data.ROC = curveSVG("ROC", "false positive rate", "true positive rate", rocPoints(c), rocPoints(base), true)
		data.PR = curveSVG("precision-recall", "recall", "precision", prPoints(c), prPoints(base), false)
		data.Calib = calibrationSVG(c.Calibration)
		data.CM = confusionOf(c)
	}
	var buf bytes.Buffer
	if err := evalPage.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("render evaluation report: %w", err)
	}
	return buf.Bytes(), nil
}

var headlineOrder = []string{"example_count", "accuracy", "macro_precision", "macro_recall", "macro_f1", "micro_f1", "weighted_f1",
	"auc", "average_precision", "log_loss", "brier_score", "calibration",
	"mse", "rmse", "mae", "mape", "r2", "mean_label", "mean_prediction"}

type point struct{ x, y float64 }

func rocPoints(c *evaluate.ClassificationMetrics) []point {
	if c == nil {
		return nil
	}
	pts := make([]point, len(c.ROC))
	for i, r := range c.ROC {
		pts[i] = point{r.FPR, r.TPR}
	}
	return pts
}

func prPoints(c *evaluate.ClassificationMetrics) []point {
	if c == nil {
		return nil
	}
	pts := make([]point, len(c.ROC))
	for i, r := range c.ROC {
		pts[i] = point{r.TPR, r.Precision}
	}
	return pts
}

const plotW, plotH, plotPad = 260.0, 220.0, 34.0

// plotFrame opens an SVG with unit axes, labelled, and returns a
// mapping from data to pixel coordinates.
func plotFrame(sb *strings.Builder, title, xlabel, ylabel string) func(x, y float64) (float64, float64) {
	w, h := plotW+plotPad+8, plotH+plotPad+20
	fmt.Fprintf(sb, `<svg class="plot" role="img" aria-label="%s" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg">`,
		template.HTMLEscapeString(title), w, h, w, h)
	fmt.Fprintf(sb, `<title>%s</title>`, template.HTMLEscapeString(title))
	at := func(x, y float64) (float64, float64) { return plotPad + x*plotW, 12 + (1-y)*plotH }
	x0, y0 := at(0, 0)
	x1, y1 := at(1, 1)
	fmt.Fprintf(sb, `<rect class="frame" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x0, y1, x1-x0, y0-y1)
	for _, t := range []float64{0, 0.5, 1} {
		tx, _ := at(t, 0)
		_, ty := at(0, t)
		fmt.Fprintf(sb, `<text x="%.1f" y="%.1f" text-anchor="middle">%g</text><text x="%.1f" y="%.1f" text-anchor="end">%g</text>`, tx, y0+12, t, x0-4, ty+4, t)
	}
	fmt.Fprintf(sb, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x0+plotW/2, y0+28, template.HTMLEscapeString(xlabel))
	fmt.Fprintf(sb, `<text x="10" y="%.1f" text-anchor="middle" transform="rotate(-90 10 %.1f)">%s</text>`, y1+plotH/2, y1+plotH/2, template.HTMLEscapeString(ylabel))
	return at
}

func polyline(sb *strings.Builder, class string, pts []point, at func(x, y float64) (float64, float64)) {
	if len(pts) == 0 {
		return
	}
	fmt.Fprintf(sb, `<polyline class="%s" points="`, class)
	for i, p := range pts {
		if math.IsNaN(p.x) || math.IsNaN(p.y) {
			continue
		}
		x, y := at(p.x, p.y)
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(sb, "%.1f,%.1f", x, y)
	}
	sb.WriteString(`"/>`)
}

// curveSVG draws a curve (and the baseline's, dashed); diagonal adds the
// chance line of a ROC plot.
func curveSVG(title, xlabel, ylabel string, cand, base []point, diagonal bool) template.HTML {
	if len(cand) == 0 {
		return ""
	}
	var sb strings.Builder
	at := plotFrame(&sb, title, xlabel, ylabel)
	if diagonal {
		polyline(&sb, "chance", []point{{0, 0}, {1, 1}}, at)
	}
	polyline(&sb, "curve baseline", base, at)
	polyline(&sb, "curve candidate", cand, at)
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

// calibrationSVG is a reliability diagram: each non-empty bin's mean
// predicted probability against the observed fraction, over the diagonal.
func calibrationSVG(c evaluate.Calibration) template.HTML {
	var sb strings.Builder
	at := plotFrame(&sb, fmt.Sprintf("calibration (ECE %s)", num(float64(c.ECE))), "mean predicted probability", "fraction positive")
	polyline(&sb, "chance", []point{{0, 0}, {1, 1}}, at)
	var pts []point
	for _, b := range c.Bins {
		if float64(b.Weight) > 0 && !math.IsNaN(float64(b.MeanPredicted)) {
			pts = append(pts, point{float64(b.MeanPredicted), float64(b.FractionPositive)})
		}
	}
	polyline(&sb, "curve candidate", pts, at)
	for _, p := range pts {
		x, y := at(p.x, p.y)
		fmt.Fprintf(&sb, `<circle class="bin" cx="%.1f" cy="%.1f" r="3"/>`, x, y)
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

type confusion struct {
	Classes []string
	Rows    []confusionRow
}

type confusionRow struct {
	Class string
	Cells []confusionCell
}

type confusionCell struct {
	Value string
	Shade template.CSS
	Diag  bool
}

func confusionOf(c *evaluate.ClassificationMetrics) *confusion {
	out := &confusion{Classes: c.Classes}
	var peak float64
	for _, row := range c.ConfusionMatrix {
		for _, v := range row {
			peak = math.Max(peak, float64(v))
		}
	}
	for i, row := range c.ConfusionMatrix {
		r := confusionRow{Class: c.Classes[i]}
		for j, v := range row {
			a := 0.0
			if peak > 0 {
				a = float64(v) / peak
			}
			r.Cells = append(r.Cells, confusionCell{Value: strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", float64(v)), "0"), "."),
				Shade: template.CSS(fmt.Sprintf("background: rgba(74, 120, 181, %.2f)", 0.08+0.6*a)), Diag: i == j})
		}
		out.Rows = append(out.Rows, r)
	}
	return out
}

// fmtValue formats a check's numbers, nil (no baseline) as nothing.
func fmtValue(v any) string {
	switch x := v.(type) {
	case evaluate.Number:
		return num(float64(x))
	case *evaluate.Number:
		if x == nil {
			return ""
		}
		return num(float64(*x))
	case float64:
		return num(x)
	}
	return fmt.Sprint(v)
}

var evalPage = template.Must(template.New("evaluation").Funcs(template.FuncMap{"num": fmtValue}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid #ddd; padding: 5px 8px; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
.verdict { display: inline-block; padding: 4px 12px; border-radius: 12px; color: #fff; font-weight: 600; }
.verdict.blessed { background: #1f7a3a; } .verdict.not-blessed { background: #8a1c1c; }
tr.check.failed { background: #fde8e8; } tr.check.passed td.status { color: #1f7a3a; } tr.check.failed td.status { color: #8a1c1c; font-weight: 600; }
tr.too-small td { color: #888; }
.sub { display: block; font-size: 0.8em; color: #666; } .sub.worse { color: #8a1c1c; }
.plots { display: flex; flex-wrap: wrap; gap: 1.5em; }
.plot .frame { fill: none; stroke: #999; } .plot text { font-size: 10px; fill: #444; }
.plot .chance { fill: none; stroke: #bbb; stroke-dasharray: 3 3; }
.plot .curve { fill: none; stroke-width: 2; } .plot .candidate { stroke: #4a78b5; } .plot .baseline { stroke: #c77d1a; stroke-dasharray: 5 3; }
.plot .bin { fill: #4a78b5; }
table.confusion td { text-align: center; min-width: 3em; } table.confusion td.diag { font-weight: 600; }
ul.warnings { color: #9a6b00; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>Model <code>{{.Model}}</code>{{with .BaselineModel}} against baseline <code>{{.}}</code>{{end}}, split <b>{{.Split}}</b>, label <b>{{.Label}}</b>: {{.Rows}} of {{.TotalRows}} rows evaluated.</p>
<p id="verdict">{{if .Blessed}}<span class="verdict blessed">blessed</span>{{else}}<span class="verdict not-blessed">not blessed</span>{{end}}</p>
{{with .Warnings}}<ul class="warnings">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h2>Thresholds</h2>
{{if .Checks}}<table class="checks">
<thead><tr><th>slice</th><th>metric</th><th>kind</th><th>bound</th><th>value</th><th>baseline</th><th>status</th></tr></thead>
<tbody>{{range .Checks}}<tr class="check {{if .Passed}}passed{{else}}failed{{end}}" data-metric="{{.Metric}}" title="{{.Message}}">
<td>{{.Slice}}</td><td>{{.Metric}}</td><td>{{.Kind}}</td><td>{{num .Bound}}</td><td>{{num .Value}}</td><td>{{num .Baseline}}</td>
<td class="status">{{if .Passed}}pass{{else}}FAIL{{end}}</td></tr>
{{end}}</tbody></table>{{else}}<p>No thresholds: the model is blessed on no conditions.</p>{{end}}
<h2>Metrics by slice</h2>
<table class="metrics">
<thead><tr><th>slice</th>{{range .Metrics}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>{{range .Slices}}<tr class="slice{{if .TooSmall}} too-small{{end}}" data-slice="{{.Key}}">
<td>{{.Key}}{{if .TooSmall}} <span class="sub">{{.Count}} rows: below the minimum slice size, not computed</span>{{end}}</td>
{{range .Cells}}<td>{{.Value}}{{with .Interval}}<span class="sub">{{.}}</span>{{end}}{{if .Baseline}}<span class="sub{{if .Worse}} worse{{end}}">{{.Baseline}} ({{.Diff}})</span>{{end}}</td>{{end}}
</tr>
{{end}}</tbody></table>
{{if .ROC}}<h2>Overall curves</h2>
<div class="plots">{{.ROC}}{{.PR}}{{.Calib}}</div>
<p class="sub">Solid: the model; dashed: the baseline. The ROC and PR curves are of the second class for two classes, of the first against the rest for more.</p>{{end}}
{{with .CM}}<h2>Confusion matrix (rows: label, columns: predicted)</h2>
<table class="confusion"><thead><tr><th></th>{{range .Classes}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}<tr><th>{{.Class}}</th>{{range .Cells}}<td class="cell{{if .Diag}} diag{{end}}" style="{{.Shade}}">{{.Value}}</td>{{end}}</tr>
{{end}}</tbody></table>{{end}}
</body>
</html>
`))
