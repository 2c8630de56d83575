package validate

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/stats"
)

// lanes is how many shards a split's row groups are dealt into: row group
// i of the split goes to lane i mod lanes, each lane is accumulated in row
// group order, and the lanes are merged in lane order. Workers only decide
// which goroutine runs a lane, so the result (and the artifact's digest)
// does not depend on the worker count or on scheduling.
const lanes = 2

// part is some row groups of one part file.
type part struct {
	path      string
	file      string // the payload name, for errors
	rowGroups []int
}

// splitStatistics computes one split's statistics in one pass over its
// part files, decoding row groups on up to workers goroutines.
func splitStatistics(ctx context.Context, a *artifacts.Artifact, split artifacts.Split, workers int, opts stats.Options) (stats.DatasetFeatureStatistics, error) {
	work := make([][]part, lanes)
	next := 0
	for _, name := range split.Files {
		path, release, err := a.LocalFile(ctx, name) // verifies the digest
		if err != nil {
			return stats.DatasetFeatureStatistics{}, err
		}
		defer release()
		n, err := rowGroups(path)
		if err != nil {
			return stats.DatasetFeatureStatistics{}, fmt.Errorf("artifact %s: read %s: %w", a.URI, name, err)
		}
		byLane := make([][]int, lanes)
		for rg := range n {
			byLane[next%lanes] = append(byLane[next%lanes], rg)
			next++
		}
		for l, rgs := range byLane {
			if len(rgs) > 0 {
				work[l] = append(work[l], part{path: path, file: name, rowGroups: rgs})
			}
		}
	}
	accs := make([]*stats.Accumulator, lanes)
	errs := make([]error, lanes)
	var wg sync.WaitGroup
	for w := range min(workers, lanes) {
		wg.Go(func() {
			for l := w; l < lanes; l += workers {
				accs[l] = stats.New(opts)
				for _, p := range work[l] {
					if errs[l] = readPart(ctx, p, accs[l]); errs[l] != nil {
						errs[l] = fmt.Errorf("artifact %s: %s: %w", a.URI, p.file, errs[l])
						break
					}
				}
			}
		})
	}
	wg.Wait()
	total := accs[0]
	for l := range lanes {
		if errs[l] != nil {
			return stats.DatasetFeatureStatistics{}, errs[l]
		}
		if l == 0 {
			continue
		}
		if err := total.Merge(accs[l]); err != nil {
			return stats.DatasetFeatureStatistics{}, fmt.Errorf("artifact %s: %w", a.URI, err)
		}
	}
	if next == 0 {
		// An empty split still has its columns (from the part's footer).
		if err := addEmptyColumns(ctx, a, total); err != nil {
			return stats.DatasetFeatureStatistics{}, err
		}
	}
	return total.Result(split.Name)
}

func rowGroups(path string) (int, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return 0, err
	}
	defer pf.Close()
	return pf.NumRowGroups(), nil
}

// readPart decodes some row groups of a part file into acc. String
// columns are read as dictionaries, so each distinct value is hashed once
// per batch rather than once per row.
func readPart(ctx context.Context, p part, acc *stats.Accumulator) error {
	f, err := os.Open(p.path)
	if err != nil {
		return err
	}
	pf, err := file.NewParquetReader(f)
	if err != nil {
		f.Close()
		return err
	}
	defer pf.Close()
	props := pqarrow.ArrowReadProperties{BatchSize: 65_536}
	sc := pf.MetaData().Schema
	if sc.NumColumns() == sc.Root().NumFields() { // flat: column i is field i
		rg := pf.MetaData().RowGroup(p.rowGroups[0])
		for i := range sc.NumColumns() {
			if lt := sc.Column(i).LogicalType(); lt != nil && lt.String() == "String" && fewDistinct(rg, i) {
				props.SetReadDict(i, true)
			}
		}
	}
	fr, err := pqarrow.NewFileReader(pf, props, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	rr, err := fr.GetRecordReader(ctx, nil, p.rowGroups)
	if err != nil {
		return err
	}
	defer rr.Release()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := rr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := acc.Add(rec); err != nil {
			return err
		}
	}
}

// fewDistinct guesses from a column chunk's layout whether its values
// repeat enough for dictionary reading to pay: when the dictionary page is
// larger than the data pages (the indices), most values are distinct (ids,
// ZIP codes) and reading plain strings is cheaper and smaller, since the
// Arrow reader re-hashes every dictionary entry of every row group. Either
// way the statistics are the same.
func fewDistinct(rg *metadata.RowGroupMetaData, col int) bool {
	cc, err := rg.ColumnChunk(col)
	if err != nil || !cc.HasDictionaryPage() || cc.DictionaryPageOffset() <= 0 {
		return false
	}
	dict := cc.DataPageOffset() - cc.DictionaryPageOffset()
	return dict > 0 && dict < cc.TotalCompressedSize()-dict
}

// addEmptyColumns registers a Dataset's columns with no rows, so an empty
// split still lists its features.
func addEmptyColumns(ctx context.Context, a *artifacts.Artifact, acc *stats.Accumulator) error {
	sc, err := a.DatasetSchema(ctx)
	if err != nil {
		return err
	}
	cols := make([]arrow.Array, len(sc.Fields()))
	for i, f := range sc.Fields() {
		cols[i] = emptyArray(f.Type)
		defer cols[i].Release()
	}
	return acc.Add(arrowRecord(sc, cols))
}
