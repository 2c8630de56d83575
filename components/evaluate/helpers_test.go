package evaluate_test

import (
	"math"
	"testing"

	"github.com/mlsteps/mlsteps/internal/testenv"
)

// python runs script with Debian's python3 (single-threaded) and decodes
// its JSON stdout into out. It skips (fails under CI=true) without
// python3-sklearn.
func python(t testing.TB, env []string, script string, out any) {
	t.Helper()
	testenv.Python(t, script, out, env...)
}

// near reports whether a and b agree to rel relative (or are both NaN).
func near(a, b, rel float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	d := math.Abs(a - b)
	return d <= rel*max(math.Abs(a), math.Abs(b)) || d < 1e-15
}
