package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/oip"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/components/tabular/tabulartest"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

var (
	penguinFeatures = []string{"Beak Length (mm)", "Beak Depth (mm)", "Flipper Length (mm)", "Body Mass (g)"}
	penguinClasses  = []string{"Adelie", "Chinstrap", "Gentoo"}
)

// importModel imports a fixture model with the real binary and returns
// the Model artifact's URI.
func importModel(t testing.TB, bin, root, fixture string) string {
	t.Helper()
	src := filepath.Join(testenv.RepoRoot(t), "testdata", "models", fixture)
	res := filepath.Join(root, "result")
	cmd := exec.Command(bin, "import-model", "--source", src, "--out-root", "file://"+root, "--result-dir", res)
	cmd.Env = ortEnv(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import-model %s: %v\n%s", fixture, err, out)
	}
	u, err := os.ReadFile(filepath.Join(res, "model"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(u))
}

// ortEnv is the environment with the ONNX Runtime library the tests use,
// which the binary, built into a temporary folder, would not find.
func ortEnv(t testing.TB) []string {
	return append(os.Environ(), ort.EnvLib+"="+ort.LibPath(testenv.RepoRoot(t)))
}

// startServe runs `mlsteps serve args...` on a free port and returns its
// base URL. Cleanup sends SIGTERM and expects exit 0.
func startServe(t testing.TB, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--log-format", "json", "serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = ortEnv(t)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		cmd.Wait()
		t.Fatalf("serve printed no address: %s", stderr.String())
	}
	base, ok := strings.CutPrefix(lines.Text(), "serving on ")
	if !ok {
		t.Fatalf("serve printed %q", lines.Text())
	}
	go io.Copy(io.Discard, stdout)
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("serve after SIGTERM: %v\n%s", err, stderr.String())
		}
	})
	return base
}

