package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"

	// Cloud drivers register their URL schemes with gocloud's default mux.
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"
)

// SidecarName is the file whose presence commits an artifact.
const SidecarName = "artifact.json"

// Store opens artifacts on blob storage. It keeps each bucket open once and
// holds the process's mem:// buckets, so a mem URI names the same data for
// every reader in the process. A Store is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	buckets map[string]*blob.Bucket
}

// NewStore returns an empty store; Close it to release the buckets.
func NewStore() *Store {
	return &Store{buckets: map[string]*blob.Bucket{}}
}

// Close closes every bucket the store opened.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for k, b := range s.buckets {
		errs = append(errs, b.Close())
		delete(s.buckets, k)
	}
	return errors.Join(errs...)
}

// Bucket returns the opened bucket holding u.
func (s *Store) Bucket(ctx context.Context, u URI) (*blob.Bucket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.buckets[u.bucketKey()]; ok {
		return b, nil
	}
	var (
		b   *blob.Bucket
		err error
	)
	switch u.Scheme {
	case "file":
		// One bucket at the filesystem root: artifact URIs are absolute paths.
		// Temp files go next to their target so the final rename never
		// crosses devices, and no .attrs files clutter the artifact.
		b, err = fileblob.OpenBucket("/", &fileblob.Options{NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
	case "mem":
		b = memblob.OpenBucket(nil)
	default:
		url := u.Scheme + "://" + u.Bucket
		if u.Query != "" {
			url += "?" + u.Query
		}
		b, err = blob.OpenBucket(ctx, url)
	}
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", Redact(u.String()), err)
	}
	s.buckets[u.bucketKey()] = b
	return b, nil
}

// ReadAll reads one blob at u (a file URI, not an artifact).
func (s *Store) ReadAll(ctx context.Context, u URI) ([]byte, error) {
	b, err := s.Bucket(ctx, u)
	if err != nil {
		return nil, err
	}
	data, err := b.ReadAll(ctx, u.Path)
	if err != nil {
		return nil, blobErr(u, err)
	}
	return data, nil
}

// NewReader opens one blob at u for streaming.
func (s *Store) NewReader(ctx context.Context, u URI) (*blob.Reader, error) {
	b, err := s.Bucket(ctx, u)
	if err != nil {
		return nil, err
	}
	r, err := b.NewReader(ctx, u.Path, nil)
	if err != nil {
		return nil, blobErr(u, err)
	}
	return r, nil
}

// Object is one blob found by Glob.
type Object struct {
	URI  URI
	Size int64
}

// Glob lists the blobs whose URI matches pattern, a URI whose path may hold
// the wildcards of path.Match (*, ?, [...]) in any element. Results are
// sorted by key. A pattern with no wildcard names one blob, which must exist.
func (s *Store) Glob(ctx context.Context, pattern URI) ([]Object, error) {
	b, err := s.Bucket(ctx, pattern)
	if err != nil {
		return nil, err
	}
	wild := strings.IndexAny(pattern.Path, "*?[")
	if wild < 0 {
		attrs, err := b.Attributes(ctx, pattern.Path)
		if err != nil {
			return nil, blobErr(pattern, err)
		}
		return []Object{{URI: pattern, Size: attrs.Size}}, nil
	}
	// List from the last slash before the first wildcard.
	listPrefix := pattern.Path[:strings.LastIndex(pattern.Path[:wild], "/")+1]
	if _, err := matchKey(pattern.Path, pattern.Path); err != nil {
		return nil, invalidf("pattern %q: %v", pattern.String(), err)
	}
	var out []Object
	it := b.List(&blob.ListOptions{Prefix: listPrefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", Redact(pattern.String()), err)
		}
		if obj.IsDir {
			continue
		}
		if ok, _ := matchKey(pattern.Path, obj.Key); ok {
			u := pattern
			u.Path = obj.Key
			out = append(out, Object{URI: u, Size: obj.Size})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no file matches %s", ErrNotFound, Redact(pattern.String()))
	}
	return out, nil
}

// matchKey matches element by element so that * never crosses a slash.
func matchKey(pattern, key string) (bool, error) {
	pe, ke := strings.Split(pattern, "/"), strings.Split(key, "/")
	if len(pe) != len(ke) {
		return false, nil
	}
	for i := range pe {
		ok, err := pathMatch(pe[i], ke[i])
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// blobErr maps gocloud's error codes to ours and names the URI.
func blobErr(u URI, err error) error {
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return fmt.Errorf("%s: %w", Redact(u.String()), ErrNotFound)
	case gcerrors.FailedPrecondition:
		return fmt.Errorf("%s: %w", Redact(u.String()), ErrExists)
	}
	return fmt.Errorf("%s: %w", Redact(u.String()), err)
}
