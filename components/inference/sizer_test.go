package inference

import (
	"testing"
	"time"
)

// TestSizer feeds the adaptive sizer synthetic latencies (10µs fixed plus
// 1µs per row) and checks it settles where a batch takes the target, never
// leaving [min, max] and at most doubling per step.
func TestSizer(t *testing.T) {
	for _, tc := range []struct {
		name           string
		min, max       int
		target         time.Duration
		settle, wantLo int
		wantHi         int
	}{
		{"toward 1ms", 1, 10000, time.Millisecond, 40, 900, 1000},
		{"capped by max", 1, 256, time.Second, 40, 256, 256},
		{"floored by min", 32, 1000, time.Microsecond, 40, 32, 32},
		{"fixed without target", 8, 64, 0, 1, 64, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSizer(tc.min, tc.max, tc.target)
			prev := s.next()
			for range tc.settle {
				n := s.next()
				if n < tc.min || n > tc.max || n > 2*max(prev, 1) {
					t.Fatalf("size %d after %d (bounds %d..%d)", n, prev, tc.min, tc.max)
				}
				prev = n
				s.observe(n, 10*time.Microsecond+time.Duration(n)*time.Microsecond)
			}
			if n := s.next(); n < tc.wantLo || n > tc.wantHi {
				t.Errorf("settled at %d, want %d..%d", n, tc.wantLo, tc.wantHi)
			}
		})
	}
}
