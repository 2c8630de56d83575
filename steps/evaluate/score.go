package evaluate

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/evaluate"
	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/tabular"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
)

// truth is what the examples say of each row of the split: its label,
// weight and slice features, in row order.
type truth struct {
	n        int
	labels   []int     // classifier: index into the classes, -1 when null
	targets  []float64 // regressor: NaN when null
	weights  []float64 // nil: every row weighs 1
	features map[string][]string
	// nullLabels counts rows without a label; they are not evaluated.
	nullLabels int
	// first is the split's row number of the first row: 0 but in a shard.
	first int64
}

// checkColumns refuses, before anything is read, a label, weight or slice
// column the examples lack or hold in a type that cannot serve, naming it.
func checkColumns(schema *arrow.Schema, cfg Config, classifier bool) error {
	field := func(what, name string) (arrow.Field, error) {
		idx := schema.FieldIndices(name)
		if len(idx) == 0 {
			return arrow.Field{}, step.BadInput(fmt.Errorf("config %s: no column %q in the examples (columns: %s)", what, name, columnList(schema)))
		}
		return schema.Field(idx[0]), nil
	}
	f, err := field("label", cfg.Label)
	if err != nil {
		return err
	}
	if classifier {
		switch f.Type.ID() {
		case arrow.STRING, arrow.LARGE_STRING, arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
			arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		default:
			return step.BadInput(fmt.Errorf("config label: column %q is %s; a classifier's label holds class names (strings or integers)", cfg.Label, f.Type))
		}
	} else if !tabular.IsNumeric(f.Type) {
		return step.BadInput(fmt.Errorf("config label: column %q is %s; a regressor's label must be numeric", cfg.Label, f.Type))
	}
	if cfg.ExampleWeight != "" {
		f, err := field("example_weight", cfg.ExampleWeight)
		if err != nil {
			return err
		}
		if !tabular.IsNumeric(f.Type) {
			return step.BadInput(fmt.Errorf("config example_weight: column %q is %s, not numeric", cfg.ExampleWeight, f.Type))
		}
	}
	for i, s := range cfg.Slices {
		for _, name := range s {
			f, err := field(fmt.Sprintf("slices[%d]", i), name)
			if err != nil {
				return err
			}
			switch f.Type.ID() {
			case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
				return step.BadInput(fmt.Errorf("config slices[%d]: column %q is %s; slice by strings, integers or booleans (bucket floats in the transform)", i, name, f.Type))
			}
		}
	}
	return nil
}

// readTruth reads the label, weight and slice columns of a split's share
// of part files (all of them unless sharded).
func readTruth(ctx context.Context, src share, cfg Config, classes []string) (*truth, error) {
	index := make(map[string]int, len(classes))
	for i, c := range classes {
		index[c] = i
	}
	sliceCols := cfg.features()
	cols := append([]string{cfg.Label}, sliceCols...)
	if cfg.ExampleWeight != "" && !slices.Contains(cols, cfg.ExampleWeight) {
		cols = append(cols, cfg.ExampleWeight)
	}
	t := &truth{features: map[string][]string{}, first: src.first}
	for _, name := range sliceCols {
		t.features[name] = nil // named even when the share has no rows, as a shard's may not
	}
	if cfg.ExampleWeight != "" {
		t.weights = []float64{}
	}
	for rec, err := range src.records(ctx, artifacts.ReadOptions{Columns: cols}) {
		if err != nil {
			return nil, fmt.Errorf("read split %s: %w", cfg.Split, err)
		}
		sch := rec.Schema()
		label := rec.Column(sch.FieldIndices(cfg.Label)[0])
		for i := range int(rec.NumRows()) {
			row := int(src.first) + t.n + i // the row number in the split, sharded or not
			switch {
			case label.IsNull(i):
				t.nullLabels++
				t.labels = append(t.labels, -1)
				t.targets = append(t.targets, math.NaN())
			case classes != nil:
				v := tabular.Text(label, i)
				k, ok := index[v]
				if !ok {
					return nil, step.BadInput(fmt.Errorf("split %s row %d: label %q in column %q is not one of the model's classes (%s)",
						cfg.Split, row, v, cfg.Label, strings.Join(classes, ", ")))
				}
				t.labels = append(t.labels, k)
			default:
				v, _ := tabular.Number(label, i)
				t.targets = append(t.targets, v)
			}
		}
		if cfg.ExampleWeight != "" {
			w := rec.Column(sch.FieldIndices(cfg.ExampleWeight)[0])
			for i := range int(rec.NumRows()) {
				v, _ := tabular.Number(w, i)
				if math.IsNaN(v) || v < 0 || math.IsInf(v, 0) {
					return nil, step.BadInput(fmt.Errorf("split %s row %d: example weight %q is %v; weights are finite and not negative",
						cfg.Split, int(src.first)+t.n+i, cfg.ExampleWeight, v))
				}
				t.weights = append(t.weights, v)
			}
		}
		if len(sliceCols) > 0 {
			fs, err := evaluate.RecordFeatures(rec, sliceCols)
			if err != nil {
				return nil, step.BadInput(fmt.Errorf("split %s: %w", cfg.Split, err))
			}
			for name, vals := range fs {
				t.features[name] = append(t.features[name], vals...)
			}
		}
		t.n += int(rec.NumRows())
	}
	if classes == nil {
		t.labels = nil
	} else {
		t.targets = nil
	}
	return t, nil
}

