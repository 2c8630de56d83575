package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
	"github.com/mlsteps/mlsteps/steps/step"
)

// BuildDigestEnv carries the binary's digest from the runner to the steps
// it starts with the same binary.
const BuildDigestEnv = "MLSTEPS_BUILD_DIGEST"

// Options configure a run; the zero value of each field is its default.
type Options struct {
	// Binary is the mlsteps executable to run steps with (required).
	Binary string
	// BuildID is Binary's digest, when the caller knows it: children get it
	// in MLSTEPS_BUILD_DIGEST instead of each hashing the binary again.
	BuildID string
	// Root is the artifact root; default: the pipeline's root, else
	// file://<cwd>/.mlsteps-runs.
	Root string
	// Params override the pipeline's parameter defaults.
	Params map[string]string
	// Parallelism bounds concurrent steps (default: the number of CPUs).
	Parallelism int
	// NoCache runs every step even when a cached result exists.
	NoCache bool
	// From re-runs this step and everything downstream of it, reusing the
	// cache for the rest.
	From string
	// LogDir keeps each step's log (default: a folder under os.TempDir).
	LogDir string
	Logger *slog.Logger // nil: discard
	Store  *artifacts.Store
	// Progress, when set (a terminal), gets a live status line.
	Progress io.Writer
}

// Step statuses in a run.
const (
	Succeeded = "succeeded"
	Cached    = "cached"
	Gated     = "gated"
	Failed    = "failed"
	Skipped   = "skipped"
)

// StepResult is how one step of the run ended.
type StepResult struct {
	Name     string            `json:"name"`
	Step     string            `json:"step"`
	Status   string            `json:"status"`
	Reason   string            `json:"reason,omitempty"`
	Attempts int               `json:"attempts,omitempty"`
	Duration time.Duration     `json:"duration_ns"`
	Outputs  map[string]string `json:"outputs,omitempty"`
	Digests  map[string]string `json:"digests,omitempty"`
	CacheKey string            `json:"cache_key,omitempty"`
	LogFile  string            `json:"log_file,omitempty"`
	// Shards, for a sharded step, is how each shard ended, in shard
	// order; the step's own fields are its merge's, and MergeDuration the
	// merge's own wall time (Duration covers shards and merge).
	Shards        []*StepResult `json:"shards,omitempty"`
	MergeDuration time.Duration `json:"merge_duration_ns,omitempty"`
}

// Result is a whole run.
type Result struct {
	ID       string        `json:"id"`
	Pipeline string        `json:"pipeline"`
	Root     string        `json:"root"`
	Started  time.Time     `json:"started"`
	Ended    time.Time     `json:"ended"`
	Steps    []*StepResult `json:"steps"`
	ExitCode int           `json:"exit_code"`
}

