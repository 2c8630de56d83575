package train

import (
	"context"
	"fmt"
	"math"
	"runtime"
)

// GBDTOptions tunes FitGBDT. The zero value is 100 rounds of depth-6 trees
// with learning rate 0.1, minimum child weight 1, no L2 penalty, 255 bins
// and no early stopping.
type GBDTOptions struct {
	// Trees is the number of boosting rounds; 0 means 100. A multi-class
	// model grows one tree per class per round.
	Trees int
	// MaxDepth bounds the depth of every tree (a depth-d tree has at most
	// 2^d leaves); 0 means 6.
	MaxDepth int
	// LearningRate shrinks every tree's values; 0 means 0.1.
	LearningRate float64
	// MinChildWeight is the least hessian sum a child may hold (the row
	// weight sum for squared error); 0 means 1.
	MinChildWeight float64
	// Lambda is the L2 penalty on leaf values; 0 is none.
	Lambda float64
	// MaxBins bounds the value bins per feature (NaN has one more); 0 means
	// 255, the most there can be.
	MaxBins int
	// EarlyStoppingRounds stops boosting once the eval loss has not
	// improved for that many rounds and keeps the trees up to the best
	// round; 0 never stops early. It needs eval data.
	EarlyStoppingRounds int
	// Seed picks the sample of rows that chooses bin boundaries when there
	// are more than 200,000 rows; nothing else is random.
	Seed uint64
	// Workers is how many goroutines build histograms; 0 means GOMAXPROCS.
	// The model does not depend on it.
	Workers int
}

func (o GBDTOptions) withDefaults() (GBDTOptions, error) {
	if o.Trees < 0 || o.MaxDepth < 0 || o.LearningRate < 0 || o.MinChildWeight < 0 || o.Lambda < 0 ||
		o.MaxBins < 0 || o.EarlyStoppingRounds < 0 || o.Workers < 0 {
		return o, fmt.Errorf("%w: gbdt: options must not be negative: %+v", ErrInvalid, o)
	}
	if math.IsNaN(o.LearningRate) || math.IsInf(o.LearningRate, 0) || math.IsNaN(o.MinChildWeight) || math.IsInf(o.MinChildWeight, 0) ||
		math.IsNaN(o.Lambda) || math.IsInf(o.Lambda, 0) {
		return o, fmt.Errorf("%w: gbdt: learning rate, min child weight and lambda must be finite: %+v", ErrInvalid, o)
	}
	if o.MaxBins == 1 || o.MaxBins > 255 {
		return o, fmt.Errorf("%w: gbdt: max bins %d is not in 2..255", ErrInvalid, o.MaxBins)
	}
	if o.MaxDepth > 30 {
		return o, fmt.Errorf("%w: gbdt: max depth %d is above 30", ErrInvalid, o.MaxDepth)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Trees, 100)
	def(&o.MaxDepth, 6)
	def(&o.MaxBins, 255)
	def(&o.Workers, runtime.GOMAXPROCS(0))
	if o.LearningRate == 0 {
		o.LearningRate = 0.1
	}
	if o.MinChildWeight == 0 {
		o.MinChildWeight = 1
	}
	return o, nil
}

// GBDT is a fitted gradient-boosted tree ensemble. Its raw score per
// output is Base plus the values of the leaves each row reaches; tree t
// adds to output t mod len(Base). Regression has one output (the
// prediction), binary classification one (the log-odds of class 1),
// K-class classification K (softmax gives the probabilities).
type GBDT struct {
	Features []string
	Classes  []string
	Base     []float32
	Trees    []Tree
	Report   Report
}

// Tree is one regression tree; Nodes[0] is the root.
type Tree struct {
	Nodes []Node
}

// Node is a split or, when Feature is −1, a leaf.
type Node struct {
	// Feature is the index of the feature the node splits on.
	Feature int
	// Threshold sends a row left when float32(x) <= Threshold.
	Threshold float32
	// MissingLeft sends a NaN left (else right).
	MissingLeft bool
	Left, Right int
	// Value is a leaf's contribution to the raw score.
	Value float32

	bin uint8 // the split as a bin index, for binned rows
}

