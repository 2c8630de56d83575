package transform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"path"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/onnxpb"
	xf "github.com/mlsteps/mlsteps/components/transform"
	"github.com/mlsteps/mlsteps/steps/step"
)

// Version of the transform step; it goes into lineage and cache keys.
const Version = "0.1.0"

// Payload files of the TransformGraph artifact.
const (
	FileJSON = "transform.json"
	FileONNX = "transform.onnx"
)

// TransformGraph properties, as written in the sidecar.
const (
	PropInputs       = "inputs"
	PropOutput       = "output"
	PropFeatureOrder = "feature_order"
	PropOpset        = "opset"
	PropIRVersion    = "ir_version"
	PropLabel        = "label"
	PropPassthrough  = "passthrough"
)

// InputInfo describes one named input of transform.onnx.
type InputInfo struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// ONNXType is the input tensor's type: tensor(double) or tensor(string), shape [N,1].
	ONNXType string `json:"onnx_type"`
}

// Spec is the transform step's contract.
func Spec() *step.Spec {
	return &step.Spec{
		Name:    "transform",
		Version: Version,
		Summary: "fit preprocessing on the train split and export it as an ONNX graph, then transform every split",
		Description: "Reads a transform spec (YAML: per feature a chain of impute, zscore, scale_to_0_1, scale_by_min_max, " +
			"log1p, clip, bucketize, vocabulary, one_hot, hash_bucket, cross), checks it against the Dataset's columns before " +
			"reading any data, fits its analyzers on the train split in streaming passes, and writes a TransformGraph " +
			"(transform.json with every fitted value, transform.onnx with the same preprocessing) and the transformed Dataset " +
			"(one float32 column per output feature, plus the label and passthrough columns, splits kept), like TFX's Transform.",
		Inputs: []step.Port{
			{Name: "examples", Type: artifacts.TypeDataset, Description: "the rows to fit on (train split) and transform (every split)"},
			{Name: "schema", Type: artifacts.TypeSchema, Optional: true, Description: "recorded as lineage; column types are read from the Dataset"},
			{Name: "transform_graph", Type: artifacts.TypeTransformGraph, Optional: true, Description: "a fitted TransformGraph (from transform-fit): apply it, fit nothing (no --spec); then transform shards by part files"},
		},
		Outputs: []step.Port{
			{Name: "transform_graph", Type: artifacts.TypeTransformGraph, Description: "transform.json and transform.onnx (with --in transform_graph, a copy of it)"},
			{Name: "transformed_examples", Type: artifacts.TypeDataset, Description: "every split, transformed"},
		},
		Params: []step.Param{
			{Name: "spec", Type: step.String, Description: "the transform spec (YAML) at a local path or blob URL; required unless --in transform_graph gives a fitted graph", Example: "transform.yaml"},
			{Name: "train-split", Type: step.String, Default: "train", Description: "the split analyzers are fitted on", Example: "train"},
		},
		Run:        run,
		ContentKey: specDigest,
		Shard:      applySharding(),
	}
}

// specDigest puts the spec's content into the cache key: the spec is a
// file, not an input artifact.
func specDigest(ctx context.Context, r *step.Run) (map[string]string, error) {
	if r.String("spec") == "" {
		return nil, nil // apply mode: the fitted graph is an input artifact
	}
	data, _, err := readSpec(ctx, r)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	return map[string]string{"spec": hex.EncodeToString(sum[:])}, nil
}

func readSpec(ctx context.Context, r *step.Run) ([]byte, string, error) {
	raw := r.String("spec")
	u, err := artifacts.ParseURI(raw)
	if err != nil {
		return nil, "", step.BadInput(fmt.Errorf("--spec: %w", err))
	}
	data, err := r.Store().ReadAll(ctx, u)
	if err != nil {
		if errors.Is(err, artifacts.ErrNotFound) || errors.Is(err, artifacts.ErrInvalid) {
			return nil, "", step.BadInput(fmt.Errorf("--spec: %w", err))
		}
		return nil, "", fmt.Errorf("read spec %s: %w", artifacts.Redact(raw), err)
	}
	return data, path.Base(u.Path), nil
}

