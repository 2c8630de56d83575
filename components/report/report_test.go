package report_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/report"
	"github.com/mlsteps/mlsteps/components/stats"
	"github.com/mlsteps/mlsteps/components/validation"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// samplePage builds statistics of a small table with a missing value, an
// all-null column and a value outside the schema's domain, so the page has
// histograms, top values and highlighted anomalies.
func samplePage(t testing.TB) report.Page {
	t.Helper()
	mem := memory.DefaultAllocator
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "Body Mass (g)", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "Island <b>", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "empty", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	b.Field(0).(*array.Float64Builder).AppendValues([]float64{3750, 3800, 3250, 0, 4500}, []bool{true, true, true, false, true})
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"Torgersen", "Biscoe", "Dream", "Dream", "Atlantis"}, nil)
	b.Field(2).(*array.StringBuilder).AppendNulls(5)
	rec := b.NewRecordBatch()
	defer rec.Release()
	acc := stats.New(stats.Options{})
	if err := acc.Add(rec); err != nil {
		t.Fatal(err)
	}
	ds, err := acc.Result("train")
	if err != nil {
		t.Fatal(err)
	}
	schema := validation.InferSchema(&ds, validation.InferOptions{})
	schema.Feature[1].StringDomain = &validation.StringDomain{Value: []string{"Biscoe", "Dream", "Torgersen"}}
	an := validation.NewAnomalies()
	an.Check(&ds, schema, validation.Compare{})
	return report.Page{Title: "penguins <check>", Statistics: &stats.DatasetFeatureStatisticsList{Datasets: []stats.DatasetFeatureStatistics{ds}}, Anomalies: an}
}

func TestHTMLSelfContained(t *testing.T) {
	html, err := report.HTML(samplePage(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"http://cdn", "https://", "<link", "src=\"http", "@import"} {
		if bytes.Contains(html, []byte(bad)) {
			t.Errorf("report refers outside itself: %q", bad)
		}
	}
	if !bytes.Contains(html, []byte("Island &lt;b&gt;")) || bytes.Contains(html, []byte("Island <b>")) {
		t.Error("feature names are not escaped")
	}
}

// TestRenderedInChromium opens the report in headless Chromium and checks
// the rendered DOM (rows, bars, highlighted anomalies) and that the console
// logged no errors.
func TestRenderedInChromium(t *testing.T) {
	html, err := report.HTML(samplePage(t))
	if err != nil {
		t.Fatal(err)
	}
	dom := testenv.RenderDOM(t, html, `document.addEventListener("DOMContentLoaded",()=>{document.body.setAttribute("data-bars",document.querySelectorAll("svg rect.bar").length);`+
		`const r=document.querySelector("tr.anomaly");document.body.setAttribute("data-anomaly-bg",r?getComputedStyle(r).backgroundColor:"none")})`)
	for _, want := range []string{
		`data-feature="Body Mass (g)"`, `data-feature="Island &lt;b&gt;"`,
		`class="feature anomaly error" data-feature="empty"`, `class="feature anomaly error" data-feature="Island &lt;b&gt;"`,
		"FEATURE_TYPE_NOT_PRESENT", "ENUM_TYPE_UNEXPECTED_STRING_VALUES", "1 (20.0%)",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`data-bars="(\d+)"`).FindStringSubmatch(dom); m == nil || m[1] == "0" {
		t.Errorf("no SVG bars rendered (%v)", m)
	}
	if !strings.Contains(dom, `data-anomaly-bg="rgb(253, 232, 232)"`) {
		t.Errorf("anomaly rows are not highlighted: %s", regexp.MustCompile(`data-anomaly-bg="[^"]*"`).FindString(dom))
	}
}