// gbdtTask is the loss a GBDT minimises: squared error (no classes), log
// loss (one output, two classes) or softmax (one output per class).
type gbdtTask struct {
	outputs int
	classes int
}

// FitGBDT fits gradient-boosted trees on histograms of binned features:
// squared error for regression (d.Classes nil), log loss for two classes,
// softmax with one tree per class per round for more. NaN in X is a value
// of its own: each split learns which side it goes to. eval, when not nil,
// is scored every round (Report.EvalLoss) and drives early stopping.
func FitGBDT(ctx context.Context, d Data, eval *Data, o GBDTOptions) (*GBDT, error) {
	if err := d.check("train", true); err != nil {
		return nil, err
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if eval != nil {
		if err := eval.check("eval", true); err != nil {
			return nil, err
		}
		if err := eval.checkLike(d); err != nil {
			return nil, err
		}
	} else if o.EarlyStoppingRounds > 0 {
		return nil, fmt.Errorf("%w: gbdt: early stopping needs eval data", ErrInvalid)
	}
	task := gbdtTask{outputs: 1, classes: len(d.Classes)}
	if task.classes > 2 {
		task.outputs = task.classes
	}
	n := d.Rows()
	m := &GBDT{Features: append([]string(nil), d.Features...), Classes: append([]string(nil), d.Classes...), Base: task.base(d)}
	bounds := thresholds(d, o.MaxBins, o.Seed)
	gr := &grower{b: bin(d, bounds), bounds: bounds, depth: o.MaxDepth, lambda: o.Lambda, minChild: o.MinChildWeight,
		rate: o.LearningRate, workers: o.Workers, idx: make([]int32, n), scratch: make([]int32, 0, n)}
	raw := task.start(m.Base, n)
	grads := make([][]gradPair, task.outputs)
	for k := range grads {
		grads[k] = make([]gradPair, n)
	}
	var evalBins binned
	var evalRaw []float64
	if eval != nil {
		evalBins, evalRaw = bin(*eval, bounds), task.start(m.Base, eval.Rows())
	}
	best, bestLoss := 0, math.Inf(1)
	for round := range o.Trees {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("gbdt round %d: %w", round, err)
		}
		task.gradients(d, raw, grads)
		for k := range task.outputs {
			gr.gh = grads[k]
			t := gr.grow(raw, task.outputs, k)
			if eval != nil {
				t.addBinned(evalBins, evalRaw, task.outputs, k)
			}
			m.Trees = append(m.Trees, t)
		}
		m.Report.Loss = append(m.Report.Loss, task.loss(d, raw))
		if eval == nil {
			continue
		}
		l := task.loss(*eval, evalRaw)
		m.Report.EvalLoss = append(m.Report.EvalLoss, l)
		if l < bestLoss {
			best, bestLoss = round, l
		}
		if o.EarlyStoppingRounds > 0 && round-best >= o.EarlyStoppingRounds {
			m.Trees = m.Trees[:(best+1)*task.outputs]
			m.Report.Stopped = true
			break
		}
	}
	m.Report.Iterations = len(m.Trees) / task.outputs
	m.Report.Converged = true
	return m, nil
}

// base is the constant raw score the trees start from: the mean target,
// the log-odds of class 1, or the log of every class's share.
func (t gbdtTask) base(d Data) []float32 {
	total, sums := 0.0, make([]float64, max(t.classes, 1))
	for i, y := range d.Y {
		w := d.weight(i)
		total += w
		if t.classes == 0 {
			sums[0] += w * y
		} else {
			sums[int(y)] += w
		}
	}
	clamp := func(p float64) float64 { return math.Min(math.Max(p, 1e-15), 1-1e-15) }
	switch {
	case t.classes == 0:
		return []float32{float32(sums[0] / total)}
	case t.outputs == 1:
		p := clamp(sums[1] / total)
		return []float32{float32(math.Log(p / (1 - p)))}
	}
	b := make([]float32, t.classes)
	for k, s := range sums {
		b[k] = float32(math.Log(clamp(s / total)))
	}
	return b
}

