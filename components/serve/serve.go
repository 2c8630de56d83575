package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/oip"
)

// Model is one model the server serves.
type Model struct {
	// Name addresses the model in URLs.
	Name string
	// Version is the one version served; "1" when empty. A request naming
	// another version is a 404.
	Version string
	// Platform is reported in the metadata; "onnxruntime_onnx" when empty.
	Platform string
	// Handler loads the model. Its Model reads the columns of the input
	// tensors and writes the columns of the output tensors (see the
	// package doc for their names).
	Handler inference.ModelHandler
	// Inputs and Outputs are the model's tensors, [N] or [N,F] with -1
	// for a dimension of any size; the first is the batch.
	Inputs, Outputs []oip.TensorMetadata
}

// Options configure a Server; the zero value of each is a default.
type Options struct {
	// MaxBatch is the most rows one model call gathers; 0: 64.
	MaxBatch int
	// MaxQueueDelay is how long a request may wait for others to join its
	// batch; 0: 2ms; negative: no wait (only requests already queued join).
	MaxQueueDelay time.Duration
	// Workers is the model calls that may run at once per model; 0: 1.
	Workers int
	// MaxRequestBytes bounds a request body; 0: 8 MiB.
	MaxRequestBytes int64
	// RequestTimeout bounds a request from its arrival to its answer; 0: 10s.
	RequestTimeout time.Duration
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// once its context ends; 0: 30s.
	ShutdownTimeout time.Duration
	// Logger receives failed batches; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 64
	}
	if o.MaxQueueDelay == 0 {
		o.MaxQueueDelay = 2 * time.Millisecond
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = 8 << 20
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Server answers Open Inference Protocol requests for its models. It is
// an http.Handler; Serve runs it on a listener with graceful shutdown.
type Server struct {
	opts    Options
	models  map[string]*served
	names   []string // in the order given, for /metrics
	mux     *http.ServeMux
	engine  *inference.Metrics
	closing atomic.Bool
	stop    chan struct{} // closed by Close: batchers return
	runCtx  context.Context
	cancel  context.CancelFunc
	workers sync.WaitGroup
	closed  sync.Once
}

// served is a loaded model with its queue.
type served struct {
	Model
	meta    oip.ModelMetadata
	model   inference.Model
	queue   chan *call
	pending atomic.Int64 // requests queued, not yet taken by a batcher
	stats   modelStats
}

// call is one request waiting for its batch.
type call struct {
	ctx    context.Context
	rec    arrow.RecordBatch // the request's input columns
	rows   int
	queued time.Time
	done   chan result // buffered: a batcher never waits for the handler
}

type result struct {
	out    arrow.RecordBatch // the request's rows of the output
	status int
	err    error
}

// New checks and loads models and starts their batchers. Close the
// server when done.
func New(ctx context.Context, models []Model, opts Options) (*Server, error) {
	if len(models) == 0 {
		return nil, errors.New("serve: no models")
	}
	s := &Server{opts: opts.withDefaults(), models: map[string]*served{}, engine: inference.NewMetrics(), stop: make(chan struct{})}
	s.runCtx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, m := range models {
		if err := check(m); err != nil {
			s.Close()
			return nil, err
		}
		if _, dup := s.models[m.Name]; dup {
			s.Close()
			return nil, fmt.Errorf("serve: model %q given twice", m.Name)
		}
		if m.Version == "" {
			m.Version = "1"
		}
		if m.Platform == "" {
			m.Platform = "onnxruntime_onnx"
		}
		loaded, err := m.Handler.Load(ctx, s.engine)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("serve: load model %q: %w", m.Name, err)
		}
		sm := &served{Model: m, model: loaded, queue: make(chan *call, 4*s.opts.MaxBatch),
			meta: oip.ModelMetadata{Name: m.Name, Versions: []string{m.Version}, Platform: m.Platform, Inputs: m.Inputs, Outputs: m.Outputs}}
		s.models[m.Name] = sm
		s.names = append(s.names, m.Name)
	}
	for _, name := range s.names {
		for range s.opts.Workers {
			s.workers.Add(1)
			go s.batcher(s.models[name])
		}
	}
	s.routes()
	return s, nil
}

func check(m Model) error {
	if m.Name == "" || strings.Contains(m.Name, "/") {
		return fmt.Errorf("serve: model name %q: want a non-empty name without /", m.Name)
	}
	if m.Handler == nil {
		return fmt.Errorf("serve: model %q has no handler", m.Name)
	}
	if len(m.Inputs) == 0 || len(m.Outputs) == 0 {
		return fmt.Errorf("serve: model %q declares no inputs or no outputs", m.Name)
	}
	for _, ts := range [][]oip.TensorMetadata{m.Inputs, m.Outputs} {
		for _, t := range ts {
			if !t.Datatype.Valid() {
				return fmt.Errorf("serve: model %q tensor %q: unknown datatype %q", m.Name, t.Name, t.Datatype)
			}
			if len(t.Shape) < 1 || len(t.Shape) > 2 {
				return fmt.Errorf("serve: model %q tensor %q: shape %v is not [N] or [N,F]", m.Name, t.Name, t.Shape)
			}
		}
	}
	return nil
}

