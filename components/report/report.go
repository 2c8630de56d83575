package report

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"strings"

	"github.com/mlsteps/mlsteps/components/stats"
	"github.com/mlsteps/mlsteps/components/validation"
)

// Page is what a statistics report shows.
type Page struct {
	// Title heads the page.
	Title string
	// Statistics has one dataset per split.
	Statistics *stats.DatasetFeatureStatisticsList
	// Anomalies, when not nil, highlights the features they name.
	Anomalies *validation.Anomalies
	// Upstream lists what the statistics were computed from, so a reader
	// can follow the lineage from the page.
	Upstream []Link
}

// Link points at an upstream input: Text for people, Href for the browser
// (empty when a browser cannot open it), Detail such as the full URI.
type Link struct {
	Text, Href, Detail string
}

type row struct {
	Name, Type   string
	Missing      string
	MissingPct   float64
	Summary      []string
	Chart        template.HTML
	Anomaly      bool
	Severity     string
	Descriptions []string
}

type section struct {
	Name     string
	Examples int64
	Rows     []row
}

// HTML renders the page: one self-contained document (inline CSS and SVG,
// no scripts or fonts fetched from anywhere) with a table per split and a
// row per feature: its type, missing share, headline statistics, a
// histogram (numbers) or top values (strings), and its anomalies.
func HTML(p Page) ([]byte, error) {
	data := struct {
		Title     string
		Sections  []section
		Anomalies int
		Dataset   []string
		Upstream  []Link
	}{Title: p.Title, Upstream: p.Upstream}
	if p.Anomalies != nil {
		data.Anomalies = len(p.Anomalies.AnomalyInfo)
		if d := p.Anomalies.DatasetAnomalyInfo; d != nil {
			for _, r := range d.Reason {
				data.Dataset = append(data.Dataset, r.Description)
			}
		}
	}
	if p.Statistics != nil {
		for _, ds := range p.Statistics.Datasets {
			sec := section{Name: ds.Name, Examples: int64(ds.NumExamples)}
			for i := range ds.Features {
				sec.Rows = append(sec.Rows, featureRow(&ds.Features[i], ds.Name, p.Anomalies))
			}
			data.Sections = append(data.Sections, sec)
		}
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("render report: %w", err)
	}
	return buf.Bytes(), nil
}

func featureRow(fs *stats.FeatureNameStatistics, split string, an *validation.Anomalies) row {
	r := row{Name: fs.Name(), Type: fs.Type}
	if cs := fs.Common(); cs != nil {
		total := float64(cs.NumMissing + cs.NumNonMissing)
		if total > 0 {
			r.MissingPct = 100 * float64(cs.NumMissing) / total
		}
		r.Missing = fmt.Sprintf("%d (%.1f%%)", cs.NumMissing, r.MissingPct)
	}
	switch {
	case fs.NumStats != nil:
		ns := fs.NumStats
		r.Summary = []string{
			"mean " + num(float64(ns.Mean)), "std " + num(float64(ns.StdDev)),
			"min " + num(float64(ns.Min)), "median " + num(float64(ns.Median)), "max " + num(float64(ns.Max)),
			fmt.Sprintf("zeros %d", ns.NumZeros),
		}
		for _, h := range ns.Histograms {
			if h.Type == stats.HistogramStandard {
				r.Chart = histogramSVG(h.Buckets)
			}
		}
	case fs.StringStats != nil:
		ss := fs.StringStats
		r.Summary = []string{fmt.Sprintf("unique %d", ss.Unique), "avg length " + num(float64(ss.AvgLength))}
		r.Chart = topValuesSVG(ss.TopValues)
	}
	if an != nil {
		if info := an.AnomalyInfo[r.Name]; info != nil {
			for _, reason := range info.Reason {
				// Reasons of several splits share one map entry; show this
				// split's (and unprefixed ones).
				if strings.HasPrefix(reason.Description, "split ") && !strings.HasPrefix(reason.Description, "split "+split+": ") {
					continue
				}
				r.Descriptions = append(r.Descriptions, reason.Type+": "+reason.Description)
			}
			if len(r.Descriptions) > 0 {
				r.Anomaly, r.Severity = true, strings.ToLower(info.Severity)
			}
		}
	}
	return r
}

func num(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case v != 0 && (math.Abs(v) >= 1e6 || math.Abs(v) < 1e-3):
		return fmt.Sprintf("%.4g", v)
	}
	return fmt.Sprintf("%.4f", v)
}

const chartW, chartH = 240.0, 60.0

