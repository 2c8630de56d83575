package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/registry"
	"github.com/mlsteps/mlsteps/steps/deploy"
	"github.com/mlsteps/mlsteps/steps/step"
)

const registryHelp = `A registry (written by the deploy step) keeps numbered versions of each
model under <registry>/<name>/versions/<n>/ and a pointer,
<registry>/<name>/current, that serve --watch and infer --watch follow.

  mlsteps registry list --registry URI                  the models
  mlsteps registry list --registry URI --name NAME      versions: digest, blessing, push time
  mlsteps registry show --registry URI --name NAME [--version N]
  mlsteps registry rollback --registry URI --name NAME [--to N]

rollback moves the pointer to version N, or without --to to the newest
complete version below the current one, after re-hashing that version's
files; servers watching the pointer switch without a restart.`

func registryCommand(opts options) *cli.Command {
	flags := func(extra ...cli.Flag) []cli.Flag {
		return append([]cli.Flag{
			&cli.StringFlag{Name: "registry", Usage: "the registry's blob `URL` (required)", EnvVars: []string{step.EnvVar("registry")}},
			&cli.StringFlag{Name: "name", Usage: "the model's `NAME` in the registry", EnvVars: []string{step.EnvVar("name")}},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		}, extra...)
	}
	// open opens the registry, with --name required unless optional.
	open := func(c *cli.Context, optional bool) (*deploy.Registry, *artifacts.Store, error) {
		if c.NArg() > 0 {
			return nil, nil, step.Usagef("registry %s takes no arguments, got %q", c.Command.Name, c.Args().First())
		}
		if c.String("registry") == "" {
			return nil, nil, step.Usagef("give --registry URL")
		}
		if !optional && c.String("name") == "" {
			return nil, nil, step.Usagef("give --name NAME")
		}
		store := artifacts.NewStore()
		reg, err := deploy.OpenRegistry(c.Context, store, c.String("registry"))
		if err != nil {
			store.Close()
			return nil, nil, step.BadInput(fmt.Errorf("--registry: %w", err))
		}
		return reg, store, nil
	}
	printJSON := func(v any) error {
		enc := json.NewEncoder(opts.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return &cli.Command{
		Name:        "registry",
		Usage:       "list, show and roll back model versions in a registry",
		Description: registryHelp,
		Subcommands: []*cli.Command{
			{
				Name:         "list",
				Usage:        "list the models, or a model's versions with digests, blessings and push times",
				Flags:        flags(),
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					reg, store, err := open(c, true)
					if err != nil {
						return err
					}
					defer store.Close()
					if c.String("name") == "" {
						names, err := reg.Names(c.Context)
						if err != nil {
							return err
						}
						if c.Bool("json") {
							return printJSON(names)
						}
						for _, n := range names {
							fmt.Fprintln(opts.Stdout, n)
						}
						return nil
					}
					entries, err := reg.List(c.Context, c.String("name"))
					if err != nil {
						return registryErr(err)
					}
					if c.Bool("json") {
						return printJSON(listJSON(entries))
					}
					tw := tabwriter.NewWriter(opts.Stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "VERSION\tCURRENT\tDIGEST\tBLESSING\tPUSHED\tMODEL ID")
					for _, e := range entries {
						cur := ""
						if e.Current {
							cur = "*"
						}
						if e.Record == nil {
							claimed := ""
							if e.Claim != nil {
								claimed = e.Claim.Claimed.Format(time.RFC3339)
							}
							fmt.Fprintf(tw, "%d\t%s\t(incomplete push)\t-\t%s\t-\n", e.Version, cur, claimed)
							continue
						}
						v := e.Record
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", v.Version, cur, v.Digest, blessingText(v.Blessing), v.Pushed.Format(time.RFC3339), v.ModelID)
					}
					return tw.Flush()
				},
			},
			{
				Name:         "show",
				Usage:        "print a version's record (default: the current one) and the pointer, as JSON",
				Flags:        flags(&cli.IntFlag{Name: "version", Usage: "the version `N` (default: the current one)"}),
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					reg, store, err := open(c, false)
					if err != nil {
						return err
					}
					defer store.Close()
					name := c.String("name")
					cur, err := reg.Current(c.Context, name)
					if err != nil && (c.Int("version") == 0 || !errors.Is(err, registry.ErrNotFound)) {
						return registryErr(err)
					}
					n := c.Int("version")
					if n == 0 {
						n = cur.Version
					}
					v, err := reg.Get(c.Context, name, n)
					if err != nil {
						return registryErr(err)
					}
					out := map[string]any{"version": v, "uri": artifacts.Redact(reg.VersionURI(name, n).String()),
						"pointer_uri": artifacts.Redact(reg.PointerURI(name).String())}
					if cur.Version > 0 {
						out["current"] = cur
					}
					return printJSON(out)
				},
			},
			{
				Name:         "rollback",
				Usage:        "move the pointer to version N, or back to the newest complete version below the current one",
				Flags:        flags(&cli.IntFlag{Name: "to", Usage: "the version `N` to point to (default: the one before the current)"}),
				OnUsageError: usageError,
				Action: func(c *cli.Context) error {
					reg, store, err := open(c, false)
					if err != nil {
						return err
					}
					defer store.Close()
					name := c.String("name")
					cur, err := reg.Current(c.Context, name)
					if err != nil {
						return registryErr(err)
					}
					to := c.Int("to")
					if to < 0 {
						return step.Usagef("--to %d: versions start at 1", to)
					}
					if to == 0 {
						entries, err := reg.List(c.Context, name)
						if err != nil {
							return registryErr(err)
						}
						for _, e := range entries {
							if e.Complete() && e.Version < cur.Version {
								to = e.Version
							}
						}
						if to == 0 {
							return step.Usagef("%s: no complete version below the current %d to roll back to", name, cur.Version)
						}
					}
					// Servers will load what the pointer names: check it is
					// whole and unchanged before pointing at it.
					if _, _, err := reg.Open(c.Context, name, to); err != nil {
						return registryErr(fmt.Errorf("roll back to version %d: %w", to, err))
					}
					p, err := reg.Rollback(c.Context, name, to)
					if err != nil {
						return registryErr(err)
					}
					if c.Bool("json") {
						return printJSON(p)
					}
					fmt.Fprintf(opts.Stdout, "%s: current version %d -> %d (%s)\n", name, p.Previous, p.Version, p.Digest)
					return nil
				},
			},
		},
	}
}

// listJSON is List's entries for --json.
func listJSON(entries []registry.Entry) []map[string]any {
	out := make([]map[string]any, 0, len(entries))
	for _, e := range entries {
		m := map[string]any{"version": e.Version, "current": e.Current, "complete": e.Complete()}
		if e.Claim != nil {
			m["claim"] = e.Claim
		}
		if e.Record != nil {
			m["record"] = e.Record
		}
		out = append(out, m)
	}
	return out
}

func blessingText(b *registry.Blessing) string {
	switch {
	case b == nil:
		return "-"
	case b.Skipped:
		return "skipped"
	case b.Blessed:
		return "blessed"
	}
	return "not blessed"
}

// registryErr makes a missing name or version, or a malformed one, a
// usage error (exit 2).
func registryErr(err error) error {
	if errors.Is(err, registry.ErrNotFound) || errors.Is(err, registry.ErrInvalid) ||
		errors.Is(err, artifacts.ErrNotFound) || errors.Is(err, artifacts.ErrInvalid) {
		return step.BadInput(err)
	}
	return err
}