// Run runs the pipeline and returns how every step ended.
func Run(ctx context.Context, g *pipeline.Graph, reg *step.Registry, opts Options) (*Result, error) {
	if opts.Binary == "" {
		return nil, errors.New("local run: no mlsteps binary given")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = runtime.NumCPU()
	}
	if opts.Store == nil {
		opts.Store = artifacts.NewStore()
		defer opts.Store.Close()
	}
	rootText := opts.Root
	if rootText == "" {
		rootText = g.Pipeline.Root
	}
	if rootText == "" {
		cwd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		rootText = filepath.Join(cwd, ".mlsteps-runs")
	}
	root, err := artifacts.ParseURI(rootText)
	if err != nil {
		return nil, step.BadInput(fmt.Errorf("--root: %w", err))
	}
	values, err := g.Resolve(reg, opts.Params)
	if err != nil {
		return nil, err
	}
	if opts.From != "" && g.Step(opts.From) == nil {
		return nil, step.Usagef("--from %s: no such step (steps: %s)", opts.From, strings.Join(g.Order(), ", "))
	}
	started := time.Now()
	res := &Result{ID: artifacts.NewExecutionID(started), Pipeline: g.Pipeline.Name, Root: root.String(), Started: started.UTC()}
	if opts.LogDir == "" {
		opts.LogDir = filepath.Join(os.TempDir(), "mlsteps-runs", res.ID)
	}
	if err := os.MkdirAll(opts.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	r := &runner{g: g, opts: opts, root: root, values: values, res: res, byName: map[string]*StepResult{}, progress: newProgress(opts.Progress, len(g.Order()))}
	if opts.From != "" {
		r.rerun = g.Downstream(opts.From)
	}
	for _, name := range g.Order() {
		sr := &StepResult{Name: name, Step: g.Step(name).Type}
		res.Steps = append(res.Steps, sr)
		r.byName[name] = sr
	}
	opts.Logger.Info("pipeline started", "pipeline", g.Pipeline.Name, "run", res.ID, "root", artifacts.Redact(root.String()), "steps", len(res.Steps))
	r.schedule(ctx)
	r.progress.finish()
	res.Ended = time.Now().UTC()
	res.ExitCode = exitCode(res)
	if err := r.writeRecord(ctx); err != nil {
		opts.Logger.Warn("run record not written", "err", err)
	}
	opts.Logger.Info("pipeline ended", "pipeline", g.Pipeline.Name, "run", res.ID, "exit_code", res.ExitCode, "duration", res.Ended.Sub(res.Started).Round(time.Millisecond).String())
	return res, nil
}

func exitCode(res *Result) int {
	code := step.ExitOK
	for _, s := range res.Steps {
		switch s.Status {
		case Failed:
			return step.ExitFailed
		case Gated:
			code = step.ExitGate
		}
	}
	return code
}

type runner struct {
	g        *pipeline.Graph
	opts     Options
	root     artifacts.URI
	values   map[string]map[string]string
	res      *Result
	byName   map[string]*StepResult
	rerun    []string
	progress *progress
}

// schedule starts every step whose dependencies are done, until all are.
func (r *runner) schedule(ctx context.Context) {
	done := make(chan string)
	sem := make(chan struct{}, r.opts.Parallelism)
	running := 0
	finished := map[string]bool{}
	started := map[string]bool{}
	for len(finished) < len(r.res.Steps) {
		for _, name := range r.g.Order() {
			if started[name] || !r.depsDone(name, finished) {
				continue
			}
			started[name] = true
			if reason := r.blocked(ctx, name); reason != "" {
				r.byName[name].Status, r.byName[name].Reason = Skipped, reason
				r.opts.Logger.Info("step skipped", "step", name, "reason", reason)
				r.progress.ended(name, Skipped)
				finished[name] = true
				continue
			}
			running++
			go func() {
				sem <- struct{}{}
				r.progress.started(name)
				r.runStep(ctx, name)
				r.progress.ended(name, r.byName[name].Status)
				<-sem
				done <- name
			}()
		}
		if running == 0 {
			continue // skips may have unblocked more; the loop re-checks
		}
		name := <-done
		running--
		finished[name] = true
	}
}

func (r *runner) depsDone(name string, finished map[string]bool) bool {
	for _, d := range r.g.Deps(name) {
		if !finished[d] {
			return false
		}
	}
	return true
}

// blocked says why a ready step must not run, or "".
func (r *runner) blocked(ctx context.Context, name string) string {
	for _, d := range r.g.Deps(name) {
		switch up := r.byName[d]; up.Status {
		case Failed:
			return "upstream " + d + " failed"
		case Gated:
			return "gate " + d + " said no"
		case Skipped:
			return "upstream " + d + " was skipped"
		}
	}
	if c := r.g.When(name); c != nil {
		ok, err := r.holds(ctx, c)
		if err != nil {
			return "when: " + err.Error()
		}
		if !ok {
			return fmt.Sprintf("when: %s.%s.%s is not %s", c.Step, c.Output, c.Property, c.Value)
		}
	}
	return ""
}

// holds evaluates a when condition on an upstream output's properties.
func (r *runner) holds(ctx context.Context, c *pipeline.Condition) (bool, error) {
	uri := r.byName[c.Step].Outputs[c.Output]
	u, err := artifacts.ParseURI(uri)
	if err != nil {
		return false, err
	}
	a, err := r.opts.Store.Open(ctx, u, "")
	if err != nil {
		return false, err
	}
	v, ok := a.Properties[c.Property]
	got := step.PropertyText(v)
	if !ok {
		got = ""
	}
	return (got == c.Value) != c.Negate, nil
}

// runStep runs one step as a child process, with its retries (a sharded
// step as its shards, then its merge).
func (r *runner) runStep(ctx context.Context, name string) {
	s := r.g.Step(name)
	sr := r.byName[name]
	start := time.Now()
	defer func() { sr.Duration = time.Since(start) }()
	inputs := map[string]string{}
	for input, v := range s.Inputs {
		inputs[input] = v.Text
	}
	for input, ref := range r.g.Refs(name) {
		inputs[input] = r.byName[ref.Step].Outputs[ref.Output]
	}
	t := task{step: name, label: name, typ: s.Type, inputs: inputs, retries: s.Retries,
		noCache: r.opts.NoCache || s.NoCache || slices.Contains(r.rerun, name)}
	if s.Shards > 0 {
		r.runSharded(ctx, t, s.Shards, sr)
	} else {
		r.runTask(ctx, t, sr)
	}
	level := slog.LevelInfo
	if sr.Status == Failed {
		level = slog.LevelError
	}
	r.opts.Logger.Log(ctx, level, "step ended", "step", name, "status", sr.Status, "reason", sr.Reason, "duration", time.Since(start).Round(time.Millisecond).String(), "log", sr.LogFile)
}

// task is one child process to run: a step, one of its shards or its merge.
type task struct {
	step    string // the pipeline step
	label   string // names its log and result files: step, step.shard-0003, step.merge
	typ     string
	inputs  map[string]string
	extra   []string // --shard I/N, --merge NAME=URI…
	noCache bool
	retries int
}

// runTask runs t, retrying failures (exit 1) up to t.retries times, and
// records how it ended in sr.
func (r *runner) runTask(ctx context.Context, t task, sr *StepResult) {
	for attempt := 1; ; attempt++ {
		sr.Attempts = attempt
		res, code, logPath, err := r.exec(ctx, t, attempt)
		if logPath != "" {
			sr.LogFile = logPath
		}
		switch {
		case err != nil:
			sr.Status, sr.Reason = Failed, err.Error()
		case code == step.ExitOK && res.Cached:
			sr.Status, sr.Reason = Cached, ""
		case code == step.ExitOK:
			sr.Status, sr.Reason = Succeeded, ""
		case code == step.ExitGate:
			sr.Status, sr.Reason = Gated, res.Error
		default:
			sr.Status, sr.Reason = Failed, firstLine(res.Error)
			if sr.Reason == "" {
				sr.Reason = fmt.Sprintf("exit code %d (log %s)", code, sr.LogFile)
			}
		}
		sr.Outputs, sr.Digests, sr.CacheKey = res.Outputs, res.Digests, res.CacheKey
		// Usage errors (exit 2) and gates are not transient: no retry.
		if sr.Status != Failed || code == step.ExitUsage || attempt > t.retries || ctx.Err() != nil {
			break
		}
		r.opts.Logger.Warn("step failed, retrying", "step", t.label, "attempt", attempt, "of", t.retries+1, "reason", sr.Reason)
		time.Sleep(min(time.Duration(attempt)*500*time.Millisecond, 5*time.Second))
	}
}

// exec starts `mlsteps <type> …` and reads its result.
func (r *runner) exec(ctx context.Context, t task, attempt int) (step.Result, int, string, error) {
	var res step.Result
	resultDir := filepath.Join(r.opts.LogDir, fmt.Sprintf("%s.%d.result", t.label, attempt))
	args := []string{"--log-format", "json", t.typ, "--cache-root", r.root.String(), "--result-dir", resultDir}
	if t.noCache {
		args = append(args, "--no-cache")
	}
	for _, in := range sortedKeys(t.inputs) {
		args = append(args, "--in", in+"="+t.inputs[in])
	}
	for _, p := range sortedKeys(r.values[t.step]) {
		args = append(args, "--"+p+"="+r.values[t.step][p])
	}
	args = append(args, t.extra...)
	logPath := filepath.Join(r.opts.LogDir, fmt.Sprintf("%s.%d.log", t.label, attempt))
	logf, err := os.Create(logPath)
	if err != nil {
		return res, 0, "", err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, r.opts.Binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if r.opts.BuildID != "" {
		cmd.Env = append(os.Environ(), BuildDigestEnv+"="+r.opts.BuildID)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	r.opts.Logger.Info("step started", "step", t.label, "type", t.typ, "attempt", attempt)
	runErr := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(runErr, &exitErr):
		code = exitErr.ExitCode()
	case runErr != nil:
		return res, 0, logPath, fmt.Errorf("start %s: %w", t.typ, runErr)
	}
	data, err := os.ReadFile(filepath.Join(resultDir, "result.json"))
	if err != nil {
		// Failed before the contract checks passed (usage): the log says why.
		res.Error = lastLogError(logPath)
		return res, code, logPath, nil
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return res, code, logPath, fmt.Errorf("result of %s: %w", t.label, err)
	}
	return res, code, logPath, nil
}

// lastLogError finds the error the step printed last.
func lastLogError(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "mlsteps: ") {
			return strings.TrimPrefix(lines[i], "mlsteps: ")
		}
	}
	if len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return ""
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// writeRecord keeps the run's summary with the artifacts.
func (r *runner) writeRecord(ctx context.Context) error {
	u := r.root.Join(".mlsteps", "runs", r.res.ID+".json")
	b, err := r.opts.Store.Bucket(ctx, u)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(r.res, "", "  ")
	if err != nil {
		return err
	}
	return b.WriteAll(ctx, u.Path, append(data, '\n'), nil)
}

// WriteSummary prints the closing table: step, status, cached, duration,
// outputs.
func WriteSummary(w io.Writer, res *Result) {
	fmt.Fprintf(w, "\n%-16s %-10s %-7s %9s  %s\n", "STEP", "STATUS", "CACHED", "DURATION", "OUTPUTS / REASON")
	for _, s := range res.Steps {
		cached := ""
		if s.Status == Cached {
			cached = "yes"
		}
		detail := s.Reason
		if len(s.Outputs) > 0 {
			var outs []string
			for _, k := range sortedKeys(s.Outputs) {
				outs = append(outs, k+"="+s.Outputs[k])
			}
			detail = strings.Join(outs, " ")
			if s.Reason != "" {
				detail += "  (" + firstLine(s.Reason) + ")"
			}
		}
		if len(s.Shards) > 0 {
			detail = fmt.Sprintf("[%d shards] %s", len(s.Shards), detail)
		}
		fmt.Fprintf(w, "%-16s %-10s %-7s %9s  %s\n", s.Name, s.Status, cached, s.Duration.Round(time.Millisecond), detail)
	}
	fmt.Fprintf(w, "run %s of %s: exit %d in %s\n", res.ID, res.Pipeline, res.ExitCode, res.Ended.Sub(res.Started).Round(time.Millisecond))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// BinaryDigest hashes an executable: the build part of every cache key.
func BinaryDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash binary %s: %w", path, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
