package tabular

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
)

// Format names a raw input format.
type Format string

// The formats NewReader reads.
const (
	FormatCSV     Format = "csv"
	FormatTSV     Format = "tsv"
	FormatJSON    Format = "json"    // one top-level array of objects
	FormatJSONL   Format = "jsonl"   // one object per line
	FormatParquet Format = "parquet" // read through pqarrow
)

const formatList = "csv, tsv, json, jsonl, parquet"

// FormatFromName guesses the format from a file name's extension: .csv,
// .tsv, .json, .jsonl, .ndjson or .parquet, in any case. Compressed names
// such as data.csv.gz are an error: decompress before reading.
func FormatFromName(name string) (Format, error) {
	ext := strings.ToLower(filepath.Ext(name))
	switch ext {
	case ".csv":
		return FormatCSV, nil
	case ".tsv":
		return FormatTSV, nil
	case ".json":
		return FormatJSON, nil
	case ".jsonl", ".ndjson":
		return FormatJSONL, nil
	case ".parquet":
		return FormatParquet, nil
	case ".gz", ".gzip", ".bz2", ".xz", ".zst", ".zstd", ".zip", ".snappy", ".lz4":
		return "", fmt.Errorf("%s: compressed input (%s) is not supported; decompress it first", name, ext)
	case "":
		return "", fmt.Errorf("%s: no file extension to tell the format from; want .csv, .tsv, .json, .jsonl, .ndjson or .parquet", name)
	}
	return "", fmt.Errorf("%s: unknown extension %q; want .csv, .tsv, .json, .jsonl, .ndjson or .parquet", name, ext)
}

// ParseFormat reads a format name as a user would type it: csv, tsv, json,
// jsonl (or ndjson) or parquet, in any case.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case FormatCSV, FormatTSV, FormatJSON, FormatJSONL, FormatParquet:
		return f, nil
	case "ndjson":
		return FormatJSONL, nil
	}
	return "", fmt.Errorf("unknown format %q; want one of %s", s, formatList)
}

// Options tune a reader. The zero value means the defaults.
type Options struct {
	// BatchSize is the number of rows per record batch; 0 means 65536.
	BatchSize int
	// InferRows is how many rows are sampled to infer column types; 0 means
	// 10000 and a negative value means every row, which holds the whole
	// input in memory.
	InferRows int
	// NullValues are the CSV/TSV cells read as null, in every column. Nil
	// means {"", "NA"}; an empty non-nil slice means no cell is null.
	NullValues []string
	// Schema, when set, turns inference off: values are parsed into this
	// schema, its columns matched to the input's by name. A column in the
	// input but not the schema, or the other way round, is an error naming
	// it. For JSON, a schema column absent from every object reads as
	// nulls.
	Schema *arrow.Schema
	// Allocator backs the record batches; nil means memory.DefaultAllocator.
	Allocator memory.Allocator
}

const (
	defaultBatchSize = 65536
	defaultInferRows = 10000
)

// withDefaults fills and checks the options in one place.
func (o Options) withDefaults() (Options, error) {
	if o.BatchSize < 0 {
		return o, fmt.Errorf("batch size %d: want a positive number of rows, or 0 for %d", o.BatchSize, defaultBatchSize)
	}
	if o.BatchSize == 0 {
		o.BatchSize = defaultBatchSize
	}
	if o.InferRows == 0 {
		o.InferRows = defaultInferRows
	}
	if o.NullValues == nil {
		o.NullValues = []string{"", "NA"}
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	if o.Schema != nil {
		seen := make(map[string]int, o.Schema.NumFields())
		for i, f := range o.Schema.Fields() {
			if j, dup := seen[f.Name]; dup {
				return o, fmt.Errorf("schema: column %q appears twice (fields %d and %d)", f.Name, j+1, i+1)
			}
			seen[f.Name] = i
		}
	}
	return o, nil
}

// Reader streams record batches.
//
// Next returns io.EOF after the last batch; every other error is sticky.
// The caller releases each batch it gets. Rows counts the rows returned so
// far. Close releases what the reader holds but does not close the
// io.Reader it reads from. A Reader is not safe for concurrent use.
type Reader interface {
	Schema() *arrow.Schema
	Next() (arrow.RecordBatch, error)
	Rows() int64
	Close() error
}

// NewReader reads r, named name in errors, as format. For CSV, TSV, JSON
// and JSONL it samples the first rows to infer the schema before
// returning (see the package doc). Parquet needs r to implement
// parquet.ReaderAtSeeker (io.ReaderAt and io.Seeker, as *os.File and
// *bytes.Reader do). Next stops with ctx's error once ctx is done.
func NewReader(ctx context.Context, r io.Reader, name string, format Format, opts Options) (Reader, error) {
	switch format {
	case FormatCSV:
		return asReader(newCSVReader(ctx, r, name, ',', opts, false))
	case FormatTSV:
		return asReader(newCSVReader(ctx, r, name, '\t', opts, false))
	case FormatJSON:
		return asReader(newJSONReader(ctx, r, name, false, opts, false))
	case FormatJSONL:
		return asReader(newJSONReader(ctx, r, name, true, opts, false))
	case FormatParquet:
		ras, ok := r.(parquet.ReaderAtSeeker)
		if !ok {
			return nil, fmt.Errorf("%s: parquet needs an io.ReaderAt and io.Seeker such as *os.File or *bytes.Reader, got %T", name, r)
		}
		return NewParquetReader(ctx, ras, name, opts)
	}
	return nil, fmt.Errorf("%s: unknown format %q; want one of %s", name, format, formatList)
}

// InferSchema reads up to opts.InferRows rows of r (every row when
// negative) and returns the schema a reader would use, without keeping the
// rows. For a full pre-scan, call it with InferRows -1 and then NewReader
// on a fresh r with opts.Schema set to the result. opts.Schema is ignored.
// For Parquet it returns the file's schema.
func InferSchema(ctx context.Context, r io.Reader, name string, format Format, opts Options) (*arrow.Schema, error) {
	opts.Schema = nil
	var (
		rd  Reader
		err error
	)
	switch format {
	case FormatCSV:
		rd, err = asReader(newCSVReader(ctx, r, name, ',', opts, true))
	case FormatTSV:
		rd, err = asReader(newCSVReader(ctx, r, name, '\t', opts, true))
	case FormatJSON:
		rd, err = asReader(newJSONReader(ctx, r, name, false, opts, true))
	case FormatJSONL:
		rd, err = asReader(newJSONReader(ctx, r, name, true, opts, true))
	default:
		rd, err = NewReader(ctx, r, name, format, opts)
	}
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return rd.Schema(), nil
}

// asReader keeps a failed constructor's nil pointer from becoming a
// non-nil Reader interface.
func asReader[T Reader](r T, err error) (Reader, error) {
	if err != nil {
		return nil, err
	}
	return r, nil
}

// errClosed is returned by Next after Close.
var errClosed = errors.New("tabular: reader is closed")

// ctxEvery is how many sampled rows pass between context checks, keeping
// the check off the per-row path.
const ctxEvery = 4096
