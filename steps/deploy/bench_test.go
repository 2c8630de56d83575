package deploy_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/deploy"
	"github.com/mlsteps/mlsteps/steps/step"
)

// BenchmarkDeploy is one deploy of penguins-mlp to a file:// registry per
// iteration: blessing check, infra validation (a serving process started,
// 100 canary rows compared with the in-process engine) and the push. The
// references, in the same run: the same deploy without infra validation
// (the push alone: claim, copy, re-hash, record, pointer), and a bare
// artifacts copy of the model, the push's floor.
func BenchmarkDeploy(b *testing.B) {
	e := newEnv(b)
	examples := e.examples()
	mlp := e.model("penguins-mlp.onnx")
	bless := e.bless(mlp, true, "")
	src, err := e.store.Open(e.ctx, artifacts.MustParseURI(mlp), artifacts.TypeModel)
	if err != nil {
		b.Fatal(err)
	}
	reg := e.root.Join("registry").String()
	run := func(name string, params map[string]any) time.Duration {
		params["registry"], params["name"], params["canary-rows"] = reg, "penguins", int64(100)
		start := time.Now()
		err := step.Execute(e.ctx, deploy.Spec(), step.Invocation{Inputs: map[string]string{"model": mlp, "blessing": bless, "examples": examples},
			OutRoot: e.root.Join(name).String(), Params: params}, step.Env{Store: e.store})
		if err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var full, push, copied time.Duration
	b.ResetTimer()
	for i := range b.N {
		full += run(fmt.Sprint("full", i), map[string]any{})
		push += run(fmt.Sprint("push", i), map[string]any{"skip-infra-validation": true})
		start := time.Now()
		if _, err := e.store.Copy(e.ctx, src, e.root.Join("copy", fmt.Sprint(i))); err != nil {
			b.Fatal(err)
		}
		copied += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(full.Seconds()/n, "s/deploy")
	b.ReportMetric(push.Seconds()/n, "s/push")
	b.ReportMetric(float64(push)/float64(copied), "push/copy")
	testenv.BenchRow(b, testenv.Row{Issue: 10, Figure: "deploy penguins-mlp: infra validation (100 canaries, separate serve process) + push",
		Ours: float64((full / time.Duration(b.N)).Microseconds()) / 1000, Unit: "ms"})
	testenv.BenchRow(b, testenv.Row{Issue: 10, Figure: "deploy: the push alone (claim, copy, re-hash, pointer)", Ours: float64((push / time.Duration(b.N)).Microseconds()) / 1000, Unit: "ms",
		Reference: "a bare artifact copy", Ref: float64((copied / time.Duration(b.N)).Microseconds()) / 1000, Ratio: float64(copied) / float64(push), Better: "higher"})
	b.Logf("deploy penguins-mlp (infra validation with 100 canaries + push): %v; push alone: %v (%.1fx a bare copy, %v); infra validation adds %v",
		(full / time.Duration(b.N)).Round(time.Microsecond), (push / time.Duration(b.N)).Round(time.Microsecond), float64(push)/float64(copied),
		(copied / time.Duration(b.N)).Round(time.Microsecond), ((full - push) / time.Duration(b.N)).Round(time.Microsecond))
}
