package inference

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
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
	// NullAsMissing feeds a null as NaN to a float input and as "" to a
	// string input, for models that impute (a TransformGraph fused in
	// front of a model); otherwise, and always for integer inputs, a row
	// with a null is a bad row.
	NullAsMissing bool
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
	// layout is how reusable buffers hold the tensor; ok is false when
	// its element type or shape does not allow them (strings, a row
	// width not fixed in the model).
	layout ort.Layout
	ok     bool
}

func describe(vs []*onnxpb.ValueInfoProto) []tensorInfo {
	out := make([]tensorInfo, len(vs))
	for i, v := range vs {
		tt := v.GetType().GetTensorType()
		info := tensorInfo{name: v.GetName(), elem: onnxpb.TensorProto_DataType(tt.GetElemType()), width: 1}
		dims := tt.GetShape().GetDim()
		if len(dims) >= 2 && dims[1].GetDimValue() > 0 {
			info.width = int(dims[1].GetDimValue())
		}
		info.layout.Kind, info.ok = kindOf(info.elem)
		switch {
		case len(dims) == 1:
		case len(dims) == 2 && dims[1].GetDimValue() > 0:
			info.layout.Width = int64(info.width)
		default:
			info.ok = false
		}
		out[i] = info
	}
	return out
}

// kindOf maps the element types reusable buffers hold.
func kindOf(elem onnxpb.TensorProto_DataType) (ort.Kind, bool) {
	switch elem {
	case onnx.Float:
		return ort.Float32, true
	case onnx.Double:
		return ort.Float64, true
	case onnx.Int64:
		return ort.Int64, true
	}
	return 0, false
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
	longest  int // bytes of the longest class name
	schema   *arrow.Schema
	bytes    int64
	missing  bool // NullAsMissing
	// in and out lay out the reusable tensors of buffers; nil when an
	// input or output does not allow them (then each batch makes its
	// own tensors through Session.Run), and ignored once unbuffered.
	in, out    []ort.Layout
	buffers    bufferPool
	unbuffered atomic.Bool
	cols       *lookup // every feed's columns, in order
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
	om := &onnxModel{id: h.ModelID(), class: h.Classifier, labelIdx: -1, bytes: int64(len(h.Model)), missing: h.NullAsMissing}
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
	var (
		fetch    []string
		buffered = true // every fetched output allows reusable buffers
	)
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
		om.out = append(om.out, info.layout)
		buffered = buffered && info.ok
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
			om.longest = max(om.longest, len(cl))
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
		kind, ok := kindOf(f.info.elem)
		buffered = buffered && ok
		// Inputs are always fed [rows, columns].
		om.in = append(om.in, ort.Layout{Kind: kind, Width: int64(len(f.cols))})
	}
	if !buffered {
		om.in, om.out = nil, nil
	}
	var cols []string
	for _, f := range om.feeds {
		cols = append(cols, f.cols...)
	}
	om.cols = newLookup(cols)
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

func (om *onnxModel) Close() error {
	om.buffers.close()
	return om.sess.Close()
}

// Run implements Model.
func (om *onnxModel) Run(ctx context.Context, batch arrow.RecordBatch) (arrow.RecordBatch, error) {
	c, err := om.prepare(ctx, batch)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		c.release()
		return nil, err
	}
	if err := c.infer(); err != nil {
		c.release()
		return nil, err
	}
	return c.finish()
}

// onnxCall is one batch on its way through the model: prepare fills its
// input tensors, infer runs ORT, finish turns the outputs into columns.
type onnxCall struct {
	om   *onnxModel
	n    int
	buf  *ort.Buffers // reused tensors; nil when ins and outs are the batch's own
	ins  []ort.Column
	outs []ort.Column
}

