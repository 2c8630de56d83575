package tabular

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
)

// NewJSONReader reads a top-level JSON array of objects, one row per
// element. Elements are decoded one at a time, so the file is never held in
// memory whole. The first opts.InferRows elements are read before it
// returns, to infer the schema.
func NewJSONReader(r io.Reader, name string, opts Options) (Reader, error) {
	return asReader(newJSONReader(context.Background(), r, name, false, opts, false))
}

// NewJSONLReader reads one JSON object per line (JSON Lines, NDJSON).
// Blank lines are skipped. The first opts.InferRows rows are read before it
// returns, to infer the schema.
func NewJSONLReader(r io.Reader, name string, opts Options) (Reader, error) {
	return asReader(newJSONReader(context.Background(), r, name, true, opts, false))
}

type jsonReader struct {
	ctx       context.Context
	name      string
	batchSize int
	inferRows int // 0 when the schema was given

	// JSON array input.
	dec  *json.Decoder
	lc   *lineCounter
	elem int // elements read so far

	// JSONL input.
	br      *bufio.Reader
	lineNo  int
	lineBuf []byte
	srcEOF  bool // br is drained

	names  []string       // columns in first-seen or schema order
	index  map[string]int // name -> column
	frozen bool           // no new columns: sampling is over or the schema was given

	sample      [][]any
	sampleLines []int
	sampleNext  int
	vals        []any // the current row when streaming

	b      *batch
	eof    bool
	err    error // sticky
	closed bool
}

func newJSONReader(ctx context.Context, r io.Reader, name string, lines bool, opts Options, inferOnly bool) (*jsonReader, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	j := &jsonReader{
		ctx:       ctx,
		name:      name,
		batchSize: opts.BatchSize,
		index:     map[string]int{},
	}
	if lines {
		j.br = bufio.NewReaderSize(r, 64*1024)
	} else {
		j.lc = &lineCounter{r: r}
		j.dec = json.NewDecoder(j.lc)
		j.dec.UseNumber()
		if err := j.openArray(); err != nil {
			return nil, err
		}
	}
	schema := opts.Schema
	if schema == nil {
		j.inferRows = opts.InferRows
		if schema, err = j.infer(opts.InferRows, !inferOnly); err != nil {
			return nil, err
		}
	} else {
		for i, f := range schema.Fields() {
			j.names = append(j.names, f.Name)
			j.index[f.Name] = i
		}
	}
	j.frozen = true
	if inferOnly {
		j.b = &batch{schema: schema}
		return j, nil
	}
	if j.b, err = newBatch(schema, opts.Allocator); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return j, nil
}

// openArray consumes the opening bracket of the top-level array.
func (j *jsonReader) openArray() error {
	tok, err := j.dec.Token()
	if err == io.EOF {
		return &ParseError{File: j.name, Err: errors.New("empty input; want a JSON array of objects")}
	}
	if err != nil {
		return j.decodeError(err, 0)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return &ParseError{File: j.name, Line: j.lc.lineAt(j.dec.InputOffset()), Err: errors.New("top-level value is not an array; want a JSON array of objects (or use the jsonl format)")}
	}
	return nil
}

func (j *jsonReader) infer(n int, keep bool) (*arrow.Schema, error) {
	var cols []inferCol
	for rows := 0; n < 0 || rows < n; rows++ {
		if rows%ctxEvery == 0 {
			if err := j.ctx.Err(); err != nil {
				return nil, err
			}
		}
		vals, line, err := j.readRow(nil)
		if err == io.EOF {
			j.eof = true
			break
		}
		if err != nil {
			return nil, err
		}
		for len(cols) < len(j.names) {
			cols = append(cols, inferCol{})
		}
		for i, v := range vals {
			if v != nil {
				cols[i].observeJSON(v)
			}
		}
		if keep {
			j.sample = append(j.sample, vals)
			j.sampleLines = append(j.sampleLines, line)
		}
	}
	return inferredSchema(j.names, cols, false), nil
}

