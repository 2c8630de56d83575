package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/mlsteps/mlsteps/components/stats"
)

// TestPageFastPaths reads Parquet files written in every layout the
// page-level readers meet or must hand back to pqarrow (data pages v1 and
// v2, many small pages, nulls and none, dictionaries that overflow into
// PLAIN pages, dictionary-encoded numbers, uncompressed and Snappy) and
// checks that the statistics equal those of the same rows fed to the
// Accumulator straight from memory, row group by row group.
func TestPageFastPaths(t *testing.T) {
	const rows, groupRows = 5000, 1500
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "city", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "code", Type: arrow.BinaryTypes.String}, // required, many distinct
		{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64},
		{Name: "empty", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	r := rand.New(rand.NewPCG(3, 4))
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := range rows {
		if r.IntN(7) == 0 {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("city-%d", r.IntN(40)))
		}
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("%05d-%s", i, string(rune('a'+r.IntN(26)))))
		switch r.IntN(9) {
		case 0:
			b.Field(2).AppendNull()
		case 1:
			b.Field(2).(*array.Float64Builder).Append(math.NaN())
		default:
			b.Field(2).(*array.Float64Builder).Append(r.NormFloat64() * 100)
		}
		b.Field(3).(*array.Int64Builder).Append(int64(r.IntN(1000) - 500))
		b.Field(4).AppendNull()
	}
	rec := b.NewRecordBatch()
	defer rec.Release()

	want := stats.New(stats.Options{})
	for lo := int64(0); lo < rows; lo += groupRows {
		part := rec.NewSlice(lo, min(lo+groupRows, rows))
		if err := want.Add(part); err != nil {
			t.Fatal(err)
		}
		part.Release()
	}
	wantDS, err := want.Result("t")
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := comparable(t, wantDS)

	layouts := map[string][]parquet.WriterProperty{
		"v1":               {},
		"v2":               {parquet.WithDataPageVersion(parquet.DataPageV2)},
		"small pages v1":   {parquet.WithDataPageSize(512)},
		"small pages v2":   {parquet.WithDataPageSize(512), parquet.WithDataPageVersion(parquet.DataPageV2)},
		"dict overflow":    {parquet.WithDictionaryPageSizeLimit(2048), parquet.WithDataPageSize(1024)},
		"plain strings":    {parquet.WithDictionaryDefault(false)},
		"dict numbers":     {parquet.WithDictionaryFor("x", true), parquet.WithDictionaryFor("n", true), parquet.WithCompression(compress.Codecs.Uncompressed)},
		"numbers plain v2": {parquet.WithDictionaryFor("x", false), parquet.WithDictionaryFor("n", false), parquet.WithDataPageVersion(parquet.DataPageV2)},
	}
	// What the fast paths must leave to pqarrow: dictionary-encoded
	// numbers (mlsteps writes numbers PLAIN); every string layout is read
	// by the page decoder.
	fallbacks := map[string][]string{"dict numbers": {"n"}}
	for name, props := range layouts {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "part.parquet")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			props = append([]parquet.WriterProperty{parquet.WithMaxRowGroupLength(groupRows), parquet.WithCompression(compress.Codecs.Snappy),
				parquet.WithDictionaryFor("x", false), parquet.WithDictionaryFor("n", false)}, props...) // as mlsteps writes numbers
			w, err := pqarrow.NewFileWriter(sc, f, parquet.NewWriterProperties(props...), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(rec); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			meta, err := footer(path)
			if err != nil {
				t.Fatal(err)
			}
			fields, err := pqarrow.NewSchemaManifest(meta.Schema, meta.KeyValueMetadata(), &pqarrow.ArrowReadProperties{})
			if err != nil {
				t.Fatal(err)
			}
			p := part{path: path, file: "part.parquet", meta: meta}
			for rg := range meta.NumRowGroups() {
				p.rowGroups = append(p.rowGroups, rg)
			}
			got := stats.New(stats.Options{})
			var sc scratch
			for i := range fields.Fields {
				col := stats.New(stats.Options{})
				f := fields.Fields[i].Field
				if err := readField(context.Background(), p, f.Name, f.Type, leafColumns(&fields.Fields[i], nil), col, &sc); err != nil {
					t.Fatalf("%s: %v", f.Name, err)
				}
				if err := got.Join(col); err != nil {
					t.Fatal(err)
				}
			}
			slow := map[string]int{} // row groups left to pqarrow, by column
			for i := range fields.Fields {
				f := fields.Fields[i].Field
				rest, err := readFast(context.Background(), p, f.Name, fields.Fields[i].ColIndex, f.Type, &sc, stats.New(stats.Options{}))
				if err != nil {
					t.Fatal(err)
				}
				if len(rest) > 0 {
					slow[f.Name] = len(rest)
				}
			}
			for _, f := range fields.Fields {
				if want := slices.Contains(fallbacks[name], f.Field.Name); want != (slow[f.Field.Name] > 0) {
					t.Errorf("column %s: %d row groups read by pqarrow, want some: %v", f.Field.Name, slow[f.Field.Name], want)
				}
			}
			gotDS, err := got.Result("t")
			if err != nil {
				t.Fatal(err)
			}
			gotJSON := comparable(t, gotDS)
			if !bytes.Equal(gotJSON, wantJSON) {
				i := 0
				for i < min(len(gotJSON), len(wantJSON)) && gotJSON[i] == wantJSON[i] {
					i++
				}
				lo := max(0, i-300)
				t.Errorf("statistics differ from the in-memory ones at byte %d:\n got …%s\nwant …%s", i, gotJSON[lo:min(len(gotJSON), i+100)], wantJSON[lo:min(len(wantJSON), i+100)])
			}
		})
	}
}

