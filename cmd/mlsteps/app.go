package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/orchestrate/local"
	"github.com/mlsteps/mlsteps/steps/catalog"
	"github.com/mlsteps/mlsteps/steps/step"
)

// options are what the app needs from its process, so tests can run it.
type options struct {
	Stdout, Stderr io.Writer
	// Interactive means stderr is a terminal: text logs and progress bars.
	Interactive bool
}

// run runs the app on args and returns the exit code.
func run(ctx context.Context, args []string, opts options) int {
	app, err := newApp(opts)
	if err != nil {
		fmt.Fprintln(opts.Stderr, "mlsteps:", err)
		return step.ExitFailed
	}
	err = app.RunContext(ctx, interspersed(app, args))
	if err != nil {
		fmt.Fprintln(opts.Stderr, "mlsteps:", err)
	}
	return step.ExitCode(err)
}

func newApp(opts options) (*cli.App, error) {
	reg, err := catalog.Registry()
	if err != nil {
		return nil, err
	}
	app := &cli.App{
		Name:      "mlsteps",
		Usage:     "production ML pipeline steps with typed artifacts on blob storage",
		Version:   buildVersion(),
		Writer:    opts.Stdout,
		ErrWriter: opts.Stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{step.EnvVar("log-level")}},
			&cli.StringFlag{Name: "log-format", Value: "auto", Usage: "auto (text on a terminal, JSON otherwise), text or json", EnvVars: []string{step.EnvVar("log-format")}},
		},
		ExitErrHandler:         func(*cli.Context, error) {}, // run maps errors to exit codes
		OnUsageError:           usageError,
		UseShortOptionHandling: false,
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(opts.Stderr, "mlsteps: unknown command %q; see mlsteps --help\n", name)
		},
	}
	for _, spec := range reg.All() {
		app.Commands = append(app.Commands, stepCommand(spec, opts))
	}
	app.Commands = append(app.Commands, describeCommand(reg, opts), artifactCommand(opts))
	app.Commands = append(app.Commands, lineageCommand(opts))
	app.Commands = append(app.Commands, runCommand(reg, opts), compileCommand(reg, opts), submitCommand(reg, opts), manifestsCommand(reg))
	app.Commands = append(app.Commands, serveCommand(opts))
	app.Commands = append(app.Commands, shardPlanCommand(opts))
	app.Commands = append(app.Commands, registryCommand(opts), infraServeCommand())
	return app, nil
}

// usageError marks flag parsing errors as usage errors (exit 2).
func usageError(_ *cli.Context, err error, _ bool) error { return step.BadInput(err) }

func stepCommand(spec *step.Spec, opts options) *cli.Command {
	return &cli.Command{
		Name:         spec.Name,
		Usage:        spec.Summary,
		Description:  step.HelpText(spec),
		Flags:        step.Flags(spec),
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			logger, err := newLogger(c, opts)
			if err != nil {
				return err
			}
			inv, err := step.InvocationFromCLI(spec, c)
			if err != nil {
				return err
			}
			var kfp *step.KFPExecution
			if in := c.String("kfp-executor-input"); in != "" {
				if inv, kfp, err = step.FromKFP(spec, in); err != nil {
					return err
				}
			}
			store := artifacts.NewStore()
			defer store.Close()
			env := step.Env{Store: store, Logger: logger, Stderr: opts.Stderr, Interactive: opts.Interactive}
			if inv.CacheRoot != "" {
				if env.BuildID, err = buildDigest(); err != nil {
					return err
				}
			}
			var resultErr error
			dir := c.String("result-dir")
			env.OnResult = func(res step.Result) {
				if dir != "" {
					resultErr = step.WriteResultDir(dir, res)
				}
				if kfp != nil && res.ExitCode != step.ExitFailed {
					resultErr = errors.Join(resultErr, kfp.WriteOutput(res))
				}
			}
			return errors.Join(step.Execute(c.Context, spec, inv, env), resultErr)
		},
	}
}

func newLogger(c *cli.Context, opts options) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, step.Usagef("--log-level %q: want debug, info, warn or error", c.String("log-level"))
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch f := c.String("log-format"); {
	case f == "text" || f == "auto" && opts.Interactive:
		return slog.New(slog.NewTextHandler(opts.Stderr, hopts)), nil
	case f == "json" || f == "auto":
		return slog.New(slog.NewJSONHandler(opts.Stderr, hopts)), nil
	default:
		return nil, step.Usagef("--log-format %q: want auto, text or json", f)
	}
}

