package evaluate_test

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"testing"

	"github.com/mlsteps/mlsteps/internal/testenv"
)

// python runs script with Debian's python3 (single-threaded) and decodes
// its JSON stdout into out. It skips (fails under CI=true) without
// python3-sklearn.
func python(t testing.TB, env []string, script string, out any) {
	t.Helper()
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		testenv.Missing(t, "%s not found (apt install python3-sklearn)", python)
		return
	}
	if err := exec.Command(python, "-c", "import sklearn, numpy").Run(); err != nil {
		testenv.Missing(t, "python3-sklearn is not installed (apt install python3-sklearn)")
		return
	}
	cmd := exec.Command(python, "-c", script)
	cmd.Env = append(append(os.Environ(), "PYTHONHASHSEED=0", "OMP_NUM_THREADS=1"), env...)
	data, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("python: %v\n%s", err, stderr)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("python output: %v", err)
	}
}

// near reports whether a and b agree to rel relative (or are both NaN).
func near(a, b, rel float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	d := math.Abs(a - b)
	return d <= rel*max(math.Abs(a), math.Abs(b)) || d < 1e-15
}
