package serve

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Histogram bounds: request latency in seconds, batch sizes in rows.
var (
	latencyBounds = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	rowBounds     = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}
)

type histogram struct {
	counts []int64 // per bound, not cumulative; one more for +Inf
	sum    float64
	n      int64
}

func (h *histogram) observe(bounds []float64, v float64) {
	if h.counts == nil {
		h.counts = make([]int64, len(bounds)+1)
	}
	i, _ := slices.BinarySearch(bounds, v)
	h.counts[i]++
	h.sum += v
	h.n++
}

// modelStats are one model's request and batch metrics.
type modelStats struct {
	mu       sync.Mutex
	requests map[int]int64 // by HTTP status
	latency  histogram
	rows     histogram
}

func (m *modelStats) request(status int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.requests == nil {
		m.requests = map[int]int64{}
	}
	m.requests[status]++
	m.latency.observe(latencyBounds, d.Seconds())
}

func (m *modelStats) batch(rows int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows.observe(rowBounds, float64(rows))
}

// metrics writes the Prometheus text exposition: the server's request and
// batch metrics by model name, and the inference engine's by model id.
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	var b strings.Builder
	b.WriteString("# HELP mlsteps_serve_requests_total Inference requests answered, by model and HTTP status.\n# TYPE mlsteps_serve_requests_total counter\n")
	for _, name := range s.names {
		st := &s.models[name].stats
		st.mu.Lock()
		for _, code := range slices.Sorted(maps.Keys(st.requests)) {
			fmt.Fprintf(&b, "mlsteps_serve_requests_total{model=%s,code=\"%d\"} %d\n", label(name), code, st.requests[code])
		}
		st.mu.Unlock()
	}
	b.WriteString("# HELP mlsteps_serve_request_failures_total Inference requests answered with an error status.\n# TYPE mlsteps_serve_request_failures_total counter\n")
	for _, name := range s.names {
		st := &s.models[name].stats
		st.mu.Lock()
		var failed int64
		for code, n := range st.requests {
			if code >= 400 {
				failed += n
			}
		}
		st.mu.Unlock()
		fmt.Fprintf(&b, "mlsteps_serve_request_failures_total{model=%s} %d\n", label(name), failed)
	}
	b.WriteString("# HELP mlsteps_serve_request_duration_seconds Inference request latency, arrival to answer.\n# TYPE mlsteps_serve_request_duration_seconds histogram\n")
	for _, name := range s.names {
		st := &s.models[name].stats
		st.mu.Lock()
		writeHistogram(&b, "mlsteps_serve_request_duration_seconds", name, latencyBounds, st.latency)
		st.mu.Unlock()
	}
	b.WriteString("# HELP mlsteps_serve_batch_rows Rows per model call.\n# TYPE mlsteps_serve_batch_rows histogram\n")
	for _, name := range s.names {
		st := &s.models[name].stats
		st.mu.Lock()
		writeHistogram(&b, "mlsteps_serve_batch_rows", name, rowBounds, st.rows)
		st.mu.Unlock()
	}
	b.WriteString("# HELP mlsteps_serve_queued_requests Requests waiting for a batch.\n# TYPE mlsteps_serve_queued_requests gauge\n")
	for _, name := range s.names {
		fmt.Fprintf(&b, "mlsteps_serve_queued_requests{model=%s} %d\n", label(name), s.models[name].pending.Load())
	}
	snap := s.engine.Snapshot()
	values := map[string]map[string]float64{}
	for _, id := range snap.IDs() {
		values[id] = snap[id].Values()
	}
	var metricNames []string
	if len(values) > 0 {
		metricNames = slices.Sorted(maps.Keys(values[snap.IDs()[0]]))
	}
	for _, metric := range metricNames {
		full := "mlsteps_inference_" + metric
		fmt.Fprintf(&b, "# HELP %s The inference engine's %s.\n# TYPE %s gauge\n", full, metric, full)
		for _, id := range snap.IDs() {
			fmt.Fprintf(&b, "%s{model_id=%s} %s\n", full, label(id), strconv.FormatFloat(values[id][metric], 'g', -1, 64))
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

func writeHistogram(b *strings.Builder, name, model string, bounds []float64, h histogram) {
	var cum int64
	for i, le := range bounds {
		if h.counts != nil {
			cum += h.counts[i]
		}
		fmt.Fprintf(b, "%s_bucket{model=%s,le=\"%s\"} %d\n", name, label(model), strconv.FormatFloat(le, 'g', -1, 64), cum)
	}
	fmt.Fprintf(b, "%s_bucket{model=%s,le=\"+Inf\"} %d\n", name, label(model), h.n)
	fmt.Fprintf(b, "%s_sum{model=%s} %s\n", name, label(model), strconv.FormatFloat(h.sum, 'g', -1, 64))
	fmt.Fprintf(b, "%s_count{model=%s} %d\n", name, label(model), h.n)
}

// label quotes a label value as the exposition format escapes it.
func label(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