// Close stops the batchers and closes the models. Requests still waiting
// are answered 503; call it after Serve has returned.
func (s *Server) Close() error {
	var err error
	s.closed.Do(func() {
		s.closing.Store(true)
		close(s.stop)
		s.workers.Wait()
		s.cancel()
		for _, name := range s.names {
			err = errors.Join(err, s.models[name].model.Close())
		}
	})
	return err
}

// Serve answers requests on ln until ctx ends, then stops accepting,
// waits for the requests in flight (at most Options.ShutdownTimeout) and
// returns nil, or the error that stopped it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.closing.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /v2/health/live", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	s.mux.HandleFunc("GET /v2/health/ready", s.ready)
	s.mux.HandleFunc("GET /v2", s.serverMeta)
	s.mux.HandleFunc("GET /metrics", s.metrics)
	for _, prefix := range []string{"/v2/models/{name}", "/v2/models/{name}/versions/{version}"} {
		s.mux.HandleFunc("GET "+prefix, s.modelMeta)
		s.mux.HandleFunc("GET "+prefix+"/ready", s.modelReady)
		s.mux.HandleFunc("POST "+prefix+"/infer", s.infer)
	}
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	body, err := json.Marshal(oip.ErrorResponse{Error: msg})
	if err != nil {
		body = []byte(`{"error":"unprintable error"}`)
	}
	writeJSON(w, status, body)
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	if s.closing.Load() {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) serverMeta(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"name":"mlsteps","version":"2","extensions":[]}`))
}

// lookup finds the model a request names, or answers 404.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *served {
	name, version := r.PathValue("name"), r.PathValue("version")
	sm := s.models[name]
	if sm == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q not found", name))
		return nil
	}
	if version != "" && version != sm.Version {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q has no version %q (it serves %q)", name, version, sm.Version))
		return nil
	}
	return sm
}

func (s *Server) modelMeta(w http.ResponseWriter, r *http.Request) {
	sm := s.lookup(w, r)
	if sm == nil {
		return
	}
	body, err := json.Marshal(sm.meta)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) modelReady(w http.ResponseWriter, r *http.Request) {
	sm := s.lookup(w, r)
	if sm == nil {
		return
	}
	ready := !s.closing.Load()
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	body, err := json.Marshal(struct {
		Name  string `json:"name"`
		Ready bool   `json:"ready"`
	}{sm.Name, ready})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, status, body)
}

// infer answers one inference request: it checks the tensors, queues the
// request for a batch and waits for its rows of the output.
func (s *Server) infer(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sm := s.lookup(w, r)
	if sm == nil {
		return
	}
	status, body := s.answer(sm, w, r)
	if status != http.StatusOK {
		writeError(w, status, string(body))
	} else {
		writeJSON(w, status, body)
	}
	sm.stats.request(status, time.Since(start))
}

// answer returns the status and, for 200, the response body, otherwise
// the error text.
func (s *Server) answer(sm *served, w http.ResponseWriter, r *http.Request) (int, []byte) {
	if s.closing.Load() {
		return http.StatusServiceUnavailable, []byte("shutting down")
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxRequestBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return http.StatusRequestEntityTooLarge, fmt.Appendf(nil, "request body over %d bytes", s.opts.MaxRequestBytes)
		}
		return http.StatusBadRequest, fmt.Appendf(nil, "read request: %v", err)
	}
	req, err := oip.ParseRequest(data)
	if err != nil {
		return http.StatusBadRequest, fmt.Appendf(nil, "bad request: %v", err)
	}
	rec, err := sm.columns(&req)
	if err != nil {
		return http.StatusBadRequest, []byte(err.Error())
	}
	defer rec.Release()
	outs, err := sm.wanted(&req)
	if err != nil {
		return http.StatusBadRequest, []byte(err.Error())
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	defer cancel()
	// The call holds its own reference: the batcher may still read the
	// columns after this handler has given up on a timeout.
	rec.Retain()
	c := &call{ctx: ctx, rec: rec, rows: int(rec.NumRows()), queued: time.Now(), done: make(chan result, 1)}
	sm.pending.Add(1)
	select {
	case sm.queue <- c:
	case <-ctx.Done():
		sm.pending.Add(-1)
		rec.Release()
		return http.StatusServiceUnavailable, []byte("queue full: not queued within the request timeout")
	case <-s.stop:
		sm.pending.Add(-1)
		rec.Release()
		return http.StatusServiceUnavailable, []byte("shutting down")
	}
	var res result
	select {
	case res = <-c.done:
	case <-ctx.Done():
		return http.StatusGatewayTimeout, fmt.Appendf(nil, "not answered within %s", s.opts.RequestTimeout)
	case <-s.stop:
		return http.StatusServiceUnavailable, []byte("shutting down")
	}
	if res.err != nil {
		return res.status, []byte(res.err.Error())
	}
	defer res.out.Release()
	resp := oip.InferResponse{ModelName: sm.Name, ModelVersion: sm.Version, ID: req.ID, Outputs: make([]oip.Tensor, len(outs))}
	size := 256
	for i, o := range outs {
		t, err := oip.FromRecord(res.out, oip.InputSpec{Name: o.Name, Columns: outputColumns(o, res.out.Schema()), Datatype: o.Datatype, Rank: len(o.Shape)})
		if err != nil {
			return http.StatusInternalServerError, fmt.Appendf(nil, "model %s output: %v", sm.Name, err)
		}
		resp.Outputs[i] = t
		size += 16 * t.Len()
	}
	body, err := resp.AppendJSON(make([]byte, 0, size))
	if err != nil {
		return http.StatusInternalServerError, fmt.Appendf(nil, "encode response: %v", err)
	}
	return http.StatusOK, body
}

// columns checks a request's inputs against the model's and turns them
// into one record, its columns in the model's input order.
func (sm *served) columns(req *oip.InferRequest) (arrow.RecordBatch, error) {
	byName := make(map[string]*oip.Tensor, len(req.Inputs))
	for i := range req.Inputs {
		t := &req.Inputs[i]
		if sm.meta.Input(t.Name) == nil {
			return nil, fmt.Errorf("model %s has no input %q (it takes %s)", sm.Name, t.Name, tensorNames(sm.Inputs))
		}
		if byName[t.Name] != nil {
			return nil, fmt.Errorf("input %q given twice", t.Name)
		}
		byName[t.Name] = t
	}
	rows := -1
	var (
		fields []arrow.Field
		arrs   []arrow.Array
	)
	release := func() {
		for _, a := range arrs {
			a.Release()
		}
	}
	for _, mi := range sm.Inputs {
		t := byName[mi.Name]
		if t == nil {
			release()
			return nil, fmt.Errorf("missing input %q (model %s takes %s)", mi.Name, sm.Name, tensorNames(sm.Inputs))
		}
		if err := fits(t, mi); err != nil {
			release()
			return nil, err
		}
		switch n := int(t.Shape[0]); {
		case n < 1:
			release()
			return nil, fmt.Errorf("input %q: shape %v holds no rows", t.Name, t.Shape)
		case rows >= 0 && n != rows:
			release()
			return nil, fmt.Errorf("input %q has %d rows, input %q %d", t.Name, n, sm.Inputs[0].Name, rows)
		default:
			rows = n
		}
		f, a, err := t.ToColumns(rows)
		if err != nil {
			release()
			return nil, fmt.Errorf("input %q: %w", t.Name, err)
		}
		fields, arrs = append(fields, f...), append(arrs, a...)
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, int64(rows))
	release()
	return rec, nil
}

// fits checks a tensor's datatype and shape against the model's.
func fits(t *oip.Tensor, mi oip.TensorMetadata) error {
	if t.Datatype != mi.Datatype {
		return fmt.Errorf("input %q: datatype %s, the model takes %s", t.Name, t.Datatype, mi.Datatype)
	}
	ok := len(t.Shape) == len(mi.Shape)
	for i := 0; ok && i < len(t.Shape); i++ {
		ok = mi.Shape[i] < 0 || t.Shape[i] == mi.Shape[i]
	}
	if !ok {
		return fmt.Errorf("input %q: shape %v, the model takes %v", t.Name, t.Shape, mi.Shape)
	}
	return nil
}

// wanted is the outputs a request asks for, all when it names none.
func (sm *served) wanted(req *oip.InferRequest) ([]oip.TensorMetadata, error) {
	if len(req.Outputs) == 0 {
		return sm.Outputs, nil
	}
	outs := make([]oip.TensorMetadata, len(req.Outputs))
	for i, o := range req.Outputs {
		mo := sm.meta.Output(o.Name)
		if mo == nil {
			return nil, fmt.Errorf("model %s has no output %q (it has %s)", sm.Name, o.Name, tensorNames(sm.Outputs))
		}
		outs[i] = *mo
	}
	return outs, nil
}

// outputColumns names the columns an output tensor is built from, as
// Tensor.ToColumns names them; a width the model leaves open is found in
// the schema.
func outputColumns(o oip.TensorMetadata, schema *arrow.Schema) []string {
	width := int64(1)
	if len(o.Shape) == 2 {
		width = o.Shape[1]
	}
	if width < 0 {
		if schema.HasField(o.Name) {
			return []string{o.Name}
		}
		var cols []string
		for j := 0; schema.HasField(o.Name + "_" + strconv.Itoa(j)); j++ {
			cols = append(cols, o.Name+"_"+strconv.Itoa(j))
		}
		return cols
	}
	if width == 1 {
		return []string{o.Name}
	}
	cols := make([]string, width)
	for j := range cols {
		cols[j] = o.Name + "_" + strconv.Itoa(j)
	}
	return cols
}

func tensorNames(ts []oip.TensorMetadata) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = strconv.Quote(t.Name)
	}
	return strings.Join(names, ", ")
}