func describeCommand(reg *step.Registry, opts options) *cli.Command {
	return &cli.Command{
		Name:         "describe",
		Usage:        "print a step's contract: inputs, outputs and parameters with types and defaults",
		ArgsUsage:    "STEP",
		OnUsageError: usageError,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the contract as JSON"},
			&cli.BoolFlag{Name: "markdown", Usage: "print every step's contract as the Markdown step catalogue (docs/steps.md)"}},
		Action: func(c *cli.Context) error {
			if c.Bool("markdown") {
				_, err := opts.Stdout.Write(catalogMarkdown(reg))
				return err
			}
			// urfave/cli stops parsing flags at the first argument; accept
			// `describe STEP --json` as users write it.
			asJSON := c.Bool("json")
			var args []string
			for _, a := range c.Args().Slice() {
				if a == "--json" || a == "-json" {
					asJSON = true
					continue
				}
				args = append(args, a)
			}
			if len(args) != 1 {
				return step.Usagef("describe takes one step name")
			}
			spec, ok := reg.Lookup(args[0])
			if !ok {
				var names []string
				for _, s := range reg.All() {
					names = append(names, s.Name)
				}
				return step.Usagef("unknown step %q (steps: %s)", args[0], strings.Join(names, ", "))
			}
			if asJSON {
				enc := json.NewEncoder(opts.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(spec)
			}
			describeText(opts.Stdout, spec)
			return nil
		},
	}
}

func describeText(w io.Writer, spec *step.Spec) {
	fmt.Fprintf(w, "%s %s: %s\n\n%s\n\nParameters:\n", spec.Name, spec.Version, spec.Summary, step.HelpText(spec))
	for _, p := range spec.Params {
		def := ""
		switch {
		case p.Required:
			def = " (required)"
		case p.Default != nil && !p.Secret:
			def = fmt.Sprintf(" (default %v)", p.Default)
		}
		fmt.Fprintf(w, "   --%-14s %s%s: %s\n", p.Name, p.Type, def, p.Description)
	}
}

func artifactCommand(opts options) *cli.Command {
	open := func(c *cli.Context, store *artifacts.Store) (*artifacts.Artifact, error) {
		if c.NArg() != 1 {
			return nil, step.Usagef("%s takes one artifact URI", c.Command.Name)
		}
		u, err := artifacts.ParseURI(c.Args().First())
		if err != nil {
			return nil, step.BadInput(err)
		}
		a, err := store.Open(c.Context, u, "")
		if errors.Is(err, artifacts.ErrNotFound) || errors.Is(err, artifacts.ErrNotCommitted) || errors.Is(err, artifacts.ErrInvalid) {
			return nil, step.BadInput(err)
		}
		return a, err
	}
	return &cli.Command{
		Name:  "artifact",
		Usage: "inspect and check artifacts",
		Subcommands: []*cli.Command{
			{
				Name:         "show",
				Usage:        "print an artifact's sidecar (JSON): type, digest, files, properties, producer, inputs",
				ArgsUsage:    "URI",
				OnUsageError: usageError,
				Flags:        []cli.Flag{&cli.BoolFlag{Name: "summary", Usage: "print a summary for people instead of the JSON sidecar"}},
				Action: func(c *cli.Context) error {
					store := artifacts.NewStore()
					defer store.Close()
					a, err := open(c, store)
					if err != nil {
						return err
					}
					if c.Bool("summary") {
						return writeSummary(opts.Stdout, a.Sidecar)
					}
					enc := json.NewEncoder(opts.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(a.Sidecar)
				},
			},
			{
				Name:         "verify",
				Usage:        "re-hash every payload file; exit 1 naming the first whose digest differs",
				ArgsUsage:    "URI",
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					store := artifacts.NewStore()
					defer store.Close()
					a, err := open(c, store)
					if err != nil {
						return err
					}
					if err := a.Verify(c.Context); err != nil {
						return err
					}
					fmt.Fprintf(opts.Stdout, "ok %s %s: %d files, %s\n", a.Type, a.URI, len(a.Files), a.Digest)
					return nil
				},
			},
		},
	}
}

// buildDigest is the sha256 of this executable: part of every cache key,
// so results are reused only by the very binary that made them.
func buildDigest() (string, error) {
	// The local runner hashed this very binary already and passes it on.
	if d := os.Getenv(local.BuildDigestEnv); strings.HasPrefix(d, "sha256:") {
		return d, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own binary: %w", err)
	}
	return local.BinaryDigest(exe)
}

// buildVersion is the module version and VCS revision baked in by go build.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
