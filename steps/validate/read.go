package validate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/stats"
)

// lanes is how many shards a split's row groups are dealt into: row group
// i of the split goes to lane i mod lanes, each lane is accumulated in row
// group order, and each column's lanes are merged in lane order. Workers
// only decide which goroutine runs a (column, lane) unit, so the result
// (and the artifact's digest) does not depend on the worker count or on
// scheduling.
const lanes = 2

// part is some row groups of one part file.
type part struct {
	path      string
	file      string // the payload name, for errors
	meta      *metadata.FileMetaData
	rowGroups []int
}

// unit is one column of one lane: the pieces of work handed to workers.
// Columns are independent, so a split with a single row group (small
// data) still keeps every core busy, and a column's state is only ever
// touched by the goroutine running its unit.
type unit struct {
	field  int    // Arrow field index (the same in every part)
	name   string // its name
	typ    arrow.DataType
	leaves []int // its Parquet leaf columns
	lane   int   // which lane's row groups
	cost   int64 // estimated work, to start the big units first
	acc    *stats.Accumulator
	err    error
}

// splitStatistics computes one split's statistics in one pass over its
// part files, decoding on up to workers goroutines. Work is dealt as
// (column, lane) units, biggest first; each unit reads its column of its
// lane's row groups in order, and units are combined in a fixed order
// (lanes merged per column, columns in schema order), so the result does
// not depend on the worker count or on scheduling.
func splitStatistics(ctx context.Context, a *artifacts.Artifact, split artifacts.Split, workers int, opts stats.Options) (stats.DatasetFeatureStatistics, error) {
	cols, err := splitColumns(ctx, a, split.Files, workers, opts)
	if err != nil {
		return stats.DatasetFeatureStatistics{}, err
	}
	ds, err := columnsResult(split.Name, cols, workers)
	if err != nil {
		return ds, fmt.Errorf("artifact %s: %w", a.URI, err)
	}
	return ds, nil
}

// splitColumns is the statistics pass over some part files of a split
// (all of them, or a shard's share): one Accumulator per column, in
// schema order, each holding that column's state over every row of the
// files. No files, or files without rows, give the Dataset's columns
// with no rows.
func splitColumns(ctx context.Context, a *artifacts.Artifact, names []string, workers int, opts stats.Options) ([]*stats.Accumulator, error) {
	work := make([][]part, lanes)
	next := 0
	var fields *pqarrow.SchemaManifest
	var first *metadata.FileMetaData
	files, verified := openParts(ctx, a, names, workers)
	defer verified() // never leave the verifier running
	for _, f := range files {
		if f.release != nil {
			defer f.release()
		}
	}
	for _, f := range files {
		if f.err != nil {
			if err := verified(); err != nil {
				return nil, err // a damaged file explains a bad footer
			}
			return nil, f.err
		}
	}
	for _, f := range files {
		name, path, meta := f.name, f.path, f.meta
		var err error
		if fields == nil {
			first = meta
			if fields, err = pqarrow.NewSchemaManifest(meta.Schema, meta.KeyValueMetadata(), &pqarrow.ArrowReadProperties{}); err != nil {
				return nil, fmt.Errorf("artifact %s: read %s: %w", a.URI, name, err)
			}
		} else if !meta.Schema.Equals(first.Schema) {
			return nil, fmt.Errorf("artifact %s: %s: columns differ from the split's first part", a.URI, name)
		}
		byLane := make([][]int, lanes)
		for rg := range meta.NumRowGroups() {
			byLane[next%lanes] = append(byLane[next%lanes], rg)
			next++
		}
		for l, rgs := range byLane {
			if len(rgs) > 0 {
				work[l] = append(work[l], part{path: path, file: name, meta: meta, rowGroups: rgs})
			}
		}
	}
	if next == 0 || fields == nil {
		if err := verified(); err != nil {
			return nil, err
		}
		// An empty split still has its columns (from the part's footer).
		return emptyColumns(ctx, a, opts)
	}

	nfields := len(fields.Fields)
	units := make([]*unit, 0, nfields*lanes)
	for f := range nfields {
		leaves := leafColumns(&fields.Fields[f], nil)
		for l := range lanes {
			if len(work[l]) == 0 {
				continue
			}
			u := &unit{field: f, name: fields.Fields[f].Field.Name, typ: fields.Fields[f].Field.Type, leaves: leaves, lane: l}
			for _, p := range work[l] {
				for _, rg := range p.rowGroups {
					for _, c := range leaves {
						if cc, err := p.meta.RowGroup(rg).ColumnChunk(c); err == nil {
							u.cost += cc.TotalUncompressedSize() * costPerByte(cc.Type())
						}
					}
				}
			}
			units = append(units, u)
		}
	}
	order := slices.Clone(units)
	slices.SortStableFunc(order, func(x, y *unit) int { return cmp.Compare(y.cost, x.cost) })
	var taken atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, len(order)) {
		wg.Go(func() {
			sc := scratchPool.Get().(*scratch) // decode buffers, reused unit after unit
			defer scratchPool.Put(sc)
			for {
				i := int(taken.Add(1) - 1)
				if i >= len(order) {
					return
				}
				u := order[i]
				u.acc = stats.New(opts)
				for _, p := range work[u.lane] {
					if u.err = readField(ctx, p, u.name, u.typ, u.leaves, u.acc, sc); u.err != nil {
						u.err = fmt.Errorf("artifact %s: %s: %w", a.URI, p.file, u.err)
						break
					}
				}
			}
		})
	}
	wg.Wait()
	if err := verified(); err != nil {
		return nil, err
	}
	for _, u := range units {
		if u.err != nil {
			return nil, u.err
		}
	}
	// Each column's lanes are merged, in lane order, on the workers too.
	cols := make([]*stats.Accumulator, nfields)
	errs := make([]error, nfields)
	parallel(workers, nfields, func(f int) {
		for _, u := range units {
			switch {
			case u.field != f || errs[f] != nil:
			case cols[f] == nil:
				cols[f] = u.acc
			default:
				errs[f] = cols[f].Merge(u.acc)
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("artifact %s: %w", a.URI, err)
	}
	return cols, nil
}

// columnsResult summarises one Accumulator per column (top values,
// quantiles) into a split's statistics, on up to workers goroutines: for
// ZIP codes or ids that is real work, which would otherwise run on one
// core after the pass. Every column must have seen the same rows.
func columnsResult(name string, cols []*stats.Accumulator, workers int) (stats.DatasetFeatureStatistics, error) {
	res := make([]stats.DatasetFeatureStatistics, len(cols))
	errs := make([]error, len(cols))
	parallel(workers, len(cols), func(f int) { res[f], errs[f] = cols[f].Result(name) })
	ds := stats.DatasetFeatureStatistics{Name: name, Features: []stats.FeatureNameStatistics{}}
	for f := range res {
		if errs[f] != nil {
			return ds, errs[f]
		}
		if f == 0 {
			ds.NumExamples = res[0].NumExamples
		} else if res[f].NumExamples != ds.NumExamples {
			return ds, fmt.Errorf("column %q has %d rows, column %q %d", cols[f].Columns()[0], res[f].NumExamples, cols[0].Columns()[0], ds.NumExamples)
		}
		ds.Features = append(ds.Features, res[f].Features...)
	}
	return ds, nil
}

// parallel runs do(0), …, do(n-1) on up to workers goroutines.
func parallel(workers, n int, do func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				do(i)
			}
		})
	}
	wg.Wait()
}

