package stats_test

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/components/stats"
)

func batch(mass []float64, valid []bool, island []string) arrow.RecordBatch {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "Body Mass (g)", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "Island", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Field(0).(*array.Float64Builder).AppendValues(mass, valid)
	b.Field(1).(*array.StringBuilder).AppendValues(island, nil)
	return b.NewRecordBatch()
}

func ExampleAccumulator() {
	// Two shards, as two row groups read by two goroutines would be.
	a, b := stats.New(stats.Options{}), stats.New(stats.Options{})
	r1 := batch([]float64{3750, 3800, 0}, []bool{true, true, false}, []string{"Torgersen", "Biscoe", "Biscoe"})
	r2 := batch([]float64{3250, 4500}, nil, []string{"Dream", "Biscoe"})
	defer r1.Release()
	defer r2.Release()
	if err := a.Add(r1); err != nil {
		fmt.Println(err)
	}
	if err := b.Add(r2); err != nil {
		fmt.Println(err)
	}
	if err := a.Merge(b); err != nil {
		fmt.Println(err)
	}
	ds, err := a.Result("train")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ds.Name, ds.NumExamples, "examples")
	mass := ds.Features[0].NumStats
	fmt.Printf("%s: %s, missing %d, mean %.2f, std_dev %.2f, min %v, max %v\n", ds.Features[0].Name(), ds.Features[0].Type,
		mass.CommonStats.NumMissing, float64(mass.Mean), float64(mass.StdDev), mass.Min, mass.Max)
	island := ds.Features[1].StringStats
	fmt.Printf("%s: %s, unique %d, top %q×%v\n", ds.Features[1].Name(), ds.Features[1].Type,
		island.Unique, island.TopValues[0].Value, island.TopValues[0].Frequency)
	// Output:
	// train 5 examples
	// Body Mass (g): FLOAT, missing 1, mean 3825.00, std_dev 445.11, min 3250, max 4500
	// Island: STRING, unique 3, top "Biscoe"×3
}

func ExampleAccumulator_Join() {
	// Two goroutines, each summarising one column of the same batch.
	rec := batch([]float64{3750, 3800, 4500}, nil, []string{"Torgersen", "Biscoe", "Biscoe"})
	defer rec.Release()
	mass, island := stats.New(stats.Options{}), stats.New(stats.Options{})
	for i, acc := range []*stats.Accumulator{mass, island} {
		one := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{rec.Schema().Field(i)}, nil), []arrow.Array{rec.Column(i)}, rec.NumRows())
		if err := acc.Add(one); err != nil {
			fmt.Println(err)
		}
		one.Release()
	}
	if err := mass.Join(island); err != nil {
		fmt.Println(err)
	}
	ds, err := mass.Result("train")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range ds.Features {
		fmt.Println(f.Name(), f.Type, f.Common().NumNonMissing)
	}
	// Output:
	// Body Mass (g) FLOAT 3
	// Island STRING 3
}

func ExampleDatasetFeatureStatisticsList_IndentedJSON() {
	l := &stats.DatasetFeatureStatisticsList{Datasets: []stats.DatasetFeatureStatistics{{Name: "train", NumExamples: 3}}}
	fmt.Println(string(l.IndentedJSON()))
	// Output:
	// {
	//   "datasets": [
	//     {
	//       "name": "train",
	//       "num_examples": "3",
	//       "features": null
	//     }
	//   ]
	// }
}

func ExampleAccumulator_MarshalBinary() {
	// A shard's state, sent to another process, merged there.
	shard := stats.New(stats.Options{})
	r := batch([]float64{3250, 4500}, nil, []string{"Dream", "Biscoe"})
	defer r.Release()
	if err := shard.Add(r); err != nil {
		fmt.Println(err)
	}
	state, err := shard.MarshalBinary()
	if err != nil {
		fmt.Println(err)
		return
	}
	var back stats.Accumulator
	if err := back.UnmarshalBinary(state); err != nil {
		fmt.Println(err)
		return
	}
	whole := stats.New(stats.Options{})
	r2 := batch([]float64{3750, 3800, 0}, []bool{true, true, false}, []string{"Torgersen", "Biscoe", "Biscoe"})
	defer r2.Release()
	if err := whole.Add(r2); err != nil {
		fmt.Println(err)
	}
	if err := whole.Merge(&back); err != nil {
		fmt.Println(err)
	}
	ds, _ := whole.Result("train")
	fmt.Println(ds.NumExamples, "examples; mean mass", float64(ds.Features[0].NumStats.Mean))
	// Output:
	// 5 examples; mean mass 3825
}
