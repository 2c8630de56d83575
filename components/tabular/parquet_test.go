package tabular_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/mlsteps/mlsteps/components/tabular"
)

// parquetBytes writes n rows of (id int64, name utf8) as Parquet in row
// groups of rowGroup rows.
func parquetBytes(t *testing.T, n, rowGroup int) []byte {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		if i%3 == 0 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append("n")
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(schema, &buf, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(int64(rowGroup))), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParquet(t *testing.T) {
	data := parquetBytes(t, 10, 4)
	tests := []struct {
		name    string
		batch   int
		batches []int64
	}{
		// Batches run across row groups.
		{"default batch", 0, []int64{10}},
		{"batch smaller than a row group", 3, []int64{3, 3, 3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd, err := tabular.NewReader(context.Background(), bytes.NewReader(data), "in.parquet", tabular.FormatParquet,
				tabular.Options{BatchSize: tt.batch, Allocator: checkedMem(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			got, err := drain(t, rd)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"int64", "utf8"}; !equalStrings(got.types, want) {
				t.Errorf("types %q, want %q", got.types, want)
			}
			if len(got.rows) != 10 || got.rows[9][0] != "9" || got.rows[3][1] != null || got.rows[4][1] != "n" {
				t.Errorf("rows %q", got.rows)
			}
			if tt.batches != nil && !equalInts(got.batches, tt.batches) {
				t.Errorf("batches %v, want %v", got.batches, tt.batches)
			}
			for _, n := range got.batches {
				if tt.batch > 0 && n > int64(tt.batch) {
					t.Errorf("batch of %d rows, BatchSize %d", n, tt.batch)
				}
			}
		})
	}
}

func TestParquetSchemaCheck(t *testing.T) {
	data := parquetBytes(t, 3, 10)
	tests := []struct {
		name   string
		fields []arrow.Field
		column string
	}{
		{"matches", []arrow.Field{{Name: "name", Type: arrow.BinaryTypes.String}, {Name: "id", Type: arrow.PrimitiveTypes.Int64}}, ""},
		{"extra in file", []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, "name"},
		{"missing from file", []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "name", Type: arrow.BinaryTypes.String}, {Name: "gone", Type: arrow.BinaryTypes.String}}, "gone"},
		{"other type", []arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int32}, {Name: "name", Type: arrow.BinaryTypes.String}}, "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd, err := tabular.NewParquetReader(context.Background(), bytes.NewReader(data), "in.parquet",
				tabular.Options{Schema: arrow.NewSchema(tt.fields, nil), Allocator: checkedMem(t)})
			if tt.column == "" {
				if err != nil {
					t.Fatal(err)
				}
				rd.Close()
				return
			}
			if err == nil {
				rd.Close()
				t.Fatal("schema mismatch accepted")
			}
			var pe *tabular.ParseError
			if !errors.As(err, &pe) || pe.Column != tt.column {
				t.Fatalf("error %v, want a ParseError naming column %q", err, tt.column)
			}
		})
	}
}

func TestParquetNotParquet(t *testing.T) {
	_, err := tabular.NewParquetReader(context.Background(), bytes.NewReader([]byte("a,b\n1,2\n")), "in.parquet", tabular.Options{})
	var pe *tabular.ParseError
	if !errors.As(err, &pe) || pe.File != "in.parquet" {
		t.Fatalf("error %v, want a ParseError naming the file", err)
	}
}

func TestVegaFlightsParquet(t *testing.T) {
	path := vegaFile(t, "flights-3m.parquet")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const batch = 65536 // the default
	rd, err := tabular.NewReader(context.Background(), f, path, tabular.FormatParquet, tabular.Options{Allocator: checkedMem(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	t.Logf("schema: %v", rd.Schema())
	var rows, batches int64
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.NumRows() > batch {
			t.Errorf("batch of %d rows, BatchSize %d", rec.NumRows(), batch)
		}
		rows += rec.NumRows()
		batches++
		rec.Release()
	}
	if rows != 3_000_000 || rd.Rows() != rows {
		t.Errorf("read %d rows, Rows() %d, want 3000000", rows, rd.Rows())
	}
	if batches != 46 {
		t.Errorf("%d batches, want 46 of at most %d rows", batches, batch)
	}
	t.Logf("%d rows in %d batches", rows, batches)
}
