package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/inference"
	"github.com/mlsteps/mlsteps/components/oip"
	"github.com/mlsteps/mlsteps/components/onnx/ort"
	"github.com/mlsteps/mlsteps/components/serve"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
)

const serveHelp = `Serves Model artifacts over KServe V2, the Open Inference Protocol (HTTP/JSON):
GET /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/1][/ready],
POST /v2/models/{name}[/versions/1]/infer, and Prometheus metrics at /metrics.

A model takes one tensor per ONNX input, named and typed as the input is
(float FP32, double FP64, int64 INT64, string BYTES), and answers with its raw
ONNX outputs by name (int64 outputs as INT64, the others as FP32): a
classifier's "probs", not labels. Concurrent requests are batched into one
model call (--max-batch rows, waiting at most --max-queue-delay).

--watch NAME=POINTER serves the model a pointer names (a Model artifact, or a
blob holding {"uri": MODEL_URI} or the URI as text) and swaps to the new one
when the pointer moves, between batches: requests in flight do not fail. The
new model must take and give the same tensors.

The address served on is printed as "serving on http://HOST:PORT". SIGTERM
or SIGINT stops accepting requests, finishes those in flight and exits 0.`

func serveCommand(opts options) *cli.Command {
	return &cli.Command{
		Name:        "serve",
		Usage:       "serve models online over KServe V2 / Open Inference Protocol",
		Description: serveHelp,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "model", Usage: "a model to serve, `NAME=URI` of a Model artifact (repeatable)"},
			&cli.StringSliceFlag{Name: "watch", Usage: "a model to serve and reload, `NAME=POINTER` (repeatable)"},
			&cli.DurationFlag{Name: "watch-interval", Value: 5 * time.Second, Usage: "how often --watch pointers are read"},
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "`HOST:PORT` to listen on (port 0: any free port)"},
			&cli.IntFlag{Name: "max-batch", Value: 64, Usage: "most rows in one model call"},
			&cli.DurationFlag{Name: "max-queue-delay", Value: 2 * time.Millisecond, Usage: "longest a request waits for others to join its batch (0: only those already queued join)"},
			&cli.IntFlag{Name: "workers", Value: 1, Usage: "model calls that may run at once, per model"},
			&cli.IntFlag{Name: "threads", Value: 0, Usage: "ONNX Runtime intra-op threads per model (0: its default)"},
			&cli.StringFlag{Name: "max-request-bytes", Value: "8MiB", Usage: "largest request body (B, KiB, MiB, GiB, or KB, MB, GB)"},
			&cli.DurationFlag{Name: "request-timeout", Value: 10 * time.Second, Usage: "longest a request may take; then 504"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, Usage: "longest the requests in flight are waited for on SIGTERM"},
		},
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			logger, err := newLogger(c, opts)
			if err != nil {
				return err
			}
			if c.NArg() > 0 {
				return step.Usagef("serve takes no arguments, got %q", c.Args().First())
			}
			maxBytes, err := parseBytes(c.String("max-request-bytes"))
			if err != nil {
				return step.Usagef("--max-request-bytes: %v", err)
			}
			models, err := namedPairs(c.StringSlice("model"), "--model")
			if err != nil {
				return err
			}
			watches, err := namedPairs(c.StringSlice("watch"), "--watch")
			if err != nil {
				return err
			}
			if len(models)+len(watches) == 0 {
				return step.Usagef("serve needs --model NAME=URI or --watch NAME=POINTER")
			}
			seen := map[string]bool{}
			for _, p := range append(slices.Clone(models), watches...) {
				if seen[p[0]] {
					return step.Usagef("model name %q given twice", p[0])
				}
				seen[p[0]] = true
			}
			if err := ort.InitFound(); err != nil {
				return err
			}
			store := artifacts.NewStore()
			defer store.Close()
			ctx := c.Context
			session := ort.Options{IntraOpThreads: c.Int("threads")}
			var served []serve.Model
			for _, p := range models {
				sm, err := openServed(ctx, store, p[0], p[1], session)
				if err != nil {
					return err
				}
				served = append(served, sm)
			}
			for _, p := range watches {
				sm, err := watchServed(ctx, store, p[0], p[1], c.Duration("watch-interval"), session, logger)
				if err != nil {
					return err
				}
				served = append(served, sm)
			}
			delay := c.Duration("max-queue-delay")
			if delay == 0 {
				delay = -1 // serve.Options' zero is its default; 0 here means no wait
			}
			srv, err := serve.New(ctx, served, serve.Options{MaxBatch: c.Int("max-batch"), MaxQueueDelay: delay,
				Workers: c.Int("workers"), MaxRequestBytes: maxBytes, RequestTimeout: c.Duration("request-timeout"),
				ShutdownTimeout: c.Duration("shutdown-timeout"), Logger: logger})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", c.String("addr"))
			if err != nil {
				return errors.Join(step.BadInput(fmt.Errorf("--addr: %w", err)), srv.Close())
			}
			fmt.Fprintf(opts.Stdout, "serving on http://%s\n", ln.Addr())
			logger.Info("serving", "addr", ln.Addr().String(), "models", len(served))
			err = srv.Serve(ctx, ln)
			logger.Info("stopped", "error", err)
			return errors.Join(err, srv.Close())
		},
	}
}

