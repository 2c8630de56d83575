package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
)

// sharding: train --per-key splits the sorted keys that have enough rows
// into one contiguous group per shard; each shard trains its keys into a
// partial keyed Model, and the merge writes the union as one keyed Model.
// The built-in trainers are deterministic and a key's model depends only
// on its own rows, so the merged set is the unsharded one, file for file.
func sharding() *step.Sharding {
	return &step.Sharding{By: step.ShardByKey, Input: "examples", Merge: mergeKeyed,
		Check: func(params map[string]string) error {
			if strings.TrimSpace(params["per-key"]) == "" {
				return errors.New("train shards by key: give --per-key COLUMN (one model per key, one group of keys per shard)")
			}
			return nil
		}}
}

// mergeKeyed writes one keyed Model from the shards' partial sets.
func mergeKeyed(ctx context.Context, r *step.Run) error {
	files := map[string]model.Prepared{}
	idx := model.Index{Models: map[string]string{}, Entities: map[string]any{}}
	perKey := map[string]KeyMetrics{}
	var skipped []SkippedKey
	for i, a := range r.Partials("model") {
		f, pidx, err := model.ReadKeyed(ctx, a)
		if err != nil {
			return step.BadInput(fmt.Errorf("merge: shard %d: %w", i, err))
		}
		switch {
		case idx.KeyColumn == "":
			idx.KeyColumn = pidx.KeyColumn
		case pidx.KeyColumn != idx.KeyColumn:
			return step.BadInput(fmt.Errorf("merge: shard %d is keyed by %q, shard 0 by %q", i, pidx.KeyColumn, idx.KeyColumn))
		}
		for k, file := range pidx.Models {
			if _, dup := idx.Models[k]; dup {
				return step.BadInput(fmt.Errorf("merge: key %q is in two shards", k))
			}
			if prev, ok := files[file]; ok && string(prev.Data) != string(f[file].Data) {
				return step.BadInput(fmt.Errorf("merge: two shards wrote different %s", file))
			}
			idx.Models[k], files[file] = file, f[file]
		}
		ents, err := remarshal[map[string]KeyMetrics](pidx.Entities)
		if err != nil {
			return step.BadInput(fmt.Errorf("merge: shard %d index entities: %w", i, err))
		}
		for k, m := range ents {
			perKey[k] = m
			idx.Entities[k] = m
		}
		sk, err := artifacts.Property[[]SkippedKey](a.Sidecar, PropSkippedKeys)
		if err != nil {
			return step.BadInput(fmt.Errorf("merge: shard %d: %w", i, err))
		}
		if i == 0 {
			skipped = sk
		} else if !reflect.DeepEqual(sk, skipped) {
			return step.BadInput(fmt.Errorf("merge: shard %d skipped other keys than shard 0", i))
		}
	}
	if len(idx.Models) == 0 {
		return step.BadInput(errors.New("merge: the shards trained no key"))
	}
	w, err := r.Output(ctx, "model")
	if err != nil {
		return err
	}
	if err := model.WriteKeyed(ctx, w, files, idx); err != nil {
		return err
	}
	if skipped == nil {
		skipped = []SkippedKey{}
	}
	w.SetProperty(PropTrainingPerKey, perKey)
	w.SetProperty(PropSkippedKeys, skipped)
	r.Logger().Info("merged per-key models", "shards", len(r.Partials("model")), "models", len(idx.Models), "skipped", len(skipped))
	return nil
}

// remarshal converts a decoded JSON value into T.
func remarshal[T any](v any) (T, error) {
	var out T
	data, err := json.Marshal(v)
	if err != nil {
		return out, err
	}
	err = json.Unmarshal(data, &out)
	return out, err
}
