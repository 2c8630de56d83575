package artifacts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"gocloud.dev/blob"
)

// ExecutionsDir is where execution records live below a root.
const ExecutionsDir = ".mlsteps/executions"

// Execution statuses.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	// StatusGated: the step ran and a gate said no; its verdict is written.
	StatusGated = "gated"
	// StatusCached: the step did not run; an earlier execution with the same
	// cache key (CachedFrom) produced the outputs.
	StatusCached = "cached"
)

// Execution is the record of one step run: what it read, what it wrote and
// how it ended. Records are written once and never changed.
type Execution struct {
	ID         string         `json:"id"`
	Step       string         `json:"step"`
	Version    string         `json:"version"`
	Build      string         `json:"build,omitempty"`
	CacheKey   string         `json:"cache_key,omitempty"`
	CachedFrom string         `json:"cached_from,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Inputs     []Input        `json:"inputs,omitempty"`
	Outputs    []Input        `json:"outputs,omitempty"`
	Status     string         `json:"status"`
	ExitCode   int            `json:"exit_code"`
	// Error says why a failed run failed, or what a gated run's gate said.
	Error   string    `json:"error,omitempty"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Host    string    `json:"host,omitempty"`
}

// NewExecutionID returns a time-ordered unique id, so listing the records
// in key order lists them by start time.
func NewExecutionID(t time.Time) string {
	var b [6]byte
	rand.Read(b[:])
	return t.UTC().Format("20060102T150405.000000Z") + "-" + hex.EncodeToString(b[:])
}

// ExecutionURI is where the record of execution id lives below root.
func ExecutionURI(root URI, id string) URI {
	return root.Join(ExecutionsDir, id+".json")
}

// WriteExecution stores a record below root, refusing to overwrite one.
func (s *Store) WriteExecution(ctx context.Context, root URI, e *Execution) error {
	u := ExecutionURI(root, e.ID)
	b, err := s.Bucket(ctx, u)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("encode execution %s: %w", e.ID, err)
	}
	err = b.WriteAll(ctx, u.Path, append(data, '\n'), &blob.WriterOptions{ContentType: "application/json", IfNotExist: true})
	if err != nil {
		return fmt.Errorf("write execution record: %w", blobErr(u, err))
	}
	return nil
}

// ReadExecution reads one execution record.
func (s *Store) ReadExecution(ctx context.Context, root URI, id string) (*Execution, error) {
	u := ExecutionURI(root, id)
	data, err := s.ReadAll(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("read execution record: %w", err)
	}
	var e Execution
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("read execution record %s: %w: %v", Redact(u.String()), ErrInvalid, err)
	}
	return &e, nil
}
