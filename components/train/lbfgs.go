package train

import (
	"context"
	"math"
)

// objective returns f(x) and writes ∇f(x) into grad.
type objective func(x, grad []float64) float64

// lbfgsResult is where minimize stopped.
type lbfgsResult struct {
	iterations int
	converged  bool
	loss       []float64
}

// minimize runs L-BFGS (memory 10) with a backtracking Armijo line search
// from x (updated in place) until max|∇f| <= tol or maxIter iterations.
// It suits the smooth, strongly convex objectives of penalised regression,
// where a simple line search is enough.
func minimize(ctx context.Context, f objective, x []float64, tol float64, maxIter int) (lbfgsResult, error) {
	const memory = 10
	n := len(x)
	g, gNew, xNew, d := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	var ss, ys [][]float64
	var rhos []float64
	fx := f(x, g)
	res := lbfgsResult{}
	alpha := make([]float64, memory)
	for res.iterations < maxIter {
		if maxAbs(g) <= tol {
			res.converged = true
			return res, nil
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		// Two-loop recursion: d = −H·g.
		copy(d, g)
		for i := len(ss) - 1; i >= 0; i-- {
			alpha[i] = rhos[i] * dot(ss[i], d)
			axpy(-alpha[i], ys[i], d)
		}
		var gamma float64
		if k := len(ss) - 1; k >= 0 {
			gamma = dot(ss[k], ys[k]) / dot(ys[k], ys[k])
		} else {
			gamma = 1 / math.Max(1, math.Sqrt(dot(g, g)))
		}
		for i := range d {
			d[i] *= gamma
		}
		for i := range ss {
			beta := rhos[i] * dot(ys[i], d)
			axpy(alpha[i]-beta, ss[i], d)
		}
		for i := range d {
			d[i] = -d[i]
		}
		slope := dot(g, d)
		if slope >= 0 {
			// Not a descent direction (curvature pairs gone stale): restart
			// from steepest descent.
			ss, ys, rhos = ss[:0], ys[:0], rhos[:0]
			for i := range d {
				d[i] = -g[i]
			}
			slope = -dot(g, g)
		}
		step, fNew, ok := 1.0, 0.0, false
		for range 60 {
			for i := range x {
				xNew[i] = x[i] + step*d[i]
			}
			fNew = f(xNew, gNew)
			// The tiny slack accepts steps whose decrease is lost in
			// rounding once the objective is flat to machine precision.
			if fNew <= fx+1e-4*step*slope+1e-15*math.Abs(fx) {
				ok = true
				break
			}
			step /= 2
		}
		if !ok {
			res.converged = maxAbs(g) <= tol
			return res, nil
		}
		s, y := make([]float64, n), make([]float64, n)
		for i := range x {
			s[i], y[i] = xNew[i]-x[i], gNew[i]-g[i]
		}
		if sy := dot(s, y); sy > 1e-12*math.Sqrt(dot(s, s)*dot(y, y)) {
			if len(ss) == memory {
				ss, ys, rhos = ss[1:], ys[1:], rhos[1:]
			}
			ss, ys, rhos = append(ss, s), append(ys, y), append(rhos, 1/sy)
		}
		copy(x, xNew)
		copy(g, gNew)
		fx = fNew
		res.iterations++
		res.loss = append(res.loss, fx)
	}
	res.converged = maxAbs(g) <= tol
	return res, nil
}

func axpy(a float64, x, y []float64) {
	for i, v := range x {
		y[i] += a * v
	}
}

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	return m
}