// histogramSVG draws bucket counts as bars, with the range below.
func histogramSVG(buckets []stats.Bucket) template.HTML {
	if len(buckets) == 0 {
		return ""
	}
	var peak float64
	for _, b := range buckets {
		peak = math.Max(peak, float64(b.SampleCount))
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" role="img" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH+14, chartW, chartH+14)
	w := chartW / float64(len(buckets))
	for i, b := range buckets {
		h := 0.0
		if peak > 0 {
			h = chartH * float64(b.SampleCount) / peak
		}
		fmt.Fprintf(&sb, `<rect class="bar" x="%.2f" y="%.2f" width="%.2f" height="%.2f"><title>[%s, %s]: %s</title></rect>`,
			float64(i)*w+1, chartH-h, math.Max(w-2, 1), h, template.HTMLEscapeString(num(float64(b.LowValue))),
			template.HTMLEscapeString(num(float64(b.HighValue))), template.HTMLEscapeString(num(float64(b.SampleCount))))
	}
	fmt.Fprintf(&sb, `<text x="0" y="%.0f">%s</text><text x="%.0f" y="%.0f" text-anchor="end">%s</text></svg>`,
		chartH+12, template.HTMLEscapeString(num(float64(buckets[0].LowValue))), chartW, chartH+12,
		template.HTMLEscapeString(num(float64(buckets[len(buckets)-1].HighValue))))
	return template.HTML(sb.String())
}

// topValuesSVG draws the most frequent values as horizontal bars.
func topValuesSVG(top []stats.FreqAndValue) template.HTML {
	if len(top) > 5 {
		top = top[:5]
	}
	if len(top) == 0 {
		return ""
	}
	peak := float64(top[0].Frequency)
	const line = 14.0
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" role="img" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" xmlns="http://www.w3.org/2000/svg">`, chartW, line*float64(len(top)), chartW, line*float64(len(top)))
	for i, v := range top {
		w := 0.0
		if peak > 0 {
			w = (chartW / 2) * float64(v.Frequency) / peak
		}
		label := v.Value
		if len([]rune(label)) > 18 {
			label = string([]rune(label)[:17]) + "…"
		}
		y := float64(i) * line
		fmt.Fprintf(&sb, `<rect class="bar" x="0" y="%.0f" width="%.2f" height="%.0f"><title>%s: %s</title></rect><text x="%.2f" y="%.0f">%s (%s)</text>`,
			y+2, w, line-3, template.HTMLEscapeString(v.Value), num(float64(v.Frequency)), w+4, y+line-3,
			template.HTMLEscapeString(label), strings.TrimSuffix(strings.TrimRight(num(float64(v.Frequency)), "0"), "."))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

var page = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 6px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
tr.anomaly.error { background: #fde8e8; } tr.anomaly.warning { background: #fff6dd; }
.summary span { display: inline-block; margin-right: 0.8em; white-space: nowrap; }
.chart .bar { fill: #4a78b5; } .chart text { font-size: 10px; fill: #444; }
ul.why { margin: 4px 0 0; padding-left: 1.2em; color: #8a1c1c; }
.badge { font-size: 0.8em; padding: 1px 6px; border-radius: 8px; background: #8a1c1c; color: #fff; }
.badge.warning { background: #9a6b00; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{with .Upstream}}<p id="upstream">Made from: {{range .}}<span class="link">{{if .Href}}<a href="{{.Href}}">{{.Text}}</a>{{else}}{{.Text}}{{end}} <code>{{.Detail}}</code></span> {{end}}</p>{{end}}
<p id="verdict">{{if .Anomalies}}{{.Anomalies}} feature(s) with anomalies.{{else}}No feature anomalies.{{end}}</p>
{{with .Dataset}}<ul class="why" id="dataset-anomalies">{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{range .Sections}}
<h2>Split {{.Name}}: {{.Examples}} examples</h2>
<table class="features" data-split="{{.Name}}">
<thead><tr><th>feature</th><th>type</th><th>missing</th><th>statistics</th><th>distribution</th></tr></thead>
<tbody>
{{range .Rows}}<tr class="feature{{if .Anomaly}} anomaly {{.Severity}}{{end}}" data-feature="{{.Name}}">
<td><b>{{.Name}}</b>{{if .Anomaly}} <span class="badge {{.Severity}}">{{.Severity}}</span>{{end}}
{{if .Descriptions}}<ul class="why">{{range .Descriptions}}<li>{{.}}</li>{{end}}</ul>{{end}}</td>
<td>{{.Type}}</td>
<td class="missing">{{.Missing}}</td>
<td class="summary">{{range .Summary}}<span>{{.}}</span>{{end}}</td>
<td>{{.Chart}}</td>
</tr>
{{end}}</tbody>
</table>
{{end}}
</body>
</html>
`))