// prepare implements stagedModel: it copies batch's feature columns into
// input tensors, reporting rows with a null feature as bad rows.
func (om *onnxModel) prepare(_ context.Context, batch arrow.RecordBatch) (stagedCall, error) {
	n := int(batch.NumRows())
	c := &onnxCall{om: om, n: n}
	if om.in != nil && !om.unbuffered.Load() {
		buf, err := om.buffers.get(om.sess, n, om.in, om.out)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w", om.id, err)
		}
		c.buf, c.ins = buf, buf.In
	} else {
		c.ins = make([]ort.Column, len(om.feeds))
		for i, f := range om.feeds {
			c.ins[i] = newColumn(f, n)
		}
	}
	var bad []BadRow
	idx := om.cols.in(batch.Schema()).idx
	for i, f := range om.feeds {
		rows, err := om.column(batch, f, idx[:len(f.cols)], c.ins[i])
		idx = idx[len(f.cols):]
		if err != nil {
			c.release()
			return nil, err
		}
		bad = append(bad, rows...)
	}
	if len(bad) > 0 {
		c.release()
		return nil, &BadRowsError{Rows: dedupe(bad)}
	}
	return c, nil
}

func (c *onnxCall) infer() error {
	om := c.om
	var bufErr error
	if c.buf != nil {
		if bufErr = c.buf.Run(); bufErr == nil {
			c.outs = c.buf.Out
			return nil
		}
	}
	res, err := om.sess.Run(int64(c.n), c.ins)
	if err != nil {
		return fmt.Errorf("model %s: %w", om.id, err)
	}
	if bufErr != nil {
		// ORT holds outputs to the shapes it computes, not to those the
		// model declares, which some exporters get wrong ([N] for [N,1]);
		// such a model gets tensors shaped by ORT from now on.
		om.unbuffered.Store(true)
	}
	c.outs = make([]ort.Column, len(res))
	for i, r := range res {
		if len(r.Data) != c.n*om.width[i] {
			return fmt.Errorf("model %s output %q: %d values for %d rows of %d", om.id, r.Name, len(r.Data), c.n, om.width[i])
		}
		c.outs[i] = ort.Column{Name: r.Name, Width: int64(om.width[i]), Floats: r.Data}
	}
	return nil
}

// release gives the call's tensors back for another batch.
func (c *onnxCall) release() {
	if c.buf != nil {
		c.om.buffers.put(c.buf)
		c.buf = nil
	}
}

// finish copies the outputs into the result's columns (the tensors are
// reused by the next batch) and releases the call.
func (c *onnxCall) finish() (arrow.RecordBatch, error) {
	defer c.release()
	om, n := c.om, c.n
	cols := newColumns(om.schema.NumFields())
	defer cols.release()
	if cl := om.class; cl != nil {
		k := len(cl.Classes)
		scores := floats(c.outs[om.scoreIdx])
		labels := newLabels(n, om.longest)
		for r := range n {
			var idx int
			if om.labelIdx >= 0 {
				idx = int(intAt(c.outs[om.labelIdx], r*om.width[om.labelIdx]))
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
			labels.append(cl.Classes[idx])
		}
		cols.addStrings(labels)
		all := split32(scores, n, k)
		for j := range k {
			cols.addFloat32(all[j*n : (j+1)*n])
		}
	}
	var split [][]float32 // per output: its columns one after another, made once
	for _, oc := range om.outs {
		o, w := c.outs[oc.out], om.width[oc.out]
		if oc.int64 {
			v := make([]int64, n)
			for r := range n {
				v[r] = intAt(o, r*w+oc.index)
			}
			cols.addInt64(v)
			continue
		}
		if split == nil {
			split = make([][]float32, len(c.outs))
		}
		if split[oc.out] == nil {
			split[oc.out] = split32(floats(o), n, w)
		}
		cols.addFloat32(split[oc.out][oc.index*n : (oc.index+1)*n])
	}
	return cols.record(om.schema, n), nil
}

// floats returns c's values as float32: its own slice when it holds
// float32, else a converted copy.
func floats(c ort.Column) []float32 {
	switch {
	case c.Floats != nil:
		return c.Floats
	case c.Doubles != nil:
		return convert(c.Doubles)
	default:
		return convert(c.Int64s)
	}
}

func convert[T float64 | int64](d []T) []float32 {
	out := make([]float32, len(d))
	for i, v := range d {
		out[i] = float32(v)
	}
	return out
}

// intAt returns value i of c as an integer.
func intAt(c ort.Column, i int) int64 {
	switch {
	case c.Int64s != nil:
		return c.Int64s[i]
	case c.Floats != nil:
		return int64(c.Floats[i])
	default:
		return int64(c.Doubles[i])
	}
}

// bufferPool keeps a few Buffers between batches: making tensors costs
// cgo calls and garbage per batch, while ORT touches them only during a
// run. A batch takes one of its size, or a new one; at most maxFree wait
// here, the oldest going first.
type bufferPool struct {
	mu   sync.Mutex
	free []*ort.Buffers
}

// maxFree covers the engine's pipeline and a few workers; beyond that,
// batches make their own tensors.
const maxFree = depth + 8

func (p *bufferPool) get(s *ort.Session, rows int, in, out []ort.Layout) (*ort.Buffers, error) {
	p.mu.Lock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if b := p.free[i]; b.Rows == int64(rows) {
			p.free = append(p.free[:i], p.free[i+1:]...)
			p.mu.Unlock()
			return b, nil
		}
	}
	p.mu.Unlock()
	return s.NewBuffers(int64(rows), in, out)
}

