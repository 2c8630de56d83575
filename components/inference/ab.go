package inference

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Arm is one side of an A/B split.
type Arm struct {
	Name    string
	Weight  float64 // relative; weights need not sum to 1
	Handler ModelHandler
}

// ABHandler splits rows between arms by a hash of KeyColumn's value, in
// proportion to the weights: the same key always goes to the same arm, in
// every run and process. Outputs gain "model_id" and "arm" columns; all
// arms must have the same output columns.
type ABHandler struct {
	ID        string // "ab" when empty
	KeyColumn string
	Arms      []Arm
}

// ModelID implements ModelHandler.
func (h *ABHandler) ModelID() string {
	if h.ID == "" {
		return "ab"
	}
	return h.ID
}

// BatchSizes implements ModelHandler: no preference.
func (h *ABHandler) BatchSizes() (int, int) { return 0, 0 }

// Split assigns keys to arms by weight.
type Split struct {
	bounds []float64 // cumulative, last is 1
}

// NewSplit checks weights (finite, >= 0, not all 0).
func NewSplit(weights []float64) (Split, error) {
	var sum float64
	for i, w := range weights {
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return Split{}, fmt.Errorf("arm %d: weight %v must be a finite number >= 0", i, w)
		}
		sum += w
	}
	if sum == 0 {
		return Split{}, errors.New("a/b split: every weight is 0")
	}
	s := Split{bounds: make([]float64, len(weights))}
	var acc float64
	for i, w := range weights {
		acc += w
		s.bounds[i] = acc / sum
	}
	s.bounds[len(s.bounds)-1] = 1
	return s, nil
}

// Arm returns the arm index for key: FNV-1a of the key, mixed
// (splitmix64's finaliser) so near-identical keys spread evenly, mapped to
// [0,1) and looked up in the cumulative weights.
func (s Split) Arm(key string) int {
	f := fnv.New64a()
	f.Write([]byte(key))
	x := f.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	u := float64(x>>11) / (1 << 53)
	for i, b := range s.bounds {
		if u < b {
			return i
		}
	}
	return len(s.bounds) - 1
}

type abModel struct {
	modelList
	h       *ABHandler
	split   Split
	metrics *Metrics
}

// Load implements ModelHandler: it loads every arm.
func (h *ABHandler) Load(ctx context.Context, m *Metrics) (Model, error) {
	if h.KeyColumn == "" || len(h.Arms) == 0 {
		return nil, errors.New("a/b handler: needs KeyColumn and Arms")
	}
	w := make([]float64, len(h.Arms))
	for i, a := range h.Arms {
		if a.Handler == nil || a.Name == "" {
			return nil, fmt.Errorf("a/b handler: arm %d needs a name and a handler", i)
		}
		w[i] = a.Weight
	}
	split, err := NewSplit(w)
	if err != nil {
		return nil, fmt.Errorf("a/b handler: %w", err)
	}
	am := &abModel{h: h, split: split, metrics: m}
	for _, a := range h.Arms {
		mm, err := load(ctx, a.Handler, m)
		if err != nil {
			am.Close()
			return nil, fmt.Errorf("a/b arm %s: load model %s: %w", a.Name, a.Handler.ModelID(), err)
		}
		am.modelList = append(am.modelList, mm)
	}
	return am, nil
}

// Run implements Model.
func (am *abModel) Run(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	idx := batch.Schema().FieldIndices(am.h.KeyColumn)
	if len(idx) == 0 {
		return nil, fmt.Errorf("key column %q not in the batch", am.h.KeyColumn)
	}
	col := batch.Column(idx[0])
	groups, bad := groupRows(int(batch.NumRows()), func(r int) (int, string) {
		k, ok := stringAt(col, r)
		if !ok {
			return -1, fmt.Sprintf("key column %q is null", am.h.KeyColumn)
		}
		return am.split.Arm(k), ""
	})
	if len(bad) > 0 {
		return nil, &BadRowsError{Rows: bad}
	}
	for i := range groups {
		a := am.h.Arms[groups[i].model]
		groups[i].id, groups[i].tag = a.Handler.ModelID(), a.Name
	}
	return runGroups(ctx, batch, groups, true, am.metrics, func(ctx context.Context, g group, sub arrow.RecordBatch) (arrow.RecordBatch, time.Duration, error) {
		start := time.Now()
		out, err := am.modelList[g.model].Run(ctx, sub)
		return out, time.Since(start), err
	})
}
