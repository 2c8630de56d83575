package step

import (
	"errors"
	"fmt"

	"github.com/mlsteps/mlsteps/artifacts"
)

// Exit codes of every step.
const (
	ExitOK     = 0
	ExitFailed = 1
	ExitUsage  = 2
	ExitGate   = 3
)

type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// BadInput marks err as the caller's fault (usage, a bad input contract or
// bad input data): the step exits 2.
func BadInput(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err}
}

// Usagef is BadInput with a formatted message.
func Usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// GateError is a gate's "no": the verdict was written, the step exits 3.
type GateError struct {
	Gate   string
	Reason string
}

func (e *GateError) Error() string { return fmt.Sprintf("gate %s said no: %s", e.Gate, e.Reason) }

// ExitCode maps an error returned by a step to its exit code.
func ExitCode(err error) int {
	var (
		usage *usageError
		gate  *GateError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &gate):
		return ExitGate
	case errors.As(err, &usage):
		return ExitUsage
	}
	return ExitFailed
}

// inputError classifies an error opening an input artifact: a wrong URI,
// a missing, uncommitted or mistyped artifact is a bad input contract.
func inputError(name string, err error) error {
	err = fmt.Errorf("input %s: %w", name, err)
	if errors.Is(err, artifacts.ErrInvalid) || errors.Is(err, artifacts.ErrNotFound) || errors.Is(err, artifacts.ErrNotCommitted) {
		return BadInput(err)
	}
	return err
}
