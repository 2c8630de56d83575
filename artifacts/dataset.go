package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Dataset properties, as written in the sidecar.
const (
	PropFormat   = "format"
	PropRowCount = "row_count"
	PropColumns  = "columns"
	PropSplits   = "splits"
)

// Column describes one column of a Dataset.
type Column struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
}

// Split describes one split of a Dataset and its part files.
type Split struct {
	Name     string   `json:"name"`
	RowCount int64    `json:"row_count"`
	Files    []string `json:"files"`
	// PartRows holds each file's row count, in Files order, so a reader of
	// a share of the parts (a shard) knows where its rows sit in the split
	// without opening the others. Datasets written before it was recorded
	// lack it: PartRowCounts then reads the part footers.
	PartRows []int64 `json:"part_rows,omitempty"`
}

// SplitDir is the folder of a split's part files, as TFX names it.
func SplitDir(split string) string { return "Split-" + split }

// DatasetOptions tunes the Parquet parts; the zero value is the default.
type DatasetOptions struct {
	// RowsPerPart starts a new part file after this many rows (default 1,000,000).
	RowsPerPart int64
	// RowGroupRows bounds a row group, and so the rows buffered in memory per
	// open part (default 65,536).
	RowGroupRows int64
	// Allocator for Parquet buffers; nil means the default Go allocator.
	Allocator memory.Allocator
}

// DatasetWriter writes record batches as Parquet parts, one folder per
// split, into an artifact Writer. Memory stays bounded by one row group per
// split whatever the row count.
type DatasetWriter struct {
	ctx    context.Context
	w      *Writer
	schema *arrow.Schema
	opts   DatasetOptions
	splits []string
	state  map[string]*splitState
	closed bool
}

type splitState struct {
	rows     int64
	files    []string
	partRows []int64
	part     *partWriter
}

type partWriter struct {
	fw   *FileWriter
	pw   *pqarrow.FileWriter
	rows int64
}

// NewDatasetWriter writes a Dataset with the given splits (each gets at
// least one part, so even an empty split carries the schema).
func NewDatasetWriter(ctx context.Context, w *Writer, schema *arrow.Schema, splits []string, opts DatasetOptions) (*DatasetWriter, error) {
	if !tabular(w.Type()) {
		return nil, invalidf("artifact %s is a %s, not a Dataset", w.sc.URI, w.Type())
	}
	if len(splits) == 0 {
		return nil, invalidf("dataset %s: no splits", w.sc.URI)
	}
	state := map[string]*splitState{}
	for _, s := range splits {
		if err := CheckFileName(SplitDir(s)); err != nil || slices.Contains([]rune(s), '/') {
			return nil, invalidf("dataset %s: bad split name %q", w.sc.URI, s)
		}
		if state[s] != nil {
			return nil, invalidf("dataset %s: split %q named twice", w.sc.URI, s)
		}
		state[s] = &splitState{}
	}
	if opts.RowsPerPart <= 0 {
		opts.RowsPerPart = 1_000_000
	}
	if opts.RowGroupRows <= 0 {
		opts.RowGroupRows = 65_536
	}
	if opts.Allocator == nil {
		opts.Allocator = memory.DefaultAllocator
	}
	return &DatasetWriter{ctx: ctx, w: w, schema: schema, opts: opts, splits: slices.Clone(splits), state: state}, nil
}

// Write appends rec to a split. It does not take ownership of rec.
func (d *DatasetWriter) Write(split string, rec arrow.RecordBatch) error {
	st, ok := d.state[split]
	if !ok {
		return invalidf("dataset %s: unknown split %q", d.w.sc.URI, split)
	}
	if rec.NumRows() == 0 {
		return nil
	}
	if st.part != nil && st.part.rows >= d.opts.RowsPerPart {
		if err := d.closePart(st); err != nil {
			return err
		}
	}
	if st.part == nil {
		if err := d.openPart(split, st); err != nil {
			return err
		}
	}
	if err := st.part.pw.WriteBuffered(rec); err != nil {
		return fmt.Errorf("dataset %s: write %s: %w", d.w.sc.URI, st.files[len(st.files)-1], err)
	}
	st.part.rows += rec.NumRows()
	st.partRows[len(st.partRows)-1] += rec.NumRows()
	st.rows += rec.NumRows()
	return nil
}

