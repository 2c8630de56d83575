package train

import (
	"context"
	"fmt"
	"math"

	"github.com/mlsteps/mlsteps/components/onnx"
)

// LogisticOptions tunes FitLogistic. The zero value is an unpenalised fit
// with the default tolerance and iteration limit.
type LogisticOptions struct {
	// Lambda is the L2 penalty on the weights, not the intercepts, on the
	// scale of the features as given: FitLogistic minimises
	// Σ wᵢ·logloss(xᵢ, yᵢ) + Lambda/2·‖W‖², scikit-learn's
	// LogisticRegression(C=1/Lambda) (multinomial for three classes or more).
	Lambda float64
	// Tol stops the solver once every coordinate of the gradient of the
	// objective divided by the total weight is at most Tol; 0 means 1e-8.
	Tol float64
	// MaxIter bounds the solver's iterations; 0 means 500.
	MaxIter int
}

// Logistic is a fitted logistic regression. With two classes it has one
// row of weights, the score of class 1 (p₁ = sigmoid(score)); with K > 2
// it has K rows and p = softmax(scores).
type Logistic struct {
	Features   []string
	Classes    []string
	Weights    [][]float64 // one row of len(Features) per score
	Intercepts []float64   // one per score
	Report     Report
}

// FitLogistic fits binary or multinomial logistic regression with L-BFGS on
// internally standardised features, folding the solution back to the
// features' own scale. X must hold no NaN; d.Classes names at least two
// classes. A fit that reaches MaxIter is returned with Report.Converged
// false rather than an error: on separable data without a penalty there is
// no optimum to converge to.
func FitLogistic(ctx context.Context, d Data, o LogisticOptions) (*Logistic, error) {
	if err := d.check("train", false); err != nil {
		return nil, err
	}
	if d.Classes == nil {
		return nil, fmt.Errorf("%w: logistic regression needs classes (use Linear or GBDT for a numeric target)", ErrInvalid)
	}
	if !(o.Lambda >= 0) || math.IsInf(o.Lambda, 0) || !(o.Tol >= 0) || o.MaxIter < 0 {
		return nil, fmt.Errorf("%w: logistic: lambda %v, tol %v and max iterations %d must be non-negative", ErrInvalid, o.Lambda, o.Tol, o.MaxIter)
	}
	if o.Tol == 0 {
		o.Tol = 1e-8
	}
	if o.MaxIter == 0 {
		o.MaxIter = 500
	}
	p := newLogProblem(d, o.Lambda)
	theta := make([]float64, p.scores*(p.f+1))
	res, err := minimize(ctx, p.eval, theta, o.Tol, o.MaxIter)
	if err != nil {
		return nil, fmt.Errorf("logistic: %w", err)
	}
	m := &Logistic{Features: append([]string(nil), d.Features...), Classes: append([]string(nil), d.Classes...)}
	for s := range p.scores {
		row, c := make([]float64, p.f), theta[s*(p.f+1)+p.f]
		for j := range p.f {
			row[j] = theta[s*(p.f+1)+j] / p.std[j]
			c -= row[j] * p.mean[j]
		}
		m.Weights, m.Intercepts = append(m.Weights, row), append(m.Intercepts, c)
	}
	// The solver's losses are per unit of weight; report them so too.
	m.Report = Report{Iterations: res.iterations, Converged: res.converged, Loss: res.loss}
	return m, nil
}

// logProblem is the penalised log loss over standardised features z.
type logProblem struct {
	d         Data
	z         []float64
	f, scores int
	mean, std []float64
	lambda    float64
	total     float64
	s, r      []float64 // per-row scratch: scores and residuals
}

func newLogProblem(d Data, lambda float64) *logProblem {
	f, n := len(d.Features), d.Rows()
	mean, std := standardize(d)
	z := make([]float64, len(d.X))
	for i := range n {
		for j := range f {
			z[i*f+j] = (d.X[i*f+j] - mean[j]) / std[j]
		}
	}
	total := 0.0
	for i := range n {
		total += d.weight(i)
	}
	scores := len(d.Classes)
	if scores == 2 {
		scores = 1
	}
	return &logProblem{d: d, z: z, f: f, scores: scores, mean: mean, std: std, lambda: lambda, total: total,
		s: make([]float64, scores), r: make([]float64, scores)}
}

