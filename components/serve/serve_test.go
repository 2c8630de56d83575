package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/oip"
)

// doubler is a model of input x [N,2] and outputs y = 2x [N,2] and
// s = x_0 + x_1 [N]. A row with x_0 == -1 fails its batch; one with
// x_0 == -2 is a bad row. When gate is set, every Run reports its rows on
// started and waits for gate to close or receive.
type doubler struct {
	calls   atomic.Int64
	started chan int
	gate    chan struct{}
}

func (d *doubler) ModelID() string            { return "doubler" }
func (d *doubler) BatchSizes() (min, max int) { return 0, 0 }
func (d *doubler) Load(context.Context, *inference.Metrics) (inference.Model, error) {
	return d, nil
}
func (d *doubler) ByteSize() int64 { return 0 }
func (d *doubler) Close() error    { return nil }

func (d *doubler) Run(_ context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	d.calls.Add(1)
	n := int(batch.NumRows())
	if d.gate != nil {
		d.started <- n
		<-d.gate
	}
	x0 := batch.Column(batch.Schema().FieldIndices("x_0")[0]).(*array.Float32).Float32Values()
	x1 := batch.Column(batch.Schema().FieldIndices("x_1")[0]).(*array.Float32).Float32Values()
	var bad []inference.BadRow
	for i, v := range x0 {
		switch v {
		case -1:
			return nil, errors.New("the model broke")
		case -2:
			bad = append(bad, inference.BadRow{Row: i, Reason: "x_0 is -2"})
		}
	}
	if len(bad) > 0 {
		return nil, &inference.BadRowsError{Rows: bad}
	}
	y0, y1, s := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range n {
		y0[i], y1[i], s[i] = 2*x0[i], 2*x1[i], x0[i]+x1[i]
	}
	fields := []arrow.Field{{Name: "y_0", Type: arrow.PrimitiveTypes.Float32}, {Name: "y_1", Type: arrow.PrimitiveTypes.Float32}, {Name: "s", Type: arrow.PrimitiveTypes.Float32}}
	cols := []arrow.Array{floats(y0), floats(y1), floats(s)}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec, nil
}

func floats(v []float32) arrow.Array {
	b := array.NewFloat32Builder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(v, nil)
	return b.NewArray()
}

var doublerMeta = oip.ModelMetadata{
	Name: "m", Versions: []string{"1"}, Platform: "onnxruntime_onnx",
	Inputs:  []oip.TensorMetadata{{Name: "x", Datatype: oip.FP32, Shape: []int64{-1, 2}}},
	Outputs: []oip.TensorMetadata{{Name: "y", Datatype: oip.FP32, Shape: []int64{-1, 2}}, {Name: "s", Datatype: oip.FP32, Shape: []int64{-1}}},
}

func newServer(t *testing.T, d *doubler, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(context.Background(), []Model{{Name: "m", Handler: d, Inputs: doublerMeta.Inputs, Outputs: doublerMeta.Outputs}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, ts
}

// gated makes a doubler whose calls wait for the test.
func gated() *doubler {
	return &doubler{started: make(chan int, 100), gate: make(chan struct{})}
}

func inferBody(id string, rows ...[2]float32) string {
	var vals []string
	for _, r := range rows {
		vals = append(vals, fmt.Sprint(r[0]), fmt.Sprint(r[1]))
	}
	return fmt.Sprintf(`{"id":%q,"inputs":[{"name":"x","datatype":"FP32","shape":[%d,2],"data":[%s]}]}`, id, len(rows), strings.Join(vals, ","))
}

type answer struct {
	status int
	body   []byte
}

func do(t *testing.T, method, url, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return answer{}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return answer{}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	return answer{resp.StatusCode, data}
}

// checkInfer checks a 200 answer to inferBody(id, rows...).
func checkInfer(t *testing.T, a answer, id string, rows ...[2]float32) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Errorf("status %d: %s", a.status, a.body)
		return
	}
	resp, err := oip.ParseResponse(a.body)
	if err != nil {
		t.Errorf("%v: %s", err, a.body)
		return
	}
	if resp.ID != id || resp.ModelName != "m" || resp.ModelVersion != "1" {
		t.Errorf("response id %q model %q version %q, want %q m 1", resp.ID, resp.ModelName, resp.ModelVersion, id)
	}
	y, s := resp.Output("y"), resp.Output("s")
	if y == nil || s == nil {
		t.Errorf("outputs missing: %s", a.body)
		return
	}
	var wantY, wantS []float32
	for _, r := range rows {
		wantY = append(wantY, 2*r[0], 2*r[1])
		wantS = append(wantS, r[0]+r[1])
	}
	if fmt.Sprint(y.Shape, y.Float32s, s.Shape, s.Float32s) != fmt.Sprint([]int64{int64(len(rows)), 2}, wantY, []int64{int64(len(rows))}, wantS) {
		t.Errorf("got y %v %v s %v %v, want y %v s %v", y.Shape, y.Float32s, s.Shape, s.Float32s, wantY, wantS)
	}
}