// costPerByte weighs a column chunk's uncompressed bytes by how much work
// a byte is: strings are hashed and counted, numbers only summed and
// sketched.
func costPerByte(t parquet.Type) int64 {
	if t == parquet.Types.ByteArray || t == parquet.Types.FixedLenByteArray {
		return 4
	}
	return 1
}

// openedPart is a part file made local, with its footer read.
type openedPart struct {
	name, path string
	release    func()
	meta       *metadata.FileMetaData
	err        error
}

// openParts makes a split's part files local and reads their footers.
// Verifying a part's digest reads every byte of it; for parts already on
// this machine (file:// artifacts) that runs in the background, beside the
// statistics pass, instead of as a serial prelude to it: verified waits
// for it and returns its first error, and the caller uses nothing it
// computed before verified says the bytes were the committed ones. Other
// stores download (and verify) each part first, on up to workers
// goroutines.
func openParts(ctx context.Context, a *artifacts.Artifact, names []string, workers int) (files []openedPart, verified func() error) {
	files = make([]openedPart, len(names))
	local := true
	for i, name := range names {
		files[i].name = name
		var ok bool
		if files[i].path, ok = a.Location().Join(name).LocalPath(); !ok {
			local = false
		}
	}
	if local {
		done := make(chan error, 1)
		go func() {
			var first error
			for _, name := range names {
				_, release, err := a.LocalFile(ctx, name) // verifies the digest
				if err != nil {
					first = err
					break
				}
				release()
			}
			done <- first
		}()
		var once sync.Once
		var verr error
		verified = func() error {
			once.Do(func() { verr = <-done })
			return verr
		}
		for i := range files {
			f := &files[i]
			if f.meta, f.err = footer(f.path); f.err != nil {
				f.err = fmt.Errorf("artifact %s: read %s: %w", a.URI, f.name, f.err)
			}
		}
		return files, verified
	}
	var taken atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(workers, len(names))) {
		wg.Go(func() {
			for {
				i := int(taken.Add(1) - 1)
				if i >= len(files) {
					return
				}
				f := &files[i]
				f.path, f.release, f.err = a.LocalFile(ctx, f.name) // verifies the digest
				if f.err != nil {
					continue
				}
				if f.meta, f.err = footer(f.path); f.err != nil {
					f.err = fmt.Errorf("artifact %s: read %s: %w", a.URI, f.name, f.err)
				}
			}
		})
	}
	wg.Wait()
	return files, func() error { return nil }
}

// leafColumns appends the Parquet leaf column indices of a field.
func leafColumns(f *pqarrow.SchemaField, out []int) []int {
	if f.IsLeaf() {
		return append(out, f.ColIndex)
	}
	for i := range f.Children {
		out = leafColumns(&f.Children[i], out)
	}
	return out
}

