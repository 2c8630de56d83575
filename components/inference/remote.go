package inference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/mlsteps/mlsteps/components/oip"
)

// RemoteHandler runs a model served over the Open Inference Protocol
// (KServe V2 REST: KServe, Triton, MLServer, `mlsteps serve`): each batch
// is one POST to {BaseURL}/v2/models/{ModelName}[/versions/{ModelVersion}]/infer.
// Every field but BaseURL and ModelName has a usable zero value.
//
// Requests go through a token bucket (RateLimit, Burst), at most
// MaxConcurrency at a time, each attempt bounded by Timeout. An attempt
// that fails in a way the next one may not (a refused, reset or dropped
// connection, a timeout, HTTP 408, 429 or 5xx) is retried per Retry, after
// a full-jitter backoff or the server's Retry-After, under the same
// request id. Other answers are final: a 400 fails the batch at once with
// the server's error text (a *RemoteError). Failed attempts in a row open
// the circuit breaker (Breaker): while it is open Run fails at once with
// ErrBreakerOpen, and after its cooldown one probe request is let through,
// whose success closes it. A Run that fails this way fails its batch,
// which the engine sends to the dead letters with the error as reason.
// Rows with a null feature are bad rows (*BadRowsError), as in
// ONNXHandler; ByteSize is 0.
//
// The rate limiter, concurrency bound, breaker, HTTP client and counters
// are made by the first Load and shared by every Model the handler loads:
// change no field after that.
type RemoteHandler struct {
	// ID names the model in results and metrics; empty: ModelName, with
	// ":"+ModelVersion when that is set.
	ID string
	// BaseURL is the server's root, e.g. "http://10.0.0.7:8080" (a path
	// prefix such as a gateway's is kept).
	BaseURL string
	// ModelName and ModelVersion address the model; an empty version
	// lets the server choose.
	ModelName, ModelVersion string
	// Inputs feeds the model's input tensors from columns (one column: an
	// [N] tensor, or [N,1] when the metadata says so; F columns: [N,F]).
	// Empty: every input the model metadata lists, from the column of the
	// same name.
	Inputs []Input
	// Outputs names the output tensors to request and turn into columns
	// ([N] and [N,1]: a column named after the output; [N,C]: C columns
	// "<name>_0".."<name>_<C-1>"). Empty: every output the server
	// returns, unless Classifier is set, which then needs only its own.
	Outputs []string
	// Classifier turns a scores output into a "label" column and one
	// "score_<class>" column per class, as ONNXHandler does. A Label
	// output may hold class indices or class names.
	Classifier *Classifier
	// NoMetadata skips Load's readiness check and metadata request (GET
	// .../ready and GET /v2/models/{name}); Inputs must then name every
	// input, whose datatypes follow the columns' Arrow types.
	NoMetadata bool
	// Header is added to every request (e.g. Authorization).
	Header http.Header
	// Client sends the requests; nil: a client of our own that keeps
	// enough idle connections for MaxConcurrency.
	Client *http.Client
	// Timeout bounds one attempt, from sending to the whole body read;
	// 0: 30s.
	Timeout time.Duration
	// RateLimit is the most requests per second sent (attempts, retries
	// and Load's requests included); 0: no limit. Burst is the token
	// bucket's size, the requests that may go at once; 0: 1.
	RateLimit float64
	Burst     int
	// MaxConcurrency bounds the requests in flight, across the engine's
	// workers; 0: no bound but the workers.
	MaxConcurrency int
	// Retry is the retry policy of every request.
	Retry RetryPolicy
	// Breaker is the circuit breaker's policy.
	Breaker BreakerPolicy
	// MinBatch and MaxBatch are the batching preferences BatchSizes
	// reports (0: none).
	MinBatch, MaxBatch int

	mu sync.Mutex // guards rc
	rc *remoteClient
}

