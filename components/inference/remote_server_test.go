package inference_test

// The Open Inference Protocol test server and helpers of remote_test.go.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"math"
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

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/oip"
)

// penguinScorer is the test server's model: a fixed linear 3-class scorer
// over the 4 penguin features (standardised), with softmax scores and the
// argmax as label. Tests compute it directly to check what comes back.
func penguinScorer(x []float32) (probs [3]float32, label int) {
	mean := [4]float64{44, 17, 200, 4200}
	scale := [4]float64{5, 2, 14, 800}
	w := [3][4]float64{{-2, 1, -1, 0}, {2, 1, -1, -1}, {0.5, -2, 2, 1}}
	b := [3]float64{0.5, -0.5, 0}
	var z [3]float64
	top := math.Inf(-1)
	for c := range 3 {
		z[c] = b[c]
		for j := range 4 {
			z[c] += w[c][j] * (float64(x[j]) - mean[j]) / scale[j]
		}
		top = max(top, z[c])
	}
	var sum float64
	for c := range 3 {
		z[c] = math.Exp(z[c] - top)
		sum += z[c]
	}
	for c := range 3 {
		probs[c] = float32(z[c] / sum)
		if probs[c] > probs[label] {
			label = c
		}
	}
	return probs, label
}

const remoteMetadata = `{"name":"penguins","versions":["1"],"platform":"mlsteps-test",
	"inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],
	"outputs":[{"name":"probs","datatype":"FP32","shape":[-1,3]},{"name":"label","datatype":"INT64","shape":[-1]},
		{"name":"species","datatype":"BYTES","shape":[-1]}]}`

// remoteFault is what the test server does to one attempt instead of
// answering it.
type remoteFault struct {
	status     int           // answer with this status and an error body
	retryAfter string        // with this Retry-After header
	slow       time.Duration // answer nothing for this long (or until the client gives up)
	drop       bool          // close the connection without an answer
	msg        string        // the error text (default: "injected <status> for <id>")
}

func (f remoteFault) none() bool { return f == remoteFault{} }

// oipServer is an Open Inference Protocol server computing penguinScorer,
// with faults injected by schedule: fault gets each inference request's
// id and attempt (1, 2, ... per id).
type oipServer struct {
	*httptest.Server
	fault    func(id string, attempt int) remoteFault
	mu       sync.Mutex
	meta     string         // metadata body; "" for a 404
	ready    string         // readiness body (a 200 either way)
	work     time.Duration  // per inference, to let requests overlap
	attempts map[string]int // per request id
	arrivals []time.Time    // of inference requests
	faults   int            // attempts given a fault
	status   map[int]int    // faults by status
	requests atomic.Int64   // every request, any endpoint
	inflight atomic.Int64
	peak     atomic.Int64
}

func newOIPServer(t testing.TB, fault func(id string, attempt int) remoteFault) *oipServer {
	s := &oipServer{fault: fault, meta: remoteMetadata, attempts: map[string]int{}, status: map[int]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *oipServer) url() string { return s.Server.URL }

func (s *oipServer) fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(oip.ErrorResponse{Error: msg})
	w.Write(body)
}

// set changes the server under its lock: the race detector sees no order
// in a socket between the test and a handler.
func (s *oipServer) set(change func(s *oipServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(s)
}

func (s *oipServer) serve(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.mu.Lock()
	meta, ready := s.meta, s.ready
	s.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v2/models/penguins/ready" && meta != "":
		io.WriteString(w, ready)
	case r.Method == http.MethodGet && r.URL.Path == "/v2/models/penguins" && meta != "":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, meta)
	case r.Method == http.MethodPost && r.URL.Path == "/v2/models/penguins/infer":
		s.infer(w, r)
	default:
		s.fail(w, http.StatusNotFound, "no model at "+r.URL.Path)
	}
}

