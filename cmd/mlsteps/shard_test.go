package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/components/onnx/ort/orttest"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// TestShardCLI: `mlsteps shard-plan` prints the list a fan-out iterates
// over; `mlsteps infer --shard I/N` writes partials and `--merge` takes
// them as Argo hands them over (a JSON list per output) or one flag per
// partial; --shard is refused by a step that does not shard.
func TestShardCLI(t *testing.T) {
	orttest.Init(t)
	code, stdout, stderr := runApp(t, "shard-plan", "--shards", "3")
	if code != 0 || strings.TrimSpace(stdout) != `["0/3","1/3","2/3"]` {
		t.Fatalf("shard-plan: exit %d %q %s", code, stdout, stderr)
	}
	if code, _, _ := runApp(t, "shard-plan", "--shards", "0"); code != 2 {
		t.Errorf("shard-plan --shards 0: exit %d", code)
	}
	dir := "file://" + t.TempDir()
	if code, _, stderr := runApp(t, "import", "--source", testenv.VegaData(t, "penguins.json"), "--split", "train=0.8,eval=0.2", "--out-root", dir+"/data"); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := runApp(t, "import-model", "--source", filepath.Join(testenv.RepoRoot(t), "testdata", "models", "penguins-mlp.onnx"), "--out-root", dir+"/model"); code != 0 {
		t.Fatal(stderr)
	}
	parts := map[string][]string{}
	for i := range 2 {
		out := fmt.Sprintf("%s/shard-%d", dir, i)
		code, _, stderr := runApp(t, "infer", "--in", "examples="+dir+"/data/examples", "--in", "model="+dir+"/model/model", "--shard", fmt.Sprintf("%d/2", i), "--out-root", out)
		if code != 0 {
			t.Fatalf("shard %d: %s", i, stderr)
		}
		for _, o := range []string{"predictions", "dead_letters"} {
			parts[o] = append(parts[o], out+"/"+o)
		}
	}
	preds, _ := json.Marshal(parts["predictions"])
	code, _, stderr = runApp(t, "infer", "--merge", "predictions="+string(preds), "--merge", "dead_letters="+parts["dead_letters"][0],
		"--merge", "dead_letters="+parts["dead_letters"][1], "--out-root", dir+"/merged")
	if code != 0 {
		t.Fatalf("merge: %s", stderr)
	}
	code, _, stderr = runApp(t, "infer", "--merge", "predictions="+parts["predictions"][0], "--merge", "dead_letters="+parts["dead_letters"][0], "--out-root", dir+"/partial")
	if code != 2 || !strings.Contains(stderr, "incomplete set") {
		t.Errorf("merge of one of two shards: exit %d %s", code, stderr)
	}
	code, _, stderr = runApp(t, "import", "--source", testenv.VegaData(t, "penguins.json"), "--shard", "0/2", "--out-root", dir+"/x")
	if code != 2 {
		t.Errorf("import --shard: exit %d %s", code, stderr)
	}
}
