package inference_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/oip"
)

// TestRemoteChaos runs penguins through a server that fails attempts by
// a schedule keyed on each request's id: 500s, 429s with Retry-After,
// answers slower than the timeout, dropped connections, and requests
// that keep failing until their attempts run out.
func TestRemoteChaos(t *testing.T) {
	noLeaks(t)
	recs := penguins(t, 50)
	rows := remoteFeatures(t, recs)
	schedule := [][]remoteFault{
		nil,
		{{status: 500}},
		{{status: 429, retryAfter: "0"}},
		{{slow: 5 * time.Second}},
		{{drop: true}},
		{{status: 500}, {drop: true}, {status: 429, retryAfter: "0"}}, // the 4th attempt succeeds
		{{status: 503}, {status: 503}, {status: 503}, {status: 503}},  // out of attempts
		nil,
	}
	hopeless := map[string]bool{}
	var mu sync.Mutex
	srv := newOIPServer(t, func(id string, attempt int) remoteFault {
		plan := schedule[remoteSeq(id)%len(schedule)]
		if len(plan) == 4 {
			mu.Lock()
			hopeless[id] = true
			mu.Unlock()
		}
		if attempt <= len(plan) {
			return plan[attempt-1]
		}
		return remoteFault{}
	})
	srv.set(func(s *oipServer) { s.work = time.Millisecond })
	h := remoteHandler(srv)
	h.Timeout = 200 * time.Millisecond
	h.MaxConcurrency = 2
	h.Breaker = inference.BreakerPolicy{Failures: 50}
	rr := newRemoteRun()
	snap, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 16, Workers: 4, Passthrough: []string{"Species"}}, seq(recs), rr.sink())
	if err != nil {
		t.Fatal(err)
	}
	rr.check(t, rows, func(_ int64, reason string) bool {
		return strings.Contains(reason, "4 attempts failed, the last: HTTP 503 Service Unavailable: injected 503")
	})
	served := srv.served()
	mu.Lock()
	defer mu.Unlock()
	var deadBatches int
	for id, n := range served {
		switch {
		case hopeless[id] && n != 4:
			t.Errorf("request %s: %d attempts, want 4", id, n)
		case n > 4:
			t.Errorf("request %s: %d attempts", id, n)
		}
		if hopeless[id] {
			deadBatches++
		}
	}
	st := h.Stats()
	srv.mu.Lock()
	faults, throttled := srv.faults, srv.status[429]
	srv.mu.Unlock()
	if st.Failures != int64(faults) || st.Throttled != int64(throttled) || st.Attempts != srv.requests.Load() ||
		st.Retries != int64(faults)-int64(deadBatches) || st.Retries == 0 {
		t.Errorf("stats %+v; the server saw %d requests, %d faults (%d 429s), %d batches out of attempts", st, srv.requests.Load(), faults, throttled, deadBatches)
	}
	if p := srv.peak.Load(); p > 2 {
		t.Errorf("%d requests in flight at once, MaxConcurrency is 2", p)
	}
	m := snap[h.ModelID()]
	if m.FailedBatchesCounter != int64(deadBatches) || deadBatches == 0 || m.NumInferences != int64(len(rr.results)) {
		t.Errorf("metrics %+v, %d batches out of attempts", m, deadBatches)
	}
	t.Logf("%d rows: %d predicted, %d dead; %d requests, %d faults; peak in flight %d; stats %+v",
		len(rows), len(rr.results), len(rr.dead), srv.requests.Load(), faults, srv.peak.Load(), st)
}

