package inference_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
)

// pointer is a model pointer a test can move, like a registry's "current".
type pointer struct {
	mu      sync.Mutex
	version string
	h       inference.ModelHandler
	err     error
	calls   int
}

func (p *pointer) set(version string, h inference.ModelHandler, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.version, p.h, p.err = version, h, err
}

func (p *pointer) current(context.Context) (string, inference.ModelHandler, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	return p.version, p.h, p.err
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestRefreshSwapsBetweenBatches moves the pointer in the middle of a run:
// rows before the swap are answered by the old model, rows after it by
// the new one (each checked against a direct ORT call), every row once.
// A pointer that then fails to resolve keeps the current model serving.
func TestRefreshSwapsBetweenBatches(t *testing.T) {
	orttest.Init(t)
	noLeaks(t)
	recs := penguins(t, 16)
	m1, m2 := mlp(t, 4, 16, 1), mlp(t, 4, 16, 2)
	want := map[string][][][]float32{"v1": direct(t, m1, []string{"probs"}, recs), "v2": direct(t, m2, []string{"probs"}, recs)}
	p := &pointer{}
	p.set("v1", mlpHandler("penguins@v1", m1), nil)
	h := &inference.RefreshHandler{ID: "penguins", Current: p.current, Interval: time.Millisecond}

	c := newCollect()
	sink := c.sink()
	inner := sink.Result
	var batches int
	sink.Result = func(r inference.Result) error {
		batches++
		if batches == 5 {
			// Move the pointer and hold the run until the new model
			// serves, so the swap lands between this batch and the next.
			p.set("v2", mlpHandler("penguins@v2", m2), nil)
			waitFor(t, "the swap", func() bool { return h.Version() == "v2" })
		}
		if batches == 10 {
			p.set("v3", nil, errors.New("registry unreachable"))
			waitFor(t, "a failed poll", func() bool { return h.Failures() > 0 })
		}
		return inner(r)
	}
	if _, err := runOnce(context.Background(), h, inference.Options{MaxBatch: 16}, seq(recs), sink); err != nil {
		t.Fatal(err)
	}
	if c.dups != 0 {
		t.Fatalf("%d rows answered twice", c.dups)
	}
	var swappedAt int64 = -1
	for row := range int64(len(want["v1"])) {
		got, ok := c.results[row]
		if !ok {
			if _, dead := c.dead[row]; !dead {
				t.Fatalf("row %d lost", row)
			}
			continue
		}
		v := "v1"
		if got["model_id"] == "penguins@v2" {
			v = "v2"
			if swappedAt < 0 {
				swappedAt = row
			}
		} else if swappedAt >= 0 {
			t.Fatalf("row %d answered by the old model after the swap at row %d", row, swappedAt)
		}
		for k, cl := range classes {
			if w := str32(want[v][row][0][k]); got["score_"+cl] != w {
				t.Fatalf("row %d (%s) score_%s = %s, want %s", row, v, cl, got["score_"+cl], w)
			}
		}
	}
	if swappedAt != 5*16 {
		t.Fatalf("the new model answered from row %d, want %d (the 6th batch)", swappedAt, 5*16)
	}
	if h.Swaps() != 1 || h.Version() != "v2" {
		t.Fatalf("swaps %d, serving %q; want 1 swap to v2", h.Swaps(), h.Version())
	}
}

// TestRefreshLoadFailure: a pointer that names no loadable model at Load
// fails the run's start with the reason.
func TestRefreshLoadFailure(t *testing.T) {
	orttest.Init(t)
	p := &pointer{}
	p.set("v1", mlpHandler("broken", []byte("not onnx")), nil)
	h := &inference.RefreshHandler{Current: p.current}
	_, err := runOnce(context.Background(), h, inference.Options{}, seq(penguins(t, 16)), inference.Sink{})
	if err == nil {
		t.Fatal("a broken model loaded")
	}
	t.Log(err)
}
