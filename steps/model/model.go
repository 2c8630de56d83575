// Package model reads and writes the Model artifact, shared by the steps
// that make models (import-model, train) and those that run them (infer,
// evaluate, deploy).
//
// A Model artifact holds model.onnx, or a keyed set of per-entity models
// (models/<file>.onnx with models/index.json mapping keys to files), and
// properties that say how to feed and read it: the ONNX signature, which
// columns feed which input, and for classifiers the class names and the
// outputs holding scores and the label. Everything a runner needs is in
// the artifact, so inference needs no side configuration.
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
	"github.com/mlsteps/mlsteps/components/onnx"
	"github.com/mlsteps/mlsteps/components/onnx/onnxpb"
)

// Payload files.
const (
	File      = "model.onnx"
	IndexFile = "models/index.json"
	keyedDir  = "models/"
)

// Properties, as written in the sidecar.
const (
	PropFormat    = "format" // FormatONNX or FormatKeyed
	PropName      = "name"
	PropSignature = "signature"
	PropFeatures  = "features"
	PropClasses   = "classes"
	PropScores    = "scores_output"
	PropLabel     = "label_output"
	PropKeyColumn = "key_column"
	PropKeys      = "keys"
	PropByteSize  = "model_byte_size"
	// PropNullsAsMissing marks a model that takes nulls as missing values
	// (NaN for numbers, "" for strings): one with its preprocessing fused
	// in front, which imputes them.
	PropNullsAsMissing = "nulls_as_missing"
)

// Formats of the payload.
const (
	FormatONNX  = "onnx"
	FormatKeyed = "keyed-onnx"
)

// Metadata keys a training script may set in the ONNX model's
// metadata_props, read when the producer says nothing else.
const (
	MetaClasses  = "mlsteps.classes"  // JSON list of class names
	MetaFeatures = "mlsteps.features" // JSON list (the one input) or object input -> list
)

// Tensor describes one input or output: its ONNX type and shape, with
// symbolic dimensions (the batch axis) as their names.
type Tensor struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Shape []any  `json:"shape"`
}

// Signature is a model's interface as ONNX declares it.
type Signature struct {
	Inputs    []Tensor         `json:"inputs"`
	Outputs   []Tensor         `json:"outputs"`
	Opset     map[string]int64 `json:"opset"`
	IRVersion int64            `json:"ir_version"`
}

// Meta is what a producer knows of a model beyond its ONNX file.
type Meta struct {
	// Name is a short human name for model ids ("penguins-mlp").
	Name string
	// Features maps a model input to the columns that feed it, in order;
	// an input left out is fed by the column of its own name.
	Features map[string][]string
	// Classes names the classes of a classifier, in score order.
	Classes []string
	// ScoresOutput holds per-class scores, LabelOutput the class index;
	// both are found from the signature when empty.
	ScoresOutput, LabelOutput string
	// NullsAsMissing says the model imputes: nulls are fed to it as
	// missing values instead of being dead letters.
	NullsAsMissing bool
}

// Index maps entity keys to model files of a keyed Model; several keys
// may share one file.
type Index struct {
	KeyColumn string            `json:"key_column"`
	Models    map[string]string `json:"models"`
	// Entities holds, per key, what the trainer that made the set knows
	// of it (rows used, training metrics); absent for imported sets.
	Entities map[string]any `json:"entities,omitempty"`
}

// Inspect reads a model's signature and its metadata_props.
func Inspect(data []byte) (Signature, map[string]string, error) {
	m, err := onnx.Unmarshal(data)
	if err != nil {
		return Signature{}, nil, err
	}
	g := m.GetGraph()
	if g == nil {
		return Signature{}, nil, errors.New("onnx model has no graph")
	}
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	sig := Signature{Opset: map[string]int64{}, IRVersion: m.GetIrVersion()}
	for _, v := range g.GetInput() {
		if !inits[v.GetName()] {
			sig.Inputs = append(sig.Inputs, tensorOf(v))
		}
	}
	for _, v := range g.GetOutput() {
		sig.Outputs = append(sig.Outputs, tensorOf(v))
	}
	for _, o := range m.GetOpsetImport() {
		d := o.GetDomain()
		if d == "" {
			d = "ai.onnx"
		}
		sig.Opset[d] = o.GetVersion()
	}
	if len(sig.Inputs) == 0 || len(sig.Outputs) == 0 {
		return sig, nil, errors.New("onnx model declares no inputs or no outputs")
	}
	props := map[string]string{}
	for _, p := range m.GetMetadataProps() {
		props[p.GetKey()] = p.GetValue()
	}
	return sig, props, nil
}