// readRow decodes the next object into vals (reused when non-nil), indexed
// by column. It returns io.EOF after the last row.
func (j *jsonReader) readRow(vals []any) ([]any, int, error) {
	if j.br != nil {
		return j.readLine(vals)
	}
	if !j.dec.More() {
		return nil, 0, j.closeArray()
	}
	line := j.elementLine()
	j.elem++
	tok, err := j.dec.Token()
	if err != nil {
		return nil, line, j.decodeError(err, j.elem)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, line, &ParseError{File: j.name, Line: line, Err: fmt.Errorf("element %d is not an object", j.elem)}
	}
	vals, err = j.readObject(j.dec, vals, line, j.elem)
	if err != nil {
		if _, ok := err.(*ParseError); !ok {
			err = j.decodeError(err, j.elem)
		}
		return nil, line, err
	}
	return vals, line, nil
}

// closeArray consumes the closing bracket and checks nothing follows.
func (j *jsonReader) closeArray() error {
	if _, err := j.dec.Token(); err != nil {
		return j.decodeError(err, 0)
	}
	if _, err := j.dec.Token(); err != io.EOF {
		if err != nil {
			return j.decodeError(err, 0)
		}
		return &ParseError{File: j.name, Line: j.lc.lineAt(j.dec.InputOffset()), Err: errors.New("data after the top-level array")}
	}
	return io.EOF
}

