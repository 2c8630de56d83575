package inference

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/onnxpb"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
)

// Input feeds one model input from named columns: one column for a
// [N] or [N,1] input, F columns (in order) for an [N,F] input.
type Input struct {
	Name    string
	Columns []string
}

// Output maps one model output to named columns: one per value in a row
// ([N] or [N,1]: one column; [N,C]: C columns).
type Output struct {
	Name    string
	Columns []string
}

// Classifier turns a classifier's outputs into a "label" column (the class
// name) and one "score_<class>" column per class.
type Classifier struct {
	Classes []string
	// Scores names the [N,C] output with per-class scores or probabilities.
	Scores string
	// Label names the output holding the predicted class index; empty
	// means the argmax of Scores (first class wins ties).
	Label string
}

// ONNXHandler runs an ONNX model in ONNX Runtime (ort.Init must have been
// called). The zero value of every field but ID and Model is a default.
type ONNXHandler struct {
	ID    string // model id; "onnx" when empty
	Model []byte // ONNX bytes
	// Inputs feeds the model's inputs; empty: each declared input from the
	// column of the same name.
	Inputs []Input
	// Outputs maps outputs to columns; empty (and no Classifier): every
	// declared output, named after it (with _0, _1, ... when wider than 1).
	Outputs    []Output
	Classifier *Classifier
	Session    ort.Options // threads and graph optimisation
	// MinBatch and MaxBatch are the batching preferences BatchSizes reports.
	MinBatch, MaxBatch int
}

// ModelID implements ModelHandler.
func (h *ONNXHandler) ModelID() string {
	if h.ID == "" {
		return "onnx"
	}
	return h.ID
}

// BatchSizes implements ModelHandler.
func (h *ONNXHandler) BatchSizes() (int, int) { return h.MinBatch, h.MaxBatch }

type tensorInfo struct {
	name  string
	elem  onnxpb.TensorProto_DataType
	width int // values per row
}

func describe(vs []*onnxpb.ValueInfoProto) []tensorInfo {
	out := make([]tensorInfo, len(vs))
	for i, v := range vs {
		tt := v.GetType().GetTensorType()
		w := 1
		if dims := tt.GetShape().GetDim(); len(dims) >= 2 && dims[1].GetDimValue() > 0 {
			w = int(dims[1].GetDimValue())
		}
		out[i] = tensorInfo{name: v.GetName(), elem: onnxpb.TensorProto_DataType(tt.GetElemType()), width: w}
	}
	return out
}

type feed struct {
	info tensorInfo
	cols []string
}

type outCol struct {
	name  string
	out   int // index in the session's outputs
	index int // value index within the row
	int64 bool
}

type onnxModel struct {
	id       string
	sess     *ort.Session
	feeds    []feed
	outs     []outCol
	width    []int // per session output: values per row
	class    *Classifier
	scoreIdx int
	labelIdx int // -1: argmax
	schema   *arrow.Schema
	bytes    int64
	// floats recycles float input buffers between batches: ORT reads
	// them only during Run, and a fresh buffer per batch is garbage the
	// collector then has to chase.
	floats sync.Pool
}

