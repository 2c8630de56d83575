package train

import (
	"math"
	"sync"
)

// gradPair is one row's gradient and hessian, weighted.
type gradPair struct{ g, h float64 }

// histBin sums the gradients, hessians and rows that fall in one bin.
type histBin struct {
	g, h float64
	n    int
}

// grower grows one tree at a time over binned rows.
type grower struct {
	b        binned
	bounds   [][]float32
	depth    int
	lambda   float64
	minChild float64
	rate     float64
	workers  int

	gh      []gradPair // the current tree's gradients, per row
	idx     []int32    // rows, partitioned so that each node owns a range
	scratch []int32
	free    [][]histBin
}

// growNode is a node being grown: its rows idx[start:end] and their sums.
type growNode struct {
	id         int
	start, end int
	g, h       float64
	hist       []histBin // len(features)×256
}

// split is a candidate split of a node.
type split struct {
	ok          bool
	gain        float64
	feature     int
	bin         int
	missingLeft bool
	gl, hl      float64
	gr, hr      float64
}

func (gr *grower) newHist() []histBin {
	if k := len(gr.free); k > 0 {
		h := gr.free[k-1]
		gr.free = gr.free[:k-1]
		clear(h)
		return h
	}
	return make([]histBin, len(gr.b.bins)*256)
}

// parallel runs fn over features in fixed contiguous chunks, one goroutine
// per chunk; every result depends only on its feature, so the outcome does
// not depend on the number of workers.
func (gr *grower) parallel(rows int, fn func(f int)) {
	f := len(gr.b.bins)
	w := min(gr.workers, f)
	// Small nodes are cheaper to do than to hand out.
	if w <= 1 || rows < 4096 {
		for j := range f {
			fn(j)
		}
		return
	}
	var wg sync.WaitGroup
	for c := range w {
		lo, hi := c*f/w, (c+1)*f/w
		wg.Go(func() {
			for j := lo; j < hi; j++ {
				fn(j)
			}
		})
	}
	wg.Wait()
}

// build fills h with the sums over the node's rows.
func (gr *grower) build(h []histBin, rows []int32) {
	gr.parallel(len(rows), func(f int) {
		col, hf := gr.b.bins[f], h[f*256:(f+1)*256]
		for _, i := range rows {
			e := &hf[col[i]]
			p := gr.gh[i]
			e.g += p.g
			e.h += p.h
			e.n++
		}
	})
}

// subtract turns a parent's histogram into the sibling's of child.
func subtract(parent, child []histBin) {
	for i := range parent {
		p := &parent[i]
		p.g, p.h, p.n = p.g-child[i].g, p.h-child[i].h, p.n-child[i].n
	}
}

func (gr *grower) score(g, h float64) float64 { return g * g / (h + gr.lambda) }

// best finds the node's best split: per feature, every boundary between
// value bins with the missing rows sent left or right, keeping the first
// best in feature and bin order.
func (gr *grower) best(n *growNode) split {
	f := len(gr.b.bins)
	per := make([]split, f)
	parent := gr.score(n.g, n.h)
	rows := n.end - n.start
	gr.parallel(rows, func(j int) {
		hf := n.hist[j*256 : (j+1)*256]
		nb := len(gr.bounds[j])
		m := hf[missingBin]
		var gl, hl float64
		nl := 0
		best := split{}
		try := func(b int, missingLeft bool, gl, hl float64, nl int) {
			gr2, hr, nr := n.g-gl, n.h-hl, rows-nl
			if nl == 0 || nr == 0 || hl < gr.minChild || hr < gr.minChild {
				return
			}
			gain := gr.score(gl, hl) + gr.score(gr2, hr) - parent
			if gain > 0 && (!best.ok || gain > best.gain) {
				best = split{ok: true, gain: gain, feature: j, bin: b, missingLeft: missingLeft, gl: gl, hl: hl, gr: gr2, hr: hr}
			}
		}
		for b := range nb {
			gl, hl, nl = gl+hf[b].g, hl+hf[b].h, nl+hf[b].n
			if m.n == 0 {
				// No missing rows here: at inference they follow the
				// bigger side, as scikit-learn does.
				if b < nb-1 {
					try(b, nl >= rows-nl, gl, hl, nl)
				}
				continue
			}
			try(b, false, gl, hl, nl)
			if b < nb-1 {
				try(b, true, gl+m.g, hl+m.h, nl+m.n)
			}
		}
		per[j] = best
	})
	var best split
	for _, s := range per {
		if s.ok && (!best.ok || s.gain > best.gain) {
			best = s
		}
	}
	return best
}