// comparable returns ds as JSON with mean and std_dev checked apart: row
// groups and pqarrow's batches may split rows differently, and moments
// merged from other batches differ in the last bits. It rounds them to
// 12 significant digits.
func comparable(t *testing.T, ds stats.DatasetFeatureStatistics) []byte {
	t.Helper()
	for i := range ds.Features {
		if ns := ds.Features[i].NumStats; ns != nil {
			for _, v := range []*stats.Double{&ns.Mean, &ns.StdDev} {
				f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(*v), 'g', 12, 64), 64)
				*v = stats.Double(f)
			}
		}
	}
	b, err := json.Marshal(ds)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHybridDecoder checks the RLE / bit-packed decoder on hand-made runs
// and that malformed input is an error, not a panic.
func TestHybridDecoder(t *testing.T) {
	// A run of 5 × 3 (width 2), then one bit-packed group: 0..7 at width 3.
	data := []byte{5 << 1, 3, 1<<1 | 1, 0b10001000, 0b11000110, 0b11111010}
	out := make([]int32, 13)
	if err := hybrid(data, 3, out[:0]); err != nil {
		t.Fatal(err)
	}
	if err := hybrid(append([]byte{5 << 1, 3}, data[2:]...), 3, out); err != nil {
		t.Fatal(err)
	}
	want := []int32{3, 3, 3, 3, 3, 0, 1, 2, 3, 4, 5, 6, 7}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("got %v, want %v", out, want)
		}
	}
	for _, bad := range [][]byte{{}, {5 << 1}, {1<<1 | 1, 0}, {0, 1}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if err := hybrid(bad, 3, make([]int32, 8)); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
	if err := hybrid(nil, 33, make([]int32, 1)); err == nil {
		t.Error("width 33: no error")
	}
}

// TestUnpack checks bit unpacking at every width against a bit-by-bit
// reader, at lengths that end inside and at the edge of the input.
func TestUnpack(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for width := 0; width <= 32; width++ {
		for _, n := range []int{0, 1, 7, 8, 9, 63, 64, 100} {
			want := make([]int32, n)
			b := make([]byte, (n*width+7)/8)
			for i := range want {
				v := r.Uint64() & (uint64(1)<<width - 1)
				want[i] = int32(v)
				for k := range width {
					if v>>k&1 == 1 {
						bit := i*width + k
						b[bit/8] |= 1 << (bit % 8)
					}
				}
			}
			got := make([]int32, n)
			unpack(b, width, uint64(1)<<width-1, got)
			if !slices.Equal(got, want) {
				t.Fatalf("width %d, %d values: got %v, want %v", width, n, got, want)
			}
		}
	}
}

// FuzzPageDecoders feeds arbitrary bytes to the page decoders: they may
// fail, never panic.
func FuzzPageDecoders(f *testing.F) {
	f.Add([]byte{5 << 1, 3, 1<<1 | 1, 0b10001000, 0b11000110, 0b11111010}, uint8(3), uint16(13))
	f.Add([]byte{3, 0, 0, 0, 'a', 'b', 'c', 0, 0, 0, 0}, uint8(0), uint16(2))
	f.Fuzz(func(t *testing.T, b []byte, width uint8, n uint16) {
		_ = hybrid(b, int(width%40), make([]int32, n%4096))
		var d dictChunk
		d.offsets = []int32{0}
		_ = d.appendPlain(b, int(n%4096))
		var c chunk
		_, _ = c.pageLevels(b, int(n%4096), int(width%2))
	})
}
