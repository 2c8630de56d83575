package train

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mlsteps/mlsteps/steps/step"
)

// maxKeyedFile bounds the size of a file the cache key hashes: a trainer
// script or config, not a dataset.
const maxKeyedFile = 64 << 20

// commandFiles keys the cache on the content of the local files a
// --trainer-command names (its script, a config), so an edited train.py
// is never mistaken for a cached one. Words that are not regular files
// (flags, interpreters on PATH) are left out.
func commandFiles(_ context.Context, r *step.Run) (map[string]string, error) {
	cmd := r.String("trainer-command")
	if cmd == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, word := range strings.Fields(cmd) {
		word = strings.Trim(word, `"'`)
		if _, value, ok := strings.Cut(word, "="); ok && strings.HasPrefix(word, "-") {
			word = value // --config=path
		}
		st, err := os.Stat(word)
		if err != nil || !st.Mode().IsRegular() || st.Size() > maxKeyedFile {
			continue
		}
		f, err := os.Open(word)
		if err != nil {
			return nil, fmt.Errorf("--trainer-command: %w", err)
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--trainer-command: read %s: %w", word, err)
		}
		out["trainer-command:"+word] = step.ContentDigest(data)
	}
	return out, nil
}
