package step

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
)

// Invocation is what a caller asks of a step: input and output URIs and
// parameter values. Parameters left out take their defaults.
type Invocation struct {
	Inputs  map[string]string
	Outputs map[string]string
	// OutRoot places every output not named in Outputs at OutRoot/<name>,
	// and is where the execution record goes.
	OutRoot string
	Params  map[string]any
}

// Env is what the harness runs a step with.
type Env struct {
	Store  *artifacts.Store
	Logger *slog.Logger // nil: discard
	Stderr io.Writer    // nil: discard
	// Interactive means stderr is a terminal, so progress bars may be drawn.
	Interactive bool
	Now         func() time.Time // nil: time.Now
}

// Run is a step's view of one execution: its parameters, opened inputs and
// the outputs it writes.
type Run struct {
	spec    *Spec
	env     Env
	id      string
	params  map[string]any
	inputs  map[string]*artifacts.Artifact
	outURIs map[string]artifacts.URI
	outputs map[string]*artifacts.Writer
	logger  *slog.Logger
}

// ID is the execution id, unique per run.
func (r *Run) ID() string { return r.id }

// Store is the artifact store the run reads and writes through.
func (r *Run) Store() *artifacts.Store { return r.env.Store }

// Logger logs with the step and execution id attached.
func (r *Run) Logger() *slog.Logger { return r.logger }

// Stderr is where progress bars go, when Interactive.
func (r *Run) Stderr() io.Writer { return r.env.Stderr }

// Interactive reports whether stderr is a terminal.
func (r *Run) Interactive() bool { return r.env.Interactive }

func (r *Run) param(name string, t ParamType) any {
	p, ok := r.spec.Param(name)
	if !ok || p.Type != t {
		panic(fmt.Sprintf("step %s: no %s parameter %q declared", r.spec.Name, t, name))
	}
	return r.params[name]
}

// String returns a string parameter ("" when unset with no default).
func (r *Run) String(name string) string { s, _ := r.param(name, String).(string); return s }

// Int returns an int parameter.
func (r *Run) Int(name string) int64 { v, _ := r.param(name, Int).(int64); return v }

// Float returns a float parameter.
func (r *Run) Float(name string) float64 { v, _ := r.param(name, Float).(float64); return v }

// Bool returns a bool parameter.
func (r *Run) Bool(name string) bool { v, _ := r.param(name, Bool).(bool); return v }

// Duration returns a duration parameter.
func (r *Run) Duration(name string) time.Duration {
	v, _ := r.param(name, Duration).(time.Duration)
	return v
}

// IsSet reports whether the caller gave the parameter (rather than its default).
func (r *Run) IsSet(name string) bool { _, ok := r.params[name]; return ok && r.params[name] != nil }

// Input returns an opened input artifact, or nil for an optional input the
// caller left out.
func (r *Run) Input(name string) *artifacts.Artifact {
	if _, ok := r.spec.Input(name); !ok {
		panic(fmt.Sprintf("step %s: no input %q declared", r.spec.Name, name))
	}
	return r.inputs[name]
}

// Output creates (once) and returns the writer of a declared output. The
// harness records lineage and commits it when Run returns.
func (r *Run) Output(ctx context.Context, name string) (*artifacts.Writer, error) {
	port, ok := r.spec.Output(name)
	if !ok {
		panic(fmt.Sprintf("step %s: no output %q declared", r.spec.Name, name))
	}
	if w, ok := r.outputs[name]; ok {
		return w, nil
	}
	w, err := r.env.Store.Create(ctx, r.outURIs[name], port.Type, name)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", name, err)
	}
	r.outputs[name] = w
	return w, nil
}