// scored runs h over recs and returns every row's label and scores by
// input position; rows with a null feature are left out.
func scored(t *testing.T, h inference.ModelHandler, recs []arrow.RecordBatch) map[int64][]string {
	t.Helper()
	eng := inference.New(h, inference.Options{MaxBatch: 16, Workers: 4})
	defer eng.Close()
	out := map[int64][]string{}
	src := func(yield func(arrow.RecordBatch, error) bool) {
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
	_, err := eng.Run(context.Background(), src, inference.Sink{
		Result: func(r inference.Result) error {
			for i, pos := range r.Rows {
				var row []string
				for j := range int(r.Inference.NumCols()) {
					row = append(row, r.Inference.Column(j).ValueStr(i))
				}
				out[pos] = row
			}
			return nil
		},
		DeadLetter: func(inference.DeadLetter) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestServeRemoteHandler serves the penguins MLP from the real binary and
// runs the inference engine's RemoteHandler against it: every prediction
// equals a direct ONNX Runtime run.
func TestServeRemoteHandler(t *testing.T) {
	orttest.Init(t)
	bin := testenv.Binary(t)
	uri := importModel(t, bin, t.TempDir(), "penguins-mlp.onnx")
	base := startServe(t, bin, "--model", "penguins="+uri)
	_, recs := tabulartest.Load(t, "penguins.json", 50)

	remote := scored(t, &inference.RemoteHandler{BaseURL: base, ModelName: "penguins",
		Inputs:     []inference.Input{{Name: "x", Columns: penguinFeatures}},
		Classifier: &inference.Classifier{Classes: penguinClasses, Scores: "probs"}}, recs)
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "models", "penguins-mlp.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	direct := scored(t, &inference.ONNXHandler{Model: data,
		Inputs:     []inference.Input{{Name: "x", Columns: penguinFeatures}},
		Classifier: &inference.Classifier{Classes: penguinClasses, Scores: "probs"}}, recs)
	if len(direct) < 300 || len(remote) != len(direct) {
		t.Fatalf("%d rows inferred remotely, %d directly", len(remote), len(direct))
	}
	for pos, want := range direct {
		if got := remote[pos]; !slices.Equal(got, want) {
			t.Errorf("row %d: served %v, direct %v", pos, got, want)
		}
	}
}

// penguinRow is one Adelie penguin as a request body.
const penguinRow = `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[39.1,18.7,181,3750]}]}`

// penguinBatch is penguinRow's values in n rows, in the columns
// oip.Tensor.ToColumns makes of x.
func penguinBatch(t testing.TB, n int) (arrow.RecordBatch, []string) {
	t.Helper()
	x := oip.Tensor{Name: "x", Datatype: oip.FP32, Shape: []int64{int64(n), 4}}
	for range n {
		x.Float32s = append(x.Float32s, 39.1, 18.7, 181, 3750)
	}
	fields, cols, err := x.ToColumns(n)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec, names
}

// loadFixture loads a fixture model in this process, fed from the
// columns penguinBatch makes.
func loadFixture(t testing.TB, fixture string, columns []string) inference.Model {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata", "models", fixture))
	if err != nil {
		t.Fatal(err)
	}
	m, err := (&inference.ONNXHandler{Model: data, Inputs: []inference.Input{{Name: "x", Columns: columns}}}).Load(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// directProbs runs a fixture model on penguinRow in this process.
func directProbs(t *testing.T, fixture string) string {
	t.Helper()
	rec, names := penguinBatch(t, 1)
	defer rec.Release()
	m := loadFixture(t, fixture, names)
	defer m.Close()
	out, err := m.Run(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	var probs []string
	for j := range int(out.NumCols()) {
		probs = append(probs, fmt.Sprint(out.Column(j).(*array.Float32).Value(0)))
	}
	return strings.Join(probs, " ")
}

// servedProbs asks the server for penguinRow's probs.
func servedProbs(client *http.Client, base string) (string, error) {
	resp, err := client.Post(base+"/v2/models/penguins/infer", "application/json", strings.NewReader(penguinRow))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	r, err := oip.ParseResponse(body)
	if err != nil {
		return "", err
	}
	probs := r.Output("probs")
	if probs == nil {
		return "", fmt.Errorf("no probs: %s", body)
	}
	s := make([]string, len(probs.Float32s))
	for i, p := range probs.Float32s {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, " "), nil
}

// TestServeHotReload moves the pointer of a watched model (a push) while
// 64 clients send requests for a few seconds: none fails, and after the
// switch the new model answers.
func TestServeHotReload(t *testing.T) {
	orttest.Init(t)
	bin := testenv.Binary(t)
	dir := t.TempDir()
	mlp := importModel(t, bin, filepath.Join(dir, "mlp"), "penguins-mlp.onnx")
	biscoe := importModel(t, bin, filepath.Join(dir, "biscoe"), "penguins-by-island/Biscoe.onnx")
	pointer := filepath.Join(dir, "current.json")
	point := func(uri string) {
		tmp := pointer + ".tmp"
		if err := os.WriteFile(tmp, fmt.Appendf(nil, `{"uri": %q}`, uri), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, pointer); err != nil {
			t.Fatal(err)
		}
	}
	point(mlp)
	base := startServe(t, bin, "--watch", "penguins=file://"+pointer, "--watch-interval", "20ms")
	oldProbs, newProbs := directProbs(t, "penguins-mlp.onnx"), directProbs(t, "penguins-by-island/Biscoe.onnx")
	if oldProbs == newProbs {
		t.Fatal("the two models answer alike: the test would prove nothing")
	}

	var (
		stop             atomic.Bool
		failed, answered atomic.Int64
		sawNew           atomic.Bool
		wg               sync.WaitGroup
	)
	const clients = 64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	for range clients {
		wg.Go(func() {
			clientSawNew := false
			for !stop.Load() {
				got, err := servedProbs(client, base)
				answered.Add(1)
				switch {
				case err != nil:
					failed.Add(1)
					t.Errorf("request failed: %v", err)
				case got == newProbs:
					clientSawNew = true
					sawNew.Store(true)
				case got != oldProbs:
					t.Errorf("served %s, neither model's answer (%s or %s)", got, oldProbs, newProbs)
				case clientSawNew:
					t.Errorf("the old model answered after the new one had")
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	point(biscoe)
	deadline := time.Now().Add(10 * time.Second)
	for !sawNew.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d clients: %d requests, %d failed", clients, answered.Load(), failed.Load())
	if !sawNew.Load() {
		t.Error("the new model never answered")
	}
}

// BenchmarkServe measures `mlsteps serve` on the penguins MLP: requests
// of one row from 1, 16 and 64 concurrent clients (requests/s, p50 and
// p99 latency), beside raw ONNX Runtime rows/s on the same model.
func BenchmarkServe(b *testing.B) {
	orttest.Init(b)
	bin := testenv.Binary(b)
	uri := importModel(b, bin, b.TempDir(), "penguins-mlp.onnx")
	// The default queue delay (2ms) waits for requests to batch; none
	// batches only those already queued, for a lone client's latency.
	for _, delay := range []string{"2ms", "0"} {
		base := startServe(b, bin, "--model", "penguins="+uri, "--max-queue-delay", delay)
		for _, clients := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("delay=%s/clients=%d", delay, clients), func(b *testing.B) {
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
				var (
					mu   sync.Mutex
					lats []time.Duration
					next atomic.Int64
					wg   sync.WaitGroup
				)
				// A fixed load per iteration, so one iteration (make bench)
				// still measures: 2,000 requests, or 200 per client.
				total := int64(b.N) * int64(max(2000, 200*clients))
				b.ResetTimer()
				start := time.Now()
				for range clients {
					wg.Go(func() {
						var mine []time.Duration
						for next.Add(1) <= total {
							t0 := time.Now()
							if _, err := servedProbs(client, base); err != nil {
								b.Error(err)
								return
							}
							mine = append(mine, time.Since(t0))
						}
						mu.Lock()
						lats = append(lats, mine...)
						mu.Unlock()
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
				b.ReportMetric(float64(total)/elapsed.Seconds(), "req/s")
				b.ReportMetric(float64(quantile(lats, 0.50).Microseconds()), "p50-µs")
				b.ReportMetric(float64(quantile(lats, 0.99).Microseconds()), "p99-µs")
				testenv.BenchRow(b, testenv.Row{Issue: 9, Figure: fmt.Sprintf("serve (OIP over HTTP/JSON), one-row requests, %d clients, queue delay %s", clients, delay),
					Ours: float64(total) / elapsed.Seconds(), Unit: fmt.Sprintf("req/s (p50 %.2f ms, p99 %.2f ms)",
						float64(quantile(lats, 0.50).Microseconds())/1000, float64(quantile(lats, 0.99).Microseconds())/1000)})
			})
		}
	}
	b.Run("ort-direct", func(b *testing.B) {
		rec, names := penguinBatch(b, 64)
		defer rec.Release()
		m := loadFixture(b, "penguins-mlp.onnx", names)
		defer m.Close()
		const calls = 10000 // per iteration, so one iteration measures
		b.ResetTimer()
		for range b.N * calls {
			out, err := m.Run(context.Background(), rec)
			if err != nil {
				b.Fatal(err)
			}
			out.Release()
		}
		b.ReportMetric(float64(b.N*calls)*float64(rec.NumRows())/b.Elapsed().Seconds(), "rows/s")
		testenv.BenchRow(b, testenv.Row{Issue: 9, Figure: "raw ONNX Runtime on the served model, batches of 64 (the ceiling serve shares)",
			Ours: float64(b.N*calls) * float64(rec.NumRows()) / b.Elapsed().Seconds(), Unit: "rows/s"})
	})
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(math.Min(float64(len(sorted)-1), q*float64(len(sorted))))]
}

func TestServeUsage(t *testing.T) {
	orttest.Init(t)
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve"}, 2, "serve needs --model NAME=URI or --watch NAME=POINTER"},
		{[]string{"serve", "--model", "penguins"}, 2, `--model "penguins": want NAME=URI`},
		{[]string{"serve", "--model", "p=" + dir + "/a", "--watch", "p=" + dir + "/b"}, 2, `model name "p" given twice`},
		{[]string{"serve", "--model", "p=" + dir, "--max-request-bytes", "lots"}, 2, "--max-request-bytes"},
		{[]string{"serve", "--model", "p=" + dir + "/none"}, 2, "--model p:"},
		{[]string{"serve", "--watch", "p=" + dir + "/pointer.json"}, 2, "--watch p:"},
		{[]string{"serve", "extra", "--model", "p=" + dir}, 2, "serve takes no arguments"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := runApp(t, c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %s; want exit %d and %q", code, stderr, c.code, c.want)
			}
		})
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"8MiB": 8 << 20, "512KB": 512000, "100": 100, "2 GiB": 2 << 30, "1B": 1, "0": -1, "-3MiB": -1, "8XB": -1, "MiB": -1} {
		got, err := parseBytes(in)
		if want < 0 && err == nil || want >= 0 && (err != nil || got != want) {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// TestServeTrees serves a classifier with an int64 label output and
// checks its metadata and an answer against a direct run.
func TestServeTrees(t *testing.T) {
	orttest.Init(t)
	bin := testenv.Binary(t)
	uri := importModel(t, bin, t.TempDir(), "penguins-trees.onnx")
	base := startServe(t, bin, "--model", "trees="+uri)
	resp, err := http.Get(base + "/v2/models/trees")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var meta oip.ModelMetadata
	if err := json.Unmarshal(body, &meta); err != nil {
		t.Fatal(err)
	}
	want := `{trees [1] onnxruntime_onnx [{x FP32 [-1 4]}] [{label INT64 [-1]} {probabilities FP32 [-1 3]}]}`
	if got := fmt.Sprint(meta); got != want {
		t.Errorf("metadata %s, want %s", got, want)
	}

	rec, names := penguinBatch(t, 1)
	defer rec.Release()
	m := loadFixture(t, "penguins-trees.onnx", names)
	defer m.Close()
	out, err := m.Run(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Release()
	resp, err = http.Post(base+"/v2/models/trees/infer", "application/json", strings.NewReader(penguinRow))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	r, err := oip.ParseResponse(body)
	if err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	label, probs := r.Output("label"), r.Output("probabilities")
	if label == nil || probs == nil || label.Datatype != oip.Int64 {
		t.Fatalf("outputs %s", body)
	}
	direct := fmt.Sprint(out.Column(0).(*array.Int64).Value(0), " ", out.Column(1).ValueStr(0), " ", out.Column(2).ValueStr(0), " ", out.Column(3).ValueStr(0))
	served := fmt.Sprint(label.Ints[0], " ", probs.Float32s[0], " ", probs.Float32s[1], " ", probs.Float32s[2])
	if served != direct {
		t.Errorf("served %s, direct %s", served, direct)
	}
}