// checkError checks an error answer: the status and the OIP error shape.
func checkError(t *testing.T, a answer, status int, contains string) {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal(a.body, &e); err != nil || len(e) != 1 {
		t.Errorf("status %d body %s: want one field, error", a.status, a.body)
		return
	}
	msg, _ := e["error"].(string)
	if a.status != status || !strings.Contains(msg, contains) {
		t.Errorf("status %d error %q, want %d with %q", a.status, msg, status, contains)
	}
}

func TestEndpoints(t *testing.T) {
	d := &doubler{}
	_, ts := newServer(t, d, Options{})
	for _, path := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/m/ready", "/v2/models/m/versions/1/ready"} {
		if a := do(t, "GET", ts.URL+path, ""); a.status != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, a.status, a.body)
		}
	}
	if a := do(t, "GET", ts.URL+"/v2/models/m/ready", ""); string(a.body) != `{"name":"m","ready":true}` {
		t.Errorf("ready body %s", a.body)
	}
	for _, path := range []string{"/v2/models/m", "/v2/models/m/versions/1"} {
		a := do(t, "GET", ts.URL+path, "")
		var meta oip.ModelMetadata
		if err := json.Unmarshal(a.body, &meta); err != nil || a.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s %v", path, a.status, a.body, err)
		}
		if fmt.Sprintf("%+v", meta) != fmt.Sprintf("%+v", doublerMeta) {
			t.Errorf("metadata %+v, want %+v", meta, doublerMeta)
		}
	}
	checkError(t, do(t, "GET", ts.URL+"/v2/models/nope", ""), http.StatusNotFound, `model "nope" not found`)
	checkError(t, do(t, "GET", ts.URL+"/v2/models/m/versions/2", ""), http.StatusNotFound, `no version "2"`)
	checkError(t, do(t, "POST", ts.URL+"/v2/models/nope/infer", inferBody("a", [2]float32{1, 2})), http.StatusNotFound, "not found")

	rows := [][2]float32{{1, 2}, {3.5, -4}}
	checkInfer(t, do(t, "POST", ts.URL+"/v2/models/m/infer", inferBody("a", rows...)), "a", rows...)
	checkInfer(t, do(t, "POST", ts.URL+"/v2/models/m/versions/1/infer", inferBody("b", rows...)), "b", rows...)

	// Asking for one output returns that one only.
	a := do(t, "POST", ts.URL+"/v2/models/m/infer", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[[1,2]]}],"outputs":[{"name":"s"}]}`)
	resp, err := oip.ParseResponse(a.body)
	if err != nil || len(resp.Outputs) != 1 || resp.Outputs[0].Name != "s" || fmt.Sprint(resp.Outputs[0].Float32s) != "[3]" {
		t.Errorf("outputs [s]: %d %s %v", a.status, a.body, err)
	}

	metrics := string(do(t, "GET", ts.URL+"/metrics", "").body)
	for _, want := range []string{
		`mlsteps_serve_requests_total{model="m",code="200"} 3`,
		`mlsteps_serve_request_failures_total{model="m"} 0`, // the 404 for "nope" is not m's
		`mlsteps_serve_request_duration_seconds_count{model="m"} 3`,
		`mlsteps_serve_batch_rows_bucket{model="m",le="2"} 3`,
		`mlsteps_serve_batch_rows_sum{model="m"} 5`,
		`mlsteps_inference_num_inferences{model_id="doubler"} 5`,
		`mlsteps_serve_queued_requests{model="m"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, metrics)
		}
	}
}