// footer reads a part file's metadata.
func footer(path string) (*metadata.FileMetaData, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	return pf.MetaData(), nil
}

// readField decodes one field of some row groups of a part file into acc:
// flat string and number columns through the page-level fast paths
// (dictpages.go), anything they do not handle with pqarrow.
func readField(ctx context.Context, p part, name string, typ arrow.DataType, leaves []int, acc *stats.Accumulator, sc *scratch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rowGroups := p.rowGroups
	if len(leaves) == 1 {
		var err error
		if rowGroups, err = readFast(ctx, p, name, leaves[0], typ, sc, acc); err != nil || len(rowGroups) == 0 {
			return err
		}
	}
	// What the fast paths leave: pqarrow, with buffers of its own (its
	// decoders may hold on to page memory the recycler would hand out).
	pf, err := file.OpenParquetFile(p.path, false, file.WithMetadata(p.meta))
	if err != nil {
		return err
	}
	defer pf.Close()
	aprops := pqarrow.ArrowReadProperties{BatchSize: 65_536}
	for _, c := range leaves {
		if lt := p.meta.Schema.Column(c).LogicalType(); lt != nil && lt.String() == "String" {
			aprops.SetReadDict(c, true)
		}
	}
	fr, err := pqarrow.NewFileReader(pf, aprops, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	// One reader per row group: batches never span row groups, so they
	// are the same whichever lane or shard reads a row group, and so are
	// the per-batch moments the statistics keep.
	for _, rg := range rowGroups {
		if err := readRowGroup(ctx, fr, leaves, rg, acc); err != nil {
			return err
		}
	}
	return nil
}

// readRowGroup adds one row group's columns to acc through pqarrow.
func readRowGroup(ctx context.Context, fr *pqarrow.FileReader, leaves []int, rg int, acc *stats.Accumulator) error {
	rr, err := fr.GetRecordReader(ctx, leaves, []int{rg})
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

// emptyColumns is a Dataset's columns with no rows, one Accumulator
// each, so an empty split still lists its features.
func emptyColumns(ctx context.Context, a *artifacts.Artifact, opts stats.Options) ([]*stats.Accumulator, error) {
	sc, err := a.DatasetSchema(ctx)
	if err != nil {
		return nil, err
	}
	cols := make([]*stats.Accumulator, len(sc.Fields()))
	for i, f := range sc.Fields() {
		arr := emptyArray(f.Type)
		cols[i] = stats.New(opts)
		err := cols[i].Add(arrowRecord(arrow.NewSchema([]arrow.Field{f}, nil), []arrow.Array{arr}))
		arr.Release()
		if err != nil {
			return nil, err
		}
	}
	return cols, nil
}

// scratch is one worker's decode buffers.
type scratch struct {
	dict  dictChunk
	num   numChunk
	alloc recycler
}

// scratchPool keeps decode buffers (a few MiB a worker) from one
// statistics pass to the next: a Dataset's splits, or the steps of a
// pipeline run in one process.
var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// readFast reads one flat column of p's row groups through the page-level
// fast paths (dictionary strings, plain numbers) and returns the row
// groups it left to pqarrow, in order.
func readFast(ctx context.Context, p part, name string, leaf int, typ arrow.DataType, sc *scratch, acc *stats.Accumulator) ([]int, error) {
	descr := p.meta.Schema.Column(leaf)
	var read func(*file.RowGroupReader) (arrow.Array, error)
	switch {
	case dictColumn(descr):
		typ = dictType
		read = func(rg *file.RowGroupReader) (arrow.Array, error) {
			if err := sc.dict.read(rg, leaf, descr); err != nil {
				return nil, err
			}
			return sc.dict.array(), nil
		}
	case numColumn(descr, typ):
		read = func(rg *file.RowGroupReader) (arrow.Array, error) {
			if err := sc.num.read(rg, leaf, descr); err != nil {
				return nil, err
			}
			return sc.num.array(typ), nil
		}
	default:
		return p.rowGroups, nil
	}
	// The page readers only ever hand out page bytes that the decoders
	// above copy from, so their buffers can be recycled chunk to chunk.
	props := parquet.NewReaderProperties(&sc.alloc)
	props.BufferedStreamEnabled, props.BufferSize = true, 16<<10 // not a whole chunk's bytes per row group
	pf, err := file.OpenParquetFile(p.path, false, file.WithMetadata(p.meta), file.WithReadProps(props))
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	schema := arrow.NewSchema([]arrow.Field{{Name: name, Type: typ, Nullable: true}}, nil)
	var rest []int
	for _, rg := range p.rowGroups {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		arr, err := read(pf.RowGroup(rg))
		if err == errFallback {
			rest = append(rest, rg)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("row group %d, column %q: %w", rg, name, err)
		}
		rec := array.NewRecordBatch(schema, []arrow.Array{arr}, int64(arr.Len()))
		err = acc.Add(rec)
		rec.Release()
		arr.Release()
		if err != nil {
			return nil, err
		}
	}
	return rest, nil
}
