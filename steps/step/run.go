package step

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
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
	// CacheRoot, when set (and OutRoot and Outputs are not), places the
	// outputs at CacheRoot/<step>/<cache key>: a run whose key matches a
	// committed earlier run reuses its outputs instead of running. The key
	// covers the step, its version, the binary's build, the parameters and
	// the content digests of the inputs; never names, URIs or tags.
	CacheRoot string
	// NoCache runs the step even when a committed result exists for the key
	// (its outputs then go to a fresh attempt folder).
	NoCache bool
	Params  map[string]any
	// Shard, when set, runs one share of a shardable step's work (see
	// Sharding): its outputs are partials, marked with a ShardInfo.
	Shard *Shard
	// Merge, when set, merges the partials of a sharded run instead of
	// working: for each output, the partials' URIs (in any order). It
	// takes no Inputs; the merged outputs' lineage names the partials and
	// the inputs they were made from.
	Merge map[string][]string
}

// Result is what an execution produced, for orchestrators: the runner and
// Argo/KFP templates read it from ResultFile.
type Result struct {
	ExecutionID string            `json:"execution_id"`
	Status      string            `json:"status"`
	ExitCode    int               `json:"exit_code"`
	Cached      bool              `json:"cached,omitempty"`
	CacheKey    string            `json:"cache_key,omitempty"`
	Outputs     map[string]string `json:"outputs,omitempty"`
	Digests     map[string]string `json:"digests,omitempty"`
	// Properties are each output's scalar sidecar properties.
	Properties map[string]map[string]any `json:"properties,omitempty"`
	Error      string                    `json:"error,omitempty"`
}

