package importer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
)

// ModelVersion is the import-model step's version.
const ModelVersion = "0.1.0"

// ModelSpec is the import-model step's contract: bring an ONNX model made
// elsewhere (PyTorch, scikit-learn, XGBoost, ...) into a Model artifact,
// like TFX's Importer.
func ModelSpec() *step.Spec {
	return &step.Spec{
		Name:    "import-model",
		Version: ModelVersion,
		Summary: "import an ONNX model (or a folder of per-entity models) as a Model artifact",
		Description: "Reads an ONNX file, or a folder of NAME.onnx files (a keyed Model: one model per entity, with an optional " +
			"index.json {\"key_column\": ..., \"models\": {KEY: FILE}}; without it each file's name is its key), checks that each " +
			"loads in ONNX Runtime, and records its signature (inputs, outputs, types, shapes, opsets), the columns feeding each " +
			"input and, for classifiers, the class names and which outputs hold scores and the label. Anything not given as a " +
			"parameter is taken from the model's metadata_props (mlsteps.classes, mlsteps.features) or found from the signature.",
		Outputs: []step.Port{
			{Name: "model", Type: artifacts.TypeModel, Description: "model.onnx or models/*.onnx with models/index.json"},
		},
		Params: []step.Param{
			{Name: "source", Type: step.String, Required: true, Description: "an .onnx file or a folder of them, at a local path or blob URL", Example: "model.onnx"},
			{Name: "name", Type: step.String, Default: "", Description: "the model's name in model ids; default: the file or folder name"},
			{Name: "classes", Type: step.String, Default: "", Description: "comma-separated class names, in score order (a classifier)", Example: "Adelie,Chinstrap,Gentoo"},
			{Name: "features", Type: step.String, Default: "", Description: "columns feeding the inputs: INPUT=COL,COL;INPUT2=COL, or JSON; an input left out is fed by its namesake column", Example: "x=Beak Length (mm),Body Mass (g)"},
			{Name: "scores-output", Type: step.String, Default: "", Description: "the [N,classes] output of class scores; default: found from the signature"},
			{Name: "label-output", Type: step.String, Default: "", Description: "the int64 output of class indices; default: found from the signature, else the argmax of the scores"},
			{Name: "key-column", Type: step.String, Default: "", Description: "keyed: the column whose value picks the model (overrides index.json)"},
		},
		Run:        runModel,
		ContentKey: modelDigests,
	}
}

// modelFiles lists the source's files: one .onnx, or a folder's.
func modelFiles(ctx context.Context, r *step.Run) (artifacts.URI, []artifacts.Object, bool, error) {
	raw := r.String("source")
	u, err := artifacts.ParseURI(raw)
	if err != nil {
		return u, nil, false, step.BadInput(fmt.Errorf("--source: %w", err))
	}
	if strings.HasSuffix(u.Path, ".onnx") {
		objs, err := r.Store().Glob(ctx, u)
		if err != nil {
			return u, nil, false, step.BadInput(fmt.Errorf("--source: %w", err))
		}
		return u, objs, false, nil
	}
	objs, err := r.Store().Glob(ctx, u.Join("*"))
	if err != nil {
		return u, nil, false, step.BadInput(fmt.Errorf("--source: %w", err))
	}
	if len(objs) == 0 {
		return u, nil, false, step.BadInput(fmt.Errorf("--source %s: no .onnx file there", artifacts.Redact(raw)))
	}
	return u, objs, true, nil
}

// modelDigests hashes the source files for the cache key.
func modelDigests(ctx context.Context, r *step.Run) (map[string]string, error) {
	_, objs, _, err := modelFiles(ctx, r)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, o := range objs {
		data, err := r.Store().ReadAll(ctx, o.URI)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", artifacts.Redact(o.URI.String()), err)
		}
		sum := sha256.Sum256(data)
		out[o.URI.Base()] = hex.EncodeToString(sum[:])
	}
	return out, nil
}

func runModel(ctx context.Context, r *step.Run) error {
	meta, err := modelMeta(r)
	if err != nil {
		return err
	}
	src, objs, folder, err := modelFiles(ctx, r)
	if err != nil {
		return err
	}
	if meta.Name == "" {
		meta.Name = strings.TrimSuffix(src.Base(), ".onnx")
	}
	if err := ort.InitFound(); err != nil {
		return err
	}
	files := map[string]model.Prepared{}
	var index []byte
	for _, o := range objs {
		name := o.URI.Base()
		data, err := r.Store().ReadAll(ctx, o.URI)
		if err != nil {
			return fmt.Errorf("read %s: %w", artifacts.Redact(o.URI.String()), err)
		}
		if name == "index.json" && folder {
			index = data
			continue
		}
		if !strings.HasSuffix(name, ".onnx") {
			continue
		}
		p, err := model.Prepare(data, meta)
		if err != nil {
			return step.BadInput(fmt.Errorf("model %s: %w", artifacts.Redact(o.URI.String()), err))
		}
		if err := model.Check(p.Data, p.Sig); err != nil {
			return step.BadInput(fmt.Errorf("model %s does not load in ONNX Runtime: %w", artifacts.Redact(o.URI.String()), err))
		}
		files[name] = p
	}
	if len(files) == 0 {
		return step.BadInput(fmt.Errorf("--source %s: no .onnx file there", artifacts.Redact(src.String())))
	}
	w, err := r.Output(ctx, "model")
	if err != nil {
		return err
	}
	if !folder {
		for name, p := range files {
			r.Logger().Info("model imported", "file", name, "inputs", len(p.Sig.Inputs), "outputs", len(p.Sig.Outputs), "classes", len(p.Meta.Classes))
			return model.Write(ctx, w, p)
		}
	}
	idx, err := keyIndex(index, files, r.String("key-column"))
	if err != nil {
		return step.BadInput(fmt.Errorf("--source %s: %w", artifacts.Redact(src.String()), err))
	}
	r.Logger().Info("keyed model imported", "models", len(files), "keys", len(idx.Models), "key_column", idx.KeyColumn)
	return model.WriteKeyed(ctx, w, files, idx)
}

// keyIndex reads index.json, or makes one where each file's name is its key.
func keyIndex(data []byte, files map[string]model.Prepared, keyColumn string) (model.Index, error) {
	var idx model.Index
	if data != nil {
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&idx); err != nil {
			return idx, fmt.Errorf("index.json: %w", err)
		}
	} else {
		idx.Models = map[string]string{}
		for name := range files {
			idx.Models[strings.TrimSuffix(name, path.Ext(name))] = name
		}
	}
	if keyColumn != "" {
		idx.KeyColumn = keyColumn
	}
	if idx.KeyColumn == "" {
		return idx, errors.New("a keyed model needs its key column: give --key-column or key_column in index.json")
	}
	return idx, nil
}

// modelMeta reads what the parameters say about the model.
func modelMeta(r *step.Run) (model.Meta, error) {
	meta := model.Meta{Name: r.String("name"), ScoresOutput: r.String("scores-output"), LabelOutput: r.String("label-output")}
	for _, c := range strings.Split(r.String("classes"), ",") {
		if c = strings.TrimSpace(c); c != "" {
			meta.Classes = append(meta.Classes, c)
		}
	}
	features, err := model.ParseFeatures(r.String("features"))
	if err != nil {
		return meta, step.Usagef("--features: %v", err)
	}
	meta.Features = features
	return meta, nil
}
