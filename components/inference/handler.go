package inference

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// ModelHandler knows how to load one model and how it likes to be batched,
// like Beam's ModelHandler. A handler is configuration: Load may be called
// more than once (each call returns a new, independent Model), and the
// engine calls it once per run and shares the Model between its workers.
type ModelHandler interface {
	// ModelID names the model in results, dead letters and metrics. It is
	// never empty.
	ModelID() string
	// Load loads the model. On success the Model is non-nil and the caller
	// owns it (Close it when done). m may be nil; handlers that load more
	// models later (keyed, A/B) record into it. Errors are load failures:
	// the run cannot start.
	Load(ctx context.Context, m *Metrics) (Model, error)
	// BatchSizes is the handler's preferred batch size range; 0 means no
	// preference (the engine's options win when set).
	BatchSizes() (min, max int)
}

// Model is a loaded model. Run is safe for concurrent use.
type Model interface {
	// Run infers batch (non-nil, at least one row, holding the columns the
	// handler reads) and returns a non-nil record with exactly one row per
	// input row, in the same order; the caller releases it. A
	// *BadRowsError means those rows cannot be inferred (a null feature, an
	// unknown key) and nothing was computed: the engine dead-letters them
	// and runs the rest again. Any other error fails the whole batch.
	Run(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error)
	// ByteSize is the model's size in bytes (Beam's model_byte_size).
	ByteSize() int64
	// Close frees the model; Run must not be called afterwards.
	Close() error
}

// load loads h's model and records the load under h's id, unless h
// recorded it itself: an ONNX handler does, wrapped or not, while
// composite handlers (keyed, A/B, cascade) record only their inner models.
func load(ctx context.Context, h ModelHandler, m *Metrics) (Model, error) {
	id := h.ModelID()
	before := m.loads(id)
	start := time.Now()
	model, err := h.Load(ctx, m)
	if err != nil {
		return nil, err
	}
	if m.loads(id) == before {
		m.Loaded(id, time.Since(start), model.ByteSize())
	}
	return model, nil
}

// BadRow is one row of a batch that a model refused, with why.
type BadRow struct {
	Row    int // index in the batch given to Run
	Reason string
}

// BadRowsError lists the rows of a batch that cannot be inferred.
type BadRowsError struct {
	Rows []BadRow
}

func (e *BadRowsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d bad rows", len(e.Rows))
	for i, r := range e.Rows {
		if i == 3 {
			b.WriteString(", ...")
			break
		}
		fmt.Fprintf(&b, "; row %d: %s", r.Row, r.Reason)
	}
	return b.String()
}
