package stats

import (
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
)

// Options tunes what statistics are kept; the zero value is the default.
type Options struct {
	// TopValues is how many most frequent values string features list
	// (default 20, as TFDV).
	TopValues int
	// RankHistogramBuckets is how many values the rank histogram lists
	// (default 1,000, as TFDV); drift and skew compare these.
	RankHistogramBuckets int
	// UniqueCap is how many distinct values a string feature counts
	// exactly (default 100,000). Past it, unique comes from an HLL sketch
	// and only values seen before the cap keep exact counts.
	UniqueCap int
	// RelativeAccuracy of the DDSketch behind median, quantiles and
	// histograms (default 0.005: a returned quantile is within 0.5% of a
	// value of the right rank).
	RelativeAccuracy float64
	// HistogramBuckets is the bucket count of both histograms (default 10).
	HistogramBuckets int
}

// DefaultRelativeAccuracy is the quantile sketch's default relative error.
const DefaultRelativeAccuracy = 0.005

func (o Options) withDefaults() Options {
	if o.TopValues <= 0 {
		o.TopValues = 20
	}
	if o.RankHistogramBuckets <= 0 {
		o.RankHistogramBuckets = 1000
	}
	if o.UniqueCap <= 0 {
		o.UniqueCap = 100_000
	}
	if o.RelativeAccuracy <= 0 || o.RelativeAccuracy >= 1 {
		o.RelativeAccuracy = DefaultRelativeAccuracy
	}
	if o.HistogramBuckets <= 0 {
		o.HistogramBuckets = 10
	}
	return o
}

// Accumulator gathers the statistics of one dataset from record batches.
// Its state is mergeable: accumulate shards (row groups, files) in separate
// Accumulators, possibly in parallel, then Merge them. Exact counts and
// moments merge exactly; quantile sketches merge by adding bucket counts.
// An Accumulator is not safe for concurrent use.
type Accumulator struct {
	opts    Options
	rows    int64
	columns []*column
	byName  map[string]*column
}

// column is one feature's state; exactly one of num and str is set.
type column struct {
	name string
	kind kind
	num  *numState
	str  *strState
}

// kind is how a column is summarised.
type kind int

const (
	kindInt kind = iota
	kindFloat
	kindString
)

// New returns an empty Accumulator.
func New(opts Options) *Accumulator {
	return &Accumulator{opts: opts.withDefaults(), byName: map[string]*column{}}
}

// Rows returns the number of rows added so far.
func (a *Accumulator) Rows() int64 { return a.rows }

// kindOf maps an Arrow type to how it is summarised: integers and booleans
// are INT (as TFDV), floats FLOAT, everything else (strings, timestamps,
// dates, nested values as text) STRING.
func kindOf(t arrow.DataType) kind {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64, arrow.BOOL:
		return kindInt
	case arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64:
		return kindFloat
	}
	return kindString
}

// Add accumulates every row of rec. It does not retain rec. A column that
// is absent from some batches counts as missing in their rows.
func (a *Accumulator) Add(rec arrow.RecordBatch) error {
	for i, f := range rec.Schema().Fields() {
		c, err := a.column(f.Name, kindOf(f.Type))
		if err != nil {
			return err
		}
		if err := c.add(rec.Column(i)); err != nil {
			return fmt.Errorf("column %q: %w", f.Name, err)
		}
	}
	a.rows += rec.NumRows()
	return nil
}

func (a *Accumulator) column(name string, k kind) (*column, error) {
	if c, ok := a.byName[name]; ok {
		if c.kind != k {
			return nil, fmt.Errorf("column %q: %s in one batch, %s in another", name, k, c.kind)
		}
		return c, nil
	}
	c := &column{name: name, kind: k}
	if k == kindString {
		c.str = newStrState(a.opts)
	} else {
		c.num = newNumState(a.opts, k == kindFloat)
	}
	a.columns = append(a.columns, c)
	a.byName[name] = c
	return c, nil
}

func (k kind) String() string {
	return [...]string{TypeInt, TypeFloat, TypeString}[k]
}

func (c *column) add(arr arrow.Array) error {
	if c.num != nil {
		return c.num.add(arr)
	}
	return c.str.add(arr)
}

// Merge folds b's state into a; b must not be used afterwards. Columns keep
// a's order, then b's new ones, so merging shards in a fixed order gives
// the same result every time. Both must have been made with the same
// Options (an UnmarshalBinary state carries its own).
func (a *Accumulator) Merge(b *Accumulator) error {
	if a.opts != b.opts {
		// Sketches of different accuracies or caps do not add up.
		return fmt.Errorf("merge: states made with different options (%+v, %+v)", a.opts, b.opts)
	}
	for _, bc := range b.columns {
		c, err := a.column(bc.name, bc.kind)
		if err != nil {
			return err
		}
		if c.num != nil {
			c.num.merge(bc.num)
		} else if err := c.str.merge(bc.str); err != nil {
			return fmt.Errorf("column %q: %w", bc.name, err)
		}
	}
	a.rows += b.rows
	return nil
}

// Result returns the statistics of everything added, as a dataset called
// name (a split's name). Features are in column order.
func (a *Accumulator) Result(name string) (DatasetFeatureStatistics, error) {
	ds := DatasetFeatureStatistics{Name: name, NumExamples: Int64(a.rows), Features: []FeatureNameStatistics{}}
	for _, c := range a.columns {
		f := FeatureNameStatistics{Path: Path{Step: []string{c.name}}, Type: c.kind.String()}
		if c.num != nil {
			ns, err := c.num.result(a.rows)
			if err != nil {
				return ds, fmt.Errorf("column %q: %w", c.name, err)
			}
			f.NumStats = ns
		} else {
			ss, err := c.str.result(a.rows)
			if err != nil {
				return ds, fmt.Errorf("column %q: %w", c.name, err)
			}
			f.StringStats = ss
		}
		ds.Features = append(ds.Features, f)
	}
	return ds, nil
}

// Columns returns the names of the columns seen so far, in order.
func (a *Accumulator) Columns() []string {
	names := make([]string, len(a.columns))
	for i, c := range a.columns {
		names[i] = c.name
	}
	return slices.Clip(names)
}

// common fills the counts shared by both kinds.
func common(nonMissing, rows int64) CommonStatistics {
	cs := CommonStatistics{NumNonMissing: Int64(nonMissing), NumMissing: Int64(rows - nonMissing), TotNumValues: Int64(nonMissing)}
	if nonMissing > 0 {
		cs.MinNumValues, cs.MaxNumValues, cs.AvgNumValues = 1, 1, 1
	}
	return cs
}

// Join adds b's columns to a, for Accumulators that summarised different
// columns of the same rows (say, one goroutine per column of the same
// batches); Merge is for the same columns of different rows. Columns keep
// a's order, then b's. Both must have seen the same number of rows (an
// empty a takes b's), and no column may be in both. b must not be used
// afterwards.
func (a *Accumulator) Join(b *Accumulator) error {
	if len(a.columns) == 0 && a.rows == 0 {
		a.rows = b.rows
	}
	if a.rows != b.rows {
		return fmt.Errorf("join: %d rows beside %d rows", b.rows, a.rows)
	}
	for _, bc := range b.columns {
		if _, ok := a.byName[bc.name]; ok {
			return fmt.Errorf("join: column %q on both sides", bc.name)
		}
	}
	for _, bc := range b.columns {
		a.columns = append(a.columns, bc)
		a.byName[bc.name] = bc
	}
	return nil
}
