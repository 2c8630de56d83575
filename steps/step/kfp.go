package step

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// KFPLocalRootEnv moves the folder under which KFP's launcher mounts
// artifacts (/gcs, /minio, /s3); tests point it at a temporary folder.
const KFPLocalRootEnv = "MLSTEPS_KFP_LOCAL_ROOT"

// KFPInputPrefix names the string parameter that carries an input given as
// a literal URI rather than as an upstream task's artifact.
const KFPInputPrefix = "in-"

// KFPPropertySep joins an output and a property key into the name of an
// output parameter (KFP parameter names take no dots).
const KFPPropertySep = "__"

// KFPMergePrefix names a merge component's input artifact list: the
// partials of one output, collected from a ParallelFor of shards.
const KFPMergePrefix = "merge-"

// KFPShardParam is the parameter that carries a shard task's I/N.
const KFPShardParam = "shard"

// KFPChannelPrefix marks task inputs that only feed a trigger condition.
const KFPChannelPrefix = "pipelinechannel--"

// KFPExecution is a step run under KFP v2's launcher: the executor input
// it was given, turned into an Invocation, and where to write the result.
type KFPExecution struct {
	input *pipelinespec.ExecutorInput
	// outputURIs are KFP's URIs of the outputs (what the UI shows).
	outputURIs map[string]string
}

// FromKFP reads KFP's executor input ({{$}} in the component's args): input
// artifacts and output artifacts are read and written at the local paths
// the launcher mounts for their URIs; parameters come from parameterValues.
func FromKFP(spec *Spec, executorInput string) (Invocation, *KFPExecution, error) {
	var in pipelinespec.ExecutorInput
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(executorInput), &in); err != nil {
		return Invocation{}, nil, Usagef("--kfp-executor-input: %v", err)
	}
	inv := Invocation{Inputs: map[string]string{}, Outputs: map[string]string{}, Params: map[string]any{}}
	x := &KFPExecution{input: &in, outputURIs: map[string]string{}}
	for name, list := range in.GetInputs().GetArtifacts() {
		if output, ok := strings.CutPrefix(name, KFPMergePrefix); ok && spec.Shard != nil {
			if inv.Merge == nil {
				inv.Merge = map[string][]string{}
			}
			for _, a := range list.GetArtifacts() {
				p, err := kfpLocal(a.GetUri())
				if err != nil {
					return inv, nil, Usagef("kfp input %s: %v", name, err)
				}
				inv.Merge[output] = append(inv.Merge[output], p)
			}
			continue
		}
		if len(list.GetArtifacts()) != 1 {
			return inv, nil, Usagef("kfp input %s: want one artifact, got %d", name, len(list.GetArtifacts()))
		}
		p, err := kfpLocal(list.GetArtifacts()[0].GetUri())
		if err != nil {
			return inv, nil, Usagef("kfp input %s: %v", name, err)
		}
		inv.Inputs[name] = p
	}
	for name, v := range in.GetInputs().GetParameterValues() {
		if strings.HasPrefix(name, KFPChannelPrefix) {
			continue // a condition's input, for KFP's driver only
		}
		if name == KFPShardParam && spec.Shard != nil {
			sh, err := ParseShard(kfpText(v))
			if err != nil {
				return inv, nil, err
			}
			inv.Shard = &sh
			continue
		}
		if port, ok := strings.CutPrefix(name, KFPInputPrefix); ok {
			if s := v.GetStringValue(); s != "" {
				inv.Inputs[port] = s
			}
			continue
		}
		p, ok := spec.Param(name)
		if !ok {
			return inv, nil, Usagef("kfp parameter %s: %s has no such parameter", name, spec.Name)
		}
		text := kfpText(v)
		val, err := ParseValue(p, text)
		if err != nil {
			return inv, nil, err
		}
		inv.Params[name] = val
	}
	for name, list := range in.GetOutputs().GetArtifacts() {
		if len(list.GetArtifacts()) != 1 {
			return inv, nil, Usagef("kfp output %s: want one artifact, got %d", name, len(list.GetArtifacts()))
		}
		uri := list.GetArtifacts()[0].GetUri()
		p, err := kfpLocal(uri)
		if err != nil {
			return inv, nil, Usagef("kfp output %s: %v", name, err)
		}
		inv.Outputs[name] = p
		x.outputURIs[name] = uri
	}
	return inv, x, nil
}

// kfpText renders a parameter value as its flag text.
func kfpText(v *structpb.Value) string {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		if k.NumberValue == math.Trunc(k.NumberValue) && math.Abs(k.NumberValue) < 1<<53 {
			return strconv.FormatInt(int64(k.NumberValue), 10)
		}
		return strconv.FormatFloat(k.NumberValue, 'g', -1, 64)
	case *structpb.Value_BoolValue:
		return strconv.FormatBool(k.BoolValue)
	case *structpb.Value_StringValue:
		return k.StringValue
	}
	data, _ := protojson.Marshal(v)
	return string(data)
}

// kfpLocal maps a KFP artifact URI to the local path its launcher mounts
// (gs://b/k → /gcs/b/k, minio://b/k → /minio/b/k, s3://b/k → /s3/b/k).
func kfpLocal(uri string) (string, error) {
	root := os.Getenv(KFPLocalRootEnv)
	if root == "" {
		root = "/"
	}
	for scheme, dir := range map[string]string{"gs://": "gcs", "minio://": "minio", "s3://": "s3"} {
		if rest, ok := strings.CutPrefix(uri, scheme); ok {
			return "file://" + filepath.Join(root, dir, filepath.FromSlash(rest)), nil
		}
	}
	if strings.HasPrefix(uri, "file://") || strings.HasPrefix(uri, "/") {
		return uri, nil
	}
	return "", fmt.Errorf("URI %q: KFP's launcher mounts gs://, minio:// and s3://", uri)
}

// WriteOutput writes KFP's executor output file: each output artifact with
// its URI and metadata (type, digest, scalar properties), so the KFP UI and
// ML Metadata show them.
func (x *KFPExecution) WriteOutput(res Result) error {
	path := x.input.GetOutputs().GetOutputFile()
	if path == "" {
		return nil
	}
	out := &pipelinespec.ExecutorOutput{Artifacts: map[string]*pipelinespec.ArtifactList{}, ParameterValues: map[string]*structpb.Value{}}
	// Output parameters OUTPUT.KEY carry scalar properties for conditions.
	for pname := range x.input.GetOutputs().GetParameters() {
		output, key, ok := strings.Cut(pname, KFPPropertySep)
		if v, found := res.Properties[output][key]; ok && found {
			out.ParameterValues[pname] = structpb.NewStringValue(PropertyText(v))
		}
	}
	for name, uri := range x.outputURIs {
		md := map[string]any{"mlsteps_digest": res.Digests[name], "mlsteps_execution_id": res.ExecutionID}
		for k, v := range res.Properties[name] {
			if i, ok := v.(int64); ok {
				v = float64(i)
			}
			md[k] = v
		}
		st, err := structpb.NewStruct(md)
		if err != nil {
			return fmt.Errorf("kfp output %s metadata: %w", name, err)
		}
		out.Artifacts[name] = &pipelinespec.ArtifactList{Artifacts: []*pipelinespec.RuntimeArtifact{{Name: name, Uri: uri, Metadata: st}}}
	}
	data, err := protojson.Marshal(out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("kfp executor output: %w", err)
	}
	return os.WriteFile(path, data, 0o644)
}
