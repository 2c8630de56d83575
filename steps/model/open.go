package model

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/onnxpb"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	xf "github.com/mlsteps/mlsteps/components/transform"
)

// Model is an opened Model artifact: what its properties say, and for a
// keyed model its index. Model bytes are read only when a handler loads.
type Model struct {
	Artifact *artifacts.Artifact
	Sig      Signature
	Meta     Meta
	Keyed    *Index // nil for a single model
}

// Open reads a Model artifact's properties (and index, when keyed).
func Open(ctx context.Context, a *artifacts.Artifact) (*Model, error) {
	if a.Type != artifacts.TypeModel {
		return nil, fmt.Errorf("%s is a %s, not a Model", a.Location(), a.Type)
	}
	m := &Model{Artifact: a}
	format, err := artifacts.Property[string](a.Sidecar, PropFormat)
	if err != nil {
		return nil, err
	}
	if m.Sig, err = artifacts.Property[Signature](a.Sidecar, PropSignature); err != nil {
		return nil, err
	}
	if _, ok := a.Properties[PropName]; ok {
		m.Meta.Name, _ = artifacts.Property[string](a.Sidecar, PropName)
	}
	if _, ok := a.Properties[PropNullsAsMissing]; ok {
		m.Meta.NullsAsMissing, _ = artifacts.Property[bool](a.Sidecar, PropNullsAsMissing)
	}
	if _, ok := a.Properties[PropFeatures]; ok {
		if m.Meta.Features, err = artifacts.Property[map[string][]string](a.Sidecar, PropFeatures); err != nil {
			return nil, err
		}
	}
	if _, ok := a.Properties[PropClasses]; ok {
		if m.Meta.Classes, err = artifacts.Property[[]string](a.Sidecar, PropClasses); err != nil {
			return nil, err
		}
		if m.Meta.ScoresOutput, err = artifacts.Property[string](a.Sidecar, PropScores); err != nil {
			return nil, err
		}
		m.Meta.LabelOutput, _ = artifacts.Property[string](a.Sidecar, PropLabel)
	}
	switch format {
	case FormatONNX:
		if _, ok := a.File(File); !ok {
			return nil, fmt.Errorf("model %s: no %s", a.Location(), File)
		}
	case FormatKeyed:
		data, err := a.ReadFile(ctx, IndexFile)
		if err != nil {
			return nil, err
		}
		var idx Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, fmt.Errorf("model %s: %s: %w", a.Location(), IndexFile, err)
		}
		for key, f := range idx.Models {
			if _, ok := a.File(keyedDir + f); !ok {
				return nil, fmt.Errorf("model %s: key %q names %s, which the artifact does not hold", a.Location(), key, f)
			}
		}
		m.Keyed = &idx
	default:
		return nil, fmt.Errorf("model %s: unknown format %q", a.Location(), format)
	}
	return m, nil
}

// ID names the model in results and metrics: its name (or "model") and
// the first 12 hex digits of its content digest, so two versions of one
// model never share an id.
func (m *Model) ID() string {
	name := m.Meta.Name
	if name == "" {
		name = "model"
	}
	return name + "@" + shortDigest(m.Artifact.Digest)
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}

// Columns lists the example columns the model reads (the key column of a
// keyed model not included).
func (m *Model) Columns() []string { return m.Meta.Columns(m.Sig) }

// HandlerOptions configure the inference handler of a Model.
type HandlerOptions struct {
	ID      string      // model id; Model.ID() when empty
	Session ort.Options // threads, graph optimisation
	// MinBatch and MaxBatch are the batching preferences the handler reports.
	MinBatch, MaxBatch int
	// Transform is a TransformGraph's transform.onnx, fused in front of
	// the model so it takes raw columns.
	Transform []byte
	// MaxModels caps loaded models of a keyed Model (0: no cap); Sort
	// orders a batch's rows by key so each model runs once per batch.
	MaxModels int
	Sort      bool
	// KeyColumn overrides a keyed Model's key column.
	KeyColumn string
}

