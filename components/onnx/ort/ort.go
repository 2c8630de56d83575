package ort

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"
)

// EnvLib names the environment variable holding the library's path.
const EnvLib = "MLSTEPS_ORT_LIB"

// LibPath returns $MLSTEPS_ORT_LIB, or else <repoRoot>/.cache/lib/libonnxruntime.so.1
// when repoRoot is not empty; "" when neither is set.
func LibPath(repoRoot string) string {
	if p := os.Getenv(EnvLib); p != "" {
		return p
	}
	if repoRoot == "" {
		return ""
	}
	return filepath.Join(repoRoot, ".cache", "lib", "libonnxruntime.so.1")
}

// ONNX Runtime has one environment per process, so initialising it is the
// one piece of process-wide state here; the first library path wins.
var (
	initOnce sync.Once
	initErr  error
	initLib  string
)

// Init loads the shared library at lib (an absolute path is taken as is)
// and creates the process's ORT environment. Later calls return the first
// call's result; asking for another library then is an error.
func Init(lib string) error {
	abs, err := filepath.Abs(lib)
	if err != nil {
		return fmt.Errorf("onnxruntime library %q: %w", lib, err)
	}
	initOnce.Do(func() {
		initLib = abs
		if _, err := os.Stat(abs); err != nil {
			initErr = fmt.Errorf("onnxruntime library: %w", err)
			return
		}
		ortgo.SetSharedLibraryPath(abs)
		if err := ortgo.InitializeEnvironment(); err != nil {
			initErr = fmt.Errorf("onnxruntime init with %s: %w", abs, err)
		}
	})
	if initErr == nil && abs != initLib {
		return fmt.Errorf("onnxruntime already initialised with %s, not %s", initLib, abs)
	}
	return initErr
}

// Column is one input (or, in Buffers, output) tensor of a batch: exactly
// one of Doubles, Floats, Int64s or Strings is set, holding Rows×Width
// values row-major.
type Column struct {
	Name    string
	Width   int64 // values per row; 0 means 1
	Doubles []float64
	Floats  []float32
	Int64s  []int64
	Strings []string
}

// Result is one output tensor, as float32 (the type every mlsteps graph
// outputs; other numeric types are converted).
type Result struct {
	Name  string
	Shape []int64
	Data  []float32
}

// Session is a loaded model with named inputs and outputs. It is safe for
// concurrent Run calls (ORT sessions are).
type Session struct {
	s       *ortgo.DynamicAdvancedSession
	inputs  []string
	outputs []string
}

// Options tunes a session. The zero value is what NewSession uses: one
// intra-op and one inter-op thread (comparable with single-threaded Go
// code) and ORT's default graph optimisation (all).
type Options struct {
	IntraOpThreads int // 0 means 1
	InterOpThreads int // 0 means 1
	// GraphOptimization is 0 for ORT's default (all), or one of
	// OptDisableAll, OptBasic, OptExtended, OptAll.
	GraphOptimization OptLevel
	// CUDA runs the model on the first CUDA device through ORT's CUDA
	// execution provider; it needs a library built with CUDA and a
	// device, else creating the session fails saying so. Off: CPU.
	CUDA bool
}

// OptLevel is a graph optimisation level.
type OptLevel int

// Graph optimisation levels; OptDefault leaves ORT's default (all).
const (
	OptDefault OptLevel = iota
	OptDisableAll
	OptBasic
	OptExtended
	OptAll
)

// SessionOptions returns o as onnxruntime_go session options, for code
// that drives onnxruntime_go directly and must match a Session's settings
// (the inference benchmarks' raw baseline). The caller destroys them.
func (o Options) SessionOptions() (*ortgo.SessionOptions, error) {
	if !ortgo.IsInitialized() {
		return nil, errors.New("onnxruntime: call ort.Init first")
	}
	opts, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnxruntime session options: %w", err)
	}
	if err := o.apply(opts); err != nil {
		opts.Destroy()
		return nil, err
	}
	return opts, nil
}

