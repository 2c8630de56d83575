package model

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mlsteps/mlsteps/artifacts"
)

// ResolvePointer returns the Model artifact a registry pointer names: a
// Model artifact's own URI names itself; any other object holds either
// JSON {"uri": ...} or the URI as text, a relative URI taken from the
// pointer's folder. Errors wrap artifacts.ErrInvalid when raw or what it
// holds is not a URI, and artifacts.ErrNotFound when nothing is at raw.
func ResolvePointer(ctx context.Context, store *artifacts.Store, raw string) (artifacts.URI, error) {
	u, err := artifacts.ParseURI(raw)
	if err != nil {
		return u, err
	}
	if _, err := store.Open(ctx, u, artifacts.TypeModel); err == nil {
		return u, nil
	}
	data, err := store.ReadAll(ctx, u)
	if err != nil {
		return u, fmt.Errorf("model pointer %s: neither a Model artifact nor a pointer: %w", artifacts.Redact(raw), err)
	}
	target := strings.TrimSpace(string(data))
	if strings.HasPrefix(target, "{") {
		var p struct {
			URI string `json:"uri"`
		}
		if err := json.Unmarshal(data, &p); err != nil || p.URI == "" {
			return u, fmt.Errorf("model pointer %s: %w: want {\"uri\": ...}, got %.100q", artifacts.Redact(raw), artifacts.ErrInvalid, target)
		}
		target = p.URI
	}
	if !strings.Contains(target, "://") {
		return u.Parent().Join(target), nil
	}
	t, err := artifacts.ParseURI(target)
	if err != nil {
		return t, fmt.Errorf("model pointer %s: %w", artifacts.Redact(raw), err)
	}
	return t, nil
}
