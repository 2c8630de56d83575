package infer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
	xfstep "github.com/mlsteps/mlsteps/steps/transform"
)

// described is a handler with the example columns it reads; optional
// columns may come from an earlier cascade stage instead.
type described struct {
	columns  []string
	optional []string
	text     []string // key columns: read as strings from stream messages
}

// arm is one --ab entry.
type arm struct {
	name, uri string
	weight    float64
}

// parseAB reads ARM=URI:WEIGHT,...; the weight follows the last colon, so
// URIs with colons (s3://, file://) need no quoting.
func parseAB(s string) ([]arm, error) {
	var arms []arm
	for _, part := range list(s) {
		name, rest, ok := strings.Cut(part, "=")
		i := strings.LastIndex(rest, ":")
		if !ok || name == "" || i <= 0 {
			return nil, fmt.Errorf("--ab %q: want ARM=URI:WEIGHT", part)
		}
		w, err := strconv.ParseFloat(rest[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("--ab %q: weight %q is not a number", part, rest[i+1:])
		}
		for _, a := range arms {
			if a.name == name {
				return nil, fmt.Errorf("--ab: arm %q named twice", name)
			}
		}
		arms = append(arms, arm{name: name, uri: rest[:i], weight: w})
	}
	if len(arms) < 2 {
		return nil, errors.New("--ab needs at least two arms")
	}
	return arms, nil
}

// contentKey puts the content of models named by parameters (A/B arms,
// the cascade's, the pointer's current one) into the cache key, and opens
// them as lineage inputs.
func contentKey(ctx context.Context, r *step.Run) (map[string]string, error) {
	refs, err := paramModels(ctx, r)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, a := range refs {
		out[name] = a.Digest
	}
	if r.Bool("stream") {
		out["stream"] = streamNonce()
	}
	return out, nil
}

// paramModels opens the Model artifacts that parameters name, by their
// lineage name ("ab.<arm>", "cascade", "watch").
func paramModels(ctx context.Context, r *step.Run) (map[string]*artifacts.Artifact, error) {
	out := map[string]*artifacts.Artifact{}
	if s := r.String("ab"); s != "" {
		arms, err := parseAB(s)
		if err != nil {
			return nil, step.BadInput(err)
		}
		for _, a := range arms {
			art, err := r.OpenInput(ctx, "ab."+a.name, "ab", a.uri, artifacts.TypeModel)
			if err != nil {
				return nil, err
			}
			out["ab."+a.name] = art
		}
	}
	if s := r.String("cascade"); s != "" {
		art, err := r.OpenInput(ctx, "cascade", "cascade", s, artifacts.TypeModel)
		if err != nil {
			return nil, err
		}
		out["cascade"] = art
	}
	if s := r.String("watch"); s != "" {
		u, err := resolvePointer(ctx, r.Store(), s)
		if err != nil {
			return nil, err
		}
		art, err := r.OpenInput(ctx, "watch", "watch", u.String(), artifacts.TypeModel)
		if err != nil {
			return nil, err
		}
		out["watch"] = art
	}
	return out, nil
}

// buildHandler makes the inference handler the parameters ask for and
// checks the columns it reads against the examples' schema (a nil schema,
// for a stream, skips the check and the optional columns).
func buildHandler(ctx context.Context, r *step.Run, s settings, schema *arrow.Schema) (inference.ModelHandler, described, error) {
	sources := 0
	for _, given := range []bool{r.Input("model") != nil, r.String("ab") != "", r.String("watch") != "", r.String("remote") != ""} {
		if given {
			sources++
		}
	}
	if sources != 1 {
		return nil, described{}, step.Usagef("give the model one way: --in model=URI, --ab ARM=URI:WEIGHT,..., --watch POINTER or --remote URL")
	}
	if r.Input("challenger") != nil && r.Input("model") == nil {
		return nil, described{}, step.Usagef("--in challenger is the challenger to --in model, the champion")
	}
	refs, err := paramModels(ctx, r)
	if err != nil {
		return nil, described{}, err
	}
	opts := model.HandlerOptions{Session: s.session, MaxModels: int(r.Int("max-models")), Sort: r.Bool("group-by-key"), KeyColumn: r.String("key-column")}
	// textCols are read as strings from stream messages: a model's string
	// inputs (a fused transform's raw categorical columns) and keys.
	var transformCols, keys, textCols []string
	if t := r.Input("transform"); t != nil {
		if opts.Transform, err = t.ReadFile(ctx, xfstep.FileONNX); err != nil {
			return nil, described{}, err
		}
		infos, err := artifacts.Property[[]xfstep.InputInfo](t.Sidecar, xfstep.PropInputs)
		if err != nil {
			return nil, described{}, step.BadInput(fmt.Errorf("input transform: %w", err))
		}
		for _, in := range infos {
			transformCols = append(transformCols, in.Name)
			if in.ONNXType == "tensor(string)" {
				textCols = append(textCols, in.Name)
			}
		}
	}
	open := func(a *artifacts.Artifact, what string) (*model.Model, []string, error) {
		m, err := model.Open(ctx, a)
		if err != nil {
			return nil, nil, step.BadInput(fmt.Errorf("%s: %w", what, err))
		}
		if m.Keyed == nil && r.String("key-column") != "" {
			return nil, nil, step.Usagef("--key-column: %s is not a keyed Model", what)
		}
		cols := m.Columns()
		if transformCols != nil {
			cols = slices.Clone(transformCols)
		} else {
			textCols = append(textCols, stringColumns(m)...)
		}
		if m.Keyed != nil {
			key := m.Keyed.KeyColumn
			if opts.KeyColumn != "" {
				key = opts.KeyColumn
			}
			cols = append(cols, key)
			keys = append(keys, key)
		}
		return m, cols, nil
	}
	var (
		h    inference.ModelHandler
		desc described
	)
	switch {
	case r.String("remote") != "":
		rh, cols, err := remoteHandler(r, s)
		if err != nil {
			return nil, desc, err
		}
		h, desc.columns = rh, cols
	case r.Input("model") != nil && r.Input("challenger") != nil:
		share, key := r.Float("challenger-share"), r.String("ab-key")
		if share <= 0 || share >= 1 {
			return nil, desc, step.Usagef("--challenger-share must be within (0, 1), not %v", share)
		}
		if key == "" {
			return nil, desc, step.Usagef("--in challenger needs --ab-key, the column whose hash picks a row's arm")
		}
		ab := &inference.ABHandler{ID: r.String("model-id"), KeyColumn: key}
		if ab.ID == "" {
			ab.ID = "ab"
		}
		for _, arm := range []struct {
			name   string
			in     string
			weight float64
		}{{"champion", "model", 1 - share}, {"challenger", "challenger", share}} {
			m, cols, err := open(r.Input(arm.in), "input "+arm.in)
			if err != nil {
				return nil, desc, err
			}
			ah, err := m.Handler(opts)
			if err != nil {
				return nil, desc, err
			}
			ab.Arms = append(ab.Arms, inference.Arm{Name: arm.name, Weight: arm.weight, Handler: ah})
			desc.columns = append(desc.columns, cols...)
		}
		desc.columns = append(desc.columns, key)
		desc.text = append(desc.text, key)
		h = ab
	case r.Input("model") != nil:
		m, cols, err := open(r.Input("model"), "input model")
		if err != nil {
			return nil, desc, err
		}
		opts.ID = r.String("model-id")
		if h, err = m.Handler(opts); err != nil {
			return nil, desc, err
		}
		desc.columns = cols
	case r.String("ab") != "":
		arms, _ := parseAB(r.String("ab"))
		key := r.String("ab-key")
		if key == "" {
			return nil, desc, step.Usagef("--ab needs --ab-key, the column whose hash picks a row's arm")
		}
		ab := &inference.ABHandler{ID: r.String("model-id"), KeyColumn: key}
		if ab.ID == "" {
			ab.ID = "ab"
		}
		for _, a := range arms {
			m, cols, err := open(refs["ab."+a.name], "--ab arm "+a.name)
			if err != nil {
				return nil, desc, err
			}
			ah, err := m.Handler(opts)
			if err != nil {
				return nil, desc, err
			}
			ab.Arms = append(ab.Arms, inference.Arm{Name: a.name, Weight: a.weight, Handler: ah})
			desc.columns = append(desc.columns, cols...)
		}
		if _, err := inference.NewSplit(weights(ab.Arms)); err != nil {
			return nil, desc, step.Usagef("--ab: %v", err)
		}
		desc.columns = append(desc.columns, key)
		desc.text = append(desc.text, key)
		h = ab
	default:
		m, cols, err := open(refs["watch"], "--watch")
		if err != nil {
			return nil, desc, err
		}
		h = watchHandler(r, opts, m)
		desc.columns = cols
	}
	secondModel := refs["cascade"]
	if in := r.Input("second"); in != nil {
		if secondModel != nil {
			return nil, desc, step.Usagef("give the cascade's second model one way: --cascade URI or --in second=URI")
		}
		secondModel = in
	}
	if secondModel != nil {
		m, cols, err := open(secondModel, "the cascade's second model")
		if err != nil {
			return nil, desc, err
		}
		ch, err := m.Handler(model.HandlerOptions{Session: s.session, Transform: opts.Transform, MaxModels: opts.MaxModels, Sort: opts.Sort})
		if err != nil {
			return nil, desc, err
		}
		second := inference.Stage{Handler: ch}
		if below := r.Float("cascade-below"); below > 0 {
			second.Escalate = inference.TopScoreBelow(below)
		}
		id := r.String("model-id")
		if id == "" {
			id = "cascade"
		}
		h = &inference.CascadeHandler{ID: id, Stages: []inference.Stage{{Handler: h}, second}}
		desc.optional = cols // they may be the first model's outputs
	} else if r.Float("cascade-below") != 0 {
		return nil, desc, step.Usagef("--cascade-below needs --cascade or --in second")
	}
	desc.text = append(desc.text, keys...)
	desc.text = append(desc.text, textCols...)
	if schema == nil {
		return h, desc, nil
	}
	var missing []string
	for _, c := range desc.columns {
		if len(schema.FieldIndices(c)) == 0 && !slices.Contains(missing, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, desc, step.BadInput(fmt.Errorf("the model reads columns the examples do not have: %s (the examples have %s)",
			strings.Join(missing, ", "), columnNames(schema)))
	}
	for _, c := range desc.optional {
		if len(schema.FieldIndices(c)) > 0 {
			desc.columns = append(desc.columns, c)
		}
	}
	return h, desc, nil
}

func weights(arms []inference.Arm) []float64 {
	w := make([]float64, len(arms))
	for i, a := range arms {
		w[i] = a.Weight
	}
	return w
}

// resolvePointer is model.ResolvePointer with a bad pointer as bad input.
func resolvePointer(ctx context.Context, store *artifacts.Store, raw string) (artifacts.URI, error) {
	u, err := model.ResolvePointer(ctx, store, raw)
	if err != nil {
		if errors.Is(err, artifacts.ErrNotFound) || errors.Is(err, artifacts.ErrInvalid) {
			return u, step.BadInput(fmt.Errorf("--watch: %w", err))
		}
		return u, fmt.Errorf("--watch: %w", err)
	}
	return u, nil
}

// watchHandler follows --watch: the first model is the one already
// opened (and recorded as lineage); later versions are opened as the
// pointer moves.
func watchHandler(r *step.Run, opts model.HandlerOptions, first *model.Model) inference.ModelHandler {
	raw := r.String("watch")
	id := r.String("model-id")
	if id == "" {
		id = "watch"
	}
	return &inference.RefreshHandler{ID: id, Interval: r.Duration("watch-interval"), Logger: r.Logger(),
		Current: func(ctx context.Context) (string, inference.ModelHandler, error) {
			u, err := resolvePointer(ctx, r.Store(), raw)
			if err != nil {
				return "", nil, err
			}
			m := first
			if u.String() != first.Artifact.Location().String() {
				a, err := r.Store().Open(ctx, u, artifacts.TypeModel)
				if err != nil {
					return "", nil, err
				}
				if m, err = model.Open(ctx, a); err != nil {
					return "", nil, err
				}
			}
			h, err := m.Handler(opts)
			return m.Artifact.Digest, h, err
		}}
}

// remoteHandler is --remote: a KServe V2 server answers the batches.
func remoteHandler(r *step.Run, s settings) (*inference.RemoteHandler, []string, error) {
	if r.String("remote-model") == "" {
		return nil, nil, step.Usagef("--remote needs --remote-model, the model's name on the server")
	}
	if r.Input("transform") != nil {
		return nil, nil, step.Usagef("--in transform fuses preprocessing into an ONNX model; a remote model does its own")
	}
	features, err := model.ParseFeatures(r.String("remote-features"))
	if err != nil {
		return nil, nil, step.Usagef("--remote-features: %v", err)
	}
	h := &inference.RemoteHandler{ID: r.String("model-id"), BaseURL: r.String("remote"), ModelName: r.String("remote-model"),
		ModelVersion: r.String("remote-version"), Timeout: r.Duration("timeout"), RateLimit: r.Float("rate-limit"),
		Burst: int(r.Int("rate-burst")), MaxConcurrency: int(r.Int("max-concurrency")),
		Retry:   inference.RetryPolicy{MaxAttempts: int(r.Int("retries")) + 1},
		Breaker: inference.BreakerPolicy{Failures: int(r.Int("breaker-failures")), Cooldown: r.Duration("breaker-cooldown")}}
	if h.Breaker.Failures == 0 {
		h.Breaker.Failures = -1 // the flag's 0 means no breaker
	}
	if h.MaxConcurrency == 0 {
		h.MaxConcurrency = s.opts.Workers
	}
	if tok := r.String("remote-token"); tok != "" {
		h.Header = http.Header{"Authorization": []string{"Bearer " + tok}}
	}
	var cols []string
	for _, in := range slices.Sorted(maps.Keys(features)) {
		h.Inputs = append(h.Inputs, inference.Input{Name: in, Columns: features[in]})
		cols = append(cols, features[in]...)
	}
	classes := list(r.String("remote-classes"))
	if (len(classes) > 0) != (r.String("remote-scores") != "") {
		return nil, nil, step.Usagef("--remote-classes and --remote-scores go together")
	}
	if len(classes) > 0 {
		h.Classifier = &inference.Classifier{Classes: classes, Scores: r.String("remote-scores")}
	}
	return h, cols, nil
}

// stringColumns lists the columns feeding a model's string inputs.
func stringColumns(m *model.Model) []string {
	var out []string
	for _, in := range m.Sig.Inputs {
		if in.Type != "tensor(string)" {
			continue
		}
		if cols, ok := m.Meta.Features[in.Name]; ok {
			out = append(out, cols...)
		} else {
			out = append(out, in.Name)
		}
	}
	return out
}
