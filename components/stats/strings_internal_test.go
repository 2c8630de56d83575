package stats

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRankedMatchesSort checks the bounded heap (with its 8-byte prefix
// shortcut) against sorting everything, on values built to tie on counts
// and on prefixes: shared 8-byte heads, embedded zero bytes, prefixes of
// one another.
func TestRankedMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	heads := []string{"", "a", "abcdefgh", "abcdefg\x00", "abcdefghij", "zz\x00", "ZIP-0000"}
	s := newStrState(Options{}.withDefaults())
	want := map[string]int64{}
	for range 20_000 {
		v := heads[r.IntN(len(heads))] + fmt.Sprint(r.IntN(300))
		if r.IntN(4) == 0 {
			v = v[:r.IntN(len(v)+1)]
		}
		n := int64(1 + r.IntN(3))
		if err := s.see(v, n); err != nil {
			t.Fatal(err)
		}
		want[v] += n
	}
	type vc struct {
		v string
		c int64
	}
	var all []vc
	for v, c := range want {
		all = append(all, vc{v, c})
	}
	slices.SortFunc(all, func(a, b vc) int {
		if a.c != b.c {
			return cmp.Compare(b.c, a.c)
		}
		return cmp.Compare(a.v, b.v)
	})
	for _, limit := range []int{1, 7, 1000, len(all), len(all) + 5} {
		got := s.ranked(limit)
		if len(got) != min(limit, len(all)) {
			t.Fatalf("limit %d: %d values", limit, len(got))
		}
		for i, fv := range got {
			if fv.Value != all[i].v || int64(fv.Frequency) != all[i].c {
				t.Fatalf("limit %d, rank %d: %q×%v, want %q×%d", limit, i, fv.Value, fv.Frequency, all[i].v, all[i].c)
			}
		}
	}
	if s.table.Len() != len(want) {
		t.Errorf("%d distinct values, want %d", s.table.Len(), len(want))
	}
}

// TestUniqueCap checks that past the cap only values already counted keep
// counts and unique comes from the sketch, through see and merge alike.
func TestUniqueCap(t *testing.T) {
	opts := Options{UniqueCap: 100}.withDefaults()
	a, b := newStrState(opts), newStrState(opts)
	for i := range 1000 {
		if err := a.see(fmt.Sprint(i%150), 1); err != nil {
			t.Fatal(err)
		}
		if err := b.see(fmt.Sprint(1000+i), 1); err != nil {
			t.Fatal(err)
		}
	}
	if a.table.Len() != 100 || a.sketch == nil {
		t.Fatalf("%d exact values, sketch %v", a.table.Len(), a.sketch != nil)
	}
	if err := a.merge(b); err != nil {
		t.Fatal(err)
	}
	ss, err := a.result(2000)
	if err != nil {
		t.Fatal(err)
	}
	if u := float64(ss.Unique); u < 1150*0.95 || u > 1150*1.05 {
		t.Errorf("unique %v, want about 1150", u)
	}
	if ss.CommonStats.NumNonMissing != 2000 {
		t.Errorf("non-missing %d", ss.CommonStats.NumNonMissing)
	}
	if top := ss.TopValues[0]; top.Frequency != 7 { // 0..99 seen 7 times each (1000/150 rounds)
		t.Errorf("top %q×%v", top.Value, top.Frequency)
	}
}

// TestJoinErrors: Join refuses Accumulators of different rows or sharing
// a column, and an empty Accumulator takes the other's rows.
func TestJoinErrors(t *testing.T) {
	a, b, c := New(Options{}), New(Options{}), New(Options{})
	a.rows, b.rows, c.rows = 3, 4, 3
	a.column("x", kindInt)
	b.column("y", kindInt)
	c.column("x", kindFloat)
	if err := a.Join(b); err == nil {
		t.Error("joined 3 rows with 4")
	}
	if err := a.Join(c); err == nil {
		t.Error("joined a column twice")
	}
	empty := New(Options{})
	if err := empty.Join(b); err != nil || empty.Rows() != 4 || len(empty.Columns()) != 1 {
		t.Errorf("join into empty: %v, %d rows, columns %v", err, empty.Rows(), empty.Columns())
	}
}