// eval returns the objective divided by the total weight, and its gradient.
func (p *logProblem) eval(theta, grad []float64) float64 {
	clear(grad)
	f, w := p.f, p.f+1
	loss := 0.0
	for i := range p.d.Rows() {
		z, y, wt := p.z[i*f:(i+1)*f], int(p.d.Y[i]), p.d.weight(i)
		for s := range p.scores {
			p.s[s] = theta[s*w+f] + dot(theta[s*w:s*w+f], z)
		}
		if p.scores == 1 {
			t := p.s[0]
			loss += wt * (softplus(t) - float64(y)*t)
			p.r[0] = wt * (sigmoid(t) - float64(y))
		} else {
			lse := logSumExp(p.s)
			loss += wt * (lse - p.s[y])
			for s := range p.scores {
				p.r[s] = wt * math.Exp(p.s[s]-lse)
			}
			p.r[y] -= wt
		}
		for s, r := range p.r {
			axpy(r, z, grad[s*w:s*w+f])
			grad[s*w+f] += r
		}
	}
	for s := range p.scores {
		for j := range f {
			// λ/2·β² with β = v/σ.
			k := p.lambda / (p.std[j] * p.std[j])
			v := theta[s*w+j]
			loss += k / 2 * v * v
			grad[s*w+j] += k * v
		}
	}
	for i := range grad {
		grad[i] /= p.total
	}
	return loss / p.total
}

func softplus(t float64) float64 {
	if t > 0 {
		return t + math.Log1p(math.Exp(-t))
	}
	return math.Log1p(math.Exp(t))
}

func sigmoid(t float64) float64 {
	if t >= 0 {
		return 1 / (1 + math.Exp(-t))
	}
	e := math.Exp(t)
	return e / (1 + e)
}

func logSumExp(s []float64) float64 {
	m := math.Inf(-1)
	for _, v := range s {
		m = math.Max(m, v)
	}
	sum := 0.0
	for _, v := range s {
		sum += math.Exp(v - m)
	}
	return m + math.Log(sum)
}

// softmaxInto writes softmax(s) into out.
func softmaxInto(out, s []float64) {
	lse := logSumExp(s)
	for i, v := range s {
		out[i] = math.Exp(v - lse)
	}
}

// Predict returns class probabilities and labels for every row of x.
func (m *Logistic) Predict(x []float64) (Prediction, error) {
	f, k := len(m.Features), len(m.Classes)
	n, err := checkX(x, f)
	if err != nil {
		return Prediction{}, err
	}
	probs := make([]float64, n*k)
	s := make([]float64, len(m.Weights))
	for i := range n {
		row := x[i*f : (i+1)*f]
		for c, w := range m.Weights {
			s[c] = m.Intercepts[c] + dot(row, w)
		}
		if len(s) == 1 {
			p1 := sigmoid(s[0])
			probs[i*k], probs[i*k+1] = 1-p1, p1
			continue
		}
		softmaxInto(probs[i*k:(i+1)*k], s)
	}
	return classify(probs, k), nil
}

// ONNX returns the model as MatMul, Add and Sigmoid (two classes) or Softmax
// over input "x" (float [N,F]), computed in double: outputs "probabilities"
// (float [N,K]) and "label" (int64 [N], ArgMax of the probabilities).
func (m *Logistic) ONNX() ([]byte, error) {
	f, k := int64(len(m.Features)), int64(len(m.Classes))
	g := onnx.NewGraph("mlsteps_logistic")
	x := g.Cast(g.Input(InputName, onnx.Float, -1, f), onnx.Double)
	scores := int64(len(m.Weights))
	w := make([]float64, 0, f*scores)
	for j := range f {
		for s := range scores {
			w = append(w, m.Weights[s][j])
		}
	}
	z := g.Op("Add", g.Op("MatMul", x, g.ConstDoubles(w, f, scores)), g.ConstDoubles(m.Intercepts, scores))
	var probs string
	if scores == 1 {
		p1 := g.Op("Sigmoid", z)
		probs = g.Node("", "Concat", []string{g.Op("Sub", g.ConstDouble(1), p1), p1}, onnx.AttrInt("axis", 1))
	} else {
		probs = g.Node("", "Softmax", []string{z}, onnx.AttrInt("axis", 1))
	}
	// ArgMax on the double probabilities, as Predict decides, so rounding to
	// float cannot turn a near tie the other way.
	g.NodeTo("", "ArgMax", []string{probs}, []string{OutputLabel}, onnx.AttrInt("axis", 1), onnx.AttrInt("keepdims", 0))
	g.NodeTo("", "Cast", []string{probs}, []string{OutputProbability}, onnx.AttrInt("to", int64(onnx.Float)))
	g.Output(OutputProbability, onnx.Float, -1, k)
	g.Output(OutputLabel, onnx.Int64, -1)
	return finish(g, m.Features, m.Classes, "mlsteps logistic regression")
}
