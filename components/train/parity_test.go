package train_test

import (
	"context"
	"testing"

	"github.com/mlsteps/mlsteps/components/train"
)

// TestONNXMatchesGo fits every trainer on real data and checks ONNX
// Runtime's predictions on the exported model equal Predict's.
func TestONNXMatchesGo(t *testing.T) {
	ctx := context.Background()
	penguins := vega(t, "penguins.json", penguinFeatures, "Species")
	cars := vega(t, "cars.json", carFeatures, "Miles_per_Gallon")
	// Adelie or not: a binary task on the same rows.
	adelie := rows(penguins, func(int, []float64) bool { return true })
	adelie.Classes = []string{"other", "Adelie"}
	for i, y := range penguins.Y {
		adelie.Y[i] = 0
		if y == 0 {
			adelie.Y[i] = 1
		}
	}
	fits := []struct {
		name string
		data train.Data
		fit  func(train.Data) (train.Model, error)
	}{
		{"linear/cars", complete(cars), func(d train.Data) (train.Model, error) {
			return train.FitLinear(ctx, d, train.LinearOptions{Lambda: 1})
		}},
		{"logistic/penguins", complete(penguins), func(d train.Data) (train.Model, error) {
			return train.FitLogistic(ctx, d, train.LogisticOptions{Lambda: 1})
		}},
		{"logistic/adelie", complete(adelie), func(d train.Data) (train.Model, error) {
			return train.FitLogistic(ctx, d, train.LogisticOptions{Lambda: 1})
		}},
		{"gbdt/cars", cars, func(d train.Data) (train.Model, error) {
			return train.FitGBDT(ctx, d, nil, train.GBDTOptions{Trees: 50, MaxDepth: 4})
		}},
		{"gbdt/penguins", penguins, func(d train.Data) (train.Model, error) {
			return train.FitGBDT(ctx, d, nil, train.GBDTOptions{Trees: 30, MaxDepth: 3})
		}},
		{"gbdt/adelie", adelie, func(d train.Data) (train.Model, error) {
			return train.FitGBDT(ctx, d, nil, train.GBDTOptions{Trees: 30, MaxDepth: 3})
		}},
	}
	for _, c := range fits {
		t.Run(c.name, func(t *testing.T) {
			m, err := c.fit(c.data)
			if err != nil {
				t.Fatal(err)
			}
			parity(t, m, c.data.X, len(c.data.Features))
		})
	}
}
