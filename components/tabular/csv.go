package tabular

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
)

// NewCSVReader reads delimited text whose first row is the header; comma is
// the field delimiter (',' for CSV, '\t' for TSV). The first
// opts.InferRows rows are read before it returns, to infer the schema.
func NewCSVReader(r io.Reader, name string, comma rune, opts Options) (Reader, error) {
	return asReader(newCSVReader(context.Background(), r, name, comma, opts, false))
}

type csvReader struct {
	ctx       context.Context
	name      string
	cr        *csv.Reader
	batchSize int
	nulls     []string
	inferRows int // 0 when the schema was given

	header   []string // column names in file order
	colOf    []int    // file column -> schema field
	fileCols []column // the builders, by file column
	nullable []bool   // by file column

	// Sampled rows, flat, waiting to be appended before streaming resumes.
	sampled     bool       // the schema was inferred
	avgLen      []int      // mean bytes per sampled value, by file column
	sample      [][]string // chunks of sampleChunk rows, flat
	sampleLines []int
	sampleNext  int

	b      *batch
	eof    bool
	err    error // sticky
	closed bool
}

// newCSVReader reads the header and the sample. With inferOnly it keeps no
// rows and builds no columns: the reader is only good for its schema.
func newCSVReader(ctx context.Context, r io.Reader, name string, comma rune, opts Options, inferOnly bool) (*csvReader, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if comma == '"' || comma == '\r' || comma == '\n' || comma == utf8.RuneError || !utf8.ValidRune(comma) {
		return nil, fmt.Errorf("%s: invalid field delimiter %q", name, comma)
	}
	cr := csv.NewReader(r)
	cr.Comma = comma
	cr.ReuseRecord = true
	c := &csvReader{
		ctx:       ctx,
		name:      name,
		cr:        cr,
		batchSize: opts.BatchSize,
		nulls:     opts.NullValues,
	}
	if err := c.readHeader(); err != nil {
		return nil, err
	}
	schema := opts.Schema
	if schema == nil {
		c.inferRows = opts.InferRows
		if schema, err = c.infer(opts.InferRows, !inferOnly); err != nil {
			return nil, err
		}
		c.colOf = make([]int, len(c.header))
		for i := range c.colOf {
			c.colOf[i] = i
		}
	} else if err := c.matchSchema(schema); err != nil {
		return nil, err
	}
	c.nullable = make([]bool, len(c.header))
	for i, j := range c.colOf {
		c.nullable[i] = schema.Field(j).Nullable
	}
	if inferOnly {
		c.b = &batch{schema: schema}
		return c, nil
	}
	if c.b, err = newBatch(schema, opts.Allocator); err != nil {
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	c.fileCols = make([]column, len(c.header))
	for i, j := range c.colOf {
		c.fileCols[i] = c.b.cols[j]
	}
	return c, nil
}

func (c *csvReader) readHeader() error {
	rec, err := c.cr.Read()
	if err == io.EOF {
		return &ParseError{File: c.name, Err: errors.New("empty input: no header row")}
	}
	if err != nil {
		return c.readError(err, rec)
	}
	line, _ := c.cr.FieldPos(0)
	c.header = make([]string, len(rec))
	seen := make(map[string]int, len(rec))
	for i, h := range rec {
		if i == 0 {
			// Spreadsheets save UTF-8 CSV with a byte order mark.
			h = strings.TrimPrefix(h, "\ufeff")
		}
		if h == "" {
			h = "column_" + strconv.Itoa(i+1)
		}
		if j, dup := seen[h]; dup {
			return &ParseError{File: c.name, Line: line, Column: h,
				Err: fmt.Errorf("duplicate header name in columns %d and %d", j+1, i+1)}
		}
		seen[h] = i
		c.header[i] = h
	}
	return nil
}

// matchSchema maps file columns to schema fields by name.
func (c *csvReader) matchSchema(schema *arrow.Schema) error {
	c.colOf = make([]int, len(c.header))
	used := make([]bool, schema.NumFields())
	for i, h := range c.header {
		idx := schema.FieldIndices(h)
		if len(idx) == 0 {
			return &ParseError{File: c.name, Line: 1, Column: h, Err: errors.New("column is in the header but not in the schema")}
		}
		c.colOf[i] = idx[0]
		used[idx[0]] = true
	}
	for j, u := range used {
		if !u {
			return &ParseError{File: c.name, Line: 1, Column: schema.Field(j).Name, Err: errors.New("column is in the schema but not in the header")}
		}
	}
	return nil
}

// infer reads up to n rows (all when n < 0), keeping them when keep.
func (c *csvReader) infer(n int, keep bool) (*arrow.Schema, error) {
	c.sampled = true
	cols := make([]inferCol, len(c.header))
	total := make([]int, len(c.header))
	width := len(c.header)
	rows := 0
	for ; n < 0 || rows < n; rows++ {
		if rows%ctxEvery == 0 {
			if err := c.ctx.Err(); err != nil {
				return nil, err
			}
		}
		rec, err := c.cr.Read()
		if err == io.EOF {
			c.eof = true
			break
		}
		if err != nil {
			return nil, c.readError(err, rec)
		}
		for i, s := range rec {
			if !c.isNull(s) {
				cols[i].observeText(s)
				total[i] += len(s)
			}
		}
		if keep {
			line, _ := c.cr.FieldPos(0)
			// Fixed-size chunks: a growing flat slice would copy the
			// sample several times over on its way to InferRows rows.
			if rows%sampleChunk == 0 {
				c.sample = append(c.sample, make([]string, 0, sampleChunk*width))
			}
			last := len(c.sample) - 1
			c.sample[last] = append(c.sample[last], rec...)
			c.sampleLines = append(c.sampleLines, line)
		}
	}
	if rows > 0 {
		c.avgLen = total
		for i := range total {
			c.avgLen[i] = total[i]/rows + 1
		}
	}
	return inferredSchema(c.header, cols, true), nil
}

func (c *csvReader) isNull(s string) bool {
	for _, t := range c.nulls {
		if s == t {
			return true
		}
	}
	return false
}

// readError turns encoding/csv's errors into ParseErrors with a line.
func (c *csvReader) readError(err error, rec []string) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return fmt.Errorf("read %s: %w", c.name, err)
	}
	if errors.Is(pe.Err, csv.ErrFieldCount) {
		return &ParseError{File: c.name, Line: pe.StartLine,
			Err: fmt.Errorf("row has %d fields, header has %d: %w", len(rec), len(c.header), csv.ErrFieldCount)}
	}
	return &ParseError{File: c.name, Line: pe.Line, Err: fmt.Errorf("character %d: %w", pe.Column, pe.Err)}
}

