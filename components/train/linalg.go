package train

import (
	"errors"
	"math"
)

// errNotPD reports a matrix Cholesky cannot factor.
var errNotPD = errors.New("matrix is not positive definite")

// cholesky factors the n×n symmetric positive definite matrix a (row-major,
// only its lower triangle read) in place into L with a = L·Lᵀ.
func cholesky(a []float64, n int) error {
	for j := range n {
		d := a[j*n+j]
		for k := range j {
			d -= a[j*n+k] * a[j*n+k]
		}
		// A pivot this small relative to the diagonal means the columns are
		// (numerically) linearly dependent.
		if !(d > 1e-13*math.Abs(a[j*n+j])) || d <= 0 {
			return errNotPD
		}
		d = math.Sqrt(d)
		a[j*n+j] = d
		for i := j + 1; i < n; i++ {
			s := a[i*n+j]
			for k := range j {
				s -= a[i*n+k] * a[j*n+k]
			}
			a[i*n+j] = s / d
		}
	}
	return nil
}

// cholSolve solves L·Lᵀ·x = b for x in place, with l from cholesky.
func cholSolve(l []float64, n int, b []float64) {
	for i := range n {
		s := b[i]
		for k := range i {
			s -= l[i*n+k] * b[k]
		}
		b[i] = s / l[i*n+i]
	}
	for i := n - 1; i >= 0; i-- {
		s := b[i]
		for k := i + 1; k < n; k++ {
			s -= l[k*n+i] * b[k]
		}
		b[i] = s / l[i*n+i]
	}
}
