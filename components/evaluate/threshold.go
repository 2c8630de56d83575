package evaluate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// ErrNotBlessed is wrapped by Verdict.Err when a threshold fails: the gate
// said no.
var ErrNotBlessed = errors.New("not blessed")

// Threshold bounds one metric: its value, its change against a baseline's
// value on the same rows, or both.
type Threshold struct {
	// LowerBound and UpperBound bound the value, inclusive.
	LowerBound *float64 `json:"lower_bound,omitempty" yaml:"lower_bound,omitempty"`
	UpperBound *float64 `json:"upper_bound,omitempty" yaml:"upper_bound,omitempty"`
	Change     *Change  `json:"change,omitempty" yaml:"change,omitempty"`
}

// Direction says which way a metric improves.
type Direction string

// Directions of a change threshold.
const (
	HigherIsBetter Direction = "higher_is_better"
	LowerIsBetter  Direction = "lower_is_better"
)

// Change bounds the difference candidate − baseline (Absolute) and that
// difference over |baseline| (Relative), as TFMA's change thresholds:
// higher_is_better passes when the difference is at least the bound
// (absolute: -0.01 allows a drop of 0.01), lower_is_better when it is at
// most the bound. At least one of Absolute and Relative is set.
type Change struct {
	Direction Direction `json:"direction" yaml:"direction"`
	Absolute  *float64  `json:"absolute,omitempty" yaml:"absolute,omitempty"`
	Relative  *float64  `json:"relative,omitempty" yaml:"relative,omitempty"`
}

// Verdict is the outcome of every threshold.
type Verdict struct {
	Passed bool    `json:"passed"`
	Checks []Check `json:"checks"`
}

// Check is one bound of one metric on one slice.
type Check struct {
	Slice  string `json:"slice"`
	Metric string `json:"metric"`
	// Kind is lower_bound, upper_bound, change_absolute or change_relative.
	Kind  string  `json:"kind"`
	Bound float64 `json:"bound"`
	Value Number  `json:"value"`
	// Baseline and Change are set for change thresholds.
	Baseline *Number `json:"baseline,omitempty"`
	Change   *Number `json:"change,omitempty"`
	Passed   bool    `json:"passed"`
	Message  string  `json:"message"`
}

// Failures returns the checks that failed.
func (v Verdict) Failures() []Check {
	var out []Check
	for _, c := range v.Checks {
		if !c.Passed {
			out = append(out, c)
		}
	}
	return out
}

// Err is nil when every check passed and otherwise an error wrapping
// ErrNotBlessed that lists each failure with its values.
func (v Verdict) Err() error {
	f := v.Failures()
	if len(f) == 0 {
		return nil
	}
	msgs := make([]string, len(f))
	for i, c := range f {
		msgs[i] = c.Message
	}
	return fmt.Errorf("%w: %s", ErrNotBlessed, strings.Join(msgs, "; "))
}

// CheckThresholds evaluates thresholds, by metric name (as SliceResult.Scalars
// names them), on the overall slice of candidate, and change thresholds
// against baseline's overall slice, which must come from the same rows.
// A metric that is NaN fails. It returns an error wrapping ErrInvalid
// when a threshold names a metric not computed, has no bound, has a change
// without a baseline or a bad direction.
func CheckThresholds(candidate, baseline *Result, thresholds map[string]Threshold) (Verdict, error) {
	return CheckSliceThresholds(OverallKey, candidate, baseline, thresholds)
}

// CheckSliceThresholds is CheckThresholds on the slice with key.
func CheckSliceThresholds(key string, candidate, baseline *Result, thresholds map[string]Threshold) (Verdict, error) {
	v := Verdict{Passed: true}
	cs := candidate.Slice(key)
	if cs == nil {
		return v, fmt.Errorf("%w: thresholds: candidate has no slice %q", ErrInvalid, key)
	}
	cand := cs.Scalars()
	var base map[string]float64
	if baseline != nil {
		bs := baseline.Slice(key)
		if bs == nil {
			return v, fmt.Errorf("%w: thresholds: baseline has no slice %q", ErrInvalid, key)
		}
		if bs.ExampleCount != cs.ExampleCount {
			return v, fmt.Errorf("%w: thresholds: baseline has %d rows in %s, candidate %d; change thresholds need the same rows",
				ErrInvalid, bs.ExampleCount, key, cs.ExampleCount)
		}
		base = bs.Scalars()
	}
	names := make([]string, 0, len(thresholds))
	for name := range thresholds {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t := thresholds[name]
		val, ok := cand[name]
		if !ok {
			return v, fmt.Errorf("%w: thresholds.%s: metric not computed (slice %s has %s)", ErrInvalid, name, key, strings.Join(sortedKeys(cand), ", "))
		}
		if t.LowerBound == nil && t.UpperBound == nil && t.Change == nil {
			return v, fmt.Errorf("%w: thresholds.%s: no lower_bound, upper_bound or change", ErrInvalid, name)
		}
		add := func(c Check) {
			c.Slice, c.Metric, c.Value = key, name, Number(val)
			v.Checks = append(v.Checks, c)
			v.Passed = v.Passed && c.Passed
		}
		if b := t.LowerBound; b != nil {
			ok := val >= *b
			add(Check{Kind: "lower_bound", Bound: *b, Passed: ok,
				Message: fmt.Sprintf("%s %s = %.6g %s lower bound %g", key, name, val, verb(ok, "meets", "is below"), *b)})
		}
		if b := t.UpperBound; b != nil {
			ok := val <= *b
			add(Check{Kind: "upper_bound", Bound: *b, Passed: ok,
				Message: fmt.Sprintf("%s %s = %.6g %s upper bound %g", key, name, val, verb(ok, "meets", "is above"), *b)})
		}
		c := t.Change
		if c == nil {
			continue
		}
		if c.Direction != HigherIsBetter && c.Direction != LowerIsBetter {
			return v, fmt.Errorf("%w: thresholds.%s.change.direction: %q is neither %s nor %s", ErrInvalid, name, c.Direction, HigherIsBetter, LowerIsBetter)
		}
		if c.Absolute == nil && c.Relative == nil {
			return v, fmt.Errorf("%w: thresholds.%s.change: no absolute or relative bound", ErrInvalid, name)
		}
		if base == nil {
			return v, fmt.Errorf("%w: thresholds.%s.change: no baseline to compare with", ErrInvalid, name)
		}
		bv := base[name]
		diff := val - bv
		for _, b := range []struct {
			kind  string
			bound *float64
			got   float64
		}{{"change_absolute", c.Absolute, diff}, {"change_relative", c.Relative, diff / math.Abs(bv)}} {
			if b.bound == nil {
				continue
			}
			ok := b.got >= *b.bound
			if c.Direction == LowerIsBetter {
				ok = b.got <= *b.bound
			}
			bn, ch := Number(bv), Number(b.got)
			what := "change"
			if b.kind == "change_relative" {
				what = "relative change"
			}
			add(Check{Kind: b.kind, Bound: *b.bound, Baseline: &bn, Change: &ch, Passed: ok,
				Message: fmt.Sprintf("%s %s = %.6g vs baseline %.6g: %s %+.6g %s %g (%s)", key, name, val, bv, what, b.got,
					verb(ok, "meets", "fails"), *b.bound, c.Direction)})
		}
	}
	return v, nil
}

func verb(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

func sortedKeys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
