// Package orttest initialises ONNX Runtime for tests: it finds the library
// ($MLSTEPS_ORT_LIB or <repo>/.cache/lib/libonnxruntime.so.1) and skips
// (fails under CI=true) when it is missing.
package orttest

import (
	"os"
	"testing"

	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// Init makes ORT ready for t, or skips t when the library is absent.
func Init(t testing.TB) {
	t.Helper()
	lib := ort.LibPath(testenv.RepoRoot(t))
	if _, err := os.Stat(lib); err != nil {
		testenv.Missing(t, "onnxruntime library %s: run make setup", lib)
		return
	}
	if err := ort.Init(lib); err != nil {
		t.Fatal(err)
	}
}
