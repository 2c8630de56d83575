package importer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/zeebo/xxh3"
)

// splitSpec is a parsed --split: names with weights summing to 1, or
// with --split-by the value prefixes each split claims.
type splitSpec struct {
	names []string
	// upper[i] is the cumulative weight bound of split i, in [0, 2^64).
	upper []uint64
	// prefixes[i] are the values split i takes (--split-by).
	prefixes [][]string
}

// assigner writes the split index of every row of rec into out; -1 leaves
// a row out.
type assigner interface {
	assign(rec arrow.RecordBatch, spec splitSpec, out []int)
}

// parseSplits reads "train=0.8,eval=0.2" (weights are normalised, so
// "train=2,eval=1" works too).
func parseSplits(s string) (splitSpec, error) {
	var (
		spec    splitSpec
		weights []float64
		total   float64
	)
	for _, part := range strings.Split(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return spec, fmt.Errorf("--split %q: want NAME=WEIGHT[,NAME=WEIGHT…]", s)
		}
		v, err := strconv.ParseFloat(w, 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) {
			return spec, fmt.Errorf("--split %q: weight %q of %s is not a positive number", s, w, name)
		}
		for _, prev := range spec.names {
			if prev == name {
				return spec, fmt.Errorf("--split %q: split %s named twice", s, name)
			}
		}
		if name == "" || strings.ContainsAny(name, "/\\ ") || strings.HasPrefix(name, ".") {
			return spec, fmt.Errorf("--split %q: bad split name %q", s, name)
		}
		spec.names = append(spec.names, name)
		weights = append(weights, v)
		total += v
	}
	var cum float64
	for i, w := range weights {
		cum += w / total
		bound := uint64(math.MaxUint64)
		if i < len(weights)-1 {
			bound = uint64(cum * math.MaxUint64)
		}
		spec.upper = append(spec.upper, bound)
	}
	return spec, nil
}

// parseValueSplits reads --split with --split-by: "train=2012|2013,serving=2015".
func parseValueSplits(s string) (splitSpec, error) {
	var spec splitSpec
	for _, part := range strings.Split(s, ",") {
		name, values, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return spec, fmt.Errorf("--split %q with --split-by: want NAME=PREFIX[|PREFIX…][,NAME=…]", s)
		}
		if name == "" || strings.ContainsAny(name, "/\\ ") || strings.HasPrefix(name, ".") {
			return spec, fmt.Errorf("--split %q: bad split name %q", s, name)
		}
		if slices.Contains(spec.names, name) {
			return spec, fmt.Errorf("--split %q: split %s named twice", s, name)
		}
		var prefixes []string
		for _, v := range strings.Split(values, "|") {
			if v == "" {
				return spec, fmt.Errorf("--split %q: split %s has an empty value (it would claim every row)", s, name)
			}
			prefixes = append(prefixes, v)
		}
		spec.names = append(spec.names, name)
		spec.prefixes = append(spec.prefixes, prefixes)
	}
	return spec, nil
}

// pick maps a row hash to a split index.
func (s splitSpec) pick(h uint64) int {
	for i, u := range s.upper {
		if h < u {
			return i
		}
	}
	return len(s.upper) - 1
}

// rowHasher hashes the key of each row: the key column's value, or every
// column's value when there is no key column.
type rowHasher struct {
	seed uint64
	cols []int
	buf  []byte
}

func newRowHasher(schema *arrow.Schema, key string, seed int64) (*rowHasher, error) {
	h := &rowHasher{seed: uint64(seed)}
	if key == "" {
		for i := range schema.Fields() {
			h.cols = append(h.cols, i)
		}
		return h, nil
	}
	idx := schema.FieldIndices(key)
	if len(idx) == 0 {
		names := make([]string, len(schema.Fields()))
		for i, f := range schema.Fields() {
			names[i] = strconv.Quote(f.Name)
		}
		return nil, fmt.Errorf("--split-key %q: no such column (columns: %s)", key, strings.Join(names, ", "))
	}
	h.cols = idx[:1]
	return h, nil
}

// assign writes the split index of every row of rec into out.
func (h *rowHasher) assign(rec arrow.RecordBatch, spec splitSpec, out []int) {
	for row := range int(rec.NumRows()) {
		h.buf = h.buf[:0]
		for _, c := range h.cols {
			h.buf = appendValue(h.buf, rec.Column(c), row)
			h.buf = append(h.buf, 0x1f) // unit separator: "a","bc" ≠ "ab","c"
		}
		out[row] = spec.pick(xxh3.HashSeed(h.buf, h.seed))
	}
}

// valueSplitter sends each row to the first split claiming a prefix of
// its --split-by value: a split per year of a date column, per region, per
// source tag. Nulls and values no split claims get -1.
type valueSplitter struct {
	col int
	buf []byte
}

func newValueSplitter(schema *arrow.Schema, col string) (*valueSplitter, error) {
	idx := schema.FieldIndices(col)
	if len(idx) == 0 {
		names := make([]string, len(schema.Fields()))
		for i, f := range schema.Fields() {
			names[i] = strconv.Quote(f.Name)
		}
		return nil, fmt.Errorf("--split-by %q: no such column (columns: %s)", col, strings.Join(names, ", "))
	}
	return &valueSplitter{col: idx[0]}, nil
}

func (v *valueSplitter) assign(rec arrow.RecordBatch, spec splitSpec, out []int) {
	col := rec.Column(v.col)
	for row := range int(rec.NumRows()) {
		out[row] = -1
		if col.IsNull(row) {
			continue
		}
		v.buf = appendText(v.buf[:0], col, row)
	splits:
		for i, prefixes := range spec.prefixes {
			for _, p := range prefixes {
				if bytes.HasPrefix(v.buf, []byte(p)) {
					out[row] = i
					break splits
				}
			}
		}
	}
}

// appendText appends a value as text: strings as they are, timestamps in
// RFC 3339 (so "2012" and "2012-01" prefix a date), others as Arrow
// prints them.
func appendText(buf []byte, col arrow.Array, row int) []byte {
	switch a := col.(type) {
	case *array.String:
		return append(buf, a.Value(row)...)
	case *array.LargeString:
		return append(buf, a.Value(row)...)
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return a.Value(row).ToTime(unit).AppendFormat(buf, time.RFC3339Nano)
	}
	return append(buf, col.ValueStr(row)...)
}

// appendValue appends a canonical encoding of a value (its bytes for
// strings, little-endian bits for numbers), so equal values hash alike
// whatever batch or file they come from.
func appendValue(buf []byte, col arrow.Array, row int) []byte {
	if col.IsNull(row) {
		return append(buf, 0)
	}
	switch a := col.(type) {
	case *array.String:
		return append(buf, a.Value(row)...)
	case *array.LargeString:
		return append(buf, a.Value(row)...)
	case *array.Int64:
		return binary.LittleEndian.AppendUint64(buf, uint64(a.Value(row)))
	case *array.Float64:
		return binary.LittleEndian.AppendUint64(buf, math.Float64bits(a.Value(row)))
	case *array.Boolean:
		return strconv.AppendBool(buf, a.Value(row))
	case *array.Timestamp:
		return binary.LittleEndian.AppendUint64(buf, uint64(a.Value(row)))
	}
	return append(buf, col.ValueStr(row)...)
}
