package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/onnxpb"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/components/registry"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/blessing"
	"github.com/mlsteps/mlsteps/steps/deploy"
	"github.com/mlsteps/mlsteps/steps/importer"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
)

// env is one test's store, data folder and mlsteps binary.
type env struct {
	t     testing.TB
	ctx   context.Context
	store *artifacts.Store
	root  artifacts.URI
	bin   string

	blessings int // Blessing artifacts written so far
}

func newEnv(t testing.TB) *env {
	orttest.Init(t)
	bin := testenv.Binary(t)
	// The serving process is this binary, not the test's own executable,
	// and finds ORT where the tests do.
	t.Setenv(deploy.BinaryEnv, bin)
	t.Setenv(ort.EnvLib, ort.LibPath(testenv.RepoRoot(t)))
	store := artifacts.NewStore()
	t.Cleanup(func() { store.Close() })
	return &env{t: t, ctx: context.Background(), store: store, root: artifacts.MustParseURI(t.TempDir()), bin: bin}
}

// examples imports penguins.json, split 80/20.
func (e *env) examples() string {
	e.t.Helper()
	out := e.root.Join("data")
	inv := step.Invocation{OutRoot: out.String(), Params: map[string]any{"source": testenv.VegaData(e.t, "penguins.json"), "split": "train=0.8,eval=0.2", "seed": int64(7)}}
	if err := step.Execute(e.ctx, importer.Spec(), inv, step.Env{Store: e.store}); err != nil {
		e.t.Fatal(err)
	}
	return out.Join("examples").String()
}

// model imports an ONNX file (a fixture's path relative to
// testdata/models, or an absolute path).
func (e *env) model(src string) string {
	e.t.Helper()
	if !filepath.IsAbs(src) {
		src = filepath.Join(testenv.RepoRoot(e.t), "testdata", "models", src)
	}
	out := e.root.Join("model-" + strings.NewReplacer("/", "-", ".onnx", "").Replace(filepath.Base(src)))
	if err := step.Execute(e.ctx, importer.ModelSpec(), step.Invocation{OutRoot: out.String(), Params: map[string]any{"source": src}}, step.Env{Store: e.store}); err != nil {
		e.t.Fatal(err)
	}
	return out.Join("model").String()
}

