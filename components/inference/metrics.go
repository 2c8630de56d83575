package inference

import (
	"sort"
	"sync"
	"time"
)

// Metric names, as Beam's RunInference reports them.
const (
	NumInferences             = "num_inferences"
	InferenceRequestBatchSize = "inference_request_batch_size"
	InferenceBatchLatency     = "inference_batch_latency_micro_secs"
	LoadModelLatency          = "load_model_latency_milli_secs"
	ModelByteSize             = "model_byte_size"
	FailedBatchesCounter      = "failed_batches_counter"
)

// Dist summarises a distribution (Beam's distribution metrics).
type Dist struct {
	Count, Sum, Min, Max int64
}

func (d *Dist) add(v int64) {
	if d.Count == 0 || v < d.Min {
		d.Min = v
	}
	if v > d.Max {
		d.Max = v
	}
	d.Count++
	d.Sum += v
}

// Mean is Sum/Count (0 when empty).
func (d Dist) Mean() float64 {
	if d.Count == 0 {
		return 0
	}
	return float64(d.Sum) / float64(d.Count)
}

// ModelMetrics are one model id's metrics.
type ModelMetrics struct {
	NumInferences                  int64 // rows inferred
	InferenceRequestBatchSize      Dist  // rows per batch
	InferenceBatchLatencyMicroSecs Dist  // Run time per batch
	LoadModelLatencyMilliSecs      Dist  // one entry per load
	ModelByteSize                  int64 // of the last load
	FailedBatchesCounter           int64 // batches whose Run failed as a whole
}

// Values flattens the metrics under Beam's names (distributions as their
// mean, plus _count, _min and _max for batch size and latency).
func (m ModelMetrics) Values() map[string]float64 {
	out := map[string]float64{
		NumInferences:               float64(m.NumInferences),
		ModelByteSize:               float64(m.ModelByteSize),
		FailedBatchesCounter:        float64(m.FailedBatchesCounter),
		LoadModelLatency:            m.LoadModelLatencyMilliSecs.Mean(),
		LoadModelLatency + "_count": float64(m.LoadModelLatencyMilliSecs.Count), // loads
	}
	for name, d := range map[string]Dist{InferenceRequestBatchSize: m.InferenceRequestBatchSize, InferenceBatchLatency: m.InferenceBatchLatencyMicroSecs} {
		out[name] = d.Mean()
		out[name+"_count"] = float64(d.Count)
		out[name+"_min"] = float64(d.Min)
		out[name+"_max"] = float64(d.Max)
	}
	return out
}

// Metrics collects ModelMetrics per model id. It is safe for concurrent
// use, and every method accepts a nil *Metrics (recording nothing), so
// handlers need not check.
type Metrics struct {
	mu     sync.Mutex
	models map[string]*ModelMetrics
}

// NewMetrics returns an empty collector.
func NewMetrics() *Metrics { return &Metrics{models: map[string]*ModelMetrics{}} }

func (m *Metrics) get(id string) *ModelMetrics {
	mm := m.models[id]
	if mm == nil {
		mm = &ModelMetrics{}
		m.models[id] = mm
	}
	return mm
}

// Loaded records one model load.
func (m *Metrics) Loaded(id string, latency time.Duration, bytes int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mm := m.get(id)
	mm.LoadModelLatencyMilliSecs.add(latency.Milliseconds())
	mm.ModelByteSize = bytes
}

// loads counts the loads recorded for id.
func (m *Metrics) loads(id string) int64 {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if mm, ok := m.models[id]; ok {
		return mm.LoadModelLatencyMilliSecs.Count
	}
	return 0
}

// Batch records one successful batch of rows rows.
func (m *Metrics) Batch(id string, rows int, latency time.Duration) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mm := m.get(id)
	mm.NumInferences += int64(rows)
	mm.InferenceRequestBatchSize.add(int64(rows))
	mm.InferenceBatchLatencyMicroSecs.add(latency.Microseconds())
}

// Failed records one failed batch.
func (m *Metrics) Failed(id string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.get(id).FailedBatchesCounter++
}

// Snapshot copies the metrics, per model id.
func (m *Metrics) Snapshot() Snapshot {
	s := Snapshot{}
	if m == nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, mm := range m.models {
		s[id] = *mm
	}
	return s
}

// Snapshot is a copy of the metrics, per model id.
type Snapshot map[string]ModelMetrics

// IDs returns the model ids, sorted.
func (s Snapshot) IDs() []string {
	ids := make([]string, 0, len(s))
	for id := range s {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