// Load implements ModelHandler.
func (h *ONNXHandler) Load(ctx context.Context, m *Metrics) (Model, error) {
	start := time.Now()
	if len(h.Model) == 0 {
		return nil, errors.New("onnx handler: no model bytes")
	}
	proto, err := onnx.Unmarshal(h.Model)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", h.ModelID(), err)
	}
	ins, outs := describe(proto.GetGraph().GetInput()), describe(proto.GetGraph().GetOutput())
	// Initializers may be listed as inputs in older models: not fed.
	inits := map[string]bool{}
	for _, t := range proto.GetGraph().GetInitializer() {
		inits[t.GetName()] = true
	}
	om := &onnxModel{id: h.ModelID(), class: h.Classifier, labelIdx: -1, bytes: int64(len(h.Model))}
	byName := map[string]tensorInfo{}
	for _, in := range ins {
		byName[in.name] = in
	}
	if len(h.Inputs) == 0 {
		for _, in := range ins {
			if inits[in.name] {
				continue
			}
			cols := []string{in.name}
			if in.width > 1 {
				return nil, fmt.Errorf("model %s: input %q is %d wide: name its columns in Inputs", om.id, in.name, in.width)
			}
			om.feeds = append(om.feeds, feed{info: in, cols: cols})
		}
	} else {
		for _, in := range h.Inputs {
			info, ok := byName[in.Name]
			if !ok {
				return nil, fmt.Errorf("model %s has no input %q", om.id, in.Name)
			}
			if len(in.Columns) == 0 {
				in.Columns = []string{in.Name}
			}
			info.width = len(in.Columns)
			om.feeds = append(om.feeds, feed{info: info, cols: in.Columns})
		}
	}
	for _, f := range om.feeds {
		switch f.info.elem {
		case onnx.Float, onnx.Double, onnx.Int64, onnx.String:
		default:
			return nil, fmt.Errorf("model %s input %q: element type %s not supported", om.id, f.info.name, f.info.elem)
		}
	}
	outInfo := map[string]tensorInfo{}
	for _, o := range outs {
		outInfo[o.name] = o
	}
	var fetch []string
	fetchIdx := func(name string) (int, error) {
		for i, n := range fetch {
			if n == name {
				return i, nil
			}
		}
		info, ok := outInfo[name]
		if !ok {
			return 0, fmt.Errorf("model %s has no output %q", om.id, name)
		}
		fetch = append(fetch, name)
		om.width = append(om.width, info.width)
		return len(fetch) - 1, nil
	}
	var fields []arrow.Field
	addOut := func(o Output) error {
		i, err := fetchIdx(o.Name)
		if err != nil {
			return err
		}
		info := outInfo[o.Name]
		if len(o.Columns) == 0 {
			if info.width == 1 {
				o.Columns = []string{o.Name}
			} else {
				for j := range info.width {
					o.Columns = append(o.Columns, o.Name+"_"+strconv.Itoa(j))
				}
			}
		}
		if len(o.Columns) != info.width {
			return fmt.Errorf("model %s output %q: %d columns named, it has %d values per row", om.id, o.Name, len(o.Columns), info.width)
		}
		isInt := info.elem == onnx.Int64
		for j, c := range o.Columns {
			om.outs = append(om.outs, outCol{name: c, out: i, index: j, int64: isInt})
			typ := arrow.DataType(arrow.PrimitiveTypes.Float32)
			if isInt {
				typ = arrow.PrimitiveTypes.Int64
			}
			fields = append(fields, arrow.Field{Name: c, Type: typ})
		}
		return nil
	}
	if c := h.Classifier; c != nil {
		if len(c.Classes) == 0 || c.Scores == "" {
			return nil, fmt.Errorf("model %s: a classifier needs Classes and Scores", om.id)
		}
		if om.scoreIdx, err = fetchIdx(c.Scores); err != nil {
			return nil, err
		}
		if om.width[om.scoreIdx] != len(c.Classes) {
			return nil, fmt.Errorf("model %s: output %q has %d scores per row for %d classes", om.id, c.Scores, om.width[om.scoreIdx], len(c.Classes))
		}
		if c.Label != "" {
			if om.labelIdx, err = fetchIdx(c.Label); err != nil {
				return nil, err
			}
		}
		fields = append(fields, arrow.Field{Name: "label", Type: arrow.BinaryTypes.String})
		for _, cl := range c.Classes {
			fields = append(fields, arrow.Field{Name: "score_" + cl, Type: arrow.PrimitiveTypes.Float32})
		}
	}
	for _, o := range h.Outputs {
		if err := addOut(o); err != nil {
			return nil, err
		}
	}
	if h.Classifier == nil && len(h.Outputs) == 0 {
		for _, o := range outs {
			if err := addOut(Output{Name: o.name}); err != nil {
				return nil, err
			}
		}
	}
	om.schema = arrow.NewSchema(fields, nil)
	names := make([]string, len(om.feeds))
	for i, f := range om.feeds {
		names[i] = f.info.name
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	om.sess, err = ort.NewSessionWith(h.Model, names, fetch, h.Session)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", om.id, err)
	}
	m.Loaded(om.id, time.Since(start), om.bytes)
	return om, nil
}

func (om *onnxModel) ByteSize() int64 { return om.bytes }
func (om *onnxModel) Close() error    { return om.sess.Close() }