// bless writes a Blessing artifact for the model at modelURI.
func (e *env) bless(modelURI string, blessed bool, reason string) string {
	e.t.Helper()
	a, err := e.store.Open(e.ctx, artifacts.MustParseURI(modelURI), artifacts.TypeModel)
	if err != nil {
		e.t.Fatal(err)
	}
	e.blessings++
	u := e.root.Join(fmt.Sprintf("blessing-%d", e.blessings))
	w, err := e.store.Create(e.ctx, u, artifacts.TypeBlessing, "blessing")
	if err != nil {
		e.t.Fatal(err)
	}
	b := blessing.Blessing{Blessed: blessed, Model: modelURI, ModelDigest: a.Digest, Reason: reason, Evaluation: "file:///nowhere"}
	if err := blessing.Write(e.ctx, w, b); err != nil {
		e.t.Fatal(err)
	}
	if _, err := w.Commit(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	return u.String()
}

// deploy runs the step into a fresh folder; it returns the PushedModel's
// record (when one was written) and the step's error.
func (e *env) deploy(name string, inputs map[string]string, params map[string]any) (map[string]any, error) {
	out := e.root.Join(name)
	err := step.Execute(e.ctx, deploy.Spec(), step.Invocation{Inputs: inputs, OutRoot: out.String(), Params: params}, step.Env{Store: e.store})
	a, oerr := e.store.Open(e.ctx, out.Join("pushed_model"), artifacts.TypePushedModel)
	if oerr != nil {
		return nil, err
	}
	data, rerr := a.ReadFile(e.ctx, deploy.File)
	if rerr != nil {
		e.t.Fatal(rerr)
	}
	var rec map[string]any
	if err := json.Unmarshal(data, &rec); err != nil {
		e.t.Fatal(err)
	}
	if rec["pushed"] != a.Properties[deploy.PropPushed] {
		e.t.Fatalf("pushed_model.json says pushed=%v, the sidecar %v", rec["pushed"], a.Properties[deploy.PropPushed])
	}
	return rec, err
}

// gatedRecords counts the execution records of a deploy run (under
// root/name) whose status is gated and whose error gives the reason.
func (e *env) gatedRecords(name string) int {
	e.t.Helper()
	objs, err := e.store.Glob(e.ctx, e.root.Join(name, artifacts.ExecutionsDir, "*.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, o := range objs {
		data, err := e.store.ReadAll(e.ctx, o.URI)
		if err != nil {
			e.t.Fatal(err)
		}
		var r artifacts.Execution
		if err := json.Unmarshal(data, &r); err != nil {
			e.t.Fatal(err)
		}
		if r.Status == artifacts.StatusGated && strings.Contains(r.Error, "not blessed") {
			n++
		}
	}
	return n
}

// TestDeployPushes pushes twice to a registry on each kind of storage:
// versions 1 and 2, the pointer on 2 and readable by the pointer reader
// serve uses, the copies whole, the record complete.
func TestDeployPushes(t *testing.T) {
	cases := map[string]func(t *testing.T, e *env) string{
		"file": func(t *testing.T, e *env) string { return e.root.Join("registry").String() },
		"mem":  func(t *testing.T, e *env) string { return "mem://registry-test/models" },
		"s3":   func(t *testing.T, e *env) string { return testenv.StartS3(t).URL("registry") },
	}
	for kind, registryURI := range cases {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t)
			reg := registryURI(t, e)
			examples := e.examples()
			mlp := e.model("penguins-mlp.onnx")
			if kind == "mem" {
				// Everything in memory: infra validation stages a copy for
				// the serving process, which cannot see this one's memory.
				a, err := e.store.Open(e.ctx, artifacts.MustParseURI(mlp), artifacts.TypeModel)
				if err != nil {
					t.Fatal(err)
				}
				mlp = "mem://registry-test/input/model"
				if _, err := e.store.Copy(e.ctx, a, artifacts.MustParseURI(mlp)); err != nil {
					t.Fatal(err)
				}
			}
			bless := e.bless(mlp, true, "")
			for want := 1; want <= 2; want++ {
				rec, err := e.deploy(fmt.Sprint("deploy", want), map[string]string{"model": mlp, "blessing": bless, "examples": examples},
					map[string]any{"registry": reg, "name": "penguins", "canary-rows": int64(400), "force": true})
				if err != nil {
					t.Fatal(err)
				}
				if rec["pushed"] != true || rec["version"] != float64(want) || rec["current"] != float64(want) {
					t.Fatalf("push %d: %v", want, rec)
				}
				infra := rec["infra_validation"].(map[string]any)
				// All of the train split's rows but those with a null, which
				// V2 cannot carry: every one sent is compared.
				if infra["canary_rows"] != float64(264) || infra["skipped_null_rows"] != float64(2) || infra["compared"] != infra["canary_rows"] ||
					infra["refused"] != float64(0) || infra["peak_rss_bytes"].(float64) <= 0 {
					t.Fatalf("infra validation report: %v", infra)
				}
				b := rec["blessing"].(map[string]any)
				if b["blessed"] != true || b["uri"] != bless {
					t.Fatalf("blessing recorded: %v", b)
				}
			}
			r, err := deploy.OpenRegistry(e.ctx, e.store, reg)
			if err != nil {
				t.Fatal(err)
			}
			u, err := model.ResolvePointer(e.ctx, e.store, r.PointerURI("penguins").String())
			if err != nil {
				t.Fatal(err)
			}
			if u != r.VersionURI("penguins", 2) {
				t.Fatalf("pointer resolves to %s, want version 2 at %s", u, r.VersionURI("penguins", 2))
			}
			src, _ := e.store.Open(e.ctx, artifacts.MustParseURI(mlp), artifacts.TypeModel)
			for n := 1; n <= 2; n++ {
				a, v, err := r.Open(e.ctx, "penguins", n)
				if err != nil {
					t.Fatal(err)
				}
				if a.Digest != src.Digest || v.Blessing == nil || !v.Blessing.Blessed || v.Validation["compared"] == nil {
					t.Fatalf("version %d: digest %s (want %s), record %+v", n, a.Digest, src.Digest, v)
				}
				if _, err := model.Open(e.ctx, a); err != nil {
					t.Fatalf("version %d is not a readable Model: %v", n, err)
				}
			}
			entries, err := r.List(e.ctx, "penguins")
			if err != nil || len(entries) != 2 || !entries[1].Current || !entries[0].Complete() {
				t.Fatalf("List: %+v, %v", entries, err)
			}
			if names, err := r.Names(e.ctx); err != nil || !slices.Equal(names, []string{"penguins"}) {
				t.Fatalf("Names: %v, %v", names, err)
			}
		})
	}
}

