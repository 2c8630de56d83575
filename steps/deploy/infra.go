package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/internal/tailbuf"
	"github.com/mlsteps/mlsteps/steps/model"
)

// InfraServeCommand is the hidden mlsteps command that runs `mlsteps
// ARGS...` under an address-space limit; cmd/mlsteps implements it.
const InfraServeCommand = "infra-serve"

// BinaryEnv names the variable holding the mlsteps binary that infra
// validation starts; unset, it is this process's own executable (tests,
// whose executable is a test binary, set it).
const BinaryEnv = "MLSTEPS_BIN"

// servedName is the model's name inside the validation server.
const servedName = "canary"

// infraOptions configure one infra validation.
type infraOptions struct {
	MemoryLimit int64         // bytes of address space (RLIMIT_AS)
	Timeout     time.Duration // the whole validation: start, load, every canary
	Tolerance   float64
	Logger      *slog.Logger
}

// InfraReport is what infra validation saw; it goes into the PushedModel
// and the registry's version record.
type InfraReport struct {
	CanaryRows int `json:"canary_rows"`
	// Compared rows were answered by both the server and the in-process
	// engine; Refused rows were refused by both (a null feature).
	Compared   int      `json:"compared"`
	Refused    int      `json:"refused"`
	Columns    []string `json:"columns"`
	MaxAbsDiff float64  `json:"max_abs_diff"`
	Tolerance  float64  `json:"tolerance"`
	// Synthetic canaries were made of zeros, for want of examples.
	Synthetic bool `json:"synthetic,omitempty"`
	// SkippedNullRows were passed over: a row with a null cannot be sent
	// over the V2 protocol.
	SkippedNullRows  int     `json:"skipped_null_rows,omitempty"`
	MemoryLimitBytes int64   `json:"memory_limit_bytes"`
	PeakRSSBytes     int64   `json:"peak_rss_bytes,omitempty"`
	ReadySeconds     float64 `json:"ready_seconds"`
	Seconds          float64 `json:"seconds"`
}

// refusal is infra validation's "no": the model is not pushed.
type refusal struct{ reason string }

func (r *refusal) Error() string { return r.reason }

func refusef(format string, args ...any) error { return &refusal{fmt.Sprintf(format, args...)} }