// Execute runs spec for inv: it checks the invocation against the
// contract, opens inputs, runs the step, commits outputs with their lineage
// and writes the execution record. Its error maps to an exit code with
// ExitCode.
func Execute(ctx context.Context, spec *Spec, inv Invocation, env Env) (err error) {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	started := env.Now()
	r := &Run{spec: spec, env: env, id: artifacts.NewExecutionID(started),
		inputs: map[string]*artifacts.Artifact{}, outputs: map[string]*artifacts.Writer{}}
	r.logger = env.Logger.With("step", spec.Name, "execution", r.id)

	root, err := r.resolve(ctx, inv)
	if err != nil {
		return err
	}
	r.logger.Info("step started", "outputs", redactedURIs(r.outURIs))
	rec := &artifacts.Execution{ID: r.id, Step: spec.Name, Version: spec.Version, Parameters: r.recordedParams(),
		Inputs: r.lineageInputs(), Started: started.UTC(), Host: hostname()}

	runErr := r.runStep(ctx)
	if runErr == nil || ExitCode(runErr) == ExitGate {
		outs, err := r.commit(ctx, started, rec)
		if err != nil {
			runErr = err
		}
		rec.Outputs = outs
	}
	if runErr != nil && ExitCode(runErr) != ExitGate {
		r.abort()
	}

	rec.Ended = env.Now().UTC()
	rec.ExitCode = ExitCode(runErr)
	rec.Status = map[int]string{ExitOK: artifacts.StatusSucceeded, ExitGate: artifacts.StatusGated}[rec.ExitCode]
	if rec.Status == "" {
		rec.Status = artifacts.StatusFailed
		rec.Error = runErr.Error()
	}
	// The record is lineage, so a run that cannot write it has failed, but
	// its own error stays the one reported first.
	if err := env.Store.WriteExecution(context.WithoutCancel(ctx), root, rec); err != nil {
		r.logger.Error("execution record not written", "err", err)
		if runErr == nil {
			runErr = err
		}
	}
	attrs := []any{"status", rec.Status, "exit_code", ExitCode(runErr), "duration", rec.Ended.Sub(rec.Started).Round(time.Millisecond).String()}
	for _, o := range rec.Outputs {
		attrs = append(attrs, "output."+o.Name, o.URI, "digest."+o.Name, o.Digest)
	}
	if runErr != nil {
		r.logger.Error("step ended", append(attrs, "err", runErr.Error())...)
	} else {
		r.logger.Info("step ended", attrs...)
	}
	return runErr
}

// runStep calls the step, turning a panic into an error so the harness still
// cleans up and records the failure.
func (r *Run) runStep(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("step %s panicked: %v\n%s", r.spec.Name, p, debug.Stack())
		}
	}()
	return r.spec.Run(ctx, r)
}

// resolve checks the invocation and opens inputs; it returns the root for
// the execution record.
func (r *Run) resolve(ctx context.Context, inv Invocation) (artifacts.URI, error) {
	spec := r.spec
	for name := range inv.Inputs {
		if _, ok := spec.Input(name); !ok {
			return artifacts.URI{}, Usagef("%s has no input %q (inputs: %s)", spec.Name, name, portNames(spec.Inputs))
		}
	}
	for name := range inv.Outputs {
		if _, ok := spec.Output(name); !ok {
			return artifacts.URI{}, Usagef("%s has no output %q (outputs: %s)", spec.Name, name, portNames(spec.Outputs))
		}
	}
	r.params = map[string]any{}
	for name := range inv.Params {
		if _, ok := spec.Param(name); !ok {
			return artifacts.URI{}, Usagef("%s has no parameter %q", spec.Name, name)
		}
	}
	for _, p := range spec.Params {
		v, given := inv.Params[p.Name]
		if !given || v == nil {
			if p.Required {
				return artifacts.URI{}, Usagef("parameter --%s is required", p.Name)
			}
			v = p.Default
		}
		if v != nil {
			if err := checkValue(p, v); err != nil {
				return artifacts.URI{}, Usagef("parameter --%s: %v", p.Name, err)
			}
		}
		r.params[p.Name] = v
	}

	var root artifacts.URI
	if inv.OutRoot != "" {
		u, err := artifacts.ParseURI(inv.OutRoot)
		if err != nil {
			return root, BadInput(fmt.Errorf("--out-root: %w", err))
		}
		root = u
	}
	r.outURIs = map[string]artifacts.URI{}
	for _, port := range spec.Outputs {
		raw, ok := inv.Outputs[port.Name]
		var u artifacts.URI
		switch {
		case ok:
			parsed, err := artifacts.ParseURI(raw)
			if err != nil {
				return root, BadInput(fmt.Errorf("output %s: %w", port.Name, err))
			}
			u = parsed
		case inv.OutRoot != "":
			u = root.Join(port.Name)
		default:
			return root, Usagef("output %s has no URI: give --out %s=URI or --out-root URI", port.Name, port.Name)
		}
		if _, err := r.env.Store.Open(ctx, u, ""); err == nil {
			return root, Usagef("output %s: %s is already committed; artifacts are immutable, write to a new URI", port.Name, artifacts.Redact(u.String()))
		}
		r.outURIs[port.Name] = u
	}
	if inv.OutRoot == "" {
		if len(spec.Outputs) > 0 {
			root = r.outURIs[spec.Outputs[0].Name].Parent()
		} else {
			return root, Usagef("give --out-root URI: it is where the execution record goes")
		}
	}

	for _, port := range spec.Inputs {
		raw, ok := inv.Inputs[port.Name]
		if !ok {
			if port.Optional {
				continue
			}
			return root, Usagef("input %s (%s) is required: give --in %s=URI", port.Name, port.Type, port.Name)
		}
		u, err := artifacts.ParseURI(raw)
		if err != nil {
			return root, inputError(port.Name, err)
		}
		a, err := r.env.Store.Open(ctx, u, port.Type)
		if err != nil {
			return root, inputError(port.Name, err)
		}
		r.inputs[port.Name] = a
	}
	return root, nil
}

