package artifacts

import (
	"context"
	"fmt"
	"io"
	"iter"
	"reflect"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// EndPart finishes the split's open part file, if any, so the next Write
// to the split starts a new one. Writers that keep one output part per
// input part call it at each input part's end: then the output of a share
// of the input parts is, file for file, the output of the whole.
func (d *DatasetWriter) EndPart(split string) error {
	st, ok := d.state[split]
	if !ok {
		return invalidf("dataset %s: unknown split %q", d.w.sc.URI, split)
	}
	if st.part == nil {
		return nil
	}
	return d.closePart(st)
}

// PartRecords streams the rows of one part file of a split (a shard reads
// its share of the parts this way), verified against its digest first.
func (a *Artifact) PartRecords(ctx context.Context, split, name string, opts ReadOptions) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		s, err := a.Split(split)
		if err != nil {
			yield(nil, err)
			return
		}
		if !slices.Contains(s.Files, name) {
			yield(nil, fmt.Errorf("artifact %s: %w: split %s has no part %q", a.URI, ErrNotFound, split, name))
			return
		}
		a.readPart(ctx, name, opts, yield)
	}
}

// PartRowCounts returns the row count of each part file of a split, in
// Files order: from the sidecar when it records them, else from each
// part's Parquet footer (which verifies and, off the local disk, fetches
// the file).
func (a *Artifact) PartRowCounts(ctx context.Context, split string) ([]int64, error) {
	s, err := a.Split(split)
	if err != nil {
		return nil, err
	}
	if len(s.PartRows) == len(s.Files) {
		return slices.Clone(s.PartRows), nil
	}
	out := make([]int64, len(s.Files))
	for i, name := range s.Files {
		n, err := a.footerRows(ctx, name)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

func (a *Artifact) footerRows(ctx context.Context, name string) (int64, error) {
	path, release, err := a.LocalFile(ctx, name)
	if err != nil {
		return 0, err
	}
	defer release()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return 0, fmt.Errorf("artifact %s: read %s: %w", a.URI, name, err)
	}
	defer pf.Close()
	return pf.NumRows(), nil
}

// ConcatDatasets writes into w (a Dataset, Predictions or DeadLetters
// writer, not committed) the concatenation of parts, split by split in
// parts' order: each non-empty part file copied byte for byte and numbered
// on (part-00000, part-00001, …), the properties (splits, row counts,
// columns) of the whole. When every partial was cut at the same part
// boundaries as one writer would have cut the whole, the result has the
// whole's digest. An empty split keeps one empty part, taken from the
// first partial whose columns are the result's. The partials must have the
// same splits, in the same order, and the same columns where they have
// rows; otherwise the error names the first that differs.
func ConcatDatasets(ctx context.Context, w *Writer, parts []*Artifact) error {
	if !tabular(w.Type()) {
		return invalidf("concat into %s: a %s is not tabular", w.sc.URI, w.Type())
	}
	if len(parts) == 0 {
		return invalidf("concat into %s: no partials", w.sc.URI)
	}
	type partial struct {
		splits []Split
		cols   []Column
		rows   int64
	}
	ps := make([]partial, len(parts))
	var cols []Column
	for i, a := range parts {
		if a.Type != w.Type() {
			return invalidf("concat into %s: %s is a %s, not a %s", w.sc.URI, a.URI, a.Type, w.Type())
		}
		splits, err := a.Splits()
		if err != nil {
			return err
		}
		c, err := Property[[]Column](a.Sidecar, PropColumns)
		if err != nil {
			return err
		}
		for j := range splits {
			if len(splits[j].PartRows) != len(splits[j].Files) {
				if splits[j].PartRows, err = a.PartRowCounts(ctx, splits[j].Name); err != nil {
					return err
				}
			}
		}
		ps[i] = partial{splits: splits, cols: c}
		for _, s := range splits {
			ps[i].rows += s.RowCount
		}
		if i > 0 && !sameSplitNames(ps[0].splits, splits) {
			return invalidf("concat into %s: %s has splits %v, %s has %v", w.sc.URI, parts[0].URI, splitNames(ps[0].splits), a.URI, splitNames(splits))
		}
		if ps[i].rows > 0 {
			if cols == nil {
				cols = c
			} else if !reflect.DeepEqual(cols, c) {
				return invalidf("concat into %s: %s has other columns than the partials before it", w.sc.URI, a.URI)
			}
		}
	}
	if cols == nil {
		cols = ps[0].cols
	}
	var total int64
	var out []Split
	for j, first := range ps[0].splits {
		s := Split{Name: first.Name, Files: []string{}, PartRows: []int64{}}
		add := func(a *Artifact, src string, rows int64) error {
			dst := fmt.Sprintf("%s/part-%05d.parquet", SplitDir(s.Name), len(s.Files))
			if err := copyAs(ctx, a, w, src, dst); err != nil {
				return fmt.Errorf("concat into %s: %w", w.sc.URI, err)
			}
			s.Files = append(s.Files, dst)
			s.PartRows = append(s.PartRows, rows)
			s.RowCount += rows
			return nil
		}
		for i, p := range ps {
			sp := p.splits[j]
			for k, f := range sp.Files {
				if sp.PartRows[k] == 0 {
					continue
				}
				if err := add(parts[i], f, sp.PartRows[k]); err != nil {
					return err
				}
			}
		}
		if len(s.Files) == 0 {
			// An empty split still carries the schema, as one writer leaves it.
			i := slices.IndexFunc(ps, func(p partial) bool { return reflect.DeepEqual(p.cols, cols) && len(p.splits[j].Files) > 0 })
			if i < 0 {
				return invalidf("concat into %s: split %s is empty and no partial has a part file with the columns", w.sc.URI, s.Name)
			}
			if err := add(parts[i], ps[i].splits[j].Files[0], 0); err != nil {
				return err
			}
		}
		total += s.RowCount
		out = append(out, s)
	}
	w.SetProperty(PropFormat, "parquet")
	w.SetProperty(PropRowCount, total)
	w.SetProperty(PropColumns, cols)
	w.SetProperty(PropSplits, out)
	return nil
}

// copyAs streams payload file src of a into w as dst, verified on read.
func copyAs(ctx context.Context, a *Artifact, w *Writer, src, dst string) error {
	r, err := a.Open(ctx, src)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := w.Create(ctx, dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("copy %s of %s: %w", src, a.URI, err)
	}
	return f.Close()
}

func sameSplitNames(a, b []Split) bool {
	return slices.Equal(splitNames(a), splitNames(b))
}

func splitNames(s []Split) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x.Name
	}
	return out
}