// Env is what the harness runs a step with.
type Env struct {
	Store  *artifacts.Store
	Logger *slog.Logger // nil: discard
	Stderr io.Writer    // nil: discard
	// Interactive means stderr is a terminal, so progress bars may be drawn.
	Interactive bool
	Now         func() time.Time // nil: time.Now
	// BuildID identifies the binary (a digest of it); it is part of the
	// cache key, so a new build never reuses an old build's results.
	BuildID string
	// OnResult, when set, receives the result of every execution that got
	// past the contract checks (succeeded, gated, failed or cached).
	OnResult func(Result)
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

	outProps      map[string]map[string]any
	cacheKey      string
	mirror        artifacts.URI // the cache folder fed by copies, when set
	cachedFrom    *artifacts.Producer
	cachedOutputs map[string]*artifacts.Artifact
	// extra holds artifacts a step opened by a URI given in a parameter
	// (an A/B arm, a cascade stage): lineage inputs like declared ones.
	extra map[string]*artifacts.Artifact

	shard    *Shard  // running as this shard
	cover    *[3]int // the shard's items: first, end, total
	partials map[string][]*artifacts.Artifact
	merged   *MergeInfo
	upstream []artifacts.Input // the inputs merged partials were made from
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

// OpenInput opens an artifact that a parameter names (an A/B arm's model,
// a cascade stage) rather than a declared input, checks its type, and
// records it as a lineage input called name. Opening the same name again
// returns the same artifact. A bad URI or a missing or mistyped artifact
// is a bad-input error naming the parameter.
func (r *Run) OpenInput(ctx context.Context, name, param, raw string, typ artifacts.Type) (*artifacts.Artifact, error) {
	if a, ok := r.extra[name]; ok {
		return a, nil
	}
	u, err := artifacts.ParseURI(raw)
	if err != nil {
		return nil, BadInput(fmt.Errorf("--%s: %w", param, err))
	}
	a, err := r.env.Store.Open(ctx, u, typ)
	if err != nil {
		if errors.Is(err, artifacts.ErrNotFound) || errors.Is(err, artifacts.ErrInvalid) {
			return nil, BadInput(fmt.Errorf("--%s: %w", param, err))
		}
		return nil, fmt.Errorf("--%s: %w", param, err)
	}
	if r.extra == nil {
		r.extra = map[string]*artifacts.Artifact{}
	}
	r.extra[name] = a
	return a, nil
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
// contract, opens inputs, runs the step (or reuses a cached result),
// commits outputs with their lineage and writes the execution record. Its
// error maps to an exit code with ExitCode.
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
	rec := &artifacts.Execution{ID: r.id, Step: spec.Name, Version: spec.Version, Build: env.BuildID, CacheKey: r.cacheKey,
		Parameters: r.recordedParams(), Inputs: r.lineageInputs(), Started: started.UTC(), Host: hostname()}
	if r.cachedFrom != nil {
		return r.reuse(ctx, root, rec)
	}
	r.logger.Info("step started", "outputs", redactedURIs(r.outURIs))

	runErr := r.runStep(ctx)
	rec.Inputs = r.lineageInputs() // with what the step opened through OpenInput
	if runErr == nil || ExitCode(runErr) == ExitGate {
		outs, err := r.commit(context.WithoutCancel(ctx), started, rec, runErr) // a drained stream commits after SIGTERM
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
	}
	if runErr != nil {
		// A gate's verdict is recorded too: a refusal may write nothing else.
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
	r.finish(rec, runErr)
	return runErr
}

// finish logs the outcome and hands the result to the orchestrator.
func (r *Run) finish(rec *artifacts.Execution, runErr error) {
	attrs := []any{"status", rec.Status, "exit_code", ExitCode(runErr), "duration", rec.Ended.Sub(rec.Started).Round(time.Millisecond).String()}
	res := Result{ExecutionID: rec.ID, Status: rec.Status, ExitCode: ExitCode(runErr), Cached: rec.Status == artifacts.StatusCached,
		CacheKey: rec.CacheKey, Outputs: map[string]string{}, Digests: map[string]string{}, Properties: r.outProps}
	for _, o := range rec.Outputs {
		attrs = append(attrs, "output."+o.Name, o.URI, "digest."+o.Name, o.Digest)
		res.Outputs[o.Name], res.Digests[o.Name] = o.URI, o.Digest
	}
	if runErr != nil {
		res.Error = runErr.Error()
		r.logger.Error("step ended", append(attrs, "err", runErr.Error())...)
	} else {
		r.logger.Info("step ended", attrs...)
	}
	if r.env.OnResult != nil {
		r.env.OnResult(res)
	}
}

// reuse records a cache hit: the outputs of an earlier committed execution
// with the same key stand for this one.
func (r *Run) reuse(ctx context.Context, root artifacts.URI, rec *artifacts.Execution) error {
	rec.Status = artifacts.StatusCached
	rec.CachedFrom = r.cachedFrom.ExecutionID
	for _, port := range r.spec.Outputs {
		a := r.cachedOutputs[port.Name]
		r.keepProps(port.Name, a.Properties)
		uri := a.Location().String()
		if r.mirror.Scheme != "" {
			// The orchestrator wants the outputs at its own URIs.
			if _, err := r.env.Store.Copy(ctx, a, r.outURIs[port.Name]); err != nil {
				return fmt.Errorf("cache hit: output %s: %w", port.Name, err)
			}
			uri = r.outURIs[port.Name].String()
		}
		rec.Outputs = append(rec.Outputs, artifacts.Input{Name: port.Name, Type: a.Type, URI: artifacts.Redact(uri), Digest: a.Digest})
	}
	var gate error
	if reason := r.cachedFrom.Gate; reason != "" {
		gate = &GateError{Gate: r.spec.Name, Reason: "cached verdict of execution " + r.cachedFrom.ExecutionID + ": " + reason}
		rec.ExitCode = ExitGate
	}
	rec.Ended = r.env.Now().UTC()
	if err := r.env.Store.WriteExecution(context.WithoutCancel(ctx), root, rec); err != nil {
		return err
	}
	r.finish(rec, gate)
	return gate
}

// runStep calls the step, turning a panic into an error so the harness still
// cleans up and records the failure.
func (r *Run) runStep(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("step %s panicked: %v\n%s", r.spec.Name, p, debug.Stack())
		}
	}()
	if r.Merging() {
		return r.spec.Shard.Merge(ctx, r)
	}
	return r.spec.Run(ctx, r)
}