func tensorOf(v *onnxpb.ValueInfoProto) Tensor {
	t := Tensor{Name: v.GetName(), Shape: []any{}}
	switch {
	case v.GetType().GetTensorType() != nil:
		tt := v.GetType().GetTensorType()
		elem := onnxpb.TensorProto_DataType(tt.GetElemType())
		t.Type = "tensor(" + strings.ToLower(elem.String()) + ")"
		for _, d := range tt.GetShape().GetDim() {
			switch {
			case d.GetDimParam() != "":
				t.Shape = append(t.Shape, d.GetDimParam())
			case d.GetDimValue() > 0:
				t.Shape = append(t.Shape, d.GetDimValue())
			default:
				t.Shape = append(t.Shape, "?")
			}
		}
	case v.GetType().GetSequenceType() != nil:
		t.Type = "seq"
	case v.GetType().GetMapType() != nil:
		t.Type = "map"
	default:
		t.Type = "unknown"
	}
	return t
}

// width is the declared values per row of a [N] or [N,W] tensor: 1 for
// [N], W for a known second axis, 0 when it is not known.
func (t Tensor) width() int {
	switch len(t.Shape) {
	case 0, 1:
		return 1
	case 2:
		if n, ok := t.Shape[1].(int64); ok {
			return int(n)
		}
		if n, ok := t.Shape[1].(float64); ok { // read back from JSON
			return int(n)
		}
	}
	return 0
}

// Resolve completes meta from the model's metadata_props and signature,
// and checks it: every feature input exists, a classifier has a scores
// output as wide as its classes. It never reads data.
func Resolve(sig Signature, props map[string]string, meta Meta) (Meta, error) {
	if len(meta.Classes) == 0 && props[MetaClasses] != "" {
		if err := json.Unmarshal([]byte(props[MetaClasses]), &meta.Classes); err != nil {
			return meta, fmt.Errorf("metadata %s: %w", MetaClasses, err)
		}
	}
	if meta.Features == nil && props[MetaFeatures] != "" {
		raw := []byte(props[MetaFeatures])
		var list []string
		if err := json.Unmarshal(raw, &list); err == nil {
			if len(sig.Inputs) != 1 {
				return meta, fmt.Errorf("metadata %s lists columns but the model has %d inputs: map input names to columns", MetaFeatures, len(sig.Inputs))
			}
			meta.Features = map[string][]string{sig.Inputs[0].Name: list}
		} else if err := json.Unmarshal(raw, &meta.Features); err != nil {
			return meta, fmt.Errorf("metadata %s: want a JSON list or object of lists: %w", MetaFeatures, err)
		}
	}
	for in, cols := range meta.Features {
		t, ok := find(sig.Inputs, in)
		if !ok {
			return meta, fmt.Errorf("features name input %q; the model's inputs are %s", in, names(sig.Inputs))
		}
		if w := t.width(); w > 0 && w != len(cols) {
			return meta, fmt.Errorf("input %q takes %d values per row, %d columns given (%s)", in, w, len(cols), strings.Join(cols, ", "))
		}
	}
	for _, in := range sig.Inputs {
		if _, ok := meta.Features[in.Name]; !ok && in.width() != 1 {
			return meta, fmt.Errorf("input %q takes %v values per row: say which columns feed it", in.Name, in.Shape)
		}
	}
	if len(meta.Classes) == 0 {
		return meta, nil
	}
	if meta.ScoresOutput == "" {
		for _, o := range sig.Outputs {
			if (o.Type == "tensor(float)" || o.Type == "tensor(double)") && o.width() == len(meta.Classes) && len(o.Shape) == 2 {
				meta.ScoresOutput = o.Name
				break
			}
		}
		if meta.ScoresOutput == "" {
			return meta, fmt.Errorf("a classifier of %d classes needs a [N,%d] float output of scores; the outputs are %s", len(meta.Classes), len(meta.Classes), describe(sig.Outputs))
		}
	}
	s, ok := find(sig.Outputs, meta.ScoresOutput)
	if !ok {
		return meta, fmt.Errorf("scores output %q: the model's outputs are %s", meta.ScoresOutput, names(sig.Outputs))
	}
	if w := s.width(); w > 0 && w != len(meta.Classes) {
		return meta, fmt.Errorf("scores output %q has %d values per row for %d classes", s.Name, w, len(meta.Classes))
	}
	if meta.LabelOutput == "" {
		for _, o := range sig.Outputs {
			if o.Type == "tensor(int64)" && o.width() == 1 {
				meta.LabelOutput = o.Name
				break
			}
		}
	} else if _, ok := find(sig.Outputs, meta.LabelOutput); !ok {
		return meta, fmt.Errorf("label output %q: the model's outputs are %s", meta.LabelOutput, names(sig.Outputs))
	}
	return meta, nil
}

func find(ts []Tensor, name string) (Tensor, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

func names(ts []Tensor) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = fmt.Sprintf("%q", t.Name)
	}
	return strings.Join(out, ", ")
}

func describe(ts []Tensor) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = fmt.Sprintf("%s %s %v", t.Name, t.Type, t.Shape)
	}
	return strings.Join(out, "; ")
}

// Columns lists the example columns the model reads, in signature order.
func (m Meta) Columns(sig Signature) []string {
	var cols []string
	for _, in := range sig.Inputs {
		if fs, ok := m.Features[in.Name]; ok {
			cols = append(cols, fs...)
		} else {
			cols = append(cols, in.Name)
		}
	}
	return cols
}

