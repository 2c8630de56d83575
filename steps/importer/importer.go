package importer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/schollz/progressbar/v3"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/tabular"
	"github.com/mlsteps/mlsteps/steps/step"
)

// Version of the import step; it goes into lineage and cache keys.
const Version = "0.1.0"

// Spec is the import step's contract.
func Spec() *step.Spec {
	return &step.Spec{
		Name:    "import",
		Version: Version,
		Summary: "turn raw CSV, TSV, JSON, JSONL or Parquet files into a split Dataset artifact",
		Description: "Reads raw files at any blob URL (one file or a glob such as s3://bucket/raw/*.csv), infers column " +
			"types, and writes a Dataset of Parquet parts with one folder per split (Split-train/part-00000.parquet). " +
			"Rows go to splits by a seeded hash of --split-key (or the whole row), like TFX's ExampleGen, or by the value " +
			"of a column with --split-by (a split per year or region, like ExampleGen's input split patterns).",
		Outputs: []step.Port{{Name: "examples", Type: artifacts.TypeDataset, Description: "the imported rows, split"}},
		Params: []step.Param{
			{Name: "source", Type: step.String, Required: true, Description: "raw file URL or glob (file://, s3://, gs://, azblob://, mem:// or a local path)", Example: "file:///data/penguins.json"},
			{Name: "format", Type: step.String, Default: "auto", Enum: []string{"auto", "csv", "tsv", "json", "jsonl", "parquet"}, Description: "input format; auto picks it from each file's extension"},
			{Name: "split", Type: step.String, Default: "train=2,eval=1", Description: "splits with weights (normalised); the default is TFX's 2:1", Example: "train=0.8,eval=0.2"},
			{Name: "split-key", Type: step.String, Default: "", Description: "column whose value decides the split (rows sharing it stay together); empty hashes the whole row", Example: "Island"},
			{Name: "split-by", Type: step.String, Default: "", Description: "split by value instead of by hash: --split then reads NAME=PREFIX[|PREFIX…], a row going to the first split with a prefix of this column's value as text (timestamps as RFC 3339); rows no split claims are left out and counted", Example: "date (with --split train=2012|2013,serving=2015)"},
			{Name: "seed", Type: step.Int, Default: int64(0), Description: "seed of the split hash"},
			{Name: "null-values", Type: step.String, Default: "", Description: "comma-separated CSV/TSV tokens read as null (an empty item is the empty field); empty means the default \"\" and NA; none disables", Example: "NA,,-"},
			{Name: "infer-rows", Type: step.Int, Default: int64(10000), Description: "rows sampled to infer column types; 0 scans the whole first file first"},
			{Name: "rows-per-part", Type: step.Int, Default: int64(1_000_000), Description: "rows per Parquet part file"},
		},
		Run:        run,
		ContentKey: sourceDigests,
	}
}

// sourceDigests hashes every raw file the source names, so the cache key
// follows their content, not their names.
func sourceDigests(ctx context.Context, r *step.Run) (map[string]string, error) {
	sources, err := findSources(ctx, r)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range sources {
		rd, err := r.Store().NewReader(ctx, s.obj.URI)
		if err != nil {
			return nil, step.BadInput(fmt.Errorf("--source: %w", err))
		}
		h := sha256.New()
		_, err = io.Copy(h, rd)
		rd.Close()
		if err != nil {
			return nil, fmt.Errorf("hash %s: %w", artifacts.Redact(s.obj.URI.String()), err)
		}
		out[s.obj.URI.String()] = hex.EncodeToString(h.Sum(nil))
	}
	return out, nil
}

// source is one raw file being imported.
type source struct {
	obj    artifacts.Object
	format tabular.Format
}