// answers are one model's outputs on every row of the split.
type answers struct {
	id string
	// ok marks rows the model answered; dead ones have a reason.
	ok     []bool
	width  int       // values per row: the class count, or 1
	values []float64 // row-major
	dead   int
	// reasons counts dead rows by reason.
	reasons map[string]int
	metrics map[string]float64
}

// deadFraction is the share of rows the model could not answer.
func (a *answers) deadFraction() float64 {
	if len(a.ok) == 0 {
		return 0
	}
	return float64(a.dead) / float64(len(a.ok))
}

// predict runs a model over the split's share of part files through the
// inference engine and keeps its scores (a classifier's class
// probabilities in the order of classes) or its prediction (a regressor's
// output named by cfg.Prediction, or its only one) for each row. The
// engine runs once per part file, so batches never span parts: a shard's
// batches, and so its answers, are the unsharded run's.
func predict(ctx context.Context, src share, m *model.Model, cfg Config, n int, opts inference.Options, hopts model.HandlerOptions) (*answers, error) {
	h, err := m.Handler(hopts)
	if err != nil {
		return nil, err
	}
	classes := m.Meta.Classes
	a := &answers{id: h.ModelID(), ok: make([]bool, n), width: max(1, len(classes)), reasons: map[string]int{}}
	a.values = make([]float64, n*a.width)
	cols := m.Columns()
	if m.Keyed != nil {
		key := m.Keyed.KeyColumn
		if hopts.KeyColumn != "" {
			key = hopts.KeyColumn
		}
		cols = append(cols, key)
	}
	eng := inference.New(h, opts)
	defer eng.Close()
	var (
		outCol string
		base   int // the share's row number of the part's first row
	)
	sink := inference.Sink{
		Result: func(res inference.Result) error {
			out := res.Inference
			var outs []*array.Float32
			if classes != nil {
				for _, c := range classes {
					col, err := floatColumn(out, "score_"+c)
					if err != nil {
						return fmt.Errorf("model %s: %w", a.id, err)
					}
					outs = append(outs, col)
				}
			} else {
				if outCol == "" {
					if outCol, err = pickPrediction(out.Schema(), cfg.Prediction); err != nil {
						return fmt.Errorf("model %s: %w", a.id, err)
					}
				}
				col, err := floatColumn(out, outCol)
				if err != nil {
					return fmt.Errorf("model %s: %w", a.id, err)
				}
				outs = append(outs, col)
			}
			for i, p := range res.Rows {
				pos := base + int(p)
				if pos >= n {
					return fmt.Errorf("model %s: an answer for row %d of a %d-row split", a.id, pos, n)
				}
				finite := true
				for k, col := range outs {
					v := math.NaN()
					if !col.IsNull(i) {
						v = float64(col.Value(i))
					}
					finite = finite && !math.IsNaN(v) && !math.IsInf(v, 0)
					a.values[pos*a.width+k] = v
				}
				if !finite {
					a.dead++
					a.reasons["the model's output is null, NaN or infinite"]++
					continue
				}
				a.ok[pos] = true
			}
			return nil
		},
		DeadLetter: func(d inference.DeadLetter) error {
			a.dead += len(d.Rows)
			a.reasons[d.Reason] += len(d.Rows)
			return nil
		},
	}
	for _, file := range src.files {
		rows := 0
		part := func(yield func(arrow.RecordBatch, error) bool) {
			for rec, err := range src.a.PartRecords(ctx, src.split, file, artifacts.ReadOptions{Columns: cols}) {
				if err == nil {
					rows += int(rec.NumRows())
				}
				if !yield(rec, err) {
					return
				}
			}
		}
		if _, err := eng.Run(ctx, part, sink); err != nil {
			return nil, fmt.Errorf("model %s on split %s, %s: %w", a.id, cfg.Split, file, err)
		}
		base += rows
	}
	if s, ok := eng.Metrics()[a.id]; ok {
		a.metrics = s.Values()
	}
	return a, nil
}

func floatColumn(rec arrow.RecordBatch, name string) (*array.Float32, error) {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil, fmt.Errorf("no output column %q (outputs: %s)", name, columnList(rec.Schema()))
	}
	col, ok := rec.Column(idx[0]).(*array.Float32)
	if !ok {
		return nil, fmt.Errorf("output column %q is %s, not float", name, rec.Column(idx[0]).DataType())
	}
	return col, nil
}

