package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/urfave/cli/v2"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/orchestrate/argo"
	"github.com/mlsteps/mlsteps/orchestrate/kfp"
	"github.com/mlsteps/mlsteps/orchestrate/local"
	"github.com/mlsteps/mlsteps/orchestrate/pipeline"
	"github.com/mlsteps/mlsteps/orchestrate/submit"
	"github.com/mlsteps/mlsteps/steps/step"
)

// loadPipeline reads, parses and checks a pipeline file against the
// registry; any problem is a usage error (exit 2) listing every line.
func loadPipeline(reg *step.Registry, path string) (*pipeline.Graph, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, step.BadInput(fmt.Errorf("pipeline: %w", err))
	}
	p, err := pipeline.Parse(path, data)
	if err != nil {
		return nil, step.BadInput(err)
	}
	g, err := pipeline.Check(p, reg)
	if err != nil {
		return nil, step.BadInput(err)
	}
	return g, nil
}

func paramPairs(values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, step.Usagef("--param %q: want NAME=VALUE", v)
		}
		out[k] = val
	}
	return out, nil
}

func runCommand(reg *step.Registry, opts options) *cli.Command {
	return &cli.Command{
		Name:         "run",
		Usage:        "run a pipeline locally: steps as child processes, parallel where the DAG allows, cached by content, resumable",
		ArgsUsage:    "PIPELINE.yaml",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "param", Usage: "pipeline parameter `NAME=VALUE` (repeatable)"},
			&cli.StringFlag{Name: "root", Usage: "artifact root `URI` (default: the pipeline's root, else ./.mlsteps-runs)", EnvVars: []string{step.EnvVar("root")}},
			&cli.BoolFlag{Name: "no-cache", Usage: "run every step even when a cached result exists"},
			&cli.StringFlag{Name: "from", Usage: "re-run `STEP` and everything downstream of it"},
			&cli.IntFlag{Name: "parallelism", Usage: "steps running at once (default: CPUs)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return step.Usagef("run takes one pipeline file")
			}
			logger, err := newLogger(c, opts)
			if err != nil {
				return err
			}
			g, err := loadPipeline(reg, c.Args().First())
			if err != nil {
				return err
			}
			params, err := paramPairs(c.StringSlice("param"))
			if err != nil {
				return err
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			build, err := buildDigest()
			if err != nil {
				return err
			}
			store := artifacts.NewStore()
			defer store.Close()
			lopts := local.Options{Binary: exe, BuildID: build, Root: c.String("root"), Params: params,
				Parallelism: c.Int("parallelism"), NoCache: c.Bool("no-cache"), From: c.String("from"), Logger: logger, Store: store}
			if opts.Interactive {
				// A live line on the terminal; the log then only says what went wrong.
				lopts.Progress = opts.Stderr
				if c.String("log-level") == "info" {
					lopts.Logger = slog.New(slog.NewTextHandler(opts.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
				}
			}
			res, err := local.Run(c.Context, g, reg, lopts)
			if err != nil {
				return err
			}
			local.WriteSummary(opts.Stdout, res)
			writeHighlights(c.Context, opts.Stdout, store, res)
			switch res.ExitCode {
			case step.ExitGate:
				return &step.GateError{Gate: "pipeline " + res.Pipeline, Reason: "a gate stopped part of the pipeline"}
			case step.ExitOK:
				return nil
			}
			return fmt.Errorf("pipeline %s: a step failed (see the table above and its log)", res.Pipeline)
		},
	}
}

func compileCommand(reg *step.Registry, opts options) *cli.Command {
	return &cli.Command{
		Name:         "compile",
		Usage:        "compile a pipeline for an orchestrator: an Argo Workflow or WorkflowTemplate, a KFP v2 pipeline spec, or one step as a KFP component",
		ArgsUsage:    "PIPELINE.yaml | STEP (with --target kfp-component)",
		OnUsageError: usageError,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "target", Value: "argo", Usage: "argo, kfp (a pipeline spec, IR YAML) or kfp-component (one step)"},
			&cli.StringFlag{Name: "kind", Value: argo.KindWorkflow, Usage: "Workflow or WorkflowTemplate"},
			&cli.StringFlag{Name: "namespace", Usage: "namespace of the emitted object"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` instead of stdout"},
		}, clusterFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return step.Usagef("compile takes one pipeline file (or one step name with --target kfp-component)")
			}
			data, err := compileTarget(c, reg)
			if err != nil {
				return err
			}
			if out := c.String("output"); out != "" {
				return os.WriteFile(out, data, 0o644)
			}
			_, err = opts.Stdout.Write(data)
			return err
		},
	}
}

func compileTarget(c *cli.Context, reg *step.Registry) ([]byte, error) {
	target := c.String("target")
	if target == "kfp-component" {
		spec, ok := reg.Lookup(c.Args().First())
		if !ok {
			return nil, step.Usagef("--target kfp-component takes a step name; %q is not one", c.Args().First())
		}
		comp, err := kfp.ComponentPipeline(spec, c.String("image"))
		if err != nil {
			return nil, err
		}
		return kfp.Marshal(comp)
	}
	g, err := loadPipeline(reg, c.Args().First())
	if err != nil {
		return nil, err
	}
	switch target {
	case "argo":
		obj, err := argo.Compile(g, reg, argo.Options{Image: c.String("image"), Root: c.String("root"), Kind: c.String("kind"),
			Namespace: c.String("namespace"), ServiceAccount: c.String("service-account"), SecretEnv: c.String("secret-env")})
		if err != nil {
			return nil, step.BadInput(err)
		}
		return argo.Marshal(obj)
	case "kfp":
		spec, err := kfp.Compile(g, reg, kfp.Options{Image: c.String("image"), Root: c.String("root")})
		if err != nil {
			return nil, step.BadInput(err)
		}
		return kfp.Marshal(spec)
	}
	return nil, step.Usagef("--target %q: want argo, kfp or kfp-component", target)
}

func submitCommand(reg *step.Registry, opts options) *cli.Command {
	return &cli.Command{
		Name:         "submit",
		Usage:        "compile a pipeline and send it to an Argo Server or a KFP API server; --watch follows it",
		ArgsUsage:    "PIPELINE.yaml",
		OnUsageError: usageError,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "target", Value: "argo", Usage: "argo or kfp"},
			&cli.StringFlag{Name: "server", Usage: "server `URL` (Argo Server, or the KFP API)", EnvVars: []string{step.EnvVar("server")}},
			&cli.StringFlag{Name: "token", Usage: "bearer `TOKEN` (never logged)", EnvVars: []string{step.EnvVar("token")}},
			&cli.StringFlag{Name: "namespace", Value: "argo", Usage: "argo: the namespace to create the workflow in"},
			&cli.StringFlag{Name: "experiment", Usage: "kfp: experiment `ID` of the run"},
			&cli.StringSliceFlag{Name: "param", Usage: "pipeline parameter `NAME=VALUE` (repeatable)"},
			&cli.BoolFlag{Name: "watch", Usage: "follow the run until it ends; exit 1 unless it succeeds"},
			&cli.DurationFlag{Name: "poll", Value: 5 * time.Second, Usage: "with --watch, how often to ask"},
		}, clusterFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 || c.String("server") == "" {
				return step.Usagef("submit takes one pipeline file and --server URL")
			}
			g, err := loadPipeline(reg, c.Args().First())
			if err != nil {
				return err
			}
			params, err := paramPairs(c.StringSlice("param"))
			if err != nil {
				return err
			}
			if _, err := g.Resolve(reg, params); err != nil {
				return err
			}
			switch c.String("target") {
			case "argo":
				return submitArgo(c, reg, g, params, opts)
			case "kfp":
				return submitKFP(c, reg, g, params, opts)
			}
			return step.Usagef("--target %q: want argo or kfp", c.String("target"))
		},
	}
}

func submitArgo(c *cli.Context, reg *step.Registry, g *pipeline.Graph, params map[string]string, opts options) error {
	obj, err := argo.Compile(g, reg, argo.Options{Image: c.String("image"), Root: c.String("root"), Namespace: c.String("namespace"),
		ServiceAccount: c.String("service-account"), SecretEnv: c.String("secret-env")})
	if err != nil {
		return step.BadInput(err)
	}
	wf := obj.(*wfv1.Workflow)
	for i, p := range wf.Spec.Arguments.Parameters {
		if v, ok := params[p.Name]; ok {
			wf.Spec.Arguments.Parameters[i].Value = wfv1.AnyStringPtr(v)
		}
	}
	client := &submit.Argo{Server: c.String("server"), Token: c.String("token")}
	name, err := client.Create(c.Context, c.String("namespace"), wf)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.Stdout, "workflow %s/%s submitted\n", c.String("namespace"), name)
	if !c.Bool("watch") {
		return nil
	}
	phase, err := client.Wait(c.Context, c.String("namespace"), name, c.Duration("poll"), func(p string) { fmt.Fprintf(opts.Stdout, "phase %s\n", p) })
	if err != nil {
		return err
	}
	if phase != string(wfv1.WorkflowSucceeded) {
		return fmt.Errorf("workflow %s ended %s", name, phase)
	}
	return nil
}

func submitKFP(c *cli.Context, reg *step.Registry, g *pipeline.Graph, params map[string]string, opts options) error {
	spec, err := kfp.Compile(g, reg, kfp.Options{Image: c.String("image"), Root: c.String("root")})
	if err != nil {
		return step.BadInput(err)
	}
	client := &submit.KFP{Server: c.String("server"), Token: c.String("token")}
	run, err := client.Submit(c.Context, spec, params, c.String("experiment"))
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.Stdout, "kfp run %s submitted (pipeline %s, version %s)\n", run.RunID, run.PipelineID, run.VersionID)
	if !c.Bool("watch") {
		return nil
	}
	state, err := client.Wait(c.Context, run.RunID, c.Duration("poll"), func(s string) { fmt.Fprintf(opts.Stdout, "state %s\n", s) })
	if err != nil {
		return err
	}
	if state != "SUCCEEDED" {
		return fmt.Errorf("kfp run %s ended %s", run.RunID, state)
	}
	return nil
}

// clusterFlags are the flags that shape what runs in a cluster, shared by
// compile and submit.
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "image", Value: "mlsteps:latest", Usage: "the mlsteps container `IMAGE` the steps run in"},
		&cli.StringFlag{Name: "root", Usage: "artifact root `URI` the pods reach (default: the pipeline's root)"},
		&cli.StringFlag{Name: "service-account", Usage: "argo: service account the pods run as"},
		&cli.StringFlag{Name: "secret-env", Usage: "argo: `SECRET` whose keys become the containers' environment (bucket credentials)"},
	}
}
