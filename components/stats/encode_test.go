package stats_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/components/stats"
	"github.com/mlsteps/mlsteps/components/tabular"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// batches reads a vega dataset in batches of n rows.
func batches(t testing.TB, name string, n int) []arrow.RecordBatch {
	t.Helper()
	path := testenv.VegaData(t, name)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	format, err := tabular.FormatFromName(path)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := tabular.NewReader(context.Background(), f, filepath.Base(path), format, tabular.Options{BatchSize: n, InferRows: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var out []arrow.RecordBatch
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
}

// roundTrip encodes and decodes a state.
func roundTrip(t testing.TB, a *stats.Accumulator) *stats.Accumulator {
	t.Helper()
	data, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var b stats.Accumulator
	if err := b.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	// The same statistics, whether read back or not (the HLL image may
	// re-encode with other flags, so bytes are not compared).
	if got, want := resultJSON(t, &b), resultJSON(t, a); !bytes.Equal(got, want) {
		t.Fatalf("a decoded state's statistics differ:\n got %.300s\nwant %.300s", got, want)
	}
	return &b
}

func resultJSON(t testing.TB, a *stats.Accumulator) []byte {
	t.Helper()
	ds, err := a.Result("train")
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(ds)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestMarshalBinaryMerge: movies (3,201 rows, many nulls, floats, ints and
// strings) in batches of 100, accumulated in one state, equals the same
// batches dealt into k shards in contiguous runs, each encoded, decoded
// and merged in shard order: byte for byte, moments included (folded in a
// canonical order), whatever k. With a unique cap of 50, strings pass it:
// counts, average length and the HLL unique still agree.
func TestMarshalBinaryMerge(t *testing.T) {
	recs := batches(t, "movies.json", 100)
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for _, opts := range []stats.Options{{}, {UniqueCap: 50}} {
		whole := stats.New(opts)
		for _, r := range recs {
			if err := whole.Add(r); err != nil {
				t.Fatal(err)
			}
		}
		want := resultJSON(t, whole)
		for _, k := range []int{1, 3, 8} {
			t.Run(fmt.Sprintf("cap %d, %d shards", opts.UniqueCap, k), func(t *testing.T) {
				var merged *stats.Accumulator
				for i := range k {
					lo, hi := i*len(recs)/k, (i+1)*len(recs)/k
					shard := stats.New(opts)
					for _, r := range recs[lo:hi] {
						if err := shard.Add(r); err != nil {
							t.Fatal(err)
						}
					}
					back := roundTrip(t, shard)
					if merged == nil {
						merged = back
					} else if err := merged.Merge(back); err != nil {
						t.Fatal(err)
					}
				}
				got := resultJSON(t, merged)
				if opts.UniqueCap == 0 {
					if !bytes.Equal(got, want) {
						t.Errorf("merged statistics differ from one pass:\n got %.400s\nwant %.400s", got, want)
					}
					return
				}
				// Past the cap: numbers equal, string counts equal.
				var g, w stats.DatasetFeatureStatistics
				json.Unmarshal(got, &g)
				json.Unmarshal(want, &w)
				for i, wf := range w.Features {
					gf := g.Features[i]
					if wf.NumStats != nil {
						a, _ := json.Marshal(gf.NumStats)
						b, _ := json.Marshal(wf.NumStats)
						if !bytes.Equal(a, b) {
							t.Errorf("%s: %s, one pass %s", wf.Name(), a, b)
						}
						continue
					}
					gs, ws := gf.StringStats, wf.StringStats
					if gs.CommonStats != ws.CommonStats || gs.AvgLength != ws.AvgLength {
						t.Errorf("%s: %+v %v, one pass %+v %v", wf.Name(), gs.CommonStats, gs.AvgLength, ws.CommonStats, ws.AvgLength)
					}
					if ws.Unique > 50 && (gs.Unique < ws.Unique*9/10 || gs.Unique > ws.Unique*11/10) {
						t.Errorf("%s: unique %d, one pass %d", wf.Name(), gs.Unique, ws.Unique)
					}
					if ws.Unique <= 50 && gs.Unique != ws.Unique {
						t.Errorf("%s: unique %d, one pass %d (under the cap)", wf.Name(), gs.Unique, ws.Unique)
					}
				}
			})
		}
	}
}

// TestUnmarshalBinaryDamaged: every truncation of a real state, a foreign
// header and other options fail with an error, never a panic; states of
// other options do not merge.
func TestUnmarshalBinaryDamaged(t *testing.T) {
	recs := batches(t, "penguins.json", 100)
	a := stats.New(stats.Options{UniqueCap: 2})
	for _, r := range recs {
		if err := a.Add(r); err != nil {
			t.Fatal(err)
		}
		r.Release()
	}
	data, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(data) {
		var b stats.Accumulator
		if err := b.UnmarshalBinary(data[:n]); err == nil {
			t.Fatalf("a state cut at byte %d of %d decoded", n, len(data))
		}
	}
	var b stats.Accumulator
	if err := b.UnmarshalBinary([]byte("PAR1 not a state")); err == nil {
		t.Error("a foreign header decoded")
	}
	if err := b.UnmarshalBinary(append(data, 0)); err == nil {
		t.Error("trailing bytes decoded")
	}
	if err := b.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if err := stats.New(stats.Options{}).Merge(&b); err == nil {
		t.Error("states of different options merged")
	}
}

// FuzzUnmarshalBinary: no input makes UnmarshalBinary panic, and what
// decodes encodes back to a state that decodes again.
func FuzzUnmarshalBinary(f *testing.F) {
	a := stats.New(stats.Options{UniqueCap: 2})
	r := batch([]float64{3750, 3800, 0}, []bool{true, true, false}, []string{"Torgersen", "Biscoe", "Dream"})
	if err := a.Add(r); err != nil {
		f.Fatal(err)
	}
	r.Release()
	data, err := a.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("MLSTATS\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b stats.Accumulator
		if b.UnmarshalBinary(data) != nil {
			return
		}
		again, err := b.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var c stats.Accumulator
		if err := c.UnmarshalBinary(again); err != nil {
			t.Fatalf("a re-encoded state does not decode: %v", err)
		}
		_, _ = c.Result("x")
	})
}
