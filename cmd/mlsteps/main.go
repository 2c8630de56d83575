// Command mlsteps runs ML pipeline steps (import, and more to come) locally,
// in Argo Workflows or in Kubeflow Pipelines, with typed artifacts on blob
// storage. Run `mlsteps --help` for the list.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, options{
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		Interactive: term.IsTerminal(int(os.Stderr.Fd())),
	})
	stop()
	os.Exit(code)
}