func TestBadTensors(t *testing.T) {
	d := &doubler{}
	_, ts := newServer(t, d, Options{})
	for _, c := range []struct{ name, body, want string }{
		{"not json", `{"inputs":`, "bad request"},
		{"datatype", `{"inputs":[{"name":"x","datatype":"FP64","shape":[1,2],"data":[1,2]}]}`, `input "x": datatype FP64, the model takes FP32`},
		{"unknown datatype", `{"inputs":[{"name":"x","datatype":"FP33","shape":[1,2],"data":[1,2]}]}`, "FP33"},
		{"width", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]}]}`, `input "x": shape [1 3], the model takes [-1 2]`},
		{"rank", `{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,2]}]}`, "shape [2], the model takes [-1 2]"},
		{"count", `{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[1,2]}]}`, "bad request"},
		{"no rows", `{"inputs":[{"name":"x","datatype":"FP32","shape":[0,2],"data":[]}]}`, "holds no rows"},
		{"unknown input", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2]},{"name":"z","datatype":"FP32","shape":[1],"data":[1]}]}`, `no input "z"`},
		{"missing input", `{"inputs":[]}`, `missing input "x"`},
		{"twice", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2]},{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2]}]}`, "given twice"},
		{"unknown output", `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2]}],"outputs":[{"name":"q"}]}`, `no output "q"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkError(t, do(t, "POST", ts.URL+"/v2/models/m/infer", c.body), http.StatusBadRequest, c.want)
		})
	}
	if n := d.calls.Load(); n != 0 {
		t.Errorf("the model ran %d times for bad requests", n)
	}
}

func TestSizeLimit(t *testing.T) {
	d := &doubler{}
	_, ts := newServer(t, d, Options{MaxRequestBytes: 200})
	small := [][2]float32{{1, 2}}
	checkInfer(t, do(t, "POST", ts.URL+"/v2/models/m/infer", inferBody("a", small...)), "a", small...)
	big := make([][2]float32, 50)
	checkError(t, do(t, "POST", ts.URL+"/v2/models/m/infer", inferBody("b", big...)), http.StatusRequestEntityTooLarge, "over 200 bytes")
	if n := d.calls.Load(); n != 1 {
		t.Errorf("model calls %d, want 1", n)
	}
}

func TestTimeout(t *testing.T) {
	d := gated()
	_, ts := newServer(t, d, Options{RequestTimeout: 50 * time.Millisecond})
	defer close(d.gate)
	checkError(t, do(t, "POST", ts.URL+"/v2/models/m/infer", inferBody("a", [2]float32{1, 2})), http.StatusGatewayTimeout, "not answered within 50ms")
}

// send posts inferBody(id, rows...) in the background.
func send(t *testing.T, url, id string, rows ...[2]float32) <-chan answer {
	ch := make(chan answer, 1)
	go func() { ch <- do(t, "POST", url+"/v2/models/m/infer", inferBody(id, rows...)) }()
	return ch
}

// waitQueued waits until n requests are queued for m.
func waitQueued(s *Server, n int64) {
	for s.models["m"].pending.Load() != n {
		time.Sleep(time.Millisecond)
	}
}

func TestDynamicBatching(t *testing.T) {
	const n = 20
	d := gated()
	s, ts := newServer(t, d, Options{MaxBatch: 64})
	answers := make([]<-chan answer, n)
	for i := range n {
		answers[i] = send(t, ts.URL, fmt.Sprint(i), [2]float32{float32(i), 1})
	}
	// The first batch holds the requests that came first; the others
	// queue behind it and make one batch when it is done.
	first := <-d.started
	waitQueued(s, int64(n-first))
	close(d.gate)
	for i, ch := range answers {
		checkInfer(t, <-ch, fmt.Sprint(i), [2]float32{float32(i), 1})
	}
	if calls := d.calls.Load(); calls >= n {
		t.Errorf("%d requests made %d model calls", n, calls)
	}
	if len(d.started) > 0 && first+<-d.started != n {
		t.Errorf("batches do not add up to %d rows", n)
	}
}

func TestMaxBatchSplits(t *testing.T) {
	d := gated()
	s, ts := newServer(t, d, Options{MaxBatch: 4})
	blocker := send(t, ts.URL, "blocker", [2]float32{0, 0})
	<-d.started
	var answers []<-chan answer
	for i := range 10 {
		answers = append(answers, send(t, ts.URL, fmt.Sprint(i), [2]float32{float32(i), 2}))
	}
	waitQueued(s, 10)
	close(d.gate)
	checkInfer(t, <-blocker, "blocker", [2]float32{0, 0})
	for i, ch := range answers {
		checkInfer(t, <-ch, fmt.Sprint(i), [2]float32{float32(i), 2})
	}
	close(d.started)
	for rows := range d.started {
		if rows > 4 {
			t.Errorf("a batch of %d rows, over MaxBatch 4", rows)
		}
	}
}

