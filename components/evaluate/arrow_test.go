package evaluate_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/evaluate"
)

func TestRecordFeatures(t *testing.T) {
	dict := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "island", Type: arrow.BinaryTypes.String},
		{Name: "year", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "sex", Type: dict},
		{Name: "adult", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "mass", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"Biscoe", "Dream", "Biscoe"}, nil)
	b.Field(1).(*array.Int64Builder).AppendValues([]int64{2007, 0, 2009}, []bool{true, false, true})
	db := b.Field(2).(*array.BinaryDictionaryBuilder)
	for _, s := range []string{"MALE", "FEMALE", "MALE"} {
		if err := db.AppendString(s); err != nil {
			t.Fatal(err)
		}
	}
	b.Field(3).(*array.BooleanBuilder).AppendValues([]bool{true, false, true}, nil)
	b.Field(4).(*array.Float64Builder).AppendValues([]float64{1, 2, 3}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()

	got, err := evaluate.RecordFeatures(rec, []string{"island", "year", "sex", "adult"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"island": {"Biscoe", "Dream", "Biscoe"},
		"year":   {"2007", evaluate.NullValue, "2009"},
		"sex":    {"MALE", "FEMALE", "MALE"},
		"adult":  {"true", "false", "true"},
	}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
	for _, tc := range []struct{ col, want string }{{"mass", `column "mass": type float64 cannot be sliced by`}, {"species", `no column "species"`}} {
		if _, err := evaluate.RecordFeatures(rec, []string{tc.col}); !errors.Is(err, evaluate.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrInvalid with %q", tc.col, err, tc.want)
		}
	}
}

// TestProbabilitySums checks the warning naming rows whose probabilities
// do not sum to 1, across merged evaluators.
func TestProbabilitySums(t *testing.T) {
	o := evaluate.Options{Classes: []string{"a", "b", "c"}, Slices: [][]string{{"island"}, {"sex", "island"}}}
	if f := o.Features(); !slices.Equal(f, []string{"island", "sex"}) {
		t.Errorf("features %q", f)
	}
	o.Slices = nil
	e1, _ := evaluate.New(o)
	e2, _ := evaluate.New(o)
	if err := e1.Add(evaluate.Batch{Labels: []int{0, 1}, Scores: []float64{0.5, 0.5, 0, 0.2, 0.2, 0.2}}); err != nil {
		t.Fatal(err)
	}
	if err := e2.Add(evaluate.Batch{Labels: []int{2, 2}, Scores: []float64{0.9, 0.9, 0.9, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := e1.Merge(e2); err != nil {
		t.Fatal(err)
	}
	res, err := e1.Result(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := "the class probabilities of 2 rows do not sum to 1 (within 1e-06); the first are rows 1 2"; len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], want) {
		t.Errorf("warnings %q, want one with %q", res.Warnings, want)
	}
}
