package inference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// RefreshHandler serves whichever model a pointer says is current and
// swaps to a new one between batches, like Beam's model updates through
// WatchFilePattern: every batch runs whole on one model, so no row is
// dropped or inferred twice across a swap. The new model is loaded in the
// background while the old one keeps answering; the old one is closed
// once its last batch is done. Results gain a "model_id" column naming
// the model that answered (an inner handler's own model_id wins).
type RefreshHandler struct {
	ID string // "refresh" when empty
	// Current returns the version the pointer names now and a handler
	// for it; a new version string means a new model. It is called at
	// Load and then every Interval.
	Current func(ctx context.Context) (version string, h ModelHandler, err error)
	// Interval between polls; 0 means 30s.
	Interval time.Duration
	// Logger receives swaps and failed polls; nil discards them.
	Logger *slog.Logger

	swaps, failures atomic.Int64
	version         atomic.Value // string: the version being served
}

// ModelID implements ModelHandler.
func (h *RefreshHandler) ModelID() string {
	if h.ID == "" {
		return "refresh"
	}
	return h.ID
}

// BatchSizes implements ModelHandler: no preference.
func (h *RefreshHandler) BatchSizes() (int, int) { return 0, 0 }

// Swaps counts the models swapped in since the handler was made.
func (h *RefreshHandler) Swaps() int64 { return h.swaps.Load() }

// Failures counts polls or loads that failed (the current model stayed).
func (h *RefreshHandler) Failures() int64 { return h.failures.Load() }

// Version is the version being served ("" before the first load).
func (h *RefreshHandler) Version() string { v, _ := h.version.Load().(string); return v }

// served is one loaded version; inflight counts its running batches.
type served struct {
	version  string
	id       string
	model    Model
	inflight sync.WaitGroup
}

type refreshModel struct {
	h       *RefreshHandler
	metrics *Metrics
	log     *slog.Logger

	mu  sync.RWMutex // guards cur; Run holds it for reading while it picks
	cur *served

	stop    context.CancelFunc
	stopped chan struct{}
	retired sync.WaitGroup // closers of replaced models
}

// Load implements ModelHandler: it loads the current version and starts
// polling for new ones.
func (h *RefreshHandler) Load(ctx context.Context, m *Metrics) (Model, error) {
	if h.Current == nil {
		return nil, errors.New("refresh handler: no Current function")
	}
	log := h.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rm := &refreshModel{h: h, metrics: m, log: log, stopped: make(chan struct{})}
	s, err := rm.load(ctx)
	if err != nil {
		return nil, err
	}
	rm.cur = s
	h.version.Store(s.version)
	interval := h.Interval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	// Polling outlives Load's ctx (a run's context) until Close.
	pollCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	rm.stop = cancel
	go rm.poll(pollCtx, interval)
	return rm, nil
}

func (rm *refreshModel) load(ctx context.Context) (*served, error) {
	version, h, err := rm.h.Current(ctx)
	if err != nil {
		return nil, fmt.Errorf("current model: %w", err)
	}
	return rm.loadVersion(ctx, version, h)
}

func (rm *refreshModel) loadVersion(ctx context.Context, version string, h ModelHandler) (*served, error) {
	model, err := load(ctx, h, rm.metrics)
	if err != nil {
		return nil, fmt.Errorf("load model %s (version %s): %w", h.ModelID(), version, err)
	}
	return &served{version: version, id: h.ModelID(), model: model}, nil
}

func (rm *refreshModel) poll(ctx context.Context, interval time.Duration) {
	defer close(rm.stopped)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rm.refresh(ctx)
	}
}

// refresh loads the pointer's version if it is new and swaps it in.
func (rm *refreshModel) refresh(ctx context.Context) {
	version, h, err := rm.h.Current(ctx)
	if err == nil && version == rm.h.Version() {
		return
	}
	var s *served
	if err == nil {
		s, err = rm.loadVersion(ctx, version, h)
	}
	if err != nil {
		if ctx.Err() == nil {
			rm.h.failures.Add(1)
			rm.log.Warn("model refresh failed; the current model stays", "model", rm.h.ModelID(), "serving", rm.h.Version(), "err", err)
		}
		return
	}
	rm.mu.Lock()
	old := rm.cur
	rm.cur = s
	rm.mu.Unlock()
	rm.h.version.Store(s.version)
	rm.h.swaps.Add(1)
	rm.log.Info("model swapped", "model", rm.h.ModelID(), "from", old.id, "to", s.id, "version", s.version)
	rm.retired.Go(func() {
		old.inflight.Wait()
		if err := old.model.Close(); err != nil {
			rm.log.Warn("closing the replaced model", "model", old.id, "err", err)
		}
	})
}

// Run implements Model: the whole batch runs on the model current when
// it starts.
func (rm *refreshModel) Run(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	rm.mu.RLock()
	s := rm.cur
	s.inflight.Add(1) // under the lock, so a swap cannot close s first
	rm.mu.RUnlock()
	defer s.inflight.Done()
	out, err := s.model.Run(ctx, batch)
	if err != nil {
		return nil, err
	}
	if len(out.Schema().FieldIndices("model_id")) > 0 {
		return out, nil
	}
	ids := make([]string, out.NumRows())
	for i := range ids {
		ids[i] = s.id
	}
	defer out.Release()
	return withStrings(out, "model_id", ids), nil
}

func (rm *refreshModel) ByteSize() int64 {
	rm.mu.RLock()
	defer rm.mu.RUnlock()
	return rm.cur.model.ByteSize()
}

// Close stops polling, waits for replaced models to close and closes the
// current one.
func (rm *refreshModel) Close() error {
	rm.stop()
	<-rm.stopped
	rm.retired.Wait()
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.cur.inflight.Wait()
	return rm.cur.model.Close()
}
