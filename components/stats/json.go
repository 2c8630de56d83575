package stats

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// IndentedJSON returns exactly what json.MarshalIndent(l, "", "  ") does,
// without reflection, per-value MarshalJSON calls and the re-scan that
// indenting their output costs: a list with a few string features carries
// thousands of rank histogram buckets, and encoding/json spent longer on
// them than computing the statistics of a small dataset took.
func (l *DatasetFeatureStatisticsList) IndentedJSON() []byte {
	size := 4096
	for i := range l.Datasets {
		for _, f := range l.Datasets[i].Features {
			size += 1024
			if f.StringStats != nil && f.StringStats.RankHistogram != nil {
				size += 160 * len(f.StringStats.RankHistogram.Buckets)
			}
		}
	}
	w := &jsonWriter{buf: make([]byte, 0, size)}
	w.open('{')
	w.key("datasets")
	if l.Datasets == nil {
		w.null()
	} else {
		w.open('[')
		for i := range l.Datasets {
			w.elem()
			w.dataset(&l.Datasets[i])
		}
		w.close(']')
	}
	w.close('}')
	return w.buf
}

// jsonWriter appends indented JSON as encoding/json's MarshalIndent with
// an empty prefix and two-space indent lays it out: members one per line,
// empty arrays and objects as [] and {}.
type jsonWriter struct {
	buf   []byte
	depth int
	first bool // no member written yet at this depth
}

func (w *jsonWriter) newline() {
	w.buf = append(w.buf, '\n')
	for range w.depth {
		w.buf = append(w.buf, ' ', ' ')
	}
}

func (w *jsonWriter) open(c byte) {
	w.buf = append(w.buf, c)
	w.depth++
	w.first = true
}

func (w *jsonWriter) close(c byte) {
	w.depth--
	if !w.first {
		w.newline()
	}
	w.first = false
	w.buf = append(w.buf, c)
}

// elem starts an array element.
func (w *jsonWriter) elem() {
	if !w.first {
		w.buf = append(w.buf, ',')
	}
	w.first = false
	w.newline()
}

// key starts an object member.
func (w *jsonWriter) key(k string) {
	w.elem()
	w.buf = appendJSONString(w.buf, k)
	w.buf = append(w.buf, ':', ' ')
}

func (w *jsonWriter) null()            { w.buf = append(w.buf, "null"...) }
func (w *jsonWriter) str(s string)     { w.buf = appendJSONString(w.buf, s) }
func (w *jsonWriter) int64(v Int64)    { w.buf = v.appendJSON(w.buf) }
func (w *jsonWriter) double(v Double)  { w.buf = v.appendJSON(w.buf) }
func (w *jsonWriter) kstr(k, s string) { w.key(k); w.str(s) }
func (w *jsonWriter) kint(k string, v Int64) {
	w.key(k)
	w.int64(v)
}
func (w *jsonWriter) kdouble(k string, v Double) {
	w.key(k)
	w.double(v)
}

func (w *jsonWriter) dataset(d *DatasetFeatureStatistics) {
	w.open('{')
	w.kstr("name", d.Name)
	w.kint("num_examples", d.NumExamples)
	w.key("features")
	if d.Features == nil {
		w.null()
	} else {
		w.open('[')
		for i := range d.Features {
			w.elem()
			w.feature(&d.Features[i])
		}
		w.close(']')
	}
	w.close('}')
}

func (w *jsonWriter) feature(f *FeatureNameStatistics) {
	w.open('{')
	w.key("path")
	w.open('{')
	w.key("step")
	if f.Path.Step == nil {
		w.null()
	} else {
		w.open('[')
		for _, s := range f.Path.Step {
			w.elem()
			w.str(s)
		}
		w.close(']')
	}
	w.close('}')
	w.kstr("type", f.Type)
	if f.NumStats != nil {
		w.key("num_stats")
		w.numeric(f.NumStats)
	}
	if f.StringStats != nil {
		w.key("string_stats")
		w.strings(f.StringStats)
	}
	w.close('}')
}

