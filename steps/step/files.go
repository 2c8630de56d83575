package step

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/mlsteps/mlsteps/artifacts"
)

// ReadParamFile reads the file a string parameter names (a blob URL or a
// local path): a spec or config that is not an artifact. A bad URI or a
// missing file is a bad-input error naming the parameter.
func (r *Run) ReadParamFile(ctx context.Context, param string) ([]byte, error) {
	u, err := artifacts.ParseURI(r.String(param))
	if err != nil {
		return nil, BadInput(fmt.Errorf("--%s: %w", param, err))
	}
	data, err := r.Store().ReadAll(ctx, u)
	if err != nil {
		if errors.Is(err, artifacts.ErrNotFound) || errors.Is(err, artifacts.ErrInvalid) {
			return nil, BadInput(fmt.Errorf("--%s: %w", param, err))
		}
		return nil, fmt.Errorf("--%s: %w", param, err)
	}
	return data, nil
}

// ContentDigest is the hex SHA-256 of data, for ContentKey functions.
func ContentDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
