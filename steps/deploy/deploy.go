package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/registry"
	"github.com/mlsteps/mlsteps/steps/blessing"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
)

// Name and Version of the step.
const (
	Name    = "deploy"
	Version = "0.1.0"
)

// File is the PushedModel's record of the push.
const File = "pushed_model.json"

// PushedModel properties.
const (
	PropPushed         = "pushed"
	PropRegistry       = "registry"
	PropName           = "name"
	PropVersion        = "version"
	PropURI            = "uri"
	PropPointer        = "pointer"
	PropModelDigest    = "model_digest"
	PropModelID        = "model_id"
	PropBlessing       = "blessing"
	PropBlessingDigest = "blessing_digest"
	PropBlessingSkip   = "blessing_skipped"
	PropInfraValidated = "infra_validated"
	PropAlreadyCurrent = "already_current"
)

// Spec is the deploy step's contract.
func Spec() *step.Spec {
	return &step.Spec{
		Name:    Name,
		Version: Version,
		Summary: "push a blessed, infra-validated model to a versioned registry on blob storage, with serving manifests",
		Description: "Like TFX's InfraValidator and Pusher. Refuses (exit 3, no PushedModel written, the reason logged and in the execution record) a " +
			"model its Blessing does not bless; a missing blessing is a usage error unless --skip-blessing, which is recorded. " +
			"Infra validation loads the model in a separate `mlsteps serve` process under an address-space limit " +
			"(--infra-memory-mib, RLIMIT_AS) and a time limit (--infra-timeout), sends it --canary-rows rows of the examples " +
			"(rows of zeros without them) over KServe V2 and checks its answers against the in-process engine's within " +
			"--tolerance; a model that crashes, hangs or answers differently is refused. The push copies the Model into " +
			"<registry>/<name>/versions/<n>/ (n claimed with a write-if-absent, so racing pushes never share a number), " +
			"re-hashes the copy, records the version and switches <registry>/<name>/current, last (a model that is the current " +
			"version already is not pushed again: the PushedModel names that version): `serve --watch` and " +
			"`infer --watch` on that pointer always see a whole version. The PushedModel holds the record and a KServe " +
			"InferenceService and a Deployment + Service running `mlsteps serve --watch` on the pointer.",
		Inputs: []step.Port{
			{Name: "model", Type: artifacts.TypeModel, Description: "the model to push"},
			{Name: "blessing", Type: artifacts.TypeBlessing, Optional: true, Description: "the evaluate step's verdict on the model (required unless --skip-blessing)"},
			{Name: "examples", Type: artifacts.TypeDataset, Optional: true, Description: "rows to send as canaries during infra validation"},
		},
		Outputs: []step.Port{
			{Name: "pushed_model", Type: artifacts.TypePushedModel, NotOnGate: true, Description: "pushed_model.json (registry, name, version, digest, blessing, validation) and manifests/*.yaml; not written when the model is refused"},
		},
		Params: []step.Param{
			{Name: "registry", Type: step.String, Required: true, Description: "the registry's blob URL (file://, mem://, s3://, gs://, azblob://)", Example: "s3://ml/registry"},
			{Name: "name", Type: step.String, Default: "", Description: "the model's name in the registry and in Kubernetes; default: the Model's name", Example: "penguins"},
			{Name: "skip-blessing", Type: step.Bool, Default: false, Description: "push without a Blessing (recorded in the PushedModel and the registry)"},
			{Name: "skip-infra-validation", Type: step.Bool, Default: false, Description: "push without loading the model in a serving process first (recorded)"},
			{Name: "force", Type: step.Bool, Default: false, Description: "push a new version even when the model is the registry's current version already (by default that push is skipped and the PushedModel names the current version)"},
			{Name: "canary-rows", Type: step.Int, Default: int64(100), Description: "rows of the examples sent to the serving process and compared (rows with a null in a model column are passed over: KServe V2 cannot carry a null)"},
			{Name: "canary-split", Type: step.String, Default: "", Description: "the examples' split the canaries come from; default: the first"},
			{Name: "tolerance", Type: step.Float, Default: 1e-4, Description: "largest difference allowed between served and in-process outputs (relative to the value, absolute below 1)"},
			{Name: "infra-memory-mib", Type: step.Int, Default: int64(4096), Description: "address-space limit (RLIMIT_AS) of the serving process, in MiB; the Go runtime and ONNX Runtime reserve about 2 GiB of address space before a model loads, so values much below 2048 fail at start"},
			{Name: "infra-timeout", Type: step.Duration, Default: 2 * time.Minute, Description: "time limit of infra validation: start, model load and every canary"},
			{Name: "predictor", Type: step.String, Default: PredictorMlsteps, Enum: []string{PredictorMlsteps, PredictorONNX}, Description: "the InferenceService's predictor: mlsteps (a container running mlsteps serve on the pointer) or onnx (KServe's ONNX runtime, storageUri = the version's folder)"},
			{Name: "image", Type: step.String, Default: "mlsteps:latest", Description: "the mlsteps image the manifests run"},
			{Name: "namespace", Type: step.String, Default: "", Description: "the manifests' namespace; empty leaves it to kubectl"},
		},
		Run: run,
		// A push is an action, not a function of its inputs: never reuse
		// an earlier run's result.
	}
}