func portNames(ports []Port) string {
	if len(ports) == 0 {
		return "none"
	}
	names := make([]string, len(ports))
	for i, p := range ports {
		names[i] = p.Name
	}
	return fmt.Sprint(names)
}

// commit records lineage on every output and commits them, in declaration
// order.
func (r *Run) commit(ctx context.Context, started time.Time, rec *artifacts.Execution) ([]artifacts.Input, error) {
	producer := artifacts.Producer{Step: r.spec.Name, Version: r.spec.Version, ExecutionID: r.id,
		Parameters: rec.Parameters, Started: started.UTC(), Ended: r.env.Now().UTC(), Host: rec.Host}
	var outs []artifacts.Input
	for _, port := range r.spec.Outputs {
		w, ok := r.outputs[port.Name]
		if !ok {
			return outs, fmt.Errorf("step %s did not write its output %s", r.spec.Name, port.Name)
		}
		w.SetProducer(producer)
		for _, in := range rec.Inputs {
			w.AddInput(in)
		}
		sc, err := w.Commit(ctx)
		if err != nil {
			return outs, fmt.Errorf("output %s: %w", port.Name, err)
		}
		outs = append(outs, artifacts.Input{Name: port.Name, Type: sc.Type, URI: sc.URI, Digest: sc.Digest})
	}
	return outs, nil
}

// abort removes uncommitted outputs, best effort, even if ctx is cancelled.
func (r *Run) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, w := range r.outputs {
		if err := w.Abort(ctx); err != nil {
			r.logger.Warn("could not remove an uncommitted output", "output", name, "err", err)
		}
	}
}

func (r *Run) lineageInputs() []artifacts.Input {
	var ins []artifacts.Input
	for _, port := range r.spec.Inputs {
		if a := r.inputs[port.Name]; a != nil {
			ins = append(ins, artifacts.Input{Name: port.Name, Type: a.Type, URI: artifacts.Redact(a.Location().String()), Digest: a.Digest})
		}
	}
	return ins
}

// recordedParams is the parameter map as it may be written down: secrets
// hidden, credentials in URLs redacted, durations as text.
func (r *Run) recordedParams() map[string]any {
	out := make(map[string]any, len(r.params))
	for _, p := range r.spec.Params {
		v := r.params[p.Name]
		switch {
		case v == nil:
			continue
		case p.Secret:
			v = "xxxxx"
		case p.Type == String:
			v = artifacts.Redact(v.(string))
		case p.Type == Duration:
			v = v.(time.Duration).String()
		}
		out[p.Name] = v
	}
	return out
}

func redactedURIs(m map[string]artifacts.URI) []string {
	var out []string
	for name, u := range m {
		out = append(out, name+"="+artifacts.Redact(u.String()))
	}
	slices.Sort(out)
	return out
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