// partition reorders idx[start:end] stably: rows going left first; it
// returns where the right rows start.
func (gr *grower) partition(n *growNode, s split) int {
	col := gr.b.bins[s.feature]
	left, right := n.start, gr.scratch[:0]
	for _, i := range gr.idx[n.start:n.end] {
		b := col[i]
		if (b == missingBin && s.missingLeft) || (b != missingBin && int(b) <= s.bin) {
			gr.idx[left] = i
			left++
		} else {
			right = append(right, i)
		}
	}
	copy(gr.idx[left:n.end], right)
	return left
}

// grow grows a tree level by level to the maximum depth on gr.gh, and adds
// each leaf's value to raw[row*stride+out] for the rows it holds.
func (gr *grower) grow(raw []float64, stride, out int) Tree {
	for i := range gr.idx {
		gr.idx[i] = int32(i)
	}
	root := &growNode{start: 0, end: gr.b.n, hist: gr.newHist()}
	for _, p := range gr.gh {
		root.g += p.g
		root.h += p.h
	}
	gr.build(root.hist, gr.idx)
	t := Tree{Nodes: []Node{{}}}
	level := []*growNode{root}
	for depth := 0; len(level) > 0; depth++ {
		var next []*growNode
		for _, n := range level {
			var s split
			if depth < gr.depth {
				s = gr.best(n)
			}
			if !s.ok {
				t.Nodes[n.id] = gr.leaf(n, raw, stride, out)
				gr.free = append(gr.free, n.hist)
				continue
			}
			mid := gr.partition(n, s)
			l := &growNode{id: len(t.Nodes), start: n.start, end: mid, g: s.gl, h: s.hl}
			r := &growNode{id: len(t.Nodes) + 1, start: mid, end: n.end, g: s.gr, h: s.hr}
			t.Nodes = append(t.Nodes, Node{}, Node{})
			t.Nodes[n.id] = Node{Feature: s.feature, Threshold: gr.bounds[s.feature][s.bin], MissingLeft: s.missingLeft,
				Left: l.id, Right: r.id, bin: uint8(s.bin)}
			// Sum the smaller child's rows; the other is the parent minus it.
			small, big := l, r
			if r.end-r.start < l.end-l.start {
				small, big = r, l
			}
			small.hist = gr.newHist()
			gr.build(small.hist, gr.idx[small.start:small.end])
			big.hist = n.hist
			subtract(big.hist, small.hist)
			next = append(next, l, r)
		}
		level = next
	}
	return t
}

// leaf makes n a leaf worth −G/(H+λ)·rate, rounded to float32 (the type
// the exported model holds) before it is added to the rows' scores, so
// training and inference add the same numbers.
func (gr *grower) leaf(n *growNode, raw []float64, stride, out int) Node {
	v := 0.0
	if d := n.h + gr.lambda; d > 0 {
		v = -n.g / d * gr.rate
	}
	w := float32(v)
	if math.IsInf(float64(w), 0) || math.IsNaN(float64(w)) {
		w = 0
	}
	for _, i := range gr.idx[n.start:n.end] {
		raw[int(i)*stride+out] += float64(w)
	}
	return Node{Feature: -1, Value: w}
}