func (d *DatasetWriter) openPart(split string, st *splitState) error {
	name := fmt.Sprintf("%s/part-%05d.parquet", SplitDir(split), len(st.files))
	fw, err := d.w.Create(d.ctx, name)
	if err != nil {
		return err
	}
	popts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithMaxRowGroupLength(d.opts.RowGroupRows),
		parquet.WithAllocator(d.opts.Allocator),
	}
	// Dictionaries pay off for repeated strings (categories); numbers are
	// written plain, which is several times cheaper to encode and, with
	// Snappy, about as small for measurements and ids.
	for _, f := range d.schema.Fields() {
		switch f.Type.ID() {
		case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
			arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64, arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64:
			popts = append(popts, parquet.WithDictionaryFor(f.Name, false))
		}
	}
	props := parquet.NewWriterProperties(popts...)
	pw, err := pqarrow.NewFileWriter(d.schema, fw, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(d.opts.Allocator)))
	if err != nil {
		fw.Close()
		return fmt.Errorf("dataset %s: start %s: %w", d.w.sc.URI, name, err)
	}
	st.files = append(st.files, name)
	st.partRows = append(st.partRows, 0)
	st.part = &partWriter{fw: fw, pw: pw}
	return nil
}

func (d *DatasetWriter) closePart(st *splitState) error {
	p := st.part
	st.part = nil
	// pqarrow's Close also closes the sink (our FileWriter), which records the file.
	if err := p.pw.Close(); err != nil {
		return fmt.Errorf("dataset %s: finish %s: %w", d.w.sc.URI, st.files[len(st.files)-1], err)
	}
	return nil
}

// Close finishes every part and records the Dataset's properties on the
// Writer (the caller still commits it).
func (d *DatasetWriter) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var total int64
	splits := make([]Split, 0, len(d.splits))
	for _, name := range d.splits {
		st := d.state[name]
		if len(st.files) == 0 {
			if err := d.openPart(name, st); err != nil {
				return err
			}
		}
		if st.part != nil {
			if err := d.closePart(st); err != nil {
				return err
			}
		}
		total += st.rows
		splits = append(splits, Split{Name: name, RowCount: st.rows, Files: st.files, PartRows: st.partRows})
	}
	cols := make([]Column, len(d.schema.Fields()))
	for i, f := range d.schema.Fields() {
		cols[i] = Column{Name: f.Name, Type: f.Type.String(), Nullable: f.Nullable}
	}
	d.w.SetProperty(PropFormat, "parquet")
	d.w.SetProperty(PropRowCount, total)
	d.w.SetProperty(PropColumns, cols)
	d.w.SetProperty(PropSplits, splits)
	return nil
}

// Abandon releases open parts without finishing them, after a failure.
func (d *DatasetWriter) Abandon() {
	d.closed = true
	for _, st := range d.state {
		if st.part != nil {
			st.part.fw.err = errors.New("abandoned")
			st.part.pw.Close()
			st.part = nil
		}
	}
}

// tabular types hold Parquet parts per split, as a Dataset does.
func tabular(t Type) bool {
	return t == TypeDataset || t == TypePredictions || t == TypeDeadLetters
}

// Splits returns a Dataset's splits from its sidecar.
func (a *Artifact) Splits() ([]Split, error) {
	if !tabular(a.Type) {
		return nil, invalidf("artifact %s is a %s, not a Dataset", a.URI, a.Type)
	}
	splits, err := Property[[]Split](a.Sidecar, PropSplits)
	if err != nil {
		return nil, err
	}
	for _, s := range splits {
		for _, f := range s.Files {
			if _, ok := a.files[f]; !ok {
				return nil, invalidf("artifact %s: split %s lists %q, which is not a payload file", a.URI, s.Name, f)
			}
		}
	}
	return splits, nil
}

// Split returns one split by name.
func (a *Artifact) Split(name string) (Split, error) {
	splits, err := a.Splits()
	if err != nil {
		return Split{}, err
	}
	for _, s := range splits {
		if s.Name == name {
			return s, nil
		}
	}
	names := make([]string, len(splits))
	for i, s := range splits {
		names[i] = s.Name
	}
	return Split{}, fmt.Errorf("artifact %s: %w: no split %q (it has %v)", a.URI, ErrNotFound, name, names)
}

// ReadOptions tunes Records; the zero value is the default.
type ReadOptions struct {
	// BatchSize is the rows per batch (default 65,536).
	BatchSize int64
	// Columns selects columns by name (default all).
	Columns []string
	// Allocator for the batches; nil means the default Go allocator.
	Allocator memory.Allocator
}