// infraValidate loads the model at uri in a separate `mlsteps serve`
// process under the memory and time limits, sends it the canary rows over
// KServe V2, and compares its answers with the in-process engine's. A
// *refusal says why the model failed; other errors are the validation's
// own failures.
func infraValidate(parent context.Context, m *model.Model, uri artifacts.URI, canary []arrow.RecordBatch, opts infraOptions) (rep InfraReport, err error) {
	rep = InfraReport{MemoryLimitBytes: opts.MemoryLimit, Tolerance: opts.Tolerance}
	defer func() {
		// A cancelled step is no verdict on the model.
		if err != nil && parent.Err() != nil {
			err = fmt.Errorf("infra validation: %w", context.Cause(parent))
		}
	}()
	for _, rec := range canary {
		rep.CanaryRows += int(rec.NumRows())
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(parent, opts.Timeout)
	defer cancel()
	srv, err := startServer(ctx, uri, opts)
	if err != nil {
		return rep, err
	}
	defer srv.stop(opts.Logger)
	rep.ReadySeconds = time.Since(start).Seconds()

	feeds, class := feedsOf(m)
	remote := &inference.RemoteHandler{ID: "served", BaseURL: srv.base, ModelName: servedName, Inputs: feeds, Classifier: class,
		Timeout: opts.Timeout, Retry: inference.RetryPolicy{MaxAttempts: 1}, Breaker: inference.BreakerPolicy{Failures: -1}}
	served, err := collect(ctx, remote, canary)
	if err != nil {
		return rep, srv.why(ctx, fmt.Errorf("the serving process: %w", err))
	}
	if err := srv.alive(); err != nil {
		return rep, err
	}
	if ctx.Err() != nil {
		// The engine dead-letters batches that time out; the verdict is
		// the time limit, not their answers.
		return rep, refusef("the serving process did not answer every canary within the time limit of %s (hung or too slow)", opts.Timeout)
	}
	rep.PeakRSSBytes = peakRSS(srv.cmd.Process.Pid)

	local, err := m.Handler(model.HandlerOptions{ID: "in-process"})
	if err != nil {
		return rep, fmt.Errorf("in-process handler: %w", err)
	}
	want, err := collect(ctx, local, canary)
	switch {
	case ctx.Err() != nil:
		return rep, refusef("the in-process engine did not answer every canary within the time limit of %s", opts.Timeout)
	case err != nil:
		return rep, refusef("the in-process engine could not run the model: %v", err)
	}
	if err := compare(want, served, opts.Tolerance, &rep); err != nil {
		return rep, err
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// feedsOf is how the in-process handler feeds the model, for the remote
// handler to send the same tensors: each input from its feature columns.
func feedsOf(m *model.Model) ([]inference.Input, *inference.Classifier) {
	var feeds []inference.Input
	for _, in := range m.Sig.Inputs {
		cols, ok := m.Meta.Features[in.Name]
		if !ok {
			cols = []string{in.Name}
		}
		feeds = append(feeds, inference.Input{Name: in.Name, Columns: cols})
	}
	var class *inference.Classifier
	if len(m.Meta.Classes) > 0 {
		class = &inference.Classifier{Classes: m.Meta.Classes, Scores: m.Meta.ScoresOutput, Label: m.Meta.LabelOutput}
	}
	return feeds, class
}

// server is the validation's `mlsteps serve` child.
type server struct {
	cmd    *exec.Cmd
	base   string
	stderr *tailbuf.Buffer
	exited chan struct{}
	err    error // Wait's, once exited is closed
}

// startServer starts the child and waits for its address and readiness
// to be printed, its exit, or ctx's end.
func startServer(ctx context.Context, uri artifacts.URI, opts infraOptions) (*server, error) {
	bin := os.Getenv(BinaryEnv)
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the mlsteps binary: %w", err)
		}
		bin = exe
	}
	args := []string{InfraServeCommand, "--memory-limit", strconv.FormatInt(opts.MemoryLimit, 10), "--",
		"--log-format", "json", "serve", "--model", servedName + "=" + uri.String(), "--addr", "127.0.0.1:0",
		"--request-timeout", opts.Timeout.String(), "--shutdown-timeout", "5s"}
	cmd := exec.Command(bin, args...)
	// GOMEMLIMIT makes the child's collector work harder near the limit
	// rather than let the heap run into it.
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOMEMLIMIT=%dB", opts.MemoryLimit/2))
	if os.Getenv(ort.EnvLib) == "" {
		// The child finds ORT as this process did, wherever it runs from.
		if lib, err := ort.FindLib(); err == nil {
			cmd.Env = append(cmd.Env, ort.EnvLib+"="+lib)
		}
	}
	addr := make(chan string, 1)
	cmd.Stdout = &firstLine{prefix: "serving on ", found: addr}
	s := &server{cmd: cmd, stderr: tailbuf.New(4096), exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	select {
	case s.base = <-addr:
		return s, nil
	case <-s.exited:
		return nil, refusef("the serving process exited before serving: %v%s", s.err, last(s.stderr))
	case <-ctx.Done():
		s.kill()
		return nil, refusef("the serving process did not start serving within %s (hung or too slow)%s", opts.Timeout, last(s.stderr))
	}
}

// why turns a failed exchange with the server into a refusal, naming a
// crash or the time limit when one was the cause.
func (s *server) why(ctx context.Context, err error) error {
	select {
	case <-s.exited:
		return refusef("the serving process died: %v%s", s.err, last(s.stderr))
	case <-time.After(200 * time.Millisecond): // a crash may lag its broken connection
	}
	if ctx.Err() != nil {
		return refusef("the serving process did not answer every canary within the time limit (hung or too slow): %v", err)
	}
	return refusef("%v", err)
}

// alive refuses a server that died after answering.
func (s *server) alive() error {
	select {
	case <-s.exited:
		return refusef("the serving process died: %v%s", s.err, last(s.stderr))
	default:
		return nil
	}
}

// stop asks the server to drain and exit, killing it if it does not.
func (s *server) stop(logger *slog.Logger) {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.err != nil {
			logger.Warn("infra validation server did not exit cleanly", "err", s.err, "stderr", s.stderr.String())
		}
	case <-time.After(10 * time.Second):
		s.kill()
	}
}

func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.exited
}

// peakRSS is a process's peak resident set (VmHWM), 0 when unknown.
func peakRSS(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// firstLine hands on the rest of the first stdout line with prefix.
type firstLine struct {
	prefix string
	found  chan<- string
	buf    []byte
	done   bool
}

func (f *firstLine) Write(p []byte) (int, error) {
	if f.done {
		return len(p), nil
	}
	f.buf = append(f.buf, p...)
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			break
		}
		line := string(f.buf[:i])
		f.buf = f.buf[i+1:]
		if rest, ok := strings.CutPrefix(line, f.prefix); ok {
			f.done, f.buf = true, nil
			f.found <- strings.TrimSpace(rest)
			break
		}
	}
	return len(p), nil
}

// last sums up the server's output as a suffix for a reason: its fatal
// errors, panics, error log records and final error line when there are
// any, else its last lines.
func last(t *tailbuf.Buffer) string {
	var lines, important []string
	for line := range strings.Lines(t.String()) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		lines = append(lines, line)
		var rec struct{ Level, Msg, Err, Error string }
		switch {
		case strings.HasPrefix(line, "fatal error") || strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "runtime:") || strings.HasPrefix(line, "mlsteps:"):
			important = append(important, line)
		case strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "ERROR":
			important = append(important, strings.TrimSpace(rec.Msg+" "+rec.Err+rec.Error))
		}
	}
	if len(important) == 0 {
		important = lines[max(0, len(lines)-3):]
	}
	if len(important) == 0 {
		return ""
	}
	return "; its output: " + strings.Join(slices.Compact(important[:min(3, len(important))]), " | ")
}
