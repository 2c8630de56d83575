package onnx_test

import (
	"fmt"

	"github.com/mlsteps/mlsteps/components/onnx"
)

func ExampleGraph() {
	g := onnx.NewGraph("double_it")
	x := g.Input("x (mm)", onnx.Double, -1, 1)
	y := g.Op("Mul", x, g.ConstDouble(2))
	g.NodeTo("", "Cast", []string{y}, []string{"y"}, onnx.AttrInt("to", int64(onnx.Float)))
	g.Output("y", onnx.Float, -1, 1)
	m := g.Model()
	data, err := onnx.Marshal(m)
	if err != nil {
		panic(err)
	}
	back, err := onnx.Unmarshal(data)
	if err != nil {
		panic(err)
	}
	for _, n := range back.GetGraph().GetNode() {
		fmt.Println(n.GetOpType(), n.GetInput(), n.GetOutput())
	}
	fmt.Println(back.GetOpsetImport()[0].GetVersion())
	// Output:
	// Mul [x (mm) c__1] [Mul__2]
	// Cast [Mul__2] [y]
	// 17
}