func (o Options) apply(opts *ortgo.SessionOptions) error {
	intra, inter := max(o.IntraOpThreads, 1), max(o.InterOpThreads, 1)
	if err := opts.SetIntraOpNumThreads(intra); err != nil {
		return fmt.Errorf("onnxruntime intra-op threads: %w", err)
	}
	if err := opts.SetInterOpNumThreads(inter); err != nil {
		return fmt.Errorf("onnxruntime inter-op threads: %w", err)
	}
	if o.CUDA {
		if err := appendCUDA(opts); err != nil {
			return err
		}
	}
	if o.GraphOptimization == OptDefault {
		return nil
	}
	lvl, ok := map[OptLevel]ortgo.GraphOptimizationLevel{
		OptDisableAll: ortgo.GraphOptimizationLevelDisableAll,
		OptBasic:      ortgo.GraphOptimizationLevelEnableBasic,
		OptExtended:   ortgo.GraphOptimizationLevelEnableExtended,
		OptAll:        ortgo.GraphOptimizationLevelEnableAll,
	}[o.GraphOptimization]
	if !ok {
		return fmt.Errorf("onnxruntime: unknown graph optimisation level %d", o.GraphOptimization)
	}
	if err := opts.SetGraphOptimizationLevel(lvl); err != nil {
		return fmt.Errorf("onnxruntime graph optimisation: %w", err)
	}
	return nil
}

// NewSession loads model (ONNX bytes) after Init. inputs and outputs name
// what Run feeds and fetches, in that order.
func NewSession(model []byte, inputs, outputs []string) (*Session, error) {
	return NewSessionWith(model, inputs, outputs, Options{})
}

// NewSessionWith is NewSession with session options.
func NewSessionWith(model []byte, inputs, outputs []string, o Options) (*Session, error) {
	opts, err := o.SessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	s, err := ortgo.NewDynamicAdvancedSessionWithONNXData(model, inputs, outputs, opts)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime load model: %w", err)
	}
	return &Session{s: s, inputs: inputs, outputs: outputs}, nil
}

// Close frees the session.
func (s *Session) Close() error { return s.s.Destroy() }

// Run feeds rows rows of cols (in the session's input order) and returns
// every output.
func (s *Session) Run(rows int64, cols []Column) ([]Result, error) {
	if len(cols) != len(s.inputs) {
		return nil, fmt.Errorf("onnxruntime run: %d inputs given, the session takes %d", len(cols), len(s.inputs))
	}
	in := make([]ortgo.Value, len(cols))
	defer func() {
		for _, v := range in {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, c := range cols {
		w := c.Width
		if w == 0 {
			w = 1
		}
		shape := ortgo.NewShape(rows, w)
		var (
			v   ortgo.Value
			err error
		)
		switch {
		case c.Doubles != nil:
			v, err = ortgo.NewTensor(shape, c.Doubles)
		case c.Floats != nil:
			v, err = ortgo.NewTensor(shape, c.Floats)
		case c.Int64s != nil:
			v, err = ortgo.NewTensor(shape, c.Int64s)
		case c.Strings != nil:
			var st *ortgo.StringTensor
			st, err = ortgo.NewStringTensor(shape)
			if err == nil {
				v = st
				err = st.SetContents(c.Strings)
			}
		default:
			err = errors.New("no values")
		}
		if err != nil {
			return nil, fmt.Errorf("onnxruntime input %q: %w", c.Name, err)
		}
		in[i] = v
	}
	out := make([]ortgo.Value, len(s.outputs))
	defer func() {
		for _, v := range out {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	if err := s.s.Run(in, out); err != nil {
		return nil, fmt.Errorf("onnxruntime run: %w", err)
	}
	res := make([]Result, len(out))
	for i, v := range out {
		r := Result{Name: s.outputs[i], Shape: v.GetShape()}
		switch t := v.(type) {
		case *ortgo.Tensor[float32]:
			r.Data = append([]float32(nil), t.GetData()...)
		case *ortgo.Tensor[float64]:
			r.Data = convert(t.GetData())
		case *ortgo.Tensor[int64]:
			r.Data = convert(t.GetData())
		case *ortgo.Tensor[int32]:
			r.Data = convert(t.GetData())
		default:
			return nil, fmt.Errorf("onnxruntime output %q: unsupported type %T", s.outputs[i], v)
		}
		res[i] = r
	}
	return res, nil
}

func convert[T float64 | int64 | int32](d []T) []float32 {
	out := make([]float32, len(d))
	for i, v := range d {
		out[i] = float32(v)
	}
	return out
}

// appendCUDA adds the CUDA execution provider, with ORT's defaults.
func appendCUDA(opts *ortgo.SessionOptions) error {
	cuda, err := ortgo.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("onnxruntime: the CUDA execution provider is not available in this library (a CPU build?): %w", err)
	}
	defer cuda.Destroy()
	if err := opts.AppendExecutionProviderCUDA(cuda); err != nil {
		return fmt.Errorf("onnxruntime: the CUDA execution provider cannot start (no CUDA device or libraries?): %w", err)
	}
	return nil
}
