package step_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/steps/step"
)

// echoSpec is a small step: it reads a Dataset, writes a Statistics artifact
// holding its digest, and can be told to fail, panic or gate.
func echoSpec() *step.Spec {
	return &step.Spec{
		Name: "echo", Version: "1.0.0", Summary: "test step",
		Inputs:  []step.Port{{Name: "examples", Type: artifacts.TypeDataset}, {Name: "schema", Type: artifacts.TypeSchema, Optional: true}},
		Outputs: []step.Port{{Name: "statistics", Type: artifacts.TypeStatistics}},
		Params: []step.Param{
			{Name: "mode", Type: step.String, Default: "ok", Enum: []string{"ok", "fail", "panic", "gate"}},
			{Name: "token", Type: step.String, Secret: true},
			{Name: "endpoint", Type: step.String, Default: "s3://b/p?endpoint=http://h&secret_key=hunter2"},
			{Name: "count", Type: step.Int, Default: int64(3)},
		},
		Run: func(ctx context.Context, r *step.Run) error {
			w, err := r.Output(ctx, "statistics")
			if err != nil {
				return err
			}
			if err := w.WriteFile(ctx, "statistics.json", []byte(r.Input("examples").Digest)); err != nil {
				return err
			}
			r.Logger().Info("token seen", "len", len(r.String("token")))
			switch r.String("mode") {
			case "fail":
				return errors.New("boom")
			case "panic":
				panic("kaboom")
			case "gate":
				return &step.GateError{Gate: "anomalies", Reason: "3 anomalies above the threshold"}
			}
			if r.Input("schema") != nil {
				return errors.New("schema should be absent")
			}
			return nil
		},
	}
}