// sourceRecord is what the Dataset's properties say about a raw file.
type sourceRecord struct {
	URI    string `json:"uri"`
	Format string `json:"format"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Rows   int64  `json:"rows"`
}

func run(ctx context.Context, r *step.Run) error {
	var (
		splits splitSpec
		err    error
	)
	if r.String("split-by") != "" {
		if r.String("split-key") != "" {
			return step.Usagef("give --split-key (split by hash) or --split-by (split by value), not both")
		}
		splits, err = parseValueSplits(r.String("split"))
	} else {
		splits, err = parseSplits(r.String("split"))
	}
	if err != nil {
		return step.BadInput(err)
	}
	if r.Int("rows-per-part") <= 0 || r.Int("infer-rows") < 0 {
		return step.Usagef("--rows-per-part must be positive and --infer-rows not negative")
	}
	sources, err := findSources(ctx, r)
	if err != nil {
		return err
	}
	opts := tabular.Options{NullValues: nullValues(r.String("null-values")), InferRows: int(r.Int("infer-rows"))}
	if opts.InferRows == 0 {
		opts.InferRows = -1
	}
	imp := &importer{r: r, splits: splits, opts: opts, mem: memory.DefaultAllocator}
	if r.Interactive() {
		var total int64
		for _, s := range sources {
			total += s.obj.Size
		}
		imp.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(r.Stderr()), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("import"), progressbar.OptionThrottle(100_000_000), progressbar.OptionClearOnFinish())
	}
	w, err := r.Output(ctx, "examples")
	if err != nil {
		return err
	}
	var records []sourceRecord
	for _, s := range sources {
		rec, err := imp.importFile(ctx, s)
		if err != nil {
			if imp.dw != nil {
				imp.dw.Abandon()
			}
			return err
		}
		records = append(records, rec)
	}
	if imp.bar != nil {
		imp.bar.Finish()
	}
	if err := imp.dw.Close(); err != nil {
		return err
	}
	w.SetProperty("sources", records)
	var total int64
	for _, s := range records {
		total += s.Rows
	}
	if r.String("split-by") != "" {
		// Left-out rows are a choice, not a loss, but the count says how big it was.
		w.SetProperty("unmatched_rows", imp.unmatched)
		r.Logger().Info("split by value", "column", r.String("split-by"), "unmatched_rows", imp.unmatched)
	}
	r.Logger().Info("imported", "files", len(records), "rows", total, "columns", len(imp.schema.Fields()))
	return nil
}

func findSources(ctx context.Context, r *step.Run) ([]source, error) {
	pattern, err := artifacts.ParseURI(r.String("source"))
	if err != nil {
		return nil, step.BadInput(fmt.Errorf("--source: %w", err))
	}
	objs, err := r.Store().Glob(ctx, pattern)
	if err != nil {
		if errors.Is(err, artifacts.ErrNotFound) || errors.Is(err, artifacts.ErrInvalid) {
			return nil, step.BadInput(fmt.Errorf("--source: %w", err))
		}
		return nil, fmt.Errorf("--source: %w", err)
	}
	var out []source
	for _, o := range objs {
		var f tabular.Format
		if r.String("format") == "auto" {
			f, err = tabular.FormatFromName(o.URI.Base())
		} else {
			f, err = tabular.ParseFormat(r.String("format"))
		}
		if err != nil {
			return nil, step.BadInput(fmt.Errorf("--source %s: %w (set --format)", artifacts.Redact(o.URI.String()), err))
		}
		out = append(out, source{obj: o, format: f})
	}
	return out, nil
}

func nullValues(s string) []string {
	switch s {
	case "":
		return nil
	case "none":
		return []string{}
	}
	return strings.Split(s, ",")
}

// importer carries the state shared across source files: the schema of the
// first file, which later files must match, and the Dataset being written.
type importer struct {
	r      *step.Run
	splits splitSpec
	opts   tabular.Options
	mem    memory.Allocator
	bar    *progressbar.ProgressBar
	schema *arrow.Schema
	hasher assigner
	dw     *artifacts.DatasetWriter
	// unmatched counts the rows --split-by left out.
	unmatched int64
}

func (imp *importer) importFile(ctx context.Context, s source) (sourceRecord, error) {
	uri := artifacts.Redact(s.obj.URI.String())
	rec := sourceRecord{URI: uri, Format: string(s.format), Size: s.obj.Size}
	in, err := imp.open(ctx, s)
	if err != nil {
		return rec, err
	}
	defer in.Close()

	opts := imp.opts
	if imp.schema != nil {
		opts.Schema = imp.schema
	} else if opts.InferRows < 0 && s.format != tabular.FormatParquet {
		// A whole-file inference pass, then read again with the schema.
		sch, err := tabular.InferSchema(ctx, in, uri, s.format, opts)
		if err != nil {
			return rec, dataErr(err)
		}
		if err := in.Rewind(); err != nil {
			return rec, err
		}
		opts.Schema = sch
	}
	tr, err := tabular.NewReader(ctx, in, uri, s.format, opts)
	if err != nil {
		return rec, dataErr(err)
	}
	defer tr.Close()
	if imp.schema == nil {
		if err := imp.start(ctx, tr.Schema()); err != nil {
			return rec, err
		}
	} else if !tr.Schema().Equal(imp.schema) {
		return rec, step.Usagef("%s: columns %v differ from the first file's %v", uri, tr.Schema(), imp.schema)
	}
	if err := imp.pump(ctx, tr); err != nil {
		return rec, err
	}
	if rec.SHA256, err = in.finish(); err != nil {
		return rec, fmt.Errorf("read %s: %w", uri, err)
	}
	rec.Rows = tr.Rows()
	imp.r.Logger().Debug("file imported", "source", uri, "rows", rec.Rows)
	return rec, nil
}

// pump decodes in one goroutine while this one splits and writes Parquet,
// so parsing and encoding overlap on two cores. At most two decoded
// batches wait in between, which keeps memory bounded.
func (imp *importer) pump(ctx context.Context, tr tabular.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan arrow.RecordBatch, 2)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		for {
			batch, err := tr.Next()
			if err != nil {
				if err != io.EOF {
					readErr <- dataErr(err)
				}
				return
			}
			select {
			case batches <- batch:
			case <-ctx.Done():
				batch.Release()
				return
			}
		}
	}()
	var (
		assign []int
		err    error
	)
	for batch := range batches {
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			err = imp.write(ctx, batch, &assign)
		}
		batch.Release()
		if err != nil {
			cancel() // stops the decoder; the loop drains what it sent
		}
	}
	if err != nil {
		return err
	}
	select {
	case err := <-readErr:
		return err
	default:
		return ctx.Err()
	}
}

func (imp *importer) start(ctx context.Context, schema *arrow.Schema) error {
	var (
		h   assigner
		err error
	)
	if col := imp.r.String("split-by"); col != "" {
		h, err = newValueSplitter(schema, col)
	} else {
		h, err = newRowHasher(schema, imp.r.String("split-key"), imp.r.Int("seed"))
	}
	if err != nil {
		return step.BadInput(err)
	}
	w, err := imp.r.Output(ctx, "examples")
	if err != nil {
		return err
	}
	dw, err := artifacts.NewDatasetWriter(ctx, w, schema, imp.splits.names, artifacts.DatasetOptions{RowsPerPart: imp.r.Int("rows-per-part"), Allocator: imp.mem})
	if err != nil {
		return err
	}
	imp.schema, imp.hasher, imp.dw = schema, h, dw
	return nil
}

// write sends each row of batch to its split.
func (imp *importer) write(ctx context.Context, batch arrow.RecordBatch, assign *[]int) error {
	n := int(batch.NumRows())
	if cap(*assign) < n {
		*assign = make([]int, n)
	}
	a := (*assign)[:n]
	imp.hasher.assign(batch, imp.splits, a)
	counts := make([]int, len(imp.splits.names))
	for _, s := range a {
		if s < 0 {
			imp.unmatched++
			continue
		}
		counts[s]++
	}
	for i, name := range imp.splits.names {
		switch counts[i] {
		case 0:
			continue
		case n:
			if err := imp.dw.Write(name, batch); err != nil {
				return err
			}
			continue
		}
		mask := array.NewBooleanBuilder(imp.mem)
		mask.Reserve(n)
		for _, s := range a {
			mask.UnsafeAppend(s == i)
		}
		filter := mask.NewArray()
		mask.Release()
		part, err := compute.FilterRecordBatch(compute.WithAllocator(ctx, imp.mem), batch, filter, compute.DefaultFilterOptions())
		filter.Release()
		if err != nil {
			return fmt.Errorf("split rows: %w", err)
		}
		err = imp.dw.Write(name, part)
		part.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// dataErr marks errors about the raw data as the caller's.
func dataErr(err error) error {
	var pe *tabular.ParseError
	if errors.As(err, &pe) {
		return step.BadInput(err)
	}
	return err
}

// input is an opened raw file: hashed as it is read (the digest goes into
// the Dataset's properties), counted into the progress bar, and seekable
// for Parquet and whole-file inference.
type input struct {
	f      *os.File
	hash   hash.Hash
	bar    *progressbar.ProgressBar
	close  func() error
	digest string // set once the whole file is hashed
}

func (in *input) Read(p []byte) (int, error) {
	n, err := in.f.Read(p)
	in.hash.Write(p[:n])
	if in.bar != nil {
		in.bar.Add(n)
	}
	return n, err
}

// ReadAt and Seek serve the Parquet reader, which needs random access; its
// digest is taken in a pass of its own before decoding.
func (in *input) ReadAt(p []byte, off int64) (int, error)   { return in.f.ReadAt(p, off) }
func (in *input) Seek(off int64, whence int) (int64, error) { return in.f.Seek(off, whence) }
func (in *input) Close() error                              { return in.close() }

// Rewind starts reading (and hashing) again from the top.
func (in *input) Rewind() error {
	in.hash.Reset()
	_, err := in.f.Seek(0, io.SeekStart)
	return err
}

// finish hashes whatever the decoder left unread and returns the digest.
func (in *input) finish() (string, error) {
	if in.digest == "" {
		if _, err := io.Copy(io.Discard, in); err != nil {
			return "", err
		}
		in.digest = hex.EncodeToString(in.hash.Sum(nil))
	}
	return in.digest, nil
}

// open makes a raw file readable: a local file is opened in place, a remote
// one is staged to a temporary file so every format can seek.
func (imp *importer) open(ctx context.Context, s source) (*input, error) {
	uri := artifacts.Redact(s.obj.URI.String())
	in := &input{hash: sha256.New(), bar: imp.bar}
	if p, ok := s.obj.URI.LocalPath(); ok {
		f, err := os.Open(p)
		if err != nil {
			return nil, step.BadInput(fmt.Errorf("--source %s: %w", uri, err))
		}
		in.f, in.close = f, f.Close
	} else {
		br, err := imp.r.Store().NewReader(ctx, s.obj.URI)
		if err != nil {
			return nil, fmt.Errorf("--source: %w", err)
		}
		tmp, err := os.CreateTemp("", "mlsteps-import-*")
		if err != nil {
			br.Close()
			return nil, err
		}
		_, err = io.Copy(tmp, br)
		br.Close()
		if err == nil {
			_, err = tmp.Seek(0, io.SeekStart)
		}
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return nil, fmt.Errorf("stage %s: %w", uri, err)
		}
		in.f = tmp
		in.close = func() error { tmp.Close(); return os.Remove(tmp.Name()) }
	}
	if s.format == tabular.FormatParquet {
		// Parquet reads by offset, so hash the file in one pass up front.
		digest, err := in.finish()
		if err == nil {
			err = in.Rewind()
		}
		if err != nil {
			in.Close()
			return nil, fmt.Errorf("read %s: %w", uri, err)
		}
		in.digest = digest
	}
	return in, nil
}