// record is pushed_model.json.
type record struct {
	Pushed   bool   `json:"pushed"`
	Registry string `json:"registry"`
	Name     string `json:"name"`
	// Version, URI and Pointer are set once pushed; Current is the version
	// the pointer names after the push (higher when a racing push won).
	Version  int                `json:"version,omitempty"`
	URI      string             `json:"uri,omitempty"`
	Pointer  string             `json:"pointer,omitempty"`
	Current  int                `json:"current,omitempty"`
	Model    string             `json:"model"`
	Digest   string             `json:"model_digest"`
	ModelID  string             `json:"model_id"`
	Blessing *registry.Blessing `json:"blessing"`
	Infra    *InfraReport       `json:"infra_validation,omitempty"`
	PushedAt time.Time          `json:"pushed_at,omitzero"`
	// AlreadyCurrent says the model was the registry's current version
	// already, so nothing was pushed: Version is that version.
	AlreadyCurrent bool `json:"already_current,omitempty"`
}

func run(ctx context.Context, r *step.Run) error {
	a := r.Input("model")
	m, err := model.Open(ctx, a)
	if err != nil {
		return step.BadInput(fmt.Errorf("input model: %w", err))
	}
	name := r.String("name")
	if name == "" {
		name = m.Meta.Name
	}
	if err := registry.CheckName(name); err != nil {
		return step.Usagef("--name: %v", err)
	}
	if r.Int("canary-rows") < 1 || r.Int("infra-memory-mib") < 64 || r.Duration("infra-timeout") <= 0 || r.Float("tolerance") < 0 {
		return step.Usagef("--canary-rows must be at least 1, --infra-memory-mib at least 64, --infra-timeout and --tolerance positive")
	}
	reg, err := OpenRegistry(ctx, r.Store(), r.String("registry"))
	if err != nil {
		return step.BadInput(fmt.Errorf("--registry: %w", err))
	}
	rec := record{Registry: artifacts.Redact(reg.Root.String()), Name: name, Model: artifacts.Redact(a.Location().String()),
		Digest: a.Digest, ModelID: m.ID()}
	bless, err := checkBlessing(ctx, r, a)
	if err != nil {
		return err
	}
	rec.Blessing = bless

	var refused error
	if !bless.Blessed && !bless.Skipped {
		refused = refusef("the model is not blessed: %s", blessingReason(ctx, r))
	}
	// A model already current is not pushed again: re-running a pipeline
	// (or a deploy the cache could not reuse) leaves one version per model.
	var current *registry.Pointer
	if p, err := reg.Current(ctx, name); err == nil && p.Digest == a.Digest && !r.Bool("force") {
		current = &p
	}
	if refused == nil && current == nil && !r.Bool("skip-infra-validation") {
		rep, err := validate(ctx, r, m)
		var no *refusal
		switch {
		case errors.As(err, &no):
			refused = err
		case err != nil:
			return err
		default:
			rec.Infra = &rep
			r.Logger().Info("infra validated", "canary_rows", rep.CanaryRows, "compared", rep.Compared, "max_abs_diff", rep.MaxAbsDiff,
				"peak_rss_bytes", rep.PeakRSSBytes, "seconds", rep.Seconds)
		}
	}
	if refused != nil {
		// Nothing was pushed, so there is no PushedModel: the reason is the
		// gate's, in the log and the execution record.
		r.Logger().Warn("model not pushed", "reason", refused.Error())
		return &step.GateError{Gate: Name, Reason: refused.Error()}
	}
	w, err := r.Output(ctx, "pushed_model")
	if err != nil {
		return err
	}
	w.SetProperty(PropRegistry, rec.Registry)
	w.SetProperty(PropName, name)
	w.SetProperty(PropModelDigest, a.Digest)
	w.SetProperty(PropModelID, rec.ModelID)
	w.SetProperty(PropBlessingSkip, bless.Skipped)
	if bless.URI != "" {
		w.SetProperty(PropBlessing, bless.URI)
		w.SetProperty(PropBlessingDigest, bless.Digest)
	}
	w.SetProperty(PropInfraValidated, rec.Infra != nil)

	if current != nil {
		rec.Pushed, rec.AlreadyCurrent, rec.Version, rec.Current = true, true, current.Version, current.Version
		rec.URI = artifacts.Redact(reg.VersionURI(name, current.Version).String())
		rec.Pointer = artifacts.Redact(reg.PointerURI(name).String())
		r.Logger().Info("already the current version: not pushed again", "name", name, "version", current.Version)
		return finish(ctx, r, w, rec, a.Digest)
	}
	v := registry.Version{ModelID: m.ID(), Source: rec.Model, Blessing: bless, PushedBy: r.ID()}
	if rec.Infra != nil {
		v.Validation = map[string]any{"canary_rows": rec.Infra.CanaryRows, "compared": rec.Infra.Compared,
			"max_abs_diff": rec.Infra.MaxAbsDiff, "peak_rss_bytes": rec.Infra.PeakRSSBytes}
	}
	v, p, err := reg.Push(ctx, a, name, r.ID(), v)
	if err != nil {
		if userErr(err) {
			return step.BadInput(err)
		}
		return err
	}
	rec.Pushed, rec.Version, rec.Current, rec.PushedAt = true, v.Version, p.Version, v.Pushed
	rec.URI = artifacts.Redact(reg.VersionURI(name, v.Version).String())
	rec.Pointer = artifacts.Redact(reg.PointerURI(name).String())
	r.Logger().Info("pushed", "name", name, "version", v.Version, "uri", rec.URI, "current", p.Version)
	if p.Version != v.Version {
		r.Logger().Warn("a later version was pushed meanwhile: the pointer stays on it", "version", v.Version, "current", p.Version)
	}
	return finish(ctx, r, w, rec, a.Digest)
}