// Handler returns the inference handler for the model.
func (m *Model) Handler(opts HandlerOptions) (inference.ModelHandler, error) {
	id := opts.ID
	if id == "" {
		id = m.ID()
	}
	base := inference.ONNXHandler{ID: id, Session: opts.Session, MinBatch: opts.MinBatch, MaxBatch: opts.MaxBatch,
		NullAsMissing: m.Meta.NullsAsMissing}
	if len(opts.Transform) == 0 {
		for _, in := range m.Sig.Inputs {
			cols, ok := m.Meta.Features[in.Name]
			if !ok {
				cols = []string{in.Name}
			}
			base.Inputs = append(base.Inputs, inference.Input{Name: in.Name, Columns: cols})
		}
	}
	if len(m.Meta.Classes) > 0 {
		base.Classifier = &inference.Classifier{Classes: m.Meta.Classes, Scores: m.Meta.ScoresOutput, Label: m.Meta.LabelOutput}
	}
	// The transform is parsed once here, not at every (re)load of a
	// keyed model's entities.
	var pre *onnxpb.ModelProto
	if len(opts.Transform) > 0 {
		var err error
		if pre, err = onnx.Unmarshal(opts.Transform); err != nil {
			return nil, fmt.Errorf("transform graph: %w", err)
		}
	}
	if m.Keyed == nil {
		return &fileHandler{base: base, a: m.Artifact, file: File, transform: pre}, nil
	}
	keyCol := opts.KeyColumn
	if keyCol == "" {
		keyCol = m.Keyed.KeyColumn
	}
	byFile := map[string][]string{}
	for key, f := range m.Keyed.Models {
		byFile[f] = append(byFile[f], key)
	}
	h := &inference.KeyedHandler{ID: id, KeyColumn: keyCol, MaxModels: opts.MaxModels, Sort: opts.Sort}
	for _, f := range slices.Sorted(maps.Keys(byFile)) {
		fb := base
		fb.ID = id + "/" + f[:len(f)-len(".onnx")]
		keys := byFile[f]
		slices.Sort(keys)
		h.Models = append(h.Models, inference.KeyModel{Keys: keys,
			Handler: &fileHandler{base: fb, a: m.Artifact, file: keyedDir + f, transform: pre}})
	}
	return h, nil
}

// fileHandler reads its model from the artifact only when loaded, so a
// keyed Model with many entities keeps just the loaded ones in memory.
type fileHandler struct {
	base      inference.ONNXHandler
	a         *artifacts.Artifact
	file      string
	transform *onnxpb.ModelProto // fused in front when set
}

func (f *fileHandler) ModelID() string            { return f.base.ModelID() }
func (f *fileHandler) BatchSizes() (min, max int) { return f.base.BatchSizes() }
func (f *fileHandler) Load(ctx context.Context, m *inference.Metrics) (inference.Model, error) {
	data, err := f.a.ReadFile(ctx, f.file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.file, err)
	}
	if f.transform != nil {
		if data, err = fuse(f.transform, data); err != nil {
			return nil, err
		}
	}
	h := f.base
	h.Model = data
	// A fused TransformGraph imputes: nulls are its missing values.
	h.NullAsMissing = h.NullAsMissing || f.transform != nil
	return h.Load(ctx, m)
}

// Fuse puts a TransformGraph's transform.onnx in front of a model, so the
// result takes the raw columns the transform reads.
func Fuse(transform, model []byte) ([]byte, error) {
	pre, err := onnx.Unmarshal(transform)
	if err != nil {
		return nil, fmt.Errorf("transform graph: %w", err)
	}
	return fuse(pre, model)
}

// fuse is Fuse with the transform parsed (xf.Fuse clones it).
func fuse(pre *onnxpb.ModelProto, model []byte) ([]byte, error) {
	mp, err := onnx.Unmarshal(model)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	fused, err := xf.Fuse(pre, mp, xf.FuseOptions{})
	if err != nil {
		return nil, err
	}
	return onnx.Marshal(fused)
}

// Check loads data in ONNX Runtime (ort.Init must have been called) and
// closes it again: a model that ORT refuses is refused before it is
// stored or pushed.
func Check(data []byte, sig Signature) error {
	if len(sig.Inputs) == 0 || len(sig.Outputs) == 0 {
		return errors.New("model declares no inputs or no outputs")
	}
	ins := make([]string, len(sig.Inputs))
	for i, t := range sig.Inputs {
		ins[i] = t.Name
	}
	outs := make([]string, len(sig.Outputs))
	for i, t := range sig.Outputs {
		outs[i] = t.Name
	}
	s, err := ort.NewSession(data, ins, outs)
	if err != nil {
		return err
	}
	return s.Close()
}