// resolve checks the invocation, opens inputs and places outputs; it
// returns the root for the execution record.
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
	if err := r.resolveParams(inv); err != nil {
		return artifacts.URI{}, err
	}
	if err := r.checkSharding(inv); err != nil {
		return artifacts.URI{}, err
	}
	if inv.Merge != nil {
		if err := r.openPartials(ctx, inv.Merge); err != nil {
			return artifacts.URI{}, err
		}
	} else if err := r.openInputs(ctx, inv); err != nil {
		return artifacts.URI{}, err
	}
	if inv.CacheRoot != "" && inv.OutRoot == "" && len(inv.Outputs) == 0 {
		return r.placeCached(ctx, inv)
	}
	if inv.CacheRoot != "" {
		return r.placeMirrored(ctx, inv)
	}
	return r.placeOutputs(ctx, inv)
}

// placeMirrored serves orchestrators that choose the output URIs (KFP):
// outputs go where they say, and the content cache is consulted and fed
// through copies, so such runs share the cache of every other run.
func (r *Run) placeMirrored(ctx context.Context, inv Invocation) (artifacts.URI, error) {
	cacheRoot := inv.CacheRoot
	inv.CacheRoot = ""
	root, err := r.placeOutputs(ctx, inv)
	if err != nil {
		return root, err
	}
	base, err := artifacts.ParseURI(cacheRoot)
	if err != nil {
		return root, BadInput(fmt.Errorf("--cache-root: %w", err))
	}
	key, err := r.key(ctx)
	if err != nil {
		return root, err
	}
	r.cacheKey = key
	r.mirror = base.Join(r.spec.Name, key[:32])
	if !inv.NoCache {
		outs, err := r.committedOutputs(ctx, r.mirror)
		if err != nil {
			return root, err
		}
		if outs != nil {
			r.cachedOutputs = outs
			r.cachedFrom = outs[r.spec.Outputs[0].Name].Producer
			if r.cachedFrom == nil {
				r.cachedFrom = &artifacts.Producer{}
			}
		}
	}
	return root, nil
}

// key computes the cache key, with the step's own content digests.
func (r *Run) key(ctx context.Context) (string, error) {
	var extra map[string]string
	if r.spec.ContentKey != nil && !r.Merging() { // a merge's content is its partials
		var err error
		if extra, err = r.spec.ContentKey(ctx, r); err != nil {
			return "", err
		}
	}
	return r.computeCacheKey(extra), nil
}

// planKey is the cache key of the whole sharded run: the shard left out,
// so every shard of one run has the same.
func (r *Run) planKey(ctx context.Context) (string, error) {
	var extra map[string]string
	if r.spec.ContentKey != nil {
		var err error
		if extra, err = r.spec.ContentKey(ctx, r); err != nil {
			return "", err
		}
	}
	return r.hashKey(extra, false), nil
}

func (r *Run) resolveParams(inv Invocation) error {
	r.params = map[string]any{}
	for name := range inv.Params {
		if _, ok := r.spec.Param(name); !ok {
			return Usagef("%s has no parameter %q", r.spec.Name, name)
		}
	}
	for _, p := range r.spec.Params {
		v, given := inv.Params[p.Name]
		if !given || v == nil {
			if p.Required {
				return Usagef("parameter --%s is required", p.Name)
			}
			v = p.Default
		}
		if v != nil {
			if err := checkValue(p, v); err != nil {
				return Usagef("parameter --%s: %v", p.Name, err)
			}
		}
		r.params[p.Name] = v
	}
	return nil
}

func (r *Run) openInputs(ctx context.Context, inv Invocation) error {
	for _, port := range r.spec.Inputs {
		raw, ok := inv.Inputs[port.Name]
		if !ok {
			if port.Optional {
				continue
			}
			return Usagef("input %s (%s) is required: give --in %s=URI", port.Name, port.Type, port.Name)
		}
		u, err := artifacts.ParseURI(raw)
		if err != nil {
			return inputError(port.Name, err)
		}
		a, err := r.env.Store.Open(ctx, u, port.Type)
		if err != nil {
			return inputError(port.Name, err)
		}
		r.inputs[port.Name] = a
	}
	return nil
}