// namedPairs splits NAME=VALUE flag values.
func namedPairs(vals []string, flag string) ([][2]string, error) {
	out := make([][2]string, 0, len(vals))
	for _, v := range vals {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" || value == "" || strings.Contains(name, "/") {
			return nil, step.Usagef("%s %q: want NAME=URI, NAME without /", flag, v)
		}
		out = append(out, [2]string{name, value})
	}
	return out, nil
}

// parseBytes reads a size such as 8MiB, 512KB or 1048576.
func parseBytes(s string) (int64, error) {
	num := strings.TrimRightFunc(s, func(r rune) bool { return r >= 'A' && r <= 'z' })
	unit := strings.TrimSpace(s[len(num):])
	mult, ok := map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if !ok || err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: want a positive size such as 8MiB", s)
	}
	return n * mult, nil
}

// userError marks a URI that names nothing, or not a Model, as the
// user's mistake (exit 2).
func userError(err error) error {
	if errors.Is(err, artifacts.ErrInvalid) || errors.Is(err, artifacts.ErrNotFound) {
		return step.BadInput(err)
	}
	return err
}

// openModel opens the Model artifact at u.
func openModel(ctx context.Context, store *artifacts.Store, u artifacts.URI) (*model.Model, error) {
	a, err := store.Open(ctx, u, artifacts.TypeModel)
	if err != nil {
		return nil, err
	}
	return model.Open(ctx, a)
}

func openServed(ctx context.Context, store *artifacts.Store, name, raw string, session ort.Options) (serve.Model, error) {
	u, err := artifacts.ParseURI(raw)
	if err != nil {
		return serve.Model{}, step.BadInput(fmt.Errorf("--model %s: %w", name, err))
	}
	m, err := openModel(ctx, store, u)
	if err != nil {
		return serve.Model{}, fmt.Errorf("--model %s: %w", name, userError(err))
	}
	ins, outs, err := tensors(m)
	if err != nil {
		return serve.Model{}, step.BadInput(fmt.Errorf("--model %s: %w", name, err))
	}
	h, err := rawHandler(m, session)
	if err != nil {
		return serve.Model{}, fmt.Errorf("--model %s: %w", name, err)
	}
	return serve.Model{Name: name, Handler: h, Inputs: ins, Outputs: outs}, nil
}

// watchServed serves the model a pointer names, reloading it when the
// pointer moves. The tensors are the first model's; a later one that
// differs is refused (the served model stays).
func watchServed(ctx context.Context, store *artifacts.Store, name, pointer string, interval time.Duration, session ort.Options, logger *slog.Logger) (serve.Model, error) {
	current := func(ctx context.Context) (*model.Model, error) {
		u, err := model.ResolvePointer(ctx, store, pointer)
		if err != nil {
			return nil, err
		}
		return openModel(ctx, store, u)
	}
	first, err := current(ctx)
	if err != nil {
		return serve.Model{}, fmt.Errorf("--watch %s: %w", name, userError(err))
	}
	ins, outs, err := tensors(first)
	if err != nil {
		return serve.Model{}, step.BadInput(fmt.Errorf("--watch %s: %w", name, err))
	}
	want, _ := json.Marshal([][]oip.TensorMetadata{ins, outs})
	h := &inference.RefreshHandler{ID: name, Interval: interval, Logger: logger.With("model", name),
		Current: func(ctx context.Context) (string, inference.ModelHandler, error) {
			m, err := current(ctx)
			if err != nil {
				return "", nil, err
			}
			ins, outs, err := tensors(m)
			if err != nil {
				return "", nil, err
			}
			if got, _ := json.Marshal([][]oip.TensorMetadata{ins, outs}); string(got) != string(want) {
				return "", nil, fmt.Errorf("model %s takes or gives other tensors than the one served (%s, want %s)", m.Artifact.Location(), got, want)
			}
			h, err := rawHandler(m, session)
			return m.Artifact.Digest, h, err
		}}
	return serve.Model{Name: name, Handler: h, Inputs: ins, Outputs: outs}, nil
}