// TestRemoteBreaker takes the server down for a while: failures open the
// breaker, which then refuses batches without a request; a probe after
// the cooldown fails and re-opens it; once the server is back the next
// probe closes it.
func TestRemoteBreaker(t *testing.T) {
	noLeaks(t)
	recs, _ := benchBatches(8, 8)
	rows := remoteFeatures(t, recs)
	var down atomic.Bool
	srv := newOIPServer(t, func(string, int) remoteFault {
		if down.Load() {
			return remoteFault{status: 500}
		}
		return remoteFault{}
	})
	const cooldown = 250 * time.Millisecond
	h := remoteHandler(srv)
	h.Retry = inference.RetryPolicy{MaxAttempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
	h.Breaker = inference.BreakerPolicy{Failures: 3, Cooldown: cooldown}
	// Per batch: whether the server is down, and whether to wait out the
	// cooldown first.
	plan := []struct {
		down, wait bool
		requests   int    // inference requests the server gets
		dead       string // "" for a result
		breaker    inference.BreakerState
	}{
		{false, false, 1, "", inference.BreakerClosed},
		{true, false, 2, "2 attempts failed, the last: HTTP 500", inference.BreakerClosed},      // 2 failures in a row
		{true, false, 1, "circuit breaker open after 3 failed requests", inference.BreakerOpen}, // the 3rd opens it; the retry is refused
		{true, false, 0, "circuit breaker open", inference.BreakerOpen},                         // refused unsent
		{true, true, 1, "circuit breaker open", inference.BreakerOpen},                          // the probe fails: open again
		{false, false, 0, "circuit breaker open", inference.BreakerOpen},                        // still cooling down
		{false, true, 1, "", inference.BreakerClosed},                                           // the probe succeeds
		{false, false, 1, "", inference.BreakerClosed},
	}
	var counts []int64
	var states []inference.BreakerState
	before := func(k int) {
		counts = append(counts, int64(len(srv.arrivalsCopy())))
		if k > 0 {
			states = append(states, h.Stats().Breaker)
		}
		if plan[k].wait {
			time.Sleep(cooldown + cooldown/2)
		}
		down.Store(plan[k].down)
	}
	rr := newRemoteRun()
	if _, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 8}, remoteSteps(recs, before), rr.sink()); err != nil {
		t.Fatal(err)
	}
	counts = append(counts, int64(len(srv.arrivalsCopy())))
	states = append(states, h.Stats().Breaker)
	rr.check(t, rows, func(pos int64, reason string) bool {
		want := plan[pos/8].dead
		return want != "" && strings.Contains(reason, want)
	})
	for k, p := range plan {
		if got := counts[k+1] - counts[k]; got != int64(p.requests) || states[k] != p.breaker {
			t.Errorf("batch %d: %d requests, breaker %s; want %d, %s", k, got, states[k], p.requests, p.breaker)
		}
		if _, ok := rr.results[int64(8*k)]; ok != (p.dead == "") {
			t.Errorf("batch %d: predicted %v, want dead letter %q (got %q)", k, ok, p.dead, rr.dead[int64(8*k)])
		}
	}
	st := h.Stats()
	if st.BreakerOpens != 2 || st.BreakerCloses != 1 || st.Breaker != inference.BreakerClosed || st.Rejected != 4 {
		t.Errorf("stats %+v: want 2 opens, 1 close, closed, 4 rejected", st)
	}
}

// TestRemoteBadRequest: a 400 fails its batch at once with the server's
// text, is not retried, and does not count against the breaker.
func TestRemoteBadRequest(t *testing.T) {
	recs, _ := benchBatches(5, 4)
	srv := newOIPServer(t, func(string, int) remoteFault {
		return remoteFault{status: http.StatusBadRequest, msg: "input x: expected FP32 [N,5]"}
	})
	h := remoteHandler(srv)
	h.NoMetadata = true
	h.Retry.MaxAttempts = 5
	h.Breaker = inference.BreakerPolicy{Failures: 2}
	rr := newRemoteRun()
	if _, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 4}, seq(recs), rr.sink()); err != nil {
		t.Fatal(err)
	}
	rr.check(t, remoteFeatures(t, recs), func(_ int64, reason string) bool {
		return reason == "remote model penguins: HTTP 400 Bad Request: input x: expected FP32 [N,5]"
	})
	st := h.Stats()
	if srv.requests.Load() != 5 || len(srv.served()) != 5 || st.Attempts != 5 || st.Retries != 0 || st.Failures != 0 || st.BreakerOpens != 0 {
		t.Errorf("server saw %d requests for 5 batches; stats %+v", srv.requests.Load(), st)
	}
}

// TestRemoteRateLimit sends 40 requests at 100/s with a burst of 4 from
// 4 workers. The bucket lets the first 4 go at once and one per 10ms
// after, so the run takes at least 360ms, and no 100ms window of
// arrivals holds more than 4 + 10 (plus slack for network jitter).
func TestRemoteRateLimit(t *testing.T) {
	recs, _ := benchBatches(40, 4)
	srv := newOIPServer(t, nil)
	h := remoteHandler(srv)
	h.NoMetadata = true
	h.RateLimit, h.Burst = 100, 4
	rr := newRemoteRun()
	start := time.Now()
	if _, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 4, Workers: 4}, seq(recs), rr.sink()); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	rr.check(t, remoteFeatures(t, recs), func(int64, string) bool { return false })
	if elapsed < 360*time.Millisecond {
		t.Errorf("40 requests took %s; 100/s with a burst of 4 needs at least 360ms", elapsed)
	}
	arr := srv.arrivalsCopy()
	worst := 0
	for i := range arr {
		j := i
		for j < len(arr) && arr[j].Sub(arr[i]) < 100*time.Millisecond {
			j++
		}
		worst = max(worst, j-i)
	}
	if worst > 16 {
		t.Errorf("%d requests arrived within 100ms", worst)
	}
	t.Logf("40 requests in %s, at most %d in 100ms", elapsed, worst)
}

