package train

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/mlsteps/mlsteps/components/onnx"
)

// LinearOptions tunes FitLinear. The zero value is ordinary least squares.
type LinearOptions struct {
	// Lambda is the L2 penalty on the weights, not the intercept, on the
	// scale of the features as given: FitLinear minimises
	// Σ wᵢ(yᵢ − xᵢ·β − b)² + Lambda·‖β‖², scikit-learn's Ridge(alpha=Lambda).
	Lambda float64
}

// Linear is a fitted linear regression: Intercept + Σ Weights[j]·x[j].
type Linear struct {
	Features  []string
	Weights   []float64
	Intercept float64
	Report    Report
}

// FitLinear fits ridge regression in closed form. Features are centred and
// scaled internally, which keeps the normal equations well conditioned,
// and the solution is folded back to the features' own scale. X must hold
// no NaN; d.Classes must be nil.
func FitLinear(ctx context.Context, d Data, o LinearOptions) (*Linear, error) {
	if err := d.check("train", false); err != nil {
		return nil, err
	}
	if d.Classes != nil {
		return nil, fmt.Errorf("%w: linear regression needs a numeric target, got %d classes (use Logistic or GBDT)", ErrInvalid, len(d.Classes))
	}
	if !(o.Lambda >= 0) || math.IsInf(o.Lambda, 0) {
		return nil, fmt.Errorf("%w: linear: lambda %v is not a finite non-negative number", ErrInvalid, o.Lambda)
	}
	f, n := len(d.Features), d.Rows()
	mean, std := standardize(d)
	total, ymean := 0.0, 0.0
	for i := range n {
		total += d.weight(i)
		ymean += d.weight(i) * d.Y[i]
	}
	ymean /= total
	// Normal equations in standardised space: (ZᵀWZ + diag(λ/s²))·v = ZᵀW(y−ȳ);
	// the penalty λ‖β‖² on β = v/s becomes λ/s² per coordinate.
	a, b := make([]float64, f*f), make([]float64, f)
	z := make([]float64, f)
	for i := range n {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("linear: %w", err)
			}
		}
		w := d.weight(i)
		for j, v := range d.X[i*f : (i+1)*f] {
			z[j] = (v - mean[j]) / std[j]
		}
		r := w * (d.Y[i] - ymean)
		for j := range f {
			b[j] += z[j] * r
			wz := w * z[j]
			row := a[j*f : j*f+j+1]
			for k := range row {
				row[k] += wz * z[k]
			}
		}
	}
	for j := range f {
		a[j*f+j] += o.Lambda / (std[j] * std[j])
	}
	if err := cholesky(a, f); err != nil {
		if errors.Is(err, errNotPD) {
			return nil, fmt.Errorf("%w: linear: the features are collinear or constant; set a positive lambda", ErrInvalid)
		}
		return nil, err
	}
	cholSolve(a, f, b)
	m := &Linear{Features: append([]string(nil), d.Features...), Weights: make([]float64, f), Intercept: ymean}
	for j := range f {
		m.Weights[j] = b[j] / std[j]
		m.Intercept -= m.Weights[j] * mean[j]
	}
	p, err := m.Predict(d.X)
	if err != nil {
		return nil, err
	}
	m.Report = Report{Iterations: 1, Converged: true, Loss: []float64{meanSquaredError(d, p.Values) + o.Lambda*dot(m.Weights, m.Weights)/total}}
	return m, nil
}

// Predict returns Intercept + X·Weights for every row of x.
func (m *Linear) Predict(x []float64) (Prediction, error) {
	f := len(m.Weights)
	n, err := checkX(x, f)
	if err != nil {
		return Prediction{}, err
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = m.Intercept + dot(x[i*f:(i+1)*f], m.Weights)
	}
	return Prediction{Values: out}, nil
}

// ONNX returns the model as MatMul and Add over input "x" (float [N,F]),
// computed in double and cast to output "prediction" (float [N,1]).
func (m *Linear) ONNX() ([]byte, error) {
	g := onnx.NewGraph("mlsteps_linear")
	x := g.Cast(g.Input(InputName, onnx.Float, -1, int64(len(m.Weights))), onnx.Double)
	y := g.Op("Add", g.Op("MatMul", x, g.ConstDoubles(m.Weights, int64(len(m.Weights)), 1)), g.ConstDoubles([]float64{m.Intercept}, 1))
	g.NodeTo("", "Cast", []string{y}, []string{OutputPrediction}, onnx.AttrInt("to", int64(onnx.Float)))
	g.Output(OutputPrediction, onnx.Float, -1, 1)
	return finish(g, m.Features, nil, "mlsteps linear regression (ridge)")
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// meanSquaredError is the weighted mean of squared errors of pred
// against d.Y.
func meanSquaredError(d Data, pred []float64) float64 {
	s, total := 0.0, 0.0
	for i, p := range pred {
		w := d.weight(i)
		s += w * (d.Y[i] - p) * (d.Y[i] - p)
		total += w
	}
	return s / total
}