func (c *csvReader) Schema() *arrow.Schema { return c.b.schema }

func (c *csvReader) Rows() int64 { return c.b.rows }

func (c *csvReader) Next() (arrow.RecordBatch, error) {
	if c.closed {
		return nil, errClosed
	}
	if c.err != nil {
		return nil, c.err
	}
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return nil, err
	}
	width := len(c.header)
	if rows := c.batchRows(); rows > 0 {
		c.b.reserve(rows, c.avgLen)
	}
	for c.b.n < c.batchSize {
		var (
			rec  []string
			line int
		)
		switch {
		case c.sampleNext < len(c.sampleLines):
			i := c.sampleNext
			k := i % sampleChunk * width
			rec, line = c.sample[i/sampleChunk][k:k+width], c.sampleLines[i]
			c.sampleNext++
			if c.sampleNext == len(c.sampleLines) {
				c.sample, c.sampleLines, c.sampleNext = nil, nil, 0
			}
		case c.eof:
		default:
			var err error
			rec, err = c.cr.Read()
			if err == io.EOF {
				c.eof = true
				break
			}
			if err != nil {
				c.err = c.readError(err, rec)
				return nil, c.err
			}
		}
		if rec == nil {
			break
		}
		if err := c.appendRow(rec, line); err != nil {
			c.err = err
			return nil, err
		}
	}
	if c.b.n == 0 {
		return nil, io.EOF
	}
	return c.b.flush(), nil
}

const sampleChunk = 1024

// batchRows guesses the rows of the next batch, to size its builders once
// instead of regrowing them: the rest of the sample when the input ended
// inside it, a full batch when the input has shown it is longer than the
// sample or a batch, and 0 (let the builders grow) when nothing is known.
func (c *csvReader) batchRows() int {
	switch {
	case c.sampled && c.eof:
		return min(c.batchSize, len(c.sampleLines)-c.sampleNext)
	case c.sampled || c.b.rows > 0:
		return c.batchSize
	}
	return 0
}

// appendRow appends one row; line is 0 for a row just read, whose line is
// only looked up when it is needed for an error.
func (c *csvReader) appendRow(rec []string, line int) error {
	cols := c.fileCols[:len(rec)]
	for i, s := range rec {
		col := cols[i]
		if c.isNull(s) {
			if !c.nullable[i] {
				return c.valueError(line, i, "", errors.New("null in a non-nullable column"))
			}
			col.appendNull()
			continue
		}
		if err := col.appendText(s); err != nil {
			return c.valueError(line, i, s, err)
		}
	}
	c.b.n++
	return nil
}

func (c *csvReader) valueError(line, i int, s string, err error) error {
	if line == 0 {
		line, _ = c.cr.FieldPos(0)
	}
	if te, ok := err.(*typeError); ok {
		te.inferRows = c.inferRows
	}
	return &ParseError{File: c.name, Line: line, Column: c.header[i], Value: s, Err: err}
}

func (c *csvReader) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	c.b.release()
	c.fileCols, c.sample, c.sampleLines = nil, nil, nil
	return nil
}