// placeOutputs puts outputs where the caller said: --out or --out-root.
func (r *Run) placeOutputs(ctx context.Context, inv Invocation) (artifacts.URI, error) {
	spec := r.spec
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
			return root, Usagef("output %s has no URI: give --out %s=URI, --out-root URI or --cache-root URI", port.Name, port.Name)
		}
		if _, err := r.env.Store.Open(ctx, u, ""); err == nil {
			return root, Usagef("output %s: %s is already committed; artifacts are immutable, write to a new URI", port.Name, artifacts.Redact(u.String()))
		}
		r.outURIs[port.Name] = u
	}
	if inv.OutRoot == "" {
		if len(spec.Outputs) == 0 {
			return root, Usagef("give --out-root URI: it is where the execution record goes")
		}
		root = r.outURIs[spec.Outputs[0].Name].Parent()
	}
	return root, nil
}

// placeCached puts outputs at CacheRoot/<step>/<key>, or finds them there
// already committed (a cache hit, unless NoCache). A run killed half-way
// left no sidecar, so the same place is simply written again (resume).
func (r *Run) placeCached(ctx context.Context, inv Invocation) (artifacts.URI, error) {
	base, err := artifacts.ParseURI(inv.CacheRoot)
	if err != nil {
		return base, BadInput(fmt.Errorf("--cache-root: %w", err))
	}
	if r.cacheKey, err = r.key(ctx); err != nil {
		return base, err
	}
	root := base.Join(r.spec.Name, r.cacheKey[:32])
	if !inv.NoCache {
		outs, err := r.committedOutputs(ctx, root)
		if err != nil {
			return root, err
		}
		if outs != nil {
			r.cachedOutputs = outs
			r.cachedFrom = outs[r.spec.Outputs[0].Name].Producer
			if r.cachedFrom == nil {
				r.cachedFrom = &artifacts.Producer{}
			}
			return root, nil
		}
	}
	// A run that must not reuse, or a committed set that is only partly
	// there, gets a fresh attempt folder: committed artifacts never change.
	for attempt := 0; ; attempt++ {
		dir := root
		if attempt > 0 {
			dir = base.Join(r.spec.Name, fmt.Sprintf("%s-%d", r.cacheKey[:32], attempt))
		}
		free := true
		for _, port := range r.spec.Outputs {
			if _, err := r.env.Store.Open(ctx, dir.Join(port.Name), ""); err == nil {
				free = false
				break
			}
		}
		if free {
			return r.placeOutputs(ctx, Invocation{OutRoot: dir.String()})
		}
	}
}

// committedOutputs returns every output committed under root, or nil when
// any is missing.
func (r *Run) committedOutputs(ctx context.Context, root artifacts.URI) (map[string]*artifacts.Artifact, error) {
	if len(r.spec.Outputs) == 0 {
		return nil, nil
	}
	outs := map[string]*artifacts.Artifact{}
	for _, port := range r.spec.Outputs {
		a, err := r.env.Store.Open(ctx, root.Join(port.Name), port.Type)
		switch {
		case err == nil:
			outs[port.Name] = a
		case errors.Is(err, artifacts.ErrNotFound), errors.Is(err, artifacts.ErrNotCommitted):
			return nil, nil
		default:
			return nil, fmt.Errorf("cache lookup: %w", err)
		}
	}
	return outs, nil
}

// computeCacheKey hashes what determines a step's outputs: the step and its
// version, the binary, every parameter value (defaults included, secrets
// left out), each input's content digest and the step's own content digests.
func (r *Run) computeCacheKey(content map[string]string) string {
	return r.hashKey(content, true)
}