func (w *jsonWriter) common(c *CommonStatistics) {
	w.open('{')
	w.kint("num_non_missing", c.NumNonMissing)
	w.kint("num_missing", c.NumMissing)
	w.kint("min_num_values", c.MinNumValues)
	w.kint("max_num_values", c.MaxNumValues)
	w.kdouble("avg_num_values", c.AvgNumValues)
	w.kint("tot_num_values", c.TotNumValues)
	w.close('}')
}

func (w *jsonWriter) numeric(n *NumericStatistics) {
	w.open('{')
	w.key("common_stats")
	w.common(&n.CommonStats)
	w.kdouble("mean", n.Mean)
	w.kdouble("std_dev", n.StdDev)
	w.kint("num_zeros", n.NumZeros)
	w.kdouble("min", n.Min)
	w.kdouble("median", n.Median)
	w.kdouble("max", n.Max)
	w.key("histograms")
	if n.Histograms == nil {
		w.null()
	} else {
		w.open('[')
		for i := range n.Histograms {
			w.elem()
			w.histogram(&n.Histograms[i])
		}
		w.close(']')
	}
	w.close('}')
}

func (w *jsonWriter) histogram(h *Histogram) {
	w.open('{')
	if h.NumNaN != 0 {
		w.kint("num_nan", h.NumNaN)
	}
	w.key("buckets")
	if h.Buckets == nil {
		w.null()
	} else {
		w.open('[')
		for _, b := range h.Buckets {
			w.elem()
			w.open('{')
			w.kdouble("low_value", b.LowValue)
			w.kdouble("high_value", b.HighValue)
			w.kdouble("sample_count", b.SampleCount)
			w.close('}')
		}
		w.close(']')
	}
	w.kstr("type", h.Type)
	w.close('}')
}

func (w *jsonWriter) strings(s *StringStatistics) {
	w.open('{')
	w.key("common_stats")
	w.common(&s.CommonStats)
	w.kint("unique", s.Unique)
	w.key("top_values")
	if s.TopValues == nil {
		w.null()
	} else {
		w.open('[')
		for _, fv := range s.TopValues {
			w.elem()
			w.open('{')
			w.kstr("value", fv.Value)
			w.kdouble("frequency", fv.Frequency)
			w.close('}')
		}
		w.close(']')
	}
	w.kdouble("avg_length", s.AvgLength)
	if s.RankHistogram != nil {
		w.key("rank_histogram")
		w.open('{')
		w.key("buckets")
		if s.RankHistogram.Buckets == nil {
			w.null()
		} else {
			w.open('[')
			for _, b := range s.RankHistogram.Buckets {
				w.elem()
				w.open('{')
				w.kint("low_rank", b.LowRank)
				w.kint("high_rank", b.HighRank)
				w.kstr("label", b.Label)
				w.kdouble("sample_count", b.SampleCount)
				w.close('}')
			}
			w.close(']')
		}
		w.close('}')
	}
	w.close('}')
}

// appendJSON is Int64.MarshalJSON without the allocation.
func (v Int64) appendJSON(b []byte) []byte {
	b = append(b, '"')
	b = strconv.AppendInt(b, int64(v), 10)
	return append(b, '"')
}

// appendJSON is Double.MarshalJSON without the allocation: special values
// as protobuf JSON's strings, others as encoding/json formats a float64
// (ES6 style: %f, or %e with a short exponent outside [1e-6, 1e21)).
func (v Double) appendJSON(b []byte) []byte {
	f := float64(v)
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 && (f != 0 || !math.Signbit(f)) {
		// Counts: what %f prints for an integral value, without the float
		// formatting (most numbers here are bucket counts).
		return strconv.AppendInt(b, int64(f), 10)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does by default: <, > and &
// escaped for HTML, invalid UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