// TestDeployBlessing: a "no" is exit 3 with nothing pushed, a missing
// blessing exit 2 unless skipped (and then recorded), a blessing of
// another model exit 2.
func TestDeployBlessing(t *testing.T) {
	e := newEnv(t)
	mlp := e.model("penguins-mlp.onnx")
	trees := e.model("penguins-trees.onnx")
	reg := e.root.Join("registry").String()
	params := func(extra ...any) map[string]any {
		p := map[string]any{"registry": reg, "name": "penguins"}
		for i := 0; i < len(extra); i += 2 {
			p[extra[i].(string)] = extra[i+1]
		}
		return p
	}

	rec, err := e.deploy("unblessed", map[string]string{"model": mlp, "blessing": e.bless(mlp, false, "accuracy 0.41 is below the lower bound 0.9")}, params())
	var gate *step.GateError
	if step.ExitCode(err) != step.ExitGate || !errors.As(err, &gate) || !strings.Contains(gate.Reason, "accuracy 0.41 is below the lower bound 0.9") ||
		!strings.Contains(gate.Reason, "not blessed") {
		t.Fatalf("unblessed: exit %d, %v", step.ExitCode(err), err)
	}
	if rec != nil {
		t.Fatalf("a refused model got a PushedModel: %v", rec)
	}
	if n := e.gatedRecords("unblessed"); n != 1 {
		t.Fatalf("%d gated execution records for the refusal, want 1 (the reason recorded)", n)
	}
	r, _ := deploy.OpenRegistry(e.ctx, e.store, reg)
	if _, err := r.Current(e.ctx, "penguins"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("after a refusal the registry has a current version: %v", err)
	}

	_, err = e.deploy("missing", map[string]string{"model": mlp}, params())
	if step.ExitCode(err) != step.ExitUsage || !strings.Contains(err.Error(), "--skip-blessing") {
		t.Fatalf("no blessing: exit %d, %v", step.ExitCode(err), err)
	}
	_, err = e.deploy("other", map[string]string{"model": mlp, "blessing": e.bless(trees, true, "")}, params())
	if step.ExitCode(err) != step.ExitUsage || !strings.Contains(err.Error(), "not on this model") {
		t.Fatalf("another model's blessing: exit %d, %v", step.ExitCode(err), err)
	}
	_, err = e.deploy("both", map[string]string{"model": mlp, "blessing": e.bless(mlp, true, "")}, params("skip-blessing", true))
	if step.ExitCode(err) != step.ExitUsage {
		t.Fatalf("--skip-blessing with a blessing: exit %d, %v", step.ExitCode(err), err)
	}
	_, err = e.deploy("badname", map[string]string{"model": mlp, "blessing": e.bless(mlp, true, "")}, params("name", "Penguins/x"))
	if step.ExitCode(err) != step.ExitUsage || !strings.Contains(err.Error(), "--name") {
		t.Fatalf("bad name: exit %d, %v", step.ExitCode(err), err)
	}

	// Skipped, without examples: canaries of zeros, and the skip recorded.
	rec, err = e.deploy("skipped", map[string]string{"model": mlp}, params("skip-blessing", true))
	if err != nil {
		t.Fatal(err)
	}
	if b := rec["blessing"].(map[string]any); b["skipped"] != true || rec["pushed"] != true {
		t.Fatalf("skipped blessing record: %v", rec)
	}
	if infra := rec["infra_validation"].(map[string]any); infra["synthetic"] != true || infra["compared"].(float64) < 1 {
		t.Fatalf("synthetic canaries: %v", infra)
	}
	v, err := r.Get(e.ctx, "penguins", 1)
	if err != nil || v.Blessing == nil || !v.Blessing.Skipped {
		t.Fatalf("registry record of a skipped blessing: %+v, %v", v, err)
	}
}