// hashKey is computeCacheKey, with or without the shard.
func (r *Run) hashKey(content map[string]string, withShard bool) string {
	params := map[string]any{}
	for _, p := range r.spec.Params {
		if v := r.params[p.Name]; v != nil && !p.Secret {
			if d, ok := v.(time.Duration); ok {
				v = d.String()
			}
			params[p.Name] = v
		}
	}
	inputs := map[string]string{}
	for name, a := range r.inputs {
		inputs[name] = a.Digest
	}
	key := map[string]any{"step": r.spec.Name, "version": r.spec.Version, "build": r.env.BuildID, "params": params, "inputs": inputs, "content": content}
	// Only sharded runs and merges add fields: other keys stay as they were.
	if r.shard != nil && withShard {
		key["shard"] = r.shard.String()
	}
	if r.Merging() {
		partials := map[string][]string{}
		for name, list := range r.partials {
			for _, a := range list {
				partials[name] = append(partials[name], a.Digest)
			}
		}
		key["merge"] = partials
	}
	data, _ := json.Marshal(key)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
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
func (r *Run) commit(ctx context.Context, started time.Time, rec *artifacts.Execution, gate error) ([]artifacts.Input, error) {
	producer := artifacts.Producer{Step: r.spec.Name, Version: r.spec.Version, ExecutionID: r.id,
		Parameters: rec.Parameters, Started: started.UTC(), Ended: r.env.Now().UTC(), Host: rec.Host}
	if gate != nil {
		producer.Gate = gate.Error()
	}
	var shardInfo *ShardInfo
	if r.shard != nil {
		plan, err := r.planKey(ctx)
		if err != nil {
			return nil, err
		}
		info, err := r.shardProperty(plan)
		if err != nil {
			return nil, err
		}
		shardInfo = &info
	}
	var outs []artifacts.Input
	for _, port := range r.spec.Outputs {
		w, ok := r.outputs[port.Name]
		if !ok && gate != nil && port.NotOnGate {
			continue
		}
		if !ok {
			return outs, fmt.Errorf("step %s did not write its output %s", r.spec.Name, port.Name)
		}
		w.SetProducer(producer)
		if shardInfo != nil {
			w.SetProperty(PropShard, *shardInfo)
		}
		if r.merged != nil {
			w.SetProperty(PropMerged, *r.merged)
		}
		for _, in := range rec.Inputs {
			w.AddInput(in)
		}
		sc, err := w.Commit(ctx)
		if err != nil {
			return outs, fmt.Errorf("output %s: %w", port.Name, err)
		}
		r.keepProps(port.Name, sc.Properties)
		r.feedCache(ctx, port.Name)
		outs = append(outs, artifacts.Input{Name: port.Name, Type: sc.Type, URI: sc.URI, Digest: sc.Digest})
	}
	return outs, nil
}

// feedCache copies a committed output into the cache folder when the
// orchestrator chose the output URIs; a failure only costs a future hit.
func (r *Run) feedCache(ctx context.Context, name string) {
	if r.mirror.Scheme == "" {
		return
	}
	a, err := r.env.Store.Open(ctx, r.outURIs[name], "")
	if err == nil {
		_, err = r.env.Store.Copy(ctx, a, r.mirror.Join(name))
	}
	if err != nil && !errors.Is(err, artifacts.ErrExists) {
		r.logger.Warn("output not copied into the cache", "output", name, "err", err)
	}
}

// keepProps remembers an output's scalar properties for the result.
func (r *Run) keepProps(name string, props map[string]any) {
	scalars := map[string]any{}
	for k, v := range props {
		switch v.(type) {
		case string, bool, int, int64, float64:
			scalars[k] = v
		}
	}
	if r.outProps == nil {
		r.outProps = map[string]map[string]any{}
	}
	r.outProps[name] = scalars
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
	for _, name := range slices.Sorted(maps.Keys(r.extra)) {
		a := r.extra[name]
		ins = append(ins, artifacts.Input{Name: name, Type: a.Type, URI: artifacts.Redact(a.Location().String()), Digest: a.Digest})
	}
	return append(ins, r.upstream...)
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
			if v != "" { // an empty secret hides nothing, and says none was given
				v = "xxxxx"
			}
		case p.Type == String:
			v = artifacts.Redact(v.(string))
		case p.Type == Duration:
			v = v.(time.Duration).String()
		}
		out[p.Name] = v
	}
	// Reserved names: they cannot collide with a parameter.
	if r.shard != nil {
		out["shard"] = r.shard.String()
	}
	if r.Merging() {
		out["merge"] = len(r.partials[r.spec.Outputs[0].Name])
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
