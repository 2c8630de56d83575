package model

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mlsteps/mlsteps/artifacts"
)

// WriteKeyedPartial is WriteKeyed for one shard's share of the keys of a
// keyed set, which may be no key at all (more shards than keys): then
// only the index is written, with no models, and the merge skips it.
func WriteKeyedPartial(ctx context.Context, w *artifacts.Writer, files map[string]Prepared, idx Index) error {
	if len(idx.Models) > 0 {
		return WriteKeyed(ctx, w, files, idx)
	}
	if idx.KeyColumn == "" {
		return fmt.Errorf("keyed model: no key column")
	}
	if err := w.WriteJSON(ctx, IndexFile, idx); err != nil {
		return err
	}
	w.SetProperty(PropFormat, FormatKeyed)
	w.SetProperty(PropKeyColumn, idx.KeyColumn)
	w.SetProperty(PropKeys, []string{})
	w.SetProperty(PropByteSize, 0)
	return nil
}

// ReadKeyed reads a keyed Model's index and its model files as Prepared
// values (each with the artifact's signature and meta), so sets written
// by several shards can be written again as one with WriteKeyed. A
// partial with no keys returns its index and no files.
func ReadKeyed(ctx context.Context, a *artifacts.Artifact) (map[string]Prepared, Index, error) {
	keys, err := artifacts.Property[[]string](a.Sidecar, PropKeys)
	if err != nil {
		return nil, Index{}, err
	}
	if len(keys) == 0 {
		data, err := a.ReadFile(ctx, IndexFile)
		if err != nil {
			return nil, Index{}, err
		}
		var idx Index
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, idx, fmt.Errorf("model %s: %s: %w", a.Location(), IndexFile, err)
		}
		return map[string]Prepared{}, idx, nil
	}
	m, err := Open(ctx, a)
	if err != nil {
		return nil, Index{}, err
	}
	if m.Keyed == nil {
		return nil, Index{}, fmt.Errorf("model %s is not a keyed set", a.Location())
	}
	files := map[string]Prepared{}
	for _, f := range m.Keyed.Models {
		if _, done := files[f]; done {
			continue
		}
		data, err := a.ReadFile(ctx, keyedDir+f)
		if err != nil {
			return nil, Index{}, err
		}
		files[f] = Prepared{Data: data, Sig: m.Sig, Meta: m.Meta}
	}
	return files, *m.Keyed, nil
}