// Run implements Model.
func (om *onnxModel) Run(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	n := int(batch.NumRows())
	cols := make([]ort.Column, len(om.feeds))
	var bad []BadRow
	for i, f := range om.feeds {
		c, rows, err := om.column(batch, f)
		if err != nil {
			return nil, err
		}
		bad = append(bad, rows...)
		cols[i] = c
	}
	if len(bad) > 0 {
		return nil, &BadRowsError{Rows: dedupe(bad)}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := om.sess.Run(int64(n), cols)
	for _, c := range cols {
		if c.Floats != nil {
			om.floats.Put(&c.Floats)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", om.id, err)
	}
	for i, r := range res {
		if len(r.Data) != n*om.width[i] {
			return nil, fmt.Errorf("model %s output %q: %d values for %d rows of %d", om.id, r.Name, len(r.Data), n, om.width[i])
		}
	}
	arrs := make([]arrow.Array, 0, om.schema.NumFields())
	defer func() {
		for _, a := range arrs {
			a.Release()
		}
	}()
	if c := om.class; c != nil {
		k := len(c.Classes)
		scores := res[om.scoreIdx].Data
		labels := make([]int32, n)
		for r := range n {
			var idx int
			if om.labelIdx >= 0 {
				idx = int(res[om.labelIdx].Data[r*om.width[om.labelIdx]])
			} else {
				row := scores[r*k : r*k+k]
				for j, v := range row {
					if v > row[idx] {
						idx = j
					}
				}
			}
			if idx < 0 || idx >= k {
				return nil, fmt.Errorf("model %s: predicted class index %d out of %d classes", om.id, idx, k)
			}
			labels[r] = int32(idx)
		}
		arrs = append(arrs, labelArray(labels, c.Classes))
		cols := split32(scores, n, k)
		for j := range k {
			arrs = append(arrs, float32Array(cols[j]))
		}
	}
	var split map[int][][]float32 // per wide output: its columns, made once
	for _, oc := range om.outs {
		d := res[oc.out].Data
		w := om.width[oc.out]
		if oc.int64 {
			v := make([]int64, n)
			for r := range n {
				v[r] = int64(d[r*w+oc.index])
			}
			arrs = append(arrs, int64Array(v))
		} else if w == 1 {
			arrs = append(arrs, float32Array(d))
		} else {
			if split == nil {
				split = map[int][][]float32{}
			}
			if split[oc.out] == nil {
				split[oc.out] = split32(d, n, w)
			}
			arrs = append(arrs, float32Array(split[oc.out][oc.index]))
		}
	}
	return array.NewRecordBatch(om.schema, arrs, int64(n)), nil
}

// split32 de-interleaves a row-major [n,w] tensor into w columns that
// share one allocation.
func split32(d []float32, n, w int) [][]float32 {
	all := make([]float32, n*w)
	cols := make([][]float32, w)
	for j := range w {
		cols[j] = all[j*n : (j+1)*n : (j+1)*n]
	}
	for r := range n {
		row := d[r*w : r*w+w]
		for j, v := range row {
			cols[j][r] = v
		}
	}
	return cols
}

func dedupe(rows []BadRow) []BadRow {
	seen := map[int]bool{}
	out := rows[:0]
	for _, r := range rows {
		if !seen[r.Row] {
			seen[r.Row] = true
			out = append(out, r)
		}
	}
	return out
}

// column builds one input tensor, row-major, from f's columns; rows with a
// null in any of them are reported bad.
func (om *onnxModel) column(batch arrow.RecordBatch, f feed) (ort.Column, []BadRow, error) {
	n := int(batch.NumRows())
	w := len(f.cols)
	c := ort.Column{Name: f.info.name, Width: int64(w)}
	switch f.info.elem {
	case onnx.Float:
		if p, ok := om.floats.Get().(*[]float32); ok && cap(*p) >= n*w {
			c.Floats = (*p)[:n*w]
		} else {
			c.Floats = make([]float32, n*w)
		}
	case onnx.Double:
		c.Doubles = make([]float64, n*w)
	case onnx.Int64:
		c.Int64s = make([]int64, n*w)
	case onnx.String:
		c.Strings = make([]string, n*w)
	}
	var bad []BadRow
	for j, name := range f.cols {
		idx := batch.Schema().FieldIndices(name)
		if len(idx) == 0 {
			return c, nil, fmt.Errorf("model %s input %q: column %q not in the batch", om.id, f.info.name, name)
		}
		col := batch.Column(idx[0])
		if col.NullN() > 0 {
			for r := range n {
				if col.IsNull(r) {
					bad = append(bad, BadRow{Row: r, Reason: fmt.Sprintf("column %q is null", name)})
				}
			}
		}
		if err := fill(c, col, n, w, j); err != nil {
			return c, nil, fmt.Errorf("model %s input %q column %q: %w", om.id, f.info.name, name, err)
		}
	}
	return c, bad, nil
}

// fill writes col into column j of the row-major tensor c.
func fill(c ort.Column, col arrow.Array, n, w, j int) error {
	if c.Strings != nil {
		for r := range n {
			if s, ok := stringAt(col, r); ok {
				c.Strings[r*w+j] = s
			}
		}
		return nil
	}
	var get func(int) float64
	switch a := col.(type) {
	case *array.Float32:
		if c.Floats != nil {
			v := a.Float32Values()
			for r := range n {
				c.Floats[r*w+j] = v[r]
			}
			return nil
		}
		get = func(r int) float64 { return float64(a.Value(r)) }
	case *array.Float64:
		if c.Floats != nil {
			v := a.Float64Values()
			for r := range n {
				c.Floats[r*w+j] = float32(v[r])
			}
			return nil
		}
		get = a.Value
	case *array.Int64:
		if c.Int64s != nil {
			v := a.Int64Values()
			for r := range n {
				c.Int64s[r*w+j] = v[r]
			}
			return nil
		}
		get = func(r int) float64 { return float64(a.Value(r)) }
	case *array.Int32:
		get = func(r int) float64 { return float64(a.Value(r)) }
	case *array.Int16:
		get = func(r int) float64 { return float64(a.Value(r)) }
	case *array.Int8:
		get = func(r int) float64 { return float64(a.Value(r)) }
	case *array.Boolean:
		get = func(r int) float64 {
			if a.Value(r) {
				return 1
			}
			return 0
		}
	default:
		return fmt.Errorf("type %s cannot feed a numeric input", col.DataType())
	}
	for r := range n {
		v := get(r)
		switch {
		case c.Floats != nil:
			c.Floats[r*w+j] = float32(v)
		case c.Doubles != nil:
			c.Doubles[r*w+j] = v
		case c.Int64s != nil:
			if v != math.Trunc(v) {
				return fmt.Errorf("row %d: %v is not an integer", r, v)
			}
			c.Int64s[r*w+j] = int64(v)
		}
	}
	return nil
}
