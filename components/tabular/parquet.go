package tabular

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// NewParquetReader streams a Parquet file's row groups as record batches of
// at most opts.BatchSize rows, with the schema stored in the file. Nothing
// is inferred, so InferRows and NullValues do not apply. When opts.Schema is
// set it must name the same columns with the same types as the file: it is
// checked, not converted to. Next stops with ctx's error once ctx is done.
func NewParquetReader(ctx context.Context, r parquet.ReaderAtSeeker, name string, opts Options) (Reader, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	pf, err := file.NewParquetReader(r, file.WithReadProps(parquet.NewReaderProperties(opts.Allocator)))
	if err != nil {
		return nil, &ParseError{File: name, Err: fmt.Errorf("not a readable parquet file: %w", err)}
	}
	// pf.Close is never called: it would close r, which belongs to the
	// caller.
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(opts.BatchSize)}, opts.Allocator)
	if err != nil {
		return nil, &ParseError{File: name, Err: err}
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return nil, &ParseError{File: name, Err: err}
	}
	p := &parquetReader{ctx: ctx, name: name, rr: rr}
	if opts.Schema != nil {
		if err := checkSchema(name, rr.Schema(), opts.Schema); err != nil {
			rr.Release()
			return nil, err
		}
	}
	return p, nil
}

// checkSchema reports the first column the wanted schema and the file's
// disagree on.
func checkSchema(name string, got, want *arrow.Schema) error {
	for _, f := range got.Fields() {
		idx := want.FieldIndices(f.Name)
		if len(idx) == 0 {
			return &ParseError{File: name, Column: f.Name, Err: errors.New("column is in the file but not in the schema")}
		}
		if w := want.Field(idx[0]); !arrow.TypeEqual(w.Type, f.Type) {
			return &ParseError{File: name, Column: f.Name, Err: fmt.Errorf("column is %s in the file, the schema says %s", f.Type, w.Type)}
		}
	}
	for _, f := range want.Fields() {
		if !got.HasField(f.Name) {
			return &ParseError{File: name, Column: f.Name, Err: errors.New("column is in the schema but not in the file")}
		}
	}
	return nil
}

type parquetReader struct {
	ctx    context.Context
	name   string
	rr     pqarrow.RecordReader
	rows   int64
	err    error
	closed bool
}

func (p *parquetReader) Schema() *arrow.Schema { return p.rr.Schema() }

func (p *parquetReader) Rows() int64 { return p.rows }

func (p *parquetReader) Next() (arrow.RecordBatch, error) {
	if p.closed {
		return nil, errClosed
	}
	if p.err != nil {
		return nil, p.err
	}
	if err := p.ctx.Err(); err != nil {
		p.err = err
		return nil, err
	}
	rec, err := p.rr.Read()
	if err == io.EOF || (err == nil && rec == nil) {
		return nil, io.EOF
	}
	if err != nil {
		p.err = &ParseError{File: p.name, Err: err}
		return nil, p.err
	}
	// The record reader releases its current batch on the next Read; the
	// caller owns what Next returns.
	rec.Retain()
	p.rows += rec.NumRows()
	return rec, nil
}

func (p *parquetReader) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	p.rr.Release()
	return nil
}