// TestInfraValidationRefuses: models that do not load, that answer with
// another shape than they declare, a serving process that runs out of
// memory, and one that does not answer in time are all refused (exit 3)
// with the reason, and nothing is pushed.
func TestInfraValidationRefuses(t *testing.T) {
	e := newEnv(t)
	examples := e.examples()
	mlp := e.model("penguins-mlp.onnx")
	broken := e.brokenModel(mlp)
	shape := e.model(e.lyingShapeModel())
	cases := []struct {
		name   string
		model  string
		params map[string]any
		reason []string // each must appear in the reason
	}{
		{"broken onnx", broken, nil, []string{"serving process"}},
		{"output shape differs from the signature", shape, nil, []string{"probs"}},
		{"out of memory", mlp, map[string]any{"infra-memory-mib": int64(512)}, []string{"serving process", "memory"}},
		{"too slow", mlp, map[string]any{"infra-timeout": time.Millisecond}, []string{"within"}},
	}
	reg := e.root.Join("registry").String()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params := map[string]any{"registry": reg, "name": "penguins", "skip-blessing": true}
			maps.Copy(params, c.params)
			rec, err := e.deploy(strings.ReplaceAll(c.name, " ", "-"), map[string]string{"model": c.model, "examples": examples}, params)
			if step.ExitCode(err) != step.ExitGate {
				t.Fatalf("exit %d (%v), want 3", step.ExitCode(err), err)
			}
			var gate *step.GateError
			errors.As(err, &gate)
			reason := gate.Reason
			for _, want := range c.reason {
				if !strings.Contains(reason, want) {
					t.Errorf("reason %q does not mention %q", reason, want)
				}
			}
			t.Logf("refused: %s", reason)
			if rec != nil {
				t.Errorf("a refused model got a PushedModel: %v", rec)
			}
		})
	}
	r, _ := deploy.OpenRegistry(e.ctx, e.store, reg)
	if names, err := r.Names(e.ctx); err != nil || len(names) != 0 {
		t.Fatalf("refused models reached the registry: %v, %v", names, err)
	}
}

// brokenModel is the Model artifact at good with its model.onnx cut short:
// what a corrupted upload would look like, properties and all.
func (e *env) brokenModel(good string) string {
	e.t.Helper()
	a, err := e.store.Open(e.ctx, artifacts.MustParseURI(good), artifacts.TypeModel)
	if err != nil {
		e.t.Fatal(err)
	}
	data, err := a.ReadFile(e.ctx, model.File)
	if err != nil {
		e.t.Fatal(err)
	}
	u := e.root.Join("broken", "model")
	w, err := e.store.Create(e.ctx, u, artifacts.TypeModel, "model")
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range a.Properties {
		w.SetProperty(k, v)
	}
	if err := w.WriteFile(e.ctx, model.File, data[:len(data)/3]); err != nil {
		e.t.Fatal(err)
	}
	if _, err := w.Commit(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	return u.String()
}

// lyingShapeModel writes penguins-mlp with its probs output declared
// [N,2] while it computes [N,3] (and no class names, which would not fit
// two columns): ORT loads it, and it fails when run.
func (e *env) lyingShapeModel() string {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(e.t), "testdata", "models", "penguins-mlp.onnx"))
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := onnx.Unmarshal(data)
	if err != nil {
		e.t.Fatal(err)
	}
	out := m.GetGraph().GetOutput()[0]
	dims := out.GetType().GetTensorType().GetShape().GetDim()
	if out.GetName() != "probs" || len(dims) != 2 || dims[1].GetDimValue() != 3 {
		e.t.Fatalf("penguins-mlp's output is not probs [N,3]: %v", out)
	}
	dims[1].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 2}
	m.MetadataProps = slices.DeleteFunc(m.MetadataProps, func(p *onnxpb.StringStringEntryProto) bool { return p.GetKey() == model.MetaClasses })
	if data, err = onnx.Marshal(m); err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(e.t.TempDir(), "lying-shape.onnx")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// TestRacingPushes pushes one name from several goroutines, and from
