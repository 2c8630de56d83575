package train

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/tabular"
	"github.com/mlsteps/mlsteps/components/train"
	"github.com/mlsteps/mlsteps/steps/step"
)

// table is a split read into memory: the features row-major (NaN for
// null), the label as text (classification) or number (regression), and
// the per-key column as text. Rows whose label is null are left out.
type table struct {
	x         []float64
	labels    []string  // classification
	values    []float64 // regression
	keys      []string  // with --per-key
	nullLabel int       // rows left out
	nullKey   int
}

func (t *table) rows() int { return len(t.labels) + len(t.values) }

// readSplit reads a split's feature, label and key columns.
func readSplit(ctx context.Context, a *artifacts.Artifact, split string, s settings) (*table, error) {
	cols := slices.Clone(s.features)
	cols = append(cols, s.label)
	if s.perKey != "" && !slices.Contains(cols, s.perKey) {
		cols = append(cols, s.perKey)
	}
	t := &table{}
	f := len(s.features)
	for rec, err := range a.Records(ctx, split, artifacts.ReadOptions{Columns: cols}) {
		if err != nil {
			return nil, fmt.Errorf("read split %s: %w", split, err)
		}
		sch := rec.Schema()
		col := func(name string) arrow.Array { return rec.Column(sch.FieldIndices(name)[0]) }
		label := col(s.label)
		var key arrow.Array
		if s.perKey != "" {
			key = col(s.perKey)
		}
		feats := make([]arrow.Array, f)
		for j, name := range s.features {
			feats[j] = col(name)
		}
		for i := range int(rec.NumRows()) {
			if label.IsNull(i) {
				t.nullLabel++
				continue
			}
			if key != nil && key.IsNull(i) {
				t.nullKey++
				continue
			}
			for j, c := range feats {
				v, ok := number(c, i)
				if !ok {
					return nil, step.BadInput(fmt.Errorf("split %s: feature column %q is %s, not numeric", split, s.features[j], c.DataType()))
				}
				t.x = append(t.x, v)
			}
			if s.classify {
				t.labels = append(t.labels, text(label, i))
			} else {
				v, ok := number(label, i)
				if !ok {
					return nil, step.BadInput(fmt.Errorf("split %s: label column %q is %s, not numeric", split, s.label, label.DataType()))
				}
				t.values = append(t.values, v)
			}
			if key != nil {
				t.keys = append(t.keys, text(key, i))
			}
		}
	}
	return t, nil
}

// number and text read cells as the rest of mlsteps does.
var (
	number = tabular.Number
	text   = tabular.Text
)

// classesOf returns the sorted distinct labels: numerically when every
// label is a number, else as text.
func classesOf(labels []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range labels {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	numeric := true
	nums := map[string]float64{}
	for _, c := range out {
		v, err := strconv.ParseFloat(c, 64)
		if err != nil {
			numeric = false
			break
		}
		nums[c] = v
	}
	if numeric {
		slices.SortFunc(out, func(a, b string) int {
			switch {
			case nums[a] < nums[b]:
				return -1
			case nums[a] > nums[b]:
				return 1
			}
			return 0
		})
	} else {
		slices.Sort(out)
	}
	return out
}

// data turns rows of a table into train.Data; rows picks them (nil: all).
// Classification rows whose class is not among classes are left out and
// counted.
func (t *table) data(features, classes []string, rows []int) (train.Data, int) {
	f := len(features)
	d := train.Data{Features: features, Classes: classes}
	if rows == nil {
		rows = make([]int, t.rows())
		for i := range rows {
			rows[i] = i
		}
	}
	index := map[string]int{}
	for i, c := range classes {
		index[c] = i
	}
	unknown := 0
	d.X = make([]float64, 0, len(rows)*f)
	d.Y = make([]float64, 0, len(rows))
	for _, i := range rows {
		y := 0.0
		if classes != nil {
			k, ok := index[t.labels[i]]
			if !ok {
				unknown++
				continue
			}
			y = float64(k)
		} else {
			y = t.values[i]
		}
		d.X = append(d.X, t.x[i*f:(i+1)*f]...)
		d.Y = append(d.Y, y)
	}
	return d, unknown
}