func dataset(t *testing.T, s *artifacts.Store, u artifacts.URI, typ artifacts.Type) {
	t.Helper()
	ctx := context.Background()
	w, err := s.Create(ctx, u, typ, u.Base())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile(ctx, "data", []byte(u.String())); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestExecute(t *testing.T) {
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()
	root := artifacts.MustParseURI("mem://harness/" + t.Name())
	in := root.Join("in/examples")
	dataset(t, store, in, artifacts.TypeDataset)
	dataset(t, store, root.Join("in/wrong"), artifacts.TypeModel)

	tests := []struct {
		name     string
		inv      step.Invocation
		code     int
		status   string // of the execution record; "" when none is written
		wantErr  string
		commited bool
	}{
		{name: "ok", inv: step.Invocation{Params: map[string]any{"token": "s3cr3t-value"}}, code: 0, status: "succeeded", commited: true},
		{name: "gate", inv: step.Invocation{Params: map[string]any{"mode": "gate"}}, code: 3, status: "gated", commited: true, wantErr: "3 anomalies"},
		{name: "fail", inv: step.Invocation{Params: map[string]any{"mode": "fail"}}, code: 1, status: "failed", wantErr: "boom"},
		{name: "panic", inv: step.Invocation{Params: map[string]any{"mode": "panic"}}, code: 1, status: "failed", wantErr: "kaboom"},
		{name: "bad enum", inv: step.Invocation{Params: map[string]any{"mode": "maybe"}}, code: 2, wantErr: `"maybe" is not one of`},
		{name: "wrong param type", inv: step.Invocation{Params: map[string]any{"count": "three"}}, code: 2, wantErr: "--count"},
		{name: "unknown param", inv: step.Invocation{Params: map[string]any{"nope": "x"}}, code: 2, wantErr: `no parameter "nope"`},
		{name: "wrong input type", inv: step.Invocation{Inputs: map[string]string{"examples": root.Join("in/wrong").String()}}, code: 2, wantErr: "it is a Model, expected a Dataset"},
		{name: "missing input", inv: step.Invocation{Inputs: map[string]string{"examples": root.Join("in/absent").String()}}, code: 2, wantErr: "not found"},
		{name: "unknown input", inv: step.Invocation{Inputs: map[string]string{"model": in.String()}}, code: 2, wantErr: `no input "model"`},
		{name: "unknown scheme", inv: step.Invocation{Inputs: map[string]string{"examples": "ftp://x/y"}}, code: 2, wantErr: `unknown scheme "ftp"`},
		{name: "no output URI", inv: step.Invocation{OutRoot: "-"}, code: 2, wantErr: "has no URI"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := root.Join("runs", strings.ReplaceAll(tc.name, " ", "-"))
			inv := tc.inv
			if inv.Inputs == nil {
				inv.Inputs = map[string]string{"examples": in.String()}
			}
			switch inv.OutRoot {
			case "":
				inv.OutRoot = out.String()
			case "-":
				inv.OutRoot = ""
			}
			var logs bytes.Buffer
			err := step.Execute(ctx, echoSpec(), inv, step.Env{Store: store, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			if got := step.ExitCode(err); got != tc.code {
				t.Fatalf("exit code %d (%v), want %d", got, err, tc.code)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want it to mention %q", err, tc.wantErr)
			}
			a, openErr := store.Open(ctx, out.Join("statistics"), artifacts.TypeStatistics)
			if tc.commited != (openErr == nil) {
				t.Fatalf("output committed = %v (%v), want %v", openErr == nil, openErr, tc.commited)
			}
			if a != nil {
				p := a.Producer
				if p == nil || p.Step != "echo" || p.Version != "1.0.0" || p.ExecutionID == "" {
					t.Errorf("producer = %+v", p)
				}
				if len(a.Inputs) != 1 || a.Inputs[0].Name != "examples" || a.Inputs[0].Type != artifacts.TypeDataset || a.Inputs[0].URI != in.String() {
					t.Errorf("inputs = %+v", a.Inputs)
				}
				src, _ := store.Open(ctx, in, "")
				if a.Inputs[0].Digest != src.Digest {
					t.Errorf("input digest %s, want %s", a.Inputs[0].Digest, src.Digest)
				}
				if p.Parameters["count"] != float64(3) || p.Parameters["mode"] != inv.Params["mode"] && p.Parameters["mode"] != "ok" {
					t.Errorf("parameters = %v", p.Parameters)
				}
			}
			if tc.status == "" {
				return
			}
			rec := latestExecution(t, store, out)
			if rec.Status != tc.status || rec.ExitCode != tc.code || rec.Step != "echo" {
				t.Errorf("execution record %+v, want status %s", rec, tc.status)
			}
			if tc.commited && (len(rec.Outputs) != 1 || rec.Outputs[0].Digest != a.Digest) {
				t.Errorf("record outputs %+v, want the committed digest %s", rec.Outputs, a.Digest)
			}
			// Secrets reach neither records, sidecars nor logs; URL credentials are redacted.
			side, _ := store.ReadAll(ctx, out.Join("statistics", artifacts.SidecarName))
			recJSON, _ := store.ReadAll(ctx, artifacts.ExecutionURI(out, rec.ID))
			for what, text := range map[string]string{"sidecar": string(side), "record": string(recJSON), "logs": logs.String()} {
				for _, secret := range []string{"s3cr3t-value", "hunter2"} {
					if strings.Contains(text, secret) {
						t.Errorf("%s holds the secret %q", what, secret)
					}
				}
			}
		})
	}
}

func latestExecution(t *testing.T, s *artifacts.Store, root artifacts.URI) *artifacts.Execution {
	t.Helper()
	ctx := context.Background()
	objs, err := s.Glob(ctx, root.Join(artifacts.ExecutionsDir, "*.json"))
	if err != nil || len(objs) != 1 {
		t.Fatalf("execution records: %v, %v", objs, err)
	}
	id := strings.TrimSuffix(objs[0].URI.Base(), ".json")
	rec, err := s.ReadExecution(ctx, root, id)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestOutputsAreImmutable(t *testing.T) {
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()
	root := artifacts.MustParseURI("mem://harness/" + t.Name())
	dataset(t, store, root.Join("examples"), artifacts.TypeDataset)
	inv := step.Invocation{Inputs: map[string]string{"examples": root.Join("examples").String()}, OutRoot: root.Join("out").String()}
	if err := step.Execute(ctx, echoSpec(), inv, step.Env{Store: store}); err != nil {
		t.Fatal(err)
	}
	err := step.Execute(ctx, echoSpec(), inv, step.Env{Store: store})
	if step.ExitCode(err) != step.ExitUsage || !strings.Contains(err.Error(), "already committed") {
		t.Errorf("second run into the same root: %v, want a usage error saying it is committed", err)
	}
}

func TestSpecValidate(t *testing.T) {
	bad := []*step.Spec{
		{Name: "Bad", Version: "1", Run: echoSpec().Run},
		{Name: "x", Version: "1"},
		{Name: "x", Version: "1", Run: echoSpec().Run, Params: []step.Param{{Name: "in", Type: step.String}}},
		{Name: "x", Version: "1", Run: echoSpec().Run, Params: []step.Param{{Name: "n", Type: step.Int, Default: 3}}},
		{Name: "x", Version: "1", Run: echoSpec().Run, Outputs: []step.Port{{Name: "o", Type: "Bogus"}}},
	}
	for i, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("spec %d validated", i)
		}
	}
	if _, err := step.NewRegistry(echoSpec(), echoSpec()); err == nil {
		t.Error("registry took a step twice")
	}
}

func TestEnvVar(t *testing.T) {
	if got := step.EnvVar("split-key"); got != "MLSTEPS_SPLIT_KEY" {
		t.Errorf("EnvVar = %s", got)
	}
}