// RetryPolicy says how often and how patiently a request is tried.
type RetryPolicy struct {
	// MaxAttempts counts every attempt, the first included; 0: 4, 1: no
	// retries.
	MaxAttempts int
	// Before retry k (1, 2, ...) the handler sleeps a random time between
	// 0 and min(MaxBackoff, BaseBackoff·2^(k-1)) ("full jitter"), or
	// what the server's Retry-After says, capped at MaxBackoff.
	// 0: 100ms and 5s.
	BaseBackoff, MaxBackoff time.Duration
}

// BreakerPolicy configures the circuit breaker.
type BreakerPolicy struct {
	// Failures is how many failed attempts in a row open the breaker
	// (transport errors, timeouts, 408, 429, 5xx; any other answer counts
	// as a success); 0: 5; negative: no breaker.
	Failures int
	// Cooldown is how long the breaker stays open before a probe; 0: 5s.
	Cooldown time.Duration
}

// ErrBreakerOpen is the error (wrapped) of a Run refused because the
// circuit breaker is open.
var ErrBreakerOpen = errors.New("circuit breaker open")

// RemoteError is a server's non-2xx answer.
type RemoteError struct {
	StatusCode int
	// Message is the body's "error" text, else the body (cut to 512
	// bytes).
	Message string
}