// Records streams a split's rows, part by part, each part verified against
// its digest before it is decoded. A batch is valid only inside the loop
// body; Retain it to keep it. The loop stops at the first error.
func (a *Artifact) Records(ctx context.Context, split string, opts ReadOptions) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		s, err := a.Split(split)
		if err != nil {
			yield(nil, err)
			return
		}
		for _, name := range s.Files {
			if !a.readPart(ctx, name, opts, yield) {
				return
			}
		}
	}
}

// readPart yields a part's batches and reports whether to go on.
func (a *Artifact) readPart(ctx context.Context, name string, opts ReadOptions, yield func(arrow.RecordBatch, error) bool) bool {
	fail := func(err error) bool {
		yield(nil, fmt.Errorf("artifact %s: read %s: %w", a.URI, name, err))
		return false
	}
	path, release, err := a.LocalFile(ctx, name)
	if err != nil {
		yield(nil, err)
		return false
	}
	defer release()
	rr, closeFn, err := openParquet(ctx, path, opts)
	if err != nil {
		return fail(err)
	}
	defer closeFn()
	var clean *arrow.Schema
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		rec, err := rr.Read()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return fail(err)
		}
		if clean == nil {
			clean = stripFieldIDs(rec.Schema())
		}
		if clean != rec.Schema() {
			rec = array.NewRecordBatch(clean, rec.Columns(), rec.NumRows())
			ok := yield(rec, nil)
			rec.Release()
			if !ok {
				return false
			}
			continue
		}
		if !yield(rec, nil) {
			return false
		}
	}
}

// stripFieldIDs drops the "PARQUET:field_id" metadata the Parquet reader
// adds to every field, so a Dataset reads back with the schema it was
// written with. It returns s itself when there is nothing to drop.
func stripFieldIDs(s *arrow.Schema) *arrow.Schema {
	fields := s.Fields()
	changed := false
	for i, f := range fields {
		if f.Metadata.FindKey("PARQUET:field_id") < 0 {
			continue
		}
		keys, vals := []string{}, []string{}
		for j, k := range f.Metadata.Keys() {
			if k != "PARQUET:field_id" {
				keys = append(keys, k)
				vals = append(vals, f.Metadata.Values()[j])
			}
		}
		fields[i].Metadata = arrow.NewMetadata(keys, vals)
		changed = true
	}
	if !changed {
		return s
	}
	md := s.Metadata()
	return arrow.NewSchema(fields, &md)
}

func openParquet(ctx context.Context, path string, opts ReadOptions) (pqarrow.RecordReader, func(), error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 65_536
	}
	if opts.Allocator == nil {
		opts.Allocator = memory.DefaultAllocator
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	pf, err := file.NewParquetReader(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: opts.BatchSize, Parallel: false}, opts.Allocator)
	if err != nil {
		pf.Close()
		return nil, nil, err
	}
	var cols []int
	if len(opts.Columns) > 0 {
		sc, err := fr.Schema()
		if err != nil {
			pf.Close()
			return nil, nil, err
		}
		for _, name := range opts.Columns {
			idx := sc.FieldIndices(name)
			if len(idx) == 0 {
				pf.Close()
				return nil, nil, fmt.Errorf("%w: no column %q", ErrNotFound, name)
			}
			cols = append(cols, idx[0])
		}
	}
	rr, err := fr.GetRecordReader(ctx, cols, nil)
	if err != nil {
		pf.Close()
		return nil, nil, err
	}
	return rr, func() { rr.Release(); pf.Close() }, nil
}

// DatasetSchema returns the Arrow schema of a Dataset, read from the footer
// of its first part.
func (a *Artifact) DatasetSchema(ctx context.Context) (*arrow.Schema, error) {
	splits, err := a.Splits()
	if err != nil {
		return nil, err
	}
	for _, s := range splits {
		if len(s.Files) == 0 {
			continue
		}
		path, release, err := a.LocalFile(ctx, s.Files[0])
		if err != nil {
			return nil, err
		}
		defer release()
		pf, err := file.OpenParquetFile(path, false)
		if err != nil {
			return nil, fmt.Errorf("artifact %s: read %s: %w", a.URI, s.Files[0], err)
		}
		defer pf.Close()
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			return nil, fmt.Errorf("artifact %s: read %s: %w", a.URI, s.Files[0], err)
		}
		sc, err := fr.Schema()
		if err != nil {
			return nil, err
		}
		return stripFieldIDs(sc), nil
	}
	return nil, invalidf("artifact %s: no part files", a.URI)
}
