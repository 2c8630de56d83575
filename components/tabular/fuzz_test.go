package tabular_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/tabular"
)

// fuzzRead reads data with a small sample and batch, so the fuzzer reaches
// both the replayed sample and the streamed rows, and checks the reader
// either fails with an error or returns batches adding up to Rows().
func fuzzRead(t *testing.T, open func(io.Reader, tabular.Options) (tabular.Reader, error), data []byte) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, opts := range []tabular.Options{
		{InferRows: 2, BatchSize: 3, Allocator: mem},
		{InferRows: -1, BatchSize: 64, Allocator: mem},
	} {
		rd, err := open(bytes.NewReader(data), opts)
		if err != nil {
			continue
		}
		var rows int64
		for {
			rec, err := rd.Next()
			if err == io.EOF {
				if rows != rd.Rows() {
					t.Fatalf("batches held %d rows, Rows() = %d", rows, rd.Rows())
				}
				break
			}
			if err != nil {
				var pe *tabular.ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("error %v (%T) on in-memory input is not a ParseError", err, err)
				}
				// A sample of every row cannot be contradicted by a
				// later one.
				if opts.InferRows < 0 && (strings.Contains(err.Error(), "type inferred") || strings.Contains(err.Error(), "first seen after")) {
					t.Fatalf("inference over every row disagrees with reading: %v", err)
				}
				if _, again := rd.Next(); again == nil || again.Error() != err.Error() {
					t.Fatalf("error not sticky: %v then %v", err, again)
				}
				break
			}
			if int(rec.NumCols()) != rd.Schema().NumFields() {
				t.Fatalf("batch has %d columns, schema %d", rec.NumCols(), rd.Schema().NumFields())
			}
			for i := range int(rec.NumCols()) {
				if int64(rec.Column(i).Len()) != rec.NumRows() {
					t.Fatalf("column %d has %d values in a batch of %d", i, rec.Column(i).Len(), rec.NumRows())
				}
			}
			if rec.NumRows() == 0 || rec.NumRows() > int64(opts.BatchSize) {
				t.Fatalf("batch of %d rows, BatchSize %d", rec.NumRows(), opts.BatchSize)
			}
			rows += rec.NumRows()
			rec.Release()
		}
		rd.Close()
	}
}

func FuzzCSVReader(f *testing.F) {
	for _, s := range []string{
		"a,b\n1,2\n3,4\n",
		"a,b,c\ntrue,1.5,2020-01-01\nfalse,NA,2020-01-02T03:04:05Z\n,3,x\n",
		"a\n1\n2\n3\nx\n",
		"a,b\n\"x\ny\",1\n\"q\"\"\",2\n",
		"a,a\n1,2\n",
		"a,,b\n1,2\n3\n",
		"\ufeffx\n2020-01-01T00:00:00.123456789+05:30\n",
		"a\n\"unterminated\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, func(r io.Reader, opts tabular.Options) (tabular.Reader, error) {
			return tabular.NewCSVReader(r, "fuzz.csv", ',', opts)
		}, data)
	})
}

func FuzzJSONReader(f *testing.F) {
	for _, s := range []string{
		`[{"a":1,"b":"x"},{"a":2.5,"c":null}]`,
		`[{"a":true},{"a":{"n":[1,2,{"k":"v"}]}},{"a":"2020-01-01"}]`,
		`[{"a":1},{"a":2},{"a":3},{"b":4}]`,
		`[{"a":1},5]`,
		`{"a":1}`,
		`[]`,
		`[{"a":"\u00e9\"\\"}] `,
		`[{"a":1e999},{"a":-0}]`,
		`[{"a":1},`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, func(r io.Reader, opts tabular.Options) (tabular.Reader, error) {
			return tabular.NewJSONReader(r, "fuzz.json", opts)
		}, data)
	})
}

func FuzzJSONLReader(f *testing.F) {
	for _, s := range []string{
		"{\"a\":1,\"b\":\"x\"}\n{\"a\":2.5}\n",
		"{\"a\":1}\n\n  \n{\"a\":2}\r\n{\"b\":[1]}",
		"{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n{\"a\":\"x\"}\n",
		"[1]\n",
		"{\"a\":1} {\"a\":2}\n",
		"{\"t\":\"2020-01-01 00:00:00Z\"}\n{\"t\":null}\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, func(r io.Reader, opts tabular.Options) (tabular.Reader, error) {
			return tabular.NewJSONLReader(r, "fuzz.jsonl", opts)
		}, data)
	})
}