// finish records a pushed (or already current) version and writes the
// serving manifests beside it.
func finish(ctx context.Context, r *step.Run, w *artifacts.Writer, rec record, digest string) error {
	w.SetProperty(PropPushed, true)
	w.SetProperty(PropAlreadyCurrent, rec.AlreadyCurrent)
	w.SetProperty(PropVersion, rec.Version)
	w.SetProperty(PropURI, rec.URI)
	w.SetProperty(PropPointer, rec.Pointer)

	mi := manifestInput{Name: rec.Name, Namespace: r.String("namespace"), Image: r.String("image"), Predictor: r.String("predictor"),
		Version: rec.Version, Digest: digest, Pointer: rec.Pointer, Storage: rec.URI, Registry: rec.Registry}
	isvc, err := mi.inferenceService()
	if err != nil {
		return fmt.Errorf("InferenceService manifest: %w", err)
	}
	dep, err := mi.deployment()
	if err != nil {
		return fmt.Errorf("Deployment manifest: %w", err)
	}
	if err := w.WriteFile(ctx, InferenceServiceFile, isvc); err != nil {
		return err
	}
	if err := w.WriteFile(ctx, DeploymentFile, dep); err != nil {
		return err
	}
	return w.WriteJSON(ctx, File, rec)
}

// checkBlessing reads the verdict, or records that there is none.
func checkBlessing(ctx context.Context, r *step.Run, a *artifacts.Artifact) (*registry.Blessing, error) {
	ba := r.Input("blessing")
	switch {
	case ba == nil && !r.Bool("skip-blessing"):
		return nil, step.Usagef("input blessing (%s) is required: give --in blessing=URI, or --skip-blessing to push without a verdict (recorded)", artifacts.TypeBlessing)
	case ba == nil:
		r.Logger().Warn("pushing without a blessing (--skip-blessing)")
		return &registry.Blessing{Skipped: true}, nil
	case r.Bool("skip-blessing"):
		return nil, step.Usagef("--skip-blessing with --in blessing: give one or the other")
	}
	b, err := blessing.Read(ctx, ba)
	if err != nil {
		return nil, step.BadInput(fmt.Errorf("input blessing: %w", err))
	}
	if b.ModelDigest != "" && b.ModelDigest != a.Digest {
		return nil, step.BadInput(fmt.Errorf("input blessing %s is a verdict on model %s (digest %s), not on this model (digest %s)",
			ba.Location(), b.Model, b.ModelDigest, a.Digest))
	}
	return &registry.Blessing{URI: artifacts.Redact(ba.Location().String()), Digest: ba.Digest, Blessed: b.Blessed}, nil
}