// pickPrediction names a regressor's prediction column: the one asked
// for, or the only output.
func pickPrediction(s *arrow.Schema, want string) (string, error) {
	if want != "" {
		if len(s.FieldIndices(want)) == 0 {
			return "", fmt.Errorf("config prediction: no output %q (outputs: %s)", want, columnList(s))
		}
		return want, nil
	}
	if s.NumFields() != 1 {
		return "", fmt.Errorf("the model has %d outputs (%s): name the prediction in the config's prediction key", s.NumFields(), columnList(s))
	}
	return s.Field(0).Name, nil
}

func columnList(s *arrow.Schema) string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = fmt.Sprintf("%q", f.Name)
	}
	return strings.Join(names, ", ")
}

// batch assembles the evaluator's input from the truth and a model's
// answers on the rows every model answered and that have a label.
func batch(t *truth, a *answers, keep []int) evaluate.Batch {
	var b evaluate.Batch
	if t.labels != nil {
		b.Labels = make([]int, len(keep))
		b.Scores = make([]float64, 0, len(keep)*a.width)
		for i, r := range keep {
			b.Labels[i] = t.labels[r]
			b.Scores = append(b.Scores, a.values[r*a.width:(r+1)*a.width]...)
		}
	} else {
		b.Targets = make([]float64, len(keep))
		b.Predictions = make([]float64, len(keep))
		for i, r := range keep {
			b.Targets[i], b.Predictions[i] = t.targets[r], a.values[r]
		}
	}
	if t.weights != nil {
		b.Weights = make([]float64, len(keep))
		for i, r := range keep {
			b.Weights[i] = t.weights[r]
		}
	}
	b.Features = make(map[string][]string, len(t.features))
	for _, name := range slices.Sorted(maps.Keys(t.features)) {
		vals := make([]string, len(keep))
		for i, r := range keep {
			vals[i] = t.features[name][r]
		}
		b.Features[name] = vals
	}
	return b
}

// evaluated lists the rows that have a label and that every model
// answered.
func evaluated(t *truth, models ...*answers) []int {
	keep := make([]int, 0, t.n)
rows:
	for r := range t.n {
		if (t.labels != nil && t.labels[r] < 0) || (t.labels == nil && math.IsNaN(t.targets[r])) {
			continue
		}
		for _, a := range models {
			if !a.ok[r] {
				continue rows
			}
		}
		keep = append(keep, r)
	}
	return keep
}

// recorded reads precomputed predictions (an infer step's output) as a
// model's answers: score_<class> columns for a classifier, in classes'
// order, or the prediction column of a regressor.
func recorded(ctx context.Context, src share, cfg Config, classes []string, prediction string, n int, id string) (*answers, error) {
	a := &answers{id: id, ok: make([]bool, n), width: max(1, len(classes)), reasons: map[string]int{}}
	a.values = make([]float64, n*a.width)
	cols := []string{prediction}
	if classes != nil {
		cols = cols[:0]
		for _, c := range classes {
			cols = append(cols, scorePrefix+c)
		}
	}
	row := 0
	for rec, err := range src.records(ctx, artifacts.ReadOptions{Columns: cols}) {
		if err != nil {
			return nil, fmt.Errorf("read predictions split %s: %w", cfg.Split, err)
		}
		in := make([]arrow.Array, len(cols))
		for k, c := range cols {
			in[k] = rec.Column(rec.Schema().FieldIndices(c)[0])
		}
		for i := range int(rec.NumRows()) {
			if row >= n {
				return nil, fmt.Errorf("predictions split %s grew while read", cfg.Split)
			}
			finite := true
			for k, col := range in {
				v, _ := tabular.Number(col, i)
				finite = finite && !math.IsNaN(v) && !math.IsInf(v, 0)
				a.values[row*a.width+k] = v
			}
			if finite {
				a.ok[row] = true
			} else {
				a.dead++
				a.reasons["the recorded prediction is null, NaN or infinite"]++
			}
			row++
		}
	}
	return a, nil
}

// scorePrefix starts the column of each class's score in Predictions.
const scorePrefix = "score_"

// recordedClasses reads a Predictions schema: the classes of its
// score_<class> columns in file order, or (a regressor's) the numeric
// column named by want, by default "prediction".
func recordedClasses(schema *arrow.Schema, want string) (classes []string, prediction string, err error) {
	for _, f := range schema.Fields() {
		if c, ok := strings.CutPrefix(f.Name, scorePrefix); ok {
			if !tabular.IsNumeric(f.Type) {
				return nil, "", fmt.Errorf("predictions column %q is %s, not a score", f.Name, f.Type)
			}
			classes = append(classes, c)
		}
	}
	if len(classes) > 0 {
		return classes, "", nil
	}
	if want == "" {
		want = "prediction"
	}
	idx := schema.FieldIndices(want)
	if len(idx) == 0 || !tabular.IsNumeric(schema.Field(idx[0]).Type) {
		return nil, "", fmt.Errorf("config prediction: the predictions have no score_<class> columns and no numeric column %q (columns: %s)", want, columnList(schema))
	}
	return nil, want, nil
}
