package artifacts

import (
	"errors"
	"fmt"
)

// Error kinds; every error this package returns wraps at most one of them.
var (
	// ErrNotFound: nothing is stored at the URI or under the file name.
	ErrNotFound = errors.New("not found")
	// ErrNotCommitted: payload files exist but the sidecar does not, so the
	// writer died or is still writing.
	ErrNotCommitted = errors.New("not committed")
	// ErrExists: the artifact is already committed and artifacts are immutable.
	ErrExists = errors.New("already committed")
	// ErrIntegrity: a payload's size or digest does not match the sidecar.
	ErrIntegrity = errors.New("integrity check failed")
	// ErrInvalid: a malformed URI, file name, type or sidecar.
	ErrInvalid = errors.New("invalid")
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