// readLine decodes the next non-blank line of JSONL input.
func (j *jsonReader) readLine(vals []any) ([]any, int, error) {
	for {
		line, err := j.nextLine()
		if err != nil {
			return nil, 0, err
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		pe := func(err error) error { return &ParseError{File: j.name, Line: j.lineNo, Err: err} }
		tok, err := dec.Token()
		if err != nil {
			return nil, j.lineNo, pe(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return nil, j.lineNo, pe(errors.New("line is not a JSON object"))
		}
		if vals, err = j.readObject(dec, vals, j.lineNo, 0); err != nil {
			if _, ok := err.(*ParseError); !ok {
				err = pe(err)
			}
			return nil, j.lineNo, err
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, j.lineNo, pe(errors.New("data after the object; want one object per line"))
		}
		return vals, j.lineNo, nil
	}
}

// nextLine returns the next line without its newline, valid until the next
// call. Lines longer than the bufio buffer are gathered in lineBuf.
func (j *jsonReader) nextLine() ([]byte, error) {
	if j.srcEOF {
		return nil, io.EOF
	}
	j.lineBuf = j.lineBuf[:0]
	for {
		chunk, err := j.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			j.lineBuf = append(j.lineBuf, chunk...)
			continue
		}
		line := chunk
		if len(j.lineBuf) > 0 {
			j.lineBuf = append(j.lineBuf, chunk...)
			line = j.lineBuf
		}
		switch {
		case err == io.EOF:
			j.srcEOF = true
			if len(line) == 0 {
				return nil, io.EOF
			}
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", j.name, err)
		}
		j.lineNo++
		return line, nil
	}
}

// readObject reads the members of an object whose '{' dec has consumed.
// Keys are read one token at a time so columns keep first-seen order.
func (j *jsonReader) readObject(dec *json.Decoder, vals []any, line, elem int) ([]any, error) {
	if vals == nil {
		vals = make([]any, len(j.names))
	} else {
		vals = vals[:len(j.names)]
		clear(vals)
	}
	var raw json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		v, err := decodeValue(raw)
		if err != nil {
			return nil, err
		}
		i, ok := j.index[key]
		if !ok {
			if j.frozen {
				why := "key is not in the schema"
				if j.inferRows > 0 {
					why = "key first seen after the first " + strconv.Itoa(j.inferRows) + " rows; set a larger InferRows or a schema"
				}
				return nil, &ParseError{File: j.name, Line: line, Column: key, Value: jsonText(v), Err: errors.New(why), element: elem}
			}
			i = len(j.names)
			j.names = append(j.names, key)
			j.index[key] = i
			vals = append(vals, nil)
		}
		vals[i] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return vals, nil
}

// elementLine is the line where the next array element starts. The
// decoder's offset stops after the previous value, so the separating
// whitespace and comma still buffered are skipped first.
func (j *jsonReader) elementLine() int {
	off := j.dec.InputOffset()
	buf := j.dec.Buffered()
	var tmp [64]byte
scan:
	for {
		n, _ := buf.Read(tmp[:])
		if n == 0 {
			break
		}
		for _, c := range tmp[:n] {
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != ',' {
				break scan
			}
			off++
		}
	}
	return j.lc.lineAt(off)
}

// decodeError turns decoder errors into ParseErrors with a line; read
// errors from the underlying io.Reader stay plain errors.
func (j *jsonReader) decodeError(err error, elem int) error {
	if j.lc.err != nil {
		return fmt.Errorf("read %s: %w", j.name, j.lc.err)
	}
	var se *json.SyntaxError
	line := 0
	switch {
	case errors.As(err, &se):
		line = j.lc.lineAt(se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF:
		line = j.lc.lineAt(j.lc.off)
		err = errors.New("unexpected end of input")
	}
	return &ParseError{File: j.name, Line: line, Err: err, element: elem}
}

func (j *jsonReader) Schema() *arrow.Schema { return j.b.schema }

func (j *jsonReader) Rows() int64 { return j.b.rows }

func (j *jsonReader) Next() (arrow.RecordBatch, error) {
	if j.closed {
		return nil, errClosed
	}
	if j.err != nil {
		return nil, j.err
	}
	if err := j.ctx.Err(); err != nil {
		j.err = err
		return nil, err
	}
	for j.b.n < j.batchSize {
		var (
			vals []any
			line int
		)
		if j.sampleNext < len(j.sample) {
			vals, line = j.sample[j.sampleNext], j.sampleLines[j.sampleNext]
			j.sample[j.sampleNext] = nil
			j.sampleNext++
			if j.sampleNext == len(j.sample) {
				j.sample, j.sampleLines, j.sampleNext = nil, nil, 0
			}
		} else if !j.eof {
			var err error
			vals, line, err = j.readRow(j.vals)
			if err == io.EOF {
				j.eof = true
				break
			}
			if err != nil {
				j.err = err
				return nil, err
			}
			j.vals = vals
		} else {
			break
		}
		if err := j.appendRow(vals, line); err != nil {
			j.err = err
			return nil, err
		}
	}
	if j.b.n == 0 {
		return nil, io.EOF
	}
	return j.b.flush(), nil
}

func (j *jsonReader) appendRow(vals []any, line int) error {
	for i, col := range j.b.cols {
		var v any
		if i < len(vals) {
			v = vals[i]
		}
		if v == nil {
			if !j.b.schema.Field(i).Nullable {
				return &ParseError{File: j.name, Line: line, Column: j.names[i], Err: errors.New("null or missing in a non-nullable column"), element: j.elemOf()}
			}
			col.appendNull()
			continue
		}
		if err := col.appendJSON(v); err != nil {
			if te, ok := err.(*typeError); ok {
				te.inferRows = j.inferRows
			}
			return &ParseError{File: j.name, Line: line, Column: j.names[i], Value: jsonText(v), Err: err, element: j.elemOf()}
		}
	}
	j.b.n++
	return nil
}

// elemOf is the 1-based array element of the row being appended: every
// element is a row, so it follows from the row count.
func (j *jsonReader) elemOf() int {
	if j.dec == nil {
		return 0
	}
	return int(j.b.rows) + j.b.n + 1
}

func (j *jsonReader) Close() error {
	if j.closed {
		return nil
	}
	j.closed = true
	j.b.release()
	j.sample, j.sampleLines, j.vals = nil, nil, nil
	return nil
}

// lineCounter notes where newlines pass through to the decoder, so the
// line of any offset the decoder reports can be told later. Offsets are
// asked for in increasing order, so newlines before the last asked offset
// are counted and forgotten: memory stays bounded by the decoder's
// lookahead.
type lineCounter struct {
	r       io.Reader
	off     int64   // bytes read so far
	pending []int64 // offsets of newlines not yet counted
	lines   int     // newlines counted
	err     error   // first read error other than io.EOF
}

func (l *lineCounter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i := 0; i < n; {
		k := bytes.IndexByte(p[i:n], '\n')
		if k < 0 {
			break
		}
		l.pending = append(l.pending, l.off+int64(i+k))
		i += k + 1
	}
	l.off += int64(n)
	if err != nil && err != io.EOF && l.err == nil {
		l.err = err
	}
	return n, err
}

// lineAt is the 1-based line of the byte at off.
func (l *lineCounter) lineAt(off int64) int {
	k := 0
	for k < len(l.pending) && l.pending[k] < off {
		k++
	}
	l.lines += k
	l.pending = append(l.pending[:0], l.pending[k:]...)
	return l.lines + 1
}
