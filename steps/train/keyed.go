package train

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/mlsteps/mlsteps/steps/model"
	"github.com/mlsteps/mlsteps/steps/step"
)

// KeyMetrics is one key's entry of the "training_per_key" property.
type KeyMetrics struct {
	File string `json:"file"`
	Metrics
}

// SkippedKey is an entry of the "skipped_keys" property.
type SkippedKey struct {
	Key  string `json:"key"`
	Rows int    `json:"rows"`
}

// runPerKey fits one built-in model per key of the train split.
func runPerKey(ctx context.Context, r *step.Run, s settings) error {
	o, sp, err := builtinInputs(ctx, r, s)
	if err != nil {
		return err
	}
	trainRows, evalRows := groupRows(sp.train.keys), groupRows(sp.eval.keys)
	var keys []string
	var skipped []SkippedKey
	for _, k := range slices.Sorted(maps.Keys(trainRows)) {
		if n := len(trainRows[k]); n < s.minRows {
			skipped = append(skipped, SkippedKey{Key: k, Rows: n})
			r.Logger().Warn("key skipped: too few train rows", "key", k, "rows", n, "min_rows_per_key", s.minRows)
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return step.BadInput(fmt.Errorf("--per-key %q: no key has %d train rows or more (%d keys, all skipped)", s.perKey, s.minRows, len(skipped)))
	}
	if sh, ok := r.Shard(); ok {
		// One group of keys per shard; every shard lists the same skipped
		// keys, as the whole run would.
		lo, hi := sh.Range(len(keys))
		r.ShardCovers(lo, hi, len(keys))
		r.Logger().Info("shard", "shard", sh.String(), "keys", keys[lo:hi], "of", len(keys))
		keys = keys[lo:hi]
	}
	workers := s.workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers > 1 {
		// The keys already run in parallel; more histogram goroutines per
		// fit would only contend. The model does not depend on it.
		o.gbdt.Workers = 1
	}
	results := make([]trained, len(keys))
	errs := make([]error, len(keys))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(min(workers, len(keys)), 1) {
		wg.Go(func() {
			for i := range next {
				k := keys[i]
				evRows := evalRows[k]
				if evRows == nil {
					evRows = []int{} // no eval rows for this key: not all of them
				}
				results[i], errs[i] = fitOne(ctx, s, o, sp, trainRows[k], evRows)
			}
		})
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("key %q: %w", keys[i], err)
		}
	}
	files := map[string]model.Prepared{}
	idx := model.Index{KeyColumn: s.perKey, Models: map[string]string{}}
	perKey := map[string]KeyMetrics{}
	for i, k := range keys {
		f := fileName(k)
		files[f] = results[i].prepared
		idx.Models[k] = f
		perKey[k] = KeyMetrics{File: f, Metrics: results[i].metrics}
	}
	w, err := r.Output(ctx, "model")
	if err != nil {
		return err
	}
	idx.Entities = map[string]any{}
	for k, m := range perKey {
		idx.Entities[k] = m
	}
	if err := model.WriteKeyedPartial(ctx, w, files, idx); err != nil {
		return err
	}
	if skipped == nil {
		skipped = []SkippedKey{}
	}
	w.SetProperty(PropTrainingPerKey, perKey)
	w.SetProperty(PropSkippedKeys, skipped)
	r.Logger().Info("trained per key", "trainer", s.trainer, "key_column", s.perKey, "models", len(keys), "skipped", len(skipped))
	return nil
}

// groupRows maps each key to its row numbers, in row order.
func groupRows(keys []string) map[string][]int {
	out := map[string][]int{}
	for i, k := range keys {
		out[k] = append(out[k], i)
	}
	return out
}

// fileName maps a key to a safe file name: the key itself when it is made
// of letters, digits, '-' and '_' only; otherwise a slug of it plus a hash
// of the whole key, so different keys never share a file.
func fileName(key string) string {
	var b strings.Builder
	for _, c := range key {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	slug := b.String()
	if slug == key && key != "" && len(key) <= 64 {
		return key + ".onnx"
	}
	sum := sha256.Sum256([]byte(key))
	if len(slug) > 48 {
		slug = slug[:48]
	}
	return strings.Trim(slug+"-"+hex.EncodeToString(sum[:])[:12], "-") + ".onnx"
}
