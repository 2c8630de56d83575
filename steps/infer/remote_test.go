package infer_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/oip"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// oipServer serves the PyTorch-trained penguins model over the Open
// Inference Protocol, running it in ONNX Runtime; every fail-th inference
// request gets a 503 first, so the step's retries are exercised.
func oipServer(t *testing.T, fail int64) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "models", "penguins-mlp.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := ort.NewSession(data, []string{"x"}, []string{"probs"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	var requests atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/models/penguins/ready", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /v2/models/penguins", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(oip.ModelMetadata{Name: "penguins", Platform: "onnxruntime",
			Inputs:  []oip.TensorMetadata{{Name: "x", Datatype: oip.FP32, Shape: []int64{-1, 4}}},
			Outputs: []oip.TensorMetadata{{Name: "probs", Datatype: oip.FP32, Shape: []int64{-1, 3}}}})
	})
	mux.HandleFunc("POST /v2/models/penguins/infer", func(w http.ResponseWriter, r *http.Request) {
		if n := requests.Add(1); fail > 0 && n%fail == 0 {
			http.Error(w, `{"error": "overloaded"}`, http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, `{"error": "no token"}`, http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, err := oip.ParseRequest(body)
		if err != nil || len(req.Inputs) != 1 {
			http.Error(w, `{"error": "bad request"}`, http.StatusBadRequest)
			return
		}
		x := req.Inputs[0]
		res, err := sess.Run(x.Shape[0], []ort.Column{{Name: "x", Width: 4, Floats: x.Float32s}})
		if err != nil {
			http.Error(w, `{"error": "model"}`, http.StatusInternalServerError)
			return
		}
		out := oip.InferResponse{ModelName: "penguins", ID: req.ID, Outputs: []oip.Tensor{{Name: "probs", Datatype: oip.FP32, Shape: res[0].Shape, Float32s: res[0].Data}}}
		b, _ := out.AppendJSON(nil)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &requests
}

// TestInferRemote runs the step against an OIP server that fails every
// third request once: every row is answered (retries), equal to a direct
// ORT call; the request counters land in the predictions' properties and
// the token never reaches the records.
func TestInferRemote(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	srv, _ := oipServer(t, 3)
	out, err := e.infer("pred", map[string]string{"examples": examples}, map[string]any{
		"remote": srv.URL, "remote-model": "penguins", "remote-token": "s3cret", "remote-features": "x=" + strings.Join(features, ","),
		"remote-classes": strings.Join(classes, ","), "remote-scores": "probs", "batch-max": int64(32), "workers": int64(2),
		"breaker-failures": int64(0)})
	if err != nil {
		t.Fatal(err)
	}
	direct := e.session("penguins-mlp.onnx", "probs")
	var n int
	for s, rows := range e.rows(out.Join("predictions"), artifacts.TypePredictions) {
		for i, r := range rows {
			checkScores(t, fmt.Sprintf("%s row %d", s, i), r, direct.scores(r))
			n++
		}
	}
	if n != 342 {
		t.Fatalf("%d predictions, want 342", n)
	}
	a, err := e.store.Open(e.ctx, out.Join("predictions"), artifacts.TypePredictions)
	if err != nil {
		t.Fatal(err)
	}
	st, err := artifacts.Property[map[string]int64](a.Sidecar, "remote")
	if err != nil {
		t.Fatal(err)
	}
	if st["retries"] == 0 || st["failures"] != st["retries"] {
		t.Fatalf("remote counters %v: want retries for every failure", st)
	}
	sc, err := json.Marshal(a.Sidecar)
	if err != nil || strings.Contains(string(sc), "s3cret") {
		t.Fatalf("the token reached the sidecar: %s", sc)
	}
}

// TestInferRemoteDown: a server that always fails: after the retries the
// batches go to the dead letters with the reason, and the gate trips.
func TestInferRemoteDown(t *testing.T) {
	e := newEnv(t)
	examples := e.examples("penguins.json")
	srv, _ := oipServer(t, 1)
	out, err := e.infer("pred", map[string]string{"examples": examples}, map[string]any{
		"remote": srv.URL, "remote-model": "penguins", "remote-token": "s3cret", "remote-features": "x=" + strings.Join(features, ","),
		"retries": int64(1), "breaker-failures": int64(3), "breaker-cooldown": time.Hour, "max-dead-letter-fraction": 0.5})
	if err == nil || !strings.Contains(err.Error(), "dead-lettered") {
		t.Fatalf("want the dead-letter gate, got %v", err)
	}
	var reasons []string
	for _, rows := range e.rows(out.Join("dead_letters"), artifacts.TypeDeadLetters) {
		for _, r := range rows {
			reasons = append(reasons, r["reason"])
		}
	}
	if len(reasons) != 344 {
		t.Fatalf("%d dead letters, want every row", len(reasons))
	}
	joined := strings.Join(reasons, "\n")
	if !strings.Contains(joined, "503") || !strings.Contains(joined, "circuit breaker open") {
		t.Fatalf("reasons should name the 503s and the open breaker:\n%s", joined[:min(len(joined), 2000)])
	}
}