func run(ctx context.Context, r *step.Run) error {
	if fitted := r.Input("transform_graph"); fitted != nil {
		return runApply(ctx, r, fitted)
	}
	if r.String("spec") == "" {
		return step.Usagef("--spec is required, unless --in transform_graph=URI gives a fitted graph to apply")
	}
	if _, sharded := r.Shard(); sharded {
		return step.BadInput(errors.New("transform shards only when it applies a fitted graph: fit with transform-fit " +
			"(its analyzers shard), then give its output to transform as --in transform_graph=URI"))
	}
	data, name, err := readSpec(ctx, r)
	if err != nil {
		return err
	}
	examples := r.Input("examples")
	g, err := compile(examples, name, data, r.String("train-split"))
	if err != nil {
		return err
	}
	// Everything above read only the spec and the sidecar; data starts here.
	train := r.String("train-split")
	src := func() iter.Seq2[arrow.RecordBatch, error] {
		return examples.Records(ctx, train, artifacts.ReadOptions{Columns: inputNames(g)})
	}
	if err := xf.Fit(ctx, g, src); err != nil {
		return specErr(err)
	}
	model, err := g.ONNX()
	if err != nil {
		return err
	}
	if err := writeGraph(ctx, r, g, model); err != nil {
		return err
	}
	rows, err := writeExamples(ctx, r, examples, g)
	if err != nil {
		return err
	}
	r.Logger().Info("transformed", "features", len(g.Order), "inputs", len(g.Inputs), "rows", rows)
	return nil
}

// compile checks the spec against the Dataset's sidecar, before any data.
func compile(examples *artifacts.Artifact, name string, data []byte, train string) (*xf.Graph, error) {
	spec, err := xf.ParseSpec(name, data)
	if err != nil {
		return nil, specErr(err)
	}
	cols, err := artifacts.Property[[]artifacts.Column](examples.Sidecar, artifacts.PropColumns)
	if err != nil {
		return nil, step.BadInput(fmt.Errorf("input examples: %w", err))
	}
	split, err := examples.Split(train)
	if err != nil {
		return nil, step.BadInput(fmt.Errorf("--train-split: %w", err))
	}
	inputs := make([]xf.Input, len(cols))
	for i, c := range cols {
		k, _ := xf.KindOf(c.Type)
		inputs[i] = xf.Input{Name: c.Name, Kind: k}
	}
	g, err := xf.Compile(spec, inputs, split.RowCount)
	if err != nil {
		return nil, specErr(err)
	}
	return g, nil
}

func specErr(err error) error {
	var se *xf.SpecError
	if errors.As(err, &se) {
		return step.BadInput(err)
	}
	return err
}

func inputNames(g *xf.Graph) []string {
	names := make([]string, len(g.Inputs))
	for i, in := range g.Inputs {
		names[i] = in.Name
	}
	return names
}

func writeGraph(ctx context.Context, r *step.Run, g *xf.Graph, m *onnxpb.ModelProto) error {
	w, err := r.Output(ctx, "transform_graph")
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	if err := w.WriteFile(ctx, FileJSON, append(js, '\n')); err != nil {
		return err
	}
	bin, err := onnx.Marshal(m)
	if err != nil {
		return err
	}
	if err := w.WriteFile(ctx, FileONNX, bin); err != nil {
		return err
	}
	infos := make([]InputInfo, len(g.Inputs))
	for i, in := range g.Inputs {
		t := "tensor(double)"
		if in.Kind == xf.Categorical {
			t = "tensor(string)"
		}
		infos[i] = InputInfo{Name: in.Name, Kind: string(in.Kind), ONNXType: t}
	}
	opset := map[string]int64{}
	for _, o := range m.GetOpsetImport() {
		d := o.GetDomain()
		if d == "" {
			d = "ai.onnx"
		}
		opset[d] = o.GetVersion()
	}
	w.SetProperty(PropInputs, infos)
	w.SetProperty(PropOutput, map[string]any{"name": g.Output, "onnx_type": "tensor(float)", "shape": []any{"N", len(g.Order)}})
	w.SetProperty(PropFeatureOrder, g.Order)
	w.SetProperty(PropOpset, opset)
	w.SetProperty(PropIRVersion, m.GetIrVersion())
	w.SetProperty(PropLabel, g.Label)
	w.SetProperty(PropPassthrough, g.Passthrough)
	return nil
}

