package transform

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// values is a column on its way through a feature's steps: numbers
// (missing: NaN; categorical ids as whole numbers) or strings (missing: "").
type values struct {
	num []float64
	str []string
}

// RawColumn is one raw input column as the graph reads it: numbers as
// float64 with NaN for null, strings with "" for null. It is also exactly
// what the ONNX graph's input of that name takes ([rows, 1] double or string).
type RawColumn struct {
	Name    string
	Kind    Kind
	Doubles []float64
	Strings []string
}

// RawColumns extracts the graph's inputs from rec, in Inputs order.
func (g *Graph) RawColumns(rec arrow.RecordBatch) ([]RawColumn, error) {
	out := make([]RawColumn, len(g.Inputs))
	for i, in := range g.Inputs {
		idx := rec.Schema().FieldIndices(in.Name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("transform: the batch has no column %q", in.Name)
		}
		v, err := readColumn(rec.Column(idx[0]), in.Kind)
		if err != nil {
			return nil, fmt.Errorf("transform: column %q: %w", in.Name, err)
		}
		out[i] = RawColumn{Name: in.Name, Kind: in.Kind, Doubles: v.num, Strings: v.str}
	}
	return out, nil
}

func readColumn(col arrow.Array, kind Kind) (values, error) {
	n := col.Len()
	if kind == Numeric {
		out := make([]float64, n)
		get, err := numGetter(col)
		if err != nil {
			return values{}, err
		}
		for i := range out {
			if col.IsNull(i) {
				out[i] = math.NaN()
			} else {
				out[i] = get(i)
			}
		}
		return values{num: out}, nil
	}
	out := make([]string, n)
	switch a := col.(type) {
	case *array.String:
		for i := range out {
			if a.IsValid(i) {
				out[i] = a.Value(i)
			}
		}
	case *array.LargeString:
		for i := range out {
			if a.IsValid(i) {
				out[i] = a.Value(i)
			}
		}
	default:
		for i := range out {
			if col.IsValid(i) {
				out[i] = col.ValueStr(i)
			}
		}
	}
	return values{str: out}, nil
}

func numGetter(col arrow.Array) (func(int) float64, error) {
	switch a := col.(type) {
	case *array.Float64:
		return a.Value, nil
	case *array.Float32:
		return func(i int) float64 { return float64(a.Value(i)) }, nil
	case *array.Int64:
		return func(i int) float64 { return float64(a.Value(i)) }, nil
	case *array.Int32:
		return func(i int) float64 { return float64(a.Value(i)) }, nil
	case *array.Int16:
		return func(i int) float64 { return float64(a.Value(i)) }, nil
	case *array.Int8:
		return func(i int) float64 { return float64(a.Value(i)) }, nil
	case *array.Uint64:
		return func(i int) float64 { return float64(a.Value(i)) }, nil
	case *array.Uint32:
		return func(i int) float64 { return float64(a.Value(i)) }, nil
	case *array.Uint16:
		return func(i int) float64 { return float64(a.Value(i)) }, nil
	case *array.Uint8:
		return func(i int) float64 { return float64(a.Value(i)) }, nil
	}
	return nil, fmt.Errorf("type %s is not numeric", col.DataType())
}

// Apply runs the fitted transform on rec and returns one float32 column per
// name in Order. It is the Go twin of transform.onnx: the same double
// arithmetic in the same order, rounded to float32 once at the end.
func (g *Graph) Apply(rec arrow.RecordBatch) ([][]float32, error) {
	raw, err := g.RawColumns(rec)
	if err != nil {
		return nil, err
	}
	return g.ApplyRaw(raw, int(rec.NumRows()))
}

// ApplyRaw is Apply over columns from RawColumns.
func (g *Graph) ApplyRaw(raw []RawColumn, rows int) ([][]float32, error) {
	byName := map[string]values{}
	for _, c := range raw {
		if len(c.Doubles) != rows && len(c.Strings) != rows {
			return nil, fmt.Errorf("transform: column %q has %d values, want %d", c.Name, max(len(c.Doubles), len(c.Strings)), rows)
		}
		byName[c.Name] = values{num: c.Doubles, str: c.Strings}
	}
	for _, in := range g.Inputs {
		v, ok := byName[in.Name]
		if !ok || in.Kind == Numeric && v.num == nil || in.Kind == Categorical && v.str == nil {
			return nil, fmt.Errorf("transform: input %q (%s) is missing", in.Name, in.Kind)
		}
	}
	out := make([][]float32, 0, len(g.Order))
	for _, f := range g.Features {
		for _, s := range f.Steps {
			if !s.Fitted {
				return nil, fmt.Errorf("transform: feature %q: %s is not fitted", f.Name, s.Op)
			}
		}
		v := f.run(byName, len(f.Steps), rows)
		if last := f.Steps[len(f.Steps)-1]; last.Op == "one_hot" {
			for j := range last.Depth {
				col := make([]float32, rows)
				for i, id := range v.num {
					if id == float64(j) {
						col[i] = 1
					}
				}
				out = append(out, col)
			}
			continue
		}
		col := make([]float32, rows)
		for i, x := range v.num {
			col[i] = float32(x)
		}
		out = append(out, col)
	}
	return out, nil
}