// blessingReason is the verdict's own reason for a no.
func blessingReason(ctx context.Context, r *step.Run) string {
	b, err := blessing.Read(ctx, r.Input("blessing"))
	if err != nil || b.Reason == "" {
		return "the blessing gives no reason"
	}
	return b.Reason
}

// validate runs infra validation on canaries from the examples (or zeros).
func validate(ctx context.Context, r *step.Run, m *model.Model) (InfraReport, error) {
	if m.Keyed != nil {
		return InfraReport{}, step.Usagef("model %s is keyed: serving processes take single models, so it cannot be infra-validated; give --skip-infra-validation to push it unvalidated", m.Artifact.Location())
	}
	if err := ort.InitFound(); err != nil {
		return InfraReport{}, err
	}
	n := int(r.Int("canary-rows"))
	var (
		canary    []arrow.RecordBatch
		synthetic bool
		skipped   int
	)
	if ex := r.Input("examples"); ex != nil {
		var err error
		if canary, skipped, err = canaryRows(ctx, ex, r.String("canary-split"), m.Columns(), n); err != nil {
			return InfraReport{}, err
		}
	} else {
		r.Logger().Warn("no examples: infra validation sends rows of zeros")
		canary, synthetic = syntheticRows(m, min(n, 8)), true
	}
	defer release(canary)
	uri, cleanup, err := reachable(ctx, r.Store(), m.Artifact)
	if err != nil {
		return InfraReport{}, err
	}
	defer cleanup()
	rep, err := infraValidate(ctx, m, uri, canary, infraOptions{MemoryLimit: r.Int("infra-memory-mib") << 20,
		Timeout: r.Duration("infra-timeout"), Tolerance: r.Float("tolerance"), Logger: r.Logger()})
	rep.Synthetic, rep.SkippedNullRows = synthetic, skipped
	return rep, err
}

// reachable is a URI of the model another process can open: its own,
// unless it lives in this process's memory (mem://), when it is copied to
// a temporary folder first.
func reachable(ctx context.Context, store *artifacts.Store, a *artifacts.Artifact) (artifacts.URI, func(), error) {
	if a.Location().Scheme != "mem" {
		return a.Location(), func() {}, nil
	}
	dir, err := os.MkdirTemp("", "mlsteps-infra-")
	if err != nil {
		return artifacts.URI{}, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	u := artifacts.MustParseURI("file://" + dir).Join("model")
	if _, err := store.Copy(ctx, a, u); err != nil {
		cleanup()
		return u, nil, fmt.Errorf("stage the mem:// model for the serving process: %w", err)
	}
	return u, cleanup, nil
}