// several processes, at once: every push gets its own version number, each
// version is whole, and the pointer names the highest.
func TestRacingPushes(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		e := newEnv(t)
		racePushes(t, e, e.root.Join("registry").String())
	})
	t.Run("s3", func(t *testing.T) {
		e := newEnv(t)
		racePushes(t, e, testenv.StartS3(t).URL("registry"))
	})
}

func racePushes(t *testing.T, e *env, reg string) {
	mlp := e.model("penguins-mlp.onnx")
	trees := e.model("penguins-trees.onnx")
	const goroutines = 4
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			m := []string{mlp, trees}[i%2]
			_, err := e.deploy(fmt.Sprint("g", i), map[string]string{"model": m},
				map[string]any{"registry": reg, "name": "penguins", "skip-blessing": true, "skip-infra-validation": true, "force": true})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	const processes = 3
	errs := make([]error, processes)
	for i := range processes {
		wg.Go(func() {
			cmd := exec.Command(e.bin, "deploy", "--in", "model="+[]string{mlp, trees}[i%2], "--registry", reg, "--name", "penguins",
				"--skip-blessing", "--skip-infra-validation", "--force", "--out-root", e.root.Join(fmt.Sprint("p", i)).String())
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("process %d: %v\n%s", i, err, out)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	r, _ := deploy.OpenRegistry(e.ctx, e.store, reg)
	entries, err := r.List(e.ctx, "penguins")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != goroutines+processes {
		t.Fatalf("%d versions for %d pushes: %+v", len(entries), goroutines+processes, entries)
	}
	for i, en := range entries {
		if en.Version != i+1 || !en.Complete() {
			t.Fatalf("version %d: %+v", i+1, en)
		}
		if _, _, err := r.Open(e.ctx, "penguins", en.Version); err != nil {
			t.Fatalf("version %d is not whole: %v", en.Version, err)
		}
	}
	// Without compare-and-swap on blobs, publishes in the same instant may
	// leave a lower version current; it is whole all the same.
	cur, err := r.Current(e.ctx, "penguins")
	if err != nil {
		t.Fatal(err)
	}
	if a, _, err := r.Open(e.ctx, "penguins", cur.Version); err != nil || a.Digest != cur.Digest {
		t.Fatalf("current %+v does not name a whole version: %v", cur, err)
	}
	t.Logf("current version after the race: %d of %d", cur.Version, goroutines+processes)
}

// TestS3ClaimsAreExclusive: the S3-compatible server honours the
// write-if-absent (If-None-Match: *) claims rely on, so goroutines
// claiming at once get distinct numbers.
func TestS3ClaimsAreExclusive(t *testing.T) {
	s3 := testenv.StartS3(t)
	store := artifacts.NewStore()
	defer store.Close()
	ctx := context.Background()
	r, err := deploy.OpenRegistry(ctx, store, s3.URL("registry"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.Bucket(ctx, artifacts.MustParseURI(s3.URL("x")))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WriteAll(ctx, "once", []byte("a"), &blob.WriterOptions{IfNotExist: true}); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteAll(ctx, "once", []byte("b"), &blob.WriterOptions{IfNotExist: true}); gcerrors.Code(err) != gcerrors.FailedPrecondition {
		t.Fatalf("a second write-if-absent: %v, want FailedPrecondition", err)
	}
	const n = 16
	got := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			v, err := r.Claim(ctx, "race", fmt.Sprint("g", i))
			if err != nil {
				t.Error(err)
			}
			got[i] = v.Version
		})
	}
	wg.Wait()
	slices.Sort(got)
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("claimed %v, want 1..%d each once", got, n)
		}
	}
}

