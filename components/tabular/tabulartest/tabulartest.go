// Package tabulartest loads the vega datasets fetched by `make setup` as
// Arrow record batches, for the tests of components that work on them.
package tabulartest

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/components/tabular"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// Load reads a vega dataset in batches of batch rows, with types inferred
// from every row. It skips (fails under CI) when the data is not fetched.
func Load(t testing.TB, name string, batch int) (*arrow.Schema, []arrow.RecordBatch) {
	t.Helper()
	f, err := os.Open(testenv.VegaData(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	format, err := tabular.FormatFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tabular.NewReader(context.Background(), f, name, format, tabular.Options{BatchSize: batch, InferRows: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var recs []arrow.RecordBatch
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.Schema(), recs
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
}
