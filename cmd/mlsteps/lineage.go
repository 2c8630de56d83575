package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/orchestrate/lineage"
	"github.com/mlsteps/mlsteps/steps/step"
)

// lineageCommand is `mlsteps lineage`: queries, diff, index and verify.
func lineageCommand(opts options) *cli.Command {
	rootFlag := &cli.StringFlag{Name: "root", Usage: "walk every sidecar and execution record below this URI (a pipeline root)", EnvVars: []string{step.EnvVar("lineage-root")}}
	dbFlag := &cli.StringFlag{Name: "db", Usage: "answer from this SQL index instead of walking blobs: sqlite:///path.db or postgres://user@host:port/db", EnvVars: []string{step.EnvVar("lineage-db")}}
	queryFlags := []cli.Flag{
		&cli.BoolFlag{Name: "up", Usage: "upstream: what made the artifact (the default)"},
		&cli.BoolFlag{Name: "down", Usage: "downstream: what was made from it"},
		&cli.BoolFlag{Name: "both", Usage: "upstream and downstream"},
		&cli.IntFlag{Name: "depth", Usage: "executions to walk away from the artifact; 0 for no limit"},
		&cli.StringFlag{Name: "format", Value: "text", Usage: "text, json, dot or mermaid"},
		rootFlag, dbFlag,
	}
	return &cli.Command{
		Name:      "lineage",
		Usage:     "show where an artifact came from and what was made from it",
		ArgsUsage: "URI",
		Description: "Reads the lineage every step run records (each artifact's producer and inputs, each run's execution\n" +
			"record) from blob storage, or from a SQL index built with `mlsteps lineage index`. Upstream queries\n" +
			"follow sidecars and need no --root; downstream queries need --root (or --db).",
		Flags:        queryFlags,
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			c, err := flagsAfterArgs(c, queryFlags)
			if err != nil {
				return err
			}
			if c.NArg() != 1 {
				return step.Usagef("lineage takes one artifact URI (or a subcommand: diff, index, verify)")
			}
			dir := lineage.Up
			switch n := countTrue(c.Bool("up"), c.Bool("down"), c.Bool("both")); {
			case n > 1:
				return step.Usagef("give one of --up, --down and --both")
			case c.Bool("down"):
				dir = lineage.Down
			case c.Bool("both"):
				dir = lineage.Both
			}
			format := c.String("format")
			if !slices.Contains(lineage.Formats, format) {
				return step.Usagef("--format %q: want %s", format, strings.Join(lineage.Formats, ", "))
			}
			if c.Int("depth") < 0 {
				return step.Usagef("--depth must not be negative")
			}
			if dir != lineage.Up && c.String("root") == "" && c.String("db") == "" {
				return step.Usagef("downstream lineage needs --root URI (the pipeline root to search) or --db URL")
			}
			store := artifacts.NewStore()
			defer store.Close()
			src, closeSrc, err := lineageSource(c, store)
			if err != nil {
				return err
			}
			defer closeSrc()
			g, err := lineage.Query(c.Context, src, c.Args().First(), lineage.Options{Direction: dir, Depth: c.Int("depth")})
			if err != nil {
				return lineageErr(err)
			}
			return lineage.Render(opts.Stdout, g, format, dir)
		},
		Subcommands: []*cli.Command{
			lineageDiffCommand(opts, rootFlag, dbFlag),
			lineageIndexCommand(opts),
			lineageVerifyCommand(opts),
		},
	}
}

func lineageDiffCommand(opts options, rootFlag, dbFlag cli.Flag) *cli.Command {
	return &cli.Command{
		Name:         "diff",
		Usage:        "how two artifacts came to differ: step versions, parameters and inputs, following differing inputs upstream",
		ArgsUsage:    "URI_A URI_B",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "text", Usage: "text or json"},
			&cli.IntFlag{Name: "depth", Usage: "levels of differing inputs to follow; 0 for 3"},
			rootFlag, dbFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return step.Usagef("lineage diff takes two artifact URIs")
			}
			if f := c.String("format"); f != "text" && f != "json" {
				return step.Usagef("--format %q: want text or json", f)
			}
			store := artifacts.NewStore()
			defer store.Close()
			src, closeSrc, err := lineageSource(c, store)
			if err != nil {
				return err
			}
			defer closeSrc()
			changes, err := lineage.Diff(c.Context, src, c.Args().Get(0), c.Args().Get(1), c.Int("depth"))
			if err != nil {
				return lineageErr(err)
			}
			return lineage.RenderDiff(opts.Stdout, changes, c.String("format"))
		},
	}
}

func lineageIndexCommand(opts options) *cli.Command {
	return &cli.Command{
		Name:         "index",
		Usage:        "build or update a SQL index of the artifacts, executions and links below --root",
		OnUsageError: usageError,
		Description: "Reads only the sidecars and execution records that are new or changed since the last run, and drops\n" +
			"those deleted. The index is never the source of truth: drop it and run this again to rebuild it.\n" +
			"With a file:// root, --db defaults to sqlite://<root>/.mlsteps/lineage.db.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Required: true, Usage: "the pipeline root to index", EnvVars: []string{step.EnvVar("lineage-root")}},
			&cli.StringFlag{Name: "db", Usage: "sqlite:///path.db (embedded) or postgres://user@host:port/db (shared)", EnvVars: []string{step.EnvVar("lineage-db")}},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return step.Usagef("lineage index takes no arguments; give --root and --db")
			}
			root, err := artifacts.ParseURI(c.String("root"))
			if err != nil {
				return step.BadInput(fmt.Errorf("--root: %w", err))
			}
			dbURL, err := defaultDB(c.String("db"), root)
			if err != nil {
				return err
			}
			logger, err := newLogger(c, opts)
			if err != nil {
				return err
			}
			ix, err := lineage.OpenIndex(c.Context, dbURL)
			if err != nil {
				return lineageErr(err)
			}
			defer ix.Close()
			store := artifacts.NewStore()
			defer store.Close()
			st, err := ix.Update(c.Context, store, root, lineage.UpdateOptions{Logger: logger})
			if err != nil {
				return err
			}
			a, e, edges, err := ix.Counts(c.Context)
			if err != nil {
				return err
			}
			fmt.Fprintf(opts.Stdout, "indexed %s into %s: %d records listed, %d read, %d removed; the index holds %d artifacts, %d executions, %d links\n",
				artifacts.Redact(root.String()), artifacts.Redact(dbURL), st.Listed, st.Read, st.Removed, a, e, edges)
			return nil
		},
	}
}