func (p *bufferPool) put(b *ort.Buffers) {
	p.mu.Lock()
	var old *ort.Buffers
	if len(p.free) == maxFree {
		old = p.free[0]
		p.free = append(p.free[:0], p.free[1:]...)
	}
	p.free = append(p.free, b)
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

func (p *bufferPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.free {
		b.Close()
	}
	p.free = nil
}

// split32 de-interleaves a row-major [n,w] tensor into its w columns,
// one after another in one allocation.
func split32(d []float32, n, w int) []float32 {
	out := make([]float32, n*w)
	for r := range n {
		for j, v := range d[r*w : r*w+w] {
			out[j*n+r] = v
		}
	}
	return out
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

// newColumn makes an input tensor's values for n rows of f, for models
// whose inputs cannot live in reusable buffers.
func newColumn(f feed, n int) ort.Column {
	w := len(f.cols)
	c := ort.Column{Name: f.info.name, Width: int64(w)}
	switch f.info.elem {
	case onnx.Float:
		c.Floats = make([]float32, n*w)
	case onnx.Double:
		c.Doubles = make([]float64, n*w)
	case onnx.Int64:
		c.Int64s = make([]int64, n*w)
	case onnx.String:
		c.Strings = make([]string, n*w)
	}
	return c
}

// column writes f's columns of batch into c, row-major; rows with a null
// in any of them are reported bad. idx holds the columns' indices in
// batch (-1: missing).
func (om *onnxModel) column(batch arrow.RecordBatch, f feed, idx []int, c ort.Column) ([]BadRow, error) {
	n := int(batch.NumRows())
	w := len(f.cols)
	var bad []BadRow
	for j, name := range f.cols {
		if idx[j] < 0 {
			return nil, fmt.Errorf("model %s input %q: column %q not in the batch", om.id, f.info.name, name)
		}
		col := batch.Column(idx[j])
		missing := om.missing && c.Int64s == nil
		if col.NullN() > 0 && !missing {
			for r := range n {
				if col.IsNull(r) {
					bad = append(bad, BadRow{Row: r, Reason: fmt.Sprintf("column %q is null", name)})
				}
			}
		}
		if err := fill(c, col, n, w, j); err != nil {
			return nil, fmt.Errorf("model %s input %q column %q: %w", om.id, f.info.name, name, err)
		}
		if missing && col.NullN() > 0 {
			markMissing(c, col, n, w, j)
		}
	}
	return bad, nil
}

// markMissing writes the missing value (NaN, "") where col is null.
func markMissing(c ort.Column, col arrow.Array, n, w, j int) {
	nan := math.NaN()
	for r := range n {
		if !col.IsNull(r) {
			continue
		}
		switch {
		case c.Floats != nil:
			c.Floats[r*w+j] = float32(nan)
		case c.Doubles != nil:
			c.Doubles[r*w+j] = nan
		case c.Strings != nil:
			c.Strings[r*w+j] = ""
		}
	}
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
