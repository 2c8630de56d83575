package lineage_test

import (
	"os"

	"github.com/mlsteps/mlsteps/orchestrate/lineage"
)

func ExampleRender() {
	model := lineage.ArtifactID("file:///runs/train/model", "sha256:aaaaaaaaaaaaaaaa")
	data := lineage.ArtifactID("file:///runs/import/examples", "sha256:bbbbbbbbbbbbbbbb")
	g := &lineage.Graph{
		Root: model,
		Artifacts: []*lineage.ArtifactNode{
			{ID: data, URI: "file:///runs/import/examples", Digest: "sha256:bbbbbbbbbbbbbbbb", Type: "Dataset"},
			{ID: model, URI: "file:///runs/train/model", Digest: "sha256:aaaaaaaaaaaaaaaa", Type: "Model"},
		},
		Executions: []*lineage.ExecutionNode{
			{ID: lineage.ExecutionID("e2"), Step: "train", Version: "1.0.0", Status: "succeeded", Parameters: map[string]any{"seed": float64(7)}},
		},
		Edges: []lineage.Edge{
			{From: data, To: lineage.ExecutionID("e2"), Kind: "input", Name: "examples"},
			{From: lineage.ExecutionID("e2"), To: model, Kind: "output", Name: "model"},
		},
	}
	lineage.Render(os.Stdout, g, "text", lineage.Up)
	lineage.Render(os.Stdout, g, "mermaid", lineage.Up)
	// Output:
	// Model aaaaaaaaaaaa file:///runs/train/model
	// └─ made by train 1.0.0 [succeeded] e2  seed=7
	//    └─ examples: Dataset bbbbbbbbbbbb file:///runs/import/examples
	// flowchart LR
	//   a0[/"Dataset bbbbbbbbbbbb<br/>file:///runs/import/examples"/]
	//   a1[/"Model aaaaaaaaaaaa<br/>file:///runs/train/model"/]
	//   e0("train 1.0.0<br/>succeeded")
	//   a0 -->|"examples"| e0
	//   e0 -->|"model"| a1
	//   style a1 stroke-width:3px
}
