package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/steps/blessing"
)

// blessFile writes a Blessing artifact blessing the Model at modelURI.
func blessFile(t *testing.T, dir, modelURI string) string {
	t.Helper()
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()
	a, err := store.Open(ctx, artifacts.MustParseURI(modelURI), artifacts.TypeModel)
	if err != nil {
		t.Fatal(err)
	}
	u := artifacts.MustParseURI(dir)
	w, err := store.Create(ctx, u, artifacts.TypeBlessing, "blessing")
	if err != nil {
		t.Fatal(err)
	}
	if err := blessing.Write(ctx, w, blessing.Blessing{Blessed: true, Model: modelURI, ModelDigest: a.Digest}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// TestDeployServeRollback is the user's path: deploy a blessed model with
// the binary, serve the registry pointer, deploy a second model, roll
// back with `mlsteps registry rollback`: the running server answers with
// each in turn, without a restart.
func TestDeployServeRollback(t *testing.T) {
	orttest.Init(t)
	bin := testenv.Binary(t)
	dir := t.TempDir()
	reg := "file://" + filepath.Join(dir, "registry")
	examples := filepath.Join(dir, "data")
	cmd := exec.Command(bin, "import", "--source", testenv.VegaData(t, "penguins.json"), "--out-root", "file://"+examples)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	deploy := func(fixture, sub string) {
		t.Helper()
		m := importModel(t, bin, filepath.Join(dir, sub), fixture)
		b := blessFile(t, filepath.Join(dir, sub, "blessing"), m)
		cmd := exec.Command(bin, "deploy", "--in", "model="+m, "--in", "blessing="+b, "--in", "examples=file://"+examples+"/examples",
			"--registry", reg, "--name", "penguins", "--canary-rows", "40", "--out-root", "file://"+filepath.Join(dir, sub, "deploy"))
		cmd.Env = ortEnv(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("deploy %s: %v\n%s", fixture, err, out)
		}
	}
	deploy("penguins-mlp.onnx", "mlp")
	base := startServe(t, bin, "--watch", "penguins="+reg+"/penguins/current", "--watch-interval", "50ms")
	mlp, biscoe := directProbs(t, "penguins-mlp.onnx"), directProbs(t, "penguins-by-island/Biscoe.onnx")
	client := &http.Client{Timeout: 5 * time.Second}
	waitFor := func(want, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := servedProbs(client, base)
			if err == nil && got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the server never answered with %s: last %q, %v", what, got, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(mlp, "version 1 (penguins-mlp)")
	deploy("penguins-by-island/Biscoe.onnx", "biscoe")
	waitFor(biscoe, "version 2 (Biscoe) after the push")

	code, out, errOut := runApp(t, "registry", "list", "--registry", reg, "--name", "penguins")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "VERSION") || !strings.Contains(lines[1], "blessed") ||
		!strings.HasPrefix(strings.Join(strings.Fields(lines[2]), " "), "2 * sha256:") {
		t.Fatalf("list:\n%s", out)
	}
	if code, out, _ := runApp(t, "registry", "list", "--registry", reg); code != 0 || strings.TrimSpace(out) != "penguins" {
		t.Fatalf("list of models: exit %d: %s", code, out)
	}

	code, out, errOut = runApp(t, "registry", "rollback", "--registry", reg, "--name", "penguins")
	if code != 0 || !strings.Contains(out, "current version 2 -> 1") {
		t.Fatalf("rollback: exit %d: %s%s", code, out, errOut)
	}
	waitFor(mlp, "version 1 after the rollback")

	code, out, _ = runApp(t, "registry", "show", "--registry", reg, "--name", "penguins")
	var shown struct {
		Version struct {
			Version  int
			Blessing struct{ Blessed bool }
		}
		Current struct{ Version, Previous int }
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil || code != 0 {
		t.Fatalf("show: exit %d, %v: %s", code, err, out)
	}
	if shown.Version.Version != 1 || shown.Current.Version != 1 || shown.Current.Previous != 2 || !shown.Version.Blessing.Blessed {
		t.Fatalf("show: %s", out)
	}

	// A version whose files changed since the push is not rolled to.
	onnx := filepath.Join(dir, "registry", "penguins", "versions", "2", "model.onnx")
	if err := os.WriteFile(onnx, []byte("not the pushed model"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runApp(t, "registry", "rollback", "--registry", reg, "--name", "penguins", "--to", "2")
	if code != 1 || !strings.Contains(errOut, "integrity") {
		t.Fatalf("rollback to a tampered version: exit %d: %s", code, errOut)
	}
	waitFor(mlp, "version 1 still, after a refused rollback")
}

// TestRegistryUsage: mistakes are exit 2 with a message naming them.
func TestRegistryUsage(t *testing.T) {
	dir := t.TempDir()
	reg := "file://" + dir
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"registry", "rollback", "--registry", reg}, "--name"},
		{[]string{"registry", "list", "--registry", reg, "--name", "nothing"}, "no versions"},
		{[]string{"registry", "show", "--registry", reg, "--name", "nothing"}, "nothing pushed yet"},
		{[]string{"registry", "rollback", "--registry", reg, "--name", "nothing"}, "nothing pushed yet"},
		{[]string{"registry", "list", "--registry", reg, "--name", "Bad/Name"}, "model name"},
		{[]string{"registry", "list", "--registry", "ftp://x/y"}, "unknown scheme"},
		{[]string{"registry", "list"}, "registry"},
	} {
		code, _, errOut := runApp(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errOut, c.want)
		}
	}
}