func TestFailures(t *testing.T) {
	d := gated()
	s, ts := newServer(t, d, Options{})
	blocker := send(t, ts.URL, "blocker", [2]float32{0, 0})
	<-d.started
	// One batch: a good request and one with a bad row; the bad one is
	// refused, the good one runs again.
	good := send(t, ts.URL, "good", [2]float32{1, 1})
	waitQueued(s, 1)
	bad := send(t, ts.URL, "bad", [2]float32{5, 5}, [2]float32{-2, 0})
	waitQueued(s, 2)
	close(d.gate)
	checkInfer(t, <-blocker, "blocker", [2]float32{0, 0})
	checkInfer(t, <-good, "good", [2]float32{1, 1})
	checkError(t, <-bad, http.StatusBadRequest, "row 1: x_0 is -2")
	// A batch whose Run fails fails its requests with 500.
	checkError(t, do(t, "POST", ts.URL+"/v2/models/m/infer", inferBody("boom", [2]float32{-1, 0})), http.StatusInternalServerError, "the model broke")
	checkInfer(t, do(t, "POST", ts.URL+"/v2/models/m/infer", inferBody("after", [2]float32{2, 3})), "after", [2]float32{2, 3})
}

func TestShutdownFinishesInFlight(t *testing.T) {
	d := gated()
	s, err := New(context.Background(), []Model{{Name: "m", Handler: d, Inputs: doublerMeta.Inputs, Outputs: doublerMeta.Outputs}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	inflight := send(t, url, "inflight", [2]float32{3, 4})
	<-d.started
	cancel()
	for !s.closing.Load() {
		time.Sleep(time.Millisecond)
	}
	close(d.gate)
	checkInfer(t, <-inflight, "inflight", [2]float32{3, 4})
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := http.Post(url+"/v2/models/m/infer", "application/json", bytes.NewReader([]byte(inferBody("late", [2]float32{1, 1})))); err == nil {
		t.Error("a request after shutdown was answered")
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

func TestNewRefusesBadModels(t *testing.T) {
	for _, c := range []struct {
		name   string
		models []Model
	}{
		{"none", nil},
		{"no handler", []Model{{Name: "m", Inputs: doublerMeta.Inputs, Outputs: doublerMeta.Outputs}}},
		{"twice", []Model{{Name: "m", Handler: &doubler{}, Inputs: doublerMeta.Inputs, Outputs: doublerMeta.Outputs}, {Name: "m", Handler: &doubler{}, Inputs: doublerMeta.Inputs, Outputs: doublerMeta.Outputs}}},
		{"rank 3", []Model{{Name: "m", Handler: &doubler{}, Inputs: []oip.TensorMetadata{{Name: "x", Datatype: oip.FP32, Shape: []int64{-1, 2, 2}}}, Outputs: doublerMeta.Outputs}}},
	} {
		if s, err := New(context.Background(), c.models, Options{}); err == nil {
			s.Close()
			t.Errorf("%s: New accepted it", c.name)
		}
	}
}

func TestWorkersWithoutDelay(t *testing.T) {
	d := &doubler{}
	_, ts := newServer(t, d, Options{Workers: 3, MaxQueueDelay: -1, MaxBatch: 8})
	var answers []<-chan answer
	for i := range 40 {
		answers = append(answers, send(t, ts.URL, fmt.Sprint(i), [2]float32{float32(i), -float32(i)}, [2]float32{1, float32(i)}))
	}
	for i, ch := range answers {
		checkInfer(t, <-ch, fmt.Sprint(i), [2]float32{float32(i), -float32(i)}, [2]float32{1, float32(i)})
	}
}

func TestShuttingDownIsNotReady(t *testing.T) {
	s, ts := newServer(t, &doubler{}, Options{})
	s.closing.Store(true)
	checkError(t, do(t, "GET", ts.URL+"/v2/health/ready", ""), http.StatusServiceUnavailable, "shutting down")
	if a := do(t, "GET", ts.URL+"/v2/models/m/ready", ""); a.status != http.StatusServiceUnavailable || string(a.body) != `{"name":"m","ready":false}` {
		t.Errorf("model ready while shutting down: %d %s", a.status, a.body)
	}
	checkError(t, do(t, "POST", ts.URL+"/v2/models/m/infer", inferBody("a", [2]float32{1, 2})), http.StatusServiceUnavailable, "shutting down")
}
