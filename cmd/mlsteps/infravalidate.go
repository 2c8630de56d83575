package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/mlsteps/mlsteps/steps/deploy"
	"github.com/mlsteps/mlsteps/steps/step"
)

// infraServeCommand is the deploy step's infra-validation launcher: it
// caps its own address space (RLIMIT_AS) and then replaces itself with
// `mlsteps ARGS...` (exec keeps the limit), so the model under test loads
// in a real `mlsteps serve` process that cannot grow past the limit. A
// limit set from inside, before exec, holds from the first instruction
// of the new program, which prlimit on a started child would not.
func infraServeCommand() *cli.Command {
	return &cli.Command{
		Name:      deploy.InfraServeCommand,
		Usage:     "run mlsteps ARGS under an address-space limit (used by deploy's infra validation)",
		ArgsUsage: "-- ARGS...",
		Hidden:    true,
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "memory-limit", Usage: "address-space limit in bytes (RLIMIT_AS)", Required: true},
		},
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			limit := c.Int64("memory-limit")
			if limit <= 0 || c.NArg() == 0 {
				return step.Usagef("%s needs --memory-limit BYTES -- ARGS...", deploy.InfraServeCommand)
			}
			lim := syscall.Rlimit{Cur: uint64(limit), Max: uint64(limit)}
			if err := syscall.Setrlimit(syscall.RLIMIT_AS, &lim); err != nil {
				return fmt.Errorf("set the address-space limit to %d bytes: %w", limit, err)
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find own binary: %w", err)
			}
			argv := append([]string{os.Args[0]}, c.Args().Slice()...)
			return fmt.Errorf("exec %s: %w", exe, syscall.Exec(exe, argv, os.Environ()))
		},
	}
}
