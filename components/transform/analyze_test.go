package transform_test

import (
	"context"
	"errors"
	"iter"
	"math"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/mlsteps/mlsteps/components/transform"
)

// TestMergeShards: analyzer states fitted on shards and merged equal the
// state fitted on everything (exactly for counts, min and max; to rounding
// for mean and variance; within the sketch's bound for quantiles).
func TestMergeShards(t *testing.T) {
	_, recs := load(t, "movies.json", 500)
	var whole transform.Moments
	wholeQ := transform.NewQuantiles()
	wholeC := transform.Counts[string]{}
	var shards []transform.Moments
	var shardQ []*transform.Quantiles
	var shardC []transform.Counts[string]
	for _, rec := range recs {
		var m transform.Moments
		q := transform.NewQuantiles()
		c := transform.Counts[string]{}
		nums := column(t, rec, "IMDB Rating")
		for _, x := range nums {
			whole.Add(x)
			wholeQ.Add(x)
			m.Add(x)
			q.Add(x)
		}
		for _, s := range strColumn(t, rec, "Major Genre") {
			if s != "" {
				wholeC[s]++
				c[s]++
			}
		}
		shards, shardQ, shardC = append(shards, m), append(shardQ, q), append(shardC, c)
	}
	var merged transform.Moments
	mergedQ := transform.NewQuantiles()
	mergedC := transform.Counts[string]{}
	// Merge in reverse, to show order does not matter.
	for i := len(shards) - 1; i >= 0; i-- {
		merged.Merge(shards[i])
		if err := mergedQ.Merge(shardQ[i]); err != nil {
			t.Fatal(err)
		}
		mergedC.Merge(shardC[i])
	}
	if merged.N != whole.N || merged.Min != whole.Min || merged.Max != whole.Max ||
		math.Abs(merged.Mean-whole.Mean) > 1e-12 || math.Abs(merged.Std()-whole.Std()) > 1e-12 {
		t.Errorf("merged %+v, whole %+v", merged, whole)
	}
	for _, r := range []float64{0.1, 0.5, 0.9} {
		a, _ := mergedQ.Quantile(r)
		b, _ := wholeQ.Quantile(r)
		if a != b {
			t.Errorf("quantile %v: merged %v, whole %v", r, a, b)
		}
	}
	if !slices.Equal(transform.Ranked(mergedC, 0, 1), transform.Ranked(wholeC, 0, 1)) {
		t.Error("merged vocabulary differs")
	}
}

func column(t *testing.T, rec arrow.RecordBatch, name string) []float64 {
	g := fitSpecNoData(t, name, transform.Numeric)
	raw, err := g.RawColumns(rec)
	if err != nil {
		t.Fatal(err)
	}
	return raw[0].Doubles
}

func strColumn(t *testing.T, rec arrow.RecordBatch, name string) []string {
	g := fitSpecNoData(t, name, transform.Categorical)
	raw, err := g.RawColumns(rec)
	if err != nil {
		t.Fatal(err)
	}
	return raw[0].Strings
}

// fitSpecNoData compiles a one-column graph, only to read raw columns.
func fitSpecNoData(t *testing.T, name string, kind transform.Kind) *transform.Graph {
	op := "[log1p]"
	if kind == transform.Categorical {
		op = "[hash_bucket: {num_buckets: 2}]"
	}
	s, err := transform.ParseSpec("t.yaml", []byte("features:\n  \""+name+"\": "+op+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := transform.Compile(s, []transform.Input{{Name: name, Kind: kind}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestFitCancelled: Fit stops with the context's error.
func TestFitCancelled(t *testing.T) {
	schema, recs := load(t, "movies.json", 100)
	s, err := transform.ParseSpec("t.yaml", []byte(moviesSpec))
	if err != nil {
		t.Fatal(err)
	}
	g, err := transform.Compile(s, columns(schema), 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	src := func() iter.Seq2[arrow.RecordBatch, error] {
		return func(yield func(arrow.RecordBatch, error) bool) {
			for i, r := range recs {
				if i == 3 {
					cancel()
				}
				if !yield(r, nil) {
					return
				}
			}
		}
	}
	if err := transform.Fit(ctx, g, src); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fit: %v, want context.Canceled", err)
	}
}

// TestFitNoValues: an analyzer over a column with no value is refused,
// naming the line and the feature.
func TestFitNoValues(t *testing.T) {
	schema, recs := load(t, "movies.json", 1000)
	s, err := transform.ParseSpec("t.yaml", []byte("features:\n  Title: [vocabulary: {frequency_threshold: 1000000}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := transform.Compile(s, columns(schema), 1)
	if err != nil {
		t.Fatal(err)
	}
	err = transform.Fit(context.Background(), g, source(recs))
	var se *transform.SpecError
	if !errors.As(err, &se) || se.Line != 2 || se.Feature != "Title" {
		t.Fatalf("Fit: %v, want a SpecError at line 2 for Title", err)
	}
}