// writeExamples transforms every split: the feature columns (float32, in
// g.Order), then the label and the passthrough columns as they were.
func writeExamples(ctx context.Context, r *step.Run, examples *artifacts.Artifact, g *xf.Graph) (int64, error) {
	in, err := examples.DatasetSchema(ctx)
	if err != nil {
		return 0, err
	}
	carried := slices.Clone(g.Passthrough)
	if g.Label != "" {
		carried = append([]string{g.Label}, carried...)
	}
	fields := make([]arrow.Field, 0, len(g.Order)+len(carried))
	for _, name := range g.Order {
		fields = append(fields, arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float32})
	}
	for _, name := range carried {
		idx := in.FieldIndices(name)
		if len(idx) == 0 {
			return 0, step.BadInput(fmt.Errorf("input examples: no column %q", name))
		}
		fields = append(fields, in.Field(idx[0]))
	}
	schema := arrow.NewSchema(fields, nil)
	splits, err := examples.Splits()
	if err != nil {
		return 0, err
	}
	names := make([]string, len(splits))
	for i, s := range splits {
		names[i] = s.Name
	}
	w, err := r.Output(ctx, "transformed_examples")
	if err != nil {
		return 0, err
	}
	dw, err := artifacts.NewDatasetWriter(ctx, w, schema, names, artifacts.DatasetOptions{})
	if err != nil {
		return 0, err
	}
	var read []string
	for _, c := range append(inputNames(g), carried...) {
		if !slices.Contains(read, c) {
			read = append(read, c)
		}
	}
	parts := planParts(r, splits)
	var rows int64
	for _, p := range parts {
		for rec, err := range examples.PartRecords(ctx, p.split, p.file, artifacts.ReadOptions{Columns: read}) {
			if err != nil {
				dw.Abandon()
				return 0, err
			}
			out, err := transformBatch(g, schema, carried, rec)
			if err != nil {
				dw.Abandon()
				return 0, fmt.Errorf("split %s: %s: %w", p.split, p.file, err)
			}
			err = dw.Write(p.split, out)
			out.Release()
			if err != nil {
				dw.Abandon()
				return 0, err
			}
			rows += rec.NumRows()
		}
		// One output part per input part, sharded or not: the shards'
		// outputs concatenate into the whole's, file for file.
		if err := dw.EndPart(p.split); err != nil {
			dw.Abandon()
			return 0, err
		}
	}
	return rows, dw.Close()
}

func transformBatch(g *xf.Graph, schema *arrow.Schema, carried []string, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	cols, err := g.Apply(rec)
	if err != nil {
		return nil, err
	}
	arrs := make([]arrow.Array, 0, schema.NumFields())
	defer func() {
		for _, a := range arrs {
			a.Release()
		}
	}()
	b := array.NewFloat32Builder(memory.DefaultAllocator)
	defer b.Release()
	for _, c := range cols {
		b.AppendValues(c, nil)
		arrs = append(arrs, b.NewArray())
	}
	for _, name := range carried {
		a := rec.Column(rec.Schema().FieldIndices(name)[0])
		a.Retain()
		arrs = append(arrs, a)
	}
	return array.NewRecordBatch(schema, arrs, rec.NumRows()), nil
}
