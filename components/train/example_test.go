package train_test

import (
	"context"
	"fmt"
	"math"

	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/train"
)

func ExampleFitLinear() {
	// y = 1 + 2·a − b, exactly.
	d := train.Data{
		Features: []string{"a", "b"},
		X:        []float64{0, 0, 1, 0, 0, 1, 2, 3, 3, 1},
		Y:        []float64{1, 3, 0, 2, 6},
	}
	m, err := train.FitLinear(context.Background(), d, train.LinearOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("weights %.3f intercept %.3f\n", m.Weights, m.Intercept)
	p, _ := m.Predict([]float64{10, 5})
	fmt.Printf("prediction %.3f\n", p.Values)
	// Output:
	// weights [2.000 -1.000] intercept 1.000
	// prediction [16.000]
}

func ExampleFitLogistic() {
	d := train.Data{
		Features: []string{"size"},
		X:        []float64{1, 2, 3, 4, 5, 6, 7, 8},
		Y:        []float64{0, 0, 0, 1, 0, 1, 1, 1},
		Classes:  []string{"small", "large"},
	}
	m, err := train.FitLogistic(context.Background(), d, train.LogisticOptions{Lambda: 0.1})
	if err != nil {
		panic(err)
	}
	p, _ := m.Predict([]float64{2, 4.5, 7})
	fmt.Println("converged:", m.Report.Converged)
	for i, l := range p.Labels {
		fmt.Printf("%s %.2f\n", m.Classes[l], p.Probabilities[2*i+1])
	}
	// Output:
	// converged: true
	// small 0.05
	// small 0.50
	// large 0.95
}

func ExampleFitGBDT() {
	// A step function with a missing value on the high side.
	d := train.Data{
		Features: []string{"x"},
		X:        []float64{1, 2, 3, 4, 5, 6, 7, math.NaN()},
		Y:        []float64{0, 0, 0, 0, 10, 10, 10, 10},
	}
	m, err := train.FitGBDT(context.Background(), d, nil, train.GBDTOptions{Trees: 50, MaxDepth: 1, LearningRate: 0.5})
	if err != nil {
		panic(err)
	}
	p, _ := m.Predict([]float64{2, 6, math.NaN()})
	fmt.Printf("%.2f\n", p.Values)
	root := m.Trees[0].Nodes[0]
	fmt.Printf("first split: x <= %v, NaN goes left: %v\n", root.Threshold, root.MissingLeft)

	model, _ := m.ONNX()
	pb, _ := onnx.Unmarshal(model)
	for _, n := range pb.GetGraph().GetNode() {
		fmt.Println(n.GetDomain(), n.GetOpType(), n.GetOutput())
	}
	for _, kv := range pb.GetMetadataProps() {
		fmt.Println(kv.GetKey(), kv.GetValue())
	}
	// Output:
	// [0.00 10.00 10.00]
	// first split: x <= 4.5, NaN goes left: false
	// ai.onnx.ml TreeEnsembleRegressor [prediction]
	// mlsteps.features ["x"]
}