// TestRemoteRetryAfter: a 429's Retry-After holds the retry back that
// long, though the drawn backoff would be a millisecond.
func TestRemoteRetryAfter(t *testing.T) {
	recs, _ := benchBatches(1, 4)
	var mu sync.Mutex
	var times []time.Time
	srv := newOIPServer(t, func(_ string, attempt int) remoteFault {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if attempt == 1 {
			return remoteFault{status: 429, retryAfter: "1"}
		}
		return remoteFault{}
	})
	h := remoteHandler(srv)
	h.Retry.MaxBackoff = 5 * time.Second
	rr := newRemoteRun()
	if _, err := runOnce(context.Background(), h, inference.Options{}, seq(recs), rr.sink()); err != nil {
		t.Fatal(err)
	}
	rr.check(t, remoteFeatures(t, recs), func(int64, string) bool { return false })
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 || times[1].Sub(times[0]) < 900*time.Millisecond {
		t.Errorf("attempts at %v: want 2, a second apart", times)
	}
	if st := h.Stats(); st.Throttled != 1 || st.Retries != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestRemoteOutputs checks the columns: every output in the metadata's
// order without a classifier, chosen outputs in the order named, and
// class names as the classifier's label output.
func TestRemoteOutputs(t *testing.T) {
	recs, _ := benchBatches(2, 3)
	srv := newOIPServer(t, nil)
	for _, tc := range []struct {
		name string
		h    func(*inference.RemoteHandler)
		want []string
	}{
		{"all outputs", func(h *inference.RemoteHandler) { h.Classifier = nil },
			[]string{"probs_0:float32", "probs_1:float32", "probs_2:float32", "label:int64", "species:utf8"}},
		{"named outputs without metadata", func(h *inference.RemoteHandler) {
			h.Classifier, h.NoMetadata, h.Outputs = nil, true, []string{"species", "label"}
		}, []string{"species:utf8", "label:int64"}},
		{"class names as labels", func(h *inference.RemoteHandler) { h.Classifier.Label = "species" },
			[]string{"label:utf8", "score_Adelie:float32", "score_Chinstrap:float32", "score_Gentoo:float32"}},
		{"classifier and outputs", func(h *inference.RemoteHandler) { h.Classifier.Label, h.Outputs = "", []string{"species"} },
			[]string{"label:utf8", "score_Adelie:float32", "score_Chinstrap:float32", "score_Gentoo:float32", "species:utf8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := remoteHandler(srv)
			tc.h(h)
			var cols [][]string
			_, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 3}, seq(recs), inference.Sink{
				Result: func(r inference.Result) error {
					var names []string
					for _, f := range r.Inference.Schema().Fields() {
						names = append(names, f.Name+":"+f.Type.String())
					}
					cols = append(cols, names)
					return nil
				},
				DeadLetter: func(d inference.DeadLetter) error { return errors.New(d.Reason) }})
			if err != nil {
				t.Fatal(err)
			}
			if len(cols) != 2 || !slices.Equal(cols[0], tc.want) || !slices.Equal(cols[1], tc.want) {
				t.Errorf("columns %v, want %v", cols, tc.want)
			}
		})
	}
}