// TestDeployKeyed: a keyed Model cannot be served by one serving process,
// so infra validation refuses to start (exit 2) unless skipped, and the
// skip is recorded.
func TestDeployKeyed(t *testing.T) {
	e := newEnv(t)
	keyed := e.model("penguins-by-island")
	reg := e.root.Join("registry").String()
	_, err := e.deploy("keyed", map[string]string{"model": keyed}, map[string]any{"registry": reg, "name": "islands", "skip-blessing": true})
	if step.ExitCode(err) != step.ExitUsage || !strings.Contains(err.Error(), "--skip-infra-validation") {
		t.Fatalf("keyed: exit %d, %v", step.ExitCode(err), err)
	}
	rec, err := e.deploy("keyed-skip", map[string]string{"model": keyed}, map[string]any{"registry": reg, "name": "islands", "skip-blessing": true, "skip-infra-validation": true})
	if err != nil {
		t.Fatal(err)
	}
	if rec["pushed"] != true || rec["infra_validation"] != nil {
		t.Fatalf("record: %v", rec)
	}
	a, _ := e.store.Open(e.ctx, e.root.Join("keyed-skip", "pushed_model"), artifacts.TypePushedModel)
	if a.Properties[deploy.PropInfraValidated] != false {
		t.Fatalf("infra_validated: %v", a.Properties[deploy.PropInfraValidated])
	}
}

// TestDeployCancelled: a cancelled deploy is a failure (exit 1), not a
// verdict on the model, and pushes nothing.
func TestDeployCancelled(t *testing.T) {
	e := newEnv(t)
	mlp := e.model("penguins-mlp.onnx")
	reg := e.root.Join("registry").String()
	for _, after := range []time.Duration{5 * time.Millisecond, 30 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(e.ctx, after)
		err := step.Execute(ctx, deploy.Spec(), step.Invocation{Inputs: map[string]string{"model": mlp}, OutRoot: e.root.Join(fmt.Sprint("cancel", after)).String(),
			Params: map[string]any{"registry": reg, "name": "penguins", "skip-blessing": true}}, step.Env{Store: e.store})
		cancel()
		if err == nil {
			t.Logf("the deploy finished within %v", after)
			continue
		}
		if step.ExitCode(err) != step.ExitFailed || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("cancelled after %v: exit %d, %v", after, step.ExitCode(err), err)
		}
		r, _ := deploy.OpenRegistry(e.ctx, e.store, reg)
		if _, err := r.Current(e.ctx, "penguins"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("a cancelled deploy pushed: %v", err)
		}
	}
}

// TestDeployAgain: deploying the model that is current already pushes
// nothing (one version per model when a pipeline re-runs) and names the
// current version; --force pushes a new one.
func TestDeployAgain(t *testing.T) {
	e := newEnv(t)
	mlp := e.model("penguins-mlp.onnx")
	reg := e.root.Join("registry").String()
	params := func(force bool) map[string]any {
		return map[string]any{"registry": reg, "name": "penguins", "skip-blessing": true, "skip-infra-validation": true, "force": force}
	}
	for i, c := range []struct {
		force          bool
		version        float64
		alreadyCurrent bool
	}{{false, 1, false}, {false, 1, true}, {true, 2, false}, {false, 2, true}} {
		rec, err := e.deploy(fmt.Sprint("again", i), map[string]string{"model": mlp}, params(c.force))
		if err != nil {
			t.Fatal(err)
		}
		again, _ := rec["already_current"].(bool)
		if rec["pushed"] != true || rec["version"] != c.version || again != c.alreadyCurrent {
			t.Errorf("deploy %d (force %v): %v", i, c.force, rec)
		}
	}
	r, _ := deploy.OpenRegistry(e.ctx, e.store, reg)
	if entries, err := r.List(e.ctx, "penguins"); err != nil || len(entries) != 2 {
		t.Errorf("versions %+v (%v), want 2", entries, err)
	}
}