// run applies the first n steps of f (one_hot excepted: it is expanded by
// the caller) to the feature's raw columns.
func (f *Feature) run(raw map[string]values, n, rows int) values {
	var v values
	if f.Steps[0].Op != "cross" {
		src := raw[f.Columns[0]]
		// Copy: steps work in place and the raw column may feed others.
		v = values{num: append([]float64(nil), src.num...), str: append([]string(nil), src.str...)}
	}
	for _, s := range f.Steps[:n] {
		v = s.apply(v, raw, rows)
	}
	return v
}

// apply runs one fitted step; numbers are changed in place.
func (s *Step) apply(v values, raw map[string]values, rows int) values {
	x := v.num
	switch s.Op {
	case "impute":
		if v.str != nil {
			for i, t := range v.str {
				if t == "" {
					v.str[i] = *s.Text
				}
			}
			return v
		}
		c := *s.Value
		for i, a := range x {
			if math.IsNaN(a) {
				x[i] = c
			}
		}
	case "zscore":
		for i, a := range x {
			x[i] = (a - s.Mean) / s.Std
		}
	case "scale_to_0_1":
		den := s.den()
		for i, a := range x {
			x[i] = (a - s.Min) / den
		}
	case "scale_by_min_max":
		den, span := s.den(), s.OutMax-s.OutMin
		for i, a := range x {
			// The explicit conversions forbid fused multiply-add, which
			// ONNX Runtime does not use either.
			x[i] = float64(float64((a-s.Min)/den)*span) + s.OutMin
		}
	case "log1p":
		for i, a := range x {
			x[i] = math.Log(a + 1)
		}
	case "clip":
		for i, a := range x {
			if s.Lo != nil && a < *s.Lo {
				a = *s.Lo
			}
			if s.Hi != nil && a > *s.Hi {
				a = *s.Hi
			}
			x[i] = a
		}
	case "bucketize":
		for i, a := range x {
			// The count of boundaries b with !(a < b): NaN lands in the
			// last bucket, exactly as the graph's Less/Not/ReduceSum does.
			var n int
			for _, b := range s.Boundaries {
				if !(a < b) {
					n++
				}
			}
			x[i] = float64(n)
		}
	case "vocabulary":
		idx := index(s.Vocabulary)
		out := make([]float64, len(v.str))
		for i, t := range v.str {
			out[i] = float64(s.lookup(idx, t))
		}
		return values{num: out}
	case "hash_bucket":
		out := make([]float64, len(v.str))
		for i, t := range v.str {
			out[i] = float64(int64(murmur3([]byte(t))) % int64(s.NumBuckets))
		}
		return values{num: out}
	case "cross":
		a, b := raw[s.Columns2[0]].str, raw[s.Columns2[1]].str
		ia, ib := index(s.Vocabularies[0]), index(s.Vocabularies[1])
		nb := int64(len(s.Vocabularies[1]) + 1)
		out := make([]float64, rows)
		for i := range out {
			out[i] = float64(oovLast(ia, a[i])*nb + oovLast(ib, b[i]))
		}
		return values{num: out}
	case "one_hot":
		// Expanded by ApplyRaw; the ids pass through.
	}
	return v
}

func index(vocab []string) map[string]int64 {
	m := make(map[string]int64, len(vocab))
	for i, t := range vocab {
		m[t] = int64(i)
	}
	return m
}

// lookup maps t to its vocabulary id, or to an OOV id: -1 without OOV
// buckets, len(vocab) with one, len(vocab)+murmur3(t)%n with n.
func (s *Step) lookup(idx map[string]int64, t string) int64 {
	if id, ok := idx[t]; ok {
		return id
	}
	switch s.NumOOV {
	case 0:
		return -1
	case 1:
		return int64(len(idx))
	}
	return int64(len(idx)) + int64(murmur3([]byte(t)))%int64(s.NumOOV)
}

func oovLast(idx map[string]int64, t string) int64 {
	if id, ok := idx[t]; ok {
		return id
	}
	return int64(len(idx))
}

// den is max-min, or 1 when the column is constant (the output is then 0,
// or output_min).
func (s *Step) den() float64 {
	if d := s.Max - s.Min; d != 0 {
		return d
	}
	return 1
}