func TestRemoteLoadErrors(t *testing.T) {
	srv := newOIPServer(t, nil)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, tc := range []struct {
		name  string
		meta  string // metadata the server gives
		ready string // and its readiness body
		h     func(*inference.RemoteHandler)
		want  string
	}{
		{"no model name", remoteMetadata, "", func(h *inference.RemoteHandler) { h.ModelName = "" }, "no model name"},
		{"bad base URL", remoteMetadata, "", func(h *inference.RemoteHandler) { h.BaseURL = "localhost:8080" }, "is not http(s)://host"},
		{"base URL with a query", remoteMetadata, "", func(h *inference.RemoteHandler) { h.BaseURL += "/?key=1" }, "is not http(s)://host"},
		{"not ready", remoteMetadata, `{"name":"penguins","ready":false}`, func(*inference.RemoteHandler) {}, `is not ready: the server says "ready": false`},
		{"model not there", "", "", func(*inference.RemoteHandler) {},
			"remote model penguins at " + srv.url() + "/v2/models/penguins is not ready: HTTP 404 Not Found: no model at /v2/models/penguins/ready"},
		{"server down", remoteMetadata, "", func(h *inference.RemoteHandler) { h.BaseURL = gone.URL }, "is not ready: 4 attempts failed, the last: Get"},
		{"unknown datatype", strings.Replace(remoteMetadata, `"INT64"`, `"LONG"`, 1), "", func(*inference.RemoteHandler) {},
			`decode metadata: unknown datatype "LONG"`},
		{"unknown input", remoteMetadata, "", func(h *inference.RemoteHandler) { h.Inputs[0].Name = "features" },
			`remote model penguins has no input "features" (it has x)`},
		{"input width", remoteMetadata, "", func(h *inference.RemoteHandler) { h.Inputs[0].Columns = features[:3] },
			`input "x" takes 4 values per row, 3 columns named`},
		{"inputs unnamed", remoteMetadata, "", func(h *inference.RemoteHandler) { h.Inputs = nil }, `input "x" is 4 wide: name its columns in Inputs`},
		{"no inputs without metadata", remoteMetadata, "", func(h *inference.RemoteHandler) { h.Inputs, h.NoMetadata = nil, true },
			"without metadata, Inputs must name the inputs"},
		{"unknown output", remoteMetadata, "", func(h *inference.RemoteHandler) { h.Outputs = []string{"logits"} },
			`has no output "logits" (it has probs, label, species)`},
		{"classes", remoteMetadata, "", func(h *inference.RemoteHandler) { h.Classifier.Classes = classes[:2] },
			`output "probs" has 3 scores per row for 2 classes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.set(func(s *oipServer) { s.meta, s.ready = tc.meta, tc.ready })
			h := remoteHandler(srv)
			h.Retry.MaxBackoff = time.Millisecond
			tc.h(h)
			_, err := runOnce(context.Background(), h, inference.Options{}, seq(nil), inference.Sink{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestRemoteBareMetadata: metadata listing no tensors, as MLServer's
// may, checks nothing; datatypes then follow the columns.
func TestRemoteBareMetadata(t *testing.T) {
	recs, _ := benchBatches(2, 5)
	srv := newOIPServer(t, nil)
	srv.set(func(s *oipServer) { s.meta = `{"name":"penguins","platform":"mlserver","inputs":[],"outputs":[]}` })
	rr := newRemoteRun()
	if _, err := runOnce(context.Background(), remoteHandler(srv), inference.Options{}, seq(recs), rr.sink()); err != nil {
		t.Fatal(err)
	}
	rr.check(t, remoteFeatures(t, recs), func(int64, string) bool { return false })
}

// TestRemoteBadResponses: answers that do not fit the batch fail it,
// naming what is wrong; nothing is retried.
func TestRemoteBadResponses(t *testing.T) {
	recs, _ := benchBatches(1, 4)
	for _, tc := range []struct {
		name, body, want string
	}{
		{"rows", `{"model_name":"penguins","outputs":[{"name":"probs","shape":[3,3],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9]}]}`,
			`output "probs" has shape [3 3], want [4,3]`},
		{"missing", `{"model_name":"penguins","outputs":[]}`, `the response has no output "probs"`},
		{"id", `{"model_name":"penguins","id":"other","outputs":[]}`, `response id "other" answers another request`},
		{"datatype", `{"model_name":"penguins","outputs":[{"name":"probs","shape":[4,3],"datatype":"FP99","data":[]}]}`,
			`decode response: inference response: outputs: tensor "probs": datatype: unknown datatype "FP99"`},
		{"not json", `<html>hello</html>`, "decode response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			h := &inference.RemoteHandler{BaseURL: srv.URL, ModelName: "penguins", NoMetadata: true,
				Inputs:     []inference.Input{{Name: "x", Columns: features}},
				Classifier: &inference.Classifier{Classes: classes, Scores: "probs"}}
			rr := newRemoteRun()
			if _, err := runOnce(context.Background(), h, inference.Options{}, seq(recs), rr.sink()); err != nil {
				t.Fatal(err)
			}
			rr.check(t, remoteFeatures(t, recs), func(_ int64, reason string) bool { return strings.Contains(reason, tc.want) })
			if requests.Load() != 1 {
				t.Errorf("%d requests, want 1", requests.Load())
			}
		})
	}
}

// TestRemoteCancel cancels a run while a request hangs: Run returns at
// once with the context's error and nothing is left running.
func TestRemoteCancel(t *testing.T) {
	noLeaks(t)
	recs, _ := benchBatches(4, 4)
	arrived := make(chan struct{}, 16)
	srv := newOIPServer(t, func(string, int) remoteFault {
		arrived <- struct{}{}
		return remoteFault{slow: time.Minute}
	})
	h := remoteHandler(srv)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	rr := newRemoteRun()
	_, err := runOnce(ctx, h, inference.Options{MaxBatch: 4, Workers: 2}, seq(recs), rr.sink())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if st := h.Stats(); st.Failures != 0 || st.Retries != 0 || st.Breaker != inference.BreakerClosed {
		t.Errorf("a cancelled run counts against the server: %+v", st)
	}
}

// ExampleRemoteHandler converts temperatures on an Open Inference
// Protocol server (here a test server in the same process).
func ExampleRemoteHandler() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req oip.InferRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c := req.Inputs[0]
		f := oip.Tensor{Name: "fahrenheit", Datatype: oip.FP64, Shape: c.Shape, Float64s: make([]float64, len(c.Float64s))}
		for i, v := range c.Float64s {
			f.Float64s[i] = v*9/5 + 32
		}
		resp := oip.InferResponse{ModelName: "c-to-f", ID: req.ID, Outputs: []oip.Tensor{f}}
		body, _ := resp.AppendJSON(nil)
		w.Write(body)
	}))
	defer srv.Close()

	b := array.NewFloat64Builder(memory.DefaultAllocator)
	b.AppendValues([]float64{0, 100, 37}, nil)
	col := b.NewArray()
	schema := arrow.NewSchema([]arrow.Field{{Name: "celsius", Type: arrow.PrimitiveTypes.Float64}}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, 3)

	h := &inference.RemoteHandler{BaseURL: srv.URL, ModelName: "c-to-f", NoMetadata: true,
		Inputs: []inference.Input{{Name: "c", Columns: []string{"celsius"}}}}
	eng := inference.New(h, inference.Options{Passthrough: []string{"celsius"}})
	defer eng.Close()
	_, err := eng.Run(context.Background(), seq([]arrow.RecordBatch{rec}), inference.Sink{
		Result: func(r inference.Result) error {
			for i, row := range r.Rows {
				fmt.Printf("row %d: %s °C = %s °F\n", row, r.Example.Column(0).ValueStr(i), r.Inference.Column(0).ValueStr(i))
			}
			return nil
		},
	})
	fmt.Println(err, h.Stats().Attempts)
	// Output:
	// row 0: 0 °C = 32 °F
	// row 1: 100 °C = 212 °F
	// row 2: 37 °C = 98.6 °F
	// <nil> 1
}

// BenchmarkRemote measures rows/s through the engine and the handler
// against the in-process server computing the penguin model, batches of
// 64 rows, with one worker and with four.
func BenchmarkRemote(b *testing.B) {
	recs, _ := benchBatches(64, 64)
	rows := 64 * 64
	srv := newOIPServer(b, nil)
	for _, workers := range []int{1, 4} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
			h := remoteHandler(srv)
			eng := inference.New(h, inference.Options{MaxBatch: 64, Workers: workers})
			defer eng.Close()
			var inferred atomic.Int64
			sink := inference.Sink{
				Result:     func(r inference.Result) error { inferred.Add(int64(len(r.Rows))); return nil },
				DeadLetter: func(d inference.DeadLetter) error { return errors.New(d.Reason) },
			}
			if _, err := eng.Run(context.Background(), seq(recs[:1]), sink); err != nil { // load, warm the connections
				b.Fatal(err)
			}
			inferred.Store(0)
			start := time.Now()
			for b.Loop() {
				if _, err := eng.Run(context.Background(), seq(recs), sink); err != nil {
					b.Fatal(err)
				}
			}
			perSec := float64(inferred.Load()) / time.Since(start).Seconds()
			b.ReportMetric(perSec, "rows/s")
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(inferred.Load())*64, "ns/batch")
			b.Logf("workers=%d: %d rows (%d per run) at %.0f rows/s", workers, inferred.Load(), rows, perSec)
		})
	}
}
