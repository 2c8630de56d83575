package train

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// missingBin is the bin of NaN on every feature; value bins are 0..254.
const missingBin = 255

// binSample bounds the rows that choose the bin boundaries: quantiles of a
// random sample this large are as good as exact ones for 255 bins.
const binSample = 200_000

// binned is a feature-major matrix of bin indices.
type binned struct {
	n    int
	bins [][]uint8 // per feature, per row
}

// thresholds returns, per feature, the upper bounds of its value bins:
// bin b holds float32(x) <= t[b] (and > t[b-1]); the last bound is +Inf.
// Bounds are float32 because the exported model compares float32 inputs
// with float32 thresholds; binning with the same comparison keeps training
// and inference in exact agreement. Bounds sit between distinct values
// when there are at most maxBins of them, else at quantiles of (a seeded
// sample of) the rows.
func thresholds(d Data, maxBins int, seed uint64) [][]float32 {
	f, n := len(d.Features), d.Rows()
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i
	}
	if n > binSample {
		r := rand.New(rand.NewPCG(seed, 0x6d6c7374657073))
		// A partial Fisher–Yates shuffle picks binSample distinct rows.
		for i := range binSample {
			j := i + r.IntN(n-i)
			rows[i], rows[j] = rows[j], rows[i]
		}
		rows = rows[:binSample]
	}
	out := make([][]float32, f)
	vals := make([]float32, 0, len(rows))
	for j := range f {
		vals = vals[:0]
		for _, i := range rows {
			if v := d.X[i*f+j]; !math.IsNaN(v) {
				vals = append(vals, float32(v))
			}
		}
		slices.Sort(vals)
		out[j] = bounds(vals, maxBins)
	}
	return out
}

// bounds picks the bin upper bounds of sorted values.
func bounds(sorted []float32, maxBins int) []float32 {
	distinct := slices.Compact(slices.Clone(sorted))
	var t []float32
	if len(distinct) <= maxBins {
		for i := 0; i+1 < len(distinct); i++ {
			lo, hi := distinct[i], distinct[i+1]
			mid := float32((float64(lo) + float64(hi)) / 2)
			if mid >= hi {
				mid = lo
			}
			t = append(t, mid)
		}
	} else {
		for q := 1; q < maxBins; q++ {
			v := sorted[q*(len(sorted)-1)/maxBins]
			if len(t) == 0 || v > t[len(t)-1] {
				t = append(t, v)
			}
		}
	}
	return append(t, float32(math.Inf(1)))
}

// binOf returns the bin of x under bounds t.
func binOf(x float64, t []float32) uint8 {
	if math.IsNaN(x) {
		return missingBin
	}
	v := float32(x)
	return uint8(sort.Search(len(t), func(b int) bool { return v <= t[b] }))
}

// bin maps every value of d to its bin.
func bin(d Data, t [][]float32) binned {
	f, n := len(d.Features), d.Rows()
	b := binned{n: n, bins: make([][]uint8, f)}
	for j := range f {
		col := make([]uint8, n)
		for i := range n {
			col[i] = binOf(d.X[i*f+j], t[j])
		}
		b.bins[j] = col
	}
	return b
}