func lineageVerifyCommand(opts options) *cli.Command {
	return &cli.Command{
		Name:         "verify",
		Usage:        "re-check every recorded input and output digest below --root and each artifact's files; exit 1 listing broken or tampered links",
		OnUsageError: usageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "root", Required: true, Usage: "the pipeline root to check", EnvVars: []string{step.EnvVar("lineage-root")}},
			&cli.BoolFlag{Name: "skip-payload", Usage: "check links and sidecars only, without re-hashing payload files"},
			&cli.StringFlag{Name: "format", Value: "text", Usage: "text or json"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return step.Usagef("lineage verify takes no arguments; give --root")
			}
			root, err := artifacts.ParseURI(c.String("root"))
			if err != nil {
				return step.BadInput(fmt.Errorf("--root: %w", err))
			}
			store := artifacts.NewStore()
			defer store.Close()
			problems, err := lineage.Verify(c.Context, store, root, lineage.VerifyOptions{SkipPayload: c.Bool("skip-payload")})
			if err != nil {
				return err
			}
			if err := writeProblems(opts.Stdout, problems, c.String("format")); err != nil {
				return err
			}
			if len(problems) > 0 {
				return fmt.Errorf("lineage verify: %d broken or tampered links below %s", len(problems), artifacts.Redact(root.String()))
			}
			return nil
		},
	}
}

func writeProblems(w io.Writer, problems []lineage.Problem, format string) error {
	switch format {
	case "json":
		if problems == nil {
			problems = []lineage.Problem{}
		}
		return writeJSON(w, problems)
	case "text":
		if len(problems) == 0 {
			_, err := fmt.Fprintln(w, "ok: every recorded link points at the artifact it names")
			return err
		}
		for _, p := range problems {
			if _, err := fmt.Fprintln(w, p.String()); err != nil {
				return err
			}
		}
		return nil
	}
	return step.Usagef("--format %q: want text or json", format)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// lineageSource opens the SQL index of --db, or the blob walk of --root
// (sidecars only when neither is given).
func lineageSource(c *cli.Context, store *artifacts.Store) (lineage.Source, func(), error) {
	if db := c.String("db"); db != "" {
		ix, err := lineage.OpenIndex(c.Context, db)
		if err != nil {
			return nil, nil, lineageErr(err)
		}
		return ix, func() { ix.Close() }, nil
	}
	var root *artifacts.URI
	if r := c.String("root"); r != "" {
		u, err := artifacts.ParseURI(r)
		if err != nil {
			return nil, nil, step.BadInput(fmt.Errorf("--root: %w", err))
		}
		root = &u
	}
	return lineage.NewBlobSource(store, root), func() {}, nil
}

// defaultDB is --db, or an SQLite file below a local root.
func defaultDB(db string, root artifacts.URI) (string, error) {
	if db != "" {
		return db, nil
	}
	if p, ok := root.LocalPath(); ok {
		return "sqlite://" + strings.TrimSuffix(p, "/") + "/.mlsteps/lineage.db", nil
	}
	return "", step.Usagef("give --db sqlite:///path.db or postgres://…: a %s root has no default place for the index", root.Scheme)
}

// lineageErr makes a user's mistake (an unknown artifact, a bad URI or
// --db URL) exit 2.
func lineageErr(err error) error {
	if errors.Is(err, artifacts.ErrNotFound) || errors.Is(err, artifacts.ErrInvalid) {
		return step.BadInput(err)
	}
	return err
}

func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// flagsAfterArgs parses flags written after the URI (`lineage URI --down`),
// which urfave/cli v2 leaves as arguments: it returns a context holding
// the flags from both places and only the positional arguments.
func flagsAfterArgs(c *cli.Context, flags []cli.Flag) (*cli.Context, error) {
	args := c.Args().Slice()
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "-") }) {
		return c, nil
	}
	set := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range flags {
		if err := f.Apply(set); err != nil {
			return nil, err
		}
	}
	for _, name := range c.FlagNames() {
		if set.Lookup(name) != nil && c.IsSet(name) {
			if err := set.Set(name, fmt.Sprint(c.Value(name))); err != nil {
				return nil, step.BadInput(err)
			}
		}
	}
	// Positionals go last so the standard parser reads every flag.
	var fl, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		fl = append(fl, a)
		name := strings.TrimLeft(a, "-")
		if f := set.Lookup(name); f != nil && !strings.Contains(a, "=") && !isBoolFlag(f) && i+1 < len(args) {
			fl = append(fl, args[i+1])
			i++
		}
	}
	if err := set.Parse(append(fl, pos...)); err != nil {
		return nil, step.BadInput(fmt.Errorf("lineage: %w", err))
	}
	return cli.NewContext(c.App, set, c), nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