func (s *oipServer) infer(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	req, err := oip.ParseRequest(body)
	if err != nil {
		s.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	// The gauge covers arrival to computed answer, a span inside the
	// client's own hold of a concurrency slot: it can never read more
	// than the client lets through.
	s.peak.Store(max(s.peak.Load(), s.inflight.Add(1)))
	done := func() { s.inflight.Add(-1) }
	s.mu.Lock()
	s.attempts[req.ID]++
	attempt := s.attempts[req.ID]
	s.arrivals = append(s.arrivals, time.Now())
	work := s.work
	var f remoteFault
	if s.fault != nil {
		f = s.fault(req.ID, attempt)
	}
	if !f.none() {
		s.faults++
		s.status[f.status]++
	}
	s.mu.Unlock()
	switch {
	case f.drop:
		done()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	case f.slow > 0:
		done()
		select {
		case <-time.After(f.slow):
		case <-r.Context().Done():
		}
		return
	case f.status != 0:
		done()
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		msg := f.msg
		if msg == "" {
			msg = fmt.Sprintf("injected %d for %s", f.status, req.ID)
		}
		s.fail(w, f.status, msg)
		return
	}
	if work > 0 {
		time.Sleep(work)
	}
	resp, err := s.compute(&req)
	done()
	if err != nil {
		s.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	out, err := resp.AppendJSON(nil)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// compute answers a request: outputs label, species, probs (not the
// metadata's order), or those asked for, in the order asked.
func (s *oipServer) compute(req *oip.InferRequest) (*oip.InferResponse, error) {
	if len(req.Inputs) != 1 || req.Inputs[0].Name != "x" || req.Inputs[0].Datatype != oip.FP32 ||
		len(req.Inputs[0].Shape) != 2 || req.Inputs[0].Shape[1] != 4 {
		return nil, errors.New("want one input x, FP32 [N,4]")
	}
	x := req.Inputs[0]
	n := int(x.Shape[0])
	probs := make([]float32, 0, 3*n)
	labels := make([]int64, n)
	species := make([]string, n)
	for r := range n {
		p, l := penguinScorer(x.Float32s[r*4 : r*4+4])
		probs = append(probs, p[:]...)
		labels[r], species[r] = int64(l), classes[l]
	}
	all := []oip.Tensor{
		{Name: "label", Datatype: oip.Int64, Shape: []int64{int64(n)}, Ints: labels},
		{Name: "species", Datatype: oip.Bytes, Shape: []int64{int64(n)}, Strings: species},
		{Name: "probs", Datatype: oip.FP32, Shape: []int64{int64(n), 3}, Float32s: probs},
	}
	resp := &oip.InferResponse{ModelName: "penguins", ModelVersion: "1", ID: req.ID, Outputs: all}
	if len(req.Outputs) > 0 {
		resp.Outputs = nil
		for _, o := range req.Outputs {
			i := slices.IndexFunc(all, func(t oip.Tensor) bool { return t.Name == o.Name })
			if i < 0 {
				return nil, fmt.Errorf("no output %q", o.Name)
			}
			resp.Outputs = append(resp.Outputs, all[i])
		}
	}
	return resp, nil
}

// served returns how many attempts each request id got.
func (s *oipServer) served() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.attempts)
}

// remoteHandler is the penguin classifier on s, with fast retries.
func remoteHandler(s *oipServer) *inference.RemoteHandler {
	return &inference.RemoteHandler{BaseURL: s.url(), ModelName: "penguins",
		Inputs:     []inference.Input{{Name: "x", Columns: features}},
		Classifier: &inference.Classifier{Classes: classes, Scores: "probs", Label: "label"},
		Timeout:    2 * time.Second,
		Retry:      inference.RetryPolicy{MaxAttempts: 4, BaseBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}}
}

// remoteFeatures reads the 4 features of every row of recs, in stream order
// (nil for a row with a null).
func remoteFeatures(t testing.TB, recs []arrow.RecordBatch) [][]float32 {
	t.Helper()
	var out [][]float32
	for _, rec := range recs {
		for r := range int(rec.NumRows()) {
			x := make([]float32, len(features))
			for j, f := range features {
				col := rec.Column(rec.Schema().FieldIndices(f)[0])
				if col.IsNull(r) {
					x = nil
					break
				}
				switch c := col.(type) {
				case *array.Float32:
					x[j] = c.Value(r)
				case *array.Float64:
					x[j] = float32(c.Value(r))
				case *array.Int64:
					x[j] = float32(c.Value(r))
				default:
					t.Fatalf("column %s is %s", f, col.DataType())
				}
			}
			out = append(out, x)
		}
	}
	return out
}

type remotePrediction struct {
	label  string
	scores [3]float32
}

// remoteRun gathers a run's results and dead letters by stream position.
type remoteRun struct {
	mu      sync.Mutex
	results map[int64]remotePrediction
	dead    map[int64]string
	twice   []int64
}

func newRemoteRun() *remoteRun {
	return &remoteRun{results: map[int64]remotePrediction{}, dead: map[int64]string{}}
}

func (rr *remoteRun) sink() inference.Sink {
	return inference.Sink{
		Result: func(r inference.Result) error {
			rr.mu.Lock()
			defer rr.mu.Unlock()
			inf := r.Inference
			col := func(name string) arrow.Array { return inf.Column(inf.Schema().FieldIndices(name)[0]) }
			labels := col("label").(*array.String)
			for i, pos := range r.Rows {
				var p remotePrediction
				p.label = labels.Value(i)
				for c, cl := range classes {
					p.scores[c] = col("score_" + cl).(*array.Float32).Value(i)
				}
				if _, ok := rr.results[pos]; ok {
					rr.twice = append(rr.twice, pos)
				}
				rr.results[pos] = p
			}
			return nil
		},
		DeadLetter: func(d inference.DeadLetter) error {
			rr.mu.Lock()
			defer rr.mu.Unlock()
			for _, pos := range d.Rows {
				if _, ok := rr.dead[pos]; ok {
					rr.twice = append(rr.twice, pos)
				}
				rr.dead[pos] = d.Reason
			}
			return nil
		},
	}
}

// check asserts that every row ended in exactly one result or dead
// letter, that results are the server model's answers, and that dead
// letters are the null rows and rows whose reason deadOK accepts.
func (rr *remoteRun) check(t *testing.T, rows [][]float32, deadOK func(pos int64, reason string) bool) {
	t.Helper()
	if len(rr.twice) > 0 {
		t.Errorf("rows answered twice: %v", rr.twice)
	}
	for pos, x := range rows {
		p := int64(pos)
		got, ok := rr.results[p]
		reason, dead := rr.dead[p]
		switch {
		case ok && dead:
			t.Errorf("row %d both predicted and dead (%s)", pos, reason)
		case !ok && !dead:
			t.Errorf("row %d lost", pos)
		case dead && x == nil:
			if !strings.Contains(reason, "is null") {
				t.Errorf("row %d has a null feature, dead letter says %q", pos, reason)
			}
		case dead:
			if !deadOK(p, reason) {
				t.Errorf("row %d dead: %s", pos, reason)
			}
		case x == nil:
			t.Errorf("row %d has a null feature but was predicted", pos)
		default:
			probs, label := penguinScorer(x)
			if got.label != classes[label] || got.scores != probs {
				t.Errorf("row %d: got %v, the model says %s %v", pos, got, classes[label], probs)
			}
		}
	}
	if n := len(rr.results) + len(rr.dead); n != len(rows) {
		t.Errorf("%d rows out for %d in", n, len(rows))
	}
}

// remoteSeq is the sequence number that ends a request id.
func remoteSeq(id string) int {
	n, _ := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
	return n
}

// remoteSteps yields recs one at a time, calling before(k) first: with one
// worker the engine runs batch k before it asks for the next record, so
// before(k) sets the scene for batch k exactly.
func remoteSteps(recs []arrow.RecordBatch, before func(k int)) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		for k, r := range recs {
			before(k)
			if !yield(r, nil) {
				return
			}
		}
	}
}

// arrivalsCopy returns when each inference request arrived.
func (s *oipServer) arrivalsCopy() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.arrivals)
}