func (e *RemoteError) Error() string {
	s := "HTTP " + strconv.Itoa(e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		s += " " + t
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ModelID implements ModelHandler.
func (h *RemoteHandler) ModelID() string {
	switch {
	case h.ID != "":
		return h.ID
	case h.ModelName == "":
		return "remote"
	case h.ModelVersion != "":
		return h.ModelName + ":" + h.ModelVersion
	}
	return h.ModelName
}

// BatchSizes implements ModelHandler.
func (h *RemoteHandler) BatchSizes() (int, int) { return h.MinBatch, h.MaxBatch }

// Stats returns the handler's counters so far (zero before the first
// Load).
func (h *RemoteHandler) Stats() RemoteStats {
	h.mu.Lock()
	rc := h.rc
	h.mu.Unlock()
	if rc == nil {
		return RemoteStats{}
	}
	return rc.stats()
}

// client returns the shared client, making it on first use.
func (h *RemoteHandler) client() (*remoteClient, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rc != nil {
		return h.rc, nil
	}
	if h.ModelName == "" {
		return nil, errors.New("remote handler: no model name")
	}
	u, err := url.Parse(h.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("remote handler: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("remote handler: base URL %q is not http(s)://host[:port][/path]", h.BaseURL)
	}
	if h.RateLimit < 0 || math.IsNaN(h.RateLimit) || math.IsInf(h.RateLimit, 0) {
		return nil, fmt.Errorf("remote handler: rate limit %v", h.RateLimit)
	}
	path := "/v2/models/" + url.PathEscape(h.ModelName)
	if h.ModelVersion != "" {
		path += "/versions/" + url.PathEscape(h.ModelVersion)
	}
	h.rc = newRemoteClient(h, strings.TrimSuffix(u.String(), "/")+path)
	return h.rc, nil
}

// remoteFeed is one input tensor and how to build it.
type remoteFeed struct {
	spec oip.InputSpec
	cols []string
}

type remoteModel struct {
	id    string
	rc    *remoteClient
	feeds []remoteFeed
	// ask is the outputs to request (nil: all); cols the outputs that
	// become columns, in order (nil: every one returned, in its order).
	ask   []oip.RequestedOutput
	cols  []string
	class *Classifier
}

// Load implements ModelHandler: it checks that the model is ready and
// reads its metadata (unless NoMetadata), then plans the tensors: input
// datatypes and ranks come from the metadata. A missing model, an input
// or output the model does not have, or columns that do not fit an
// input's shape fail here, before any batch.
func (h *RemoteHandler) Load(ctx context.Context, _ *Metrics) (Model, error) {
	rc, err := h.client()
	if err != nil {
		return nil, err
	}
	id := h.ModelID()
	var meta *oip.ModelMetadata
	if !h.NoMetadata {
		ready, err := rc.call(ctx, http.MethodGet, rc.modelURL+"/ready", nil)
		if err == nil {
			// The protocol answers with the status alone; KServe adds
			// {"name": ..., "ready": bool}, which must not say false.
			var body struct{ Ready *bool }
			if json.Unmarshal(ready, &body) == nil && body.Ready != nil && !*body.Ready {
				err = errors.New(`the server says "ready": false`)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("remote model %s at %s is not ready: %w", id, rc.modelURL, err)
		}
		data, err := rc.call(ctx, http.MethodGet, rc.modelURL, nil)
		if err != nil {
			return nil, fmt.Errorf("remote model %s: metadata: %w", id, err)
		}
		meta = new(oip.ModelMetadata)
		if err := json.Unmarshal(data, meta); err != nil {
			return nil, fmt.Errorf("remote model %s: decode metadata: %w", id, err)
		}
	}
	// Metadata listing no inputs or no outputs (MLServer's, unless the
	// model settings declare them) says nothing about them: check nothing.
	metaIn, metaOut := meta, meta
	if meta != nil && len(meta.Inputs) == 0 {
		metaIn = nil
	}
	if meta != nil && len(meta.Outputs) == 0 {
		metaOut = nil
	}
	m := &remoteModel{id: id, rc: rc, class: h.Classifier}
	if m.feeds, err = planFeeds(id, h.Inputs, metaIn); err != nil {
		return nil, err
	}
	if err := m.planOutputs(h, metaOut); err != nil {
		return nil, err
	}
	return m, nil
}

func names(ts []oip.TensorMetadata) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.Name
	}
	return strings.Join(s, ", ")
}

func planFeeds(id string, inputs []Input, meta *oip.ModelMetadata) ([]remoteFeed, error) {
	if len(inputs) == 0 {
		if meta == nil {
			return nil, fmt.Errorf("remote model %s: without metadata, Inputs must name the inputs", id)
		}
		for _, in := range meta.Inputs {
			inputs = append(inputs, Input{Name: in.Name})
		}
	}
	feeds := make([]remoteFeed, 0, len(inputs))
	for _, in := range inputs {
		cols := in.Columns
		if len(cols) == 0 {
			cols = []string{in.Name}
		}
		spec := oip.InputSpec{Name: in.Name, Columns: cols}
		if meta != nil {
			mi := meta.Input(in.Name)
			if mi == nil {
				return nil, fmt.Errorf("remote model %s has no input %q (it has %s)", id, in.Name, names(meta.Inputs))
			}
			spec.Datatype, spec.Rank = mi.Datatype, len(mi.Shape)
			switch {
			case spec.Rank < 1 || spec.Rank > 2:
				return nil, fmt.Errorf("remote model %s input %q: shape %v is not [N] or [N,F]", id, in.Name, mi.Shape)
			case spec.Rank == 1 && len(cols) > 1:
				return nil, fmt.Errorf("remote model %s input %q has shape %v: it takes one column, %d named", id, in.Name, mi.Shape, len(cols))
			case spec.Rank == 2 && mi.Shape[1] > 0 && int(mi.Shape[1]) != len(cols):
				if len(in.Columns) == 0 {
					return nil, fmt.Errorf("remote model %s input %q is %d wide: name its columns in Inputs", id, in.Name, mi.Shape[1])
				}
				return nil, fmt.Errorf("remote model %s input %q takes %d values per row, %d columns named", id, in.Name, mi.Shape[1], len(cols))
			}
		}
		feeds = append(feeds, remoteFeed{spec: spec, cols: cols})
	}
	return feeds, nil
}

func (m *remoteModel) planOutputs(h *RemoteHandler, meta *oip.ModelMetadata) error {
	var want []string
	add := func(name string) error {
		if meta != nil && meta.Output(name) == nil {
			return fmt.Errorf("remote model %s has no output %q (it has %s)", m.id, name, names(meta.Outputs))
		}
		if !slices.Contains(want, name) {
			want = append(want, name)
		}
		return nil
	}
	if c := h.Classifier; c != nil {
		if len(c.Classes) == 0 || c.Scores == "" {
			return fmt.Errorf("remote model %s: a classifier needs Classes and Scores", m.id)
		}
		if err := add(c.Scores); err != nil {
			return err
		}
		if meta != nil {
			if s := meta.Output(c.Scores).Shape; len(s) == 2 && s[1] > 0 && int(s[1]) != len(c.Classes) {
				return fmt.Errorf("remote model %s: output %q has %d scores per row for %d classes", m.id, c.Scores, s[1], len(c.Classes))
			}
		}
		if c.Label != "" {
			if err := add(c.Label); err != nil {
				return err
			}
		}
	}
	for _, o := range h.Outputs {
		if err := add(o); err != nil {
			return err
		}
	}
	m.cols = h.Outputs
	if len(want) > 0 {
		m.ask = make([]oip.RequestedOutput, len(want))
		for i, name := range want {
			m.ask[i] = oip.RequestedOutput{Name: name}
		}
	} else if meta != nil {
		// All outputs, in the metadata's order, so every batch's columns
		// come in the same order whatever order a response has.
		for _, o := range meta.Outputs {
			m.cols = append(m.cols, o.Name)
		}
	}
	return nil
}

func (m *remoteModel) ByteSize() int64 { return 0 }

// Close lets idle connections go; the client stays usable by the
// handler's other models.
func (m *remoteModel) Close() error {
	if m.rc.own {
		m.rc.client.CloseIdleConnections()
	}
	return nil
}

// Run implements Model.
func (m *remoteModel) Run(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	n := int(batch.NumRows())
	var bad []BadRow
	for _, f := range m.feeds {
		for _, name := range f.cols {
			idx := batch.Schema().FieldIndices(name)
			if len(idx) == 0 {
				return nil, fmt.Errorf("remote model %s input %q: column %q not in the batch", m.id, f.spec.Name, name)
			}
			if col := batch.Column(idx[0]); col.NullN() > 0 {
				for r := range n {
					if col.IsNull(r) {
						bad = append(bad, BadRow{Row: r, Reason: fmt.Sprintf("column %q is null", name)})
					}
				}
			}
		}
	}
	if len(bad) > 0 {
		return nil, &BadRowsError{Rows: dedupe(bad)}
	}
	req := oip.InferRequest{ID: m.rc.nextID(m.id), Inputs: make([]oip.Tensor, len(m.feeds)), Outputs: m.ask}
	size := 256
	for i, f := range m.feeds {
		t, err := oip.FromRecord(batch, f.spec)
		if err != nil {
			return nil, fmt.Errorf("remote model %s: %w", m.id, err)
		}
		req.Inputs[i] = t
		size += 16 * t.Len()
	}
	body, err := req.AppendJSON(make([]byte, 0, size))
	if err != nil {
		return nil, fmt.Errorf("remote model %s: encode request: %w", m.id, err)
	}
	data, err := m.rc.call(ctx, http.MethodPost, m.rc.modelURL+"/infer", body)
	if err != nil {
		return nil, fmt.Errorf("remote model %s: %w", m.id, err)
	}
	resp, err := oip.ParseResponse(data)
	if err != nil {
		return nil, fmt.Errorf("remote model %s: decode response: %w", m.id, err)
	}
	if resp.ID != "" && resp.ID != req.ID {
		return nil, fmt.Errorf("remote model %s: response id %q answers another request than %q", m.id, resp.ID, req.ID)
	}
	rec, err := m.columns(&resp, n)
	if err != nil {
		return nil, fmt.Errorf("remote model %s: %w", m.id, err)
	}
	return rec, nil
}

// columns turns a response into the result record: label and scores
// first when classifying, then the outputs.
func (m *remoteModel) columns(resp *oip.InferResponse, n int) (arrow.RecordBatch, error) {
	var (
		fields []arrow.Field
		arrs   []arrow.Array
	)
	defer func() {
		for _, a := range arrs {
			a.Release()
		}
	}()
	if c := m.class; c != nil {
		labels, scores, err := m.classify(resp, n)
		if err != nil {
			return nil, err
		}
		fields = append(fields, arrow.Field{Name: "label", Type: arrow.BinaryTypes.String})
		arrs = append(arrs, labelArray(labels, c.Classes))
		for j, cl := range c.Classes {
			fields = append(fields, arrow.Field{Name: "score_" + cl, Type: arrow.PrimitiveTypes.Float32})
			arrs = append(arrs, float32Array(scores[j]))
		}
	}
	outs := m.cols
	if outs == nil && m.class == nil {
		for _, t := range resp.Outputs {
			outs = append(outs, t.Name)
		}
	}
	for _, name := range outs {
		t := resp.Output(name)
		if t == nil {
			return nil, fmt.Errorf("the response has no output %q", name)
		}
		fs, as, err := t.ToColumns(n)
		if err != nil {
			return nil, err
		}
		fields = append(fields, fs...)
		arrs = append(arrs, as...)
	}
	return array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, int64(n)), nil
}

// classify reads the classifier's outputs: each row's class index and
// the scores, one column per class.
func (m *remoteModel) classify(resp *oip.InferResponse, n int) ([]int32, [][]float32, error) {
	c := m.class
	k := len(c.Classes)
	st := resp.Output(c.Scores)
	if st == nil {
		return nil, nil, fmt.Errorf("the response has no output %q", c.Scores)
	}
	if err := st.Check(); err != nil {
		return nil, nil, err
	}
	if len(st.Shape) != 2 || st.Shape[0] != int64(n) || st.Shape[1] != int64(k) {
		return nil, nil, fmt.Errorf("output %q has shape %v, want [%d,%d] (%d rows, %d classes)", c.Scores, st.Shape, n, k, n, k)
	}
	var flat []float32
	switch st.Datatype {
	case oip.FP16, oip.BF16, oip.FP32:
		flat = st.Float32s
	case oip.FP64:
		flat = make([]float32, len(st.Float64s))
		for i, v := range st.Float64s {
			flat[i] = float32(v)
		}
	default:
		return nil, nil, fmt.Errorf("output %q: %s scores, want floating point", c.Scores, st.Datatype)
	}
	labels := make([]int32, n)
	if c.Label == "" {
		for r := range n {
			row := flat[r*k : r*k+k]
			best := 0
			for j, v := range row {
				if v > row[best] {
					best = j
				}
			}
			labels[r] = int32(best)
		}
		return labels, oip.Split(flat, n, k), nil
	}
	lt := resp.Output(c.Label)
	if lt == nil {
		return nil, nil, fmt.Errorf("the response has no output %q", c.Label)
	}
	if err := lt.Check(); err != nil {
		return nil, nil, err
	}
	if len(lt.Shape) < 1 || len(lt.Shape) > 2 || lt.Shape[0] != int64(n) || oip.NumElements(lt.Shape) != int64(n) {
		return nil, nil, fmt.Errorf("output %q has shape %v, want [%d] or [%d,1]", c.Label, lt.Shape, n, n)
	}
	for r := range n {
		idx := -1
		switch {
		case lt.Strings != nil:
			idx = slices.Index(c.Classes, lt.Strings[r])
			if idx < 0 {
				return nil, nil, fmt.Errorf("output %q row %d: %q is not one of the classes", c.Label, r, lt.Strings[r])
			}
		case lt.Ints != nil:
			idx = int(max(min(lt.Ints[r], int64(k)), -1))
		case lt.Uints != nil:
			idx = int(min(lt.Uints[r], uint64(k)))
		case lt.Float32s != nil:
			idx = intIndex(float64(lt.Float32s[r]), k)
		case lt.Float64s != nil:
			idx = intIndex(lt.Float64s[r], k)
		default:
			return nil, nil, fmt.Errorf("output %q: %s labels, want class indices or names", c.Label, lt.Datatype)
		}
		if idx < 0 || idx >= k {
			return nil, nil, fmt.Errorf("output %q row %d: predicted class index out of %d classes", c.Label, r, k)
		}
		labels[r] = int32(idx)
	}
	return labels, oip.Split(flat, n, k), nil
}

// intIndex is v as a class index, or -1 when it is not one.
func intIndex(v float64, k int) int {
	if v != math.Trunc(v) || v < 0 || v >= float64(k) {
		return -1
	}
	return int(v)
}