func (t gbdtTask) start(base []float32, n int) []float64 {
	raw := make([]float64, n*t.outputs)
	for i := range n {
		for k, b := range base {
			raw[i*t.outputs+k] = float64(b)
		}
	}
	return raw
}

// gradients fills the weighted gradient and hessian of every row and output.
func (t gbdtTask) gradients(d Data, raw []float64, out [][]gradPair) {
	k := t.outputs
	p := make([]float64, k)
	for i, y := range d.Y {
		w := d.weight(i)
		switch {
		case t.classes == 0:
			out[0][i] = gradPair{w * (raw[i] - y), w}
		case k == 1:
			q := sigmoid(raw[i])
			out[0][i] = gradPair{w * (q - y), w * q * (1 - q)}
		default:
			softmaxInto(p, raw[i*k:(i+1)*k])
			for c, q := range p {
				g := q
				if c == int(y) {
					g--
				}
				out[c][i] = gradPair{w * g, w * q * (1 - q)}
			}
		}
	}
}

// loss is the weighted mean squared error or log loss of raw scores.
func (t gbdtTask) loss(d Data, raw []float64) float64 {
	k := t.outputs
	s, total := 0.0, 0.0
	for i, y := range d.Y {
		w := d.weight(i)
		total += w
		switch {
		case t.classes == 0:
			s += w * (raw[i] - y) * (raw[i] - y)
		case k == 1:
			s += w * (softplus(raw[i]) - y*raw[i])
		default:
			r := raw[i*k : (i+1)*k]
			s += w * (logSumExp(r) - r[int(y)])
		}
	}
	return s / total
}

// addBinned adds the tree's values for binned rows to raw.
func (t Tree) addBinned(b binned, raw []float64, stride, out int) {
	for i := range b.n {
		n := t.Nodes[0]
		for n.Feature >= 0 {
			v := b.bins[n.Feature][i]
			if (v == missingBin && n.MissingLeft) || (v != missingBin && v <= n.bin) {
				n = t.Nodes[n.Left]
			} else {
				n = t.Nodes[n.Right]
			}
		}
		raw[i*stride+out] += float64(n.Value)
	}
}

// leaf returns the leaf row x reaches.
func (t Tree) leaf(x []float64) Node {
	n := t.Nodes[0]
	for n.Feature >= 0 {
		v := x[n.Feature]
		if (math.IsNaN(v) && n.MissingLeft) || float32(v) <= n.Threshold {
			n = t.Nodes[n.Left]
		} else {
			n = t.Nodes[n.Right]
		}
	}
	return n
}

// Raw returns the raw scores of every row of x: rows×len(Base), row-major.
func (m *GBDT) Raw(x []float64) ([]float64, error) {
	f, k := len(m.Features), len(m.Base)
	n, err := checkX(x, f)
	if err != nil {
		return nil, err
	}
	raw := make([]float64, n*k)
	for i := range n {
		row, out := x[i*f:(i+1)*f], raw[i*k:(i+1)*k]
		for c, b := range m.Base {
			out[c] = float64(b)
		}
		for t, tree := range m.Trees {
			out[t%k] += float64(tree.leaf(row).Value)
		}
	}
	return raw, nil
}

// Predict returns predictions (regression) or class probabilities and
// labels for every row of x; NaN is a missing value.
func (m *GBDT) Predict(x []float64) (Prediction, error) {
	raw, err := m.Raw(x)
	if err != nil {
		return Prediction{}, err
	}
	k := len(m.Classes)
	switch {
	case k == 0:
		return Prediction{Values: raw}, nil
	case len(m.Base) == 1:
		probs := make([]float64, 2*len(raw))
		for i, r := range raw {
			p := sigmoid(r)
			probs[2*i], probs[2*i+1] = 1-p, p
		}
		return classify(probs, 2), nil
	}
	probs := make([]float64, len(raw))
	for i := 0; i < len(raw); i += k {
		softmaxInto(probs[i:i+k], raw[i:i+k])
	}
	return classify(probs, k), nil
}
