package inference

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// KeyModel maps several keys to one model (Beam's KeyModelMapping).
type KeyModel struct {
	Keys    []string
	Handler ModelHandler
}

// KeyedHandler picks a row's model by the value of KeyColumn, loading
// models on first use and keeping at most MaxModels loaded: when another
// is needed, the least recently used one that no batch is running is
// closed (Beam's max_models_per_worker_hint). Rows whose key maps to no
// model are bad rows. Outputs gain a "model_id" column; all models must
// have the same output columns.
type KeyedHandler struct {
	ID        string // "keyed" when empty
	KeyColumn string
	Models    []KeyModel
	MaxModels int // 0: no cap
	// Sort (the grouping option) runs a batch's groups in key order rather
	// than first-seen order, so consecutive batches reuse loaded models.
	Sort bool

	mu           sync.Mutex // guards the counters below, across loads
	loaded, peak int
	loads        int
}

// ModelID implements ModelHandler.
func (h *KeyedHandler) ModelID() string {
	if h.ID == "" {
		return "keyed"
	}
	return h.ID
}

// BatchSizes implements ModelHandler: no preference.
func (h *KeyedHandler) BatchSizes() (int, int) { return 0, 0 }

// Loaded is how many models the handler holds now.
func (h *KeyedHandler) Loaded() int { h.mu.Lock(); defer h.mu.Unlock(); return h.loaded }

// PeakLoaded is the most models the handler ever held at once.
func (h *KeyedHandler) PeakLoaded() int { h.mu.Lock(); defer h.mu.Unlock(); return h.peak }

// Loads counts model loads (reloads after eviction included).
func (h *KeyedHandler) Loads() int { h.mu.Lock(); defer h.mu.Unlock(); return h.loads }

func (h *KeyedHandler) count(delta int, load bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.loaded += delta
	h.peak = max(h.peak, h.loaded)
	if load {
		h.loads++
	}
}

type slot struct {
	model Model
	refs  int
	used  uint64
}

type keyedModel struct {
	h       *KeyedHandler
	metrics *Metrics
	byKey   map[string]int
	mu      sync.Mutex
	cond    *sync.Cond
	slots   []slot
	loaded  int
	clock   uint64
	bytes   int64
}

// Load implements ModelHandler: it checks the mapping; models load lazily.
func (h *KeyedHandler) Load(ctx context.Context, m *Metrics) (Model, error) {
	if h.KeyColumn == "" || len(h.Models) == 0 {
		return nil, errors.New("keyed handler: needs KeyColumn and Models")
	}
	km := &keyedModel{h: h, metrics: m, byKey: map[string]int{}, slots: make([]slot, len(h.Models))}
	km.cond = sync.NewCond(&km.mu)
	for i, mm := range h.Models {
		if mm.Handler == nil {
			return nil, fmt.Errorf("keyed handler: model %d has no handler", i)
		}
		for _, k := range mm.Keys {
			if j, dup := km.byKey[k]; dup {
				return nil, fmt.Errorf("keyed handler: key %q maps to %s and %s", k, h.Models[j].Handler.ModelID(), mm.Handler.ModelID())
			}
			km.byKey[k] = i
		}
	}
	return km, nil
}

// ByteSize is the size of the models loaded now.
func (km *keyedModel) ByteSize() int64 { km.mu.Lock(); defer km.mu.Unlock(); return km.bytes }

// Close closes every loaded model.
func (km *keyedModel) Close() error {
	km.mu.Lock()
	defer km.mu.Unlock()
	var errs []error
	for i := range km.slots {
		if s := &km.slots[i]; s.model != nil {
			errs = append(errs, km.unload(s))
		}
	}
	return errors.Join(errs...)
}

// unload closes s's model; km.mu is held.
func (km *keyedModel) unload(s *slot) error {
	km.bytes -= s.model.ByteSize()
	err := s.model.Close()
	s.model = nil
	km.loaded--
	km.h.count(-1, false)
	return err
}

// acquire returns model i loaded and referenced; release it after use.
func (km *keyedModel) acquire(ctx context.Context, i int) (Model, error) {
	km.mu.Lock()
	defer km.mu.Unlock()
	for {
		s := &km.slots[i]
		km.clock++
		if s.model != nil {
			s.refs++
			s.used = km.clock
			return s.model, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if km.h.MaxModels <= 0 || km.loaded < km.h.MaxModels {
			h := km.h.Models[i].Handler
			m, err := load(ctx, h, km.metrics)
			if err != nil {
				return nil, fmt.Errorf("load model %s: %w", h.ModelID(), err)
			}
			s.model, s.refs, s.used = m, 1, km.clock
			km.loaded++
			km.bytes += m.ByteSize()
			km.h.count(1, true)
			return m, nil
		}
		victim := -1
		for j := range km.slots {
			if v := &km.slots[j]; v.model != nil && v.refs == 0 && (victim < 0 || v.used < km.slots[victim].used) {
				victim = j
			}
		}
		if victim < 0 {
			km.cond.Wait() // every loaded model is running a batch
			continue
		}
		if err := km.unload(&km.slots[victim]); err != nil {
			return nil, fmt.Errorf("unload model %s: %w", km.h.Models[victim].Handler.ModelID(), err)
		}
	}
}

func (km *keyedModel) release(i int) {
	km.mu.Lock()
	km.slots[i].refs--
	km.mu.Unlock()
	km.cond.Broadcast()
}

// Run implements Model.
func (km *keyedModel) Run(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	idx := batch.Schema().FieldIndices(km.h.KeyColumn)
	if len(idx) == 0 {
		return nil, fmt.Errorf("key column %q not in the batch", km.h.KeyColumn)
	}
	col := batch.Column(idx[0])
	groups, bad := groupRows(int(batch.NumRows()), func(r int) (int, string) {
		k, ok := stringAt(col, r)
		if !ok {
			return -1, fmt.Sprintf("key column %q is null", km.h.KeyColumn)
		}
		m, ok := km.byKey[k]
		if !ok {
			return -1, fmt.Sprintf("no model for key %q", k)
		}
		return m, ""
	})
	if len(bad) > 0 {
		return nil, &BadRowsError{Rows: bad}
	}
	if km.h.Sort {
		sortGroups(groups)
	}
	for i := range groups {
		groups[i].id = km.h.Models[groups[i].model].Handler.ModelID()
	}
	return runGroups(ctx, batch, groups, false, km.metrics, func(ctx context.Context, g group, sub arrow.RecordBatch) (arrow.RecordBatch, time.Duration, error) {
		m, err := km.acquire(ctx, g.model)
		if err != nil {
			return nil, 0, err
		}
		defer km.release(g.model)
		start := time.Now()
		out, err := m.Run(ctx, sub)
		return out, time.Since(start), err
	})
}

func sortGroups(gs []group) {
	for i := 1; i < len(gs); i++ {
		for j := i; j > 0 && gs[j].model < gs[j-1].model; j-- {
			gs[j], gs[j-1] = gs[j-1], gs[j]
		}
	}
}