func setProps(w *artifacts.Writer, sig Signature, meta Meta) {
	w.SetProperty(PropSignature, sig)
	if meta.Name != "" {
		w.SetProperty(PropName, meta.Name)
	}
	if meta.NullsAsMissing {
		w.SetProperty(PropNullsAsMissing, true)
	}
	if len(meta.Features) > 0 {
		w.SetProperty(PropFeatures, meta.Features)
	}
	if len(meta.Classes) > 0 {
		w.SetProperty(PropClasses, meta.Classes)
		w.SetProperty(PropScores, meta.ScoresOutput)
		if meta.LabelOutput != "" {
			w.SetProperty(PropLabel, meta.LabelOutput)
		}
	}
}

// Prepared is a model checked and ready to write: its bytes, signature
// and completed Meta.
type Prepared struct {
	Data []byte
	Sig  Signature
	Meta Meta
}

// Prepare inspects data and resolves meta against it.
func Prepare(data []byte, meta Meta) (Prepared, error) {
	sig, props, err := Inspect(data)
	if err != nil {
		return Prepared{}, err
	}
	meta, err = Resolve(sig, props, meta)
	if err != nil {
		return Prepared{}, err
	}
	return Prepared{Data: data, Sig: sig, Meta: meta}, nil
}

// Write stores one model in a Model artifact writer (not committed).
func Write(ctx context.Context, w *artifacts.Writer, p Prepared) error {
	if err := w.WriteFile(ctx, File, p.Data); err != nil {
		return err
	}
	w.SetProperty(PropFormat, FormatONNX)
	w.SetProperty(PropByteSize, len(p.Data))
	setProps(w, p.Sig, p.Meta)
	return nil
}

// WriteKeyed stores per-entity models: files maps a file name (no
// folders, ending in .onnx) to its prepared model, idx the keys to files.
// Every model must share the first one's signature and meta, so one
// runner configuration serves them all.
func WriteKeyed(ctx context.Context, w *artifacts.Writer, files map[string]Prepared, idx Index) error {
	if idx.KeyColumn == "" {
		return errors.New("keyed model: no key column")
	}
	if len(idx.Models) == 0 {
		return errors.New("keyed model: no keys")
	}
	for key, f := range idx.Models {
		if _, ok := files[f]; !ok {
			return fmt.Errorf("keyed model: key %q names %q, which is not among the model files", key, f)
		}
	}
	order := slices.Sorted(maps.Keys(files))
	first := files[order[0]]
	var total int
	for _, name := range order {
		p := files[name]
		if err := artifacts.CheckFileName(name); err != nil || strings.Contains(name, "/") || !strings.HasSuffix(name, ".onnx") {
			return fmt.Errorf("keyed model: bad file name %q (want NAME.onnx)", name)
		}
		if err := sameInterface(first, p); err != nil {
			return fmt.Errorf("keyed model %s differs from %s: %w", name, order[0], err)
		}
		if err := w.WriteFile(ctx, keyedDir+name, p.Data); err != nil {
			return err
		}
		total += len(p.Data)
	}
	if err := w.WriteJSON(ctx, IndexFile, idx); err != nil {
		return err
	}
	w.SetProperty(PropFormat, FormatKeyed)
	w.SetProperty(PropKeyColumn, idx.KeyColumn)
	w.SetProperty(PropKeys, slices.Sorted(maps.Keys(idx.Models)))
	w.SetProperty(PropByteSize, total)
	setProps(w, first.Sig, first.Meta)
	return nil
}

func sameInterface(a, b Prepared) error {
	if fmt.Sprint(a.Sig.Inputs) != fmt.Sprint(b.Sig.Inputs) {
		return fmt.Errorf("inputs %s, not %s", describe(b.Sig.Inputs), describe(a.Sig.Inputs))
	}
	if !slices.Equal(a.Meta.Classes, b.Meta.Classes) {
		return fmt.Errorf("classes %v, not %v", b.Meta.Classes, a.Meta.Classes)
	}
	if a.Meta.ScoresOutput != b.Meta.ScoresOutput || a.Meta.LabelOutput != b.Meta.LabelOutput {
		return errors.New("other classifier outputs")
	}
	if fmt.Sprint(a.Meta.Features) != fmt.Sprint(b.Meta.Features) {
		return errors.New("other feature columns")
	}
	return nil
}

// ParseFeatures reads which columns feed which inputs, as
// INPUT=COL,COL;INPUT2=COL or as a JSON object of lists; "" is none.
func ParseFeatures(s string) (map[string][]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	out := map[string][]string{}
	if strings.HasPrefix(s, "{") {
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			return nil, err
		}
		return out, nil
	}
	for _, part := range strings.Split(s, ";") {
		in, cols, ok := strings.Cut(part, "=")
		in = strings.TrimSpace(in)
		if !ok || in == "" || strings.TrimSpace(cols) == "" {
			return nil, fmt.Errorf("%q: want INPUT=COL,COL;INPUT2=COL", part)
		}
		for _, c := range strings.Split(cols, ",") {
			out[in] = append(out[in], strings.TrimSpace(c))
		}
	}
	return out, nil
}