// rawHandler is the model's handler with the columns serve speaks: each
// input fed from the columns oip.Tensor.ToColumns makes of its tensor,
// each output written to columns of its own name, without a classifier's
// labels.
func rawHandler(m *model.Model, session ort.Options) (inference.ModelHandler, error) {
	if m.Keyed != nil {
		return nil, fmt.Errorf("model %s is keyed: serve takes single models", m.Artifact.Location())
	}
	raw := *m
	raw.Meta = model.Meta{Name: m.Meta.Name, Features: map[string][]string{}}
	for _, in := range m.Sig.Inputs {
		width, _ := dim(in.Shape, 1)
		cols := []string{in.Name}
		if width > 1 {
			cols = make([]string, width)
			for j := range cols {
				cols[j] = in.Name + "_" + strconv.Itoa(j)
			}
		}
		raw.Meta.Features[in.Name] = cols
	}
	return raw.Handler(model.HandlerOptions{ID: m.ID(), Session: session})
}

// tensors describes a model's inputs and outputs as serve answers them.
func tensors(m *model.Model) (ins, outs []oip.TensorMetadata, err error) {
	for _, t := range m.Sig.Inputs {
		dt, ok := map[string]oip.Datatype{"tensor(float)": oip.FP32, "tensor(double)": oip.FP64, "tensor(int64)": oip.Int64, "tensor(string)": oip.Bytes}[t.Type]
		if !ok {
			return nil, nil, fmt.Errorf("input %q is a %s: serve takes float, double, int64 and string inputs", t.Name, t.Type)
		}
		shape, err := servedShape(t)
		if err != nil {
			return nil, nil, err
		}
		if len(shape) == 2 && shape[1] < 0 {
			return nil, nil, fmt.Errorf("input %q has shape %v: serve needs its width fixed", t.Name, t.Shape)
		}
		ins = append(ins, oip.TensorMetadata{Name: t.Name, Datatype: dt, Shape: shape})
	}
	for _, t := range m.Sig.Outputs {
		dt, ok := map[string]oip.Datatype{"tensor(float)": oip.FP32, "tensor(double)": oip.FP32, "tensor(int64)": oip.Int64}[t.Type]
		if !ok {
			return nil, nil, fmt.Errorf("output %q is a %s: serve gives float, double and int64 outputs", t.Name, t.Type)
		}
		shape, err := servedShape(t)
		if err != nil {
			return nil, nil, err
		}
		outs = append(outs, oip.TensorMetadata{Name: t.Name, Datatype: dt, Shape: shape})
	}
	return ins, outs, nil
}

// servedShape is [N] or [N,F] with the batch dimension -1, as are
// dimensions the model leaves open.
func servedShape(t model.Tensor) ([]int64, error) {
	if len(t.Shape) < 1 || len(t.Shape) > 2 {
		return nil, fmt.Errorf("tensor %q has shape %v: serve takes [N] and [N,F]", t.Name, t.Shape)
	}
	shape := []int64{-1}
	if len(t.Shape) == 2 {
		w, ok := dim(t.Shape, 1)
		if !ok {
			w = -1
		}
		shape = append(shape, w)
	}
	return shape, nil
}

// dim is a signature's dimension i when it is a fixed size.
func dim(shape []any, i int) (int64, bool) {
	if i >= len(shape) {
		return 0, false
	}
	switch v := shape[i].(type) {
	case float64:
		return int64(v), v > 0
	case int64:
		return v, v > 0
	case json.Number:
		n, err := v.Int64()
		return n, err == nil && n > 0
	}
	return 0, false
}
