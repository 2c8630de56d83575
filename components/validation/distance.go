package validation

import (
	"math"
	"slices"

	"github.com/mlsteps/mlsteps/components/stats"
)

// LInfinity is the largest difference between the share of any value in
// two categorical distributions (value → count), as TFDV's infinity_norm
// comparator. It returns 0 when either side is empty, and the value where
// the difference is largest.
func LInfinity(a, b map[string]float64) (dist float64, at string) {
	ta, tb := total(a), total(b)
	if ta == 0 || tb == 0 {
		return 0, ""
	}
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // ties resolve the same way every run
	for _, k := range keys {
		if d := math.Abs(a[k]/ta - b[k]/tb); d > dist {
			dist, at = d, k
		}
	}
	return dist, at
}

func total(m map[string]float64) float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

// categorical returns a string feature's value counts from its rank
// histogram (or top values when there is none).
func categorical(fs *stats.FeatureNameStatistics) map[string]float64 {
	m := map[string]float64{}
	ss := fs.StringStats
	if ss == nil {
		return m
	}
	if ss.RankHistogram != nil && len(ss.RankHistogram.Buckets) > 0 {
		for _, b := range ss.RankHistogram.Buckets {
			m[b.Label] += float64(b.SampleCount)
		}
		return m
	}
	for _, v := range ss.TopValues {
		m[v.Value] += float64(v.Frequency)
	}
	return m
}

// standardHistogram returns a numeric feature's STANDARD histogram.
func standardHistogram(fs *stats.FeatureNameStatistics) []stats.Bucket {
	if fs.NumStats == nil {
		return nil
	}
	for _, h := range fs.NumStats.Histograms {
		if h.Type == stats.HistogramStandard || h.Type == "" {
			return h.Buckets
		}
	}
	return nil
}

// JensenShannon is the Jensen-Shannon divergence (log base 2, so in
// [0, 1]) between two histograms, as TFDV's jensen_shannon_divergence
// comparator: both are re-bucketed onto the union of their boundaries,
// spreading each bucket's count uniformly over its range (a zero-width
// bucket stays a point mass).
func JensenShannon(a, b []stats.Bucket) float64 {
	ta, tb := bucketTotal(a), bucketTotal(b)
	if ta == 0 || tb == 0 {
		return 0
	}
	var edges []float64
	for _, h := range [][]stats.Bucket{a, b} {
		for _, bk := range h {
			edges = append(edges, float64(bk.LowValue), float64(bk.HighValue))
		}
	}
	slices.Sort(edges)
	edges = slices.Compact(edges)
	// Cells: every point edge (for point masses) and every open interval.
	pa, pb := spread(a, edges), spread(b, edges)
	var js float64
	for i := range pa {
		p, q := pa[i]/ta, pb[i]/tb
		m := (p + q) / 2
		if p > 0 {
			js += p / 2 * math.Log2(p/m)
		}
		if q > 0 {
			js += q / 2 * math.Log2(q/m)
		}
	}
	return math.Max(0, math.Min(1, js))
}

func bucketTotal(h []stats.Bucket) float64 {
	var t float64
	for _, b := range h {
		t += float64(b.SampleCount)
	}
	return t
}

// spread distributes counts onto cells: cell 2i is the point edges[i],
// cell 2i+1 the interval (edges[i], edges[i+1]).
func spread(h []stats.Bucket, edges []float64) []float64 {
	cells := make([]float64, 2*len(edges))
	for _, b := range h {
		lo, hi, c := float64(b.LowValue), float64(b.HighValue), float64(b.SampleCount)
		if c == 0 {
			continue
		}
		i, _ := slices.BinarySearch(edges, lo)
		if hi <= lo {
			cells[2*i] += c
			continue
		}
		for j := i; j+1 < len(edges) && edges[j+1] <= hi; j++ {
			cells[2*j+1] += c * (edges[j+1] - edges[j]) / (hi - lo)
		}
	}
	return cells
}
